"""Monitoring: app log lines, app and worker metric samples, alert webhooks (issue 14).

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

ROW_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "app_logs",
        sa.Column("id", ROW_ID, primary_key=True, autoincrement=True),
        sa.Column("app_id", sa.String(42), nullable=False),
        sa.Column("service", sa.String(63), nullable=False),
        sa.Column("at", sa.BigInteger(), nullable=False),
        sa.Column("line", sa.Text(), nullable=False),
    )
    op.create_index("ix_app_logs_app_id_id", "app_logs", ["app_id", "id"])
    op.create_index("ix_app_logs_at", "app_logs", ["at"])
    op.create_table(
        "app_metrics",
        sa.Column("id", ROW_ID, primary_key=True, autoincrement=True),
        sa.Column("app_id", sa.String(42), nullable=False),
        sa.Column("worker", sa.String(42), nullable=False),
        sa.Column("at", sa.BigInteger(), nullable=False),
        sa.Column("cpu_pct", sa.Float(), nullable=False),
        sa.Column("memory_bytes", sa.BigInteger(), nullable=False),
        sa.Column("read_bytes", sa.BigInteger(), nullable=False),
        sa.Column("write_bytes", sa.BigInteger(), nullable=False),
        sa.Column("restarts", sa.Integer(), nullable=False),
        sa.Column("services", sa.JSON(), nullable=False),
        sa.Column("gpus", sa.JSON(), nullable=False),
    )
    op.create_index("ix_app_metrics_app_id_at", "app_metrics", ["app_id", "at"])
    op.create_index("ix_app_metrics_at", "app_metrics", ["at"])
    op.create_table(
        "worker_metrics",
        sa.Column("id", ROW_ID, primary_key=True, autoincrement=True),
        sa.Column("worker", sa.String(42), nullable=False),
        sa.Column("at", sa.BigInteger(), nullable=False),
        sa.Column("cpu_pct", sa.Float(), nullable=False),
        sa.Column("memory_used_bytes", sa.BigInteger(), nullable=False),
        sa.Column("memory_total_bytes", sa.BigInteger(), nullable=False),
        sa.Column("disk_used_bytes", sa.BigInteger(), nullable=False),
        sa.Column("disk_total_bytes", sa.BigInteger(), nullable=False),
        sa.Column("net_rx_bytes", sa.BigInteger(), nullable=False),
        sa.Column("net_tx_bytes", sa.BigInteger(), nullable=False),
        sa.Column("gpus", sa.JSON(), nullable=False),
    )
    op.create_index("ix_worker_metrics_worker_at", "worker_metrics", ["worker", "at"])
    op.create_index("ix_worker_metrics_at", "worker_metrics", ["at"])
    op.create_table(
        "alert_webhooks",
        sa.Column("id", sa.String(24), primary_key=True),
        sa.Column("owner", sa.String(42), nullable=False, index=True),
        sa.Column("url", sa.String(500), nullable=False),
        sa.Column("secret", sa.String(64), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("alert_webhooks")
    op.drop_table("worker_metrics")
    op.drop_table("app_metrics")
    op.drop_table("app_logs")
