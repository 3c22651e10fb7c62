"""Every limit an attester puts on its clients, over real sockets: each refusal has its
status, a code, a message and a request id, and none lets one client hold the service."""

from __future__ import annotations

import contextlib
import http.client
import socket
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from binding_kit import body_for, make_holders, parse_answer, post, raw_exchange, serving

from veil.attestation.api import BINDINGS as BINDINGS_PATH
from veil.migration.synthetic import Keypair
from veil.services.attester.server import Limits, RateLimiter, Route


@pytest.fixture(scope="module")
def holders() -> list[Keypair]:
    return make_holders(2)


def assert_error_shape(answer: dict[str, Any], code: str) -> None:
    assert answer["code"] == code
    assert answer["message"] == answer["error"] and answer["message"]
    assert len(answer["request_id"]) == 32


def head(length: int) -> bytes:
    return (
        f"POST {BINDINGS_PATH} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        f"Content-Length: {length}\r\n\r\n"
    ).encode()


def test_oversized_body_is_413_before_it_is_read(tmp_path: Path, holders: list[Keypair]) -> None:
    with serving(tmp_path / "a.sqlite", holders) as served:
        started = time.monotonic()
        # 100 MB announced, 10 bytes sent: refused at once, from the header alone
        raw = raw_exchange(served.port, [head(100_000_000) + b"x" * 10])
        status, headers, answer = parse_answer(raw)
        assert status == 413 and "exceeds" in answer["message"]
        assert_error_shape(answer, "body_too_large")
        assert headers["connection"] == "close"
        assert time.monotonic() - started < 2


def test_headers_dribbled_past_the_deadline_get_408(tmp_path: Path, holders: list[Keypair]) -> None:
    limits = Limits(header_timeout=1.0)
    with serving(tmp_path / "a.sqlite", holders, limits) as served:
        started = time.monotonic()
        # a header byte every 0.1 s for 0.8 s, then silence: a deadline per read would
        # answer 1 s after the last byte (1.8 s); the total deadline answers at 1 s
        dribble = [bytes([b]) for b in head(10)[:9]]
        raw = raw_exchange(served.port, dribble, pause=0.1)
        took = time.monotonic() - started
        status, _, answer = parse_answer(raw)
        assert status == 408 and "headers" in answer["message"]
        assert_error_shape(answer, "header_timeout")
        assert took < 1.6


def test_idle_connection_is_closed_without_an_answer(
    tmp_path: Path, holders: list[Keypair]
) -> None:
    with serving(tmp_path / "a.sqlite", holders, Limits(header_timeout=0.4)) as served:
        with socket.create_connection(("127.0.0.1", served.port), timeout=5) as sock:
            started = time.monotonic()
            assert sock.recv(100) == b""
            assert time.monotonic() - started < 2
        assert_eventually(lambda: served.server.open_connections == 0)


def test_body_dribbled_past_the_deadline_gets_408(tmp_path: Path, holders: list[Keypair]) -> None:
    with serving(tmp_path / "a.sqlite", holders, Limits(body_timeout=0.5)) as served:
        chunks = [head(200)] + [b"{"] * 20
        raw = raw_exchange(served.port, chunks, pause=0.1)
        status, headers, answer = parse_answer(raw)
        assert status == 408 and "body" in answer["message"]
        assert_error_shape(answer, "body_timeout")
        assert headers["connection"] == "close"


def test_connections_beyond_the_cap_get_503_then_are_closed(
    tmp_path: Path, holders: list[Keypair]
) -> None:
    limits = Limits(max_connections=2, overflow=1, header_timeout=5)
    with serving(tmp_path / "a.sqlite", holders, limits) as served:
        held = [socket.create_connection(("127.0.0.1", served.port)) for _ in range(2)]
        try:
            for sock in held:
                sock.sendall(b"POST ")  # started, not finished: each holds a thread
            assert_eventually(lambda: served.server.open_connections == 2)
            status, answer, headers = post(served.port, body_for(holders[0]))
            assert status == 503 and headers["Retry-After"] == "1"
            assert_error_shape(answer, "overloaded")
            assert "connections" in answer["message"]
            # The 503 thread counts until it has closed; an overflow connection arriving
            # before that would find the overflow full and be closed unanswered.
            assert_eventually(lambda: served.server.open_connections == 2)

            overflow = socket.create_connection(("127.0.0.1", served.port))
            overflow.sendall(b"GET ")  # holds the one overflow thread
            assert_eventually(lambda: served.server.open_connections == 3)
            beyond = socket.create_connection(("127.0.0.1", served.port), timeout=5)
            with beyond, contextlib.suppress(ConnectionResetError):
                assert beyond.recv(100) == b""  # closed unanswered: no thread spent
            overflow.close()
        finally:
            for sock in held:
                sock.close()
        assert_eventually(lambda: served.server.open_connections == 0)
        assert post(served.port, body_for(holders[0]))[0] == 200  # and it recovers


def test_rate_limit_per_client_is_429_with_retry_after(
    tmp_path: Path, holders: list[Keypair]
) -> None:
    limits = Limits(rate=2, burst=3)
    body = body_for(holders[0])
    with serving(tmp_path / "a.sqlite", holders, limits) as served:
        statuses = [post(served.port, body)[0] for _ in range(3)]
        status, answer, headers = post(served.port, body)
        assert statuses == [200, 200, 200] and status == 429
        assert_error_shape(answer, "rate_limited")
        assert int(headers["Retry-After"]) >= 1
        assert "127.0.0.1" in answer["message"]
        # another address is another bucket (all of 127/8 is loopback on Linux)
        conn = http.client.HTTPConnection("127.0.0.1", served.port, source_address=("127.0.0.2", 0))
        conn.request("GET", "/v1/health")
        assert conn.getresponse().status == 200
        conn.close()
        time.sleep(0.6)  # one token refills
        assert post(served.port, body)[0] == 200


def test_rate_limit_believes_forwarded_for_only_from_a_trusted_proxy(
    tmp_path: Path, holders: list[Keypair]
) -> None:
    body = body_for(holders[1])
    behind = Limits(rate=1, burst=1, trusted_proxies=frozenset({"127.0.0.1"}))
    with serving(tmp_path / "a.sqlite", holders, behind) as served:
        for client in ("203.0.113.1", "203.0.113.2", "203.0.113.3"):
            assert post(served.port, body, headers={"X-Forwarded-For": client})[0] == 200
        refused = post(served.port, body, headers={"X-Forwarded-For": "203.0.113.1"})
        assert refused[0] == 429 and "203.0.113.1" in refused[1]["message"]
    direct = Limits(rate=1, burst=1)
    with serving(tmp_path / "b.sqlite", holders, direct) as served:
        assert post(served.port, body, headers={"X-Forwarded-For": "203.0.113.1"})[0] == 200
        spoofed = post(served.port, body, headers={"X-Forwarded-For": "203.0.113.9"})
        assert spoofed[0] == 429 and "127.0.0.1" in spoofed[1]["message"]


def test_busy_workers_shed_load_with_503_instead_of_queueing(
    tmp_path: Path, holders: list[Keypair]
) -> None:
    release = threading.Event()
    entered = threading.Event()

    def slow(_body: Any) -> dict[str, Any]:
        entered.set()
        release.wait(10)
        return {"ok": True}

    limits = Limits(max_inflight=1, queue_wait=0.2, retry_after=3)
    routes = {"/v1/slow": Route(slow)}
    with serving(tmp_path / "a.sqlite", holders, limits, extra_routes=routes) as served:
        first: list[int] = []
        thread = threading.Thread(target=lambda: first.append(post(served.port, {}, "/v1/slow")[0]))
        thread.start()
        assert entered.wait(5)
        started = time.monotonic()
        status, answer, headers = post(served.port, body_for(holders[0]))
        assert status == 503 and headers["Retry-After"] == "3"
        assert_error_shape(answer, "overloaded")
        assert time.monotonic() - started < 1.5  # waited queue_wait, not for the slow one
        release.set()
        thread.join(10)
        assert first == [200]
        assert post(served.port, body_for(holders[0]))[0] == 200


def test_standard_library_refusals_use_the_same_shape(
    tmp_path: Path, holders: list[Keypair]
) -> None:
    with serving(tmp_path / "a.sqlite", holders) as served:
        status, _, answer = parse_answer(raw_exchange(served.port, [b"NONSENSE\r\n\r\n"]))
        assert status == 400
        assert_error_shape(answer, "bad_request")
        status, _, answer = parse_answer(
            raw_exchange(served.port, [b"DELETE / HTTP/1.1\r\nHost: x\r\n\r\n"])
        )
        assert status == 501
        assert_error_shape(answer, "not_implemented")


def test_token_bucket_refills_at_its_rate_and_stays_bounded() -> None:
    now = [0.0]
    limiter = RateLimiter(rate=10, burst=5, max_clients=4, clock=lambda: now[0])
    assert [limiter.take("a") for _ in range(5)] == [0.0] * 5
    assert limiter.take("a") == pytest.approx(0.1)
    now[0] += 0.25  # 2.5 tokens
    assert limiter.take("a") == 0.0 and limiter.take("a") == 0.0
    assert limiter.take("a") > 0
    for n in range(50):  # a spoofed-address flood cannot grow the map without bound
        limiter.take(f"spoof{n}")
        now[0] += 0.001
    assert len(limiter._buckets) <= 4


def assert_eventually(check: Any, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.02)
