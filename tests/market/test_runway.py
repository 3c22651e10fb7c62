"""Off-chain lease math equals the contract's, to the wei and the second, at random moments
of random time lines (titanoboa runs the real Market over the real PHA)."""

from __future__ import annotations

from functools import cache
from typing import Any

import boa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from veil.chain.compile import find_source
from veil.market import runway
from veil.market.runway import Lease
from veil.market.typed_data import instance_type_key

PHA = 10**18
H100 = instance_type_key("h100")
RATE = 2 * PHA // 3_600
ZERO = "0x" + "00" * 20


@cache
def _deployers() -> tuple[Any, Any]:
    return boa.load_partial(str(find_source("PHA"))), boa.load_partial(str(find_source("Market")))


def _world(window: int) -> tuple[Any, Any, str, str]:
    pha_d, market_d = _deployers()
    pha = pha_d.deploy(ZERO)
    pha.setMinter(boa.env.eoa, True)
    owner = boa.env.generate_address("owner")
    market = market_d.deploy(pha.address, owner, boa.env.generate_address("treasury"))
    with boa.env.prank(owner):
        market.setPrice(H100, RATE)
        market.setShutdownWindow(window)
    customer = boa.env.generate_address("customer")
    pha.mint(customer, 10**6 * PHA)
    with boa.env.prank(customer):
        pha.approve(market.address, 10**6 * PHA)
        market.deposit(10**6 * PHA)
    return pha, market, customer, owner


def _now() -> int:
    return boa.env.evm.patch.timestamp


def _check(market: Any, lease_id: int) -> Lease:
    lease = Lease.from_chain(market.lease(lease_id))
    now = _now()
    assert runway.settled(lease, now) == Lease.from_chain(market.settledLease(lease_id))
    assert runway.runway(lease, now) == market.runway(lease_id)
    assert runway.state(lease, now) == market.state(lease_id)
    assert runway.pauses_at(lease) == market.pausesAt(lease_id)
    assert runway.closable_at(lease, market.gracePeriod()) == market.closableAt(lease_id)
    return lease


STEPS = st.lists(
    st.tuples(
        st.sampled_from(["wait", "settle", "top_up", "top_up_to"]),
        st.integers(0, 3 * 3_600),
    ),
    min_size=1,
    max_size=12,
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    funding_seconds=st.integers(301, 4 * 3_600),
    dust=st.integers(0, RATE - 1),
    window=st.sampled_from([0, 60, 300]),
    steps=STEPS,
)
def test_projection_matches_the_contract(funding_seconds, dust, window, steps) -> None:
    with boa.env.anchor():
        _pha, market, customer, _owner = _world(window)
        amount = max(funding_seconds, window + 1) * RATE + dust
        with boa.env.prank(customer):
            lease_id = market.openLease(customer, b"\x07" * 32, H100, amount, RATE)
        funded = amount
        for action, value in steps:
            lease = _check(market, lease_id)
            if action == "wait":
                boa.env.time_travel(seconds=value)
            elif action == "settle":
                market.settle(lease_id)
            elif action == "top_up":
                top = (value + 1) * RATE
                was_paused = runway.state(lease, _now()) == runway.STATE_PAUSED
                expect_ok = not was_paused or runway.top_up_for_runway(lease, _now(), 1) <= top
                with boa.env.prank(customer):
                    if expect_ok:
                        market.topUp(lease_id, top)
                        funded += top
                    else:
                        with boa.reverts("market: top-up too small to resume"):
                            market.topUp(lease_id, top)
            else:  # top up exactly what buys `value` seconds of runway
                need = runway.top_up_for_runway(lease, _now(), value)
                if need > 1:
                    # One wei less does not buy it: the amount is the least that does.
                    with boa.env.anchor(), boa.env.prank(customer):
                        try:
                            market.topUp(lease_id, need - 1)
                            assert market.runway(lease_id) < value
                        except boa.BoaError as error:
                            assert "too small to resume" in str(error)
                if need:
                    with boa.env.prank(customer):
                        market.topUp(lease_id, need)
                    funded += need
                assert market.runway(lease_id) >= value
        lease = _check(market, lease_id)
        bill = runway.billing(lease, _now(), funded, market.gracePeriod())
        settled = Lease.from_chain(market.settledLease(lease_id))
        assert bill.balance == settled.balance
        assert bill.cost_so_far == funded - settled.balance
        assert bill.runway_seconds == market.runway(lease_id)


def test_top_up_for_runway_is_the_least_amount() -> None:
    lease = Lease(ZERO, ZERO, RATE, 0, 1_000 * RATE + 17, 100, 300, runway.STATUS_BILLING)
    now = 200  # 100 s billed: 900 s funded left, 600 s of runway
    assert runway.runway(lease, now) == 600
    assert runway.top_up_for_runway(lease, now, 600) == 0
    need = runway.top_up_for_runway(lease, now, 3_600)
    after = Lease(ZERO, ZERO, RATE, 0, lease.balance + need, 100, 300, runway.STATUS_BILLING)
    assert runway.runway(after, now) == 3_600
    less = Lease(ZERO, ZERO, RATE, 0, lease.balance + need - 1, 100, 300, runway.STATUS_BILLING)
    assert runway.runway(less, now) == 3_599
    stopped = Lease(ZERO, ZERO, RATE, 0, 5, 900, 300, runway.STATUS_STOPPED)
    assert runway.top_up_for_runway(stopped, 10_000, 60) == 360 * RATE - 5
    closed = Lease(ZERO, ZERO, RATE, 0, 0, 900, 300, runway.STATUS_CLOSED)
    with pytest.raises(ValueError, match="cannot be topped up"):
        runway.top_up_for_runway(closed, 10_000, 60)


def test_billing_of_a_closed_lease_and_refusals() -> None:
    closed = Lease(ZERO, ZERO, RATE, 0, 0, 900, 300, runway.STATUS_CLOSED)
    bill = runway.billing(closed, 10_000, funded=1_000 * RATE, grace_period=60, refunded=400 * RATE)
    assert (bill.state, bill.cost_so_far, bill.balance, bill.runway_seconds) == (
        "closed",
        600 * RATE,
        0,
        0,
    )
    assert bill.to_json()["cost_so_far_wei"] == str(600 * RATE)
    with pytest.raises(ValueError, match="less than the balance"):
        runway.billing(closed, 10_000, funded=1, grace_period=60, refunded=400 * RATE)
