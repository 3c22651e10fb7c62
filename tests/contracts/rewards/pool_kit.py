"""The RewardPool test world: real PHA (18 decimals), the real vPHA vault (24), attester
keys, and an OpenZeppelin standard tree over (provider, cumulative) leaves.

The tree is built here with `veil.merkle`'s node hashing, laid out as
`@openzeppelin/merkle-tree` lays it out, so the proofs are the ones OpenZeppelin's
`StandardMerkleTree.of(values, ["address", "uint256"])` would give.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import boa
from eth_account import Account
from eth_utils import keccak

from veil.attestation.typed_data import DigestSigner, Signature
from veil.merkle import keccak256, node_hash
from veil.rewards.pool import EpochRoot, order_signatures, pool_domain

PHA = 10**18
HOUR = 3_600
DAY = 86_400
ZERO = "0x" + "00" * 20
NONE_FINALIZED = 2**256 - 1

ATTESTER_KEYS = [keccak(text=f"reward pool attester {i}") for i in range(4)]
ATTESTERS = [DigestSigner(k) for k in ATTESTER_KEYS]
ACCOUNTS = [Account.from_key(keccak(text=f"reward pool account {i}")) for i in range(12)]
OWNER, TREASURY, GUARDIAN, FUNDER, STAKER, STRANGER = (a.address for a in ACCOUNTS[:6])
PROVIDERS = [a.address for a in ACCOUNTS[6:12]]

INITIAL_BUDGET = 1_000 * PHA
HALF_LIFE = 24
WINDOW = HOUR
FUNDED = 100_000 * PHA


def leaf_hash(provider: str, cumulative: int) -> bytes:
    encoded = bytes(12) + bytes.fromhex(provider[2:]) + cumulative.to_bytes(32, "big")
    return keccak256(keccak256(encoded))


@dataclass(frozen=True)
class RewardTree:
    """A standard-v1 tree: leaf hashes sorted, stored reversed at the end of the array."""

    nodes: list[bytes]
    positions: dict[str, int]  # provider -> node index of its leaf
    values: dict[str, int]

    @property
    def root(self) -> bytes:
        return self.nodes[0]

    @property
    def total(self) -> int:
        return sum(self.values.values())

    def proof(self, provider: str) -> list[bytes]:
        index = self.positions[provider]
        out = []
        while index > 0:
            out.append(self.nodes[index + 1 if index % 2 else index - 1])
            index = (index - 1) // 2
        return out


def build_tree(values: Mapping[str, int]) -> RewardTree:
    hashed = sorted((leaf_hash(p, c), p) for p, c in values.items())
    size = 2 * len(hashed) - 1
    nodes = [b""] * size
    positions = {}
    for i, (h, p) in enumerate(hashed):
        nodes[size - 1 - i] = h
        positions[p] = size - 1 - i
    for i in range(size - 1 - len(hashed), -1, -1):
        nodes[i] = node_hash(nodes[2 * i + 1], nodes[2 * i + 2])
    return RewardTree(nodes, positions, dict(values))


def signatures(
    pool: Any, epoch: int, root: bytes, total: int, report: bytes, signers: Sequence[int]
) -> list[tuple[bytes, bytes]]:
    """Compact signatures of `signers` (indices into ATTESTERS), sorted by address."""
    statement = EpochRoot(epoch, root, total, report)
    domain = pool_domain(boa.env.evm.patch.chain_id, pool.address)
    signed: list[Signature] = [ATTESTERS[i].sign(statement.digest(domain)) for i in signers]
    return [s.compact() for s in order_signatures(statement, domain, signed)]


def report_hash(epoch: int) -> bytes:
    return keccak(text=f"report {epoch}")


def post(pool: Any, epoch: int, tree: RewardTree | None, signers: Sequence[int] = (0, 1)) -> None:
    """Post `tree` (or the empty root, total 0) for `epoch`, signed by `signers`."""
    root = tree.root if tree else bytes(32)
    total = tree.total if tree else 0
    pool.postRoot(
        epoch,
        root,
        total,
        report_hash(epoch),
        signatures(pool, epoch, root, total, report_hash(epoch), signers),
    )


def end_epoch(pool: Any, epoch: int) -> None:
    """Move the clock past the end of `epoch`."""
    end = pool.genesisTime() + (epoch + 1) * pool.epochLength()
    now = boa.env.evm.patch.timestamp
    if now < end:
        boa.env.time_travel(seconds=end - now)


def pass_window(pool: Any) -> None:
    boa.env.time_travel(seconds=pool.challengeWindow())


@dataclass
class World:
    pha: Any
    vault: Any
    pool: Any
    genesis: int


def make_world(
    pha_deployer: Any,
    vault_deployer: Any,
    pool_deployer: Any,
    *,
    stake: bool = True,
    funded: int = FUNDED,
    threshold: int = 2,
) -> World:
    """PHA, the vault (with a staker's deposit, so vPHA has a price), and a funded pool."""
    with boa.env.prank(OWNER):
        pha = pha_deployer.deploy(ZERO)
        pha.setMinter(OWNER, True)
        for account in (FUNDER, STAKER, *PROVIDERS):
            pha.mint(account, 1_000_000 * PHA)
        vault = vault_deployer.deploy(pha.address, OWNER, TREASURY)
    if stake:
        with boa.env.prank(STAKER):
            pha.approve(vault.address, 2**256 - 1)
            vault.deposit(10_000 * PHA, STAKER)
    genesis = boa.env.evm.patch.timestamp
    pool = pool_deployer.deploy(
        pha.address,
        vault.address,
        STRANGER,
        TREASURY,
        OWNER,
        GUARDIAN,
        genesis,
        HOUR,
        [a.address for a in ATTESTERS[:3]],
        threshold,
        INITIAL_BUDGET,
        HALF_LIFE,
        WINDOW,
    )
    if funded:
        with boa.env.prank(FUNDER):
            pha.approve(pool.address, 2**256 - 1)
            pool.fund(funded)
    return World(pha, vault, pool, genesis)
