"""Gas of RewardPool's settlement and claims, beside a Morpho-URD-style distributor.

Both run on one throwaway anvil with the real PHA token: the pool as `deploy_network`
deploys it (owned by the timelock, three attesters, threshold three, funded at genesis),
and `bench/reference/ReferenceURD.sol` (an updater submits a root, anyone accepts it after
a timelock, cumulative claims) holding PHA from the same genesis. The same providers and
cumulative amounts go into both trees (each in its own leaf encoding):

- epoch 0: a 10-leaf tree, the first root either contract ever takes;
- epoch 1: the same 10 providers with more each (a steady post over 10 leaves);
- epoch 2: those 10 plus 29,990 more, a 30,000-leaf tree (the post must cost the same).

Claims are measured as a provider's first claim (its `claimed` slot is new) to an account
holding no PHA and to one that already holds PHA, and as a later claim (both slots warm
in the sense of non-zero); paid as PHA and as vPHA; against the 10-leaf and the 30,000-leaf
roots (proofs of 4 and 15 hashes). Prints one JSON line per figure and a summary line;
the issue's limits: postRoot <= 120,000 with three attesters, a PHA claim <= 80,000.

Run: .venv/bin/python bench/rewards_gas.py
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_utils import keccak

sys.path.insert(0, str(Path(__file__).resolve().parent))
from chainbench import deploy_reference, emit, machine, reference_artifacts, scratch_chain
from veil.attestation.typed_data import DigestSigner
from veil.chain.units import WEI_PER_PHA
from veil.devnet.accounts import devnet_account
from veil.merkle import keccak256, node_hash
from veil.network.deploy import GenesisMinter, NetworkParameters, deploy_network
from veil.rewards.pool import EpochRoot, RewardPoolClient

PHA = WEI_PER_PHA
SMALL, LARGE = 10, 30_000
ATTESTER_KEYS = [keccak(text=f"rewards bench attester {i}") for i in range(3)]
LIMITS = {"postRoot": 120_000, "claim_pha": 80_000}


class StandardTree:
    """An OpenZeppelin StandardMerkleTree over pre-encoded leaves (the layout of
    `@openzeppelin/merkle-tree`: leaf hashes sorted, stored reversed after the nodes)."""

    def __init__(self, encoded: dict[str, bytes]) -> None:
        hashed = sorted((keccak256(keccak256(e)), key) for key, e in encoded.items())
        size = 2 * len(hashed) - 1
        self.nodes = [b""] * size
        self.position = {}
        for i, (h, key) in enumerate(hashed):
            self.nodes[size - 1 - i] = h
            self.position[key] = size - 1 - i
        for i in range(size - 1 - len(hashed), -1, -1):
            self.nodes[i] = node_hash(self.nodes[2 * i + 1], self.nodes[2 * i + 2])

    @property
    def root(self) -> bytes:
        return self.nodes[0]

    def proof(self, key: str) -> list[bytes]:
        index, out = self.position[key], []
        while index > 0:
            out.append(self.nodes[index + 1 if index % 2 else index - 1])
            index = (index - 1) // 2
        return out


def _word(address: str) -> bytes:
    return bytes(12) + bytes.fromhex(address[2:])


def pool_tree(values: dict[str, int]) -> StandardTree:
    return StandardTree({a: _word(a) + v.to_bytes(32, "big") for a, v in values.items()})


def urd_tree(values: dict[str, int], reward: str) -> StandardTree:
    return StandardTree(
        {a: _word(a) + _word(reward) + v.to_bytes(32, "big") for a, v in values.items()}
    )


def gas(receipt: Any) -> int:
    return int(receipt["gasUsed"])


def run() -> list[dict[str, Any]]:
    attesters = [DigestSigner(k) for k in ATTESTER_KEYS]
    # pairs of twins in the same state: one claims from the pool, the other from the URD
    pairs = [
        tuple(Account.from_key(keccak(text=f"rewards bench provider {i} {side}")) for side in "ab")
        for i in range(3)
    ]
    providers = [p for pair in pairs for p in pair]
    small_accounts = [p.address for p in providers] + [
        Account.from_key(keccak(text=f"rewards bench extra {i}")).address
        for i in range(SMALL - len(providers))
    ]
    deployer = devnet_account("deployer")

    def genesis(minter: GenesisMinter) -> None:
        minter.mint(deployer.address, 10_000_000 * PHA, "PHA.mint to the bench")

    with scratch_chain() as chain:
        url = chain.w3.provider.endpoint_uri  # type: ignore[attr-defined]
        params = NetworkParameters(
            reward_reserve_pha=0,
            reward_rate=0,
            attesters=[a.address for a in attesters],
            attester_threshold=3,
            reward_pool_pha=1_000_000,
        )
        deploy_network(chain, deployer, "bench", url, params, genesis_mints=genesis)
        pool = RewardPoolClient.from_chain(chain)
        pha = chain.contract("PHA")
        window = pool.challenge_window()
        for p in providers:
            chain.w3.provider.make_request("anvil_setBalance", [p.address, hex(10**20)])
        # pairs 1 and 2 already hold PHA (as most claimants will); pair 0 holds none
        for p in (*pairs[1], *pairs[2]):
            chain.send(deployer, pha.functions.transfer(p.address, PHA), "PHA.transfer")

        arts = reference_artifacts()["contracts"]
        urd = deploy_reference(chain, deployer, arts["ReferenceURD"], deployer.address, window)
        chain.send(deployer, pha.functions.transfer(urd.address, 1_000_000 * PHA), "fund URD")

        ours: dict[str, int] = {}
        theirs: dict[str, int] = {}
        epoch_length = pool.epoch_length()
        domain = pool.domain()
        sender = devnet_account("bob")

        def settle(epoch: int, values: dict[str, int]) -> tuple[StandardTree, StandardTree]:
            tree = pool_tree(values)
            reference = urd_tree(values, pha.address)
            while pool.current_epoch() <= epoch:
                chain.advance_time(epoch_length)
            statement = EpochRoot(
                epoch, tree.root, sum(values.values()), keccak(epoch.to_bytes(8, "big"))
            )
            signatures = [a.sign(statement.digest(domain)) for a in attesters]
            ours[f"post_{epoch}"] = gas(pool.post_root(sender, statement, signatures))
            submit = urd.functions.submitRoot(reference.root, keccak(text=f"ipfs {epoch}"))
            theirs[f"post_{epoch}"] = gas(chain.send(deployer, submit, "URD.submitRoot"))
            chain.advance_time(window)
            ours[f"finalize_{epoch}"] = gas(pool.finalize(sender, epoch))
            accept = urd.functions.acceptRoot()
            theirs[f"finalize_{epoch}"] = gas(chain.send(sender, accept, "URD.acceptRoot"))
            return tree, reference

        def both(
            name: str, pair: tuple[LocalAccount, ...], values: dict[str, int],
            trees: tuple[StandardTree, StandardTree], as_vpha: bool,
        ) -> None:  # fmt: skip
            (tree, reference), (mine, twin) = trees, pair
            amount = values[mine.address]
            ours[name] = gas(pool.claim(mine, amount, tree.proof(mine.address), as_vpha))
            proof = reference.proof(twin.address)
            call = urd.functions.claim(twin.address, pha.address, values[twin.address], proof)
            theirs[name] = gas(chain.send(twin, call, "URD.claim"))

        values0 = {a: (i + 1) * 5 * PHA for i, a in enumerate(small_accounts)}
        trees0 = settle(0, values0)
        both("claim_pha_first_new_holder", pairs[0], values0, trees0, False)
        both("claim_pha_first", pairs[1], values0, trees0, False)
        # the URD has no vPHA path: its figure is the same PHA claim
        both("claim_vpha_first", pairs[2], values0, trees0, True)

        values1 = {a: v + 10 * PHA for a, v in values0.items()}
        trees1 = settle(1, values1)
        both("claim_pha_later", pairs[1], values1, trees1, False)
        both("claim_vpha_later", pairs[2], values1, trees1, True)

        values2 = {a: v + 10 * PHA for a, v in values1.items()}
        for i in range(LARGE - SMALL):
            values2[Account.from_key(keccak(text=f"rewards bench worker {i}")).address] = 10**12
        trees2 = settle(2, values2)
        both("claim_pha_later_30000_leaves", pairs[1], values2, trees2, False)
        proof_lengths = (len(trees1[0].proof(pairs[1][0].address)),
                         len(trees2[0].proof(pairs[1][0].address)))  # fmt: skip

    rows: list[dict[str, Any]] = []
    labels: dict[str, tuple[str, Callable[[str], str | None]]] = {
        "post_0": ("postRoot_first_10_leaves", lambda _: "postRoot"),
        "post_1": ("postRoot_10_leaves", lambda _: "postRoot"),
        "post_2": ("postRoot_30000_leaves", lambda _: "postRoot"),
        "finalize_0": ("finalize_first", lambda _: None),
        "finalize_1": ("finalize", lambda _: None),
        "finalize_2": ("finalize_30000_leaves", lambda _: None),
    }
    for key, used in ours.items():
        name, limit_of = labels.get(key, (key, lambda k: "claim_pha" if "_pha_" in k else None))
        limit = LIMITS.get(limit_of(key) or "")
        row: dict[str, Any] = {
            "bench": "rewards_gas",
            "figure": name,
            "value": used,
            "unit": "gas",
            "reference": theirs[key],
            "ratio": round(used / theirs[key], 3),
        }
        if limit is not None:
            row.update(limit=limit, met=used <= limit)
        rows.append(row)
    rows.append(
        {
            "bench": "rewards_gas",
            "figure": "postRoot_30000_minus_10_leaves",
            "value": ours["post_2"] - ours["post_1"],
            "unit": "gas",
            "proof_hashes": list(proof_lengths),
        }
    )
    return rows


def main() -> int:
    started = time.monotonic()
    rows = run()
    missed = [r["figure"] for r in rows if r.get("met") is False]
    for row in rows:
        emit(row)
    emit(
        {
            "bench": "rewards_gas",
            "summary": True,
            "attesters": 3,
            "reference": "bench/reference/ReferenceURD.sol (Morpho URD design), same PHA token",
            "limits_missed": missed,
            "seconds": round(time.monotonic() - started, 1),
            "machine": machine(),
        }
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
