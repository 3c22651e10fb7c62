"""Billing: market leases per app, billing webhooks and their delivery records.

Numbered 0010 to stay clear of other branches' migrations; it follows the newest one
present when branches merge (its `down_revision` names that one).

Revision ID: 0010
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "leases",
        sa.Column("lease_id", sa.String(66), primary_key=True),
        sa.Column("app_id", sa.String(42), nullable=False),
        sa.Column("owner", sa.String(42), nullable=False),
        sa.Column("provider", sa.String(42), nullable=False),
        sa.Column("deployment_key", sa.String(200), nullable=False),
        sa.Column("instance_type", sa.String(32), nullable=False),
        sa.Column("rate", sa.String(80), nullable=False),
        sa.Column("amount", sa.String(80), nullable=False),
        sa.Column("tx", sa.String(66), nullable=False),
        sa.Column("opened_at", sa.BigInteger(), nullable=False),
        sa.Column("closed_at", sa.BigInteger(), nullable=True),
        sa.Column("last_state", sa.Integer(), nullable=True),
        sa.Column("last_runway", sa.BigInteger(), nullable=True),
    )
    op.create_index("ix_leases_app_id", "leases", ["app_id"])
    op.create_index("ix_leases_owner", "leases", ["owner"])
    op.create_index("ix_leases_closed_at", "leases", ["closed_at"])
    op.create_table(
        "billing_webhooks",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("owner", sa.String(42), nullable=False),
        sa.Column("url", sa.String(500), nullable=False),
        sa.Column("secret", sa.String(80), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
    )
    op.create_index("ix_billing_webhooks_owner", "billing_webhooks", ["owner"])
    op.create_table(
        "webhook_deliveries",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("webhook_id", sa.String(40), nullable=False),
        sa.Column("owner", sa.String(42), nullable=False),
        sa.Column("kind", sa.String(40), nullable=False),
        sa.Column("lease_id", sa.String(66), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.BigInteger(), nullable=False),
        sa.Column("last_status", sa.Integer(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("delivered_at", sa.BigInteger(), nullable=True),
    )
    op.create_index("ix_webhook_deliveries_webhook_id", "webhook_deliveries", ["webhook_id"])
    op.create_index("ix_webhook_deliveries_owner", "webhook_deliveries", ["owner"])
    op.create_index(
        "ix_webhook_deliveries_due", "webhook_deliveries", ["status", "next_attempt_at"]
    )


def downgrade() -> None:
    op.drop_table("webhook_deliveries")
    op.drop_table("billing_webhooks")
    op.drop_table("leases")
