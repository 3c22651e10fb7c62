"""Migrator test kit: real OZ trees, real EIP-712 attestations, a deployed system.

PHA and the vault are the real contracts when contracts/token/PHA.vy and
contracts/staking/Vault.vy exist and compile; until then the TestOnly*Double.vy
contracts here stand in (same interfaces). `REAL_TOKENS` says which is in use.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import boa
from eth_abi import encode
from eth_account import Account
from eth_utils import keccak

from veil.migration.attestation import order_attestations, sign_binding

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[2]
MIGRATOR = REPO / "contracts" / "migration" / "Migrator.vy"
REAL_PHA = REPO / "contracts" / "token" / "PHA.vy"
REAL_VAULT = REPO / "contracts" / "staking" / "Vault.vy"
PHA_DOUBLE = HERE / "TestOnlyPHADouble.vy"
VAULT_DOUBLE = HERE / "TestOnlyVaultDouble.vy"

WEI = 10**18
ATTESTER_KEYS = [keccak(text=f"veil migrator attester {i}") for i in range(6)]


def _compiles(path: Path) -> bool:
    if not path.is_file():
        return False
    try:
        boa.load_partial(str(path))
    except Exception:
        return False
    return True


# Set VEIL_MIGRATOR_DOUBLES=1 to force the doubles (e.g. while a real contract is broken).
REAL_TOKENS = os.environ.get("VEIL_MIGRATOR_DOUBLES") != "1" and (
    _compiles(REAL_PHA) and _compiles(REAL_VAULT)
)


# ------------------------------------------------------------ Merkle tree (OZ standard-v1)


def leaf_hash(index: int, account: bytes, free: int, staked: int) -> bytes:
    """StandardMerkleTree leaf of ["uint256","bytes32","uint256","uint256"]."""
    return keccak(
        keccak(encode(["uint256", "bytes32", "uint256", "uint256"], [index, account, free, staked]))
    )


def _hash_pair(a: bytes, b: bytes) -> bytes:
    return keccak(a + b) if a < b else keccak(b + a)


@dataclass(frozen=True)
class Leaf:
    index: int
    account: bytes
    free: int
    staked: int

    @property
    def hash(self) -> bytes:
        return leaf_hash(self.index, self.account, self.free, self.staked)


class Tree:
    """OpenZeppelin StandardMerkleTree: leaves sorted by hash, array-backed complete tree."""

    def __init__(self, leaves: Sequence[Leaf]) -> None:
        self.leaves = list(leaves)
        order = sorted(range(len(leaves)), key=lambda i: self.leaves[i].hash)
        n = len(leaves)
        self.nodes: list[bytes] = [b""] * (2 * n - 1)
        self.tree_index: dict[int, int] = {}
        for position, value_index in enumerate(order):
            self.nodes[len(self.nodes) - 1 - position] = self.leaves[value_index].hash
            self.tree_index[value_index] = len(self.nodes) - 1 - position
        for i in range(len(self.nodes) - 1 - n, -1, -1):
            self.nodes[i] = _hash_pair(self.nodes[2 * i + 1], self.nodes[2 * i + 2])

    @property
    def root(self) -> bytes:
        return self.nodes[0]

    @property
    def total_free(self) -> int:
        return sum(leaf.free for leaf in self.leaves)

    @property
    def total_staked(self) -> int:
        return sum(leaf.staked for leaf in self.leaves)

    def proof(self, value_index: int) -> list[bytes]:
        i = self.tree_index[value_index]
        proof = []
        while i > 0:
            proof.append(self.nodes[i - 1 if i % 2 == 0 else i + 1])
            i = (i - 1) // 2
        return proof

    def multiproof(self, value_indices: Sequence[int]) -> tuple[list[int], list[bytes], list[bool]]:
        """(value indices in the order the contract expects, proof, proof flags)."""
        by_tree = {self.tree_index[v]: v for v in value_indices}
        indices = sorted(by_tree, reverse=True)
        stack = list(indices)
        proof: list[bytes] = []
        flags: list[bool] = []
        while stack and stack[0] > 0:
            j = stack.pop(0)
            sibling = j - 1 if j % 2 == 0 else j + 1
            parent = (j - 1) // 2
            if stack and sibling == stack[0]:
                flags.append(True)
                stack.pop(0)
            else:
                flags.append(False)
                proof.append(self.nodes[sibling])
            stack.append(parent)
        return [by_tree[i] for i in indices], proof, flags


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

    def attest(self, leaf: Leaf, receiver: str, signers: Sequence[int] | None = None) -> list:
        """Sorted (v, r, s) attestations by the given attester key indices."""
        chosen = range(self.migrator.threshold()) if signers is None else signers
        signed = [
            sign_binding(self.keys[k], leaf.account, receiver, self.chain_id, self.migrator.address)
            for k in chosen
        ]
        return [a.as_tuple() for a in order_attestations(signed)]

    def raw_attestations(self, leaf: Leaf, receiver: str, keys: Sequence[bytes]) -> list:
        """Unsorted, unchecked attestations by arbitrary keys, for negative tests."""
        return [
            sign_binding(k, leaf.account, receiver, self.chain_id, self.migrator.address).as_tuple()
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
            "substrateSignature": b"\x11" * 64,
            "scheme": 1,
            "attestations": self.attest(leaf, receiver),
        }
        args.update(overrides)
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
                    1,
                    self.attest(leaf, receiver),
                )
            )
        return claims, proof, flags

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


def _deploy_tokens(owner: str, treasury: str):
    with boa.env.prank(owner):
        if REAL_TOKENS:
            pha = boa.load(str(REAL_PHA))
            vault = boa.load(str(REAL_VAULT), pha.address, owner, treasury)
        else:
            pha = boa.load(str(PHA_DOUBLE))
            vault = boa.load(str(VAULT_DOUBLE), pha.address, owner, treasury)
    return pha, vault


def deploy_system(attester_count: int = 3, threshold: int = 2) -> System:
    owner = boa.env.generate_address("owner")
    guardian = boa.env.generate_address("guardian")
    treasury = boa.env.generate_address("treasury")
    pha, vault = _deploy_tokens(owner, treasury)
    with boa.env.prank(owner):
        migrator = boa.load(str(MIGRATOR), pha.address, vault.address, owner, guardian, treasury)
        pha.setMinter(migrator.address, True)
        keys = ATTESTER_KEYS[:attester_count]
        attesters = [Account.from_key(k).address for k in keys]
        for a in attesters:
            migrator.setAttester(a, True)
        if threshold:
            migrator.setThreshold(threshold)
    return System(pha, vault, migrator, owner, guardian, treasury, attesters, list(ATTESTER_KEYS))
