"""The gateway through to a real upstream: routing by host and path, streaming, WebSocket."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest
from gateway_kit import TOKEN, FakeRoutes, ServerThread, upstream_app
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import connect

from veil.services.gateway.proxy import Gateway, RouteTable

APP = "0x" + "ab" * 20
OTHER = "0x" + "cd" * 20
DOMAIN = "apps.test"


@dataclass
class Stack:
    upstream: ServerThread
    routes: FakeRoutes
    control_plane: ServerThread
    gateway: ServerThread
    now: list[float]

    def get(self, path: str, **kwargs) -> httpx.Response:
        return httpx.get(self.gateway.url + path, timeout=10, **kwargs)


@pytest.fixture
def stack() -> Iterator[Stack]:
    upstream = ServerThread(upstream_app())
    routes = FakeRoutes({(APP, 8080): upstream.url})
    control_plane = ServerThread(routes.app())
    now = [0.0]  # the route cache's clock, moved by the tests
    table = RouteTable(control_plane.url, TOKEN, ttl=3.0, clock=lambda: now[0])
    gateway = ServerThread(Gateway(table, domain=DOMAIN))
    yield Stack(upstream, routes, control_plane, gateway, now)
    for server in (gateway, control_plane, upstream):
        server.close()


def test_path_routing_forwards_method_path_query_and_headers(stack: Stack):
    reply = stack.get(
        f"/apps/{APP}/8080/some/path?x=1&y=two",
        headers={
            "X-Custom": "kept",
            "Connection": "close, X-Drop",
            "X-Drop": "no",
            "X-Request-Id": "req-42",
        },
    )
    assert reply.status_code == 200
    seen = reply.json()
    assert seen["method"] == "GET" and seen["path"] == "/some/path" and seen["query"] == "x=1&y=two"
    headers = seen["headers"]
    assert "transfer-encoding" not in headers and seen["body_bytes"] == 0  # no body, none sent
    assert headers["x-custom"] == "kept" and "x-drop" not in headers
    assert headers["x-forwarded-for"] == "127.0.0.1"
    assert headers["x-forwarded-proto"] == "http"
    assert headers["x-forwarded-host"] == f"127.0.0.1:{stack.gateway.port}"
    assert headers["x-request-id"] == "req-42"
    # the upstream's hop-by-hop headers stay on its hop; its own headers come through
    assert reply.headers["x-app"] == "echo" and "x-secret-hop" not in reply.headers
    assert reply.headers["x-request-id"] == "req-42"
    assert stack.get(f"/apps/{APP.upper().replace('0X', '0x')}/8080").json()["path"] == "/"


def test_host_routing(stack: Stack):
    host = f"{APP[2:]}-8080.{DOMAIN}"
    reply = stack.get("/hello?q=1", headers={"Host": host})
    assert reply.json()["path"] == "/hello" and reply.json()["query"] == "q=1"
    with_prefix = stack.get("/", headers={"Host": f"{APP}-8080.{DOMAIN}:443"})
    assert with_prefix.status_code == 200
    bad = stack.get("/", headers={"Host": f"nonsense.{DOMAIN}"})
    assert bad.status_code == 404 and bad.json()["code"] == "no_route"


def test_bodies_stream_both_ways(stack: Stack):
    def upload():
        for _ in range(64):
            yield b"x" * 16384

    reply = httpx.post(stack.gateway.url + f"/apps/{APP}/8080/up", content=upload(), timeout=10)
    assert reply.json()["body_bytes"] == 64 * 16384
    arrivals = []
    with httpx.stream("GET", stack.gateway.url + f"/apps/{APP}/8080/stream", timeout=10) as r:
        for line in r.iter_lines():
            arrivals.append((time.monotonic(), line))
    assert [line for _, line in arrivals] == [f"chunk {i}" for i in range(5)]
    assert arrivals[-1][0] - arrivals[0][0] > 0.1  # chunks arrived as sent, not at the end


def test_errors_have_codes_and_request_ids(stack: Stack):
    unknown = stack.get(f"/apps/{OTHER}/8080/")
    assert unknown.status_code == 404
    body = unknown.json()
    assert body["code"] == "app_not_found" and body["request_id"]
    assert unknown.headers["x-request-id"] == body["request_id"]
    stack.routes.stopped.add(OTHER)
    stopped = stack.get(f"/apps/{OTHER}/8080/")
    assert stopped.status_code == 503 and stopped.json()["code"] == "app_not_running"
    nowhere = stack.get("/favicon.ico")
    assert nowhere.status_code == 404 and nowhere.json()["code"] == "no_route"
    bad_port = stack.get(f"/apps/{APP}/99999/")
    assert bad_port.status_code == 404 and "outside 1-65535" in bad_port.json()["message"]
    stack.upstream.close()
    down = stack.get(f"/apps/{APP}/8080/")
    assert down.status_code == 502 and down.json()["code"] == "upstream_unreachable"


def test_routes_are_cached_briefly_and_follow_a_move(stack: Stack):
    stack.get(f"/apps/{APP}/8080/")
    calls = stack.routes.calls
    for _ in range(5):
        stack.get(f"/apps/{APP}/8080/")
    assert stack.routes.calls == calls  # served from the cache
    moved = ServerThread(upstream_app())
    try:
        stack.routes.table[(APP, 8080)] = moved.url
        stack.upstream.close()
        stack.now[0] += 2.9
        failed = stack.get(f"/apps/{APP}/8080/x")  # still cached: the old worker is gone
        assert failed.status_code == 502 and failed.json()["code"] == "upstream_unreachable"
        # ... and a failed upstream drops the cached route at once
        assert stack.get(f"/apps/{APP}/8080/x").json()["path"] == "/x"
    finally:
        moved.close()


def test_a_wrong_token_or_dead_control_plane_is_a_502(stack: Stack):
    wrong = ServerThread(Gateway(RouteTable(stack.control_plane.url, "wrong")))
    dead = ServerThread(Gateway(RouteTable("http://127.0.0.1:9", TOKEN)))
    try:
        reply = httpx.get(wrong.url + f"/apps/{APP}/8080/", timeout=10)
        assert reply.status_code == 502 and reply.json()["code"] == "control_plane_error"
        reply = httpx.get(dead.url + f"/apps/{APP}/8080/", timeout=10)
        assert reply.status_code == 502 and reply.json()["code"] == "control_plane_unreachable"
    finally:
        wrong.close()
        dead.close()


def test_websocket_both_ways_by_path_and_host(stack: Stack):
    url = f"ws://127.0.0.1:{stack.gateway.port}/apps/{APP}/8080/ws"
    with connect(url, subprotocols=["veil.v1"]) as ws:
        assert ws.subprotocol == "veil.v1"
        assert ws.recv(timeout=5) == "hello http"
        ws.send("ping")
        assert ws.recv(timeout=5) == "echo ping"
        ws.send(b"\x01\x02\x03")
        assert ws.recv(timeout=5) == b"\x03\x02\x01"
        ws.send("bye")
        with pytest.raises(ConnectionClosed) as closed:
            ws.recv(timeout=5)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 4001
    host = f"{APP[2:]}-8080.{DOMAIN}"
    sock = socket.create_connection(("127.0.0.1", stack.gateway.port))
    with connect(f"ws://{host}/ws", sock=sock) as ws:
        assert ws.recv(timeout=5) == "hello http"


def test_websocket_to_an_unknown_app_is_refused_with_the_code(stack: Stack):
    with pytest.raises(InvalidStatus) as refused:
        connect(f"ws://127.0.0.1:{stack.gateway.port}/apps/{OTHER}/8080/ws", open_timeout=5)
    response = refused.value.response
    assert response.status_code == 404 and b"app_not_found" in response.body


def test_websocket_to_a_dead_upstream_is_a_502(stack: Stack):
    stack.upstream.close()
    with pytest.raises(InvalidStatus) as refused:
        connect(f"ws://127.0.0.1:{stack.gateway.port}/apps/{APP}/8080/ws", open_timeout=10)
    response = refused.value.response
    assert response.status_code == 502 and b"upstream_unreachable" in response.body
    assert response.headers["x-request-id"]


def test_a_client_leaving_mid_stream_leaves_the_gateway_serving(stack: Stack):
    with httpx.stream("GET", stack.gateway.url + f"/apps/{APP}/8080/stream", timeout=10) as r:
        first = next(r.iter_lines())
    assert first == "chunk 0"  # and the client hangs up with four chunks still to come
    time.sleep(0.3)
    assert stack.get(f"/apps/{APP}/8080/after").json()["path"] == "/after"
