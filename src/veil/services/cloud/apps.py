"""The customer's side: provision, commit, lifecycle, state stream, attestation.

Deploys come in two phases, as on Phala Cloud. Provision checks everything that can be
checked before secrets exist (compose, instance type, env names, capacity), fixes the
app-compose document and its hash, and hands back the KMS-signed key the customer
encrypts secrets to. Commit, exactly once per provision and before it expires, stores the
encrypted env (opaque here) and queues the app for placement. Deploying a name that
exists is an update, and the answer says so.
"""

from __future__ import annotations

import asyncio
import json
import re
import secrets
from collections.abc import AsyncIterator
from typing import Any

import httpx
import orjson
from eth_utils import to_checksum_address
from fastapi import APIRouter, Depends, Header, Query, Request
from fastapi.responses import Response
from fastapi.security import HTTPAuthorizationCredentials
from sqlalchemy import select, update
from sqlalchemy.orm import Session
from sse_starlette.sse import EventSourceResponse
from starlette.concurrency import run_in_threadpool

from veil.cloud.app_auth import app_id_for
from veil.cloud.compose_spec import app_compose, app_compose_hash, parse_compose
from veil.cloud.instance_types import instance_type
from veil.errors import InputError
from veil.services.cloud.api_errors import ApiError
from veil.services.cloud.auth import (
    Principal,
    authenticate,
    bearer,
    key_digest,
    principal_of,
    scoped,
    state_of,
)
from veil.services.cloud.database import HotRead
from veil.services.cloud.models import App, AppEvent, Deployment, Provision
from veil.services.cloud.scheduler import (
    active_deployment,
    emit,
    end_deployments,
    set_status,
)
from veil.services.cloud.schemas import (
    AppOut,
    AttestationOut,
    CommitIn,
    ErrorBody,
    ProvisionIn,
    ProvisionOut,
)
from veil.services.cloud.service import CloudState

router = APIRouter(tags=["apps"])
READ = scoped("apps:read")
WRITE = scoped("apps:write")
_ENV_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_VAR_DEFAULTED = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*):?-[^}]*\}")
ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorBody} for code in (400, 401, 403, 404, 409, 410, 502, 503)
}
#: Seconds between polls of the event table by an open stream; keepalive every 15 s.
STREAM_POLL = 0.25
KEEPALIVE = 15


def app_id_of(owner: str, name: str) -> str:
    """`AppAuth.appIdOf(owner, keccak256(name))`: keccak256(abi.encode(owner, salt))[12:]."""
    return to_checksum_address(app_id_for(owner, name))


def _normal_app_id(app_id: str) -> str:
    try:
        return to_checksum_address(app_id)
    except ValueError:
        raise ApiError(404, "app_not_found", f"no app {app_id}") from None


def owned_app(session: Session, who: Principal, app_id: str) -> App:
    """The caller's app; another account's app is as absent as a missing one (no leak)."""
    app = session.get(App, _normal_app_id(app_id))
    if app is None or app.owner != who.address or app.deleted_at is not None:
        raise ApiError(404, "app_not_found", f"no app {app_id}")
    return app


def app_view(app: App, deployment: Deployment | None) -> dict[str, Any]:
    """The AppOut shape as a plain dict (reads skip re-validating what the DB holds)."""
    simulated = None
    if deployment is not None and deployment.attestation is not None:
        simulated = bool(deployment.attestation.get("simulated"))
    return {
        "app_id": app.app_id,
        "name": app.name,
        "owner": app.owner,
        "instance_type": app.instance_type,
        "compose_hash": app.compose_hash,
        "allowed_envs": app.allowed_envs,
        "env_keys": app.env_keys,
        "desired": "stopped" if app.desired == "stopped" else "running",
        "status": app.status,
        "status_reason": app.status_reason,
        "boot_progress": deployment.boot_progress if deployment else 0,
        "error": deployment.error if deployment else "",
        "worker": deployment.worker if deployment else None,
        "deployment_id": deployment.id if deployment else None,
        "simulated": simulated,
        "ports": deployment.ports if deployment else {},
        "version": app.version,
        "created_at": app.created_at,
        "updated_at": app.updated_at,
    }


def _json(body: Any) -> Response:
    return Response(orjson.dumps(body), media_type="application/json")


def app_out(session: Session, app: App) -> AppOut:
    return AppOut(**app_view(app, active_deployment(session, app.app_id)))


_APP_COLUMNS = (
    "a.app_id, a.name, a.owner, a.instance_type, a.compose_hash, a.allowed_envs, a.env_keys, "
    "a.desired, a.status, a.status_reason, a.version, a.created_at, a.updated_at, "
    "d.id AS deployment_id, d.worker, d.boot_progress, d.error, d.ports, d.attestation"
)
_APPS_QUERY = (
    f"SELECT {_APP_COLUMNS} FROM apps a LEFT JOIN deployments d "
    "ON d.app_id = a.app_id AND d.ended_at IS NULL "
    "WHERE a.owner = :owner AND a.deleted_at IS NULL"
)
_JSON = ("allowed_envs", "env_keys", "ports", "attestation")
_ALL_APPS = HotRead(_APPS_QUERY + " ORDER BY a.created_at, a.app_id", _JSON)
#: The key check and the app read in one round trip: the key's row, with the app's columns
#: (NULL when the account has no such live app) joined on the key's own address.
_KEY_AND_APP = HotRead(
    "SELECT k.id AS key_id, k.address AS key_address, k.scopes AS key_scopes, "
    f"k.revoked_at AS key_revoked_at, {_APP_COLUMNS} FROM api_keys k "
    "LEFT JOIN apps a ON a.owner = k.address AND a.app_id = :app_id AND a.deleted_at IS NULL "
    "LEFT JOIN deployments d ON d.app_id = a.app_id AND d.ended_at IS NULL "
    "WHERE k.secret_hash = :h",
    _JSON,
)


def _row_view(row: Any) -> dict[str, Any]:
    attestation = row.attestation
    deployed = row.deployment_id is not None
    return {
        "app_id": row.app_id,
        "name": row.name,
        "owner": row.owner,
        "instance_type": row.instance_type,
        "compose_hash": row.compose_hash,
        "allowed_envs": row.allowed_envs,
        "env_keys": row.env_keys,
        "desired": "stopped" if row.desired == "stopped" else "running",
        "status": row.status,
        "status_reason": row.status_reason,
        "boot_progress": row.boot_progress if deployed else 0,
        "error": row.error if deployed else "",
        "worker": row.worker,
        "deployment_id": row.deployment_id,
        "simulated": bool(attestation.get("simulated")) if attestation else None,
        "ports": (row.ports or {}) if deployed else {},
        "version": row.version,
        "created_at": row.created_at,
        "updated_at": row.updated_at,
    }


def _env_public_key(state: CloudState, app_id: str) -> dict[str, str]:
    url = state.config.kms_url
    if not url:
        raise ApiError(503, "kms_not_configured", "this control plane has no --kms-url")
    try:
        answer = state.kms.get(f"{url.rstrip('/')}/v1/apps/{app_id}/env-pubkey")
    except httpx.HTTPError as error:
        raise ApiError(502, "kms_unavailable", f"KMS {url}: {type(error).__name__}") from None
    if answer.status_code != 200:
        raise ApiError(
            502, "kms_refused", f"KMS answered {answer.status_code}: {answer.text[:200]}"
        )
    try:
        body = answer.json()
        return {k: str(body[k]) for k in ("public_key", "signature", "signer")}
    except (ValueError, KeyError, TypeError):
        raise ApiError(502, "kms_bad_answer", "KMS env-pubkey answer lacks a field") from None


@router.post("/v1/apps/provision", response_model=ProvisionOut, responses=ERRORS)
def provision(body: ProvisionIn, request: Request, who: Principal = Depends(WRITE)) -> ProvisionOut:
    """Phase one: check the app, fix its compose hash, hand out the KMS-signed env key."""
    state = state_of(request)
    now = state.now()
    try:
        spec = parse_compose(body.compose)
    except InputError as error:
        raise ApiError(400, "invalid_compose", str(error)) from None
    try:
        kind = instance_type(body.instance_type)
    except InputError as error:
        raise ApiError(400, "unknown_instance_type", str(error)) from None
    bad = [key for key in body.allowed_envs if not _ENV_KEY.match(key)]
    if bad:
        raise ApiError(400, "invalid_env_key", f"allowed_envs: {bad[0]!r} is not an env name")
    defaulted = set(_VAR_DEFAULTED.findall(body.compose))
    missing = sorted(spec.env_references() - defaulted - set(body.allowed_envs))
    if missing:
        raise ApiError(
            400,
            "env_not_allowed",
            f"compose references ${{{missing[0]}}} but allowed_envs does not list it "
            f"(add it, or give it a default: ${{{missing[0]}:-value}})",
            {"missing": missing},
        )
    document = app_compose(body.name, body.compose, body.allowed_envs)
    app_id = app_id_of(who.address, body.name)
    with state.sessions() as session:
        fit = state.scheduler.can_ever_fit(session, kind)
        if fit.worker is None:
            raise ApiError(409, "no_capacity", f"{kind.name}: {fit.reason}")
        existing = session.get(App, app_id)
        updates = existing is not None and existing.deleted_at is None
    key = _env_public_key(state, app_id)
    provision_id = "prov_" + secrets.token_hex(16)
    expires = now + state.config.provision_ttl
    with state.sessions() as session, session.begin():
        session.add(
            Provision(
                id=provision_id,
                app_id=app_id,
                owner=who.address,
                name=body.name,
                compose=body.compose,
                app_compose=document,
                compose_hash=app_compose_hash(document),
                instance_type=kind.name,
                allowed_envs=document["allowed_envs"],
                updates=updates,
                created_at=now,
                expires_at=expires,
            )
        )
    return ProvisionOut(
        provision_id=provision_id,
        app_id=app_id,
        compose_hash=app_compose_hash(document),
        app_compose=document,
        env_public_key=key["public_key"],
        env_public_key_signature=key["signature"],
        kms_signer=key["signer"],
        expires_at=expires,
        updates=updates,
    )


@router.post("/v1/apps/{app_id}/commit", response_model=AppOut, responses=ERRORS)
def commit(
    app_id: str, body: CommitIn, request: Request, who: Principal = Depends(WRITE)
) -> AppOut:
    """Phase two: store the encrypted env and queue the app (once per provision)."""
    state = state_of(request)
    now = state.now()
    app_id = _normal_app_id(app_id)
    bad = [key for key in body.env_keys if not _ENV_KEY.match(key)]
    if bad:
        raise ApiError(400, "invalid_env_key", f"env_keys: {bad[0]!r} is not an env name")
    if bool(body.env_keys) != bool(body.encrypted_env):
        raise ApiError(400, "invalid_env", "encrypted_env and env_keys come together")
    with state.sessions() as session, session.begin():
        prov = session.get(Provision, body.provision_id)
        if prov is None or prov.owner != who.address or prov.app_id != app_id:
            raise ApiError(404, "provision_not_found", f"no provision {body.provision_id}")
        if prov.used_at is not None:
            raise ApiError(409, "provision_used", f"provision {prov.id} was already committed")
        if prov.expires_at <= now:
            raise ApiError(
                410, "provision_expired", f"provision {prov.id} expired; provision again"
            )
        keys = sorted(set(body.env_keys))
        allowed = set(prov.allowed_envs)
        unexpected = [key for key in keys if key not in allowed]
        if unexpected:
            raise ApiError(
                409 if prov.updates else 400,
                "env_keys_drift" if prov.updates else "env_key_not_allowed",
                f"env key {unexpected[0]} is not in allowed_envs {sorted(allowed)}",
                {"unexpected": unexpected, "missing": sorted(allowed - set(keys))},
            )
        if prov.updates and set(keys) != allowed:
            missing = sorted(allowed - set(keys))
            raise ApiError(
                409,
                "env_keys_drift",
                f"update provisioned env keys {sorted(allowed)} but the env supplies {keys}: "
                f"missing {missing}; send every provisioned key or provision again",
                {"unexpected": [], "missing": missing},
            )
        claimed = session.execute(
            update(Provision)
            .where(Provision.id == prov.id, Provision.used_at.is_(None))
            .values(used_at=now)
        )
        if claimed.rowcount != 1:  # type: ignore[attr-defined]
            raise ApiError(409, "provision_used", f"provision {prov.id} was already committed")
        app = session.get(App, app_id)
        fresh = app is None or app.deleted_at is not None
        if app is None:
            app = App(app_id=app_id, owner=who.address, created_at=now, updated_at=now, version=0)
            session.add(app)
        elif app.deleted_at is not None:
            app.created_at, app.deleted_at, app.version = now, None, 0
        app.name = prov.name
        app.instance_type = prov.instance_type
        app.compose = prov.compose
        app.app_compose = prov.app_compose
        app.compose_hash = prov.compose_hash
        app.allowed_envs = prov.allowed_envs
        app.env_keys = keys
        app.encrypted_env = body.encrypted_env.removeprefix("0x")
        app.desired = "running"
        app.version = (app.version or 0) + 1
        app.status = ""
        app.status_reason = ""
        end_deployments(session, app_id, now)
        emit(
            session,
            app_id,
            "provisioning",
            now,
            version=app.version,
            compose_hash=app.compose_hash,
            update=not fresh,
        )
        set_status(session, app, "pending", now)
    state.scheduler.nudge()
    with state.sessions() as session:
        return app_out(session, owned_app(session, who, app_id))


@router.get("/v1/apps", response_model=list[AppOut], responses=ERRORS)
async def list_apps(request: Request, who: Principal = Depends(READ)) -> Response:
    """The caller's apps (never another account's)."""
    rows = await state_of(request).fetch(_ALL_APPS, {"owner": who.address})
    return _json([_row_view(row) for row in rows])


@router.get("/v1/apps/{app_id}", response_model=AppOut, responses=ERRORS)
async def get_app(
    app_id: str,
    request: Request,
    credentials: HTTPAuthorizationCredentials | None = Depends(bearer),
) -> Response:
    """One app with its current deployment: status, boot progress or error, worker, ports.

    The hottest read, so the key check and the app read are one prepared query (one round
    trip on PostgreSQL; `CloudState.fetch`); refusals match every other `apps:read` route."""
    h = key_digest(credentials)
    try:
        normal = _normal_app_id(app_id)
    except ApiError:
        await authenticate(request, credentials, "apps:read")  # a bad key is refused first
        raise
    rows = await state_of(request).fetch(_KEY_AND_APP, {"h": h, "app_id": normal})
    principal_of(rows[0] if rows else None, "apps:read")
    if rows[0].app_id is None:
        raise ApiError(404, "app_not_found", f"no app {app_id}")
    return _json(_row_view(rows[0]))


@router.delete("/v1/apps/{app_id}", response_model=AppOut, responses=ERRORS)
def delete_app(app_id: str, request: Request, who: Principal = Depends(WRITE)) -> AppOut:
    """Stop and remove the app everywhere; its name may be deployed again later."""
    state = state_of(request)
    now = state.now()
    with state.sessions() as session, session.begin():
        app = owned_app(session, who, app_id)
        out = app_out(session, app)
        end_deployments(session, app.app_id, now)
        app.deleted_at = now
        app.desired = "stopped"
        set_status(session, app, "deleted", now)
    return out.model_copy(update={"status": "deleted", "desired": "stopped"})


def _lifecycle(app_id: str, request: Request, who: Principal, action: str) -> AppOut:
    state = state_of(request)
    now = state.now()
    with state.sessions() as session, session.begin():
        app = owned_app(session, who, app_id)
        deployment = active_deployment(session, app.app_id)
        if action == "stop":
            app.desired = "stopped"
            app.updated_at = now
            emit(session, app.app_id, "stopping", now)
        elif action == "start":
            app.desired = "running"
            app.updated_at = now
            emit(session, app.app_id, "starting", now)
            if deployment is None and app.status != "pending":
                set_status(session, app, "pending", now)
        else:  # restart: a fresh deployment (new id) so the worker boots it anew
            app.desired = "running"
            end_deployments(session, app.app_id, now)
            emit(session, app.app_id, "restarting", now)
            app.status = "restarting"
            set_status(session, app, "pending", now)
    if action != "stop":
        state.scheduler.nudge()
    with state.sessions() as session:
        return app_out(session, owned_app(session, who, app_id))


@router.post("/v1/apps/{app_id}/stop", response_model=AppOut, responses=ERRORS)
def stop_app(app_id: str, request: Request, who: Principal = Depends(WRITE)) -> AppOut:
    """Stop the app's services; its placement (and disk) is kept for a start."""
    return _lifecycle(app_id, request, who, "stop")


@router.post("/v1/apps/{app_id}/start", response_model=AppOut, responses=ERRORS)
def start_app(app_id: str, request: Request, who: Principal = Depends(WRITE)) -> AppOut:
    return _lifecycle(app_id, request, who, "start")


@router.post("/v1/apps/{app_id}/restart", response_model=AppOut, responses=ERRORS)
def restart_app(app_id: str, request: Request, who: Principal = Depends(WRITE)) -> AppOut:
    """Boot the app again from scratch (a new deployment id)."""
    return _lifecycle(app_id, request, who, "restart")


@router.get("/v1/apps/{app_id}/attestation", response_model=AttestationOut, responses=ERRORS)
def attestation(app_id: str, request: Request, who: Principal = Depends(READ)) -> AttestationOut:
    """The running CVM's quote, event log and identity, for `veil attest verify`."""
    with state_of(request).sessions() as session:
        app = owned_app(session, who, app_id)
        deployment = active_deployment(session, app.app_id)
        if deployment is None or not deployment.attestation:
            raise ApiError(409, "no_attestation", f"app {app.app_id} has no running instance yet")
        evidence = deployment.attestation
        return AttestationOut(
            quote=str(evidence.get("quote", "")),
            event_log=evidence.get("event_log"),
            vm_config=evidence.get("vm_config"),
            compose_hash=str(evidence.get("compose_hash") or app.compose_hash),
            os_image_hash=evidence.get("os_image_hash"),
            worker=deployment.worker,
            simulated=bool(evidence.get("simulated", False)),
        )


def _events_after(state: CloudState, app_id: str, after: int) -> list[AppEvent]:
    with state.sessions() as session:
        return list(
            session.scalars(
                select(AppEvent)
                .where(AppEvent.app_id == app_id, AppEvent.id > after)
                .order_by(AppEvent.id)
                .limit(500)
            ).all()
        )


@router.get(
    "/v1/apps/{app_id}/events",
    responses={
        **ERRORS,
        200: {"content": {"text/event-stream": {}}, "description": "server-sent events"},
    },
)
async def events(
    app_id: str,
    request: Request,
    who: Principal = Depends(READ),
    follow: bool = Query(True, description="Keep the stream open for new events."),
    last_event_id: str | None = Header(None, alias="Last-Event-ID"),
) -> EventSourceResponse:
    """The app's life as server-sent events: provisioning, placement, boot progress, running,
    the boot error; resume with Last-Event-ID. Ends after `deleted` (or at once, follow=0)."""
    state = state_of(request)

    def check() -> str:
        with state.sessions() as session:
            app = session.get(App, _normal_app_id(app_id))
            if app is None or app.owner != who.address:
                raise ApiError(404, "app_not_found", f"no app {app_id}")
            return app.app_id

    real_id = await run_in_threadpool(check)
    after = int(last_event_id) if last_event_id and last_event_id.isdigit() else 0

    async def stream() -> AsyncIterator[dict[str, str]]:
        nonlocal after
        while True:
            batch = await run_in_threadpool(_events_after, state, real_id, after)
            for item in batch:
                after = item.id
                yield {
                    "id": str(item.id),
                    "event": "state",
                    "data": json.dumps({"at": item.at, **item.data}),
                }
                if item.state == "deleted":
                    return
            if not follow and len(batch) < 500:
                return
            if not batch:
                await asyncio.sleep(STREAM_POLL)

    return EventSourceResponse(stream(), ping=KEEPALIVE)
