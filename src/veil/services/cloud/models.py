"""The control plane's tables, as typed SQLAlchemy 2 models.

Times are unix seconds (int) so SQLite and PostgreSQL store and compare them the same
way. JSON columns hold what is sent back verbatim (app-compose, ports, attestation).
Alembic migrations (`migrations/versions`) create these tables; the models are the
code's view of them and a test checks the two agree.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import JSON, BigInteger, Boolean, Float, Index, Integer, String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

#: Auto-increment ids: BIGINT on PostgreSQL, INTEGER (the rowid alias) on SQLite.
EventId = BigInteger().with_variant(Integer(), "sqlite")


class Base(DeclarativeBase):
    pass


class ApiKey(Base):
    """A bearer key for one account (an address); only its sha256 is kept."""

    __tablename__ = "api_keys"

    id: Mapped[str] = mapped_column(String(24), primary_key=True)
    address: Mapped[str] = mapped_column(String(42), index=True)
    secret_hash: Mapped[str] = mapped_column(String(64), unique=True)
    scopes: Mapped[str] = mapped_column(String(200))
    label: Mapped[str] = mapped_column(String(100), default="")
    created_at: Mapped[int] = mapped_column(BigInteger)
    revoked_at: Mapped[int | None] = mapped_column(BigInteger, nullable=True)


class SiweNonce(Base):
    """A nonce handed out for one Sign-In with Ethereum message; deleted when used."""

    __tablename__ = "siwe_nonces"

    nonce: Mapped[str] = mapped_column(String(32), primary_key=True)
    expires_at: Mapped[int] = mapped_column(BigInteger, index=True)


class Provision(Base):
    """Phase one of a deploy: what the customer asked for, until committed or expired."""

    __tablename__ = "provisions"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    app_id: Mapped[str] = mapped_column(String(42), index=True)
    owner: Mapped[str] = mapped_column(String(42))
    name: Mapped[str] = mapped_column(String(63))
    compose: Mapped[str] = mapped_column(Text)
    app_compose: Mapped[dict[str, Any]] = mapped_column(JSON)
    compose_hash: Mapped[str] = mapped_column(String(64))
    instance_type: Mapped[str] = mapped_column(String(32))
    allowed_envs: Mapped[list[str]] = mapped_column(JSON)
    updates: Mapped[bool] = mapped_column(Boolean)
    created_at: Mapped[int] = mapped_column(BigInteger)
    expires_at: Mapped[int] = mapped_column(BigInteger)
    used_at: Mapped[int | None] = mapped_column(BigInteger, nullable=True)


class App(Base):
    """A customer's app: what should run (desired) and what the network says it is (status)."""

    __tablename__ = "apps"

    app_id: Mapped[str] = mapped_column(String(42), primary_key=True)
    owner: Mapped[str] = mapped_column(String(42), index=True)
    name: Mapped[str] = mapped_column(String(63))
    instance_type: Mapped[str] = mapped_column(String(32))
    compose: Mapped[str] = mapped_column(Text)
    app_compose: Mapped[dict[str, Any]] = mapped_column(JSON)
    compose_hash: Mapped[str] = mapped_column(String(64))
    allowed_envs: Mapped[list[str]] = mapped_column(JSON)
    env_keys: Mapped[list[str]] = mapped_column(JSON)
    encrypted_env: Mapped[str] = mapped_column(Text)
    desired: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16), index=True)
    status_reason: Mapped[str] = mapped_column(Text, default="")
    version: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[int] = mapped_column(BigInteger)
    updated_at: Mapped[int] = mapped_column(BigInteger)
    deleted_at: Mapped[int | None] = mapped_column(BigInteger, nullable=True)


class Worker(Base):
    """A worker as it last described itself in a sync."""

    __tablename__ = "workers"

    address: Mapped[str] = mapped_column(String(42), primary_key=True)
    provider: Mapped[str] = mapped_column(String(42), index=True)
    runtime: Mapped[str] = mapped_column(String(16))
    simulated: Mapped[bool] = mapped_column(Boolean)
    vcpu: Mapped[int] = mapped_column(Integer)
    memory_mb: Mapped[int] = mapped_column(BigInteger)
    disk_gb: Mapped[int] = mapped_column(BigInteger)
    gpu_model: Mapped[int] = mapped_column(Integer)
    gpu_count: Mapped[int] = mapped_column(Integer)
    url: Mapped[str | None] = mapped_column(String(200), nullable=True)
    last_seen: Mapped[int] = mapped_column(BigInteger, index=True)
    online: Mapped[bool] = mapped_column(Boolean)


class Deployment(Base):
    """One placement of one app version on one worker; `ended_at` set when it is gone."""

    __tablename__ = "deployments"
    __table_args__ = (Index("ix_deployments_worker_active", "worker", "ended_at"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    app_id: Mapped[str] = mapped_column(String(42), index=True)
    worker: Mapped[str] = mapped_column(String(42))
    instance_type: Mapped[str] = mapped_column(String(32))
    state: Mapped[str] = mapped_column(String(16))
    boot_progress: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str] = mapped_column(Text, default="")
    ports: Mapped[dict[str, str]] = mapped_column(JSON)
    attestation: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    created_at: Mapped[int] = mapped_column(BigInteger)
    updated_at: Mapped[int] = mapped_column(BigInteger)
    ended_at: Mapped[int | None] = mapped_column(BigInteger, nullable=True)


class AppEvent(Base):
    """One step of an app's life, streamed over SSE; the id is the SSE event id."""

    __tablename__ = "app_events"

    id: Mapped[int] = mapped_column(EventId, primary_key=True, autoincrement=True)
    app_id: Mapped[str] = mapped_column(String(42), index=True)
    at: Mapped[int] = mapped_column(BigInteger)
    state: Mapped[str] = mapped_column(String(16))
    data: Mapped[dict[str, Any]] = mapped_column(JSON)


class Lease(Base):
    """A market lease the control plane opened for one app version on one provider.

    Amounts are decimal strings: wei exceed 64 bits. `last_state`/`last_runway` are what
    the billing watcher saw last (`veil.market.webhooks.LeaseSnapshot`), so a webhook
    fires once per crossing, whichever replica looks next."""

    __tablename__ = "leases"

    lease_id: Mapped[str] = mapped_column(String(66), primary_key=True)
    app_id: Mapped[str] = mapped_column(String(42), index=True)
    owner: Mapped[str] = mapped_column(String(42), index=True)
    provider: Mapped[str] = mapped_column(String(42))
    deployment_key: Mapped[str] = mapped_column(String(200))
    instance_type: Mapped[str] = mapped_column(String(32))
    rate: Mapped[str] = mapped_column(String(80))
    amount: Mapped[str] = mapped_column(String(80))
    tx: Mapped[str] = mapped_column(String(66))
    opened_at: Mapped[int] = mapped_column(BigInteger)
    closed_at: Mapped[int | None] = mapped_column(BigInteger, nullable=True, index=True)
    last_state: Mapped[int | None] = mapped_column(Integer, nullable=True)
    last_runway: Mapped[int | None] = mapped_column(BigInteger, nullable=True)


class BillingWebhook(Base):
    """A customer's URL for billing events; the secret signs deliveries (shown once)."""

    __tablename__ = "billing_webhooks"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    owner: Mapped[str] = mapped_column(String(42), index=True)
    url: Mapped[str] = mapped_column(String(500))
    secret: Mapped[str] = mapped_column(String(80))
    created_at: Mapped[int] = mapped_column(BigInteger)


class WebhookDelivery(Base):
    """One event to one URL, kept until delivered or given up: the retry schedule lives
    here, not in a thread, so a restart or another replica carries it on."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (Index("ix_webhook_deliveries_due", "status", "next_attempt_at"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    webhook_id: Mapped[str] = mapped_column(String(40), index=True)
    owner: Mapped[str] = mapped_column(String(42), index=True)
    kind: Mapped[str] = mapped_column(String(40))
    lease_id: Mapped[str] = mapped_column(String(66))
    body: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16))
    attempts: Mapped[int] = mapped_column(Integer)
    next_attempt_at: Mapped[int] = mapped_column(BigInteger)
    last_status: Mapped[int | None] = mapped_column(Integer, nullable=True)
    last_error: Mapped[str] = mapped_column(Text)
    created_at: Mapped[int] = mapped_column(BigInteger)
    delivered_at: Mapped[int | None] = mapped_column(BigInteger, nullable=True)


class RateWindow(Base):
    """Requests one client made in one fixed window: rate limits every replica shares."""

    __tablename__ = "rate_windows"

    key: Mapped[str] = mapped_column(String(100), primary_key=True)
    window_start: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    count: Mapped[int] = mapped_column(Integer)


# --- monitoring (issue 14): bounded by retention, see veil.services.cloud.monitoring ---


class AppLog(Base):
    """One log line of one service of an app; the id is the SSE event id of the log stream."""

    __tablename__ = "app_logs"
    __table_args__ = (Index("ix_app_logs_app_id_id", "app_id", "id"), Index("ix_app_logs_at", "at"))

    id: Mapped[int] = mapped_column(EventId, primary_key=True, autoincrement=True)
    app_id: Mapped[str] = mapped_column(String(42))
    service: Mapped[str] = mapped_column(String(63))
    #: When the worker saw the line, unix milliseconds.
    at: Mapped[int] = mapped_column(BigInteger)
    line: Mapped[str] = mapped_column(Text)


class AppMetric(Base):
    """One sample of an app (all its services summed; per service in `services`)."""

    __tablename__ = "app_metrics"
    __table_args__ = (
        Index("ix_app_metrics_app_id_at", "app_id", "at"),
        Index("ix_app_metrics_at", "at"),
    )

    id: Mapped[int] = mapped_column(EventId, primary_key=True, autoincrement=True)
    app_id: Mapped[str] = mapped_column(String(42))
    worker: Mapped[str] = mapped_column(String(42))
    at: Mapped[int] = mapped_column(BigInteger)
    cpu_pct: Mapped[float] = mapped_column(Float)
    memory_bytes: Mapped[int] = mapped_column(BigInteger)
    read_bytes: Mapped[int] = mapped_column(BigInteger)
    write_bytes: Mapped[int] = mapped_column(BigInteger)
    restarts: Mapped[int] = mapped_column(Integer)
    services: Mapped[dict[str, Any]] = mapped_column(JSON)
    gpus: Mapped[list[Any]] = mapped_column(JSON)


class WorkerMetric(Base):
    """One sample of a worker machine."""

    __tablename__ = "worker_metrics"
    __table_args__ = (
        Index("ix_worker_metrics_worker_at", "worker", "at"),
        Index("ix_worker_metrics_at", "at"),
    )

    id: Mapped[int] = mapped_column(EventId, primary_key=True, autoincrement=True)
    worker: Mapped[str] = mapped_column(String(42))
    at: Mapped[int] = mapped_column(BigInteger)
    cpu_pct: Mapped[float] = mapped_column(Float)
    memory_used_bytes: Mapped[int] = mapped_column(BigInteger)
    memory_total_bytes: Mapped[int] = mapped_column(BigInteger)
    disk_used_bytes: Mapped[int] = mapped_column(BigInteger)
    disk_total_bytes: Mapped[int] = mapped_column(BigInteger)
    net_rx_bytes: Mapped[int] = mapped_column(BigInteger)
    net_tx_bytes: Mapped[int] = mapped_column(BigInteger)
    gpus: Mapped[list[Any]] = mapped_column(JSON)


class AlertWebhook(Base):
    """Where an account's alerts go (app down, restarts, its workers offline), and the
    secret that signs them."""

    __tablename__ = "alert_webhooks"

    id: Mapped[str] = mapped_column(String(24), primary_key=True)
    owner: Mapped[str] = mapped_column(String(42), index=True)
    url: Mapped[str] = mapped_column(String(500))
    secret: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[int] = mapped_column(BigInteger)
