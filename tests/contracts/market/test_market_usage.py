"""Per-token usage through the escrow: a customer authorises its lease's meter (the AI
gateway's attested key) with a cap per token, the meter signs cumulative `Usage` vouchers,
anyone submits them and the Market charges the difference since the last charge. Unit
tests of charging, partial charges, pauses and fees; a negative test for every revert of
`setMeter` and `chargeUsage`; a property test of the two bounds (cap x tokens, funding)."""

from __future__ import annotations

from typing import Any

import boa
import pytest
from eth_account import Account
from eth_utils import keccak
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from market_kit import (
    DEFAULT_FEE_BPS,
    DEFAULT_WINDOW,
    H100_RATE,
    HOUR,
    KEYS,
    METER_KEYS,
    METERS,
    PHA,
    STATE_PAUSED,
    STATE_RUNNING,
    STATUS_BILLING,
    STATUS_STOPPED,
    ZERO,
    Market,
)

from veil.market.typed_data import usage_digest

FEE_RATE = H100_RATE * DEFAULT_FEE_BPS // 10_000
NET_RATE = H100_RATE - FEE_RATE
#: 1e-6 PHA per token: a generous cap for the tests' vouchers.
CAP = 10**12
MAX_RATE = 10**27
WINDOW_COST = DEFAULT_WINDOW * H100_RATE


def _lease(m: Market, amount: int = 2 * PHA, name: str = "llm", cap: int = CAP) -> int:
    """Alice's H100 lease paid to provider 0, metered by METERS[0] at `cap`."""
    lease_id = m.open(m.customers[0].address, m.providers[0], amount, name)
    m.set_meter(lease_id, METERS[0], cap)
    return lease_id


def _logs(m: Market) -> list[Any]:
    return [e for e in m.market.get_logs() if e.address == m.market.address]


def _names(logs: list[Any]) -> list[str]:
    return [type(e).__name__ for e in logs]


def _usage_fee(amount: int, bps: int = DEFAULT_FEE_BPS) -> int:
    return amount * bps // 10_000


# --- charging --------------------------------------------------------------------


def test_set_meter_records_the_meter_and_logs_it(m: Market) -> None:
    lease_id = m.open(m.customers[0].address, m.providers[0], 2 * PHA)
    assert tuple(m.market.meterOf(lease_id)) == (ZERO, 0, 0, 0, 0)
    with boa.env.prank(m.customers[0].address):
        m.market.setMeter(lease_id, METERS[0], CAP)
        [event] = _logs(m)
    assert (type(event).__name__, event.leaseId, event.meter, event.maxTokenRate) == (
        "MeterSet",
        lease_id,
        METERS[0],
        CAP,
    )
    assert tuple(m.market.meterOf(lease_id)) == (METERS[0], CAP, 0, 0, 0)


def test_charge_settles_seconds_then_pays_the_voucher_to_the_provider(m: Market) -> None:
    lease_id = _lease(m)
    provider = m.providers[0]
    boa.env.time_travel(seconds=100)
    tokens, amount = 1_000, 5 * 10**14
    signature = m.sign_usage(METER_KEYS[0], lease_id, tokens, amount)
    keeper = boa.env.generate_address("keeper")
    with boa.env.prank(keeper):
        charged = m.market.chargeUsage(lease_id, tokens, amount, signature)
        logs = _logs(m)
    assert charged == amount
    assert _names(logs) == ["Settled", "UsageCharged"]
    usage = logs[1]
    fee = _usage_fee(amount)
    assert (usage.leaseId, usage.provider, usage.tokens, usage.amount, usage.fee) == (
        lease_id,
        provider,
        tokens,
        amount,
        fee,
    )
    assert m.market.lease(lease_id).balance == 2 * PHA - 100 * H100_RATE - amount
    assert m.market.lease(lease_id).lastSettled == m.now()
    assert tuple(m.market.meterOf(lease_id)) == (METERS[0], CAP, tokens, amount, amount)
    assert tuple(m.market.earningsOf(provider)) == (
        100 * NET_RATE + amount - fee,
        100 * FEE_RATE + fee,
    )
    # The next voucher charges only what it adds.
    more = m.charge(METER_KEYS[0], lease_id, 1_500, 7 * 10**14)
    assert more == 2 * 10**14
    assert tuple(m.market.meterOf(lease_id))[2:] == (1_500, 7 * 10**14, 7 * 10**14)
    with boa.env.prank(provider):
        paid = m.market.withdrawEarnings([lease_id])
    assert m.pha.balanceOf(provider) == paid
    assert paid == 100 * NET_RATE + 7 * 10**14 - _usage_fee(7 * 10**14)


def test_partial_charge_then_top_up_then_the_same_voucher_again(m: Market) -> None:
    lease_id = _lease(m, cap=10**15)
    tokens, amount = 3_000, 3 * PHA  # more than the 2 PHA funding
    signature = m.sign_usage(METER_KEYS[0], lease_id, tokens, amount)
    chargeable = 2 * PHA - WINDOW_COST  # the shutdown window stays funded
    first = m.market.chargeUsage(lease_id, tokens, amount, signature)
    assert first == chargeable
    [event] = [e for e in _logs(m) if type(e).__name__ == "UsageCharged"]
    assert (event.tokens, event.amount) == (tokens, chargeable)
    # The voucher is accepted whole; what the lease could not pay stays due.
    assert tuple(m.market.meterOf(lease_id))[2:] == (tokens, amount, chargeable)
    assert m.market.lease(lease_id).balance == WINDOW_COST
    assert m.market.state(lease_id) == STATE_PAUSED
    # Nothing more to take until a top-up: the same voucher charges 0 and waits.
    assert m.market.chargeUsage(lease_id, tokens, amount, signature) == 0
    assert tuple(m.market.meterOf(lease_id))[2:] == (tokens, amount, chargeable)
    m.deposit(m.customers[0].address, 2 * PHA)
    with boa.env.prank(m.customers[0].address):
        m.market.topUp(lease_id, 2 * PHA)
    assert m.market.state(lease_id) == STATE_RUNNING
    second = m.market.chargeUsage(lease_id, tokens, amount, signature)
    [event] = [e for e in _logs(m) if type(e).__name__ == "UsageCharged"]
    assert (event.tokens, event.amount) == (0, second)  # no new tokens, the rest of the wei
    assert first + second == amount
    assert tuple(m.market.meterOf(lease_id))[2:] == (tokens, amount, amount)
    assert m.market.lease(lease_id).balance == 4 * PHA - amount
    net, fee = m.market.earningsOf(m.providers[0])
    assert (net + fee, fee) == (amount, _usage_fee(amount))


def test_a_charge_brings_the_pause_forward_and_can_pause_the_lease(m: Market) -> None:
    lease_id = _lease(m, cap=10**15)
    funded_seconds = 2 * PHA // H100_RATE
    assert m.market.runway(lease_id) == funded_seconds - DEFAULT_WINDOW
    m.charge(METER_KEYS[0], lease_id, 1_000, PHA)
    # One PHA buys 1,800 seconds: the pause comes 1,800 seconds earlier (to the wei).
    assert m.market.pausesAt(lease_id) == m.now() + PHA // H100_RATE - DEFAULT_WINDOW
    assert m.market.runway(lease_id) == funded_seconds - 1_800 - DEFAULT_WINDOW
    m.charge(METER_KEYS[0], lease_id, 2_000, 2 * PHA)
    assert m.market.runway(lease_id) == 0
    assert m.market.pausesAt(lease_id) == m.now()
    assert m.market.state(lease_id) == STATE_PAUSED
    # The window still pays the provider for stopping, then billing ends.
    boa.env.time_travel(seconds=DEFAULT_WINDOW)
    m.market.settle(lease_id)
    lease = m.market.lease(lease_id)
    assert (lease.status, lease.balance) == (STATUS_STOPPED, 0)
    net, fee = m.market.earningsOf(m.providers[0])
    assert net + fee == 2 * PHA  # every wei funded went to the provider, seconds and tokens


def test_a_stopped_lease_pays_only_its_dust(m: Market) -> None:
    lease_id = _lease(m)
    boa.env.time_travel(seconds=2 * HOUR)  # past the funding: billing stopped
    m.market.settle(lease_id)
    lease = m.market.lease(lease_id)
    assert lease.status == STATUS_STOPPED
    dust = lease.balance
    assert 0 < dust < H100_RATE
    assert m.charge(METER_KEYS[0], lease_id, 10**6, 10**17) == dust
    assert m.market.lease(lease_id).balance == 0
    assert tuple(m.market.meterOf(lease_id))[2:] == (10**6, 10**17, dust)


def test_without_a_shutdown_window_a_charge_leaves_one_second(m: Market) -> None:
    with boa.env.prank(m.owner):
        m.market.setShutdownWindow(0)
    lease_id = _lease(m, cap=10**15)
    charged = m.charge(METER_KEYS[0], lease_id, 5_000, 5 * PHA)
    assert charged == 2 * PHA - H100_RATE
    lease = m.market.lease(lease_id)
    assert (lease.status, lease.balance) == (STATUS_BILLING, H100_RATE)
    assert m.market.runway(lease_id) == 1
    boa.env.time_travel(seconds=1)
    m.market.settle(lease_id)
    assert m.market.lease(lease_id).status == STATUS_STOPPED


def test_tokens_without_an_amount_advance_only_the_token_counter(m: Market) -> None:
    lease_id = _lease(m)
    with boa.env.prank(m.providers[0]):
        signature = m.sign_usage(METER_KEYS[0], lease_id, 40, 0)
        assert m.market.chargeUsage(lease_id, 40, 0, signature) == 0
        [event] = [e for e in _logs(m) if type(e).__name__ == "UsageCharged"]
    assert (event.tokens, event.amount, event.fee) == (40, 0, 0)
    assert tuple(m.market.meterOf(lease_id))[2:] == (40, 0, 0)


def test_the_usage_fee_goes_to_the_treasury_and_does_not_depend_on_the_cut(m: Market) -> None:
    lease_id = _lease(m)
    # 39 wei, then 1, then 41: per charge the fee would round to 0 + 0 + 1; over the
    # meter's cumulative amount it is floor(81 * 2.5 %) = 2.
    fees = []
    for tokens, amount in ((39, 39), (40, 40), (81, 81)):
        m.charge(METER_KEYS[0], lease_id, tokens, amount)
        fees.append(next(e.fee for e in _logs(m) if type(e).__name__ == "UsageCharged"))
    assert fees == [0, 1, 1]
    assert sum(fees) == _usage_fee(81) == 2
    collected = m.market.collectFees([m.providers[0]])
    assert collected == 2  # no second has passed: only the usage fee
    assert m.pha.balanceOf(m.treasury) == 2


def test_the_fee_is_the_one_in_force_when_the_meter_was_set(m: Market) -> None:
    lease_id = _lease(m)
    with boa.env.prank(m.owner):
        m.market.setFeeBps(1_000)
    m.charge(METER_KEYS[0], lease_id, 1_000, 10**14)
    assert m.market.earningsOf(m.providers[0])[1] == _usage_fee(10**14, DEFAULT_FEE_BPS)
    m.set_meter(lease_id, METERS[1], CAP)  # a new meter takes the fee now in force
    m.charge(METER_KEYS[1], lease_id, 1_000, 10**14)
    assert m.market.earningsOf(m.providers[0])[1] == _usage_fee(10**14, DEFAULT_FEE_BPS) + (
        _usage_fee(10**14, 1_000)
    )


def test_a_new_meter_counts_from_zero_and_the_same_meter_keeps_its_counters(m: Market) -> None:
    lease_id = _lease(m)
    m.charge(METER_KEYS[0], lease_id, 1_000, 10**14)
    m.set_meter(lease_id, METERS[0], 2 * CAP)  # a new cap for the same key
    assert tuple(m.market.meterOf(lease_id)) == (METERS[0], 2 * CAP, 1_000, 10**14, 10**14)
    # Its voucher already charged charges nothing again.
    assert m.charge(METER_KEYS[0], lease_id, 1_000, 10**14) == 0
    m.set_meter(lease_id, METERS[1], CAP)  # a restarted gateway: a new key
    assert tuple(m.market.meterOf(lease_id)) == (METERS[1], CAP, 0, 0, 0)
    assert m.charge(METER_KEYS[1], lease_id, 10, 10**12) == 10**12
    with boa.reverts("market: signer is not the meter"):  # the old key's vouchers are dead
        m.charge(METER_KEYS[0], lease_id, 2_000, 2 * 10**14)


def test_disabling_the_meter_stops_charges(m: Market) -> None:
    lease_id = _lease(m)
    m.set_meter(lease_id, ZERO, CAP)
    assert tuple(m.market.meterOf(lease_id)) == (ZERO, 0, 0, 0, 0)
    with boa.reverts("market: no meter"):
        m.charge(METER_KEYS[0], lease_id, 1, 1)


def test_replay_of_a_charged_voucher_charges_zero_and_changes_nothing(m: Market) -> None:
    lease_id = _lease(m)
    signature = m.sign_usage(METER_KEYS[0], lease_id, 1_000, 10**14)
    m.market.chargeUsage(lease_id, 1_000, 10**14, signature)
    boa.env.time_travel(seconds=60)
    before = (tuple(m.market.lease(lease_id)), tuple(m.market.earningsOf(m.providers[0])))
    assert m.market.chargeUsage(lease_id, 1_000, 10**14, signature) == 0
    assert _logs(m) == []
    after = (tuple(m.market.lease(lease_id)), tuple(m.market.earningsOf(m.providers[0])))
    assert after == before


def test_usage_digest_is_the_signed_typed_data(m: Market) -> None:
    lease_id = _lease(m)
    digest = m.market.usageDigest(lease_id, METERS[0], 7, 99)
    chain_id = m.market.eip712Domain()[3]
    assert digest == usage_digest(chain_id, m.market.address, lease_id, METERS[0], 7, 99)
    assert m.market.USAGE_TYPEHASH() == keccak(
        text="Usage(uint256 leaseId,address meter,uint256 tokens,uint256 amount)"
    )
    signature = m.sign_usage(METER_KEYS[0], lease_id, 7, 99)
    assert Account._recover_hash(digest, signature=signature) == METERS[0]
    assert m.market.usageDigest(lease_id, METERS[0], 7, 100) != digest


# --- refusals --------------------------------------------------------------------


def test_set_meter_refuses_everyone_but_the_customer(m: Market) -> None:
    lease_id = m.open(m.customers[0].address, m.providers[0], 2 * PHA)
    for who in (m.providers[0], m.customers[1].address, m.owner, METERS[0]):
        with boa.env.prank(who), boa.reverts("market: caller is not the lease's customer"):
            m.market.setMeter(lease_id, METERS[0], CAP)
    missing = lease_id + 1  # no such lease
    with (
        boa.env.prank(m.customers[0].address),
        boa.reverts("market: caller is not the lease's customer"),
    ):
        m.market.setMeter(missing, METERS[0], CAP)


def test_set_meter_refuses_a_closed_lease(m: Market) -> None:
    lease_id = m.open(m.customers[0].address, m.providers[0], 2 * PHA)
    with boa.env.prank(m.customers[0].address):
        m.market.closeLease(lease_id)
        with boa.reverts("market: lease is closed"):
            m.market.setMeter(lease_id, METERS[0], CAP)


def test_set_meter_refuses_a_rate_above_max_rate(m: Market) -> None:
    lease_id = m.open(m.customers[0].address, m.providers[0], 2 * PHA)
    with boa.env.prank(m.customers[0].address):
        with boa.reverts("market: rate too high"):
            m.market.setMeter(lease_id, METERS[0], MAX_RATE + 1)
        m.market.setMeter(lease_id, METERS[0], MAX_RATE)  # inclusive
    assert m.market.meterOf(lease_id)[1] == MAX_RATE


def test_charge_refuses_a_lease_without_a_meter(m: Market) -> None:
    lease_id = m.open(m.customers[0].address, m.providers[0], 2 * PHA)
    with boa.reverts("market: no meter"):
        m.charge(METER_KEYS[0], lease_id, 1, 1)
    with boa.reverts("market: no meter"):
        m.charge(METER_KEYS[0], 12345, 1, 1)  # no such lease


def test_charge_refuses_a_closed_lease(m: Market) -> None:
    lease_id = _lease(m)
    with boa.env.prank(m.customers[0].address):
        m.market.closeLease(lease_id)
    with boa.reverts("market: lease is closed"):
        m.charge(METER_KEYS[0], lease_id, 1, 1)


def test_charge_refuses_a_signature_by_another_key(m: Market) -> None:
    lease_id = _lease(m)
    with boa.reverts("market: signer is not the meter"):
        m.charge(METER_KEYS[1], lease_id, 1, 1)
    with boa.reverts("market: signer is not the meter"):
        m.charge(KEYS[0], lease_id, 1, 1)  # not even the customer may sign usage
    # A voucher of one lease does not charge another of the same meter.
    other = _lease(m, name="other")
    signature = m.sign_usage(METER_KEYS[0], lease_id, 1, 1)
    with boa.reverts("market: signer is not the meter"):
        m.market.chargeUsage(other, 1, 1, signature)
    # Nor other figures than those signed.
    with boa.reverts("market: signer is not the meter"):
        m.market.chargeUsage(lease_id, 1, 2, signature)


def test_charge_refuses_malformed_signatures(m: Market) -> None:
    lease_id = _lease(m)
    signature = m.sign_usage(METER_KEYS[0], lease_id, 1, 1)
    with boa.reverts("market: signature must be 65 bytes"):
        m.market.chargeUsage(lease_id, 1, 1, signature[:64])
    with boa.reverts("market: signature must be 65 bytes"):
        m.market.chargeUsage(lease_id, 1, 1, b"")
    bad_v = signature[:64] + bytes([signature[64] + 2])
    with boa.reverts("ecdsa: invalid signature"):
        m.market.chargeUsage(lease_id, 1, 1, bad_v)
    high_s = signature[:32] + (2**256 - 1).to_bytes(32, "big") + signature[64:]
    with boa.reverts("ecdsa: invalid signature `s` value"):
        m.market.chargeUsage(lease_id, 1, 1, high_s)


def test_charge_refuses_counters_going_backwards(m: Market) -> None:
    lease_id = _lease(m)
    m.charge(METER_KEYS[0], lease_id, 1_000, 10**14)
    with boa.reverts("market: tokens below the last voucher"):
        m.charge(METER_KEYS[0], lease_id, 999, 10**14)  # an older voucher
    with boa.reverts("market: amount below the last voucher"):
        m.charge(METER_KEYS[0], lease_id, 1_001, 10**14 - 1)


def test_a_partly_paid_voucher_still_bounds_the_next(m: Market) -> None:
    # The regression a property test found: the counters of a partial charge must not
    # leave the next voucher room above the cap. The first voucher prices 3,000 tokens at
    # half the cap and is paid only in part; the next adds 1,000 tokens.
    cap = 2 * 10**15
    lease_id = _lease(m, cap=cap)
    tokens, amount = 3_000, 3_000 * cap // 2  # 3 PHA, more than the 2 PHA funding
    paid = m.charge(METER_KEYS[0], lease_id, tokens, amount)
    assert paid == 2 * PHA - WINDOW_COST < amount
    # Its unpaid part still counts as signed: nothing below it is accepted.
    with boa.reverts("market: amount below the last voucher"):
        m.charge(METER_KEYS[0], lease_id, tokens + 1, amount - 1)
    with boa.reverts("market: tokens below the last voucher"):
        m.charge(METER_KEYS[0], lease_id, tokens - 1, amount)
    with boa.reverts("market: amount above tokens times the cap"):
        m.charge(METER_KEYS[0], lease_id, tokens + 1_000, amount + 1_000 * cap + 1)
    m.deposit(m.customers[0].address, 5 * PHA)
    with boa.env.prank(m.customers[0].address):
        m.market.topUp(lease_id, 5 * PHA)
    # At the cap, the later voucher charges its own wei and the rest of the first one.
    later = amount + 1_000 * cap
    assert m.charge(METER_KEYS[0], lease_id, tokens + 1_000, later) == later - paid
    assert tuple(m.market.meterOf(lease_id))[2:] == (tokens + 1_000, later, later)


def test_charge_refuses_an_amount_above_tokens_times_the_cap(m: Market) -> None:
    lease_id = _lease(m)
    with boa.reverts("market: amount above tokens times the cap"):
        m.charge(METER_KEYS[0], lease_id, 1_000, 1_000 * CAP + 1)
    assert m.charge(METER_KEYS[0], lease_id, 1_000, 1_000 * CAP) == 1_000 * CAP  # inclusive
    # The cap bounds what a voucher adds, not its cumulative figures.
    with boa.reverts("market: amount above tokens times the cap"):
        m.charge(METER_KEYS[0], lease_id, 1_001, 1_000 * CAP + CAP + 1)
    with boa.reverts("market: amount above tokens times the cap"):
        m.charge(METER_KEYS[0], lease_id, 1_000, 1_000 * CAP + 1)  # no new tokens
    m.set_meter(lease_id, METERS[0], 0)  # a zero cap lets only free tokens through
    with boa.reverts("market: amount above tokens times the cap"):
        m.charge(METER_KEYS[0], lease_id, 2_000, 1_000 * CAP + 1)


def test_charge_refuses_token_counts_beyond_112_bits(m: Market) -> None:
    lease_id = _lease(m, cap=1)
    with boa.reverts("market: tokens too large"):
        m.charge(METER_KEYS[0], lease_id, 2**112, 0)
    m.charge(METER_KEYS[0], lease_id, 2**112 - 1, 0)
    assert m.market.meterOf(lease_id)[2] == 2**112 - 1


# --- property ----------------------------------------------------------------------

VOUCHERS = st.lists(
    st.one_of(
        # (new tokens, wei per token as a fraction of the cap in percent; >100 is refused)
        st.tuples(st.just("voucher"), st.integers(0, 5_000), st.integers(0, 130)),
        st.tuples(st.just("top-up"), st.integers(1, 3 * PHA), st.just(0)),
        st.tuples(st.just("time"), st.integers(1, 4_000), st.just(0)),
    ),
    min_size=1,
    max_size=12,
)


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(steps=VOUCHERS, cap=st.integers(1, 10**15), funding=st.integers(PHA // 5, 3 * PHA))
def test_charges_never_exceed_cap_times_tokens_nor_the_funding(
    m: Market, steps: list[tuple[str, int, int]], cap: int, funding: int
) -> None:
    with boa.env.anchor():
        alice = m.customers[0].address
        lease_id = _lease(m, funding, cap=cap)
        funded = funding
        tokens = amount = charged = 0
        for kind, x, percent in steps:
            if kind == "time":
                boa.env.time_travel(seconds=x)
            elif kind == "top-up":
                if m.market.runway(lease_id) == 0:
                    x += (DEFAULT_WINDOW + 1) * H100_RATE  # enough to resume
                m.deposit(alice, x)
                with boa.env.prank(alice):
                    m.market.topUp(lease_id, x)
                funded += x
            else:
                new_amount = amount + x * cap * percent // 100
                if new_amount - amount > x * cap:
                    with boa.reverts("market: amount above tokens times the cap"):
                        m.charge(METER_KEYS[0], lease_id, tokens + x, new_amount)
                    continue
                tokens, amount = tokens + x, new_amount
                charged += m.charge(METER_KEYS[0], lease_id, tokens, amount)
            _meter, _cap, last_tokens, last_amount, charged_amount = m.market.meterOf(lease_id)
            assert (last_tokens, last_amount) == (tokens, amount)
            assert charged_amount == charged <= amount <= cap * tokens
            lease = m.market.settledLease(lease_id)
            # What the lease lost is whole seconds at its rate plus the usage charged.
            assert charged + lease.balance <= funded
            assert (funded - charged - lease.balance) % H100_RATE == 0
            customers = [c.address for c in m.customers]
            assert m.pha.balanceOf(m.market.address) == m.escrow_liabilities(
                [lease_id], m.providers, customers
            )


@pytest.mark.parametrize("bps", [0, 1, 2_000])
def test_usage_fee_at_any_governed_fee(m: Market, bps: int) -> None:
    with boa.env.prank(m.owner):
        m.market.setFeeBps(bps)
    lease_id = _lease(m)
    m.charge(METER_KEYS[0], lease_id, 10**6, 123_456_789_012_345)
    assert m.market.earningsOf(m.providers[0])[1] == _usage_fee(123_456_789_012_345, bps)
