"""The market governed as deployed: the real PHA, vPHA Vault, Governor and Timelock own it,
and stakers change the price list, the fee, the grace period and the shutdown window
through a proposal. Nobody else, the deployer included, can."""

from __future__ import annotations

import sys
from pathlib import Path

import boa
from compiled import compiled
from eth_utils import keccak

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "governance"))
from governance_kit import (
    DEFAULT_ADMIN_ROLE,
    FOR,
    MIN_DELAY,
    THRESHOLD,
    VOTING_DELAY,
    VOTING_PERIOD,
    deploy_governed,
)
from market_kit import CPU, DAY, H100, H100_RATE, MARKET_SOURCE, PHA


def test_stakers_change_market_parameters_through_the_timelock() -> None:
    deployer = boa.env.eoa
    pha, timelock, vault, governor = deploy_governed(THRESHOLD)
    treasury = boa.env.generate_address("treasury")
    market = compiled(MARKET_SOURCE).deploy(pha.address, timelock.address, treasury)
    staker = boa.env.generate_address("staker")
    pha.mint(staker, 1_000 * PHA)
    with boa.env.prank(staker):
        pha.approve(vault.address, 1_000 * PHA)
        vault.deposit(1_000 * PHA, staker)
        vault.delegate(staker)
    timelock.renounceRole(DEFAULT_ADMIN_ROLE, deployer)
    boa.env.time_travel(seconds=1)

    with boa.reverts("ownable: caller is not the owner"):
        market.setPrice(H100, H100_RATE)  # the deployer owns nothing

    calldatas = [
        market.setPrice.prepare_calldata(H100, H100_RATE),
        market.setPrice.prepare_calldata(CPU, 1),
        market.setFeeBps.prepare_calldata(100),
        market.setGracePeriod.prepare_calldata(3 * DAY),
        market.setShutdownWindow.prepare_calldata(120),
    ]
    targets, values = [market.address] * len(calldatas), [0] * len(calldatas)
    description = "Market: price list, 1 % fee, 3-day grace, 2-minute window"
    with boa.env.prank(staker):
        pid = governor.propose(targets, values, calldatas, description)
    boa.env.time_travel(seconds=VOTING_DELAY + 1)
    with boa.env.prank(staker):
        governor.castVote(pid, FOR)
    boa.env.time_travel(seconds=VOTING_PERIOD)
    governor.queue(targets, values, calldatas, keccak(text=description))
    boa.env.time_travel(seconds=MIN_DELAY)
    governor.execute(targets, values, calldatas, keccak(text=description))

    assert market.priceOf(H100) == H100_RATE
    assert market.priceOf(CPU) == 1
    assert market.feeBps() == 100
    assert market.gracePeriod() == 3 * DAY
    assert market.shutdownWindow() == 120
