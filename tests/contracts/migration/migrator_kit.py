"""Migrator test kit: real OZ trees, real EIP-712 attestations, a deployed system.

PHA and the vault are the real contracts when contracts/token/PHA.vy and
contracts/staking/Vault.vy exist; otherwise the TestOnly*Double.vy contracts here stand
in (same interfaces). `REAL_TOKENS` says which is in use.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import boa
from compiled import compiled
from eth_account import Account
from eth_utils import keccak

from veil.chain.compile import CONTRACTS_DIR
from veil.merkle import build_tree
from veil.migration.attestation import order_attestations, sign_binding
from veil.migration.claim import pack_proof_flags

HERE = Path(__file__).resolve().parent
MIGRATOR = CONTRACTS_DIR / "migration" / "Migrator.vy"
REAL_PHA = CONTRACTS_DIR / "token" / "PHA.vy"
REAL_VAULT = CONTRACTS_DIR / "staking" / "Vault.vy"
PHA_DOUBLE = HERE / "TestOnlyPHADouble.vy"
VAULT_DOUBLE = HERE / "TestOnlyVaultDouble.vy"

WEI = 10**18
# What claims carry unless a test says otherwise: the contract cannot check an sr25519
# signature, only that it is the one the attesters bound.
SIGNATURE = b"\x11" * 64
SCHEME = 1  # sr25519
ATTESTER_KEYS = [keccak(text=f"veil migrator attester {i}") for i in range(6)]


# The real PHA and vault are used as soon as their sources exist (a broken one then fails
# these tests loudly); VEIL_MIGRATOR_DOUBLES=1 forces the doubles, e.g. to tell a Migrator
# bug from a token or vault bug.
REAL_TOKENS = os.environ.get("VEIL_MIGRATOR_DOUBLES") != "1" and (
    REAL_PHA.is_file() and REAL_VAULT.is_file()
)


def sig_hash(signature: bytes, scheme: int) -> bytes:
    """The Binding's signatureHash: keccak256(scheme byte ++ bare signature)."""
    return keccak(bytes([scheme]) + signature)


# ------------------------------------------------------------ Merkle tree (OZ standard-v1)


@dataclass(frozen=True)
class Leaf:
    index: int
    account: bytes
    free: int
    staked: int

    @property
    def value(self) -> tuple[int, bytes, int, int]:
        return (self.index, self.account, self.free, self.staked)


class Tree:
    """The project's StandardMerkleTree (veil.merkle) seen through `Leaf`s."""

    def __init__(self, leaves: Sequence[Leaf]) -> None:
        self.leaves = list(leaves)
        self._tree = build_tree(leaf.value for leaf in self.leaves)
        self._position = {leaf.value: i for i, leaf in enumerate(self.leaves)}

    @property
    def root(self) -> bytes:
        return self._tree.root

    @property
    def total_free(self) -> int:
        return sum(leaf.free for leaf in self.leaves)

    @property
    def total_staked(self) -> int:
        return sum(leaf.staked for leaf in self.leaves)

    def proof(self, value_index: int) -> list[bytes]:
        return self._tree.proof(value_index)

    def tree_position(self, value_index: int) -> int:
        return self._tree.tree_indices[value_index]

    def multiproof(self, value_indices: Sequence[int]) -> tuple[list[int], list[bytes], list[bool]]:
        """(value indices in the order the contract expects, proof, proof flags)."""
        multi = self._tree.multiproof(value_indices)
        return [self._position[v] for v in multi.leaves], multi.proof, multi.proof_flags


def make_leaves(count: int, *, seed: int = 0, staked_every: int = 2) -> list[Leaf]:
    """Deterministic leaves with distinct accounts; every `staked_every`-th has stake."""
    leaves = []
    for i in range(count):
        account = keccak(text=f"account {seed} {i}")
        free = (i + 1) * WEI + seed
        staked = (i % 7 + 1) * 3 * WEI if staked_every and i % staked_every == 0 else 0
        leaves.append(Leaf(i, account, free, staked))
    return leaves


# ------------------------------------------------------------ deployed system


@dataclass
class System:
    pha: object
    vault: object
    migrator: object
    owner: str
    guardian: str
    treasury: str
    attesters: list[str]
    keys: list[bytes]

    @property
    def chain_id(self) -> int:
        return int(self.migrator.eip712Domain()[3])

    def attest(
        self,
        leaf: Leaf,
        receiver: str,
        signers: Sequence[int] | None = None,
        *,
        signature: bytes = SIGNATURE,
        scheme: int = SCHEME,
    ) -> list:
        """Sorted compact (r, vs) attestations by the given attester key indices, binding the
        leaf's account to `receiver` with this holder signature."""
        chosen = range(self.migrator.threshold()) if signers is None else signers
        bound = sig_hash(signature, scheme)
        signed = [
            sign_binding(
                self.keys[k], leaf.account, receiver, bound, self.chain_id, self.migrator.address
            )
            for k in chosen
        ]
        return [a.as_compact() for a in order_attestations(signed)]

    def raw_attestations(
        self, leaf: Leaf, receiver: str, keys: Sequence[bytes], *, signature: bytes = SIGNATURE
    ) -> list:
        """Unsorted, unchecked attestations by arbitrary keys, for negative tests."""
        bound = sig_hash(signature, SCHEME)
        return [
            sign_binding(
                k, leaf.account, receiver, bound, self.chain_id, self.migrator.address
            ).as_compact()
            for k in keys
        ]

    def claim_args(self, tree: Tree, value_index: int, receiver: str, **overrides) -> dict:
        leaf = tree.leaves[value_index]
        args = {
            "index": leaf.index,
            "account": leaf.account,
            "free": leaf.free,
            "staked": leaf.staked,
            "receiver": receiver,
            "proof": tree.proof(value_index),
            "substrateSignature": SIGNATURE,
            "scheme": SCHEME,
            "attestations": None,
        }
        args.update(overrides)
        if args["attestations"] is None:  # bind what the claim carries
            args["attestations"] = self.attest(
                leaf, receiver, signature=args["substrateSignature"], scheme=args["scheme"]
            )
        return args

    def claim(self, tree: Tree, value_index: int, receiver: str, **overrides):
        args = self.claim_args(tree, value_index, receiver, **overrides)
        return self.migrator.claim(*args.values())

    def batch_args(self, tree: Tree, value_indices: Sequence[int], receivers: dict[int, str]):
        ordered, proof, flags = tree.multiproof(value_indices)
        claims = []
        for v in ordered:
            leaf = tree.leaves[v]
            receiver = receivers[v]
            claims.append(
                (
                    leaf.index,
                    leaf.account,
                    leaf.free,
                    leaf.staked,
                    receiver,
                    b"\x22" * 64,
                    SCHEME,
                    self.attest(leaf, receiver, signature=b"\x22" * 64),
                )
            )
        return claims, proof, pack_proof_flags(flags)

    def set_tree(self, tree: Tree, *, window: int = 30 * 86400, free=None, staked=None) -> int:
        deadline = boa.env.evm.patch.timestamp + window
        with boa.env.prank(self.owner):
            self.migrator.setRoot(
                tree.root,
                tree.total_free if free is None else free,
                tree.total_staked if staked is None else staked,
                len(tree.leaves),
                deadline,
            )
        return deadline

    def staked_value(self, holder: str) -> int:
        return int(self.vault.convertToAssets(self.vault.balanceOf(holder)))


@functools.cache
def deployer(path: Path):
    """Compile once per process; deployments after that take milliseconds."""
    return compiled(path)


def _deploy_tokens(owner: str, treasury: str, migrator: str):
    """PHA names `migrator` as its minter at construction, as the deploy script does."""
    if REAL_TOKENS:
        with boa.env.prank(owner):
            pha = deployer(REAL_PHA).deploy(migrator)
            vault = deployer(REAL_VAULT).deploy(pha.address, owner, treasury)
        return pha, vault
    with boa.env.prank(owner):
        pha = deployer(PHA_DOUBLE).deploy()
        vault = deployer(VAULT_DOUBLE).deploy(pha.address, owner, treasury)
        pha.setMinter(migrator, True)
    return pha, vault


def deploy_system(attester_count: int = 3, threshold: int = 2) -> System:
    owner = boa.env.generate_address("owner")
    guardian = boa.env.generate_address("guardian")
    treasury = boa.env.generate_address("treasury")
    migrator_address = boa.env.generate_address("migrator")
    pha, vault = _deploy_tokens(owner, treasury, migrator_address)
    with boa.env.prank(owner):
        migrator = deployer(MIGRATOR).deploy(
            pha.address, vault.address, owner, guardian, treasury, override_address=migrator_address
        )
        keys = ATTESTER_KEYS[:attester_count]
        attesters = [Account.from_key(k).address for k in keys]
        for a in attesters:
            migrator.setAttester(a, True)
        if threshold:
            migrator.setThreshold(threshold)
    return System(pha, vault, migrator, owner, guardian, treasury, attesters, list(ATTESTER_KEYS))


# ------------------------------------------------------------ gas as a transaction would pay it


def tx_gas(function, *args, sender: str | None = None) -> int:
    """Gas of calling `function(*args)` as a transaction: intrinsic + execution - refund.

    titanoboa reports execution gas only; add the 21,000 base and calldata (4 per zero
    byte, 16 per other byte), apply the refund cap of EIP-3529 and the calldata floor of
    EIP-7623, as the devnet would. Storage and accounts start cold, as in a new transaction.
    Committing the state and resetting the warm/cold journal drop anchor checkpoints, so
    call this only on an environment without open anchors (a fresh `boa.Env()` under
    `boa.swap_env`).
    """
    calldata = function.prepare_calldata(*args)
    # titanoboa runs calls as messages inside one long-lived state: commit it, so SSTORE sees
    # the slot's value before this call as the original (EIP-2200), and make slots and
    # accounts cold again, as at the start of a transaction.
    boa.env.evm.vm.state.lock_changes()
    boa.env.reset_gas_used()
    function(*args, sender=sender)
    computation = function.contract._computation
    zeros = calldata.count(0)
    nonzeros = len(calldata) - zeros
    intrinsic = 21_000 + 4 * zeros + 16 * nonzeros
    used = intrinsic + computation.get_gas_used()
    refund = min(computation.get_gas_refund(), used // 5)
    floor = 21_000 + 10 * (zeros + 4 * nonzeros)
    return max(used - refund, floor)
