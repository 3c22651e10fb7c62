"""Unit tests of PHA: every external function, every revert path, every privileged call."""

from __future__ import annotations

from typing import Any

import boa
import pytest
from eth_account import Account
from eth_utils import keccak
from vpha_kit import ACCOUNTS, KEYS, MAX_UINT, PHA, ZERO, domain_of, sign_permit

CAP = 10**27
STRANGER = ACCOUNTS[5].address


def _events(contract: Any, name: str) -> list[Any]:
    return [e for e in contract.get_logs() if type(e).__name__ == name]


def test_metadata_and_cap(token: Any, owner: str) -> None:
    assert token.name() == "Phala"
    assert token.symbol() == "PHA"
    assert token.decimals() == 18
    assert token.cap() == CAP == 1_000_000_000 * PHA
    assert token.totalSupply() == 0
    assert token.owner() == owner


def test_minter_mints_and_emits_transfer(token: Any, minter: str, alice: str) -> None:
    with boa.env.prank(minter):
        token.mint(alice, 5 * PHA)
        (log,) = _events(token, "Transfer")
    assert (log.sender, log.receiver, log.value) == (ZERO, alice, 5 * PHA)
    assert token.balanceOf(alice) == 5 * PHA
    assert token.totalSupply() == 5 * PHA


@pytest.mark.parametrize("caller_index", [0, 2, 5])
def test_mint_refused_for_non_minters_including_owner(token: Any, caller_index: int) -> None:
    with boa.env.prank(ACCOUNTS[caller_index].address), boa.reverts("PHA: caller is not a minter"):
        token.mint(ACCOUNTS[caller_index].address, 1)


def test_mint_up_to_cap_then_refused(token: Any, minter: str, alice: str) -> None:
    with boa.env.prank(minter):
        token.mint(alice, CAP - 1)
        with boa.reverts("PHA: cap exceeded"):
            token.mint(alice, 2)
        token.mint(alice, 1)
        assert token.totalSupply() == CAP
        with boa.reverts("PHA: cap exceeded"):
            token.mint(alice, 1)


def test_burn_does_not_make_room_under_the_lifetime_cap(
    token: Any, minter: str, alice: str, bob: str
) -> None:
    """1 B PHA, ever: once the cap is minted, burning PHA does not let anyone mint again."""
    with boa.env.prank(minter):
        token.mint(alice, CAP)
    with boa.env.prank(alice):
        token.burn(10 * PHA)
        token.approve(bob, PHA)
    with boa.env.prank(bob):
        token.burnFrom(alice, PHA)
    assert token.totalSupply() == CAP - 11 * PHA
    with boa.env.prank(minter):
        with boa.reverts("PHA: cap exceeded"):
            token.mint(alice, 1)
        with boa.reverts("PHA: cap exceeded"):
            token.mint(bob, 11 * PHA)
    assert token.totalSupply() == CAP - 11 * PHA
    assert token.totalMinted() == CAP


def test_total_minted_counts_mints_not_burns(token: Any, minter: str, alice: str) -> None:
    assert token.totalMinted() == 0
    with boa.env.prank(minter):
        token.mint(alice, 7 * PHA)
    with boa.env.prank(alice):
        token.burn(3 * PHA)
    with boa.env.prank(minter):
        token.mint(alice, 2 * PHA)
        with boa.reverts("PHA: cap exceeded"):
            token.mint(alice, CAP - 9 * PHA + 1)  # would fit the supply (6 PHA), not the cap
        token.mint(alice, CAP - 9 * PHA)
    assert token.totalMinted() == CAP
    assert token.totalSupply() == CAP - 3 * PHA
    assert token.balanceOf(alice) == CAP - 3 * PHA


def test_mint_to_zero_refused(token: Any, minter: str) -> None:
    with boa.env.prank(minter), boa.reverts("PHA: mint to the zero address"):
        token.mint(ZERO, 1)


def test_set_minter_by_owner_emits_and_dismisses(
    token: Any, owner: str, minter: str, alice: str
) -> None:
    with boa.env.prank(owner):
        token.setMinter(minter, False)
        (log,) = _events(token, "MinterSet")
    assert (log.minter, log.allowed) == (minter, False)
    assert not token.isMinter(minter)
    with boa.env.prank(minter), boa.reverts("PHA: caller is not a minter"):
        token.mint(alice, 1)


@pytest.mark.parametrize("caller_index", [1, 2, 5])
def test_set_minter_refused_for_non_owner(token: Any, caller_index: int) -> None:
    caller = ACCOUNTS[caller_index].address
    with boa.env.prank(caller), boa.reverts("PHA: caller is not the owner"):
        token.setMinter(caller, True)


def test_set_minter_zero_address_refused(token: Any, owner: str) -> None:
    with boa.env.prank(owner), boa.reverts("PHA: minter is the zero address"):
        token.setMinter(ZERO, True)


@pytest.mark.parametrize("method", ["transferOwnership", "transfer_ownership"])
def test_transfer_ownership_moves_power(token: Any, owner: str, alice: str, method: str) -> None:
    with boa.env.prank(owner):
        getattr(token, method)(alice)
        (log,) = _events(token, "OwnershipTransferred")
    assert (log.previous_owner, log.new_owner) == (owner, alice)
    assert token.owner() == alice
    with boa.env.prank(owner), boa.reverts("PHA: caller is not the owner"):
        token.setMinter(owner, True)
    with boa.env.prank(alice):
        token.setMinter(alice, True)
    assert token.isMinter(alice)


@pytest.mark.parametrize("method", ["transferOwnership", "transfer_ownership"])
def test_transfer_ownership_refused_for_non_owner_and_zero(
    token: Any, owner: str, method: str
) -> None:
    with boa.env.prank(STRANGER), boa.reverts("PHA: caller is not the owner"):
        getattr(token, method)(STRANGER)
    with boa.env.prank(owner), boa.reverts("PHA: new owner is the zero address"):
        getattr(token, method)(ZERO)


@pytest.fixture
def funded(token: Any, minter: str, alice: str) -> Any:
    with boa.env.prank(minter):
        token.mint(alice, 100 * PHA)
    return token


def test_transfer_moves_balance_and_emits(funded: Any, alice: str, bob: str) -> None:
    with boa.env.prank(alice):
        assert funded.transfer(bob, 40 * PHA) is True
        (log,) = _events(funded, "Transfer")
    assert (log.sender, log.receiver, log.value) == (alice, bob, 40 * PHA)
    assert funded.balanceOf(alice) == 60 * PHA
    assert funded.balanceOf(bob) == 40 * PHA
    assert funded.totalSupply() == 100 * PHA


def test_transfer_to_self_keeps_balance(funded: Any, alice: str) -> None:
    with boa.env.prank(alice):
        funded.transfer(alice, 30 * PHA)
    assert funded.balanceOf(alice) == 100 * PHA


def test_transfer_over_balance_and_to_zero_refused(funded: Any, alice: str, bob: str) -> None:
    with boa.env.prank(alice):
        with boa.reverts("PHA: transfer amount exceeds balance"):
            funded.transfer(bob, 100 * PHA + 1)
        with boa.reverts("PHA: transfer to the zero address"):
            funded.transfer(ZERO, 1)


def test_approve_and_transfer_from_spends_allowance(funded: Any, alice: str, bob: str) -> None:
    with boa.env.prank(alice):
        assert funded.approve(bob, 10 * PHA) is True
        (log,) = _events(funded, "Approval")
    assert (log.owner, log.spender, log.value) == (alice, bob, 10 * PHA)
    with boa.env.prank(bob):
        assert funded.transferFrom(alice, bob, 4 * PHA) is True
    assert funded.allowance(alice, bob) == 6 * PHA
    assert funded.balanceOf(bob) == 4 * PHA
    with boa.env.prank(bob), boa.reverts("PHA: insufficient allowance"):
        funded.transferFrom(alice, bob, 6 * PHA + 1)


def test_infinite_allowance_never_decreases(funded: Any, alice: str, bob: str) -> None:
    with boa.env.prank(alice):
        funded.approve(bob, MAX_UINT)
    with boa.env.prank(bob):
        funded.transferFrom(alice, bob, 7 * PHA)
    assert funded.allowance(alice, bob) == MAX_UINT


def test_transfer_from_over_balance_refused(funded: Any, alice: str, bob: str) -> None:
    with boa.env.prank(alice):
        funded.approve(bob, MAX_UINT)
    with boa.env.prank(bob), boa.reverts("PHA: transfer amount exceeds balance"):
        funded.transferFrom(alice, bob, 100 * PHA + 1)


def test_approve_zero_spender_refused(funded: Any, alice: str) -> None:
    with boa.env.prank(alice), boa.reverts("PHA: approve to the zero address"):
        funded.approve(ZERO, 1)


def test_burn_and_burn_from(funded: Any, alice: str, bob: str) -> None:
    with boa.env.prank(alice):
        funded.burn(10 * PHA)
        (log,) = _events(funded, "Transfer")
        assert (log.sender, log.receiver, log.value) == (alice, ZERO, 10 * PHA)
        funded.approve(bob, 5 * PHA)
    with boa.env.prank(bob):
        funded.burnFrom(alice, 5 * PHA)
        with boa.reverts("PHA: insufficient allowance"):
            funded.burnFrom(alice, 1)
    assert funded.balanceOf(alice) == 85 * PHA
    assert funded.totalSupply() == 85 * PHA
    with boa.env.prank(alice), boa.reverts("PHA: burn amount exceeds balance"):
        funded.burn(85 * PHA + 1)


def test_domain_separator_matches_eip712(token: Any) -> None:
    domain = domain_of(token)
    assert domain["name"] == "Phala"
    assert domain["version"] == "1"
    assert domain["verifyingContract"] == token.address
    fields, *_rest, salt, extensions = token.eip712Domain()
    assert fields == b"\x0f"
    assert salt == b"\x00" * 32
    assert extensions == []
    type_hash = keccak(
        text="EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)"
    )
    encoded = (
        type_hash
        + keccak(text="Phala")
        + keccak(text="1")
        + domain["chainId"].to_bytes(32, "big")
        + bytes(12)
        + bytes.fromhex(token.address[2:])
    )
    assert token.DOMAIN_SEPARATOR() == keccak(encoded)


def test_domain_separator_follows_a_chain_id_change(token: Any) -> None:
    before = token.DOMAIN_SEPARATOR()
    original = boa.env.evm.patch.chain_id
    try:
        boa.env.evm.patch.chain_id = original + 1
        after = token.DOMAIN_SEPARATOR()
        assert token.eip712Domain()[3] == original + 1
    finally:
        boa.env.evm.patch.chain_id = original
    assert after != before
    assert token.DOMAIN_SEPARATOR() == before


def _now() -> int:
    return boa.env.evm.patch.timestamp


def test_permit_sets_allowance_and_bumps_nonce(token: Any, bob: str) -> None:
    holder = ACCOUNTS[2]
    deadline = _now() + 3600
    v, r, s = sign_permit(KEYS[2], token, bob, 123, 0, deadline)
    with boa.env.prank(STRANGER):  # anyone may relay the signature
        token.permit(holder.address, bob, 123, deadline, v, r, s)
        (log,) = _events(token, "Approval")
    assert (log.owner, log.spender, log.value) == (holder.address, bob, 123)
    assert token.allowance(holder.address, bob) == 123
    assert token.nonces(holder.address) == 1


def test_permit_replay_refused(token: Any, bob: str) -> None:
    holder = ACCOUNTS[2].address
    deadline = _now() + 3600
    v, r, s = sign_permit(KEYS[2], token, bob, 5, 0, deadline)
    token.permit(holder, bob, 5, deadline, v, r, s)
    with boa.reverts("PHA: invalid signature"):
        token.permit(holder, bob, 5, deadline, v, r, s)


def test_permit_wrong_signer_refused(token: Any, bob: str) -> None:
    holder = ACCOUNTS[2].address
    deadline = _now() + 3600
    v, r, s = sign_permit(KEYS[3], token, bob, 5, 0, deadline)  # bob signs for alice
    with boa.reverts("PHA: invalid signature"):
        token.permit(holder, bob, 5, deadline, v, r, s)
    assert token.allowance(holder, bob) == 0


def test_permit_altered_value_refused(token: Any, bob: str) -> None:
    holder = ACCOUNTS[2].address
    deadline = _now() + 3600
    v, r, s = sign_permit(KEYS[2], token, bob, 5, 0, deadline)
    with boa.reverts("PHA: invalid signature"):
        token.permit(holder, bob, 6, deadline, v, r, s)


def test_permit_expired_refused(token: Any, bob: str) -> None:
    holder = ACCOUNTS[2].address
    deadline = _now() + 10
    v, r, s = sign_permit(KEYS[2], token, bob, 5, 0, deadline)
    boa.env.time_travel(seconds=11)
    with boa.reverts("PHA: permit expired"):
        token.permit(holder, bob, 5, deadline, v, r, s)


def test_permit_at_deadline_accepted(token: Any, bob: str) -> None:
    holder = ACCOUNTS[2].address
    deadline = _now() + 10
    v, r, s = sign_permit(KEYS[2], token, bob, 5, 0, deadline)
    boa.env.time_travel(seconds=10)
    token.permit(holder, bob, 5, deadline, v, r, s)
    assert token.allowance(holder, bob) == 5


def test_permit_high_s_malleated_signature_refused(token: Any, bob: str) -> None:
    holder = ACCOUNTS[2].address
    deadline = _now() + 3600
    v, r, s = sign_permit(KEYS[2], token, bob, 5, 0, deadline)
    n = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
    high_s = (n - int.from_bytes(s, "big")).to_bytes(32, "big")
    with boa.reverts("PHA: invalid signature"):
        token.permit(holder, bob, 5, deadline, 55 - v, r, high_s)


def test_permit_for_zero_owner_with_garbage_signature_refused(token: Any, bob: str) -> None:
    """ecrecover returns zero for an invalid signature; that must not pass as owner 0x0."""
    deadline = _now() + 3600
    with boa.reverts("PHA: invalid signature"):
        token.permit(ZERO, bob, 5, deadline, 27, b"\x00" * 32, b"\x00" * 32)


def test_permit_signature_is_what_eth_account_produces(token: Any) -> None:
    """Guard against a test kit that signs with the wrong key."""
    assert Account.from_key(KEYS[2]).address == ACCOUNTS[2].address


# ------------------------------------------------------------ the Migrator named at deploy


@pytest.fixture
def named(pha_deployer: Any, owner: str) -> Any:
    """PHA deployed with ACCOUNTS[6] as its Migrator, as the deploy script does."""
    with boa.env.prank(owner):
        return pha_deployer.deploy(ACCOUNTS[6].address)


def test_the_named_migrator_mints_from_deployment(named: Any, owner: str, alice: str) -> None:
    migrator = ACCOUNTS[6].address
    assert named.MIGRATOR() == migrator and named.isMinter(migrator)
    with boa.env.prank(migrator):
        named.mint(alice, 3 * PHA)
    assert named.balanceOf(alice) == named.totalSupply() == named.totalMinted() == 3 * PHA


def test_the_deploy_names_the_migrator_in_a_minter_event(pha_deployer: Any, owner: str) -> None:
    with boa.env.prank(owner):
        token = pha_deployer.deploy(ACCOUNTS[6].address)
    (log,) = _events(token, "MinterSet")
    assert (log.minter, log.allowed) == (ACCOUNTS[6].address, True)
    with boa.env.prank(owner):
        plain = pha_deployer.deploy(ZERO)
    assert _events(plain, "MinterSet") == []
    assert plain.MIGRATOR() == ZERO and not plain.isMinter(ZERO)


def test_the_owner_dismisses_and_reappoints_the_migrator(
    named: Any, owner: str, alice: str
) -> None:
    migrator = ACCOUNTS[6].address
    with boa.env.prank(migrator):
        named.mint(alice, 2 * PHA)
    with boa.env.prank(owner):
        named.setMinter(migrator, False)
        (log,) = _events(named, "MinterSet")
        assert (log.minter, log.allowed) == (migrator, False)
    assert not named.isMinter(migrator)
    with boa.env.prank(migrator), boa.reverts("PHA: caller is not a minter"):
        named.mint(alice, 1)
    # the dismissal bit lives in the supply slot: supply, minted and burns ignore it
    assert named.totalSupply() == named.totalMinted() == 2 * PHA
    with boa.env.prank(alice):
        named.burn(PHA)
    assert (named.totalSupply(), named.totalMinted()) == (PHA, 2 * PHA)
    assert not named.isMinter(migrator)
    with boa.env.prank(owner):
        named.setMinter(migrator, True)
    with boa.env.prank(migrator):
        named.mint(alice, PHA)
    assert (named.totalSupply(), named.totalMinted()) == (2 * PHA, 3 * PHA)


def test_only_the_owner_dismisses_the_migrator(named: Any) -> None:
    migrator = ACCOUNTS[6].address
    for caller in (migrator, STRANGER):
        with boa.env.prank(caller), boa.reverts("PHA: caller is not the owner"):
            named.setMinter(migrator, False)
    assert named.isMinter(migrator)
