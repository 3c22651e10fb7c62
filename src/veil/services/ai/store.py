"""Receipts and metered usage, kept in SQLite under the gateway's state directory.

Why durable: a customer checks a signature after the fact (a dispute, an audit, a bill), so
receipts must outlive a restart of the gateway, for a retention period the operator sets
(`--retention-days`, a governed number in a deployment). Usage rows are what billing reads
to charge per token through the escrow; they go with the receipt in one transaction, so a
billed request always has a receipt and the other way round.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

_SCHEMA = """
CREATE TABLE IF NOT EXISTS receipts (
    id TEXT PRIMARY KEY,
    created_at INTEGER NOT NULL,
    text TEXT NOT NULL,
    signature_ecdsa TEXT NOT NULL,
    signing_address_ecdsa TEXT NOT NULL,
    signature_ed25519 TEXT NOT NULL,
    signing_address_ed25519 TEXT NOT NULL,
    receipt TEXT NOT NULL,
    receipt_signature TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS receipts_created ON receipts (created_at);
CREATE TABLE IF NOT EXISTS usage (
    receipt_id TEXT PRIMARY KEY REFERENCES receipts (id),
    created_at INTEGER NOT NULL,
    endpoint TEXT NOT NULL,
    model TEXT NOT NULL,
    customer TEXT NOT NULL,
    prompt_tokens INTEGER NOT NULL,
    completion_tokens INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS usage_created ON usage (created_at);
"""


@dataclass(frozen=True)
class StoredReceipt:
    id: str
    created_at: int
    text: str
    signatures: dict[str, tuple[str, str]]  # algo -> (signature, signing address)
    receipt: dict[str, Any]
    receipt_signature: str


@dataclass(frozen=True)
class UsageRow:
    receipt_id: str
    created_at: int
    endpoint: str
    model: str
    customer: str
    prompt_tokens: int
    completion_tokens: int


class ReceiptStore:
    """One SQLite file (WAL); writes are serialised by a lock, reads share the connection."""

    def __init__(self, path: Path, retention_seconds: int) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.retention_seconds = retention_seconds
        self._lock = threading.Lock()
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)
        self._last_purge = 0.0
        self.purge()  # at start, then at most once a minute from add()

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def add(self, stored: StoredReceipt, usage: UsageRow) -> None:
        self.add_many([(stored, usage)])

    def add_many(self, items: list[tuple[StoredReceipt, UsageRow]]) -> None:
        """Store receipts with their usage rows in one transaction: all of them or none.

        Why batches: the gateway commits the receipts of every answer sent meanwhile at
        once, one commit instead of one per answer.
        """
        receipts = []
        usages = []
        for stored, usage in items:
            ecdsa_sig, ecdsa_addr = stored.signatures["ecdsa"]
            ed_sig, ed_addr = stored.signatures["ed25519"]
            receipts.append(
                (stored.id, stored.created_at, stored.text, ecdsa_sig, ecdsa_addr, ed_sig,
                 ed_addr, json.dumps(stored.receipt), stored.receipt_signature)
            )  # fmt: skip
            usages.append(
                (usage.receipt_id, usage.created_at, usage.endpoint, usage.model,
                 usage.customer, usage.prompt_tokens, usage.completion_tokens)
            )  # fmt: skip
        with self._lock:
            self._db.execute("BEGIN")
            try:
                self._db.executemany("INSERT INTO receipts VALUES (?,?,?,?,?,?,?,?,?)", receipts)
                self._db.executemany("INSERT INTO usage VALUES (?,?,?,?,?,?,?)", usages)
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        if time.monotonic() - self._last_purge > 60:
            self.purge()

    def exists(self, receipt_id: str) -> bool:
        with self._lock:
            row = self._db.execute("SELECT 1 FROM receipts WHERE id = ?", (receipt_id,))
            return row.fetchone() is not None

    def get(self, receipt_id: str) -> StoredReceipt | None:
        with self._lock:
            row = self._db.execute(
                "SELECT * FROM receipts WHERE id = ? AND created_at >= ?",
                (receipt_id, int(time.time()) - self.retention_seconds),
            ).fetchone()
        if row is None:
            return None
        return StoredReceipt(
            id=row[0],
            created_at=row[1],
            text=row[2],
            signatures={"ecdsa": (row[3], row[4]), "ed25519": (row[5], row[6])},
            receipt=json.loads(row[7]),
            receipt_signature=row[8],
        )

    def usage(self, since: int = 0, until: int | None = None) -> list[UsageRow]:
        """Usage rows in [since, until), oldest first: what a billing run reads."""
        until = until if until is not None else 2**62
        with self._lock:
            rows = self._db.execute(
                "SELECT * FROM usage WHERE created_at >= ? AND created_at < ?"
                " ORDER BY created_at, receipt_id",
                (since, until),
            ).fetchall()
        return [UsageRow(*row) for row in rows]

    def purge(self, now: int | None = None) -> int:
        """Delete receipts (and their usage) older than the retention period; count removed."""
        cutoff = (now if now is not None else int(time.time())) - self.retention_seconds
        with self._lock:
            self._db.execute("BEGIN")
            self._db.execute(
                "DELETE FROM usage WHERE receipt_id IN"
                " (SELECT id FROM receipts WHERE created_at < ?)",
                (cutoff,),
            )
            removed = self._db.execute("DELETE FROM receipts WHERE created_at < ?", (cutoff,))
            self._db.execute("COMMIT")
            self._last_purge = time.monotonic()
            return removed.rowcount
