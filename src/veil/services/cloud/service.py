"""The control plane's configuration and what a running replica holds (only handles).

A replica keeps no state of its own: a database engine, an HTTP client for the KMS, and
a cache of registry answers (a read-through cache of public chain data, which any replica
may hold independently without disagreeing with another for longer than its lifetime).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import httpx
from sqlalchemy import Connection, Engine
from sqlalchemy.orm import Session, sessionmaker
from starlette.concurrency import run_in_threadpool

from veil.services.cloud.database import HotRead, PgReads
from veil.services.cloud.scheduler import Scheduler

T = TypeVar("T")


@dataclass
class CloudConfig:
    db_url: str
    kms_url: str | None = None
    #: The KMS URL workers are told to use (default: kms_url).
    worker_kms_url: str | None = None
    gateway_token: str | None = None
    worker_timeout: int = 30
    provision_ttl: int = 600
    nonce_ttl: int = 600
    #: SIWE `domain` this server accepts; None: the request's Host header.
    siwe_domain: str | None = None
    chain_id: int = 31337
    #: `isActive(worker)` on the ComputeRegistry; None: no registry configured.
    is_active: Callable[[str], bool] | None = None
    registry_cache_seconds: float = 10.0
    scheduler_interval: float = 1.0
    run_scheduler: bool = True
    sync_skew: int = 60
    #: PostgreSQL connections each server process keeps for the hot reads (see PgReads): few,
    #: because they are async and each serves many requests in turn; 2 gave the best p99
    #: with the database on the same 2 cores (bench/cloud.py); raise it for a remote one.
    pg_read_connections: int = 2
    #: SIWE nonce and verify requests per client address per minute (0: no limit).
    auth_rate: int = 60
    clock: Callable[[], float] = time.time
    #: An HTTP client for the KMS (tests pass one bound to an in-process KMS).
    kms_client: httpx.Client | None = None
    #: veil.network.metrics.NetworkWatcher for /metrics and the console (None: no chain).
    network: Any = None
    #: The market (`veil.market.escrow.Escrow`) and the account that submits customers'
    #: signed lease requests; None: apps run unbilled (`GET .../billing` says so).
    escrow: Any = None
    operator: Any = None
    #: Seconds between the billing watcher's passes (lease states, webhook deliveries).
    billing_interval: float = 5.0
    #: `post(url, body, headers) -> status` for webhook deliveries (tests pass a fake).
    webhook_post: Callable[[str, bytes, dict[str, str]], int] | None = None


@dataclass
class CloudState:
    config: CloudConfig
    engine: Engine
    sessions: sessionmaker[Session]
    scheduler: Scheduler
    kms: httpx.Client
    registry_cache: dict[str, tuple[float, bool]] = field(default_factory=dict)
    #: The engine in autocommit mode, for the hot single-statement reads.
    reads: Engine | None = None
    #: PostgreSQL only: the event loop's own connections for `fetch`.
    pg_reads: PgReads | None = None

    def __post_init__(self) -> None:
        if self.reads is None:
            self.reads = self.engine.execution_options(isolation_level="AUTOCOMMIT")
        if self.pg_reads is None and self.engine.dialect.name == "postgresql":
            url = self.engine.url.render_as_string(hide_password=False)
            self.pg_reads = PgReads(url, size=self.config.pg_read_connections)

    def read_connection(self) -> Connection:
        assert self.reads is not None
        return self.reads.connect()

    async def read(self, fn: Callable[..., T], *args: Any) -> T:
        """Run a short read: inline on the event loop for SQLite (a local file read costs
        less than a thread hop), in the thread pool for PostgreSQL (a network round trip
        must not stall every other request on the loop)."""
        if self.engine.dialect.name == "sqlite":
            return fn(*args)
        return await run_in_threadpool(fn, *args)

    async def fetch(self, read: HotRead, params: dict[str, Any]) -> list[Any]:
        """The rows of one hot single-statement read: inline on the event loop for SQLite,
        over an async prepared statement for PostgreSQL (no thread hop, one round trip)."""
        if self.pg_reads is None:
            with self.read_connection() as connection:
                return list(connection.execute(read.text, params).all())
        return await self.pg_reads.fetch(read, params)

    def now(self) -> int:
        return int(self.config.clock())

    def worker_active(self, worker: str) -> bool:
        """The registry's `isActive`, remembered briefly so a sync loop is not a chain call."""
        check = self.config.is_active
        if check is None:
            return True
        now = time.monotonic()
        cached = self.registry_cache.get(worker)
        if cached is not None and now - cached[0] < self.config.registry_cache_seconds:
            return cached[1]
        answer = bool(check(worker))
        if len(self.registry_cache) > 100_000:
            self.registry_cache.clear()
        self.registry_cache[worker] = (now, answer)
        return answer

    def info(self) -> dict[str, Any]:
        return {
            "service": "veil-cloud",
            "chain_id": self.config.chain_id,
            "kms_url": self.config.worker_kms_url or self.config.kms_url,
            "registry": self.config.is_active is not None,
            # where apps are billed (None: unbilled), so a client signs leases there
            "market": self.config.escrow.market.address if self.config.escrow else None,
        }
