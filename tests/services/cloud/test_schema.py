"""The shipped migrations build exactly the tables the models describe, on both backends,
and upgrading twice (a second replica starting) changes nothing."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from veil.services.cloud.database import open_engine, upgrade
from veil.services.cloud.models import Base


def test_migrations_match_models(db_url: str) -> None:
    engine = open_engine(db_url)
    try:
        upgrade(engine)
        upgrade(engine)
        with engine.connect() as connection:
            context = MigrationContext.configure(connection)
            assert context.get_current_revision() == "0010"  # 0003 monitoring, 0010 billing
            assert compare_metadata(context, Base.metadata) == []
    finally:
        engine.dispose()
