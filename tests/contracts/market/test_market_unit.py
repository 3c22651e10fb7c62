"""Unit tests of Market: escrow, leases, per-second billing, pause/resume/grace, provider
withdrawals and fees, on the real PHA token (18 decimals). Every revert path has a test."""

from __future__ import annotations

import boa
import pytest
from compiled import compiled
from eth_abi import encode
from eth_utils import keccak
from market_kit import (
    CPU,
    CPU_RATE,
    DAY,
    DEFAULT_FEE_BPS,
    DEFAULT_GRACE,
    DEFAULT_WINDOW,
    H100,
    H100_RATE,
    HOUR,
    KEYS,
    MARKET_SOURCE,
    PHA,
    STATE_CLOSED,
    STATE_NONE,
    STATE_PAUSED,
    STATE_RUNNING,
    STATUS_BILLING,
    STATUS_CLOSED,
    STATUS_STOPPED,
    ZERO,
    Market,
    deployment_id,
)

FEE_RATE = H100_RATE * DEFAULT_FEE_BPS // 10_000
NET_RATE = H100_RATE - FEE_RATE
#: 1 PHA buys 1,800 H100 seconds and leaves 1,000 wei that no whole second costs.
ONE_PHA_SECONDS = PHA // H100_RATE
DUST = PHA - ONE_PHA_SECONDS * H100_RATE


def _customer(m: Market, i: int = 0) -> str:
    return m.customers[i].address


# --- deployment ------------------------------------------------------------------


def test_defaults_and_owner(m: Market) -> None:
    assert m.market.owner() == m.owner
    assert m.market.treasury() == m.treasury
    assert m.market.pha() == m.pha.address
    assert m.market.feeBps() == DEFAULT_FEE_BPS
    assert m.market.gracePeriod() == DEFAULT_GRACE
    assert m.market.shutdownWindow() == DEFAULT_WINDOW
    assert m.market.priceOf(H100) == H100_RATE
    assert ONE_PHA_SECONDS == 1_800 and DUST == 1_000


@pytest.mark.parametrize(
    ("index", "message"),
    [(0, "market: zero token"), (1, "market: zero owner"), (2, "market: zero treasury")],
)
def test_constructor_refuses_zero_addresses(m: Market, index: int, message: str) -> None:
    args = [m.pha.address, m.owner, m.treasury]
    args[index] = ZERO
    with boa.reverts(message):
        compiled(MARKET_SOURCE).deploy(*args)


# --- escrow ----------------------------------------------------------------------


def test_deposit_and_withdraw_free_balance(m: Market) -> None:
    alice = _customer(m)
    m.deposit(alice, 5 * PHA)
    assert m.market.freeBalance(alice) == 5 * PHA
    assert m.pha.balanceOf(m.market.address) == 5 * PHA
    with boa.env.prank(alice):
        m.market.withdraw(2 * PHA)
    assert m.market.freeBalance(alice) == 3 * PHA
    assert m.pha.balanceOf(alice) == 2 * PHA


def test_deposit_refuses_zero_and_missing_allowance(m: Market) -> None:
    alice = _customer(m)
    m.mint(alice, PHA)
    with boa.env.prank(alice), boa.reverts("market: zero amount"):
        m.market.deposit(0)
    with boa.env.prank(alice), boa.reverts("PHA: insufficient allowance"):
        m.market.deposit(PHA)


def test_withdraw_refuses_zero_and_more_than_free(m: Market) -> None:
    alice = _customer(m)
    m.open(alice, m.providers[0], PHA)
    m.deposit(alice, 3)
    with boa.env.prank(alice), boa.reverts("market: zero amount"):
        m.market.withdraw(0)
    # The lease's PHA is not free: only the 3 wei deposited afterwards are.
    with boa.env.prank(alice), boa.reverts("market: amount exceeds free balance"):
        m.market.withdraw(4)
    with boa.env.prank(alice):
        m.market.withdraw(3)


def test_deposit_with_permit_needs_no_approval_transaction(m: Market) -> None:
    alice = m.customers[0]
    m.mint(alice.address, 7 * PHA)
    v, r, s = m.sign_permit(KEYS[0], 7 * PHA, m.now() + HOUR)
    with boa.env.prank(alice.address):
        m.market.depositWithPermit(7 * PHA, m.now() + HOUR, v, r, s)
    assert m.market.freeBalance(alice.address) == 7 * PHA
    assert m.pha.allowance(alice.address, m.market.address) == 0


def test_deposit_with_permit_survives_a_front_run_permit(m: Market) -> None:
    alice = m.customers[0]
    m.mint(alice.address, PHA)
    deadline = m.now() + HOUR
    v, r, s = m.sign_permit(KEYS[0], PHA, deadline)
    m.pha.permit(alice.address, m.market.address, PHA, deadline, v, r, s)  # someone else
    with boa.env.prank(alice.address):
        m.market.depositWithPermit(PHA, deadline, v, r, s)
    assert m.market.freeBalance(alice.address) == PHA


def test_deposit_with_bad_permit_and_no_allowance_reverts(m: Market) -> None:
    alice = m.customers[0]
    m.mint(alice.address, PHA)
    v, r, s = m.sign_permit(KEYS[1], PHA, m.now() + HOUR)  # signed by someone else
    with boa.env.prank(alice.address), boa.reverts("PHA: insufficient allowance"):
        m.market.depositWithPermit(PHA, m.now() + HOUR, v, r, s)


# --- opening ---------------------------------------------------------------------


def test_open_by_own_transaction(m: Market) -> None:
    alice, bob = _customer(m), m.providers[0]
    m.deposit(alice, 3 * PHA)
    with boa.env.prank(alice):
        lease_id = m.market.openLease(bob, deployment_id("web"), H100, 2 * PHA, H100_RATE)
    assert lease_id == m.market.leaseId(alice, deployment_id("web"))
    assert lease_id == int.from_bytes(
        keccak(encode(["address", "bytes32"], [alice, deployment_id("web")]))
    )
    lease = m.market.lease(lease_id)
    assert (lease.customer, lease.provider) == (alice, bob)
    assert (lease.rate, lease.feeRate) == (H100_RATE, FEE_RATE)
    assert (lease.balance, lease.lastSettled) == (2 * PHA, m.now())
    assert (lease.window, lease.status) == (DEFAULT_WINDOW, STATUS_BILLING)
    assert m.market.freeBalance(alice) == PHA
    assert m.market.state(lease_id) == STATE_RUNNING
    assert m.market.runway(lease_id) == 2 * ONE_PHA_SECONDS - DEFAULT_WINDOW
    assert m.market.pausesAt(lease_id) == m.now() + 2 * ONE_PHA_SECONDS - DEFAULT_WINDOW


def test_open_by_signature_submitted_by_a_control_plane(m: Market) -> None:
    alice, bob = m.customers[0], m.providers[0]
    m.deposit(alice.address, PHA)
    args, signature = m.sign_open(KEYS[0], bob, "web", PHA)
    control_plane = boa.env.generate_address("control plane")
    assert m.market.openDigest(*args) is not None
    with boa.env.prank(control_plane):
        lease_id = m.market.openLeaseFor(*args, signature)
    assert m.market.lease(lease_id).customer == alice.address
    assert m.market.freeBalance(alice.address) == 0
    # The same signature cannot open a second lease: the deployment has its lease.
    m.deposit(alice.address, PHA)
    with boa.reverts("market: deployment already has a lease"):
        m.market.openLeaseFor(*args, signature)


def test_open_by_signature_refusals(m: Market) -> None:
    alice, bob = m.customers[0], m.providers[0]
    m.deposit(alice.address, PHA)
    args, signature = m.sign_open(KEYS[0], bob, "web", PHA)
    with boa.reverts("market: signature must be 65 bytes"):
        m.market.openLeaseFor(*args, signature[:64])
    altered = (*args[:4], PHA - 1, *args[5:])  # another amount than signed
    with boa.reverts("market: signer is not the customer"):
        m.market.openLeaseFor(*altered, signature)
    forged_args, forged = m.sign_open(KEYS[1], bob, "web", PHA, customer=alice.address)
    with boa.reverts("market: signer is not the customer"):
        m.market.openLeaseFor(*forged_args, forged)
    high_s = signature[:32] + (2**256 - 1).to_bytes(32, "big") + signature[64:]
    with boa.reverts("ecdsa: invalid signature `s` value"):
        m.market.openLeaseFor(*args, high_s)
    expired_args, expired = m.sign_open(KEYS[0], bob, "web", PHA, deadline=m.now() - 1)
    with boa.reverts("market: signature expired"):
        m.market.openLeaseFor(*expired_args, expired)


def test_open_refusals(m: Market) -> None:
    alice, bob = _customer(m), m.providers[0]
    m.deposit(alice, 10 * PHA)
    web = deployment_id("web")
    unknown = deployment_id("not an instance type")
    with boa.env.prank(alice):
        with boa.reverts("market: zero provider"):
            m.market.openLease(ZERO, web, H100, PHA, H100_RATE)
        with boa.reverts("market: instance type not offered"):
            m.market.openLease(bob, web, unknown, PHA, H100_RATE)
        with boa.reverts("market: price above max rate"):
            m.market.openLease(bob, web, H100, PHA, H100_RATE - 1)
        # 300 s window + 1 s of runway is the least a lease can start with.
        with boa.reverts("market: funding does not cover the shutdown window"):
            m.market.openLease(bob, web, H100, (DEFAULT_WINDOW + 1) * H100_RATE - 1, H100_RATE)
        m.market.openLease(bob, web, H100, (DEFAULT_WINDOW + 1) * H100_RATE, H100_RATE)
        with boa.reverts("market: deployment already has a lease"):
            m.market.openLease(bob, web, H100, PHA, H100_RATE)
        with boa.reverts("market: amount exceeds free balance"):
            m.market.openLease(bob, deployment_id("other"), H100, 11 * PHA, H100_RATE)


# --- billing ---------------------------------------------------------------------


def test_settlement_pays_rate_times_seconds_split_with_the_fee(m: Market) -> None:
    alice, bob = _customer(m), m.providers[0]
    lease_id = m.open(alice, bob, 2 * PHA)
    boa.env.time_travel(seconds=1_000)
    stranger = boa.env.generate_address("anyone")
    with boa.env.prank(stranger):
        m.market.settle(lease_id)
    assert m.market.earningsOf(bob) == (1_000 * NET_RATE, 1_000 * FEE_RATE)
    assert m.market.lease(lease_id).balance == 2 * PHA - 1_000 * H100_RATE
    assert m.market.lease(lease_id).lastSettled == m.now()
    with boa.env.prank(stranger):
        m.market.settle(lease_id)  # same second: nothing more
    assert m.market.earningsOf(bob) == (1_000 * NET_RATE, 1_000 * FEE_RATE)


def test_settle_refuses_unknown_lease(m: Market) -> None:
    with boa.reverts("market: no such lease"):
        m.market.settle(1)


def test_runway_zero_pauses_and_billing_ends_after_the_window(m: Market) -> None:
    alice, bob = _customer(m), m.providers[0]
    lease_id = m.open(alice, bob, PHA)
    opened = m.now()
    boa.env.time_travel(seconds=ONE_PHA_SECONDS - DEFAULT_WINDOW - 1)
    assert m.market.state(lease_id) == STATE_RUNNING and m.market.runway(lease_id) == 1
    boa.env.time_travel(seconds=1)
    assert m.market.state(lease_id) == STATE_PAUSED and m.market.runway(lease_id) == 0
    # Long after the funds ran out, the provider has been paid exactly the funded seconds.
    boa.env.time_travel(seconds=5 * DAY)
    assert m.market.state(lease_id) == STATE_PAUSED  # paused, not closed
    m.market.settle(lease_id)
    lease = m.market.lease(lease_id)
    assert lease.status == STATUS_STOPPED
    assert lease.lastSettled == opened + ONE_PHA_SECONDS
    assert lease.balance == DUST
    assert sum(m.market.earningsOf(bob)) == ONE_PHA_SECONDS * H100_RATE
    m.market.settle(lease_id)  # a stopped lease bills nothing more
    assert sum(m.market.earningsOf(bob)) == ONE_PHA_SECONDS * H100_RATE


def test_top_up_resumes_a_stopped_lease_without_billing_the_stop(m: Market) -> None:
    alice, bob = _customer(m), m.providers[0]
    lease_id = m.open(alice, bob, PHA)
    boa.env.time_travel(seconds=3 * DAY)
    m.deposit(alice, PHA)
    with boa.env.prank(alice):
        m.market.topUp(lease_id, PHA)
    resumed = m.now()
    assert m.market.state(lease_id) == STATE_RUNNING
    assert m.market.lease(lease_id).lastSettled == resumed
    assert m.market.lease(lease_id).balance == PHA + DUST
    boa.env.time_travel(seconds=100)
    m.market.settle(lease_id)
    assert sum(m.market.earningsOf(bob)) == (ONE_PHA_SECONDS + 100) * H100_RATE


def test_top_up_inside_the_window_resumes_with_no_gap(m: Market) -> None:
    alice, bob = _customer(m), m.providers[0]
    lease_id = m.open(alice, bob, PHA)
    boa.env.time_travel(seconds=ONE_PHA_SECONDS - 100)  # paused, still billing the window
    assert m.market.state(lease_id) == STATE_PAUSED
    m.deposit(alice, PHA)
    with boa.env.prank(alice):
        m.market.topUp(lease_id, PHA)
    assert m.market.state(lease_id) == STATE_RUNNING
    boa.env.time_travel(seconds=100)
    m.market.settle(lease_id)
    assert sum(m.market.earningsOf(bob)) == ONE_PHA_SECONDS * H100_RATE  # every second paid


def test_top_up_refusals(m: Market) -> None:
    alice, carol, bob = _customer(m), _customer(m, 1), m.providers[0]
    lease_id = m.open(alice, bob, PHA)
    m.deposit(alice, PHA)
    m.deposit(carol, PHA)
    with boa.env.prank(carol), boa.reverts("market: caller is not the lease's customer"):
        m.market.topUp(lease_id, PHA)
    with boa.env.prank(alice), boa.reverts("market: caller is not the lease's customer"):
        m.market.topUp(99, PHA)
    with boa.env.prank(alice), boa.reverts("market: amount exceeds free balance"):
        m.market.topUp(lease_id, PHA + 1)
    with boa.env.prank(alice), boa.reverts("market: zero amount"):
        m.market.topUp(lease_id, 0)
    boa.env.time_travel(seconds=DAY)
    # Too little to give runway again: refused, nothing is spent on a stopped app.
    with boa.env.prank(alice), boa.reverts("market: top-up too small to resume"):
        m.market.topUp(lease_id, DEFAULT_WINDOW * H100_RATE)
    with boa.env.prank(alice):
        m.market.topUp(lease_id, (DEFAULT_WINDOW + 1) * H100_RATE)
        m.market.closeLease(lease_id)
    with boa.env.prank(alice), boa.reverts("market: lease is closed"):
        m.market.topUp(lease_id, 1)


def test_small_top_up_of_a_running_lease_is_accepted(m: Market) -> None:
    alice = _customer(m)
    lease_id = m.open(alice, m.providers[0], PHA)
    m.deposit(alice, 1)
    with boa.env.prank(alice):
        m.market.topUp(lease_id, 1)
    assert m.market.lease(lease_id).balance == PHA + 1


# --- auto top-up -----------------------------------------------------------------


def test_auto_top_up_from_allowance_within_the_cap(m: Market) -> None:
    alice, bob = _customer(m), m.providers[0]
    lease_id = m.open(alice, bob, PHA)
    m.mint(alice, 10 * PHA)
    with boa.env.prank(alice):
        m.pha.approve(m.market.address, 10 * PHA)
        m.market.setAutoTopUp(HOUR // 2, PHA, PHA + PHA // 2)
    keeper = boa.env.generate_address("keeper")
    # Runway 1,500 s < 30 min: the first top-up takes the full amount.
    with boa.env.prank(keeper):
        m.market.autoTopUp(lease_id)
    assert m.market.lease(lease_id).balance == 2 * PHA
    assert m.market.autoTopUpOf(alice).cap == PHA // 2
    with boa.env.prank(keeper), boa.reverts("market: runway above the threshold"):
        m.market.autoTopUp(lease_id)
    boa.env.time_travel(seconds=ONE_PHA_SECONDS)
    with boa.env.prank(keeper):
        m.market.autoTopUp(lease_id)  # the rest of the cap
    assert m.pha.balanceOf(alice) == 10 * PHA - PHA - PHA // 2
    boa.env.time_travel(seconds=2 * HOUR)
    with boa.env.prank(keeper), boa.reverts("market: auto top-up cap used up"):
        m.market.autoTopUp(lease_id)


def test_auto_top_up_refusals(m: Market) -> None:
    alice = _customer(m)
    lease_id = m.open(alice, m.providers[0], PHA)
    with boa.reverts("market: no such lease"):
        m.market.autoTopUp(99)
    with boa.reverts("market: auto top-up is off"):
        m.market.autoTopUp(lease_id)
    with boa.env.prank(alice):
        m.market.setAutoTopUp(HOUR, PHA, 5 * PHA)
    with boa.reverts("PHA: insufficient allowance"):  # no allowance given
        m.market.autoTopUp(lease_id)


# --- closing ---------------------------------------------------------------------


def test_customer_close_refunds_unspent_balance_at_once(m: Market) -> None:
    alice, bob = _customer(m), m.providers[0]
    lease_id = m.open(alice, bob, 3 * PHA)
    boa.env.time_travel(seconds=600)
    with boa.env.prank(alice):
        m.market.closeLease(lease_id)
    assert m.pha.balanceOf(alice) == 3 * PHA - 600 * H100_RATE
    assert sum(m.market.earningsOf(bob)) == 600 * H100_RATE
    assert m.market.lease(lease_id).status == STATUS_CLOSED
    assert m.market.lease(lease_id).balance == 0
    assert m.market.state(lease_id) == STATE_CLOSED
    assert m.market.runway(lease_id) == 0 and m.market.closableAt(lease_id) == 0
    with boa.env.prank(alice), boa.reverts("market: lease is closed"):
        m.market.closeLease(lease_id)


def test_provider_may_close_any_time(m: Market) -> None:
    alice, bob = _customer(m), m.providers[0]
    lease_id = m.open(alice, bob, PHA)
    with boa.env.prank(bob):
        m.market.closeLease(lease_id)
    assert m.pha.balanceOf(alice) == PHA


def test_anyone_closes_only_after_the_grace_period(m: Market) -> None:
    alice, bob = _customer(m), m.providers[0]
    lease_id = m.open(alice, bob, PHA)
    pause = m.market.pausesAt(lease_id)
    assert m.market.closableAt(lease_id) == pause + DEFAULT_GRACE
    stranger = boa.env.generate_address("anyone")
    boa.env.time_travel(seconds=pause + DEFAULT_GRACE - 1 - m.now())
    with boa.env.prank(stranger), boa.reverts("market: grace period not over"):
        m.market.closeLease(lease_id)
    boa.env.time_travel(seconds=1)
    with boa.env.prank(stranger):
        m.market.closeLease(lease_id)
    assert m.pha.balanceOf(alice) == DUST
    assert sum(m.market.earningsOf(bob)) == ONE_PHA_SECONDS * H100_RATE


def test_close_refuses_unknown_lease(m: Market) -> None:
    with boa.reverts("market: no such lease"):
        m.market.closeLease(7)


# --- providers and fees ----------------------------------------------------------


def test_provider_withdraws_many_leases_in_one_transaction(m: Market) -> None:
    bob = m.providers[0]
    leases = [m.open(c.address, bob, 2 * PHA, name=f"app{i}") for i, c in enumerate(m.customers)]
    boa.env.time_travel(seconds=500)
    with boa.env.prank(bob):
        paid = m.market.withdrawEarnings(leases)
    assert paid == 4 * 500 * NET_RATE
    assert m.pha.balanceOf(bob) == paid
    assert m.market.earningsOf(bob) == (0, 0)
    assert m.market.feesAccrued() == 4 * 500 * FEE_RATE
    assert m.market.collectFees([]) == 4 * 500 * FEE_RATE
    assert m.pha.balanceOf(m.treasury) == 4 * 500 * FEE_RATE
    assert m.market.feesAccrued() == 0


def test_withdraw_includes_earlier_settlements_and_an_empty_list(m: Market) -> None:
    bob = m.providers[0]
    lease_id = m.open(_customer(m), bob, PHA)
    boa.env.time_travel(seconds=10)
    m.market.settle(lease_id)
    with boa.env.prank(bob):
        assert m.market.withdrawEarnings([]) == 10 * NET_RATE
        assert m.market.withdrawEarnings([]) == 0


def test_earnings_after_a_withdrawal_and_a_fee_collection_stay_exact(m: Market) -> None:
    """The earnings slot keeps a marker bit after a withdrawal (so the next credit is
    cheap): no view or payment may ever count it as money."""
    bob = m.providers[0]
    lease_id = m.open(_customer(m), bob, 2 * PHA)
    boa.env.time_travel(seconds=100)
    with boa.env.prank(bob):
        assert m.market.withdrawEarnings([lease_id]) == 100 * NET_RATE
    assert m.market.earningsOf(bob) == (0, 0)
    boa.env.time_travel(seconds=30)
    m.market.settle(lease_id)
    assert m.market.earningsOf(bob) == (30 * NET_RATE, 30 * FEE_RATE)
    assert m.market.collectFees([bob]) == 100 * FEE_RATE + 30 * FEE_RATE
    assert m.market.earningsOf(bob) == (30 * NET_RATE, 0)
    boa.env.time_travel(seconds=7)
    m.market.settle(lease_id)
    with boa.env.prank(bob):
        assert m.market.withdrawEarnings([]) == 37 * NET_RATE
        assert m.market.withdrawEarnings([]) == 0
    assert m.market.earningsOf(bob) == (0, 0)
    assert m.pha.balanceOf(bob) == 137 * NET_RATE
    assert m.market.collectFees([bob]) == 7 * FEE_RATE


def test_withdraw_refuses_another_providers_lease(m: Market) -> None:
    lease_id = m.open(_customer(m), m.providers[0], PHA)
    with boa.env.prank(m.providers[1]), boa.reverts("market: lease of another provider"):
        m.market.withdrawEarnings([lease_id])
    with boa.env.prank(m.providers[1]), boa.reverts("market: lease of another provider"):
        m.market.withdrawEarnings([99])


def test_collect_fees_includes_providers_not_yet_withdrawn(m: Market) -> None:
    bob = m.providers[0]
    lease_id = m.open(_customer(m), bob, PHA)
    boa.env.time_travel(seconds=40)
    m.market.settle(lease_id)
    assert m.market.collectFees([bob]) == 40 * FEE_RATE
    assert m.market.earningsOf(bob) == (40 * NET_RATE, 0)
    assert m.pha.balanceOf(m.treasury) == 40 * FEE_RATE


# --- governance ------------------------------------------------------------------


def test_parameter_changes_apply_to_new_leases_only(m: Market) -> None:
    alice, bob = _customer(m), m.providers[0]
    old = m.open(alice, bob, PHA)
    with boa.env.prank(m.owner):
        m.market.setPrice(H100, 2 * H100_RATE)
        m.market.setFeeBps(0)
        m.market.setShutdownWindow(60)
    new = m.open(alice, bob, 2 * PHA, name="new")
    assert (m.market.lease(old).rate, m.market.lease(old).feeRate) == (H100_RATE, FEE_RATE)
    assert m.market.lease(old).window == DEFAULT_WINDOW
    assert (m.market.lease(new).rate, m.market.lease(new).feeRate) == (2 * H100_RATE, 0)
    assert m.market.lease(new).window == 60
    with boa.env.prank(m.owner):
        m.market.setPrice(CPU, 0)  # withdrawn from the price list
    m.deposit(alice, PHA)
    with boa.env.prank(alice), boa.reverts("market: instance type not offered"):
        m.market.openLease(bob, deployment_id("cpu"), CPU, PHA, CPU_RATE)


def test_grace_period_change_applies_to_every_lease(m: Market) -> None:
    lease_id = m.open(_customer(m), m.providers[0], PHA)
    pause = m.market.pausesAt(lease_id)
    with boa.env.prank(m.owner):
        m.market.setGracePeriod(DAY)
        m.market.setTreasury(m.providers[2])
    assert m.market.closableAt(lease_id) == pause + DAY
    assert m.market.treasury() == m.providers[2]


@pytest.mark.parametrize(
    ("setter", "value", "message"),
    [
        ("setPrice", 10**27 + 1, "market: rate too high"),
        ("setFeeBps", 2_001, "market: fee too high"),
        ("setGracePeriod", 90 * DAY + 1, "market: grace too long"),
        ("setShutdownWindow", DAY + 1, "market: window too long"),
        ("setTreasury", ZERO, "market: zero treasury"),
    ],
)
def test_governance_bounds(m: Market, setter: str, value: object, message: str) -> None:
    args = (H100, value) if setter == "setPrice" else (value,)
    with boa.env.prank(m.owner), boa.reverts(message):
        getattr(m.market, setter)(*args)


def test_governance_bounds_are_inclusive(m: Market) -> None:
    with boa.env.prank(m.owner):
        m.market.setPrice(H100, 10**27)
        m.market.setFeeBps(2_000)
        m.market.setGracePeriod(90 * DAY)
        m.market.setShutdownWindow(DAY)


@pytest.mark.parametrize(
    ("setter", "args"),
    [
        ("setPrice", (H100, 1)),
        ("setFeeBps", (1,)),
        ("setTreasury", ("0x" + "11" * 20,)),
        ("setGracePeriod", (1,)),
        ("setShutdownWindow", (1,)),
        ("transfer_ownership", ("0x" + "11" * 20,)),
    ],
)
def test_privileged_functions_refuse_everyone_but_the_owner(
    m: Market, setter: str, args: tuple
) -> None:
    for caller in (_customer(m), m.providers[0], m.treasury):
        with boa.env.prank(caller), boa.reverts("ownable: caller is not the owner"):
            getattr(m.market, setter)(*args)


def test_unknown_lease_views(m: Market) -> None:
    assert m.market.state(5) == STATE_NONE
    assert m.market.runway(5) == 0
    assert m.market.pausesAt(5) == 0
    assert m.market.closableAt(5) == 0


def test_settled_lease_view_matches_a_settlement(m: Market) -> None:
    lease_id = m.open(_customer(m), m.providers[0], PHA)
    boa.env.time_travel(seconds=ONE_PHA_SECONDS + 50)
    projected = m.market.settledLease(lease_id)
    m.market.settle(lease_id)
    assert projected == m.market.lease(lease_id)
    assert projected.status == STATUS_STOPPED


def test_timestamps_beyond_48_bits_keep_the_lease_intact(m: Market) -> None:
    """The billing clock is packed with the status: a clock past 2**48 s (found by the
    stateful test with a 1 wei/s price) must not spill into the status bits."""
    boa.env.time_travel(seconds=2**48 - m.now() + 5)
    alice, bob = _customer(m), m.providers[0]
    lease_id = m.open(alice, bob, PHA)
    lease = m.market.lease(lease_id)
    assert (lease.lastSettled, lease.status, lease.window) == (m.now(), STATUS_BILLING, 300)
    boa.env.time_travel(seconds=10)
    m.market.settle(lease_id)
    assert m.market.lease(lease_id).lastSettled == m.now()
    assert m.market.state(lease_id) == STATE_RUNNING
