"""The first schema: keys, nonces, provisions, apps, workers, deployments, events.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

EVENT_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "api_keys",
        sa.Column("id", sa.String(24), primary_key=True),
        sa.Column("address", sa.String(42), nullable=False, index=True),
        sa.Column("secret_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("scopes", sa.String(200), nullable=False),
        sa.Column("label", sa.String(100), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("revoked_at", sa.BigInteger(), nullable=True),
    )
    op.create_table(
        "siwe_nonces",
        sa.Column("nonce", sa.String(32), primary_key=True),
        sa.Column("expires_at", sa.BigInteger(), nullable=False, index=True),
    )
    op.create_table(
        "provisions",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("app_id", sa.String(42), nullable=False, index=True),
        sa.Column("owner", sa.String(42), nullable=False),
        sa.Column("name", sa.String(63), nullable=False),
        sa.Column("compose", sa.Text(), nullable=False),
        sa.Column("app_compose", sa.JSON(), nullable=False),
        sa.Column("compose_hash", sa.String(64), nullable=False),
        sa.Column("instance_type", sa.String(32), nullable=False),
        sa.Column("allowed_envs", sa.JSON(), nullable=False),
        sa.Column("updates", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("expires_at", sa.BigInteger(), nullable=False),
        sa.Column("used_at", sa.BigInteger(), nullable=True),
    )
    op.create_table(
        "apps",
        sa.Column("app_id", sa.String(42), primary_key=True),
        sa.Column("owner", sa.String(42), nullable=False, index=True),
        sa.Column("name", sa.String(63), nullable=False),
        sa.Column("instance_type", sa.String(32), nullable=False),
        sa.Column("compose", sa.Text(), nullable=False),
        sa.Column("app_compose", sa.JSON(), nullable=False),
        sa.Column("compose_hash", sa.String(64), nullable=False),
        sa.Column("allowed_envs", sa.JSON(), nullable=False),
        sa.Column("env_keys", sa.JSON(), nullable=False),
        sa.Column("encrypted_env", sa.Text(), nullable=False),
        sa.Column("desired", sa.String(16), nullable=False),
        sa.Column("status", sa.String(16), nullable=False, index=True),
        sa.Column("status_reason", sa.Text(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.BigInteger(), nullable=False),
        sa.Column("deleted_at", sa.BigInteger(), nullable=True),
    )
    op.create_table(
        "workers",
        sa.Column("address", sa.String(42), primary_key=True),
        sa.Column("provider", sa.String(42), nullable=False, index=True),
        sa.Column("runtime", sa.String(16), nullable=False),
        sa.Column("simulated", sa.Boolean(), nullable=False),
        sa.Column("vcpu", sa.Integer(), nullable=False),
        sa.Column("memory_mb", sa.BigInteger(), nullable=False),
        sa.Column("disk_gb", sa.BigInteger(), nullable=False),
        sa.Column("gpu_model", sa.Integer(), nullable=False),
        sa.Column("gpu_count", sa.Integer(), nullable=False),
        sa.Column("url", sa.String(200), nullable=True),
        sa.Column("last_seen", sa.BigInteger(), nullable=False, index=True),
        sa.Column("online", sa.Boolean(), nullable=False),
    )
    op.create_table(
        "deployments",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("app_id", sa.String(42), nullable=False, index=True),
        sa.Column("worker", sa.String(42), nullable=False),
        sa.Column("instance_type", sa.String(32), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("boot_progress", sa.Integer(), nullable=False),
        sa.Column("error", sa.Text(), nullable=False),
        sa.Column("ports", sa.JSON(), nullable=False),
        sa.Column("attestation", sa.JSON(), nullable=True),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.BigInteger(), nullable=False),
        sa.Column("ended_at", sa.BigInteger(), nullable=True),
    )
    op.create_index("ix_deployments_worker_active", "deployments", ["worker", "ended_at"])
    op.create_table(
        "app_events",
        sa.Column("id", EVENT_ID, primary_key=True, autoincrement=True),
        sa.Column("app_id", sa.String(42), nullable=False, index=True),
        sa.Column("at", sa.BigInteger(), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("data", sa.JSON(), nullable=False),
    )


def downgrade() -> None:
    for table in (
        "app_events",
        "deployments",
        "workers",
        "apps",
        "provisions",
        "siwe_nonces",
        "api_keys",
    ):
        op.drop_table(table)
