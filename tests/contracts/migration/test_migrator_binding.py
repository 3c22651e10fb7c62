"""Issue 7 on the Migrator: the binding covers the holder's signature, votes arrive with the
stake, a dust stake is paid as PHA instead of freezing its leaf, and the audit re-verifies
(and fails on) the signatures claims publish.

Runs on the real PHA and vault (the vote test needs the vault's `depositAndDelegate`) and,
with VEIL_MIGRATOR_DOUBLES=1, on the doubles.
"""

from __future__ import annotations

import boa
import pytest
from eth_account import Account
from migrator_kit import (
    ATTESTER_KEYS,
    REAL_TOKENS,
    SCHEME,
    SIGNATURE,
    WEI,
    Leaf,
    System,
    Tree,
    make_leaves,
)

from veil.migration.attestation import SCHEME_IDS
from veil.migration.audit import AuditReport, check_claims
from veil.migration.binding import BindingContext, binding_message
from veil.migration.synthetic import keypair

GENESIS = bytes.fromhex("e6" * 32)
DUST = 10**9  # wei: worth no vPHA share once the vault's price is made high (make_dusty)


def addr(name: str) -> str:
    return boa.env.generate_address(name)


def events(contract, name: str) -> list:
    return [e for e in contract.get_logs() if type(e).__name__ == name]


def after_deadline(system: System) -> None:
    boa.env.time_travel(seconds=system.migrator.deadline() - boa.env.evm.patch.timestamp + 1)


# ------------------------------------------------------------ the binding covers the signature


def test_claim_with_another_signature_than_the_bound_one_reverts(live) -> None:
    system, tree = live
    receiver = addr("r")
    bound = system.attest(tree.leaves[0], receiver)  # over SIGNATURE, sr25519
    other = b"\x12" + SIGNATURE[1:]  # as valid-looking as the bound one
    for changed in ({"substrateSignature": other}, {"scheme": 0}, {"scheme": 2}):
        with boa.reverts():
            system.claim(tree, 0, receiver, attestations=bound, **changed)
    with boa.env.prank(system.owner):
        system.migrator.setThreshold(1)
    (one,) = system.attest(tree.leaves[0], receiver, [0])
    with boa.reverts("attester_set: unknown attester"):  # recovers to nobody registered
        system.claim(tree, 0, receiver, attestations=[one], substrateSignature=other)
    system.claim(tree, 0, receiver, attestations=[one])
    (log,) = events(system.migrator, "Claimed")
    assert (log.substrateSignature, log.scheme) == (SIGNATURE, SCHEME)


def test_claim_many_with_another_signature_than_the_bound_one_reverts(live) -> None:
    system, tree = live
    receivers = {v: addr(f"r{v}") for v in (0, 1, 2)}
    claims, proof, flags = system.batch_args(tree, [0, 1, 2], receivers)
    swapped = list(claims[1])
    swapped[5] = b"\x33" * 64
    with boa.reverts():
        system.migrator.claimMany([claims[0], tuple(swapped), claims[2]], proof, flags)
    system.migrator.claimMany(claims, proof, flags)
    assert all(system.migrator.isClaimed(tree.leaves[v].index) for v in (0, 1, 2))


def test_honour_late_claim_with_another_signature_than_the_bound_one_reverts(live) -> None:
    system, tree = live
    receiver = addr("late")
    args = system.claim_args(tree, 1, receiver)
    after_deadline(system)
    args["substrateSignature"] = b"\x44" * 64
    with boa.env.prank(system.owner), boa.reverts():
        system.migrator.honourLateClaim(*args.values())
    args["substrateSignature"] = SIGNATURE
    with boa.env.prank(system.owner):
        system.migrator.honourLateClaim(*args.values())
    assert system.migrator.isClaimed(tree.leaves[1].index)


def test_acceptance_follows_the_root_and_the_attester_set(system: System, tree: Tree) -> None:
    m = system.migrator
    a0, spare = system.attesters[0], Account.from_key(ATTESTER_KEYS[4]).address
    assert not m.isAccepted(tree.root, a0)  # no root yet
    system.set_tree(tree)
    assert m.isAccepted(tree.root, a0) and not m.isAccepted(tree.root, spare)
    with boa.env.prank(system.owner):
        m.setAttester(spare, True)
    assert m.isAccepted(tree.root, spare)
    other = Tree(make_leaves(5, seed=9))
    system.set_tree(other)  # replaced before the first claim: the old root accepts nobody
    assert not m.isAccepted(tree.root, a0) and not m.isAccepted(tree.root, spare)
    assert m.isAccepted(other.root, a0) and m.isAccepted(other.root, spare)
    with boa.env.prank(system.owner):
        m.setAttester(spare, False)
    assert not m.isAccepted(other.root, spare) and m.isAccepted(other.root, a0)
    system.set_tree(other)  # the same root again keeps its attesters
    assert m.isAccepted(other.root, a0)
    # the old tree's proofs fail as proofs, whatever attesters sign
    with boa.reverts("Migrator: invalid proof"):
        system.claim(tree, 0, addr("r"))


# ------------------------------------------------------------ votes arrive with the stake


def test_staked_claim_votes_from_the_claim_block(live) -> None:
    system, tree = live
    receiver = addr("voter")
    assert tree.leaves[0].staked > 0
    system.claim(tree, 0, receiver)
    shares = system.vault.balanceOf(receiver)
    assert shares > 0
    assert system.vault.getVotes(receiver) == shares
    assert system.vault.delegates(receiver) == receiver


def test_staked_claim_keeps_a_delegate_the_receiver_chose(live) -> None:
    system, tree = live
    receiver, friend = addr("delegator"), addr("friend")
    with boa.env.prank(receiver):
        system.vault.delegate(friend)
    system.claim(tree, 0, receiver)
    shares = system.vault.balanceOf(receiver)
    assert system.vault.delegates(receiver) == friend
    assert system.vault.getVotes(friend) == shares
    assert system.vault.getVotes(receiver) == 0


def test_batched_staked_claims_vote_too(live) -> None:
    system, tree = live
    receivers = {v: addr(f"batch voter {v}") for v in (0, 2, 4)}
    claims, proof, flags = system.batch_args(tree, list(receivers), receivers)
    system.migrator.claimMany(claims, proof, flags)
    for r in receivers.values():
        assert system.vault.getVotes(r) == system.vault.balanceOf(r) > 0


# ------------------------------------------------------------ a dust stake is paid as PHA


def make_dusty(system: System) -> None:
    """Raise the vault's share price until DUST wei of PHA buys no share: one wei staked,
    then a whole PHA of rewards streamed to it (the double is told directly)."""
    if not REAL_TOKENS:
        system.vault.setDustBelow(DUST + 1)
    else:
        whale = addr("whale")
        vault = system.vault
        with boa.env.prank(system.owner):
            system.pha.setMinter(system.owner, True)
            system.pha.mint(whale, 2 * WEI)
            system.pha.setMinter(system.owner, False)
        with boa.env.prank(whale):
            system.pha.approve(vault.address, 2**256 - 1)
            vault.deposit(1, whale)
            vault.fundRewards(WEI)
        with boa.env.prank(system.owner):
            vault.setRewardRate(WEI // 10)
        boa.env.time_travel(seconds=20)
    assert system.vault.previewDeposit(DUST) == 0
    assert system.vault.previewDeposit(3 * WEI) > 0


def dust_tree() -> Tree:
    leaves = make_leaves(6)
    leaves[1] = Leaf(1, leaves[1].account, 2 * WEI, DUST)  # free and a dust stake
    leaves[3] = Leaf(3, leaves[3].account, 0, DUST)  # only a dust stake
    return Tree(leaves)


@pytest.fixture
def dusty(system: System) -> tuple[System, Tree]:
    tree = dust_tree()
    system.set_tree(tree, window=365 * 86400)
    make_dusty(system)
    return system, tree


def test_dust_stake_is_paid_as_pha_by_claim(dusty) -> None:
    system, tree = dusty
    for position in (1, 3):
        leaf, receiver = tree.leaves[position], addr(f"dust {position}")
        system.claim(tree, position, receiver)
        assert system.pha.balanceOf(receiver) == leaf.free + leaf.staked
        assert system.vault.balanceOf(receiver) == 0
        (paid,) = events(system.migrator, "StakePaidAsPHA")
        assert (paid.index, paid.receiver, paid.amount) == (leaf.index, receiver, DUST)
        (claimed,) = events(system.migrator, "Claimed")
        assert (claimed.free, claimed.staked) == (leaf.free, leaf.staked)
    assert system.migrator.claimedStaked() == 2 * DUST
    paid_free = tree.leaves[1].free + tree.leaves[3].free
    held = system.migrator.totalFree() - paid_free
    assert system.pha.balanceOf(system.migrator.address) == held


def test_dust_stake_is_paid_as_pha_by_claim_many(dusty) -> None:
    system, tree = dusty
    receivers = {v: addr(f"dust batch {v}") for v in (0, 1, 3)}
    claims, proof, flags = system.batch_args(tree, list(receivers), receivers)
    system.migrator.claimMany(claims, proof, flags)
    paid = events(system.migrator, "StakePaidAsPHA")
    assert sorted((p.index, p.amount) for p in paid) == [(1, DUST), (3, DUST)]
    for v, r in receivers.items():
        leaf = tree.leaves[v]
        if v == 0:  # a stake worth shares is still staked
            assert system.pha.balanceOf(r) == leaf.free
            assert system.vault.balanceOf(r) > 0
        else:
            assert system.pha.balanceOf(r) == leaf.free + leaf.staked
            assert system.vault.balanceOf(r) == 0
    held = system.migrator.totalFree() - sum(tree.leaves[v].free for v in receivers)
    assert system.pha.balanceOf(system.migrator.address) == held


@pytest.mark.parametrize("swept", [False, True])
def test_dust_stake_is_paid_as_pha_by_honour_late_claim(dusty, swept: bool) -> None:
    system, tree = dusty
    leaf, receiver = tree.leaves[1], addr("late dust")
    args = system.claim_args(tree, 1, receiver)
    after_deadline(system)
    with boa.env.prank(system.owner):
        if swept:
            system.migrator.sweep()
    if swept:
        with boa.env.prank(system.treasury):
            system.pha.approve(system.migrator.address, 2**256 - 1)
    with boa.env.prank(system.owner):
        system.migrator.honourLateClaim(*args.values())
    assert system.pha.balanceOf(receiver) == leaf.free + leaf.staked
    assert system.vault.balanceOf(receiver) == 0
    (paid,) = events(system.migrator, "StakePaidAsPHA")
    assert (paid.index, paid.amount) == (1, DUST)
    held = 0 if swept else system.migrator.totalFree() - leaf.free
    assert system.pha.balanceOf(system.migrator.address) == held


# ------------------------------------------------------------ the audit re-verifies signatures


def claimed_args(log) -> dict:
    return {
        "index": log.index,
        "account": log.account,
        "receiver": log.receiver,
        "free": log.free,
        "staked": log.staked,
        "substrateSignature": log.substrateSignature,
        "scheme": log.scheme,
    }


def signed_bindings(context: BindingContext) -> list[tuple]:
    """Three holders (one per scheme): key, receiver, wrapped-form signature, scheme id."""
    out = []
    for position, scheme in enumerate(("sr25519", "ed25519", "ecdsa")):
        key = keypair(scheme, bytes([position + 1]) * 32)  # type: ignore[arg-type]
        receiver = addr(f"holder {position}")
        message = binding_message(key.account, receiver, context).encode()
        signature = key.sign(b"<Bytes>" + message + b"</Bytes>")
        out.append((key, receiver, signature, SCHEME_IDS[scheme]))
    return out


def test_audit_reverifies_real_signatures_and_fails_on_a_forged_one(system: System) -> None:
    context = BindingContext(GENESIS, system.chain_id, system.migrator.address)
    holders = signed_bindings(context)
    leaves = [Leaf(i, key.account, (i + 1) * WEI, 0) for i, (key, *_rest) in enumerate(holders)]
    forged_holder = keypair("sr25519", b"\x09" * 32)
    leaves.append(Leaf(3, forged_holder.account, WEI, 0))
    tree = Tree(leaves)
    system.set_tree(tree)
    logs = []
    for position, (_key, receiver, signature, scheme) in enumerate(holders):
        system.claim(tree, position, receiver, substrateSignature=signature, scheme=scheme)
        logs += events(system.migrator, "Claimed")
    report = AuditReport()
    free, staked, _ = check_claims(map(claimed_args, logs), tree._tree, context, report)
    assert report.ok, report.checks
    assert (free, staked) == (6 * WEI, 0)

    # A threshold of attesters that signs a binding over a signature that does not verify
    # gets the claim paid, but the audit catches it: the event publishes that signature.
    forged = b"\x55" * 64
    system.claim(tree, 3, addr("thief"), substrateSignature=forged, scheme=1)
    logs += events(system.migrator, "Claimed")
    report = AuditReport()
    check_claims(map(claimed_args, logs), tree._tree, context, report)
    assert not report.ok
    (bad,) = [c for c in report.checks if not c.ok]
    assert bad.name == "every holder signature re-verifies"
    assert "not a valid sr25519 signature" in bad.detail
