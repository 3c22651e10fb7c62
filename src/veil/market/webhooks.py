"""Billing webhooks: what to tell a customer about a lease, signed so the receiver can
trust it, delivered until it lands.

Escrow that runs out unnoticed is the complaint this answers, so the events are the
moments a customer can still act on: runway down to 24 h and to 1 h, paused, resumed,
closed. Signatures follow Stripe's scheme, which receivers already know how to check:
header `Veil-Signature: t=<unix time>,v1=<hex HMAC-SHA256 of "<t>.<body>">`, the timestamp
inside the MAC so a captured delivery cannot be replayed later than the tolerance.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from veil.errors import InputError
from veil.market.runway import STATE_CLOSED, STATE_PAUSED, STATE_RUNNING

SIGNATURE_HEADER = "Veil-Signature"
EVENT_HEADER = "Veil-Event"
DELIVERY_HEADER = "Veil-Delivery"
#: Runway thresholds (seconds) at which a low-balance event fires, largest first.
LOW_BALANCE_AT = (24 * 3_600, 3_600)
DEFAULT_TOLERANCE = 300

LOW_BALANCE = "lease.low_balance"
PAUSED = "lease.paused"
RESUMED = "lease.resumed"
CLOSED = "lease.closed"


class WebhookSignatureError(InputError):
    """A delivery whose signature header is missing, malformed, stale or wrong."""


def sign(secret: bytes, body: bytes, timestamp: int) -> str:
    """The `Veil-Signature` header value for `body` sent at `timestamp`."""
    mac = hmac.new(secret, f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={mac}"


def verify(
    secret: bytes,
    body: bytes,
    header: str | None,
    now: int | None = None,
    tolerance: int = DEFAULT_TOLERANCE,
) -> int:
    """Check a delivery as a receiver would; returns its timestamp. Accepts any of several
    `v1=` values (a sender rotating secrets signs with both)."""
    if not header:
        raise WebhookSignatureError(f"missing {SIGNATURE_HEADER} header")
    timestamp: int | None = None
    macs: list[str] = []
    for part in header.split(","):
        key, _, value = part.strip().partition("=")
        if key == "t":
            try:
                timestamp = int(value)
            except ValueError:
                raise WebhookSignatureError(f"bad timestamp {value!r}") from None
        elif key == "v1":
            macs.append(value)
    if timestamp is None or not macs:
        raise WebhookSignatureError(f"{SIGNATURE_HEADER} needs t= and v1=")
    now = int(time.time()) if now is None else now
    if abs(now - timestamp) > tolerance:
        raise WebhookSignatureError(
            f"timestamp {timestamp} is {abs(now - timestamp)} s from now (tolerance {tolerance} s)"
        )
    expected = sign(secret, body, timestamp).split("v1=", 1)[1]
    if not any(hmac.compare_digest(expected, mac) for mac in macs):
        raise WebhookSignatureError("signature does not match the body")
    return timestamp


@dataclass(frozen=True)
class LeaseSnapshot:
    """What the notifier remembers of a lease between polls."""

    state: int
    runway_seconds: int


def lease_events(before: LeaseSnapshot | None, after: LeaseSnapshot) -> list[dict[str, Any]]:
    """The events between two observations of one lease. A threshold fires when runway
    crosses it downward (once, not on every poll below it) and again after a top-up
    lifts the runway above it and it runs down again."""
    events: list[dict[str, Any]] = []
    if before is None:
        before = LeaseSnapshot(STATE_RUNNING, 2**63)
    if after.state == STATE_CLOSED:
        if before.state != STATE_CLOSED:
            events.append({"type": CLOSED})
        return events
    if after.state == STATE_PAUSED and before.state != STATE_PAUSED:
        events.append({"type": PAUSED})
    elif after.state == STATE_RUNNING and before.state == STATE_PAUSED:
        events.append({"type": RESUMED, "runway_seconds": after.runway_seconds})
    if after.state == STATE_RUNNING:
        crossed = [t for t in LOW_BALANCE_AT if after.runway_seconds <= t < before.runway_seconds]
        if before.state == STATE_PAUSED:  # resumed, but still short: say so again
            crossed = [t for t in LOW_BALANCE_AT if after.runway_seconds <= t]
        if crossed:
            events.append(
                {
                    "type": LOW_BALANCE,
                    "threshold_seconds": min(crossed),
                    "runway_seconds": after.runway_seconds,
                }
            )
    return events


def envelope(kind: str, data: dict[str, Any], created: int, delivery_id: str) -> bytes:
    """The JSON body of one delivery (compact, sorted keys: stable bytes to sign)."""
    doc = {"id": delivery_id, "type": kind, "created": created, "data": data}
    return json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()


@dataclass
class DeliveryResult:
    """How a delivery ended: `delivered`, the attempts made and the last status/error."""

    delivered: bool
    attempts: int
    status: int | None = None
    error: str = ""
    waits: list[float] = field(default_factory=list)


#: Statuses worth retrying: the receiver was busy or broken, not refusing the content.
RETRY_STATUS = frozenset({408, 409, 425, 429, 500, 502, 503, 504})


def backoff(attempt: int, base: float = 1.0, cap: float = 3_600.0, jitter: float = 0.1) -> float:
    """Seconds to wait before attempt `attempt + 1`: doubling from `base`, capped, with
    up to `jitter` of it random so a receiver coming back is not hit by everyone at once."""
    wait = min(cap, base * 2**attempt)
    return wait * (1 + jitter * random.random())


def deliver(
    url: str,
    kind: str,
    body: bytes,
    secret: bytes,
    *,
    delivery_id: str,
    post: Callable[[str, bytes, dict[str, str]], int],
    attempts: int = 8,
    base: float = 1.0,
    timeout_budget: float | None = None,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.time,
) -> DeliveryResult:
    """POST `body` to `url` until a 2xx, re-signing each attempt with its own timestamp
    (so a late retry is not refused as stale). Retries on connection errors and on
    `RETRY_STATUS`; any other status is final. `post(url, body, headers) -> status` is
    the transport (`httpx_post` in production, a fake in tests)."""
    result = DeliveryResult(delivered=False, attempts=0)
    started = clock()
    for attempt in range(attempts):
        headers = {
            "Content-Type": "application/json",
            SIGNATURE_HEADER: sign(secret, body, int(clock())),
            EVENT_HEADER: kind,
            DELIVERY_HEADER: delivery_id,
        }
        result.attempts = attempt + 1
        try:
            result.status = post(url, body, headers)
            result.error = ""
        except OSError as error:  # connection refused, reset, DNS, timeouts
            result.status, result.error = None, f"{type(error).__name__}: {error}"
        if result.status is not None and 200 <= result.status < 300:
            result.delivered = True
            return result
        if result.status is not None and result.status not in RETRY_STATUS:
            result.error = f"HTTP {result.status} (not retried)"
            return result
        if attempt + 1 == attempts:
            break
        wait = backoff(attempt, base)
        if timeout_budget is not None and clock() + wait - started > timeout_budget:
            break
        result.waits.append(wait)
        sleep(wait)
    return result


def httpx_post(timeout: float = 10.0) -> Callable[[str, bytes, dict[str, str]], int]:
    """A `post` for `deliver` over httpx; transport failures surface as OSError."""
    import httpx

    def post(url: str, body: bytes, headers: dict[str, str]) -> int:
        try:
            return httpx.post(url, content=body, headers=headers, timeout=timeout).status_code
        except httpx.TransportError as error:
            raise OSError(str(error) or type(error).__name__) from error

    return post


def deliver_all(
    targets: Sequence[tuple[str, bytes]],
    kind: str,
    data: dict[str, Any],
    *,
    delivery_id: str,
    post: Callable[[str, bytes, dict[str, str]], int],
    created: int | None = None,
    **options: Any,
) -> list[DeliveryResult]:
    """One event to every (url, secret) subscribed, each delivery independent."""
    created = int(time.time()) if created is None else created
    body = envelope(kind, data, created, delivery_id)
    return [
        deliver(url, kind, body, secret, delivery_id=delivery_id, post=post, **options)
        for url, secret in targets
    ]
