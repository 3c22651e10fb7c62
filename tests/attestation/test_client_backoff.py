"""The attester client (used by migrate claim, the worker agent and `veil worker`) retries
what an attester sheds or throttles, after jittered delays that honour Retry-After, and
nothing else."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any

import pytest

from veil.attestation import api
from veil.attestation.client import AttesterClient, AttesterRefused, Backoff, retry_after_seconds


class Scripted:
    """A server that answers POSTs from a script of (status, Retry-After) pairs."""

    def __init__(self, script: list[tuple[int, str | None]]) -> None:
        self.script = list(script)
        self.seen = 0
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                self.rfile.read(int(self.headers["Content-Length"]))
                status, retry = outer.script[min(outer.seen, len(outer.script) - 1)]
                outer.seen += 1
                body = json.dumps({"ok": True} if status == 200 else {"error": f"no ({status})"})
                self.send_response(status)
                if retry is not None:
                    self.send_header("Retry-After", retry)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body.encode())

        self.server = HTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"


@pytest.fixture
def scripted() -> Iterator[Any]:
    servers: list[Scripted] = []

    def make(script: list[tuple[int, str | None]]) -> Scripted:
        servers.append(Scripted(script))
        return servers[-1]

    yield make
    for s in servers:
        s.server.shutdown()
        s.server.server_close()


def recorder(draw: float = 0.5) -> tuple[Backoff, list[float]]:
    slept: list[float] = []
    return Backoff(attempts=4, base=0.25, cap=8.0, random=lambda: draw, sleep=slept.append), slept


def test_client_retries_503_and_429_then_succeeds(scripted: Any) -> None:
    server = scripted([(503, "2"), (429, None), (200, None)])
    backoff, slept = recorder()
    client = AttesterClient(server.url, backoff=backoff)
    assert client.post(api.BINDINGS, {"x": 1}) == {"ok": True}
    assert server.seen == 3
    # Retry-After 2 plus jitter in [0, base]; then half of base * 2**1
    assert slept == [pytest.approx(2.125), pytest.approx(0.25)]


def test_client_gives_up_with_the_last_refusal(scripted: Any) -> None:
    server = scripted([(503, "1")])
    backoff, slept = recorder()
    with pytest.raises(AttesterRefused, match=r"refused \(503\) no \(503\)") as refused:
        AttesterClient(server.url, backoff=backoff).post(api.BINDINGS, {})
    assert refused.value.code == "service_unavailable"  # no code in the body: the status's
    assert server.seen == 4 and len(slept) == 3


def test_final_refusals_are_not_retried(scripted: Any) -> None:
    server = scripted([(422, None)])
    backoff, slept = recorder()
    client = AttesterClient(server.url, backoff=backoff)
    with pytest.raises(AttesterRefused, match="422"):
        client.post(api.BINDINGS, {})
    with pytest.raises(AttesterRefused) as refused:
        client.post(api.REGISTRATIONS, {})
    assert refused.value.status == 422
    assert server.seen == 2 and slept == []  # one try each


def test_worker_client_retries_what_the_attester_sheds(scripted: Any) -> None:
    server = scripted([(503, "1"), (503, "1"), (200, None)])
    backoff, slept = recorder(draw=0.0)
    assert AttesterClient(server.url, backoff=backoff).post(api.HEARTBEATS, {}) == {"ok": True}
    assert slept == [1.0, 1.0]
    everything = scripted([(429, "30")])
    with pytest.raises(AttesterRefused) as refused:
        AttesterClient(everything.url, backoff=backoff).post(api.HEARTBEATS, {})
    assert refused.value.status == 429
    assert max(slept) <= 8.0 + 0.25  # a huge Retry-After is capped


def test_delays_grow_are_jittered_and_capped() -> None:
    draws = iter([1.0, 1.0, 1.0, 1.0, 1.0, 0.0])
    backoff = Backoff(base=0.5, cap=3.0, random=lambda: next(draws))
    assert [backoff.delay(n) for n in range(5)] == [0.5, 1.0, 2.0, 3.0, 3.0]
    assert backoff.delay(7) == 0.0  # full jitter: anywhere from nothing to the ceiling
    assert retry_after_seconds("3") == 3.0
    assert retry_after_seconds("Wed, 21 Oct 2015 07:28:00 GMT") is None
    assert retry_after_seconds("-1") is None and retry_after_seconds(None) is None
