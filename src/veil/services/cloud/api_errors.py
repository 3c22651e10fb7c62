"""One error shape for every answer: `{code, message, request_id}` and `X-Request-Id`.

Customers of Phala Cloud complained about errors without codes or request ids; here a
validation error, an unknown route, a refused signature and a bug all answer in the
same shape, and a bug never shows its traceback (it is logged with the request id).
"""

from __future__ import annotations

import logging
import re
import uuid
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger("veil.cloud")

INTERNAL = "internal error; quote the request id when reporting it"
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
_STATUS_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    410: "gone",
    413: "too_large",
    415: "unsupported_media_type",
    429: "rate_limited",
    503: "unavailable",
}


class ApiError(Exception):
    """A refusal the client can act on: HTTP status, a stable code, one clear line."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        details: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.headers = headers
        self.status = status
        self.code = code
        self.message = message
        self.details = details


def request_id(request: Request) -> str:
    return str(request.scope.get("veil.request_id") or uuid.uuid4().hex)


def error_body(request: Request, code: str, message: str, **extra: Any) -> dict[str, Any]:
    return {"code": code, "message": message, "request_id": request_id(request), **extra}


class RequestIdMiddleware:
    """Adopts a sane incoming X-Request-Id or makes one; echoes it on every response."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = ""
        for name, value in scope.get("headers", ()):
            if name == b"x-request-id":
                incoming = value.decode("latin-1")
                break
        rid = incoming if _REQUEST_ID.match(incoming) else uuid.uuid4().hex
        scope["veil.request_id"] = rid
        header = (b"x-request-id", rid.encode())

        started = False

        async def send_with_id(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                message["headers"] = [*message.get("headers", []), header]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except Exception:
            # A bug: logged with the request id, answered in the one shape, no traceback.
            log.exception("request %s failed", rid)
            if started:
                return
            body = orjson.dumps({"code": "internal_error", "message": INTERNAL, "request_id": rid})
            await send_with_id(
                {
                    "type": "http.response.start",
                    "status": 500,
                    "headers": [(b"content-type", b"application/json")],
                }
            )
            await send({"type": "http.response.body", "body": body})


def install(app: FastAPI) -> None:
    """Route every error through the one shape."""

    @app.exception_handler(ApiError)
    async def _api_error(request: Request, error: ApiError) -> JSONResponse:
        extra = {"details": error.details} if error.details is not None else {}
        return JSONResponse(
            error_body(request, error.code, error.message, **extra),
            status_code=error.status,
            headers=error.headers,
        )

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, error: RequestValidationError) -> JSONResponse:
        problems = []
        for item in error.errors()[:5]:
            where = ".".join(str(part) for part in item.get("loc", ()) if part != "body")
            problems.append(f"{where or 'body'}: {item.get('msg', 'invalid')}")
        message = "; ".join(problems) or "the request is not valid"
        return JSONResponse(error_body(request, "invalid_request", message), status_code=422)

    @app.exception_handler(HTTPException)
    async def _http(request: Request, error: HTTPException) -> JSONResponse:
        code = _STATUS_CODES.get(error.status_code, "error")
        message = str(error.detail) if error.detail else code.replace("_", " ")
        return JSONResponse(
            error_body(request, code, message),
            status_code=error.status_code,
            headers=getattr(error, "headers", None),
        )
