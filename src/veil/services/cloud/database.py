"""Open the control plane's database and bring its schema to the newest migration.

SQLite (a file under VEIL_HOME by default) needs nothing installed; PostgreSQL
(`postgresql+psycopg://...`) lets several replicas share one state. Replicas that start
together upgrade under an advisory lock, so exactly one runs each migration.
"""

from __future__ import annotations

import asyncio
import re
import time
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from psycopg import AsyncConnection
from psycopg.rows import namedtuple_row
from sqlalchemy import JSON, Connection, Engine, TextualSelect, create_engine, event, text
from sqlalchemy.orm import Session, sessionmaker

from veil.errors import InputError
from veil.services.cloud import migrations

#: pg advisory lock ids (any int64 the deployment does not use otherwise).
MIGRATION_LOCK = 0x7665696C_00000001
SCHEDULER_LOCK = 0x7665696C_00000002


def default_url(home: Path) -> str:
    return f"sqlite:///{home / 'cloud.sqlite'}"


def is_postgres(engine: Engine | Connection) -> bool:
    return engine.dialect.name == "postgresql"


def open_engine(url: str, *, pool_size: int = 10) -> Engine:
    """An engine with the settings each backend needs for concurrent readers and writers."""
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_connection, _record):  # type: ignore[no-untyped-def]
            # WAL: readers never wait for the writer; busy_timeout: writers queue, not fail.
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.close()

        return engine
    if url.startswith("postgresql"):
        # No pre-ping: it is a round trip per checkout; a dead connection fails one request
        # and is replaced, and recycling retires connections before servers drop them.
        return create_engine(url, pool_size=pool_size, max_overflow=pool_size, pool_recycle=1800)
    raise InputError(f"--db {url!r}: expected sqlite:///PATH or postgresql+psycopg://...")


def upgrade(engine: Engine) -> None:
    """Apply every migration not yet applied (idempotent; safe with replicas starting)."""
    config = Config()
    config.set_main_option("script_location", str(Path(migrations.__file__).parent))
    with engine.begin() as connection:
        if is_postgres(connection):
            connection.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": MIGRATION_LOCK})
        config.attributes["connection"] = connection
        command.upgrade(config, "head")


def session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


class HotRead:
    """One hot read's SQL in the two forms its backends run: a typed SQLAlchemy text for
    SQLite (JSON columns decoded by the driver's type), and psycopg's `%(name)s` form for
    PostgreSQL, which decodes json columns itself. Written once with `:name` parameters."""

    def __init__(self, sql: str, json_columns: tuple[str, ...] = ()) -> None:
        self.text: TextualSelect = text(sql).columns(**{name: JSON() for name in json_columns})
        self.pg = re.sub(r"(?<!:):([A-Za-z_]\w*)", r"%(\1)s", sql)


class PgReads:
    """Hot reads on PostgreSQL straight from the event loop: async psycopg connections in
    autocommit mode, each statement prepared on the server at first use.

    Why not the SQLAlchemy pool: a read there cost a thread hop, a pool checkout and
    statement compilation, about as much CPU as the HTTP request itself (bench/cloud.py).
    Connections belong to one event loop, so idle ones are kept per loop (uvicorn has one
    per worker process; test clients make several). Nothing read is cached: each call asks
    the database, so a revoked key is refused at once on every replica."""

    def __init__(self, url: str, size: int, recycle: float = 1800.0) -> None:
        self.conninfo = url.replace("postgresql+psycopg://", "postgresql://", 1)
        self.size = size
        self.recycle = recycle
        self._idle: dict[asyncio.AbstractEventLoop, list[tuple[float, AsyncConnection[Any]]]] = {}
        self._slots: dict[asyncio.AbstractEventLoop, asyncio.Semaphore] = {}

    def _loop_state(self) -> tuple[list[tuple[float, AsyncConnection[Any]]], asyncio.Semaphore]:
        loop = asyncio.get_running_loop()
        idle = self._idle.get(loop)
        if idle is None:
            for old in [old for old in self._idle if old.is_closed()]:
                for _, connection in self._idle.pop(old):
                    connection.pgconn.finish()
                self._slots.pop(old, None)
            idle = self._idle[loop] = []
            self._slots[loop] = asyncio.Semaphore(self.size)
        return idle, self._slots[loop]

    async def fetch(self, read: HotRead, params: dict[str, Any]) -> list[Any]:
        idle, slots = self._loop_state()
        async with slots:
            born, connection = idle.pop() if idle else (0.0, None)
            if connection is not None and time.monotonic() - born > self.recycle:
                connection.pgconn.finish()
                connection = None
            if connection is None:
                born = time.monotonic()
                connection = await AsyncConnection.connect(
                    self.conninfo, autocommit=True, row_factory=namedtuple_row
                )
            try:
                cursor = await connection.execute(read.pg, params, prepare=True)
                rows = await cursor.fetchall()
            except BaseException:
                # Mid-statement cancellation or a dead server: its state is unknown, drop it.
                connection.pgconn.finish()
                raise
            idle.append((born, connection))
            return rows

    def close(self) -> None:
        for connections in self._idle.values():
            for _, connection in connections:
                connection.pgconn.finish()
        self._idle.clear()
        self._slots.clear()
