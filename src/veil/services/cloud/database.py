"""Open the control plane's database and bring its schema to the newest migration.

SQLite (a file under VEIL_HOME by default) needs nothing installed; PostgreSQL
(`postgresql+psycopg://...`) lets several replicas share one state. Replicas that start
together upgrade under an advisory lock, so exactly one runs each migration.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, Engine, create_engine, event, text
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
