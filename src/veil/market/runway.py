"""A lease's money and time, computed off-chain exactly as `Market.vy` computes them.

The control plane answers `GET /v1/apps/{id}/billing` and decides when to warn (24 h and
1 h of runway) for thousands of leases; asking the chain for every figure of every lease
on every poll would cost an RPC round trip each. One `lease(id)` read plus this module
gives the same integers the contract would (a test compares them at random moments), so
the projection is free and never drifts from what a settlement will do.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

# Status as the contract stores it, and state as a worker acts on it.
STATUS_NONE, STATUS_BILLING, STATUS_STOPPED, STATUS_CLOSED = 0, 1, 2, 3
STATE_NONE, STATE_RUNNING, STATE_PAUSED, STATE_CLOSED = 0, 1, 2, 3
STATE_NAMES = {STATE_NONE: "none", STATE_RUNNING: "running", STATE_PAUSED: "paused"}
STATE_NAMES[STATE_CLOSED] = "closed"


@dataclass(frozen=True)
class Lease:
    """A lease as `Market.lease(id)` returns it (amounts in PHA wei, times in seconds)."""

    customer: str
    provider: str
    rate: int
    fee_rate: int
    balance: int
    last_settled: int
    window: int
    status: int

    @classmethod
    def from_chain(cls, answer: Any) -> Lease:
        """From the ABI tuple (customer, provider, rate, feeRate, balance, lastSettled,
        window, status)."""
        customer, provider, rate, fee_rate, balance, last, window, status = answer
        return cls(
            str(customer),
            str(provider),
            int(rate),
            int(fee_rate),
            int(balance),
            int(last),
            int(window),
            int(status),
        )


@dataclass(frozen=True)
class Projection:
    """What a settlement at `now` would do: the status, billed-up-to time and balance it
    leaves, and the seconds it bills."""

    status: int
    last: int
    balance: int
    billed: int


def project(lease: Lease, now: int) -> Projection:
    """The contract's `_project`: bill whole seconds up to `now`, at most what the balance
    pays; billing stops when the funds are spent."""
    if lease.status != STATUS_BILLING:
        return Projection(lease.status, lease.last_settled, lease.balance, 0)
    affordable = lease.balance // lease.rate
    elapsed = now - lease.last_settled
    if elapsed < affordable:
        return Projection(STATUS_BILLING, now, lease.balance - elapsed * lease.rate, elapsed)
    return Projection(
        STATUS_STOPPED,
        lease.last_settled + affordable,
        lease.balance - affordable * lease.rate,
        affordable,
    )


def settled(lease: Lease, now: int) -> Lease:
    """The lease as a settlement at `now` would leave it (`settledLease`)."""
    p = project(lease, now)
    return replace(lease, balance=p.balance, last_settled=p.last, status=p.status)


def pauses_at(lease: Lease) -> int:
    """When the lease pauses (or paused): the end of its funded time minus the shutdown
    window; 0 for a closed or unknown lease."""
    if lease.status == STATUS_STOPPED:
        return lease.last_settled - lease.window
    if lease.status != STATUS_BILLING:
        return 0
    return lease.last_settled + lease.balance // lease.rate - lease.window


def runway(lease: Lease, now: int) -> int:
    """Seconds until the pause (0 when paused, closed or unknown)."""
    return max(0, pauses_at(lease) - now)


def state(lease: Lease, now: int) -> int:
    """What a worker acts on: running, paused (stop the app, keep its disk) or closed."""
    if lease.status == STATUS_NONE:
        return STATE_NONE
    if lease.status == STATUS_CLOSED:
        return STATE_CLOSED
    return STATE_RUNNING if runway(lease, now) else STATE_PAUSED


def closable_at(lease: Lease, grace_period: int) -> int:
    """From when anyone may close the lease (0 for a closed or unknown lease)."""
    pause = pauses_at(lease)
    return pause + grace_period if pause else 0


def top_up_for_runway(lease: Lease, now: int, seconds: int) -> int:
    """The smallest top-up (wei) after which the lease has at least `seconds` of runway
    at `now`; 0 if it already has. A stopped lease restarts billing at the top-up."""
    if lease.status not in (STATUS_BILLING, STATUS_STOPPED):
        raise ValueError("a closed or unknown lease cannot be topped up")
    if seconds <= 0:
        return 0
    p = project(lease, now)
    if p.status == STATUS_STOPPED:
        needed = (seconds + lease.window) * lease.rate
    else:
        needed = (now + seconds + lease.window - p.last) * lease.rate
    return max(0, needed - p.balance)


@dataclass(frozen=True)
class Billing:
    """What `GET /v1/apps/{id}/billing` and `veil cloud billing` show for one lease."""

    state: str
    rate: int  # wei per second
    cost_so_far: int  # wei billed (settled or not) since the lease opened
    balance: int  # wei the lease holds now, after billing to now
    runway_seconds: int
    pauses_at: int
    closable_at: int

    def to_json(self) -> dict[str, Any]:
        """Amounts as decimal strings: JSON readers with 53-bit numbers cannot hold wei."""
        return {
            "state": self.state,
            "rate_wei_per_second": str(self.rate),
            "cost_so_far_wei": str(self.cost_so_far),
            "balance_wei": str(self.balance),
            "runway_seconds": self.runway_seconds,
            "pauses_at": self.pauses_at,
            "closable_at": self.closable_at,
        }


def billing(lease: Lease, now: int, funded: int, grace_period: int, refunded: int = 0) -> Billing:
    """The lease's billing at `now`. `funded` is everything put into it (opening amount
    plus top-ups) and `refunded` what its close returned, both from the chain's events:
    what is neither held nor refunded was billed."""
    p = project(lease, now)
    cost = funded - p.balance - refunded
    if cost < 0:
        raise ValueError(f"funded {funded} wei is less than the balance plus refunds")
    return Billing(
        state=STATE_NAMES[state(lease, now)],
        rate=lease.rate,
        cost_so_far=cost,
        balance=p.balance,
        runway_seconds=runway(lease, now),
        pauses_at=pauses_at(lease),
        closable_at=closable_at(lease, grace_period),
    )
