"""Who is asking: API keys (hashed, scoped, revocable) and Sign-In with Ethereum.

An account is an Ethereum address. SIWE proves control of one and yields an API key for
it; a key can mint narrower keys and revoke any of its account's keys. Keys are
`veil_` + 43 random URL-safe characters, shown once; the database holds their sha256
only, so a leaked database grants nothing. Nonces are rows: issued by any replica,
consumed (deleted) by whichever replica verifies, exactly once.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from veil.cloud.worker_auth import signer_of
from veil.errors import InputError
from veil.services.cloud import siwe
from veil.services.cloud.api_errors import ApiError
from veil.services.cloud.database import HotRead
from veil.services.cloud.models import ApiKey, SiweNonce
from veil.services.cloud.rate_limit import limit_client
from veil.services.cloud.schemas import ErrorBody, KeyOut, NewKeyIn, NewKeyOut, NonceOut, SiweIn
from veil.services.cloud.service import CloudState

SCOPES = ("apps:read", "apps:write", "keys:write")
KEY_PREFIX = "veil_"
ERRORS: dict[int | str, dict[str, Any]] = {code: {"model": ErrorBody} for code in (400, 401, 403)}

bearer = HTTPBearer(auto_error=False, description="An API key: `veil_...`")
router = APIRouter(tags=["auth"])


@dataclass(frozen=True)
class Principal:
    address: str
    scopes: frozenset[str]
    key_id: str


def state_of(request: Request) -> CloudState:
    state: CloudState = request.app.state.cloud
    return state


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def issue_key(
    session: Session, address: str, scopes: list[str], label: str, now: int
) -> tuple[ApiKey, str]:
    unknown = sorted(set(scopes) - set(SCOPES))
    if unknown:
        raise ApiError(400, "unknown_scope", f"unknown scope {unknown[0]!r} (known: {SCOPES})")
    secret = KEY_PREFIX + secrets.token_urlsafe(32)
    key = ApiKey(
        id="key_" + secrets.token_hex(8),
        address=address,
        secret_hash=digest(secret),
        scopes=" ".join(sorted(set(scopes))),
        label=label,
        created_at=now,
        revoked_at=None,
    )
    session.add(key)
    return key, secret


def key_out(key: ApiKey) -> KeyOut:
    return KeyOut(
        key_id=key.id,
        address=key.address,
        scopes=key.scopes.split(),
        label=key.label,
        created_at=key.created_at,
        revoked_at=key.revoked_at,
    )


_KEY_LOOKUP = HotRead(
    "SELECT id AS key_id, address AS key_address, scopes AS key_scopes, "
    "revoked_at AS key_revoked_at FROM api_keys WHERE secret_hash = :h"
)


def key_digest(credentials: HTTPAuthorizationCredentials | None) -> str:
    """The sha256 to look the presented key up by; refuses what cannot be a veil key."""
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise ApiError(401, "unauthorized", "send Authorization: Bearer <api key>")
    token = credentials.credentials
    if not token.startswith(KEY_PREFIX) or len(token) > 100:
        raise ApiError(401, "invalid_api_key", "not a veil API key")
    return digest(token)


def principal_of(row: Any | None, scope: str | None) -> Principal:
    """The caller from a key row (`key_*` columns; None: no such key), with `scope` required.

    Shared by the plain key check and the hot reads that join the key into their own
    query, so both refuse exactly the same keys with the same errors."""
    if row is None:
        raise ApiError(401, "invalid_api_key", "unknown API key")
    if row.key_revoked_at is not None:
        raise ApiError(401, "api_key_revoked", f"API key {row.key_id} was revoked")
    who = Principal(row.key_address, frozenset(row.key_scopes.split()), row.key_id)
    if scope is not None and scope not in who.scopes:
        raise ApiError(403, "insufficient_scope", f"this API key lacks the {scope} scope")
    return who


async def authenticate(
    request: Request, credentials: HTTPAuthorizationCredentials | None, scope: str | None = None
) -> Principal:
    """The key's account and scopes: one indexed read per request, never cached, so a
    revocation is seen at once by every replica."""
    h = key_digest(credentials)
    rows = await state_of(request).fetch(_KEY_LOOKUP, {"h": h})
    return principal_of(rows[0] if rows else None, scope)


async def principal(
    request: Request, credentials: HTTPAuthorizationCredentials | None = Depends(bearer)
) -> Principal:
    return await authenticate(request, credentials)


def scoped(scope: str):  # type: ignore[no-untyped-def]
    """A dependency: the caller, provided its key carries `scope`."""

    async def need(
        request: Request, credentials: HTTPAuthorizationCredentials | None = Depends(bearer)
    ) -> Principal:
        return await authenticate(request, credentials, scope)

    return need


def _domain(request: Request, state: CloudState) -> str:
    return state.config.siwe_domain or request.headers.get("host", "localhost")


@router.post("/v1/auth/siwe/nonce", response_model=NonceOut, responses={429: {"model": ErrorBody}})
def siwe_nonce(request: Request) -> NonceOut:
    """A single-use nonce to put in a Sign-In with Ethereum message."""
    state = state_of(request)
    limit_client(request, state, "siwe")
    now = state.now()
    nonce = secrets.token_hex(16)
    with state.sessions() as session, session.begin():
        session.execute(delete(SiweNonce).where(SiweNonce.expires_at < now))
        session.add(SiweNonce(nonce=nonce, expires_at=now + state.config.nonce_ttl))
    return NonceOut(
        nonce=nonce,
        expires_at=now + state.config.nonce_ttl,
        domain=_domain(request, state),
        chain_id=state.config.chain_id,
    )


@router.post("/v1/auth/siwe/verify", response_model=NewKeyOut, responses=ERRORS)
def siwe_verify(body: SiweIn, request: Request) -> NewKeyOut:
    """Check an EIP-4361 message and its signature; answer an API key for the address."""
    state = state_of(request)
    limit_client(request, state, "siwe")
    now = state.now()
    try:
        message = siwe.parse(body.message)
        siwe.check(message, domain=_domain(request, state), chain_id=state.config.chain_id, now=now)
        signer = siwe.signer(body.message, body.signature)
    except siwe.SiweError as error:
        raise ApiError(401, "siwe_invalid", str(error)) from None
    if signer != message.address:
        raise ApiError(401, "siwe_invalid", "signature: not made by the message's address")
    with state.sessions() as session, session.begin():
        used = session.execute(
            delete(SiweNonce).where(SiweNonce.nonce == message.nonce, SiweNonce.expires_at >= now)
        )
        if used.rowcount != 1:  # type: ignore[attr-defined]
            raise ApiError(401, "siwe_nonce_invalid", "Nonce: unknown, expired or already used")
        key, secret = issue_key(
            session, message.address, body.scopes or list(SCOPES), body.label, now
        )
    return NewKeyOut(api_key=secret, **key_out(key).model_dump())


@router.get("/v1/auth/keys", response_model=list[KeyOut], responses=ERRORS)
def list_keys(request: Request, who: Principal = Depends(principal)) -> list[KeyOut]:
    """The caller's account's keys (never their secrets)."""
    with state_of(request).sessions() as session:
        keys = session.scalars(
            select(ApiKey).where(ApiKey.address == who.address).order_by(ApiKey.created_at)
        ).all()
        return [key_out(key) for key in keys]


@router.post("/v1/auth/keys", response_model=NewKeyOut, responses=ERRORS)
def new_key(
    body: NewKeyIn, request: Request, who: Principal = Depends(scoped("keys:write"))
) -> NewKeyOut:
    """Mint another key for the caller's account, with at most the caller's scopes."""
    wider = sorted(set(body.scopes) - who.scopes)
    if wider and not set(wider) - set(SCOPES):
        raise ApiError(403, "insufficient_scope", f"cannot grant {wider[0]}: the caller lacks it")
    state = state_of(request)
    with state.sessions() as session, session.begin():
        key, secret = issue_key(session, who.address, body.scopes, body.label, state.now())
    return NewKeyOut(api_key=secret, **key_out(key).model_dump())


@router.delete(
    "/v1/auth/keys/{key_id}", response_model=KeyOut, responses={**ERRORS, 404: {"model": ErrorBody}}
)
def revoke_key(
    key_id: str, request: Request, who: Principal = Depends(scoped("keys:write"))
) -> KeyOut:
    """Revoke one of the account's keys (the caller's own included); it stops working at once."""
    state = state_of(request)
    with state.sessions() as session, session.begin():
        session.execute(
            update(ApiKey)
            .where(ApiKey.id == key_id, ApiKey.address == who.address, ApiKey.revoked_at.is_(None))
            .values(revoked_at=state.now())
        )
        key = session.get(ApiKey, key_id)
        if key is None or key.address != who.address:
            raise ApiError(404, "key_not_found", f"no API key {key_id} on this account")
        return key_out(key)


async def authenticated_worker(
    request: Request, tag: str, named: str, x_worker: str, x_timestamp: str, x_signature: str
) -> str:
    """The worker that signed this request (`veil.cloud.worker_auth`), checked for a fresh
    timestamp, a signature over exactly the body received, agreement with the worker the
    headers and the body (`named`) name, and activity in the registry."""
    state = state_of(request)
    if not x_timestamp.isdigit():
        raise ApiError(401, "bad_timestamp", "X-Veil-Timestamp must be unix seconds")
    stamp = int(x_timestamp)
    if abs(stamp - state.now()) > state.config.sync_skew:
        raise ApiError(
            401,
            "stale_timestamp",
            f"X-Veil-Timestamp is more than {state.config.sync_skew} s from the control"
            " plane's clock",
        )
    try:
        signer = signer_of(tag, stamp, await request.body(), x_signature)
    except InputError as error:
        raise ApiError(401, "bad_signature", str(error)) from None
    if signer.lower() != x_worker.lower() or signer.lower() != named.lower():
        raise ApiError(401, "bad_signature", "signature is not by the worker the body names")
    if not await run_in_threadpool(state.worker_active, signer):
        raise ApiError(403, "worker_not_active", f"worker {signer} is not active in the registry")
    return signer
