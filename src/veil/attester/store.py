"""The attester's record of everything it signed, and the uptime evidence it collects.

SQLite in WAL mode: one file an operator can back up, publish, or hand to an auditor.
Each signature is written before it is returned, so the record never lacks an
attestation that exists in the wild.
"""

from __future__ import annotations

import sqlite3
import threading
import time
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
CREATE TABLE IF NOT EXISTS heartbeats (
    worker TEXT NOT NULL,
    sequence INTEGER NOT NULL,
    sent_at INTEGER NOT NULL,
    received_at REAL NOT NULL,
    signature TEXT NOT NULL,
    PRIMARY KEY (worker, sequence)
);
"""


class Store:
    """Thread-safe append-mostly store; one connection per thread."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        with self._connect() as db:
            db.execute("PRAGMA journal_mode=WAL")
            db.executescript(SCHEMA)

    def _connect(self) -> sqlite3.Connection:
        db = getattr(self._local, "db", None)
        if db is None:
            db = sqlite3.connect(self.path, timeout=30, isolation_level=None)
            db.execute("PRAGMA synchronous=NORMAL")
            db.row_factory = sqlite3.Row
            self._local.db = db
        return db

    def record_binding(self, row: dict[str, Any]) -> None:
        self._connect().execute(
            "INSERT INTO bindings (account, receiver, leaf_index, scheme, substrate_signature,"
            " digest, attestation, signed_at) VALUES (:account, :receiver, :leaf_index, :scheme,"
            " :substrate_signature, :digest, :attestation, :signed_at)",
            {"signed_at": time.time(), **row},
        )

    def bindings_for(self, account: str) -> list[dict[str, Any]]:
        rows = self._connect().execute(
            "SELECT * FROM bindings WHERE account = ? ORDER BY id", (account,)
        )
        return [dict(r) for r in rows]

    def record_registration(self, row: dict[str, Any]) -> None:
        self._connect().execute(
            "INSERT INTO registrations (worker, provider, evidence_hash, quote_hash, verdict,"
            " attestation, expiry, signed_at) VALUES (:worker, :provider, :evidence_hash,"
            " :quote_hash, :verdict, :attestation, :expiry, :signed_at)",
            {"signed_at": time.time(), **row},
        )

    def latest_registration(self, worker: str) -> dict[str, Any] | None:
        row = self._connect().execute(
            "SELECT * FROM registrations WHERE worker = ? ORDER BY id DESC LIMIT 1", (worker,)
        ).fetchone()
        return dict(row) if row else None

    def record_heartbeat(self, worker: str, sequence: int, sent_at: int, signature: str) -> bool:
        """False if this (worker, sequence) was already stored: a replay."""
        try:
            self._connect().execute(
                "INSERT INTO heartbeats (worker, sequence, sent_at, received_at, signature)"
                " VALUES (?, ?, ?, ?, ?)",
                (worker, sequence, sent_at, time.time(), signature),
            )
        except sqlite3.IntegrityError:
            return False
        return True

    def last_heartbeat(self, worker: str) -> dict[str, Any] | None:
        row = self._connect().execute(
            "SELECT * FROM heartbeats WHERE worker = ? ORDER BY sequence DESC LIMIT 1", (worker,)
        ).fetchone()
        return dict(row) if row else None

    def heartbeats(self, worker: str, limit: int = 10) -> list[dict[str, Any]]:
        rows = self._connect().execute(
            "SELECT * FROM heartbeats WHERE worker = ? ORDER BY sequence DESC LIMIT ?",
            (worker, limit),
        )
        return [dict(r) for r in rows]
