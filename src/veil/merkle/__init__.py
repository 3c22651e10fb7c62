"""OpenZeppelin-compatible Merkle trees, in a package of their own.

The migration commits its ledger as such a tree and the rewards commit each epoch's
payouts the same way; both are checked on chain by OpenZeppelin's `MerkleProof`, so
the tree knows nothing of either (it never imports `veil.migration`).
"""

from veil.merkle.keccak import keccak256
from veil.merkle.tree import (
    FORMAT,
    LEAF_ENCODING,
    LeafValue,
    MerkleTree,
    Multiproof,
    build_tree,
    encode_leaf,
    leaf_hash,
    load_tree,
    node_hash,
    value_to_json,
    verify_multiproof,
    verify_proof,
    write_tree,
)

__all__ = [
    "FORMAT",
    "LEAF_ENCODING",
    "LeafValue",
    "MerkleTree",
    "Multiproof",
    "build_tree",
    "encode_leaf",
    "keccak256",
    "leaf_hash",
    "load_tree",
    "node_hash",
    "value_to_json",
    "verify_multiproof",
    "verify_proof",
    "write_tree",
]
