"""Revert paths of the vault that real PHA cannot reach: the 96-bit packing bounds
(PHA's 1e27 cap is below 2**96) and an asset whose transfer returns false. They use a
test-only uncapped token. And the bound of the contract itself: EIP-170's code size limit.

Two defensive checks stay unreachable even here and are not tested: "supply overflow"
(shares stay below 2**117 when staked PHA is below 2**96) and "request ids exhausted"
(2**40 requests).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import boa
import pytest
from compiled import compiled
from vpha_kit import DAY, GOV, MAX_UINT, STAKERS, TREASURY

LOOSE_TOKEN = Path(__file__).with_name("TestOnlyLooseToken.vy")
M96 = 2**96 - 1
EIP170_LIMIT = 24_576
SIZE_MARGIN = 256  # room for a fix; a new feature must move code out of the vault first
ALICE = STAKERS[0]


@pytest.fixture
def loose(vault_deployer: Any) -> tuple[Any, Any]:
    token = compiled(LOOSE_TOKEN).deploy()
    vault = vault_deployer.deploy(token.address, GOV, TREASURY)
    for who in (GOV, ALICE):
        token.mint(who, 4 * 2**96)
        with boa.env.prank(who):
            token.approve(vault.address, MAX_UINT)
    return token, vault


def test_deposit_beyond_96_bits_refused(loose: tuple[Any, Any]) -> None:
    _token, vault = loose
    with boa.env.prank(ALICE):
        vault.deposit(M96, ALICE)
        assert vault.maxDeposit(ALICE) == 0
        with boa.reverts("vPHA: deposit too large"):
            vault.deposit(1, ALICE)


def test_mint_beyond_96_bits_refused(loose: tuple[Any, Any]) -> None:
    _token, vault = loose
    with boa.env.prank(ALICE):
        vault.deposit(M96 - 1, ALICE)
        with boa.reverts("vPHA: deposit too large"):
            vault.mint(2 * 10**6, ALICE)


def test_reserve_beyond_96_bits_refused(loose: tuple[Any, Any]) -> None:
    _token, vault = loose
    with boa.env.prank(GOV):
        vault.fundRewards(M96)
        with boa.reverts("vPHA: reserve overflow"):
            vault.fundRewards(1)


def test_pending_beyond_96_bits_refused(loose: tuple[Any, Any]) -> None:
    _token, vault = loose
    with boa.env.prank(ALICE):
        vault.deposit(M96, ALICE)
        vault.requestRedeem(vault.balanceOf(ALICE), ALICE, ALICE)
        assert vault.pendingAssets() == M96
        vault.deposit(M96, ALICE)
        with boa.reverts("vPHA: pending overflow"):
            vault.requestRedeem(vault.balanceOf(ALICE), ALICE, ALICE)


def test_asset_returning_false_is_refused(loose: tuple[Any, Any]) -> None:
    token, vault = loose
    with boa.env.prank(ALICE):
        shares = vault.deposit(10**18, ALICE)
        rid = vault.requestRedeem(shares // 2, ALICE, ALICE)  # half stays staked, earning
    with boa.env.prank(GOV):
        vault.setTreasuryShareBps(10_000)
        vault.fundRewards(10**18)
        vault.setRewardRate(10**15)
    boa.env.time_travel(seconds=21 * DAY)
    token.setFailing(True)
    with boa.env.prank(ALICE):
        with boa.reverts("vPHA: PHA transfer failed"):
            vault.deposit(10**18, ALICE)
        with boa.reverts("vPHA: PHA transfer failed"):
            vault.mint(10**24, ALICE)
        with boa.reverts("vPHA: PHA transfer failed"):
            vault.claim(rid)
        with boa.reverts("vPHA: PHA transfer failed"):
            vault.fundRewards(1)
    assert vault.treasuryOwed() > 0
    with boa.reverts("vPHA: PHA transfer failed"):
        vault.releaseTreasury()


def test_vault_fits_eip170_with_margin(loose: tuple[Any, Any]) -> None:
    """A chain refuses to deploy more than 24,576 bytes of code; the vault, built for
    code size, must keep room for a fix before a deploy could fail."""
    _token, vault = loose
    size = len(boa.env.evm.get_code(vault.address))
    assert size > 10_000  # the deployed vault, immutables included, not a stub
    assert size + SIZE_MARGIN <= EIP170_LIMIT, f"Vault runtime is {size} bytes"
