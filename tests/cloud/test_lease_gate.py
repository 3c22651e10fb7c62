"""The worker's lease gate: runs an app only while its lease runs on the chain and pays
this worker's provider; caches answers for `ttl`; an unreadable chain never starts an
unpaid app but does not stop a paid one on a hiccup."""

from __future__ import annotations

from dataclasses import replace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from veil.cloud.lease_gate import LeaseGate
from veil.errors import ChainError
from veil.market import runway

PROVIDER = "0x" + "11" * 20
OTHER = "0x" + "22" * 20
LEASE = "0x" + "ab" * 32
BASE = runway.Lease(
    customer="0x" + "33" * 20,
    provider=PROVIDER,
    rate=10,
    fee_rate=0,
    balance=10 * 1_000,
    last_settled=1_000,
    window=100,
    status=runway.STATUS_BILLING,
)


class Chain:
    def __init__(self, lease: runway.Lease, now: int) -> None:
        self.lease, self.now, self.reads, self.fail = lease, now, 0, False

    def __call__(self, lease_id: int) -> tuple[runway.Lease, int]:
        assert lease_id == int(LEASE, 16)
        self.reads += 1
        if self.fail:
            raise ChainError("rpc down")
        return self.lease, self.now


class Clock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def test_running_paused_resumed_closed() -> None:
    chain, clock = Chain(BASE, 1_000), Clock()
    gate = LeaseGate(chain, PROVIDER, ttl=5, clock=clock)
    assert gate.check(LEASE).run
    chain.now = 1_000 + 900  # pauses at 1000 + 1000 - 100
    assert gate.check(LEASE).run  # cached for ttl: one read
    assert chain.reads == 1
    clock.t = 5
    verdict = gate.check(LEASE)
    assert not verdict.run and "paused" in verdict.reason and chain.reads == 2
    chain.lease = replace(BASE, balance=BASE.balance * 3)  # topped up
    clock.t = 10
    assert gate.check(LEASE).run
    chain.lease = replace(BASE, status=runway.STATUS_CLOSED)
    clock.t = 15
    closed = gate.check(LEASE)
    assert not closed.run and "closed" in closed.reason


def test_lease_of_another_provider_never_runs() -> None:
    gate = LeaseGate(Chain(replace(BASE, provider=OTHER), 1_000), PROVIDER, ttl=0)
    verdict = gate.check(LEASE)
    assert not verdict.run and "not this provider" in verdict.reason


def test_unreadable_chain() -> None:
    chain, clock = Chain(BASE, 1_000), Clock()
    chain.fail = True
    gate = LeaseGate(chain, PROVIDER, ttl=1, clock=clock)
    first = gate.check(LEASE)
    assert not first.run and "rpc down" in first.reason  # never start unpaid
    chain.fail = False
    assert gate.check(LEASE).run
    chain.fail = True
    clock.t = 2
    assert gate.check(LEASE).run  # a hiccup keeps the last verdict
    assert not gate.check("not-hex").run


@given(
    balance=st.integers(0, 10**6),
    elapsed=st.integers(0, 10**6),
    window=st.integers(0, 500),
)
def test_verdict_is_the_runway(balance: int, elapsed: int, window: int) -> None:
    lease = replace(BASE, balance=balance, window=window)
    gate = LeaseGate(Chain(lease, lease.last_settled + elapsed), PROVIDER, ttl=0)
    assert gate.check(LEASE).run == (runway.runway(lease, lease.last_settled + elapsed) > 0)


@pytest.mark.parametrize("status", [runway.STATUS_NONE, runway.STATUS_CLOSED])
def test_no_lease_or_closed(status: int) -> None:
    gate = LeaseGate(Chain(replace(BASE, status=status), 1_000), PROVIDER, ttl=0)
    assert not gate.check(LEASE).run
