"""How attester clients retry an attester that sheds load (503) or throttles them (429).

Both answers mean "the same request, later": the attester did no work for it. Clients
wait an exponentially growing, fully jittered delay (so a crowd that was refused
together does not return together), never less than the attester's Retry-After, and
give up after a few attempts with the attester's last refusal. Other refusals are
final: retrying a 4xx that names a problem in the request changes nothing.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field

RETRY_STATUSES = frozenset({429, 503})


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
