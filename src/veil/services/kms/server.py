"""The KMS's HTTP front (FastAPI): three routes, one error shape, a request id on everything.

Every refusal is `{code, message, request_id}` with the HTTP status of its kind and the
same id in `X-Request-Id`, so an operator can find the one log line that explains it. A
log line names the app, the worker and the outcome, never a key.
"""

from __future__ import annotations

import logging
import re
import uuid
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException

from veil.services.kms.service import KmsRefused, KmsState

log = logging.getLogger("veil.kms")

MAX_BODY = 1024 * 1024
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


class KeyRequestIn(BaseModel):
    worker: str = Field(description="The worker's address (its registry key).")
    ephemeral_public_key: str = Field(description="X25519 key (hex) the keys are sealed to.")
    quote: str = Field(description="TDX quote (hex); report data binds app id and the key.")
    event_log: Any = Field(None, description="dstack event log (JSON text or list).")
    vm_config: Any = Field(None, description="dstack VM config (JSON text or object).")
    worker_signature: str = Field(
        description="EIP-191 by the worker over "
        "veil-kms-key-request:{app_id}:{ephemeral_public_key}:{sha256(quote) hex}."
    )
    collateral: str | None = Field(None, description="Intel collateral JSON (real quotes).")


class KeysOut(BaseModel):
    encrypted_keys: str = Field(
        description='hex epk||iv||ct (dstack env format) over {"env_crypt_key", "app_key"}.'
    )
    app_id: str
    compose_hash: str | None
    simulated: bool


class EnvPubkeyOut(BaseModel):
    app_id: str
    public_key: str = Field(description="The app's X25519 env encryption key (hex).")
    signature: str = Field(
        description='secp256k1 r||s||v over keccak256("dstack-env-encrypt-pubkey:" + '
        "app_id + public_key), dstack's message."
    )
    signer: str = Field(description="The KMS address that signed (clients pin it).")
    timestamp: int
    signature_v1: str = Field(description="dstack's timestamped variant (8-byte BE time).")


class ErrorOut(BaseModel):
    code: str
    message: str
    request_id: str


ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorOut} for status in (400, 401, 403, 404, 409, 413, 503)
}


def _rid(request: Request) -> str:
    return str(getattr(request.state, "request_id", "") or uuid.uuid4().hex)


def _error(request: Request, status: int, code: str, message: str) -> JSONResponse:
    rid = _rid(request)
    return JSONResponse(
        {"code": code, "message": message, "request_id": rid},
        status_code=status,
        headers={"X-Request-Id": rid},
    )


def create_app(state: KmsState) -> FastAPI:
    app = FastAPI(
        title="veil KMS",
        version="1",
        description="Releases each app's keys only to a worker whose verified attestation "
        "shows a compose hash the app's AppAuth record allows and which the registry "
        "lists as active. Errors are {code, message, request_id}.",
    )

    @app.middleware("http")
    async def request_ids(request: Request, call_next: Any) -> Any:
        incoming = request.headers.get("x-request-id", "")
        request.state.request_id = incoming if _REQUEST_ID.match(incoming) else uuid.uuid4().hex
        length = request.headers.get("content-length")
        if length is not None and (not length.isdigit() or int(length) > MAX_BODY):
            return _error(request, 413, "too_large", f"body larger than {MAX_BODY} bytes")
        response = await call_next(request)
        response.headers["X-Request-Id"] = request.state.request_id
        return response

    @app.exception_handler(KmsRefused)
    async def refused(request: Request, error: KmsRefused) -> JSONResponse:
        return _error(request, error.status, error.code, error.message)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, error: RequestValidationError) -> JSONResponse:
        first = error.errors()[0] if error.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ()) if p != "body")
        return _error(request, 400, "bad_request", f"{where or 'body'}: {first.get('msg', '')}")

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, error: HTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed"}.get(error.status_code, "http_error")
        return _error(request, error.status_code, code, str(error.detail))

    @app.exception_handler(Exception)
    async def bug(request: Request, error: Exception) -> JSONResponse:
        log.exception("request %s failed", _rid(request))
        return _error(request, 500, "internal", "internal error; quote the request id")

    @app.get("/v1/kms/info", tags=["kms"])
    def info() -> dict[str, Any]:
        """The KMS's signer address, whether it is simulated, and its attestation policy."""
        return state.info()

    @app.get("/v1/apps/{app_id}/env-pubkey", response_model=EnvPubkeyOut, responses=ERRORS)
    def env_pubkey(app_id: str) -> dict[str, Any]:
        """The app's env encryption public key, signed by the KMS (dstack's message)."""
        return state.env_pubkey(app_id)

    @app.post("/v1/apps/{app_id}/keys", response_model=KeysOut, responses=ERRORS)
    def keys(app_id: str, body: KeyRequestIn, request: Request) -> dict[str, Any]:
        """Release the app's keys to an attested, active worker, sealed to its ephemeral key."""
        rid = _rid(request)
        try:
            answer, parsed = state.release(app_id, body.model_dump())
        except KmsRefused as error:
            log.info("request %s: app %s worker %s refused: %s", rid, app_id, body.worker,
                     error.code)  # fmt: skip
            raise
        log.info("request %s: app %s keys released to worker %s (compose %s)%s", rid,
                 parsed.app_id, parsed.worker, answer["compose_hash"],
                 " SIMULATED" if answer["simulated"] else "")  # fmt: skip
        return answer

    @app.get("/healthz", tags=["kms"])
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    return app
