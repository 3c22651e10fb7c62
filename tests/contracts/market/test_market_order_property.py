"""Property: settlement order does not change anyone's outcome.

The same leases live through the same time line twice: once settled only at the end, once
settled, withdrawn and fee-collected at random moments in random order. Every party ends
with the same PHA (provider, treasury, customer) and every lease in the same state, to
the wei. Amounts are linear in seconds (rate and fee per second are fixed at open), so a
period cut into any number of settlements pays what one settlement pays.
"""

from __future__ import annotations

from typing import Any

import boa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from market_kit import CPU, H100, PHA, Market

LEASES = st.lists(
    st.tuples(
        st.integers(0, 2),  # customer
        st.integers(0, 1),  # provider
        st.booleans(),  # CPU instead of H100
        st.integers(PHA // 5, 3 * PHA),  # funding
    ),
    min_size=1,
    max_size=4,
)
# Each step: seconds to pass, then which leases to settle in the shuffled run (by position).
STEPS = st.lists(
    st.tuples(st.integers(1, 2_000), st.lists(st.integers(0, 3), max_size=4)),
    min_size=1,
    max_size=6,
)


def _outcome(m: Market, leases: list[int]) -> tuple[Any, ...]:
    """Everyone's position once every lease is settled and everything is paid out."""
    for provider in m.providers[:2]:
        with boa.env.prank(provider):
            m.market.withdrawEarnings([i for i in leases if m.market.lease(i).provider == provider])
    m.market.collectFees(m.providers[:2])
    wallets = tuple(m.pha.balanceOf(a) for a in [*m.providers[:2], m.treasury])
    customers = tuple(m.pha.balanceOf(c.address) for c in m.customers[:3])
    states = tuple(tuple(m.market.lease(i)) for i in leases)
    return wallets, customers, states, m.pha.balanceOf(m.market.address)


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(leases=LEASES, steps=STEPS, order=st.randoms(use_true_random=False))
def test_settlement_order_does_not_change_outcomes(
    m: Market, leases: list[tuple[int, int, bool, int]], steps: list, order: Any
) -> None:
    with boa.env.anchor():
        ids = [
            m.open(m.customers[c].address, m.providers[p], amount, f"app{i}", CPU if cpu else H100)
            for i, (c, p, cpu, amount) in enumerate(leases)
        ]
        start = m.now()
        with boa.env.anchor():
            for seconds, _ in steps:
                boa.env.time_travel(seconds=seconds)
            lazy = _outcome(m, ids)
        assert m.now() == start
        for seconds, touched in steps:
            boa.env.time_travel(seconds=seconds)
            chosen = [ids[i % len(ids)] for i in touched]
            order.shuffle(chosen)
            for lease_id in chosen:
                m.market.settle(lease_id)
            if order.random() < 0.3:
                provider = m.providers[order.randrange(2)]
                with boa.env.prank(provider):
                    mine = [i for i in chosen if m.market.lease(i).provider == provider]
                    m.market.withdrawEarnings(mine)
            if order.random() < 0.3:
                m.market.collectFees([m.providers[order.randrange(2)]])
        eager = _outcome(m, ids)
    assert eager == lazy
