"""`create_app`: the FastAPI application a replica serves, with its scheduler thread."""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
from fastapi import FastAPI, Request

from veil.services.cloud import api_errors, apps, auth, billing, monitoring, workers
from veil.services.cloud.database import open_engine, session_factory, upgrade
from veil.services.cloud.scheduler import Scheduler
from veil.services.cloud.service import CloudConfig, CloudState

DESCRIPTION = """veil cloud control plane: deploy confidential docker-compose apps onto
attested workers. Customers authenticate with `Authorization: Bearer <api key>` (get one
with Sign-In with Ethereum at /v1/auth/siwe/*). Every error is `{code, message,
request_id}` with the same id in the `X-Request-Id` header."""


def build_state(config: CloudConfig) -> CloudState:
    engine = open_engine(config.db_url)
    upgrade(engine)
    sessions = session_factory(engine)
    scheduler = Scheduler(sessions, config.worker_timeout, config.clock)
    kms = config.kms_client or httpx.Client(timeout=10)
    return CloudState(config, engine, sessions, scheduler, kms)


def create_app(config: CloudConfig, state: CloudState | None = None) -> FastAPI:
    """The app; the database is upgraded to the newest schema before it answers."""
    state = state or build_state(config)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        stop = threading.Event()
        thread = None
        if config.run_scheduler:
            thread = threading.Thread(
                target=state.scheduler.run,
                args=(stop, config.scheduler_interval),
                name="veil-cloud-scheduler",
                daemon=True,
            )
            thread.start()
        billing_thread = billing.start_watcher(state, stop)
        try:
            yield
        finally:
            stop.set()
            state.scheduler.wake.set()
            if thread is not None:
                thread.join(timeout=5)
            if billing_thread is not None:
                billing_thread.join(timeout=5)
            if state.pg_reads is not None:
                state.pg_reads.close()

    app = FastAPI(
        title="veil cloud",
        version="1",
        description=DESCRIPTION,
        lifespan=lifespan,
    )
    app.state.cloud = state
    api_errors.install(app)
    app.add_middleware(api_errors.RequestIdMiddleware)
    app.include_router(auth.router)
    app.include_router(apps.router)
    app.include_router(workers.router)
    monitoring.install(app)
    app.include_router(billing.router)

    @app.get("/v1/info", tags=["meta"])
    def info(request: Request) -> dict[str, Any]:
        """What this control plane is connected to."""
        cloud: CloudState = request.app.state.cloud
        return cloud.info()

    @app.get("/healthz", tags=["meta"])
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    return app
