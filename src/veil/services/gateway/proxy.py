"""Route `<app_id>-<port>.<domain>` and `/apps/<app_id>/<port>/...` to the worker running it.

The gateway holds no state of its own: it asks the control plane where an app's port is
(`GET /v1/internal/routes/{app_id}/{port}`, bearer gateway token) and keeps the answer a
few seconds, so a rescheduled app is reached at its new worker within `cache_ttl` and any
number of gateway replicas can run side by side. Bodies stream both ways (a large upload
or a token stream is never buffered), hop-by-hop headers stay on their hop, and the app
learns the caller through `X-Forwarded-For/Proto/Host`. WebSocket connections are piped
message by message in both directions.

Every error the gateway itself answers is `{code, message, request_id}` with the
`X-Request-Id` header: 404 `app_not_found`/`port_not_found`/`no_route`, 503
`app_not_running`, 502 `upstream_unreachable` (the worker did not answer) or
`control_plane_unreachable`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import time
import uuid
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import httpx
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidURI

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

_HOST_LABEL = re.compile(r"^(?:0x)?([0-9a-fA-F]{40})-([0-9]{1,5})$")
_APP_PATH = re.compile(r"^/apps/(?:0x)?([0-9a-fA-F]{40})/([0-9]{1,5})(/.*)?$")
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,128}$")
#: Headers that describe one connection, never forwarded (RFC 9110, section 7.6.1).
HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
    }
)


class GatewayError(Exception):
    """An answer the gateway gives itself: HTTP status, code and message."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


@dataclass(frozen=True)
class Target:
    app_id: str
    port: int
    path: str  # path and query to request on the app


def parse_target(scope: Scope, domain: str | None) -> Target:
    """Which app and port a request is for: by Host under `domain`, else by path."""
    path = scope.get("path", "/") or "/"
    raw_path = scope.get("raw_path")
    if raw_path:  # keep the client's encoding of the path (e.g. %2F) as it sent it
        path = raw_path.decode("latin-1")
    query = scope.get("query_string", b"").decode("latin-1")
    suffix = f"?{query}" if query else ""
    host = _header(scope, b"host") or ""
    host = host.rsplit(":", 1)[0] if not host.endswith("]") else host
    if domain:
        tail = "." + domain.lower().strip(".")
        if host.lower().endswith(tail):
            label = host[: -len(tail)]
            match = _HOST_LABEL.match(label)
            if match is None:
                raise GatewayError(404, "no_route", f"host {host}: expected <app_id>-<port>{tail}")
            return Target(_app_id(match.group(1)), _port(match.group(2)), path + suffix)
    match = _APP_PATH.match(path)
    if match is None:
        raise GatewayError(
            404, "no_route", "expected /apps/<app_id>/<port>/... or host <app_id>-<port>.<domain>"
        )
    return Target(_app_id(match.group(1)), _port(match.group(2)), (match.group(3) or "/") + suffix)


def _app_id(hex_digits: str) -> str:
    return "0x" + hex_digits.lower()


def _port(text: str) -> int:
    port = int(text)
    if not 1 <= port <= 65535:
        raise GatewayError(404, "no_route", f"port {port} is outside 1-65535")
    return port


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key.lower() == name:
            return str(value.decode("latin-1"))
    return None


@dataclass
class RouteTable:
    """Where each (app, port) runs, as the control plane says, cached `ttl` seconds."""

    control_plane: str
    token: str
    ttl: float = 3.0
    timeout: float = 5.0
    clock: Callable[[], float] = time.monotonic
    transport: httpx.AsyncBaseTransport | None = None
    _cache: dict[tuple[str, int], tuple[str, float]] = field(default_factory=dict, init=False)
    _client: httpx.AsyncClient | None = field(default=None, init=False)

    def client(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = httpx.AsyncClient(timeout=self.timeout, transport=self.transport)
        return self._client

    async def resolve(self, app_id: str, port: int) -> str:
        key = (app_id, port)
        cached = self._cache.get(key)
        if cached is not None and cached[1] > self.clock():
            return cached[0]
        url = f"{self.control_plane.rstrip('/')}/v1/internal/routes/{quote(app_id)}/{port}"
        try:
            response = await self.client().get(
                url, headers={"Authorization": f"Bearer {self.token}"}
            )
        except httpx.HTTPError as error:
            raise GatewayError(
                502, "control_plane_unreachable", f"control plane did not answer ({error})"
            ) from None
        try:
            body = response.json()
        except ValueError:
            body = {}
        if not isinstance(body, dict):
            body = {}
        url_given = body.get("url")
        if response.status_code == 200 and isinstance(url_given, str):
            target: str = url_given.rstrip("/")
            if not target.startswith(("http://", "https://")):
                raise GatewayError(502, "bad_route", f"control plane gave {target!r}")
            self._cache[key] = (target, self.clock() + self.ttl)
            return target
        self._cache.pop(key, None)
        if response.status_code in (404, 503) and "code" in body:
            raise GatewayError(response.status_code, str(body["code"]), str(body.get("message")))
        raise GatewayError(
            502, "control_plane_error", f"control plane answered HTTP {response.status_code}"
        )

    def forget(self, app_id: str, port: int) -> None:
        """Drop a route whose upstream did not answer: the app may have moved."""
        self._cache.pop((app_id, port), None)

    async def close(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None


@dataclass
class Gateway:
    """The ASGI application."""

    routes: RouteTable
    domain: str | None = None
    upstream_timeout: float = 300.0
    _client: httpx.AsyncClient | None = field(default=None, init=False)

    def client(self) -> httpx.AsyncClient:
        if self._client is None:
            timeout = httpx.Timeout(self.upstream_timeout, connect=5.0)
            self._client = httpx.AsyncClient(timeout=timeout, follow_redirects=False)
        return self._client

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
        elif scope["type"] == "http":
            await self._http(scope, receive, send)
        elif scope["type"] == "websocket":
            await self._websocket(scope, receive, send)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.routes.close()
                if self._client is not None:
                    await self._client.aclose()
                await send({"type": "lifespan.shutdown.complete"})
                return

    # --- HTTP ------------------------------------------------------------------------

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        request_id = _request_id(scope)
        try:
            target = parse_target(scope, self.domain)
            upstream = await self.routes.resolve(target.app_id, target.port)
        except GatewayError as error:
            await _error(send, error, request_id)
            return
        headers = _forward_headers(scope, request_id)

        async def body() -> Any:
            while True:
                message = await receive()
                if message["type"] == "http.disconnect":
                    return
                chunk = message.get("body", b"")
                if chunk:
                    yield chunk
                if not message.get("more_body", False):
                    return

        client = self.client()
        # a request without a body (most GETs) must not reach the app as an empty chunked one
        has_body = _header(scope, b"transfer-encoding") is not None or (
            _header(scope, b"content-length") not in (None, "0")
        )
        request = client.build_request(
            scope["method"],
            upstream + target.path,
            headers=headers,
            content=body() if has_body else None,
        )
        try:
            response = await client.send(request, stream=True)
        except httpx.HTTPError as error:
            self.routes.forget(target.app_id, target.port)
            problem = GatewayError(
                502, "upstream_unreachable", f"app {target.app_id} port {target.port}: {error}"
            )
            await _error(send, problem, request_id)
            return
        try:
            out = _strip_hop_by_hop(response.headers.raw)
            out.append((b"x-request-id", request_id.encode()))
            await send(
                {"type": "http.response.start", "status": response.status_code, "headers": out}
            )
            async for chunk in response.aiter_raw():
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        except httpx.HTTPError:
            pass  # the upstream broke off mid-body: the client sees a truncated response
        except OSError:
            pass  # the client went away mid-body (uvicorn's ClientDisconnected)
        finally:
            await response.aclose()

    # --- WebSocket -------------------------------------------------------------------

    async def _websocket(self, scope: Scope, receive: Receive, send: Send) -> None:
        request_id = _request_id(scope)
        first = await receive()
        if first["type"] != "websocket.connect":
            return
        try:
            target = parse_target(scope, self.domain)
            upstream = await self.routes.resolve(target.app_id, target.port)
        except GatewayError as error:
            await _deny(scope, send, error, request_id)
            return
        url = "ws" + upstream.removeprefix("http") + target.path
        forwarded = [
            (key, value)
            for key, value in _forward_headers(scope, request_id)
            if key.lower().startswith(b"x-") or key.lower() in (b"authorization", b"cookie")
        ]
        subprotocols = scope.get("subprotocols") or None
        try:
            connection = await connect(
                url,
                subprotocols=subprotocols,
                additional_headers=[
                    (k.decode("latin-1"), v.decode("latin-1")) for k, v in forwarded
                ],
                open_timeout=10,
                max_size=None,
                proxy=None,
            )
        except (OSError, InvalidHandshake, InvalidURI, TimeoutError) as error:
            self.routes.forget(target.app_id, target.port)
            problem = GatewayError(
                502, "upstream_unreachable", f"app {target.app_id} port {target.port}: {error}"
            )
            await _deny(scope, send, problem, request_id)
            return
        async with connection:
            await send(
                {
                    "type": "websocket.accept",
                    "subprotocol": connection.subprotocol,
                    "headers": [(b"x-request-id", request_id.encode())],
                }
            )
            await _pipe(connection, receive, send)


async def _pipe(upstream: ClientConnection, receive: Receive, send: Send) -> None:
    """Messages both ways until one side closes; the close code crosses over."""

    async def from_client() -> None:
        while True:
            message = await receive()
            if message["type"] == "websocket.disconnect":
                await upstream.close(code=message.get("code", 1000) or 1000)
                return
            if message.get("text") is not None:
                await upstream.send(message["text"])
            elif message.get("bytes") is not None:
                await upstream.send(message["bytes"])

    async def from_upstream() -> None:
        try:
            async for data in upstream:
                if isinstance(data, str):
                    await send({"type": "websocket.send", "text": data})
                else:
                    await send({"type": "websocket.send", "bytes": bytes(data)})
        except ConnectionClosed:
            pass
        code = upstream.close_code or 1000
        with contextlib.suppress(Exception):
            await send({"type": "websocket.close", "code": code if code != 1006 else 1011})

    tasks = [asyncio.ensure_future(from_client()), asyncio.ensure_future(from_upstream())]
    try:
        _done, pending = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        for task in pending:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, ConnectionClosed):
                await task
    finally:
        for task in tasks:
            if not task.done():
                task.cancel()


def _request_id(scope: Scope) -> str:
    given = _header(scope, b"x-request-id")
    if given and _REQUEST_ID.match(given):
        return given
    return uuid.uuid4().hex


def _forward_headers(scope: Scope, request_id: str) -> list[tuple[bytes, bytes]]:
    """The client's headers minus hop-by-hop and Host, plus X-Forwarded-* and the id."""
    raw: list[tuple[bytes, bytes]] = list(scope.get("headers", []))
    headers = [
        (key, value)
        for key, value in _strip_hop_by_hop(raw)
        if key.lower() not in (b"host", b"x-request-id", b"x-forwarded-host", b"x-forwarded-proto")
        and not key.lower().startswith(b"sec-websocket")
    ]
    client = scope.get("client")
    peer: str = str(client[0]) if client else ""
    prior: str = _header(scope, b"x-forwarded-for") or ""
    chain = f"{prior}, {peer}" if prior and peer else (prior or peer)
    headers = [(key, value) for key, value in headers if key.lower() != b"x-forwarded-for"]
    scheme = str(scope.get("scheme", "http"))
    proto = {"ws": "http", "wss": "https"}.get(scheme, scheme)
    headers += [
        (b"x-forwarded-for", chain.encode("latin-1")),
        (b"x-forwarded-proto", proto.encode()),
        (b"x-forwarded-host", (_header(scope, b"host") or "").encode("latin-1")),
        (b"x-request-id", request_id.encode()),
    ]
    return headers


def _strip_hop_by_hop(raw: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    named = {
        token.strip().lower().encode()
        for key, value in raw
        if key.lower() == b"connection"
        for token in value.decode("latin-1").split(",")
    }
    drop = {name.encode() for name in HOP_BY_HOP} | named
    return [(key, value) for key, value in raw if key.lower() not in drop]


def _error_body(error: GatewayError, request_id: str) -> bytes:
    return json.dumps(
        {"code": error.code, "message": error.message, "request_id": request_id}
    ).encode()


async def _error(send: Send, error: GatewayError, request_id: str) -> None:
    body = _error_body(error, request_id)
    await send(
        {
            "type": "http.response.start",
            "status": error.status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"x-request-id", request_id.encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body, "more_body": False})


async def _deny(scope: Scope, send: Send, error: GatewayError, request_id: str) -> None:
    """Refuse a WebSocket handshake with the JSON error when the server allows it."""
    if "websocket.http.response" in scope.get("extensions", {}):
        body = _error_body(error, request_id)
        await send(
            {
                "type": "websocket.http.response.start",
                "status": error.status,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"x-request-id", request_id.encode()),
                ],
            }
        )
        await send({"type": "websocket.http.response.body", "body": body})
        return
    await send({"type": "websocket.close", "code": 1008, "reason": error.code})
