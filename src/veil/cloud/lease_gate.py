"""Whether a billed app may run on this worker, decided from the chain.

The control plane only names the lease; the worker reads the lease itself from the
market, so a control plane that is wrong, late or lying cannot make a provider run an app
nobody pays for, nor stop one that is paid. A lease lets its app run while it is
`running` on the chain and pays this worker's provider; `paused` (runway spent) stops
the app with its disk kept, and a top-up that resumes the lease starts it again.

Answers are cached for `ttl` seconds so a sync every few seconds costs at most one
`lease(id)` call per app per `ttl`; the state itself is computed from that one read
(`veil.market.runway`), at the chain's clock.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from veil.errors import VeilError
from veil.market import runway

#: (lease, chain time) for a lease id; raises VeilError when the chain cannot be read.
LeaseReader = Callable[[int], tuple[runway.Lease, int]]


@dataclass(frozen=True)
class Verdict:
    run: bool
    reason: str


def escrow_reader(escrow: object) -> LeaseReader:
    """A reader over `veil.market.escrow.Escrow` (one lease read and one block read)."""

    def read(lease_id: int) -> tuple[runway.Lease, int]:
        return escrow.lease(lease_id), escrow.now()  # type: ignore[attr-defined]

    return read


@dataclass
class LeaseGate:
    read: LeaseReader
    provider: str
    ttl: float = 5.0
    clock: Callable[[], float] = time.monotonic
    #: The Market `read` looks at and its chain: what a billed app is told about its lease
    #: (`veil.cloud.agent.lease_env`), so it signs vouchers for the market that gates it.
    market: str = ""
    chain_id: int = 0
    _cache: dict[int, tuple[float, Verdict]] = field(default_factory=dict, init=False)

    def check(self, lease_hex: str) -> Verdict:
        try:
            lease_id = int(lease_hex, 16)
        except ValueError:
            return Verdict(False, f"lease {lease_hex!r} is not a lease id")
        cached = self._cache.get(lease_id)
        now = self.clock()
        if cached is not None and now - cached[0] < self.ttl:
            return cached[1]
        try:
            lease, chain_now = self.read(lease_id)
        except VeilError as error:
            # unknown lease, or the chain is unreachable: an unpaid app must not start;
            # one already running keeps its last verdict until the chain answers again
            if cached is not None:
                return cached[1]
            return Verdict(False, f"lease {lease_hex}: {error}")
        verdict = self._judge(lease, chain_now, lease_hex)
        self._cache[lease_id] = (now, verdict)
        return verdict

    def _judge(self, lease: runway.Lease, chain_now: int, lease_hex: str) -> Verdict:
        if lease.provider.lower() != self.provider.lower():
            return Verdict(False, f"lease {lease_hex} pays {lease.provider}, not this provider")
        state = runway.state(lease, chain_now)
        if state == runway.STATE_RUNNING:
            return Verdict(True, "")
        name = runway.STATE_NAMES.get(state, str(state))
        return Verdict(False, f"lease {lease_hex} is {name} on the chain")
