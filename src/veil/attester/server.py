"""The attester's HTTP front: JSON in, JSON out, one reason per refusal.

Standard library only (ThreadingHTTPServer): the service is small, and an operator can
read all of what stands between the network and the signing key. Every route declares
its largest acceptable body; a larger one is refused before it is read.
"""

from __future__ import annotations

import json
import logging
import socket
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from veil.attester.requests import Refused

log = logging.getLogger("veil.attester")

Handler = Callable[[Any], dict[str, Any]]
#: A GET route by prefix: the path after the prefix -> (content type, body); may Refuse.
Reader = Callable[[str], tuple[str, bytes]]


@dataclass(frozen=True)
class Route:
    handler: Handler
    max_body: int = 16 * 1024


class AttesterServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(
        self,
        address: tuple[str, int],
        posts: dict[str, Route],
        info: Callable[[], dict],
        readers: dict[str, Reader] | None = None,
    ) -> None:
        self.posts = posts
        self.info = info
        self.readers = readers or {}
        super().__init__(address, _RequestHandler)

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host}:{port}"


class _RequestHandler(BaseHTTPRequestHandler):
    server: AttesterServer
    protocol_version = "HTTP/1.1"

    def setup(self) -> None:
        super().setup()
        # Headers and body leave in two writes; without NODELAY, Nagle holds the body
        # until the client's delayed ACK (~40 ms), capping each connection at ~25 req/s.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s " + format, self.address_string(), *args)

    def _send(self, status: int, kind: str, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _answer(self, status: int, payload: dict[str, Any]) -> None:
        self._send(status, "application/json", json.dumps(payload).encode())

    def _fail(self, status: int, message: str, code: str | None = None) -> None:
        """Every error answer carries a code, a message and a request id (the one in the
        log line), and keeps `error` for clients that read only that."""
        request_id = uuid.uuid4().hex
        code = code or HTTPStatus(status).phrase.lower().replace(" ", "_").replace("-", "_")
        log.info("%s %s -> %d %s [%s]: %s", self.command, self.path, status, code, request_id,
                 message)  # fmt: skip
        payload = {"error": message, "code": code, "message": message, "request_id": request_id}
        self._answer(status, payload)

    def _refused(self, refused: Refused) -> None:
        self._fail(refused.status, refused.reason, refused.code)

    def do_GET(self) -> None:
        if self.path == "/v1/health":
            self._answer(HTTPStatus.OK, {"ok": True, **self.server.info()})
            return
        for prefix, reader in self.server.readers.items():
            if self.path.startswith(prefix):
                try:
                    kind, body = reader(self.path[len(prefix) :])
                except Refused as refused:
                    self._refused(refused)
                    return
                self._send(HTTPStatus.OK, kind, body)
                return
        self._fail(HTTPStatus.NOT_FOUND, f"no route GET {self.path}")

    def do_POST(self) -> None:
        route = self.server.posts.get(self.path)
        if route is None:
            self._drain()
            self._fail(HTTPStatus.NOT_FOUND, f"no route POST {self.path}")
            return
        try:
            length = int(self.headers.get("Content-Length", ""))
        except ValueError:
            self.close_connection = True
            self._fail(HTTPStatus.LENGTH_REQUIRED, "Content-Length required")
            return
        if length > route.max_body or length < 0:
            self.close_connection = True
            self._fail(
                HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
                f"body of {length} bytes exceeds {route.max_body}",
            )
            self._linger()
            return
        raw = self.rfile.read(length)
        try:
            body = json.loads(raw)
        except ValueError as error:
            self._fail(HTTPStatus.BAD_REQUEST, f"body is not JSON: {error}")
            return
        try:
            self._answer(HTTPStatus.OK, route.handler(body))
        except Refused as refused:
            self._refused(refused)
        except Exception:  # a bug must not kill the service or leak a traceback
            log.exception("handler for %s failed", self.path)
            self._fail(HTTPStatus.INTERNAL_SERVER_ERROR, "internal error")

    def _linger(self, limit: int = 4 << 20, seconds: float = 2.0) -> None:
        """After refusing a body unread, discard what the client is still sending (bounded)
        before closing: closing on unread data resets the connection, and the client, still
        writing, would see a broken pipe instead of our answer."""
        try:
            self.wfile.flush()
            self.connection.shutdown(socket.SHUT_WR)
            self.connection.settimeout(seconds)
            discarded = 0
            while discarded < limit:
                chunk = self.connection.recv(64 * 1024)
                if not chunk:
                    break
                discarded += len(chunk)
        except OSError:
            pass

    def _drain(self) -> None:
        length = int(self.headers.get("Content-Length", "0") or 0)
        if 0 < length <= 1 << 20:
            self.rfile.read(length)
        else:
            self.close_connection = True
