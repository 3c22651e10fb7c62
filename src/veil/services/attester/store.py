"""The attester's record of everything it signed, and the uptime evidence it collects.

SQLite in WAL mode: one file an operator can back up, publish, or hand to an auditor.
Each signature is committed before it is returned, so the record never lacks an
attestation that exists in the wild. `synchronous=FULL`: in WAL mode a commit then
waits for the WAL fsync, so an answer that left with 200 survives a power cut as well
as a crash of the process (NORMAL would survive only the latter); the price is one
fsync per signature, small next to the signature verification that precedes it.

Records are idempotent, so the file grows with what was *distinct*, not with traffic:
one row per (account, receiver, holder signature), one per registration request and
expiry, and expired registrations older than the retention window are pruned.
Heartbeats are not kept here: they go to per-epoch journals with group commit
(`veil.services.attester.heartbeats`), as one fsync per heartbeat would cap ingest
far below what 29,000 workers send. Tables `heartbeats` and `heartbeat_last` in files
written by older attesters are left as they are.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

SCHEMA = """
CREATE TABLE IF NOT EXISTS bindings (
    id INTEGER PRIMARY KEY,
    account TEXT NOT NULL,
    receiver TEXT NOT NULL,
    leaf_index INTEGER NOT NULL,
    scheme TEXT NOT NULL,
    substrate_signature TEXT NOT NULL,
    digest TEXT NOT NULL,
    attestation TEXT NOT NULL,
    signed_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS bindings_account ON bindings(account);
CREATE TABLE IF NOT EXISTS registrations (
    id INTEGER PRIMARY KEY,
    worker TEXT NOT NULL,
    provider TEXT NOT NULL,
    evidence_hash TEXT NOT NULL,
    quote_hash TEXT NOT NULL,
    verdict TEXT NOT NULL,
    attestation TEXT NOT NULL,
    expiry INTEGER NOT NULL,
    signed_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS registrations_worker ON registrations(worker);
"""

# Columns added after the first release; an older file gains them when opened.
_ADDED_COLUMNS = {
    "bindings": {"answer": "TEXT"},
    "registrations": {"answer": "TEXT", "request_hash": "TEXT"},
}

_UNIQUE_INDEXES = """
CREATE UNIQUE INDEX IF NOT EXISTS bindings_once
    ON bindings(account, receiver, substrate_signature);
CREATE UNIQUE INDEX IF NOT EXISTS registrations_once ON registrations(request_hash, expiry);
CREATE INDEX IF NOT EXISTS registrations_expiry ON registrations(expiry);
"""


class BindingLimit(Exception):
    """The account already has the most distinct bindings the policy records."""

    def __init__(self, count: int) -> None:
        super().__init__(count)
        self.count = count


class Store:
    """Thread-safe store; one connection per thread."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        db = self._connect()
        db.execute("PRAGMA journal_mode=WAL")
        db.executescript(SCHEMA)
        self._migrate(db)

    @staticmethod
    def _migrate(db: sqlite3.Connection) -> None:
        """Bring a file written by an older attester up to the idempotent schema: its
        duplicate bindings (the same binding once per re-post) collapse to the first."""
        db.execute("BEGIN IMMEDIATE")
        try:
            for table, columns in _ADDED_COLUMNS.items():
                have = {row[1] for row in db.execute(f"PRAGMA table_info({table})")}
                for name, kind in columns.items():
                    if name not in have:
                        db.execute(f"ALTER TABLE {table} ADD COLUMN {name} {kind}")
            db.execute(
                "DELETE FROM bindings WHERE id NOT IN (SELECT MIN(id) FROM bindings"
                " GROUP BY account, receiver, substrate_signature)"
            )
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.executescript(_UNIQUE_INDEXES)

    def _connect(self) -> sqlite3.Connection:
        db = getattr(self._local, "db", None)
        if db is None:
            db = sqlite3.connect(self.path, timeout=30, isolation_level=None)
            db.execute("PRAGMA synchronous=FULL")
            db.execute("PRAGMA busy_timeout=30000")
            db.row_factory = sqlite3.Row
            self._local.db = db
        return db

    # --- bindings ------------------------------------------------------------------

    def find_binding(self, account: str, receiver: str, signature: str) -> dict[str, Any] | None:
        row = (
            self._connect()
            .execute(
                "SELECT * FROM bindings WHERE account = ? AND receiver = ?"
                " AND substrate_signature = ?",
                (account, receiver, signature),
            )
            .fetchone()
        )
        return dict(row) if row else None

    def record_binding(
        self,
        row: dict[str, Any],
        max_per_account: int,
        answer: Callable[[int], str] | None = None,
    ) -> tuple[dict[str, Any], bool]:
        """Store a binding once: (the stored row, True if this call added it).

        A binding already stored is returned as it is (so a re-post, or two racing posts,
        get the first answer); a new one for an account that has `max_per_account`
        distinct bindings raises BindingLimit, and nothing is written. `answer(n)` gives
        the answer to keep with a new row, `n` being the account's bindings before it.
        """
        db = self._connect()
        key = (row["account"], row["receiver"], row["substrate_signature"])
        db.execute("BEGIN IMMEDIATE")
        try:
            existing = db.execute(
                "SELECT * FROM bindings WHERE account = ? AND receiver = ?"
                " AND substrate_signature = ?",
                key,
            ).fetchone()
            if existing is not None:
                db.execute("COMMIT")
                return dict(existing), False
            (count,) = db.execute(
                "SELECT COUNT(*) FROM bindings WHERE account = ?", (row["account"],)
            ).fetchone()
            if count >= max_per_account:
                raise BindingLimit(count)
            kept = answer(count) if answer is not None else None
            stored = {"signed_at": time.time(), **row, "answer": kept}
            cursor = db.execute(
                "INSERT INTO bindings (account, receiver, leaf_index, scheme,"
                " substrate_signature, digest, attestation, signed_at, answer) VALUES"
                " (:account, :receiver, :leaf_index, :scheme, :substrate_signature, :digest,"
                " :attestation, :signed_at, :answer)",
                stored,
            )
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        return {"id": cursor.lastrowid, **stored}, True

    def bindings_for(self, account: str) -> list[dict[str, Any]]:
        rows = self._connect().execute(
            "SELECT * FROM bindings WHERE account = ? ORDER BY id", (account,)
        )
        return [dict(r) for r in rows]

    def count(self, table: str) -> int:
        if table not in ("bindings", "registrations"):
            raise ValueError(table)
        return int(self._connect().execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0])

    # --- registrations -------------------------------------------------------------

    def find_registration(self, request_hash: str, expiry: int) -> dict[str, Any] | None:
        """The stored answer to this very request for this expiry, if any."""
        row = (
            self._connect()
            .execute(
                "SELECT * FROM registrations WHERE request_hash = ? AND expiry = ?"
                " AND answer IS NOT NULL",
                (request_hash, expiry),
            )
            .fetchone()
        )
        return dict(row) if row else None

    def prune_registrations(self, expired_before: float) -> int:
        """Delete registrations that expired before the cutoff, except each worker's latest
        (heartbeats are checked against it). Returns how many rows went."""
        cursor = self._connect().execute(
            "DELETE FROM registrations WHERE expiry < ? AND id <"
            " (SELECT MAX(r.id) FROM registrations r WHERE r.worker = registrations.worker)",
            (expired_before,),
        )
        return cursor.rowcount

    def record_registration(self, row: dict[str, Any]) -> dict[str, Any]:
        """Store once per (request, expiry); returns the stored row (the first, on a race)."""
        db = self._connect()
        stored = {"signed_at": time.time(), "answer": None, "request_hash": None, **row}
        db.execute(
            "INSERT OR IGNORE INTO registrations (worker, provider, evidence_hash, quote_hash,"
            " verdict, attestation, expiry, signed_at, answer, request_hash) VALUES (:worker,"
            " :provider, :evidence_hash, :quote_hash, :verdict, :attestation, :expiry,"
            " :signed_at, :answer, :request_hash)",
            stored,
        )
        if stored["request_hash"] is None:
            return stored
        first = db.execute(
            "SELECT * FROM registrations WHERE request_hash = ? AND expiry = ?",
            (stored["request_hash"], stored["expiry"]),
        ).fetchone()
        return dict(first) if first else stored

    def latest_registration(self, worker: str) -> dict[str, Any] | None:
        row = (
            self._connect()
            .execute(
                "SELECT * FROM registrations WHERE worker = ? ORDER BY id DESC LIMIT 1", (worker,)
            )
            .fetchone()
        )
        return dict(row) if row else None
