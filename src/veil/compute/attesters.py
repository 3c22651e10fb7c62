"""The worker's side of the attester HTTP API: ask for attestations, send heartbeats, read.

An attester that cannot be reached raises AttesterUnavailable (the agent retries later);
one that answers with a refusal raises AttesterRefused with the attester's own reason.
An attester that sheds load (503) or throttles (429) is asked again after a jittered,
growing delay that honours its Retry-After (veil.attester.backoff) before either is raised.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

from veil.attester.backoff import DEFAULT, RETRY_STATUSES, Backoff, retry_after_seconds
from veil.attester.compute import (
    EVIDENCE_PREFIX,
    HEARTBEATS_PATH,
    REGISTRATIONS_PATH,
    WORKERS_PREFIX,
)
from veil.errors import VeilError


class AttesterUnavailable(VeilError):
    """No answer (connection refused, timeout, not HTTP)."""


class AttesterRefused(VeilError):
    """The attester answered with an error status and a reason."""

    def __init__(self, url: str, status: int, reason: str) -> None:
        super().__init__(f"attester {url}: {status} {reason}")
        self.status = status
        self.reason = reason


def _call(
    url: str, path: str, body: Any | None, timeout: float, backoff: Backoff = DEFAULT
) -> bytes:
    data = json.dumps(body).encode() if body is not None else None
    headers = {"Content-Type": "application/json"} if data is not None else {}
    for attempt in range(backoff.attempts):
        request = urllib.request.Request(url.rstrip("/") + path, data=data, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                answer: bytes = response.read()
                return answer
        except urllib.error.HTTPError as error:
            try:
                reason = json.loads(error.read()).get("error", error.reason)
            except ValueError:
                reason = str(error.reason)
            if error.code not in RETRY_STATUSES or attempt + 1 == backoff.attempts:
                raise AttesterRefused(url, error.code, str(reason)) from None
            wait = retry_after_seconds(error.headers.get("Retry-After"))
            backoff.sleep(backoff.delay(attempt, wait))
        except (urllib.error.URLError, OSError) as error:
            raise AttesterUnavailable(f"attester {url}: unreachable ({error})") from None
    raise AssertionError("unreachable: the last attempt returns or raises")


def _json(
    url: str, path: str, body: Any | None, timeout: float, backoff: Backoff = DEFAULT
) -> dict[str, Any]:
    raw = _call(url, path, body, timeout, backoff)
    try:
        answer = json.loads(raw)
    except ValueError:
        raise AttesterUnavailable(f"attester {url}: answer is not JSON") from None
    if not isinstance(answer, dict):
        raise AttesterUnavailable(f"attester {url}: answer is not a JSON object")
    return answer


def request_attestation(
    url: str, body: dict[str, Any], timeout: float = 60, backoff: Backoff = DEFAULT
) -> dict[str, Any]:
    return _json(url, REGISTRATIONS_PATH, body, timeout, backoff)


def send_heartbeat(
    url: str, body: dict[str, Any], timeout: float = 15, backoff: Backoff = DEFAULT
) -> dict[str, Any]:
    return _json(url, HEARTBEATS_PATH, body, timeout, backoff)


def worker_view(url: str, worker: str, timeout: float = 15) -> dict[str, Any]:
    return _json(url, WORKERS_PREFIX + worker, None, timeout)


def fetch_evidence(url: str, evidence_hash: str, timeout: float = 30) -> bytes:
    return _call(url, EVIDENCE_PREFIX + evidence_hash, None, timeout)
