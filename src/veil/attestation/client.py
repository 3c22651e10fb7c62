"""The one attester client: `veil migrate claim`, the worker agent and `veil worker` use it.

An attester that cannot be reached raises AttesterUnavailable (a worker agent retries in
its next round); one that answers with a refusal raises AttesterRefused with the
attester's own code and reason. It trusts no answer: it only reads it into the types of
`veil.attestation.api`; the caller recovers every signature and checks it against its
own copy of what should have been signed.

An attester that sheds load (503) or throttles (429) did no work for the request, so the
client asks again after an exponentially growing, fully jittered delay (a crowd that was
refused together does not return together), never less than the attester's Retry-After,
and gives up after a few attempts with the attester's last refusal. Other refusals are
final: retrying a 4xx that names a problem in the request changes nothing.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from veil.attestation import api
from veil.errors import VeilError


class AttesterUnavailable(VeilError):
    """No answer (connection refused, timeout, not HTTP, not JSON)."""


class AttesterRefused(VeilError):
    """The attester answered with an error status and a reason."""

    def __init__(self, url: str, status: int, reason: str, code: str = "") -> None:
        super().__init__(f"attester {url}: refused ({status}) {reason}".rstrip())
        self.status = status
        self.reason = reason
        self.code = code


@dataclass
class Backoff:
    attempts: int = 4  # tries in all, the first included
    base: float = 0.25  # seconds: the first delay is drawn from [0, base]
    cap: float = 8.0  # no single delay is longer (a Retry-After beyond it included)
    random: Callable[[], float] = field(default=random.random)
    sleep: Callable[[float], None] = field(default=time.sleep)

    def delay(self, attempt: int, retry_after: float | None = None) -> float:
        """Seconds to wait after failed try number `attempt` (0-based)."""
        ceiling: float = min(self.cap, self.base * 2**attempt)
        drawn = self.random() * ceiling
        if retry_after is not None and retry_after > 0:
            # the attester's floor, plus a jitter so its crowd spreads out again
            drawn = min(self.cap, retry_after) + self.random() * self.base
        return min(self.cap + self.base, drawn)


def retry_after_seconds(value: str | None) -> float | None:
    """Retry-After as delta-seconds (the only form an attester sends); else None."""
    if value is None:
        return None
    try:
        seconds = float(value.strip())
    except ValueError:
        return None
    return seconds if seconds >= 0 else None


DEFAULT = Backoff()


@dataclass(frozen=True)
class AttesterClient:
    """One attester, by its base URL."""

    url: str
    timeout: float = 15
    backoff: Backoff = field(default_factory=lambda: DEFAULT)

    def call(self, path: str, body: Any | None = None, timeout: float | None = None) -> bytes:
        """GET `path` (no body) or POST `body` as JSON; the raw answer of a 2xx."""
        import urllib.error  # urllib.request takes ~0.05 s to import; offline commands skip it
        import urllib.request

        data = json.dumps(body).encode() if body is not None else None
        headers = {"Content-Type": "application/json"} if data is not None else {}
        for attempt in range(self.backoff.attempts):
            request = urllib.request.Request(self.url.rstrip("/") + path, data, headers)
            try:
                with urllib.request.urlopen(request, timeout=timeout or self.timeout) as answer:
                    raw: bytes = answer.read()
                    return raw
            except urllib.error.HTTPError as error:
                try:
                    document = json.loads(error.read())
                except ValueError:
                    document = None
                refusal = api.ErrorAnswer.from_json(document, error.code, str(error.reason))
                if error.code not in api.RETRY_STATUSES or attempt + 1 == self.backoff.attempts:
                    raise AttesterRefused(self.url, error.code, refusal.message,
                                          refusal.code) from None  # fmt: skip
                wait = retry_after_seconds(error.headers.get("Retry-After"))
                self.backoff.sleep(self.backoff.delay(attempt, wait))
            except (urllib.error.URLError, OSError) as error:
                raise AttesterUnavailable(f"attester {self.url}: unreachable ({error})") from None
        raise AssertionError("unreachable: the last attempt returns or raises")

    def post(self, path: str, body: Any | None, timeout: float | None = None) -> dict[str, Any]:
        """The JSON object an attester answers at `path` (GET when `body` is None)."""
        try:
            answer = json.loads(self.call(path, body, timeout))
        except ValueError:  # not JSON at all: the same to the caller as any other shape
            answer = None
        if isinstance(answer, dict):
            return answer
        raise AttesterUnavailable(f"attester {self.url}: answer is not a JSON object")

    def bind(self, request: api.BindingRequest) -> api.BindingAnswer:
        """Ask for an attestation of a holder's binding."""
        return api.BindingAnswer.from_json(self.post(api.BINDINGS, request.to_json()))

    def register(self, request: api.RegistrationRequest) -> api.RegistrationAnswer:
        """Ask for a worker attestation (verification of a full quote takes a while)."""
        answer = self.post(api.REGISTRATIONS, request.to_json(), max(self.timeout, 60))
        return api.RegistrationAnswer.from_json(answer)

    def heartbeat(self, request: api.HeartbeatRequest) -> api.HeartbeatAnswer:
        return api.HeartbeatAnswer.from_json(self.post(api.HEARTBEATS, request.to_json()))

    def worker(self, address: str) -> dict[str, Any]:
        """What this attester recorded about a worker (latest registration, heartbeats)."""
        return self.post(api.WORKERS_PREFIX + address, None)

    def evidence(self, evidence_hash: str) -> bytes:
        """The evidence bundle whose sha256 an attestation names, as the attester keeps it."""
        return self.call(api.EVIDENCE_PREFIX + evidence_hash, None, max(self.timeout, 30))

    def heartbeat_log(self, epoch: int) -> bytes:
        """The attester's signed heartbeat log of `epoch`, as served (read it with
        `veil.compute.heartbeat_log.read_log`, which checks hash and signature)."""
        return self.call(f"{api.HEARTBEATS}?epoch={int(epoch)}", None, max(self.timeout, 300))

    def download_heartbeat_log(self, epoch: int, path: Path) -> Path:
        """The same log streamed to `path` (atomically: a cut download leaves no file),
        for epochs too large to hold in memory."""
        import urllib.error
        import urllib.request

        url = f"{self.url.rstrip('/')}{api.HEARTBEATS}?epoch={int(epoch)}"
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        try:
            with os.fdopen(fd, "wb") as out:
                try:
                    with urllib.request.urlopen(url, timeout=max(self.timeout, 300)) as answer:
                        shutil.copyfileobj(answer, out, 1 << 20)
                except urllib.error.HTTPError as error:
                    try:
                        document = json.loads(error.read())
                    except ValueError:
                        document = None
                    refusal = api.ErrorAnswer.from_json(document, error.code, str(error.reason))
                    raise AttesterRefused(self.url, error.code, refusal.message,
                                          refusal.code) from None  # fmt: skip
                except (urllib.error.URLError, OSError) as error:
                    problem = f"attester {self.url}: unreachable ({error})"
                    raise AttesterUnavailable(problem) from None
                out.flush()
                os.fsync(out.fileno())
            os.replace(tmp, path)
        finally:
            Path(tmp).unlink(missing_ok=True)
        return path

    def health(self) -> dict[str, Any]:
        return self.post(api.HEALTH, None)
