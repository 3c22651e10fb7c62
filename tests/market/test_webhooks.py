"""Webhooks: Stripe-style signatures a receiver can verify, the events a customer acts on,
and delivery that retries with backoff until a 2xx (and stops on a refusal)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest

from veil.market import webhooks
from veil.market.runway import STATE_CLOSED, STATE_PAUSED, STATE_RUNNING
from veil.market.webhooks import LeaseSnapshot, WebhookSignatureError

SECRET = b"whsec_test"
BODY = b'{"type":"lease.paused"}'
HOUR = 3_600


def test_signature_round_trip_and_refusals() -> None:
    header = webhooks.sign(SECRET, BODY, 1_700_000_000)
    assert header.startswith("t=1700000000,v1=") and len(header.split("v1=")[1]) == 64
    assert webhooks.verify(SECRET, BODY, header, now=1_700_000_100) == 1_700_000_000
    with pytest.raises(WebhookSignatureError, match="does not match"):
        webhooks.verify(SECRET, BODY + b" ", header, now=1_700_000_000)
    with pytest.raises(WebhookSignatureError, match="does not match"):
        webhooks.verify(b"other", BODY, header, now=1_700_000_000)
    with pytest.raises(WebhookSignatureError, match="tolerance"):
        webhooks.verify(SECRET, BODY, header, now=1_700_000_301)
    with pytest.raises(WebhookSignatureError, match="missing"):
        webhooks.verify(SECRET, BODY, None)
    with pytest.raises(WebhookSignatureError, match="needs t= and v1="):
        webhooks.verify(SECRET, BODY, "v1=abc", now=0)
    with pytest.raises(WebhookSignatureError, match="bad timestamp"):
        webhooks.verify(SECRET, BODY, "t=soon,v1=abc", now=0)


def test_the_timestamp_is_inside_the_mac() -> None:
    header = webhooks.sign(SECRET, BODY, 1_000)
    moved = header.replace("t=1000", "t=2000")
    with pytest.raises(WebhookSignatureError, match="does not match"):
        webhooks.verify(SECRET, BODY, moved, now=2_000)


def test_a_rotating_sender_may_sign_with_two_secrets() -> None:
    old = webhooks.sign(b"old", BODY, 5_000)
    new = webhooks.sign(SECRET, BODY, 5_000)
    both = f"{old},v1={new.split('v1=')[1]}"
    assert webhooks.verify(SECRET, BODY, both, now=5_000) == 5_000


def snap(state: int, runway: int) -> LeaseSnapshot:
    return LeaseSnapshot(state, runway)


def kinds(events: list[dict]) -> list[tuple]:
    return [(e["type"], e.get("threshold_seconds")) for e in events]


def test_low_balance_fires_once_per_threshold_crossed() -> None:
    events = webhooks.lease_events
    assert events(snap(STATE_RUNNING, 30 * HOUR), snap(STATE_RUNNING, 25 * HOUR)) == []
    assert kinds(events(snap(STATE_RUNNING, 25 * HOUR), snap(STATE_RUNNING, 24 * HOUR))) == [
        ("lease.low_balance", 24 * HOUR)
    ]
    assert events(snap(STATE_RUNNING, 24 * HOUR), snap(STATE_RUNNING, 20 * HOUR)) == []
    # both thresholds crossed between two polls: the nearer one is reported
    assert kinds(events(snap(STATE_RUNNING, 30 * HOUR), snap(STATE_RUNNING, 10))) == [
        ("lease.low_balance", HOUR)
    ]
    # a top-up lifts it above; running down again fires again
    assert events(snap(STATE_RUNNING, 10), snap(STATE_RUNNING, 48 * HOUR)) == []
    assert kinds(events(snap(STATE_RUNNING, 48 * HOUR), snap(STATE_RUNNING, 23 * HOUR))) == [
        ("lease.low_balance", 24 * HOUR)
    ]
    # the first observation of a short lease says so
    assert kinds(events(None, snap(STATE_RUNNING, 100))) == [("lease.low_balance", HOUR)]


def test_pause_resume_close() -> None:
    events = webhooks.lease_events
    assert kinds(events(snap(STATE_RUNNING, 5), snap(STATE_PAUSED, 0))) == [("lease.paused", None)]
    assert events(snap(STATE_PAUSED, 0), snap(STATE_PAUSED, 0)) == []
    resumed = events(snap(STATE_PAUSED, 0), snap(STATE_RUNNING, 48 * HOUR))
    assert kinds(resumed) == [("lease.resumed", None)]
    short = events(snap(STATE_PAUSED, 0), snap(STATE_RUNNING, 600))
    assert kinds(short) == [("lease.resumed", None), ("lease.low_balance", HOUR)]
    assert kinds(events(snap(STATE_PAUSED, 0), snap(STATE_CLOSED, 0))) == [("lease.closed", None)]
    assert events(snap(STATE_CLOSED, 0), snap(STATE_CLOSED, 0)) == []


class FakeReceiver:
    def __init__(self, statuses: list[int | Exception]) -> None:
        self.statuses = statuses
        self.calls: list[dict[str, str]] = []

    def __call__(self, url: str, body: bytes, headers: dict[str, str]) -> int:
        self.calls.append(headers)
        status = self.statuses.pop(0)
        if isinstance(status, Exception):
            raise status
        return status


def test_delivery_retries_busy_and_broken_receivers_with_growing_waits() -> None:
    receiver = FakeReceiver([ConnectionRefusedError("refused"), 503, 429, 200])
    slept: list[float] = []
    clock = iter(range(1_000, 2_000, 7))
    result = webhooks.deliver(
        "http://x", "lease.paused", BODY, SECRET, delivery_id="d1", post=receiver,
        sleep=slept.append, clock=lambda: next(clock), base=2.0,
    )  # fmt: skip
    assert result.delivered and result.attempts == 4 and result.status == 200
    assert len(slept) == 3
    assert [int(w) for w in slept] == [2, 4, 8]  # doubling, jitter under 10 %
    assert all(w < b * 1.1 for w, b in zip(slept, [2, 4, 8], strict=True))
    # every attempt is signed afresh and names the event and the delivery
    stamps = {h[webhooks.SIGNATURE_HEADER].split(",")[0] for h in receiver.calls}
    assert len(stamps) == 4
    assert {h[webhooks.DELIVERY_HEADER] for h in receiver.calls} == {"d1"}
    assert {h[webhooks.EVENT_HEADER] for h in receiver.calls} == {"lease.paused"}


def test_delivery_stops_on_a_refusal_and_after_the_last_attempt() -> None:
    refused = webhooks.deliver(
        "http://x",
        "k",
        BODY,
        SECRET,
        delivery_id="d",
        post=FakeReceiver([400]),
        sleep=lambda _: None,
    )
    assert (refused.delivered, refused.attempts, refused.error) == (
        False,
        1,
        "HTTP 400 (not retried)",
    )
    down = webhooks.deliver(
        "http://x", "k", BODY, SECRET, delivery_id="d",
        post=FakeReceiver([OSError("down")] * 3), attempts=3, sleep=lambda _: None,
    )  # fmt: skip
    assert (down.delivered, down.attempts, len(down.waits)) == (False, 3, 2)
    assert "down" in down.error


def test_delivery_gives_up_when_the_budget_would_be_exceeded() -> None:
    now = [0.0]

    def sleep(seconds: float) -> None:
        now[0] += seconds

    result = webhooks.deliver(
        "http://x", "k", BODY, SECRET, delivery_id="d", post=FakeReceiver([503] * 10),
        attempts=10, base=10.0, timeout_budget=25.0, sleep=sleep, clock=lambda: now[0],
    )  # fmt: skip
    # waits of ~10 s then ~20 s: the second would end past 25 s, so it stops after two tries
    assert not result.delivered and result.attempts == 2 and len(result.waits) == 1


@pytest.fixture
def receiver() -> Iterator[tuple[str, list[tuple[bytes, str]]]]:
    """A real HTTP receiver that verifies each delivery as a customer's server would."""
    got: list[tuple[bytes, str]] = []
    fails = [503]

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            header = self.headers[webhooks.SIGNATURE_HEADER]
            if fails:
                fails.pop()
                self.send_response(503)
            else:
                try:
                    webhooks.verify(SECRET, body, header)
                    got.append((body, self.headers[webhooks.EVENT_HEADER]))
                    self.send_response(204)
                except WebhookSignatureError:
                    self.send_response(400)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/hook", got
    finally:
        server.shutdown()
        server.server_close()


def test_delivery_over_http_to_a_verifying_receiver(receiver) -> None:
    url, got = receiver
    data = {"lease": "0x01", "runway_seconds": 3_000, "threshold_seconds": HOUR}
    results = webhooks.deliver_all(
        [(url, SECRET)], "lease.low_balance", data, delivery_id="evt_1",
        post=webhooks.httpx_post(timeout=5), sleep=lambda _: None,
    )  # fmt: skip
    assert [(r.delivered, r.attempts, r.status) for r in results] == [(True, 2, 204)]
    body, kind = got[0]
    assert kind == "lease.low_balance"
    doc = json.loads(body)
    assert doc["id"] == "evt_1" and doc["type"] == "lease.low_balance" and doc["data"] == data
    wrong = webhooks.deliver_all(
        [(url, b"not the secret")], "lease.closed", {}, delivery_id="evt_2",
        post=webhooks.httpx_post(timeout=5), sleep=lambda _: None,
    )  # fmt: skip
    assert (wrong[0].delivered, wrong[0].status) == (False, 400)


def test_connection_refused_surfaces_as_a_retryable_error() -> None:
    result = webhooks.deliver(
        "http://127.0.0.1:9/none", "k", BODY, SECRET, delivery_id="d",
        post=webhooks.httpx_post(timeout=2), attempts=2, sleep=lambda _: None,
    )  # fmt: skip
    assert not result.delivered and result.attempts == 2 and result.status is None
    assert result.error
