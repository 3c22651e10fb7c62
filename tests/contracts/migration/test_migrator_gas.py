"""Gas guards for the Migrator, measured in titanoboa as a transaction would pay it
(21,000 + calldata + execution - capped refund; storage starts cold).

The devnet benchmark gives the numbers that count; these tests keep regressions visible:
a free-only claim costs at most a fixed overhead (one ecrecover, the attester registry,
the root and totals words, the published substrate signature) above a Uniswap
MerkleDistributor-style reference measured in the same harness on the same token, and a
batch of 10 tree-adjacent leaves stays under 55k gas per leaf. Run with `-s` to see
them. Other tree sizes, from tests/contracts/migration:
`../../../.venv/bin/python test_migrator_gas.py 65541`.
"""

from __future__ import annotations

import random

import boa
import pytest
from eth_abi import encode
from eth_utils import keccak
from migrator_kit import HERE, WEI, Leaf, System, Tree, deploy_system, deployer, make_leaves, tx_gas

LEAVES = 1030  # depth 10 or 11
# What a free Migrator claim pays on top of the reference: ecrecover (3,000), one lookup
# for the root, the attester set, the deadline and the paused/claimed flags together (2,100;
# the value found is the threshold plus the Migrator's tag, so nothing else is read), the
# attestation and the substrate signature in calldata and in the event (~6,000), and the
# EIP-712 digest over the signature's hash. Like the reference, it pays from a balance it
# holds (the free total, minted with the root), so it writes no state word of its own.
# Measured ~13.0k at depth 10 (~18.1k while each claim debited a packed totals word and
# minted; ~20.1k while PHA looked the Migrator up in its minter map; ~22.7k before the
# root and the registry shared a lookup).
OVERHEAD_BUDGET = 14_000
BATCH_BUDGET = 55_000


class Bench:
    def __init__(self, leaf_count: int) -> None:
        self.leaf_count = leaf_count
        self.system = deploy_system(attester_count=3, threshold=1)
        leaves = [
            Leaf(v.index, v.account, v.free, 5 * WEI if v.index % 4 == 3 else 0)
            for v in make_leaves(leaf_count, staked_every=0)
        ]
        self.tree = Tree(leaves)
        self.system.set_tree(self.tree)
        self.results: dict[str, int] = {}
        self.used: set[int] = set()
        # The first mint and the first deposit ever pay for zero totals; keep them out.
        self.claim(self.free_leaves()[0])
        self.claim(next(p for p, v in enumerate(leaves) if v.staked and v.index < 256))

    def fresh(self) -> str:
        return boa.env.generate_address()

    def free_leaves(self) -> list[int]:
        return [i for i, v in enumerate(self.tree.leaves) if v.staked == 0 and i not in self.used]

    def claim(self, position: int) -> int:
        self.used.add(position)
        args = self.system.claim_args(self.tree, position, self.fresh())
        return tx_gas(self.system.migrator.claim, *args.values())

    def batch(self, positions: list[int]) -> int:
        self.used.update(positions)
        claims, proof, flags = self.system.batch_args(
            self.tree, positions, {p: self.fresh() for p in positions}
        )
        return tx_gas(self.system.migrator.claimMany, claims, proof, flags) // len(positions)

    def tree_adjacent(self, count: int, *, skip: int, staked: bool = False) -> list[int]:
        """`count` leaves at consecutive tree positions, the shape a batching relayer picks."""
        order = sorted(range(self.leaf_count), key=self.tree.tree_position, reverse=True)
        chosen = [
            p
            for p in order[skip:]
            if p not in self.used and (staked or self.tree.leaves[p].staked == 0)
        ]
        return chosen[:count]


def reference_claims(system: System, leaf_count: int) -> tuple[int, int]:
    """(cold word, warm word) gas of the reference distributor over `leaf_count` leaves."""
    accounts = ["0x" + keccak(text=f"reference {i}")[:20].hex() for i in range(leaf_count)]
    hashes = sorted(
        (keccak(encode(["uint256", "address", "uint256"], [i, accounts[i], WEI])), i)
        for i in range(leaf_count)
    )
    size = 2 * leaf_count - 1
    nodes = [b""] * size
    where = {}
    for position, (leaf, i) in enumerate(hashes):
        nodes[size - 1 - position] = leaf
        where[i] = size - 1 - position
    for k in range(size - 1 - leaf_count, -1, -1):
        a, b = nodes[2 * k + 1], nodes[2 * k + 2]
        nodes[k] = keccak(a + b if a < b else b + a)

    def proof(i: int) -> list[bytes]:
        k, out = where[i], []
        while k > 0:
            out.append(nodes[k - 1 if k % 2 == 0 else k + 1])
            k = (k - 1) // 2
        return out

    reference = deployer(HERE / "TestOnlyReferenceDistributor.vy").deploy(
        system.pha.address, nodes[0]
    )
    with boa.env.prank(system.owner):
        system.pha.setMinter(system.owner, True)
        system.pha.mint(reference.address, 10 * WEI)
        system.pha.setMinter(system.owner, False)
    cold = tx_gas(reference.claim, 300, accounts[300], WEI, proof(300))
    warm = tx_gas(reference.claim, 301, accounts[301], WEI, proof(301))
    return cold, warm


def measure(leaf_count: int = LEAVES) -> dict[str, int]:
    """Every figure of the report, on a private chain: tx_gas commits state and resets
    titanoboa's warm/cold journal, which would break the anchors the titanoboa pytest
    plugin holds open on the shared environment."""
    with boa.swap_env(boa.Env()):
        bench = Bench(leaf_count)
        b = bench.results
        free = [p for p in bench.free_leaves() if bench.tree.leaves[p].index >= 256]
        b["free claim, cold bitmap word"] = bench.claim(free[0])
        word = bench.tree.leaves[free[0]].index >> 8
        same_word = next(p for p in free[1:] if bench.tree.leaves[p].index >> 8 == word)
        b["free claim, warm bitmap word"] = bench.claim(same_word)
        staked = next(
            p
            for p, v in enumerate(bench.tree.leaves)
            if v.staked and v.index >> 8 == word and p not in bench.used
        )
        b["free+staked claim, warm bitmap word"] = bench.claim(staked)
        b["batch of 10 random leaves, per leaf"] = bench.batch(
            random.Random(7).sample(bench.free_leaves(), 10)
        )
        adjacent = bench.tree_adjacent(10, skip=0)
        b["batch of 10 tree-adjacent free leaves, per leaf"] = bench.batch(adjacent)
        b["batch of 10 tree-adjacent mixed leaves, per leaf"] = bench.batch(
            bench.tree_adjacent(10, skip=40, staked=True)
        )
        warm = bench.tree_adjacent(10, skip=80)
        for p in warm:  # claim another leaf in each of their bitmap words first
            w = bench.tree.leaves[p].index >> 8
            other = next(
                q
                for q in bench.free_leaves()
                if q not in warm and bench.tree.leaves[q].index >> 8 == w
            )
            bench.claim(other)
        b["batch of 10 tree-adjacent free leaves, words already used, per leaf"] = bench.batch(warm)
        b["reference claim, cold word"], b["reference claim, warm word"] = reference_claims(
            bench.system, leaf_count
        )
        b["proof depth"] = len(bench.tree.proof(0))
    return b


@pytest.fixture(scope="module")
def results() -> dict[str, int]:
    b = measure()
    print()
    for name, gas in b.items():
        print(f"{gas:>9,}  {name}")
    return b


def test_free_claim_overhead_over_the_reference_is_bounded(results: dict[str, int]) -> None:
    b = results
    overhead = b["free claim, warm bitmap word"] - b["reference claim, warm word"]
    assert 0 < overhead <= OVERHEAD_BUDGET
    cold_overhead = b["free claim, cold bitmap word"] - b["reference claim, cold word"]
    assert 0 < cold_overhead <= OVERHEAD_BUDGET


def test_a_fresh_bitmap_word_costs_one_new_slot(results: dict[str, int]) -> None:
    b = results
    extra = b["free claim, cold bitmap word"] - b["free claim, warm bitmap word"]
    assert extra == pytest.approx(22_100 - 5_000, abs=200)


def test_batch_of_ten_tree_adjacent_leaves_stays_under_budget(results: dict[str, int]) -> None:
    b = results
    assert b["batch of 10 tree-adjacent free leaves, words already used, per leaf"] <= BATCH_BUDGET
    assert b["batch of 10 tree-adjacent free leaves, per leaf"] < b["free claim, warm bitmap word"]
    assert b["batch of 10 random leaves, per leaf"] < b["free claim, cold bitmap word"]


if __name__ == "__main__":
    import json
    import sys

    print(json.dumps(measure(int(sys.argv[1]) if len(sys.argv) > 1 else LEAVES)))
