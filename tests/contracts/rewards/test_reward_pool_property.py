"""RewardPool's pure arithmetic against its Python mirror, for arbitrary governed numbers.

The off-chain report computes each epoch's budget and split itself before the root is
signed; if it differed from the contract by one wei, a correct root would be refused. So
the schedule (`initialBudget >> (epoch // halfLifeEpochs)`) and the split (stakers and
providers rounded down, the rest to the treasury) must match exactly.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pool_kit import OWNER, make_world

BPS = 10_000


@pytest.fixture(scope="module")
def pool(pha_deployer: Any, vault_deployer: Any, pool_deployer: Any) -> Iterator[Any]:
    with boa.env.anchor():
        yield make_world(pha_deployer, vault_deployer, pool_deployer).pool


SETTINGS = settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@SETTINGS
@given(
    budget=st.integers(0, 2**96 - 1),
    treasury=st.integers(0, BPS),
    stakers=st.integers(0, BPS),
)
def test_split_matches_python_and_is_exact(pool: Any, budget: int, treasury: int, stakers: int):
    stakers = min(stakers, BPS - treasury)
    providers = BPS - treasury - stakers
    with boa.env.anchor():
        with boa.env.prank(OWNER):
            pool.setSplit(treasury, stakers, providers)
        parts = pool.split(budget)
    expected_stakers = budget * stakers // BPS
    expected_providers = budget * providers // BPS
    assert parts == (budget - expected_stakers - expected_providers, expected_stakers,
                     expected_providers)  # fmt: skip
    assert sum(parts) == budget
    assert parts[0] >= budget * treasury // BPS  # rounding only ever adds to the treasury


@SETTINGS
@given(
    initial=st.integers(0, 2**96 - 1),
    half_life=st.integers(1, 2**64 - 1),
    epoch=st.integers(0, 2**64),
)
def test_schedule_matches_python(pool: Any, initial: int, half_life: int, epoch: int):
    with boa.env.anchor():
        with boa.env.prank(OWNER):
            pool.setBudgetSchedule(initial, half_life)
        assert pool.scheduledBudget(epoch) == initial >> (epoch // half_life)
