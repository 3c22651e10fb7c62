"""Governor over the real vPHA vault: staked PHA votes, and a proposal changes a vault parameter."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import boa
import pytest
from eth_utils import keccak
from governance_kit import (
    AGAINST,
    DEFAULT_ADMIN_ROLE,
    EXECUTED,
    FOR,
    MIN_DELAY,
    QUORUM_NUMERATOR,
    SUCCEEDED,
    THRESHOLD,
    VOTING_DELAY,
    VOTING_PERIOD,
    deploy_governed,
)

PHA_WEI = 10**18


@dataclass
class Economy:
    pha: Any
    vault: Any
    timelock: Any
    governor: Any
    stakers: dict[str, str]


def _stake(pha: Any, vault: Any, account: str, amount: int) -> None:
    pha.mint(account, amount)
    with boa.env.prank(account):
        pha.approve(vault.address, amount)
        vault.deposit(amount, account)
        vault.delegate(account)


@pytest.fixture(scope="module")
def economy() -> Economy:
    """The production wiring: everything owned by the timelock, the deployer left with nothing."""
    deployer = boa.env.eoa
    pha, timelock, vault, governor = deploy_governed(THRESHOLD)
    stakers = {}
    for name, amount in (("alice", 600), ("bob", 300), ("carol", 100)):
        stakers[name] = boa.env.generate_address(name)
        _stake(pha, vault, stakers[name], amount * PHA_WEI)
    pha.setMinter(deployer, False)
    vault.transfer_ownership(timelock.address)
    timelock.renounceRole(DEFAULT_ADMIN_ROLE, deployer)
    boa.env.time_travel(seconds=1)
    return Economy(pha, vault, timelock, governor, stakers)


@pytest.fixture(autouse=True)
def _isolated(economy: Economy) -> Iterator[None]:
    with boa.env.anchor():
        yield


def test_clock_is_the_vaults(economy: Economy) -> None:
    gov, vault = economy.governor, economy.vault
    assert gov.token() == vault.address
    assert gov.CLOCK_MODE() == vault.CLOCK_MODE() == "mode=timestamp"
    assert gov.clock() == vault.clock()
    now = gov.clock()
    shares = vault.balanceOf(economy.stakers["alice"])
    assert shares > 0
    assert gov.getVotes(economy.stakers["alice"], now - 1) == shares
    assert gov.quorum(now - 1) == vault.getPastTotalSupply(now - 1) * QUORUM_NUMERATOR // 100


def test_a_proposal_changes_a_vault_parameter(economy: Economy) -> None:
    gov, vault, stakers = economy.governor, economy.vault, economy.stakers
    new_period = 14 * 86_400
    assert vault.unlockPeriod() != new_period
    with boa.env.prank(stakers["alice"]), boa.reverts():
        vault.setUnlockPeriod(new_period)  # only the timelock owns it
    targets, values = [vault.address], [0]
    calldatas = [vault.setUnlockPeriod.prepare_calldata(new_period)]
    description = "Unlock period: 14 days"
    with boa.env.prank(stakers["bob"]):
        pid = gov.propose(targets, values, calldatas, description)
    boa.env.time_travel(seconds=VOTING_DELAY + 1)
    with boa.env.prank(stakers["alice"]):
        assert gov.castVote(pid, FOR) == vault.balanceOf(stakers["alice"])
    with boa.env.prank(stakers["bob"]):
        gov.castVote(pid, AGAINST)
    boa.env.time_travel(seconds=VOTING_PERIOD)
    assert gov.state(pid) == SUCCEEDED
    gov.queue(targets, values, calldatas, keccak(text=description))
    boa.env.time_travel(seconds=MIN_DELAY)
    gov.execute(targets, values, calldatas, keccak(text=description))
    assert gov.state(pid) == EXECUTED
    assert vault.unlockPeriod() == new_period


def test_stake_after_the_snapshot_does_not_vote(economy: Economy) -> None:
    gov, vault, pha = economy.governor, economy.vault, economy.pha
    calldatas = [vault.setMaxOpenRequests.prepare_calldata(3)]
    with boa.env.prank(economy.stakers["carol"]):
        pid = gov.propose([vault.address], [0], calldatas, "Three open requests")
    boa.env.time_travel(seconds=VOTING_DELAY + 1)
    latecomer = boa.env.generate_address("latecomer")
    pha.setMinter(boa.env.eoa, True)  # PHA stays with the deployer in this fixture
    _stake(pha, vault, latecomer, 10_000 * PHA_WEI)
    assert vault.getVotes(latecomer) > 0
    with boa.env.prank(latecomer):
        assert gov.castVote(pid, AGAINST) == 0
    with boa.env.prank(economy.stakers["carol"]):
        assert gov.castVote(pid, FOR) == vault.getPastVotes(
            economy.stakers["carol"], gov.proposalSnapshot(pid)
        )
    boa.env.time_travel(seconds=VOTING_PERIOD)
    assert gov.state(pid) == SUCCEEDED  # 10,000 late vPHA could not outvote 100


def test_proposer_needs_threshold_in_vpha(economy: Economy) -> None:
    gov, vault = economy.governor, economy.vault
    stranger = boa.env.generate_address("stranger")
    with boa.env.prank(stranger), boa.reverts("Governor: proposer votes below threshold"):
        gov.propose([vault.address], [0], [b""], "no stake")
