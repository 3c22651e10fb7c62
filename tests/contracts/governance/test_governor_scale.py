"""Governor over the real vPHA vault at the network's real scale (issue 7, finding 1).

About 65 M PHA is delegated on the real network and vPHA has 24 decimals, so one delegate
can hold more than 2**104 vPHA wei (about 20.3 M vPHA). These tests stake that much in the
real Vault (no votes double) and check that every delegate's vote counts in full.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import boa
import pytest
from compiled import compiled
from eth_utils import keccak
from governance_kit import (
    ABSTAIN,
    AGAINST,
    DEFAULT_ADMIN_ROLE,
    DEFEATED,
    EXECUTED,
    FOR,
    MIN_DELAY,
    QUEUED,
    QUORUM_NUMERATOR,
    SUCCEEDED,
    VOTES_DOUBLE,
    VOTING_DELAY,
    VOTING_PERIOD,
    deploy_governed,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

PHA = 10**18
VPHA = 10**24
M = 1_000_000
THRESHOLD = 10_000 * VPHA
OLD_FIELD = 2**104  # the width of a tally before the fix

# Opposition: 65 M PHA over three delegates, the largest well above 2**104 vPHA wei.
# Attacker: 30% of everything staked, split over two delegates to stay under 2**104 each.
STAKES = {
    "whale": 26 * M,
    "fund": 20 * M,
    "pool": 19 * M,
    "attacker": 20 * M,
    "sybil": 7_857_143,
}
OPPOSITION = ("pool", "whale", "fund")  # the order in which they vote


@dataclass
class Network:
    pha: Any
    vault: Any
    timelock: Any
    governor: Any
    stakers: dict[str, str]


@pytest.fixture(scope="module")
def network() -> Network:
    """Production wiring: the timelock owns the PHA minter role, the vault and the Governor."""
    deployer = boa.env.eoa
    pha, timelock, vault, governor = deploy_governed(THRESHOLD)
    stakers = {}
    for name, amount in STAKES.items():
        account = boa.env.generate_address(name)
        stakers[name] = account
        pha.mint(account, amount * PHA)
        with boa.env.prank(account):
            pha.approve(vault.address, amount * PHA)
            vault.deposit(amount * PHA, account)
            vault.delegate(account)
    pha.setMinter(deployer, False)
    pha.transfer_ownership(timelock.address)
    vault.transfer_ownership(timelock.address)
    timelock.renounceRole(DEFAULT_ADMIN_ROLE, deployer)
    boa.env.time_travel(seconds=1)
    return Network(pha, vault, timelock, governor, stakers)


@pytest.fixture(autouse=True)
def _isolated(network: Network) -> Iterator[None]:
    with boa.env.anchor():
        yield


def _make_minter(network: Network, who: str) -> tuple[list[str], list[int], list[bytes], str]:
    pha = network.pha
    calldata = pha.setMinter.prepare_calldata(network.stakers[who], True)
    return [pha.address], [0], [calldata], f"make {who} a PHA minter"


def test_the_stakes_are_at_real_scale(network: Network) -> None:
    vault, stakers = network.vault, network.stakers
    now = vault.clock()
    total = vault.getPastTotalSupply(now - 1)
    assert total == sum(STAKES.values()) * VPHA  # first deposits: 1 PHA = 1 vPHA
    assert total > 92 * M * VPHA
    whale = vault.getPastVotes(stakers["whale"], now - 1)
    assert whale == 26 * M * VPHA > 25 * M * VPHA > OLD_FIELD
    opposition = sum(vault.getPastVotes(stakers[n], now - 1) for n in OPPOSITION)
    assert opposition == 65 * M * VPHA
    attacker = sum(vault.getPastVotes(stakers[n], now - 1) for n in ("attacker", "sybil"))
    assert attacker * 10 // total == 3  # a 30% holder


def test_the_governors_votes_double_has_vphas_decimals(network: Network) -> None:
    """Unit tests run on a votes double; at 18 decimals it hid the tally overflow."""
    assert compiled(VOTES_DOUBLE).deploy().decimals() == network.vault.decimals() == 24


def test_a_delegate_above_25m_vpha_votes_with_its_full_weight(network: Network) -> None:
    gov, vault, stakers = network.governor, network.vault, network.stakers
    targets, values, calldatas, description = _make_minter(network, "whale")
    with boa.env.prank(stakers["whale"]):
        pid = gov.propose(targets, values, calldatas, description)
    boa.env.time_travel(seconds=VOTING_DELAY + 1)
    expected = vault.getPastVotes(stakers["whale"], gov.proposalSnapshot(pid))
    with boa.env.prank(stakers["whale"]):
        assert gov.castVote(pid, FOR) == expected
    assert gov.proposalVotes(pid) == (0, expected, 0)
    boa.env.time_travel(seconds=VOTING_PERIOD)
    assert gov.state(pid) == SUCCEEDED


def test_a_30_percent_holder_cannot_pass_a_proposal_against_65m(network: Network) -> None:
    """The attack of the review: the opposition votes first and would saturate its tally."""
    gov, vault, pha, stakers = network.governor, network.vault, network.pha, network.stakers
    targets, values, calldatas, description = _make_minter(network, "attacker")
    with boa.env.prank(stakers["attacker"]):
        pid = gov.propose(targets, values, calldatas, description)
    boa.env.time_travel(seconds=VOTING_DELAY + 1)
    snapshot = gov.proposalSnapshot(pid)

    against = 0
    for name in OPPOSITION:
        weight = vault.getPastVotes(stakers[name], snapshot)
        with boa.env.prank(stakers[name]):
            assert gov.castVote(pid, AGAINST) == weight
        against += weight
    support = 0
    for name in ("attacker", "sybil"):
        weight = vault.getPastVotes(stakers[name], snapshot)
        with boa.env.prank(stakers[name]):
            assert gov.castVote(pid, FOR) == weight
        support += weight
    assert gov.proposalVotes(pid) == (against, support, 0)
    assert against == 65 * M * VPHA > support

    boa.env.time_travel(seconds=VOTING_PERIOD)
    assert gov.state(pid) == DEFEATED
    with boa.reverts("Governor: proposal not successful"):
        gov.queue(targets, values, calldatas, keccak(text=description))
    assert not pha.isMinter(stakers["attacker"])


def test_65m_for_pass_and_execute_through_the_timelock(network: Network) -> None:
    """The whole opposition, now for, carries a proposal to execution: the eta shares the
    for-votes' slot, so the 65 M tally and the eta must not disturb each other."""
    gov, vault, pha, stakers = network.governor, network.vault, network.pha, network.stakers
    targets, values, calldatas, description = _make_minter(network, "fund")
    with boa.env.prank(stakers["fund"]):
        pid = gov.propose(targets, values, calldatas, description)
    boa.env.time_travel(seconds=VOTING_DELAY + 1)
    support = 0
    for name in OPPOSITION:
        with boa.env.prank(stakers[name]):
            support += gov.castVote(pid, FOR)
    for name in ("attacker", "sybil"):
        with boa.env.prank(stakers[name]):
            gov.castVote(pid, AGAINST)
    assert support == 65 * M * VPHA
    boa.env.time_travel(seconds=VOTING_PERIOD)
    assert gov.state(pid) == SUCCEEDED
    gov.queue(targets, values, calldatas, keccak(text=description))
    assert gov.state(pid) == QUEUED
    eta = gov.proposalEta(pid)
    assert eta == vault.clock() + MIN_DELAY
    assert gov.proposalVotes(pid)[1] == support  # the eta did not touch the tally
    boa.env.time_travel(seconds=MIN_DELAY)
    gov.execute(targets, values, calldatas, keccak(text=description))
    assert gov.state(pid) == EXECUTED
    assert pha.isMinter(stakers["fund"])


PHA_CAP = 10**27
STAKE = st.tuples(
    st.integers(min_value=1, max_value=10**6),  # share of the PHA still mintable, in ppm
    st.sampled_from([AGAINST, FOR, ABSTAIN, None]),  # None: staked, does not vote
)


@settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(stakes=st.lists(STAKE, min_size=1, max_size=5), old_guard=st.sampled_from([None, 0, 1, 2]))
def test_outcome_on_the_real_vault_is_the_arithmetic_one(
    network: Network, stakes: list[tuple[int, int | None]], old_guard: int | None
) -> None:
    """Random stakes up to the whole 1 B PHA, on top of the 92.9 M already staked, vote
    with the real Vault's weights; `old_guard` is how the 26 M whale votes (None: not).
    Tallies, quorum and state equal what plain integer arithmetic says."""
    gov, vault, pha = network.governor, network.vault, network.pha
    with boa.env.anchor():
        minter = boa.env.generate_address("property minter")
        with boa.env.prank(network.timelock.address):
            pha.setMinter(minter, True)
        voters: list[tuple[str, int | None]] = []
        for i, (ppm, support) in enumerate(stakes):
            amount = (PHA_CAP - pha.totalMinted()) * ppm // 10**6
            if amount == 0:  # an earlier staker took all that can still be minted
                continue
            account = boa.env.generate_address(f"staker{i}")
            with boa.env.prank(minter):
                pha.mint(account, amount)
            with boa.env.prank(account):
                pha.approve(vault.address, amount)
                vault.deposit(amount, account)
                vault.delegate(account)
            voters.append((account, support))
        if old_guard is not None:
            voters.append((network.stakers["whale"], old_guard))
        boa.env.time_travel(seconds=1)
        targets, values, calldatas, description = _make_minter(network, "pool")
        with boa.env.prank(network.stakers["pool"]):
            pid = gov.propose(targets, values, calldatas, description)
        boa.env.time_travel(seconds=VOTING_DELAY + 1)
        snapshot = gov.proposalSnapshot(pid)

        tally = {AGAINST: 0, FOR: 0, ABSTAIN: 0}
        for account, support in voters:
            if support is None:
                continue
            weight = vault.getPastVotes(account, snapshot)
            with boa.env.prank(account):
                assert gov.castVote(pid, support) == weight
            tally[support] += weight
        assert gov.proposalVotes(pid) == (tally[AGAINST], tally[FOR], tally[ABSTAIN])

        supply = vault.getPastTotalSupply(snapshot)
        quorum = supply * QUORUM_NUMERATOR // 100
        assert gov.quorum(snapshot) == quorum
        assert tally[AGAINST] + tally[FOR] + tally[ABSTAIN] <= supply
        boa.env.time_travel(seconds=VOTING_PERIOD)
        passed = tally[FOR] > tally[AGAINST] and tally[FOR] + tally[ABSTAIN] >= quorum
        assert gov.state(pid) == (SUCCEEDED if passed else DEFEATED)
