"""Heartbeats counted per worker: what the threshold of attesters agrees it saw.

Each attester publishes the heartbeats it accepted in an epoch (its signed log). One
attester alone cannot invent uptime: a heartbeat (worker, sequence) counts only if at
least `threshold` attesters' logs hold it, the same M-of-N rule the contracts apply to
every attester statement. Refusals (replayed, future, duplicate, ...) are tallied per
reason so the report shows why a worker's count is low, and never pay.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import chain

from veil.errors import InputError


@dataclass(frozen=True)
class AttesterHeartbeats:
    """One attester's log for one epoch, reduced to what the report counts."""

    attester: str
    accepted: Mapping[str, Sequence[int]]  # worker -> sequences accepted in the epoch
    refused: Mapping[str, Mapping[str, int]] = field(default_factory=dict)
    complete: bool = True
    sha256: str = ""


@dataclass(frozen=True)
class WorkerHeartbeats:
    counted: dict[str, int]  # attester -> heartbeats it accepted from this worker
    accepted: int  # sequences held by >= threshold attesters
    refused: dict[str, int]  # reason -> count, summed over attesters


def count_heartbeats(
    logs: Sequence[AttesterHeartbeats], threshold: int
) -> dict[str, WorkerHeartbeats]:
    """Per worker (every worker any log names), the counts the report shows."""
    if threshold < 1:
        raise InputError(f"threshold {threshold}: must be at least 1")
    seen = [log.attester.lower() for log in logs]
    if len(set(seen)) != len(seen):
        raise InputError("heartbeat logs: two logs from the same attester")
    workers = sorted(set(chain.from_iterable(log.accepted for log in logs))
                     | set(chain.from_iterable(log.refused for log in logs)))  # fmt: skip
    out: dict[str, WorkerHeartbeats] = {}
    for worker in workers:
        per_attester = [set(log.accepted.get(worker, ())) for log in logs]
        if threshold == 1:
            accepted = len(set().union(*per_attester))
        elif threshold > len(logs):
            accepted = 0
        else:
            tally = Counter(chain.from_iterable(per_attester))
            accepted = sum(1 for n in tally.values() if n >= threshold)
        refused: Counter[str] = Counter()
        for log in logs:
            refused.update(log.refused.get(worker, {}))
        out[worker] = WorkerHeartbeats(
            {log.attester: len(s) for log, s in zip(logs, per_attester, strict=True) if s},
            accepted,
            dict(sorted(refused.items())),
        )
    return out


def merge_sequences(pairs: Iterable[tuple[str, int]]) -> dict[str, list[int]]:
    """(worker, sequence) pairs grouped by worker, for building an AttesterHeartbeats."""
    grouped: dict[str, list[int]] = {}
    for worker, sequence in pairs:
        grouped.setdefault(worker, []).append(sequence)
    return grouped
