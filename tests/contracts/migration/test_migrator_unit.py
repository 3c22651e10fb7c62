"""Unit tests of the Migrator: every external function, every revert path, every privileged
function refused for any other caller. Trees are real StandardMerkleTrees and attestations
are real EIP-712 signatures made with veil.migration.attestation."""

from __future__ import annotations

import contextlib

import boa
import pytest
from boa.contracts.base_evm_contract import BoaError
from eth_account import Account
from eth_account.messages import encode_typed_data
from eth_utils import keccak
from hypothesis import given, settings
from hypothesis import strategies as st
from migrator_kit import (
    ATTESTER_KEYS,
    MIGRATOR,
    SCHEME,
    SIGNATURE,
    Leaf,
    System,
    Tree,
    deploy_system,
    deployer,
    make_leaves,
    sig_hash,
)

from veil.merkle import leaf_hash
from veil.migration.attestation import (
    SECP256K1_N,
    binding_digest,
    binding_typed_data,
    domain_separator,
)
from veil.migration.claim import pack_proof_flags

MAX_UINT = 2**256 - 1


def addr(name: str) -> str:
    return boa.env.generate_address(name)


def events(contract, name: str) -> list:
    return [e for e in contract.get_logs() if type(e).__name__ == name]


# ------------------------------------------------------------ constructor, domain, views


def test_constructor_wires_token_vault_and_roles(system: System) -> None:
    m = system.migrator
    assert m.PHA() == system.pha.address
    assert m.VAULT() == system.vault.address
    assert m.owner() == system.owner
    assert m.guardian() == system.guardian
    assert m.treasury() == system.treasury
    assert system.pha.allowance(m.address, system.vault.address) == MAX_UINT
    assert m.root() == b"\0" * 32
    assert m.deadline() == 0
    assert not m.paused()
    assert not m.swept()
    assert not m.rootFrozen()


@pytest.mark.parametrize("which", ["pha", "vault", "owner", "treasury"])
def test_constructor_refuses_zero_addresses(system: System, which: str) -> None:
    args = {
        "pha": system.pha.address,
        "vault": system.vault.address,
        "owner": system.owner,
        "guardian": system.guardian,
        "treasury": system.treasury,
    }
    args[which] = "0x" + "00" * 20
    with boa.reverts():
        deployer(MIGRATOR).deploy(*args.values())


def test_eip712_domain_and_binding_digest_match_python_and_eth_account(system: System) -> None:
    m = system.migrator
    fields, name, version, chain_id, verifying, salt, extensions = m.eip712Domain()
    assert (fields, name, version) == (b"\x0f", "veil Migrator", "1")
    assert verifying == m.address and salt == b"\0" * 32 and extensions == []
    assert m.DOMAIN_SEPARATOR() == domain_separator(chain_id, m.address)
    account = bytes(range(32))
    receiver = addr("receiver")
    bound = sig_hash(SIGNATURE, SCHEME)
    expected = binding_digest(account, receiver, bound, chain_id, m.address)
    assert m.bindingDigest(account, receiver, bound) == expected
    signable = encode_typed_data(
        full_message=binding_typed_data(account, receiver, bound, chain_id, m.address)
    )
    assert keccak(b"\x19" + signable.version + signable.header + signable.body) == expected
    assert m.bindingDigest(account, addr("other"), bound) != expected
    assert m.bindingDigest(account, receiver, sig_hash(SIGNATURE, 0)) != expected


@pytest.mark.parametrize(
    ("signature", "scheme"), [(b"\x11" * 64, 0), (b"\x11" * 64, 1), (b"\x02" * 65, 2)]
)
def test_signature_hash_is_keccak_of_the_multisignature(system: System, signature, scheme) -> None:
    from veil.migration.attestation import signature_hash

    name = {0: "ed25519", 1: "sr25519", 2: "ecdsa"}[scheme]
    expected = keccak(bytes([scheme]) + signature)
    assert system.migrator.signatureHash(signature, scheme) == expected
    assert signature_hash(signature, name) == expected
    assert signature_hash(bytes([scheme]) + signature, name) == expected  # SCALE MultiSignature


# ------------------------------------------------------------ setRoot


def test_set_root_commits_totals_and_deadline(system: System, tree: Tree) -> None:
    deadline = system.set_tree(tree)
    m = system.migrator
    (log,) = events(m, "RootSet")
    assert log.root == tree.root and log.deadline == deadline
    assert m.root() == tree.root
    assert m.totalFree() == tree.total_free
    assert m.totalStaked() == tree.total_staked
    assert m.leafCount() == len(tree.leaves)
    assert m.deadline() == deadline
    assert m.claimedFree() == 0 and m.claimedStaked() == 0
    assert m.threshold() == 2  # the packed word keeps the threshold


def test_set_root_can_be_replaced_until_the_first_claim(system: System, tree: Tree) -> None:
    other = Tree(make_leaves(5, seed=9))
    system.set_tree(other)
    system.set_tree(tree)
    assert system.migrator.root() == tree.root
    system.claim(tree, 0, addr("r"))
    assert system.migrator.rootFrozen()
    with boa.env.prank(system.owner), boa.reverts("Migrator: root frozen"):
        system.migrator.setRoot(other.root, 1, 1, 1, boa.env.evm.patch.timestamp + 100)


def test_set_root_mints_the_free_total_to_the_migrator_and_a_replacement_adjusts_it(
    system: System, tree: Tree
) -> None:
    m, pha = system.migrator, system.pha
    other = Tree(make_leaves(5, seed=9))
    system.set_tree(other)
    assert pha.balanceOf(m.address) == m.remainingFree() == other.total_free == pha.totalSupply()
    system.set_tree(tree)  # mints or burns the difference
    assert pha.balanceOf(m.address) == m.remainingFree() == tree.total_free == pha.totalSupply()
    most = max(other.total_free, tree.total_free)
    assert pha.totalMinted() == most
    system.set_tree(tree, free=tree.total_free - 5)  # 5 wei fewer: burned, still counted
    assert pha.balanceOf(m.address) == tree.total_free - 5 == pha.totalSupply()
    assert pha.totalMinted() == most
    assert m.claimedFree() == 0


def test_a_free_only_first_claim_freezes_the_root(system: System) -> None:
    tree = Tree(make_leaves(4, staked_every=0))
    system.set_tree(tree)
    m = system.migrator
    assert not m.rootFrozen()
    system.claim(tree, 0, addr("first"))
    assert m.rootFrozen()
    with boa.env.prank(system.owner), boa.reverts("Migrator: root frozen"):
        m.setRoot(tree.root, 1, 1, 1, boa.env.evm.patch.timestamp + 100)
    system.claim(tree, 1, addr("second"))  # later claims read the flag, write nothing more
    assert m.claimedFree() == tree.leaves[0].free + tree.leaves[1].free


def test_pha_sent_to_the_migrator_goes_to_the_treasury_at_the_sweep(live) -> None:
    system, tree = live
    m, pha = system.migrator, system.pha
    donor = addr("donor")
    system.claim(tree, 0, donor)
    gift = tree.leaves[0].free // 2
    pha.transfer(m.address, gift, sender=donor)
    # held PHA counts as unclaimed (so the view hides as much claimed), never above the total
    assert m.remainingFree() == tree.total_free - tree.leaves[0].free + gift
    assert m.claimedFree() == tree.leaves[0].free - gift
    close_period(system)
    with boa.env.prank(system.owner):
        m.sweep()
    held = tree.total_free - tree.leaves[0].free + gift
    unclaimed_staked = tree.total_staked - tree.leaves[0].staked
    assert pha.balanceOf(system.treasury) == held + unclaimed_staked
    assert pha.balanceOf(m.address) == m.remainingFree() == 0
    assert m.sweptFree() == held


def test_set_root_keeps_pause_and_threshold(system: System, tree: Tree) -> None:
    with boa.env.prank(system.guardian):
        system.migrator.pause()
    system.set_tree(tree)
    assert system.migrator.paused() and system.migrator.threshold() == 2


@pytest.mark.parametrize(
    ("root", "free", "staked", "count", "offset", "reason"),
    [
        (b"\0" * 32, 1, 1, 1, 100, "Migrator: zero root"),
        (b"\1" * 32, 1, 1, 0, 100, "Migrator: no leaves"),
        (b"\1" * 32, 2**96, 1, 1, 100, "Migrator: totals too large"),
        (b"\1" * 32, 1, 2**96, 1, 100, "Migrator: totals too large"),
        (b"\1" * 32, 1, 1, 1, 0, "Migrator: bad deadline"),
        (b"\1" * 32, 1, 1, 1, 2**48, "Migrator: bad deadline"),
    ],
)
def test_set_root_refuses_bad_values(system, root, free, staked, count, offset, reason) -> None:
    with boa.env.prank(system.owner), boa.reverts(reason):
        system.migrator.setRoot(root, free, staked, count, boa.env.evm.patch.timestamp + offset)


# ------------------------------------------------------------ claim


def test_claim_pays_free_as_pha_and_staked_as_vpha(live) -> None:
    system, tree = live
    m = system.migrator
    leaf = tree.leaves[0]
    assert leaf.free and leaf.staked
    receiver, relayer = addr("receiver"), addr("relayer")
    args = system.claim_args(tree, 0, receiver, substrateSignature=b"\xab" * 64, scheme=1)
    m.claim(*args.values(), sender=relayer)
    (log,) = events(m, "Claimed")
    assert (log.index, log.account, log.receiver) == (leaf.index, leaf.account, receiver)
    assert (log.free, log.staked, log.substrateSignature, log.scheme) == (
        leaf.free,
        leaf.staked,
        b"\xab" * 64,
        1,
    )
    assert system.pha.balanceOf(receiver) == leaf.free
    assert system.staked_value(receiver) == leaf.staked
    assert system.pha.balanceOf(relayer) == 0 and system.vault.balanceOf(relayer) == 0
    assert system.pha.balanceOf(m.address) == m.remainingFree() == m.totalFree() - leaf.free
    assert m.isClaimed(leaf.index) and not m.isClaimed(leaf.index + 1)
    assert m.claimedFree() == leaf.free and m.claimedStaked() == leaf.staked
    # the free total was minted to the Migrator with the root; the stake at the claim
    assert system.pha.totalSupply() == m.totalFree() + leaf.staked


def test_claim_free_only_leaf_touches_no_vault(live) -> None:
    system, tree = live
    leaf = tree.leaves[1]
    assert leaf.staked == 0
    receiver = addr("receiver")
    system.claim(tree, 1, receiver)
    assert system.pha.balanceOf(receiver) == leaf.free
    assert system.vault.balanceOf(receiver) == 0


def test_claim_accepts_a_65_byte_ecdsa_substrate_signature(live) -> None:
    system, tree = live
    system.claim(tree, 2, addr("r"), substrateSignature=b"\x01" * 65, scheme=2)
    (log,) = events(system.migrator, "Claimed")
    assert log.substrateSignature == b"\x01" * 65 and log.scheme == 2


def test_claim_refuses_an_unknown_signature_scheme(live) -> None:
    system, tree = live
    with boa.reverts("Migrator: unknown scheme"):
        system.claim(tree, 0, addr("r"), scheme=3)
    claims, proof, flags = system.batch_args(tree, [0, 1], {0: addr("a"), 1: addr("b")})
    claims[1] = (*claims[1][:6], 3, claims[1][7])
    with boa.reverts("Migrator: unknown scheme"):
        system.migrator.claimMany(claims, proof, flags)
    close_period(system)
    with boa.env.prank(system.owner), boa.reverts("Migrator: unknown scheme"):
        system.migrator.honourLateClaim(*system.claim_args(tree, 0, addr("r"), scheme=7).values())


def test_claim_accepts_more_attestations_than_the_threshold(live) -> None:
    system, tree = live
    receiver = addr("r")
    system.claim(tree, 0, receiver, attestations=system.attest(tree.leaves[0], receiver, [0, 1, 2]))
    assert system.migrator.isClaimed(0)


def test_claim_refuses_a_wrong_proof(live) -> None:
    system, tree = live
    proof = tree.proof(0)
    proof[0] = bytes(32)
    with boa.reverts("Migrator: invalid proof"):
        system.claim(tree, 0, addr("r"), proof=proof)


def test_claim_refuses_the_proof_of_another_leaf(live) -> None:
    system, tree = live
    with boa.reverts("Migrator: invalid proof"):
        system.claim(tree, 0, addr("r"), proof=tree.proof(1))


@pytest.mark.parametrize("field", ["index", "free", "staked"])
def test_claim_refuses_altered_leaf_values(live, field: str) -> None:
    system, tree = live
    leaf = tree.leaves[0]
    with boa.reverts("Migrator: invalid proof"):
        system.claim(tree, 0, addr("r"), **{field: getattr(leaf, field) + 1})


def test_claim_refuses_another_account(live) -> None:
    system, tree = live
    other = tree.leaves[1].account
    receiver = addr("r")
    with boa.reverts("Migrator: invalid proof"):
        system.claim(
            tree,
            0,
            receiver,
            account=other,
            attestations=system.attest(tree.leaves[1], receiver),
        )


def test_claim_refuses_attestations_over_another_receiver(live) -> None:
    system, tree = live
    receiver, thief = addr("receiver"), addr("thief")
    for_receiver = system.attest(tree.leaves[0], receiver)
    with boa.reverts():  # recovers to an unknown (or out-of-order) address
        system.claim(tree, 0, thief, attestations=for_receiver)
    assert not system.migrator.isClaimed(0)
    system.claim(tree, 0, receiver, attestations=for_receiver)
    assert system.pha.balanceOf(receiver) == tree.leaves[0].free


def test_claim_refuses_too_few_attestations(live) -> None:
    system, tree = live
    receiver = addr("r")
    with boa.reverts("attester_set: too few signatures"):
        system.claim(tree, 0, receiver, attestations=system.attest(tree.leaves[0], receiver, [0]))
    with boa.reverts("attester_set: too few signatures"):
        system.claim(tree, 0, receiver, attestations=[])


def test_claim_refuses_the_same_attester_twice(live) -> None:
    system, tree = live
    receiver = addr("r")
    (one,) = system.attest(tree.leaves[0], receiver, [0])
    with boa.reverts("attester_set: signers not strictly increasing"):
        system.claim(tree, 0, receiver, attestations=[one, one])


def test_claim_refuses_attestations_out_of_order(live) -> None:
    system, tree = live
    receiver = addr("r")
    ordered = system.attest(tree.leaves[0], receiver, [0, 1])
    with boa.reverts("attester_set: signers not strictly increasing"):
        system.claim(tree, 0, receiver, attestations=list(reversed(ordered)))


def test_claim_refuses_an_unregistered_attester(live) -> None:
    system, tree = live
    receiver = addr("r")
    outsider = ATTESTER_KEYS[5]  # deploy_system registers keys 0..2
    signed = system.raw_attestations(tree.leaves[0], receiver, [ATTESTER_KEYS[0], outsider])
    signers = [Account.from_key(k).address for k in (ATTESTER_KEYS[0], outsider)]
    signed = [s for _, s in sorted(zip(signers, signed, strict=True), key=lambda p: int(p[0], 16))]
    with boa.reverts("attester_set: unknown attester"):
        system.claim(tree, 0, receiver, attestations=signed)


def test_claim_refuses_a_high_s_signature(live) -> None:
    system, tree = live
    receiver = addr("r")
    first, second = system.attest(tree.leaves[0], receiver, [0, 1])
    r, vs = first
    # s above half the curve order (the range where a valid signature's malleable twin
    # lies), kept below 2**255 so the compact form can carry it, with the recovery bit set
    high = (1 << 255) | (SECP256K1_N // 2 + 1)
    assert int.from_bytes(vs, "big") != high
    with boa.reverts("attester_set: high-s signature"):
        system.claim(tree, 0, receiver, attestations=[(r, high.to_bytes(32, "big")), second])


def test_claim_refuses_a_signature_that_recovers_nothing(live) -> None:
    system, tree = live
    receiver = addr("r")
    first, second = system.attest(tree.leaves[0], receiver, [0, 1])
    with boa.reverts("attester_set: signers not strictly increasing"):
        system.claim(tree, 0, receiver, attestations=[(bytes(32), first[1]), second])


def test_claim_refuses_a_double_claim(live) -> None:
    system, tree = live
    system.claim(tree, 0, addr("r"))
    with boa.reverts("Migrator: already claimed"):
        system.claim(tree, 0, addr("r2"))


def test_claim_refuses_while_paused_and_resumes_after_unpause(live) -> None:
    system, tree = live
    with boa.env.prank(system.guardian):
        system.migrator.pause()
    with boa.reverts("Migrator: paused"):
        system.claim(tree, 0, addr("r"))
    with boa.env.prank(system.owner):
        system.migrator.unpause()
    system.claim(tree, 0, addr("r"))


def test_claim_refuses_after_the_deadline(live) -> None:
    system, tree = live
    deadline = system.migrator.deadline()
    boa.env.time_travel(seconds=deadline - boa.env.evm.patch.timestamp)
    system.claim(tree, 0, addr("r"))  # the deadline itself is still inside the period
    boa.env.time_travel(seconds=1)
    with boa.reverts("Migrator: claim period closed"):
        system.claim(tree, 1, addr("r"))


def test_claim_refuses_before_a_root_is_set(system: System, tree: Tree) -> None:
    with boa.reverts("Migrator: no root"):
        system.claim(tree, 0, addr("r"))


def test_claim_needs_an_attestation_even_before_a_threshold_is_chosen() -> None:
    system = deploy_system(threshold=0)
    assert system.migrator.threshold() == 1  # the attester set starts at threshold 1
    tree = Tree(make_leaves(4))
    system.set_tree(tree)
    with boa.reverts("attester_set: too few signatures"):
        system.claim(tree, 0, addr("r"), attestations=[])


def test_claim_never_mints_past_the_committed_totals(system: System) -> None:
    tree = Tree(make_leaves(4, staked_every=1))
    free_short = tree.total_free - tree.leaves[3].free + 1
    system.set_tree(tree, free=free_short)
    for i in range(3):
        system.claim(tree, i, addr(f"r{i}"))
    with boa.reverts("Migrator: exceeds committed totals"):
        system.claim(tree, 3, addr("r3"))
    assert system.pha.totalSupply() <= free_short + tree.total_staked


def test_claim_never_mints_past_the_committed_staked_total(system: System) -> None:
    tree = Tree(make_leaves(2, staked_every=1))
    system.set_tree(tree, staked=tree.leaves[0].staked)
    system.claim(tree, 0, addr("r0"))
    with boa.reverts("Migrator: exceeds committed totals"):
        system.claim(tree, 1, addr("r1"))


# ------------------------------------------------------------ claimMany


def test_claim_many_pays_every_leaf_once(live) -> None:
    system, tree = live
    m = system.migrator
    chosen = [0, 1, 2, 5, 8, 11]
    receivers = {i: addr(f"r{i}") for i in chosen}
    claims, proof, flags = system.batch_args(tree, chosen, receivers)
    m.claimMany(claims, proof, flags, sender=addr("relayer"))
    assert len(events(m, "Claimed")) == len(chosen)
    for i in range(len(tree.leaves)):
        assert m.isClaimed(i) == (i in chosen)
    for i in chosen:
        leaf = tree.leaves[i]
        assert system.pha.balanceOf(receivers[i]) == leaf.free
        assert system.staked_value(receivers[i]) == leaf.staked
    assert m.claimedFree() == sum(tree.leaves[i].free for i in chosen)
    assert m.claimedStaked() == sum(tree.leaves[i].staked for i in chosen)
    paid_free = sum(tree.leaves[i].free for i in chosen)
    assert system.pha.balanceOf(m.address) == m.remainingFree() == m.totalFree() - paid_free


def test_claim_many_across_bitmap_words() -> None:
    system = deploy_system()
    leaves = make_leaves(6)
    leaves = [Leaf(i * 200, leaf.account, leaf.free, leaf.staked) for i, leaf in enumerate(leaves)]
    tree = Tree(leaves)
    system.set_tree(tree)
    claims, proof, flags = system.batch_args(tree, range(6), {i: addr(f"r{i}") for i in range(6)})
    system.migrator.claimMany(claims, proof, flags)
    for leaf in leaves:
        assert system.migrator.isClaimed(leaf.index)
        assert not system.migrator.isClaimed(leaf.index + 1)
    with boa.reverts("Migrator: already claimed"):
        system.claim(tree, 3, addr("again"))


def test_claim_many_refuses_a_tampered_leaf(live) -> None:
    system, tree = live
    claims, proof, flags = system.batch_args(tree, [0, 1, 2], {i: addr(f"r{i}") for i in range(3)})
    claims[1] = (claims[1][0], claims[1][1], claims[1][2] + 1, *claims[1][3:])
    with boa.reverts("Migrator: invalid proof"):
        system.migrator.claimMany(claims, proof, flags)


def test_claim_many_refuses_an_empty_batch(live) -> None:
    system, _ = live
    with boa.reverts("Migrator: no claims"):
        system.migrator.claimMany([], [system.migrator.root()], 0)


def test_claim_many_refuses_a_leaf_already_claimed(live) -> None:
    system, tree = live
    system.claim(tree, 1, addr("first"))
    claims, proof, flags = system.batch_args(tree, [0, 1], {0: addr("a"), 1: addr("b")})
    with boa.reverts("Migrator: already claimed"):
        system.migrator.claimMany(claims, proof, flags)


def test_claim_many_refuses_one_bad_attestation(live) -> None:
    system, tree = live
    claims, proof, flags = system.batch_args(tree, [0, 1], {0: addr("a"), 1: addr("b")})
    claims[0] = (*claims[0][:4], addr("thief"), *claims[0][5:])
    with boa.reverts():
        system.migrator.claimMany(claims, proof, flags)
    assert not system.migrator.isClaimed(1)


def test_claim_many_refuses_while_paused_after_deadline_and_past_totals(system: System) -> None:
    tree = Tree(make_leaves(4, staked_every=1))
    system.set_tree(tree, staked=tree.total_staked - 1)
    claims, proof, flags = system.batch_args(tree, range(4), {i: addr(f"r{i}") for i in range(4)})
    with boa.reverts("Migrator: exceeds committed totals"):
        system.migrator.claimMany(claims, proof, flags)
    with boa.env.prank(system.owner):
        system.migrator.pause()
    with boa.reverts("Migrator: paused"):
        system.migrator.claimMany(claims, proof, flags)
    with boa.env.prank(system.owner):
        system.migrator.unpause()
    boa.env.time_travel(seconds=31 * 86400)
    with boa.reverts("Migrator: claim period closed"):
        system.migrator.claimMany(claims, proof, flags)


# ------------------------------------------------------------ sweep and late claims


def close_period(system: System) -> None:
    boa.env.time_travel(seconds=system.migrator.deadline() - boa.env.evm.patch.timestamp + 1)


def test_sweep_mints_the_unclaimed_remainder_to_the_treasury_once(live) -> None:
    system, tree = live
    m = system.migrator
    system.claim(tree, 0, addr("r"))
    with boa.env.prank(system.owner), boa.reverts("Migrator: claim period open"):
        m.sweep()
    close_period(system)
    with boa.env.prank(system.owner):
        m.sweep()
    unclaimed_free = tree.total_free - tree.leaves[0].free
    unclaimed_staked = tree.total_staked - tree.leaves[0].staked
    (log,) = events(m, "Swept")
    assert (log.treasury, log.free, log.staked) == (
        system.treasury,
        unclaimed_free,
        unclaimed_staked,
    )
    assert system.pha.balanceOf(system.treasury) == unclaimed_free + unclaimed_staked
    assert m.swept() and m.sweptFree() == unclaimed_free and m.sweptStaked() == unclaimed_staked
    assert system.pha.totalSupply() == tree.total_free + tree.total_staked
    with boa.env.prank(system.owner), boa.reverts("Migrator: already swept"):
        m.sweep()
    with boa.env.prank(system.owner), boa.reverts("Migrator: root frozen"):
        m.setRoot(tree.root, 1, 1, 1, boa.env.evm.patch.timestamp + 100)


def test_sweep_refuses_without_a_root(system: System) -> None:
    with boa.env.prank(system.owner), boa.reverts("Migrator: no root"):
        system.migrator.sweep()


def test_honour_late_claim_before_sweep_mints_from_the_remainder(live) -> None:
    system, tree = live
    m = system.migrator
    receiver = addr("late")
    args = system.claim_args(tree, 0, receiver)
    with boa.env.prank(system.owner), boa.reverts("Migrator: claim period open"):
        m.honourLateClaim(*args.values())
    close_period(system)
    with boa.env.prank(system.owner):
        m.honourLateClaim(*args.values())
    (late,) = events(m, "LateClaimHonoured")
    assert late.index == 0 and late.fromTreasury is False
    assert len(events(m, "Claimed")) == 1
    leaf = tree.leaves[0]
    assert system.pha.balanceOf(receiver) == leaf.free
    assert system.staked_value(receiver) == leaf.staked
    assert m.claimedFree() == leaf.free and m.claimedStaked() == leaf.staked
    with boa.env.prank(system.owner), boa.reverts("Migrator: already claimed"):
        m.honourLateClaim(*args.values())
    with boa.env.prank(system.owner):
        m.sweep()
    assert m.sweptFree() + m.claimedFree() == tree.total_free


def test_honour_late_claim_after_sweep_pays_from_the_treasury(live) -> None:
    system, tree = live
    m = system.migrator
    close_period(system)
    with boa.env.prank(system.owner):
        m.sweep()
    supply = system.pha.totalSupply()
    leaf = tree.leaves[0]
    receiver = addr("late")
    args = system.claim_args(tree, 0, receiver)
    with boa.env.prank(system.owner), boa.reverts():
        m.honourLateClaim(*args.values())  # the treasury has not approved the migrator
    with boa.env.prank(system.treasury):
        system.pha.approve(m.address, leaf.free + leaf.staked)
    with boa.env.prank(system.owner):
        m.honourLateClaim(*args.values())
    (late,) = events(m, "LateClaimHonoured")
    assert late.fromTreasury is True
    assert system.pha.totalSupply() == supply  # nothing new minted
    assert system.pha.balanceOf(receiver) == leaf.free
    assert system.staked_value(receiver) == leaf.staked
    assert m.sweptFree() == tree.total_free - leaf.free
    assert m.sweptStaked() == tree.total_staked - leaf.staked
    assert m.claimedFree() == leaf.free and m.claimedStaked() == leaf.staked
    assert system.pha.balanceOf(m.address) == m.remainingFree() == 0


def test_honour_late_claim_checks_proof_attestations_and_swept_amounts(system: System) -> None:
    tree = Tree(make_leaves(3, staked_every=1))
    system.set_tree(tree, free=tree.total_free - 1)
    m = system.migrator
    system.claim(tree, 0, addr("on time"))
    close_period(system)
    receiver = addr("late")
    with boa.env.prank(system.owner), boa.reverts("Migrator: invalid proof"):
        m.honourLateClaim(*system.claim_args(tree, 1, receiver, proof=tree.proof(2)).values())
    too_few = system.attest(tree.leaves[1], receiver, [0])
    with boa.env.prank(system.owner), boa.reverts("attester_set: too few signatures"):
        m.honourLateClaim(*system.claim_args(tree, 1, receiver, attestations=too_few).values())
    with boa.env.prank(system.owner):
        m.sweep()
    with boa.env.prank(system.treasury):
        system.pha.approve(m.address, MAX_UINT)
    with boa.env.prank(system.owner):
        m.honourLateClaim(*system.claim_args(tree, 1, receiver).values())
    # leaf 2 needs one wei more free than was committed (and swept): refused
    with boa.env.prank(system.owner), boa.reverts("Migrator: exceeds committed totals"):
        m.honourLateClaim(*system.claim_args(tree, 2, addr("r2")).values())
    assert m.claimedFree() + m.sweptFree() == m.totalFree()
    assert m.claimedStaked() + m.sweptStaked() == m.totalStaked()


def test_honour_late_claim_refuses_without_a_root(system: System, tree: Tree) -> None:
    with boa.env.prank(system.owner), boa.reverts("Migrator: no root"):
        system.migrator.honourLateClaim(*system.claim_args(tree, 0, addr("r")).values())


# ------------------------------------------------------------ governance


def test_set_attester_adds_and_removes(system: System) -> None:
    m = system.migrator
    new = Account.from_key(ATTESTER_KEYS[4]).address
    with boa.env.prank(system.owner):
        m.setAttester(new, True)
        (log,) = events(m, "AttesterSet")
        assert log.attester == new and log.allowed is True
        assert m.isAttester(new) and m.attesterCount() == 4 and new in m.attesters()
        m.setAttester(system.attesters[0], False)
    assert not m.isAttester(system.attesters[0])
    assert sorted(m.attesters()) == sorted([*system.attesters[1:], new])


def test_set_attester_refusals(system: System) -> None:
    m = system.migrator
    with boa.env.prank(system.owner):
        with boa.reverts("attester_set: attester unchanged"):
            m.setAttester(system.attesters[0], True)
        with boa.reverts("attester_set: attester unchanged"):
            m.setAttester(addr("never"), False)
        with boa.reverts("attester_set: zero attester"):
            m.setAttester("0x" + "00" * 20, True)
        m.setAttester(system.attesters[0], False)  # 2 left, threshold 2
        with boa.reverts("attester_set: below threshold"):
            m.setAttester(system.attesters[1], False)


def test_removed_attester_no_longer_counts(live) -> None:
    system, tree = live
    receiver = addr("r")
    signed = system.attest(tree.leaves[0], receiver, [0, 1])
    with boa.env.prank(system.owner):
        system.migrator.setAttester(system.attesters[0], False)
    with boa.reverts("attester_set: unknown attester"):
        system.claim(tree, 0, receiver, attestations=signed)


def test_set_threshold_bounds(system: System) -> None:
    m = system.migrator
    with boa.env.prank(system.owner):
        m.setThreshold(3)
        (log,) = events(m, "ThresholdSet")
        assert log.threshold == 3 and m.threshold() == 3
        with boa.reverts("attester_set: zero threshold"):
            m.setThreshold(0)
        with boa.reverts("attester_set: threshold above attesters"):
            m.setThreshold(4)


def test_guardian_pauses_but_only_the_owner_unpauses(system: System) -> None:
    m = system.migrator
    with boa.env.prank(system.guardian):
        m.pause()
    assert m.paused()
    with boa.env.prank(system.guardian), boa.reverts("ownable: caller is not the owner"):
        m.unpause()
    with boa.env.prank(addr("anyone")), boa.reverts("Migrator: not guardian"):
        m.pause()
    with boa.env.prank(system.owner):
        m.unpause()
        assert not m.paused()
        m.pause()
    assert m.paused()


def test_set_guardian_and_treasury(system: System) -> None:
    m = system.migrator
    guardian, treasury = addr("g2"), addr("t2")
    with boa.env.prank(system.owner):
        m.setGuardian(guardian)
        m.setTreasury(treasury)
        with boa.reverts("Migrator: zero treasury"):
            m.setTreasury("0x" + "00" * 20)
    assert m.guardian() == guardian and m.treasury() == treasury
    with boa.env.prank(system.guardian), boa.reverts("Migrator: not guardian"):
        m.pause()
    with boa.env.prank(guardian):
        m.pause()


def test_transfer_ownership_moves_every_power(system: System) -> None:
    m = system.migrator
    timelock = addr("timelock")
    with boa.env.prank(system.owner):
        m.transfer_ownership(timelock)
    assert m.owner() == timelock
    with boa.env.prank(system.owner), boa.reverts("ownable: caller is not the owner"):
        m.setThreshold(1)
    with boa.env.prank(timelock):
        m.setThreshold(1)


PRIVILEGED = {
    "setRoot": lambda s, t: (t.root, 1, 1, 1, boa.env.evm.patch.timestamp + 100),
    "setAttester": lambda s, t: (addr("x"), True),
    "setThreshold": lambda s, t: (1,),
    "setGuardian": lambda s, t: (addr("x"),),
    "setTreasury": lambda s, t: (addr("x"),),
    "unpause": lambda s, t: (),
    "sweep": lambda s, t: (),
    "transfer_ownership": lambda s, t: (addr("x"),),
    "honourLateClaim": lambda s, t: tuple(s.claim_args(t, 0, addr("r")).values()),
}


@pytest.mark.parametrize("name", sorted(PRIVILEGED))
@pytest.mark.parametrize("who", ["guardian", "treasury", "attester", "stranger"])
def test_every_privileged_function_refuses_other_callers(live, name: str, who: str) -> None:
    system, tree = live
    close_period(system)  # so sweep and late claims would otherwise pass their time checks
    caller = {
        "guardian": system.guardian,
        "treasury": system.treasury,
        "attester": system.attesters[0],
        "stranger": addr("stranger"),
    }[who]
    args = PRIVILEGED[name](system, tree)
    with boa.env.prank(caller), boa.reverts("ownable: caller is not the owner"):
        getattr(system.migrator, name)(*args)


def test_runs_on_the_real_pha_and_vault_unless_told_otherwise(system: System) -> None:
    import os

    from migrator_kit import REAL_TOKENS

    if os.environ.get("VEIL_MIGRATOR_DOUBLES") == "1":
        pytest.skip("doubles forced by VEIL_MIGRATOR_DOUBLES=1")
    assert REAL_TOKENS
    assert "Double" not in type(system.pha).__name__ + str(system.pha.filename)
    assert "Double" not in str(system.vault.filename)


# ------------------------------------------------------------ the multiproof port


def test_claim_many_on_a_one_leaf_tree(system: System) -> None:
    tree = Tree(make_leaves(1))
    system.set_tree(tree)
    claims, proof, flags = system.batch_args(tree, [0], {0: addr("only")})
    assert proof == [] and flags == 0
    system.migrator.claimMany(claims, proof, flags)
    assert system.migrator.isClaimed(0)


def test_claim_many_refuses_malformed_multiproofs(live) -> None:
    system, tree = live
    m = system.migrator
    claims, proof, flags = system.batch_args(
        tree, [0, 4, 7], {0: "0x" + "11" * 20, 4: addr("b"), 7: addr("c")}
    )
    total = len(claims) + len(proof) - 1
    with boa.reverts("Migrator: invalid multiproof"):
        m.claimMany(claims, proof, flags | (1 << total))  # a flag past the last step
    with boa.reverts("Migrator: invalid proof"):
        m.claimMany(claims, [*proof, bytes(32)], flags)  # one step too many
    with boa.reverts("Migrator: multiproof too long"):
        m.claimMany(claims, [bytes(32)] * 256, 0)
    for step in range(total):
        with boa.reverts():
            m.claimMany(claims, proof, flags ^ (1 << step))
    m.claimMany(claims, proof, flags)
    assert m.isClaimed(0) and m.isClaimed(4) and m.isClaimed(7)


@settings(max_examples=25, deadline=None)
@given(
    size=st.integers(1, 24),
    data=st.data(),
)
def test_multiproof_port_agrees_with_the_tree_library(deployed_system: System, size, data) -> None:
    """For any subset of any tree, the contract computes the root from OpenZeppelin's
    multiproof, and any flipped flag or altered proof element changes or refuses it."""
    tree = Tree(make_leaves(size, seed=size))
    chosen = data.draw(st.sets(st.integers(0, size - 1), min_size=1, max_size=min(size, 16)))
    ordered, proof, flags = tree.multiproof(sorted(chosen))
    packed = pack_proof_flags(flags)
    leaves = [leaf_hash(tree.leaves[v].value) for v in ordered]
    root_of = deployed_system.migrator.internal._multiproof_root
    assert root_of(leaves, proof, packed) == tree.root
    if flags:
        step = data.draw(st.integers(0, len(flags) - 1))
        with contextlib.suppress(BoaError):  # refusing is as good as a different root
            assert root_of(leaves, proof, packed ^ (1 << step)) != tree.root
    if proof:
        k = data.draw(st.integers(0, len(proof) - 1))
        altered = [*proof[:k], keccak(proof[k]), *proof[k + 1 :]]
        assert root_of(leaves, altered, packed) != tree.root
