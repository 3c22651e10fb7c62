"""Unit tests of vPHA voting power (ERC-5805 / ERC-6372), permit and delegateBySig."""

from __future__ import annotations

from typing import Any

import boa
from eth_account.messages import encode_typed_data
from vpha_kit import ACCOUNTS, KEYS, PHA, ZERO, domain_of, sign_delegation, sign_permit

STRANGER = ACCOUNTS[5].address


def _events(contract: Any, name: str) -> list[Any]:
    return [e for e in contract.get_logs() if type(e).__name__ == name]


def _stake(vault: Any, who: str, assets: int) -> int:
    with boa.env.prank(who):
        return vault.deposit(assets, who)


def _now() -> int:
    return boa.env.evm.patch.timestamp


def test_clock_is_timestamp(vault: Any) -> None:
    assert vault.clock() == _now()
    assert vault.CLOCK_MODE() == "mode=timestamp"


def test_undelegated_shares_do_not_vote(vault: Any, alice: str) -> None:
    _stake(vault, alice, 10 * PHA)
    assert vault.getVotes(alice) == 0
    assert vault.delegates(alice) == ZERO
    assert vault.numCheckpoints(alice) == 0


def test_self_delegation_emits_and_counts(vault: Any, alice: str) -> None:
    shares = _stake(vault, alice, 10 * PHA)
    with boa.env.prank(alice):
        vault.delegate(alice)
        (changed,) = _events(vault, "DelegateChanged")
        (votes,) = _events(vault, "DelegateVotesChanged")
    assert (changed.delegator, changed.fromDelegate, changed.toDelegate) == (alice, ZERO, alice)
    assert (votes.delegate, votes.previousVotes, votes.newVotes) == (alice, 0, shares)
    assert vault.getVotes(alice) == shares
    assert vault.delegates(alice) == alice
    assert vault.numCheckpoints(alice) == 1
    assert vault.checkpoints(alice, 0) == (_now(), shares)


def test_redelegation_moves_votes(vault: Any, alice: str, bob: str, carol: str) -> None:
    shares = _stake(vault, alice, 10 * PHA)
    with boa.env.prank(alice):
        vault.delegate(bob)
        vault.delegate(carol)
    assert vault.getVotes(bob) == 0
    assert vault.getVotes(carol) == shares
    with boa.env.prank(alice):
        vault.delegate(ZERO)
    assert vault.getVotes(carol) == 0


def test_votes_follow_transfers_deposits_and_requests(
    vault: Any, alice: str, bob: str, carol: str
) -> None:
    a = _stake(vault, alice, 10 * PHA)
    with boa.env.prank(alice):
        vault.delegate(carol)
    with boa.env.prank(bob):
        vault.delegate(bob)
    with boa.env.prank(alice):
        vault.transfer(bob, a // 4)
        (log_a, log_b) = _events(vault, "DelegateVotesChanged")
    assert (log_a.delegate, log_a.previousVotes, log_a.newVotes) == (carol, a, a - a // 4)
    assert (log_b.delegate, log_b.previousVotes, log_b.newVotes) == (bob, 0, a // 4)
    b = _stake(vault, bob, 5 * PHA)
    assert vault.getVotes(bob) == a // 4 + b
    with boa.env.prank(alice):
        vault.requestRedeem(a // 4, alice, alice)
    assert vault.getVotes(carol) == a - 2 * (a // 4)
    # transfer to an undelegated holder removes votes from circulation
    with boa.env.prank(bob):
        vault.transfer(STRANGER, b)
    assert vault.getVotes(bob) == a // 4


def test_cancel_restores_votes_to_the_controllers_delegate(
    vault: Any, alice: str, bob: str
) -> None:
    shares = _stake(vault, alice, 10 * PHA)
    with boa.env.prank(alice):
        vault.delegate(bob)
        rid = vault.requestRedeem(shares // 2, alice, alice)
        assert vault.getVotes(bob) == shares - shares // 2
        minted = vault.cancelRedeemRequest(rid)
    assert vault.getVotes(bob) == shares - shares // 2 + minted


def test_past_votes_and_total_supply_history(vault: Any, alice: str, bob: str) -> None:
    with boa.env.prank(alice):
        vault.delegate(alice)
    t0 = _now()
    s1 = _stake(vault, alice, 10 * PHA)
    boa.env.time_travel(seconds=10)
    t1 = _now()
    s2 = _stake(vault, alice, 5 * PHA)
    s3 = _stake(vault, alice, 1 * PHA)  # same second: one checkpoint
    boa.env.time_travel(seconds=10)
    t2 = _now()
    with boa.env.prank(alice):
        vault.transfer(bob, s1)
    boa.env.time_travel(seconds=10)
    assert vault.numCheckpoints(alice) == 3
    assert vault.getPastVotes(alice, t0 - 1) == 0
    assert vault.getPastVotes(alice, t0) == s1
    assert vault.getPastVotes(alice, t1 - 1) == s1
    assert vault.getPastVotes(alice, t1) == s1 + s2 + s3
    assert vault.getPastVotes(alice, t2 - 1) == s1 + s2 + s3
    assert vault.getPastVotes(alice, t2) == s2 + s3
    assert vault.getPastTotalSupply(t0 - 1) == 0
    assert vault.getPastTotalSupply(t0) == s1
    assert vault.getPastTotalSupply(t1) == s1 + s2 + s3
    assert vault.getPastTotalSupply(t2) == s1 + s2 + s3
    assert vault.checkpoints(alice, 1) == (t1, s1 + s2 + s3)


def test_past_lookup_refuses_now_and_future(vault: Any, alice: str) -> None:
    with boa.reverts("vPHA: future lookup"):
        vault.getPastVotes(alice, _now())
    with boa.reverts("vPHA: future lookup"):
        vault.getPastTotalSupply(_now() + 1)


def test_checkpoint_index_out_of_range_refused(vault: Any, alice: str) -> None:
    with boa.reverts("vPHA: no such checkpoint"):
        vault.checkpoints(alice, 0)


def test_binary_search_over_many_checkpoints(vault: Any, alice: str) -> None:
    with boa.env.prank(alice):
        vault.delegate(alice)
    history = []
    for i in range(40):
        _stake(vault, alice, (i + 1) * PHA)
        history.append((_now(), vault.getVotes(alice)))
        boa.env.time_travel(seconds=3 + i % 5)
    assert vault.numCheckpoints(alice) == 40
    for when, votes in history:
        assert vault.getPastVotes(alice, when) == votes
        assert vault.getPastTotalSupply(when) == votes
        assert vault.getPastVotes(alice, when + 1) == votes
    assert vault.getPastVotes(alice, history[0][0] - 1) == 0


# --- delegateBySig ----------------------------------------------------------------------


def test_delegate_by_sig(vault: Any, bob: str) -> None:
    holder = ACCOUNTS[2].address
    shares = _stake(vault, holder, 10 * PHA)
    expiry = _now() + 3600
    v, r, s = sign_delegation(KEYS[2], vault, bob, 0, expiry)
    with boa.env.prank(STRANGER):
        vault.delegateBySig(bob, 0, expiry, v, r, s)
    assert vault.delegates(holder) == bob
    assert vault.getVotes(bob) == shares
    assert vault.nonces(holder) == 1
    with boa.reverts("vPHA: invalid nonce"):  # replay
        vault.delegateBySig(bob, 0, expiry, v, r, s)


def test_delegate_by_sig_wrong_nonce_expired_and_tampered(vault: Any, bob: str, carol: str) -> None:
    holder = ACCOUNTS[2].address
    _stake(vault, holder, 10 * PHA)
    expiry = _now() + 10
    v, r, s = sign_delegation(KEYS[2], vault, bob, 1, expiry)
    with boa.reverts("vPHA: invalid nonce"):
        vault.delegateBySig(bob, 1, expiry, v, r, s)
    v, r, s = sign_delegation(KEYS[2], vault, bob, 0, expiry)
    # a different delegatee recovers a different (random) signer, whose nonce is 0 too,
    # so the signature "works" for that stranger and must not touch the holder
    vault.delegateBySig(carol, 0, expiry, v, r, s)
    assert vault.delegates(holder) == ZERO
    boa.env.time_travel(seconds=11)
    with boa.reverts("vPHA: signature expired"):
        vault.delegateBySig(bob, 0, expiry, v, r, s)
    assert vault.delegates(holder) == ZERO


def test_delegate_by_sig_rejects_high_s_and_garbage(vault: Any, bob: str) -> None:
    expiry = _now() + 10
    v, r, s = sign_delegation(KEYS[2], vault, bob, 0, expiry)
    n = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
    high_s = (n - int.from_bytes(s, "big")).to_bytes(32, "big")
    # snekmate's ecdsa refuses both before any nonce is read
    with boa.reverts("ecdsa: invalid signature `s` value"):
        vault.delegateBySig(bob, 0, expiry, 55 - v, r, high_s)
    with boa.reverts("ecdsa: invalid signature"):
        vault.delegateBySig(bob, 0, expiry, 27, b"\x00" * 32, b"\x00" * 32)


# --- permit (nonce shared with delegateBySig) ------------------------------------------


def test_permit_shares_nonce_with_delegation(vault: Any, bob: str) -> None:
    holder = ACCOUNTS[2].address
    deadline = _now() + 3600
    v, r, s = sign_permit(KEYS[2], vault, bob, 77, 0, deadline)
    vault.permit(holder, bob, 77, deadline, v, r, s)
    assert vault.allowance(holder, bob) == 77
    assert vault.nonces(holder) == 1
    with boa.reverts("vPHA: invalid signature"):
        vault.permit(holder, bob, 77, deadline, v, r, s)
    # a delegation signed for nonce 0 is now stale
    v, r, s = sign_delegation(KEYS[2], vault, bob, 0, deadline)
    with boa.reverts("vPHA: invalid nonce"):
        vault.delegateBySig(bob, 0, deadline, v, r, s)


def test_permit_wrong_signer_and_expired(vault: Any, bob: str) -> None:
    holder = ACCOUNTS[2].address
    deadline = _now() + 5
    v, r, s = sign_permit(KEYS[3], vault, bob, 1, 0, deadline)
    with boa.reverts("vPHA: invalid signature"):
        vault.permit(holder, bob, 1, deadline, v, r, s)
    v, r, s = sign_permit(KEYS[2], vault, bob, 1, 0, deadline)
    boa.env.time_travel(seconds=6)
    with boa.reverts("vPHA: signature expired"):
        vault.permit(holder, bob, 1, deadline, v, r, s)


def test_vault_domain(vault: Any) -> None:
    domain = domain_of(vault)
    assert domain["name"] == "Staked PHA"
    assert domain["version"] == "1"
    assert domain["verifyingContract"] == vault.address
    # The separator is EIP-712's hash of exactly that domain (snekmate's module builds it).
    expected = encode_typed_data(
        domain_data=domain, message_types={"Empty": []}, message_data={}
    ).header
    assert vault.DOMAIN_SEPARATOR() == expected


def test_zero_address_has_no_votes_even_though_supply_exists(vault: Any, alice: str) -> None:
    """The total-supply trace is stored under key 0x0; it must not read as votes."""
    with boa.env.prank(alice):
        vault.delegate(alice)
    _stake(vault, alice, 10 * PHA)
    boa.env.time_travel(seconds=5)
    assert vault.totalSupply() > 0
    assert vault.getVotes(ZERO) == 0
    assert vault.getPastVotes(ZERO, _now() - 1) == 0
    assert vault.numCheckpoints(ZERO) == 0
    with boa.reverts("vPHA: no such checkpoint"):
        vault.checkpoints(ZERO, 0)
