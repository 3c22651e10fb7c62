"""Alembic environment: runs on the connection `veil.services.cloud.database` hands it."""

from __future__ import annotations

from alembic import context

from veil.services.cloud.models import Base

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=Base.metadata)
with context.begin_transaction():
    context.run_migrations()
