"""The epoch's claim tree: OpenZeppelin `StandardMerkleTree` over (provider, cumulative).

`veil.merkle` builds the migration's four-field leaves; a rewards leaf is
`["address", "uint256"]`, so this module lays it out the same way (double keccak of the
ABI encoding, leaves sorted by hash and placed in reverse at the end of a 2n-1 array,
parents hash their children smaller first) and dumps the same "standard-v1" JSON, so
that OpenZeppelin's `StandardMerkleTree.load(...).getProof(...)` and the pool's
`MerkleProof.verify` agree with it. Providers number in the thousands, not millions, so
plain Python is fast enough here.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from veil.attestation.typed_data import checksum
from veil.errors import InputError
from veil.merkle import keccak256, node_hash

LEAF_ENCODING = ["address", "uint256"]
FORMAT = "standard-v1"
ZERO_ROOT = bytes(32)


def leaf_hash(provider: str, cumulative: int) -> bytes:
    if not 0 <= cumulative < 1 << 256:
        raise InputError(f"leaf {provider}: cumulative {cumulative} does not fit in uint256")
    encoded = bytes(12) + bytes.fromhex(provider[2:]) + cumulative.to_bytes(32, "big")
    return keccak256(keccak256(encoded))


@dataclass(frozen=True)
class ClaimTree:
    tree: list[bytes]
    values: list[tuple[str, int]]  # (checksummed provider, cumulative), in provider order
    tree_indices: list[int]

    @property
    def root(self) -> bytes:
        """The empty tree (no provider has earned yet) commits to the zero root."""
        return self.tree[0] if self.tree else ZERO_ROOT

    @property
    def total(self) -> int:
        return sum(value for _, value in self.values)

    def proof(self, provider: str) -> list[bytes]:
        provider = checksum(provider, "provider")
        for i, (who, _) in enumerate(self.values):
            if who == provider:
                node = self.tree_indices[i]
                path = []
                while node > 0:
                    path.append(self.tree[node - 1 if node % 2 == 0 else node + 1])
                    node = (node - 1) // 2
                return path
        raise InputError(f"provider {provider}: not in this epoch's tree (nothing earned)")

    def cumulative(self, provider: str) -> int:
        provider = checksum(provider, "provider")
        return dict(self.values).get(provider, 0)

    def dump(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "leafEncoding": LEAF_ENCODING,
            "tree": ["0x" + node.hex() for node in self.tree],
            "values": [
                {"value": [who, str(amount)], "treeIndex": index}
                for (who, amount), index in zip(self.values, self.tree_indices, strict=True)
            ],
        }


def build_claim_tree(cumulative: Mapping[str, int]) -> ClaimTree:
    """The tree OpenZeppelin's `StandardMerkleTree.of(values, ["address","uint256"])` builds
    from `values` in provider order (the order only affects `values`, never the root)."""
    values = sorted((checksum(p, "provider"), int(v)) for p, v in cumulative.items())
    if len({p for p, _ in values}) != len(values):
        raise InputError("claim tree: a provider appears twice (one leaf per provider)")
    if not values:
        return ClaimTree([], [], [])
    hashes = [leaf_hash(p, v) for p, v in values]
    order = sorted(range(len(values)), key=hashes.__getitem__)
    count = len(values)
    tree: list[bytes] = [b""] * (2 * count - 1)
    tree_indices = [0] * count
    for position, value_index in enumerate(order):
        node = len(tree) - 1 - position
        tree[node] = hashes[value_index]
        tree_indices[value_index] = node
    for node in range(count - 2, -1, -1):
        tree[node] = node_hash(tree[2 * node + 1], tree[2 * node + 2])
    return ClaimTree(tree, values, tree_indices)


def verify_claim(root: bytes, provider: str, cumulative: int, proof: Sequence[bytes]) -> bool:
    node = leaf_hash(checksum(provider, "provider"), cumulative)
    for sibling in proof:
        node = node_hash(node, sibling)
    return node == root


def load_claim_tree(doc: Any) -> ClaimTree:
    """Read a dumped tree back, checking every node (a file is only trusted once rehashed)."""
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise InputError("claim tree: not an OpenZeppelin standard-v1 tree")
    if doc.get("leafEncoding") != LEAF_ENCODING:
        raise InputError(
            f"claim tree: leaf encoding {doc.get('leafEncoding')} is not {LEAF_ENCODING}"
        )
    try:
        values = {str(v["value"][0]): int(v["value"][1]) for v in doc["values"]}
    except (KeyError, TypeError, ValueError, IndexError):
        raise InputError("claim tree: a value is not [address, amount]") from None
    rebuilt = build_claim_tree(values)
    if ["0x" + n.hex() for n in rebuilt.tree] != doc.get("tree"):
        raise InputError("claim tree: its nodes do not match its values (corrupt file)")
    return rebuilt
