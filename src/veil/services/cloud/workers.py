"""The worker's side: one signed sync call each way, and the gateway's route lookup.

A worker proves who it is by signing each sync (EIP-191 over
`veil-worker-sync:{timestamp}:{sha256(body) hex}`, within ±60 s) with the key the
registry knows it by; when a registry is configured it must also be `isActive` there.
The sync reports what the worker runs and answers what it should run: anything the
answer does not list, the worker removes. A worker silent for `worker_timeout` is
offline and the scheduler moves its apps.

Long-poll: `?wait=S&known=V` holds the answer up to S seconds (at most 30) while it would
still be V (the `version` of the worker's previous answer), so a worker learns of a new,
updated, stopped or deleted app within `LONG_POLL_STEP` of the commit instead of at its
next sync. The wait re-reads the database (no in-process signal), so it holds with several
replicas on one PostgreSQL as with SQLite; the report is applied once, before the wait.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import time
from typing import Any

from eth_utils import to_checksum_address
from fastapi import APIRouter, Depends, Header, Query, Request
from fastapi.security import HTTPAuthorizationCredentials
from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from veil.cloud.worker_auth import SYNC
from veil.services.cloud.api_errors import ApiError
from veil.services.cloud.auth import authenticated_worker, bearer, state_of
from veil.services.cloud.billing import AWAITING_LEASE, sync_lease
from veil.services.cloud.models import App, Deployment, Worker
from veil.services.cloud.scheduler import emit, set_status
from veil.services.cloud.schemas import DeploymentOut, ErrorBody, RouteOut, SyncIn, SyncOut
from veil.services.cloud.service import CloudState

router = APIRouter(tags=["workers"])
ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorBody} for code in (400, 401, 403, 404, 503)
}


#: How often a held sync re-reads the worker's deployments (one indexed query each).
LONG_POLL_STEP = 0.1
LONG_POLL_MAX = 30.0


def _apply(state: CloudState, body: SyncIn) -> SyncOut:
    now = state.now()
    worker_address = to_checksum_address(body.worker)
    with state.sessions() as session, session.begin():
        worker = session.get(Worker, worker_address)
        if worker is None:
            worker = Worker(address=worker_address)
            session.add(worker)
        worker.provider = to_checksum_address(body.provider)
        worker.runtime = body.runtime
        worker.simulated = body.simulated
        worker.vcpu = body.capacity.vcpu
        worker.memory_mb = body.capacity.memory_mb
        worker.disk_gb = body.capacity.disk_gb
        worker.gpu_model = body.capacity.gpu_model
        worker.gpu_count = body.capacity.gpu_count
        worker.url = body.address
        worker.last_seen = now
        worker.online = True
        mine = {
            d.id: d
            for d in session.scalars(
                select(Deployment).where(
                    Deployment.worker == worker_address, Deployment.ended_at.is_(None)
                )
            ).all()
        }
        for report in body.apps:
            deployment = mine.get(report.deployment_id)
            if deployment is None:
                continue  # not ours (any more): the answer omits it, so the worker removes it
            _record(session, deployment, report.model_dump(), now)
        return _answer(session, state, mine.values(), worker.provider, now)


def _answer(session: Session, state: CloudState, mine: Any, provider: str, now: int) -> SyncOut:
    answer = []
    for deployment in mine:
        app = session.get(App, deployment.app_id)
        if app is None or app.deleted_at is not None:
            continue
        lease_id = sync_lease(state, session, app, provider)
        if lease_id is None:  # billed, but its customer has not opened the lease yet
            if app.status_reason != AWAITING_LEASE:
                set_status(session, app, app.status or "scheduled", now, AWAITING_LEASE)
            continue
        answer.append(
            DeploymentOut(
                deployment_id=deployment.id,
                app_id=app.app_id,
                name=app.name,
                desired="stopped" if app.desired == "stopped" else "running",
                compose=app.compose,
                app_compose=app.app_compose,
                compose_hash=app.compose_hash,
                encrypted_env=app.encrypted_env,
                instance_type=deployment.instance_type,
                kms_url=state.config.worker_kms_url or state.config.kms_url,
                lease_id=lease_id,
            )
        )
    answer.sort(key=lambda d: d.deployment_id)
    canonical = json.dumps([d.model_dump() for d in answer], sort_keys=True).encode()
    return SyncOut(deployments=answer, version=hashlib.sha256(canonical).hexdigest())


def _current(state: CloudState, worker: str) -> SyncOut:
    """What the worker should run now, read only (a held sync's re-read)."""
    with state.sessions() as session:
        mine = session.scalars(
            select(Deployment).where(Deployment.worker == worker, Deployment.ended_at.is_(None))
        ).all()
        row = session.get(Worker, worker)
        provider = row.provider if row is not None else ""
        # read only: an awaiting-lease status noted here is dropped; the next full sync notes it
        return _answer(session, state, mine, provider, state.now())


def _record(session: Session, deployment: Deployment, report: dict[str, Any], now: int) -> None:
    """Keep what the worker says about one deployment; tell the stream what changed."""
    error = report.get("error") or ""
    changed = (
        deployment.state != report["state"]
        or deployment.boot_progress != report["boot_progress"]
        or deployment.error != error
    )
    deployment.state = report["state"]
    deployment.boot_progress = report["boot_progress"]
    deployment.error = error
    deployment.ports = {str(k): str(v) for k, v in report["ports"].items()}
    if report.get("attestation") is not None:
        deployment.attestation = report["attestation"]
    deployment.updated_at = now
    if not changed:
        return
    app = session.get(App, deployment.app_id)
    if app is None:
        return
    if app.status != report["state"] or report["state"] in ("pulling", "starting"):
        app.status = report["state"]
        app.status_reason = error
        app.updated_at = now
        extra: dict[str, Any] = {"boot_progress": report["boot_progress"]}
        if error:
            extra["error"] = error
        if report["state"] == "running":
            extra["ports"] = deployment.ports
        emit(session, app.app_id, report["state"], now, worker=deployment.worker, **extra)
    elif error:
        set_status(session, app, report["state"], now, error)


@router.post("/v1/workers/sync", response_model=SyncOut, responses=ERRORS)
async def sync(
    body: SyncIn,
    request: Request,
    x_veil_worker: str = Header(..., max_length=42),
    x_veil_timestamp: str = Header(..., max_length=20),
    x_veil_signature: str = Header(..., max_length=140),
    wait: float = Query(0.0, ge=0.0, le=LONG_POLL_MAX, description="Hold up to this many s."),
    known: str = Query("", max_length=64, description="The version the worker already has."),
) -> SyncOut:
    """A worker's report of what it runs; the answer is what it should run.

    With `wait` and `known`, the answer waits (up to `wait` s) for a change from `known`."""
    state = state_of(request)
    await authenticated_worker(
        request, SYNC, body.worker, x_veil_worker, x_veil_timestamp, x_veil_signature
    )
    answer = await run_in_threadpool(_apply, state, body)
    deadline = time.monotonic() + wait
    while answer.version == known and time.monotonic() < deadline:
        await asyncio.sleep(min(LONG_POLL_STEP, max(0.0, deadline - time.monotonic())))
        answer = await run_in_threadpool(_current, state, to_checksum_address(body.worker))
    return answer


def _gateway(
    request: Request, credentials: HTTPAuthorizationCredentials | None = Depends(bearer)
) -> None:
    token = state_of(request).config.gateway_token
    if not token:
        raise ApiError(503, "gateway_not_configured", "this control plane has no --gateway-token")
    given = credentials.credentials if credentials else ""
    if not hmac.compare_digest(given.encode(), token.encode()):
        raise ApiError(401, "unauthorized", "the gateway token is wrong")


@router.get(
    "/v1/internal/routes/{app_id}/{port}",
    response_model=RouteOut,
    responses=ERRORS,
    dependencies=[Depends(_gateway)],
)
def route(app_id: str, port: int, request: Request) -> RouteOut:
    """Where the gateway sends traffic for one of an app's published ports."""
    state = state_of(request)
    try:
        app_id = to_checksum_address(app_id)
    except ValueError:
        raise ApiError(404, "app_not_found", f"no app {app_id}") from None
    with state.sessions() as session:
        app = session.get(App, app_id)
        if app is None or app.deleted_at is not None:
            raise ApiError(404, "app_not_found", f"no app {app_id}")
        deployment = session.scalars(
            select(Deployment).where(Deployment.app_id == app_id, Deployment.ended_at.is_(None))
        ).first()
        if deployment is None or deployment.state != "running" or app.desired != "running":
            raise ApiError(503, "app_not_running", f"app {app_id} is not running")
        target = deployment.ports.get(str(port))
        if target is None:
            raise ApiError(404, "port_not_found", f"app {app_id} publishes no port {port}")
    return RouteOut(url=target if target.startswith("http") else f"http://{target}")
