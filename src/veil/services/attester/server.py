"""The attester's HTTP front: JSON in, JSON out, one reason per refusal.

Standard library only (ThreadingHTTPServer): the service is small, and an operator can
read all of what stands between the network and the signing key. Every route declares
its largest acceptable body; a larger one is refused before it is read.

Anyone on the internet can reach an attester, so every resource a client can hold is
bounded (see `Limits`), and each refusal is cheap and says why, in the error shape every
answer uses (`code`, `message`, `request_id`, and `error` for older clients):

- a connection beyond `max_connections` is answered 503 `overloaded` with Retry-After
  (from a small, bounded overflow of threads; beyond that it is closed unanswered);
- the request line and headers must arrive within `header_timeout` and the body within
  `body_timeout` of their start (total, not per read, so a client dribbling one byte at
  a time cannot hold a thread): 408 `header_timeout` / `body_timeout`;
- a body larger than the route allows: 413, before it is read;
- a client (by address; behind trusted proxies, by X-Forwarded-For) beyond its token
  bucket: 429 `rate_limited` with Retry-After, before its body is parsed;
- beyond `max_inflight` requests doing work, a request waits at most `queue_wait` for a
  slot, then gets 503 `overloaded` with Retry-After: load is shed, never queued without
  bound.
Only then does a handler run, and handlers do their own cheap checks (shape, tree,
record) before any signature verification.
"""

from __future__ import annotations

import io
import ipaddress
import json
import logging
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import partial
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import orjson

from veil.attestation import api
from veil.services.attester.requests import Refused

log = logging.getLogger("veil.attester")

Handler = Callable[[Any], dict[str, Any]]
#: A GET route by prefix: the path after the prefix -> (content type, body); may Refuse.
#: A body given as chunks is streamed (chunked transfer encoding): a heartbeat log of an
#: epoch is hundreds of megabytes, hashed and signed as it goes out.
Reader = Callable[[str], tuple[str, bytes | Iterator[bytes]]]

MAX_REQUEST_LINE = 8 * 1024
MAX_HEADER_LINE = 8 * 1024
MAX_HEADERS = 100


class _Headers:
    """Request headers by case-insensitive name (the last of repeated ones wins, except
    that X-Forwarded-For hops are joined as proxies append them)."""

    def __init__(self) -> None:
        self._values: dict[str, str] = {}

    def add(self, name: str, value: str) -> None:
        key = name.lower()
        if key in self._values and key == "x-forwarded-for":
            value = self._values[key] + ", " + value
        self._values[key] = value

    def get(self, name: str, default: str | None = None) -> str | None:
        return self._values.get(name.lower(), default)

    def __getitem__(self, name: str) -> str | None:
        return self._values.get(name.lower())

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.lower() in self._values


@dataclass(frozen=True)
class Route:
    handler: Handler
    max_body: int = api.MAX_BODY


@dataclass(frozen=True)
class Limits:
    """What one client, and all of them together, may hold. The defaults suit one
    attester on a small host; `rate` is off by default (set it in production: the CLI
    does), so loopback tests and benches are not throttled."""

    max_connections: int = 256
    overflow: int = 64  # extra threads that only answer 503 to connections beyond the cap
    header_timeout: float = 10.0
    body_timeout: float = 10.0
    write_timeout: float = 10.0
    max_inflight: int = 16
    queue_wait: float = 0.5
    retry_after: int = 1
    rate: float | None = None  # requests per second per client; None: no rate limit
    burst: int = 0  # bucket size; 0: twice the rate, at least 1
    trusted_proxies: frozenset[str] = frozenset()
    max_clients: int = 100_000  # buckets kept; the fullest (idle) go first beyond this


@dataclass
class _Bucket:
    tokens: float
    stamp: float


@dataclass
class RateLimiter:
    """A token bucket per client address: `rate` tokens a second, at most `burst`."""

    rate: float
    burst: float
    max_clients: int = 100_000
    clock: Callable[[], float] = time.monotonic
    _buckets: dict[str, _Bucket] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def take(self, client: str) -> float:
        """0 if the request may proceed, else the seconds until a token is due."""
        now = self.clock()
        with self._lock:
            bucket = self._buckets.get(client)
            if bucket is None:
                if len(self._buckets) >= self.max_clients:
                    self._forget_idle(now)
                bucket = self._buckets[client] = _Bucket(self.burst, now)
            bucket.tokens = min(self.burst, bucket.tokens + (now - bucket.stamp) * self.rate)
            bucket.stamp = now
            if bucket.tokens >= 1:
                bucket.tokens -= 1
                return 0.0
            return (1 - bucket.tokens) / self.rate

    def _forget_idle(self, now: float) -> None:
        """Drop buckets that have refilled (their clients lose nothing by it); if none
        have, the oldest half, so the map stays bounded under a spoofed-address flood."""
        full_after = self.burst / self.rate
        idle = [k for k, b in self._buckets.items() if now - b.stamp >= full_after]
        if not idle:
            by_age = sorted(self._buckets, key=lambda k: self._buckets[k].stamp)
            idle = by_age[: len(by_age) // 2 or 1]
        for key in idle:
            del self._buckets[key]


class AttesterServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(
        self,
        address: tuple[str, int],
        posts: dict[str, Route],
        info: Callable[[], dict[str, Any]],
        readers: dict[str, Reader] | None = None,
        limits: Limits | None = None,
    ) -> None:
        self.posts = posts
        self.info = info
        self.readers = readers or {}
        self.limits = limits or Limits()
        self.work = threading.BoundedSemaphore(self.limits.max_inflight)
        self.rate_limiter: RateLimiter | None = None
        if self.limits.rate is not None:
            burst = self.limits.burst or max(1.0, 2 * self.limits.rate)
            self.rate_limiter = RateLimiter(self.limits.rate, burst, self.limits.max_clients)
        self._open = 0
        self._open_lock = threading.Lock()
        self._shed = threading.local()
        self.closers: list[Callable[[], None]] = []  # run once at server_close (journals)
        super().__init__(address, _RequestHandler)

    def server_close(self) -> None:
        super().server_close()
        for close in self.closers:
            close()
        self.closers.clear()

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        name = host.decode() if isinstance(host, bytes) else host
        return f"http://{name}:{port}"

    @property
    def open_connections(self) -> int:
        return self._open

    def process_request(self, request: Any, client_address: Any) -> None:
        """One thread per connection, up to `max_connections`; the next `overflow` get a
        thread that only answers 503; any more are closed at once."""
        with self._open_lock:
            cap = self.limits.max_connections + self.limits.overflow
            if self._open >= cap:
                self.shutdown_request(request)
                return
            shed = self._open >= self.limits.max_connections
            self._open += 1
        thread = threading.Thread(
            target=self._connection, args=(request, client_address, shed), daemon=True
        )
        thread.start()

    def _connection(self, request: Any, client_address: Any, shed: bool) -> None:
        self._shed.on = shed
        try:
            self.finish_request(request, client_address)
        except Exception:
            self.handle_error(request, client_address)
        finally:
            self.shutdown_request(request)
            with self._open_lock:
                self._open -= 1

    def shedding(self) -> bool:
        return bool(getattr(self._shed, "on", False))

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that resets mid-answer is routine under load, not a traceback.
        log.debug("connection from %s ended with an error", client_address, exc_info=True)

    def client_of(self, peer: str, forwarded: str | None) -> str:
        """The address a rate limit applies to: the peer, or, when the peer is a trusted
        proxy (a load balancer), the nearest untrusted hop in X-Forwarded-For."""
        trusted = self.limits.trusted_proxies
        if peer not in trusted or not forwarded:
            return peer
        for hop in reversed([h.strip() for h in forwarded.split(",")]):
            try:
                ipaddress.ip_address(hop)
            except ValueError:
                return peer  # a malformed header: hold the proxy itself to account
            if hop not in trusted:
                return hop
        return peer


class _DeadlineReader(io.RawIOBase):
    """Socket reads that fail once a deadline passes, however the bytes trickle in."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.deadline: float | None = None
        self.received = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        if self.deadline is not None:
            left = self.deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("deadline passed")
            self.sock.settimeout(left)
        count = self.sock.recv_into(buffer)
        self.received += count
        return count


class _RequestHandler(BaseHTTPRequestHandler):
    server: AttesterServer
    protocol_version = "HTTP/1.1"

    def setup(self) -> None:
        super().setup()
        # Headers and body leave in two writes; without NODELAY, Nagle holds the body
        # until the client's delayed ACK (~40 ms), capping each connection at ~25 req/s.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._reader = _DeadlineReader(self.connection)
        plain, self.rfile = self.rfile, io.BufferedReader(self._reader, 64 * 1024)
        plain.close()  # nothing was read through it; it only holds a reference to the socket

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s " + format, self.address_string(), *args)

    # --- the request cycle -------------------------------------------------------------

    def handle_one_request(self) -> None:
        """Read one request under the header deadline, then dispatch it. A client that
        sent part of a request and stalled gets 408; an idle keep-alive one is closed."""
        limits = self.server.limits
        shed = self.server.shedding()
        wait = min(1.0, limits.header_timeout) if shed else limits.header_timeout
        self._reader.deadline = time.monotonic() + wait
        before = self._reader.received
        self.command, self.path, self.request_version = "", "", "HTTP/1.1"
        self.requestline = ""
        try:
            self.raw_requestline = self.rfile.readline(MAX_REQUEST_LINE + 1)
            if not self.raw_requestline:
                self.close_connection = True
                return
            if len(self.raw_requestline) > MAX_REQUEST_LINE:
                self.send_error(HTTPStatus.REQUEST_URI_TOO_LONG, "request line too long")
                return
            if not self.parse_request():
                return  # parse_request answered (through send_error)
        except TimeoutError:
            self.close_connection = True
            if self._reader.received > before:
                self._fail(HTTPStatus.REQUEST_TIMEOUT, "request headers not received within"
                           f" {limits.header_timeout:g} s", "header_timeout")  # fmt: skip
            return
        self._reader.deadline = None
        if shed:
            self.close_connection = True
            self._overloaded("too many connections")
            self._linger(limit=64 * 1024, seconds=0.5)
            return
        method = getattr(self, "do_" + self.command, None)
        if method is None:
            self.close_connection = True
            self._fail(HTTPStatus.NOT_IMPLEMENTED, f"method {self.command} not supported")
            return
        method()
        self.wfile.flush()

    def parse_request(self) -> bool:
        """The request line and headers, read without the `email` package the standard
        library parses them with (a sixth of a heartbeat's cost at the attester): three
        words, HTTP/1.0 or 1.1, at most MAX_HEADERS lines of `name: value`. Anything else
        is refused as the standard library refuses it (400, 431, 505)."""
        line = str(self.raw_requestline, "iso-8859-1").rstrip("\r\n")
        self.requestline = line
        words = line.split()
        if len(words) != 3:
            self.send_error(HTTPStatus.BAD_REQUEST, f"bad request line {line!r:.80}")
            return False
        command, path, version = words
        if version not in ("HTTP/1.0", "HTTP/1.1"):
            self.send_error(HTTPStatus.HTTP_VERSION_NOT_SUPPORTED,
                            f"version {version!r:.20} not supported")  # fmt: skip
            return False
        self.command, self.path, self.request_version = command, path, version
        self.close_connection = version == "HTTP/1.0"
        headers = _Headers()
        for _ in range(MAX_HEADERS + 1):
            raw = self.rfile.readline(MAX_HEADER_LINE + 1)
            if len(raw) > MAX_HEADER_LINE:
                self.send_error(HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE, "header line too long")
                return False
            if raw in (b"\r\n", b"\n", b""):
                break
            name, colon, value = raw.decode("iso-8859-1").partition(":")
            if not colon or not name or name != name.strip():
                self.send_error(HTTPStatus.BAD_REQUEST, f"malformed header line {raw[:60]!r}")
                return False
            headers.add(name, value.strip())
        else:
            self.send_error(HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE, "too many headers")
            return False
        self.headers = headers  # type: ignore[assignment]
        connection = (headers.get("Connection") or "").lower()
        if connection == "close":
            self.close_connection = True
        elif connection == "keep-alive":
            self.close_connection = False
        expect = (headers.get("Expect") or "").lower()
        if expect == "100-continue" and version == "HTTP/1.1":
            return bool(self.handle_expect_100())
        return True

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """The standard library's own refusals (bad request line, too many headers) in
        this server's error shape (as HTTP/1.1, even to a request line that named none)."""
        self.close_connection = True
        if self.request_version not in ("HTTP/1.0", "HTTP/1.1"):
            self.request_version = "HTTP/1.1"
        self._fail(code, message or HTTPStatus(code).phrase)

    def _rate_limited(self) -> bool:
        limiter = self.server.rate_limiter
        if limiter is None:
            return False
        client = self.server.client_of(self.client_address[0], self.headers.get("X-Forwarded-For"))
        wait = limiter.take(client)
        if wait <= 0:
            return False
        self._fail(
            HTTPStatus.TOO_MANY_REQUESTS,
            f"client {client}: more than {self.server.limits.rate:g} requests/s; retry later",
            "rate_limited",
            retry_after=max(1, int(wait + 0.999)),
        )
        return True

    def _overloaded(self, why: str) -> None:
        self._fail(
            HTTPStatus.SERVICE_UNAVAILABLE,
            f"overloaded ({why}); retry later",
            "overloaded",
            retry_after=self.server.limits.retry_after,
        )

    def _working(self, work: Callable[[], None]) -> None:
        """Run `work` in one of `max_inflight` slots, or shed the request."""
        if not self.server.work.acquire(timeout=self.server.limits.queue_wait):
            self._overloaded("all workers busy")
            return
        try:
            work()
        finally:
            self.server.work.release()

    # --- answers -----------------------------------------------------------------------

    def _send(
        self, status: int, kind: str, body: bytes, headers: dict[str, str] | None = None
    ) -> None:
        self.connection.settimeout(self.server.limits.write_timeout)
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        if self.close_connection:
            self.send_header("Connection", "close")
        # headers and body in one write: one syscall (and one GIL hand-off) per answer
        self._headers_buffer.append(b"\r\n" + body)  # type: ignore[attr-defined]
        self.flush_headers()

    def _answer(
        self, status: int, payload: dict[str, Any], headers: dict[str, str] | None = None
    ) -> None:
        try:
            body = orjson.dumps(payload)
        except TypeError:  # an integer beyond 64 bits: the standard library writes it exactly
            body = json.dumps(payload).encode()
        self._send(status, "application/json", body, headers)

    def _fail(
        self, status: int, message: str, code: str | None = None, retry_after: int | None = None
    ) -> None:
        """Every error answer carries a code, a message and a request id (the one in the
        log line), and keeps `error` for clients that read only that."""
        answer = api.ErrorAnswer(code or api.error_code(status), message, uuid.uuid4().hex)
        level = logging.DEBUG if status in api.RETRY_STATUSES else logging.INFO
        log.log(level, "%s %s -> %d %s [%s]: %s", self.command, self.path, status, answer.code,
                answer.request_id, message)  # fmt: skip
        headers = {"Retry-After": str(retry_after)} if retry_after is not None else None
        self._answer(status, answer.to_json(), headers)

    def _refused(self, refused: Refused) -> None:
        retry = refused.retry_after
        if retry is None and refused.status == HTTPStatus.SERVICE_UNAVAILABLE:
            retry = self.server.limits.retry_after
        self._fail(refused.status, refused.reason, refused.code, retry)

    # --- routes ------------------------------------------------------------------------

    def do_GET(self) -> None:
        if self._rate_limited():
            return
        if self.path == api.HEALTH:
            self._answer(HTTPStatus.OK, {"ok": True, **self.server.info()})
            return
        for prefix, reader in self.server.readers.items():
            if self.path.startswith(prefix):
                self._working(partial(self._read, reader, self.path[len(prefix) :]))
                return
        self._fail(HTTPStatus.NOT_FOUND, f"no route GET {self.path}")

    def _read(self, reader: Reader, suffix: str) -> None:
        try:
            kind, body = reader(suffix)
        except Refused as refused:
            self._refused(refused)
            return
        if isinstance(body, bytes):
            self._send(HTTPStatus.OK, kind, body)
        else:
            self._stream(kind, body)

    def _stream(self, kind: str, chunks: Iterator[bytes]) -> None:
        """An answer of unknown length, as HTTP/1.1 chunks. A failure after the status
        line went out can only cut the stream: the client sees no final empty chunk (and
        a log reader, no signed end line), never a well-formed partial answer."""
        self.connection.settimeout(self.server.limits.write_timeout)
        self.send_response(HTTPStatus.OK)
        self.send_header("Content-Type", kind)
        self.send_header("Transfer-Encoding", "chunked")
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        try:
            for chunk in chunks:
                if chunk:
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            self.wfile.write(b"0\r\n\r\n")
        except OSError:  # the client went away
            self.close_connection = True
        except Exception:
            self.close_connection = True
            log.exception("streaming %s failed", self.path)

    def do_POST(self) -> None:
        route = self.server.posts.get(self.path)
        try:
            length = int(self.headers.get("Content-Length", ""))
        except ValueError:
            self.close_connection = True
            self._fail(HTTPStatus.LENGTH_REQUIRED, "Content-Length required")
            return
        limit = route.max_body if route is not None else api.MAX_BODY
        if length > limit or length < 0:
            self.close_connection = True
            self._fail(
                HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
                f"body of {length} bytes exceeds {limit}",
                "body_too_large",
            )
            self._linger()
            return
        raw = self._body(length)
        if raw is None:
            return
        if self._rate_limited():
            return
        if route is None:
            self._fail(HTTPStatus.NOT_FOUND, f"no route POST {self.path}")
            return
        try:
            body = orjson.loads(raw)  # a sixth of json's cost; integers beyond 64 bits
        except orjson.JSONDecodeError as error:  # come back as floats, which no field takes
            self._fail(HTTPStatus.BAD_REQUEST, f"body is not JSON: {error}")
            return
        self._working(partial(self._handle, route, body))

    def _linger(self, limit: int = 4 << 20, seconds: float = 2.0) -> None:
        """After refusing a body unread, discard what the client is still sending (bounded
        in bytes and time) before closing: closing on unread data resets the connection,
        and the client, still writing, would see a broken pipe instead of our answer."""
        try:
            self.wfile.flush()
            self.connection.shutdown(socket.SHUT_WR)
            self.connection.settimeout(seconds)
            deadline = time.monotonic() + seconds
            discarded = 0
            while discarded < limit and time.monotonic() < deadline:
                chunk = self.connection.recv(64 * 1024)
                if not chunk:
                    break
                discarded += len(chunk)
        except OSError:
            pass

    def _body(self, length: int) -> bytes | None:
        """The body, read under the body deadline (None: refused with 408, connection closed)."""
        self._reader.deadline = time.monotonic() + self.server.limits.body_timeout
        try:
            raw = self.rfile.read(length)
        except TimeoutError:
            raw = None
        finally:
            self._reader.deadline = None
        if raw is None or len(raw) < length:
            self.close_connection = True
            if raw is None:
                timeout = self.server.limits.body_timeout
                self._fail(HTTPStatus.REQUEST_TIMEOUT,
                           f"body not received within {timeout:g} s", "body_timeout")  # fmt: skip
            return None
        return raw

    def _handle(self, route: Route, body: Any) -> None:
        try:
            answer = route.handler(body)
        except Refused as refused:
            self._refused(refused)
            return
        except Exception:  # a bug must not kill the service or leak a traceback
            log.exception("handler for %s failed", self.path)
            self._fail(HTTPStatus.INTERNAL_SERVER_ERROR, "internal error")
            return
        self._answer(HTTPStatus.OK, answer)
