"""The vPHA unlock queue as an ERC-7540 integrator reads it: operators, who may fill a
queue, redeem/withdraw as claim functions, the previews, the limits and ERC-165.

Finding 5 of issue 7: anyone could name any controller in requestRedeem and use up its
open-request limit. The first tests here fail on the vault before the fix.
"""

from __future__ import annotations

from typing import Any

import boa
import pytest
from eth_utils import function_signature_to_4byte_selector
from vpha_kit import ACCOUNTS, DAY, PHA, VIRTUAL_SHARES, ZERO

STRANGER = ACCOUNTS[5].address


def _events(contract: Any, name: str) -> list[Any]:
    return [e for e in contract.get_logs() if type(e).__name__ == name]


def _stake(vault: Any, who: str, assets: int) -> int:
    with boa.env.prank(who):
        return vault.deposit(assets, who)


def _request(vault: Any, who: str, shares: int, controller: str | None = None) -> int:
    with boa.env.prank(who):
        return vault.requestRedeem(shares, controller or who, who)


def _interface_id(*signatures: str) -> bytes:
    """ERC-165: the XOR of the interface's function selectors."""
    value = 0
    for signature in signatures:
        value ^= int.from_bytes(function_signature_to_4byte_selector(signature), "big")
    return value.to_bytes(4, "big")


# --- finding 5: nobody fills someone else's queue ------------------------------------


def test_stranger_cannot_fill_someone_elses_queue(vault: Any, alice: str, bob: str) -> None:
    """The griefing of finding 5: dust requests from the stranger's own shares naming
    alice as controller. Refused, so alice's limit stays hers."""
    _stake(vault, bob, 10 * PHA)
    shares = _stake(vault, alice, 10 * PHA)
    dust = VIRTUAL_SHARES  # worth one wei
    for _ in range(vault.maxOpenRequests()):
        with boa.env.prank(bob), boa.reverts("vPHA: caller is not the controller or its operator"):
            vault.requestRedeem(dust, alice, bob)
    assert vault.openRequestCount(alice) == 0
    ids = [_request(vault, alice, shares // 10) for _ in range(vault.maxOpenRequests())]
    assert vault.openRequests(alice) == ids


def test_allowance_alone_does_not_open_the_owners_queue(vault: Any, alice: str, bob: str) -> None:
    """An ERC-20 allowance lets the spender burn the owner's shares into its own request
    (ERC-7540), not into a queue it has no operator approval for."""
    shares = _stake(vault, alice, 10 * PHA)
    with boa.env.prank(alice):
        vault.approve(bob, shares)
    with boa.env.prank(bob), boa.reverts("vPHA: caller is not the controller or its operator"):
        vault.requestRedeem(shares // 4, alice, alice)
    with boa.env.prank(bob):
        rid = vault.requestRedeem(shares // 4, bob, alice)
    assert vault.redeemRequest(rid)[0] == bob
    assert vault.allowance(alice, bob) == shares - shares // 4


def test_operator_of_the_controller_may_queue_for_it(
    vault: Any, alice: str, bob: str, carol: str
) -> None:
    """bob spends his own shares into alice's queue once alice made him her operator;
    revoking takes that back."""
    _stake(vault, bob, 10 * PHA)
    shares = vault.balanceOf(bob)
    with boa.env.prank(alice):
        vault.setOperator(bob, True)
    with boa.env.prank(bob):
        rid = vault.requestRedeem(shares // 4, alice, bob)
    assert vault.openRequests(alice) == [rid]
    assert vault.openRequests(bob) == []
    # carol, operator of nobody, and bob after revocation are refused
    with boa.env.prank(carol), boa.reverts("vPHA: caller is not the controller or its operator"):
        vault.requestRedeem(1, alice, carol)
    with boa.env.prank(alice):
        vault.setOperator(bob, False)
    with boa.env.prank(bob), boa.reverts("vPHA: caller is not the controller or its operator"):
        vault.requestRedeem(shares // 4, alice, bob)


def test_the_limit_counts_only_requests_the_controller_authorised(
    vault: Any, gov: str, alice: str, bob: str
) -> None:
    """Each controller's limit is filled only by itself and its operators: bob filling
    his own queue leaves alice's room untouched, and alice's operator uses her room."""
    with boa.env.prank(gov):
        vault.setMaxOpenRequests(2)
    a = _stake(vault, alice, 10 * PHA)
    b = _stake(vault, bob, 10 * PHA)
    _request(vault, bob, b // 10)
    _request(vault, bob, b // 10)
    with boa.env.prank(bob), boa.reverts("vPHA: too many open unlock requests"):
        vault.requestRedeem(b // 10, bob, bob)
    with boa.env.prank(alice):
        vault.setOperator(bob, True)
    with boa.env.prank(bob):
        vault.requestRedeem(b // 10, alice, bob)  # counts against alice: she allowed it
    _request(vault, alice, a // 10)
    with boa.env.prank(alice), boa.reverts("vPHA: too many open unlock requests"):
        vault.requestRedeem(a // 10, alice, alice)


def test_set_operator_emits_and_returns_true(vault: Any, alice: str, bob: str) -> None:
    with boa.env.prank(alice):
        assert vault.setOperator(bob, True) is True
        (log,) = _events(vault, "OperatorSet")
    assert (log.controller, log.operator, log.approved) == (alice, bob, True)
    assert vault.isOperator(alice, bob)
    assert not vault.isOperator(bob, alice)
    with boa.env.prank(alice):
        assert vault.setOperator(bob, False) is True
        (log,) = _events(vault, "OperatorSet")
    assert log.approved is False
    assert not vault.isOperator(alice, bob)


# --- ERC-165 / ERC-7575 ----------------------------------------------------------------


OPERATOR_FUNCTIONS = ("setOperator(address,bool)", "isOperator(address,address)")
ASYNC_REDEEM_FUNCTIONS = (
    "requestRedeem(uint256,address,address)",
    "pendingRedeemRequest(uint256,address)",
    "claimableRedeemRequest(uint256,address)",
)
# ERC-7575 (required by ERC-7540): ERC-4626's vault functions plus share().
ERC7575_FUNCTIONS = (
    "asset()",
    "share()",
    "convertToShares(uint256)",
    "convertToAssets(uint256)",
    "totalAssets()",
    "maxDeposit(address)",
    "previewDeposit(uint256)",
    "deposit(uint256,address)",
    "maxMint(address)",
    "previewMint(uint256)",
    "mint(uint256,address)",
    "maxWithdraw(address)",
    "previewWithdraw(uint256)",
    "withdraw(uint256,address,address)",
    "maxRedeem(address)",
    "previewRedeem(uint256)",
    "redeem(uint256,address,address)",
)


def test_supports_the_erc7540_interfaces(vault: Any) -> None:
    operator_id = _interface_id(*OPERATOR_FUNCTIONS)
    redeem_id = _interface_id(*ASYNC_REDEEM_FUNCTIONS)
    erc165_id = _interface_id("supportsInterface(bytes4)")
    erc7575_id = _interface_id(*ERC7575_FUNCTIONS)
    # the constants the ERCs publish, derived here from their selectors
    assert operator_id.hex() == "e3bc4e65"
    assert redeem_id.hex() == "620ee8e4"
    assert erc7575_id.hex() == "2f0a18c5"
    for supported in (operator_id, redeem_id, erc165_id, erc7575_id):
        assert vault.supportsInterface(supported) is True
    async_deposit_id = _interface_id(
        "requestDeposit(uint256,address,address)",
        "pendingDepositRequest(uint256,address)",
        "claimableDepositRequest(uint256,address)",
    )
    for unsupported in (b"\xff\xff\xff\xff", b"\x00\x00\x00\x00", async_deposit_id):
        assert vault.supportsInterface(unsupported) is False
    assert vault.share() == vault.address


# --- previews --------------------------------------------------------------------------


def test_previews_revert_for_async_redeem(vault: Any, alice: str) -> None:
    """ERC-7540: previewRedeem and previewWithdraw revert for every caller and input."""
    _stake(vault, alice, 10 * PHA)
    for amount in (0, 1, 10**24):
        with boa.reverts("vPHA: async redeem, no preview"):
            vault.previewRedeem(amount)
        with boa.reverts("vPHA: async redeem, no preview"):
            vault.previewWithdraw(amount)
    # the synchronous side still previews
    assert vault.previewDeposit(PHA) == vault.convertToShares(PHA)


# --- claims through redeem / withdraw ----------------------------------------------------


def test_max_and_request_views_follow_the_unlock_period(vault: Any, alice: str) -> None:
    shares = _stake(vault, alice, 10 * PHA)
    first = _request(vault, alice, shares // 4)
    boa.env.time_travel(seconds=DAY)
    second = _request(vault, alice, shares // 2)
    s1, s2 = vault.redeemRequest(first)[2], vault.redeemRequest(second)[2]
    a1 = vault.redeemRequest(first)[1]
    assert vault.maxRedeem(alice) == 0
    assert vault.maxWithdraw(alice) == 0
    assert vault.pendingRedeemRequest(0, alice) == s1 + s2
    assert vault.claimableRedeemRequest(0, alice) == 0
    boa.env.time_travel(seconds=20 * DAY)  # first is due, second one day later
    assert vault.maxRedeem(alice) == s1
    assert vault.maxWithdraw(alice) == a1
    assert vault.pendingRedeemRequest(0, alice) == s2
    assert vault.claimableRedeemRequest(0, alice) == s1
    assert vault.claimableRedeemRequest(first, alice) == s1
    assert vault.pendingRedeemRequest(second, alice) == s2
    # views do not depend on the caller and name no one else's requests
    assert vault.maxRedeem(ZERO) == 0
    assert vault.claimableRedeemRequest(0, STRANGER) == 0


def test_redeem_claims_whole_requests_to_a_receiver(
    vault: Any, pha: Any, alice: str, bob: str
) -> None:
    shares = _stake(vault, alice, 10 * PHA)
    rid = _request(vault, alice, shares // 2)
    _, owed, burned, _, _ = vault.redeemRequest(rid)
    boa.env.time_travel(seconds=21 * DAY)
    pending_before = vault.pendingAssets()
    before = pha.balanceOf(bob)
    with boa.env.prank(alice):
        assert vault.redeem(burned, bob, alice) == owed
        (log,) = _events(vault, "Withdraw")
    assert (log.sender, log.receiver, log.owner, log.assets, log.shares) == (
        alice,
        bob,
        alice,
        owed,
        burned,
    )
    assert pha.balanceOf(bob) == before + owed
    assert vault.pendingAssets() == pending_before - owed
    assert vault.redeemRequest(rid)[4] == 2  # claimed
    assert vault.openRequests(alice) == []
    assert vault.maxRedeem(alice) == 0


def test_withdraw_claims_exact_assets(vault: Any, pha: Any, alice: str) -> None:
    shares = _stake(vault, alice, 10 * PHA)
    rid = _request(vault, alice, shares)
    _, owed, burned, _, _ = vault.redeemRequest(rid)
    boa.env.time_travel(seconds=21 * DAY)
    before = pha.balanceOf(alice)
    with boa.env.prank(alice):
        assert vault.withdraw(owed, alice, alice) == burned
    assert pha.balanceOf(alice) == before + owed
    assert vault.redeemRequest(rid)[4] == 2


def test_partial_redeem_splits_and_the_request_still_pays_exactly(
    vault: Any, pha: Any, gov: str, alice: str
) -> None:
    """A part of a request is paid in proportion (rounded down); the rest stays queued
    and pays the remainder, so the request pays in total exactly what was fixed."""
    shares = _stake(vault, alice, 1000 * PHA + 7)
    with boa.env.prank(gov):
        vault.fundRewards(10 * PHA)
        vault.setRewardRate(10**15 + 3)
    boa.env.time_travel(seconds=999)
    rid = _request(vault, alice, shares // 3)
    _, owed, burned, _, _ = vault.redeemRequest(rid)
    boa.env.time_travel(seconds=21 * DAY)
    part = burned // 7
    before = pha.balanceOf(alice)
    with boa.env.prank(alice):
        paid = vault.redeem(part, alice, alice)
    assert paid == owed * part // burned
    assert vault.redeemRequest(rid)[1:3] == (owed - paid, burned - part)
    assert vault.redeemRequest(rid)[4] == 1  # still pending (claimable)
    assert vault.maxRedeem(alice) == burned - part
    with boa.env.prank(alice):
        rest = vault.claim(rid)
    assert paid + rest == owed
    assert pha.balanceOf(alice) == before + owed


def test_partial_withdraw_keeps_at_least_one_share_queued(vault: Any, alice: str) -> None:
    shares = _stake(vault, alice, 10 * PHA)
    rid = _request(vault, alice, shares)
    _, owed, burned, _, _ = vault.redeemRequest(rid)
    boa.env.time_travel(seconds=21 * DAY)
    with boa.env.prank(alice):
        used = vault.withdraw(owed - 1, alice, alice)
    assert used == min(-(-burned * (owed - 1) // owed), burned - 1)
    assert vault.redeemRequest(rid)[1:3] == (1, burned - used)
    with boa.env.prank(alice):
        assert vault.redeem(burned - used, alice, alice) == 1
    assert vault.openRequests(alice) == []


def test_redeem_pays_oldest_first_and_skips_requests_still_locked(
    vault: Any, pha: Any, gov: str, alice: str
) -> None:
    """With the period shortened, a newer request can be due before an older one; a
    claim takes the due ones in queue order and leaves the locked one queued."""
    shares = _stake(vault, alice, 10 * PHA)
    old = _request(vault, alice, shares // 4)
    with boa.env.prank(gov):
        vault.setUnlockPeriod(DAY)
    mid = _request(vault, alice, shares // 4)
    new = _request(vault, alice, shares // 4)
    boa.env.time_travel(seconds=DAY)
    due = [vault.redeemRequest(r) for r in (mid, new)]
    total_shares = due[0][2] + due[1][2]
    assert vault.maxRedeem(alice) == total_shares
    with boa.env.prank(alice):
        paid = vault.redeem(total_shares, alice, alice)
    assert paid == due[0][1] + due[1][1]
    assert vault.openRequests(alice) == [old]
    with boa.env.prank(alice), boa.reverts("vPHA: exceeds claimable requests"):
        vault.redeem(1, alice, alice)


def test_operator_claims_to_any_receiver(vault: Any, pha: Any, alice: str, bob: str) -> None:
    shares = _stake(vault, alice, 10 * PHA)
    rid = _request(vault, alice, shares)
    owed = vault.redeemRequest(rid)[1]
    boa.env.time_travel(seconds=21 * DAY)
    with boa.env.prank(alice):
        vault.setOperator(bob, True)
    with boa.env.prank(bob):
        assert vault.withdraw(owed, bob, alice) == shares
    assert pha.balanceOf(bob) == 1_000_000 * PHA + owed


@pytest.mark.parametrize("method", ["redeem", "withdraw"])
def test_claim_refusals(vault: Any, alice: str, bob: str, method: str) -> None:
    shares = _stake(vault, alice, 10 * PHA)
    rid = _request(vault, alice, shares)
    _, owed, burned, _, _ = vault.redeemRequest(rid)
    amount = burned if method == "redeem" else owed
    claim = getattr(vault, method)
    with boa.env.prank(alice), boa.reverts("vPHA: exceeds claimable requests"):
        claim(amount, alice, alice)  # still inside the unlock period
    boa.env.time_travel(seconds=21 * DAY)
    with boa.env.prank(bob), boa.reverts("vPHA: caller is not the controller or its operator"):
        claim(amount, bob, alice)
    with boa.env.prank(alice):
        with boa.reverts("vPHA: zero amount"):
            claim(0, alice, alice)
        with boa.reverts("vPHA: exceeds claimable requests"):
            claim(amount + 1, alice, alice)
        with boa.reverts("PHA: transfer to the zero address"):
            claim(amount, ZERO, alice)
        claim(amount, alice, alice)
        with boa.reverts("vPHA: exceeds claimable requests"):
            claim(amount, alice, alice)  # nothing twice


# --- depositAndDelegate ------------------------------------------------------------------


def test_deposit_and_delegate_gives_votes_in_the_same_block(
    vault: Any, gov: str, alice: str
) -> None:
    """A fresh receiver (the Migrator's staked claim) votes from the deposit's block."""
    with boa.env.prank(gov):
        shares = vault.depositAndDelegate(5 * PHA, alice)
        changed = _events(vault, "DelegateChanged")
        moved = _events(vault, "DelegateVotesChanged")
        deposits = _events(vault, "Deposit")
    assert shares == 5 * PHA * VIRTUAL_SHARES
    assert vault.balanceOf(alice) == shares
    assert vault.getVotes(alice) == shares
    assert vault.delegates(alice) == alice
    assert [(e.delegator, e.fromDelegate, e.toDelegate) for e in changed] == [(alice, ZERO, alice)]
    assert [(e.delegate, e.previousVotes, e.newVotes) for e in moved] == [(alice, 0, shares)]
    assert [(e.sender, e.owner, e.assets, e.shares) for e in deposits] == [
        (gov, alice, 5 * PHA, shares)
    ]
    boa.env.time_travel(seconds=1)
    assert vault.getPastVotes(alice, vault.clock() - 1) == shares


def test_deposit_and_delegate_counts_the_balance_held_before(
    vault: Any, gov: str, alice: str
) -> None:
    """Shares alice held without voting start voting too, once she is self-delegated."""
    before = _stake(vault, alice, 3 * PHA)
    assert vault.getVotes(alice) == 0
    with boa.env.prank(gov):
        added = vault.depositAndDelegate(2 * PHA, alice)
    assert vault.getVotes(alice) == before + added
    # later deposits and transfers keep following her own votes
    with boa.env.prank(gov):
        more = vault.deposit(PHA, alice)
    assert vault.getVotes(alice) == before + added + more


def test_deposit_and_delegate_is_deposit_for_the_shares(vault: Any, gov: str, alice: str, bob: str):
    _stake(vault, bob, 7 * PHA + 3)
    expected = vault.previewDeposit(PHA + 1)
    with boa.env.prank(gov):
        assert vault.depositAndDelegate(PHA + 1, alice) == expected
    with boa.env.prank(gov), boa.reverts("vPHA: deposit too small for one share"):
        vault.depositAndDelegate(0, alice)
    with boa.env.prank(gov), boa.reverts("vPHA: mint to the zero address"):
        vault.depositAndDelegate(PHA, ZERO)


def test_deposit_and_delegate_keeps_an_earlier_delegation(
    vault: Any, gov: str, alice: str, bob: str
) -> None:
    with boa.env.prank(alice):
        vault.delegate(bob)
    with boa.env.prank(gov):
        shares = vault.depositAndDelegate(PHA, alice)
        assert _events(vault, "DelegateChanged") == []
    assert vault.delegates(alice) == bob
    assert vault.getVotes(bob) == shares
    assert vault.getVotes(alice) == 0


def test_deposit_and_delegate_keeps_an_explicit_choice_of_nobody(
    vault: Any, gov: str, alice: str, bob: str
) -> None:
    """Delegating to the zero address is a choice too (not to vote): it is kept."""
    with boa.env.prank(alice):
        vault.delegate(bob)
        vault.delegate(ZERO)
    with boa.env.prank(gov):
        vault.depositAndDelegate(PHA, alice)
    assert vault.delegates(alice) == ZERO
    assert vault.getVotes(alice) == 0
    assert vault.getVotes(bob) == 0
    # a never-delegated account that delegates to zero first is kept the same way
    with boa.env.prank(bob):
        vault.delegate(ZERO)
    with boa.env.prank(gov):
        vault.depositAndDelegate(PHA, bob)
    assert vault.getVotes(bob) == 0


def test_redelegating_after_automatic_self_delegation(
    vault: Any, gov: str, alice: str, bob: str
) -> None:
    """The automatic self-delegation behaves like delegate(self): moving away names
    alice as the previous delegate and moves all her votes."""
    with boa.env.prank(gov):
        shares = vault.depositAndDelegate(PHA, alice)
    with boa.env.prank(alice):
        vault.delegate(bob)
        (log,) = _events(vault, "DelegateChanged")
    assert (log.fromDelegate, log.toDelegate) == (alice, bob)
    assert vault.getVotes(alice) == 0
    assert vault.getVotes(bob) == shares
    with boa.env.prank(alice):
        vault.delegate(alice)
    assert vault.getVotes(alice) == shares
    assert vault.getVotes(bob) == 0
    assert vault.delegates(alice) == alice
