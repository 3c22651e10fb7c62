"""An OpenZeppelin `StandardMerkleTree` of (index, account, free, staked) leaves.

Built exactly as `@openzeppelin/merkle-tree` builds it, so that its `load`, `verify` and
`getMultiProof` agree with ours and the Migrator can use OpenZeppelin's `MerkleProof`:

- leaf = keccak256(keccak256(abi.encode(uint256 index, bytes32 account, uint256 free,
  uint256 staked))), amounts in wei;
- leaves sorted by hash, laid out in reverse at the end of an array of 2n-1 nodes, node
  i's children at 2i+1 and 2i+2;
- a parent is keccak256 of its two children, smaller first.

The dump is OpenZeppelin's "standard-v1" JSON plus one extra key, `veil`, holding the
committed totals; OpenZeppelin's loader ignores keys it does not know.
"""

from __future__ import annotations

import itertools
import json
import os
import struct
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from itertools import chain
from operator import add, methodcaller
from pathlib import Path
from typing import Any

from veil.atomic import write_text
from veil.bulkwork import can_fork, collector_paused, forked
from veil.columns import json_document, split_records
from veil.errors import InputError
from veil.merkle.keccak import keccak256, new_double_hasher, new_hasher

LEAF_ENCODING = ("uint256", "bytes32", "uint256", "uint256")
FORMAT = "standard-v1"
_UINT256 = 1 << 256

LeafValue = tuple[int, bytes, int, int]


def encode_leaf(value: LeafValue) -> bytes:
    """abi.encode(uint256, bytes32, uint256, uint256) of one leaf."""
    index, account, free, staked = value
    if len(account) != 32:
        raise InputError(f"leaf {index}: account must be 32 bytes")
    for name, number in (("index", index), ("free", free), ("staked", staked)):
        if not 0 <= number < _UINT256:
            raise InputError(f"leaf {index}: {name} {number} does not fit in uint256")
    return (
        index.to_bytes(32, "big") + account + free.to_bytes(32, "big") + staked.to_bytes(32, "big")
    )


def leaf_hash(value: LeafValue, hasher: Callable[[bytes], bytes] = keccak256) -> bytes:
    return hasher(hasher(encode_leaf(value)))


def node_hash(a: bytes, b: bytes, hasher: Callable[[bytes], bytes] = keccak256) -> bytes:
    return hasher(a + b if a <= b else b + a)


@dataclass(frozen=True)
class Multiproof:
    """OpenZeppelin multiproof: leaves in the order `processMultiProof` consumes them."""

    leaves: list[LeafValue]
    proof: list[bytes]
    proof_flags: list[bool]

    def to_json(self) -> dict[str, Any]:
        return {
            "leaves": [value_to_json(v) for v in self.leaves],
            "proof": ["0x" + p.hex() for p in self.proof],
            "proofFlags": self.proof_flags,
        }


def value_to_json(value: LeafValue) -> list[str]:
    index, account, free, staked = value
    return [str(index), "0x" + account.hex(), str(free), str(staked)]


@dataclass
class MerkleTree:
    """Node array (root at 0) and each value with the position of its leaf in that array."""

    tree: list[bytes]
    values: list[LeafValue]
    tree_indices: list[int]
    metadata: dict[str, Any] = field(default_factory=dict)
    _by_account: dict[bytes, int] | None = field(default=None, repr=False)

    @property
    def root(self) -> bytes:
        return self.tree[0]

    def value_index(self, account: bytes) -> int:
        """Position in `values` of `account`'s leaf; refuses an account not in the tree."""
        if self._by_account is None:
            self._by_account = {value[1]: i for i, value in enumerate(self.values)}
        try:
            return self._by_account[account]
        except KeyError:
            raise InputError(f"account 0x{account.hex()}: not in this tree") from None

    def proof(self, value_index: int) -> list[bytes]:
        """Sibling hashes from the leaf up, as OpenZeppelin's `getProof` gives them."""
        if not 0 <= value_index < len(self.values):
            raise InputError(f"leaf {value_index}: out of range (tree has {len(self.values)})")
        node = self.tree_indices[value_index]
        if self.tree[node] != leaf_hash(self.values[value_index]):
            raise InputError(f"leaf {value_index}: tree node does not hold this value's hash")
        path: list[bytes] = []
        while node > 0:
            path.append(self.tree[node - 1 if node % 2 == 0 else node + 1])
            node = (node - 1) // 2
        if not verify_proof(self.root, self.values[value_index], path):
            raise InputError(f"leaf {value_index}: proof does not reach the root (corrupt tree)")
        return path

    def multiproof(self, value_indices: Sequence[int]) -> Multiproof:
        """OpenZeppelin `getMultiProof` semantics, for claiming several leaves at once."""
        for i in value_indices:
            if not 0 <= i < len(self.values):
                raise InputError(f"leaf {i}: out of range (tree has {len(self.values)})")
        indices = sorted((self.tree_indices[i] for i in value_indices), reverse=True)
        if any(a == b for a, b in itertools.pairwise(indices)):
            raise InputError("multiproof: the same leaf was asked for twice")
        stack = list(indices)
        proof: list[bytes] = []
        flags: list[bool] = []
        head = 0
        while head < len(stack) and stack[head] > 0:
            j = stack[head]
            head += 1
            sibling = j - 1 if j % 2 == 0 else j + 1
            parent = (j - 1) // 2
            if head < len(stack) and stack[head] == sibling:
                flags.append(True)
                head += 1
            else:
                flags.append(False)
                proof.append(self.tree[sibling])
            stack.append(parent)
        if not indices:
            proof.append(self.tree[0])
        by_node = {self.tree_indices[i]: i for i in value_indices}
        result = Multiproof([self.values[by_node[n]] for n in indices], proof, flags)
        if not verify_multiproof(self.root, result):
            raise InputError("multiproof: does not reach the root (corrupt tree)")
        return result

    def totals(self) -> dict[str, Any]:
        return {
            "free_wei": str(sum(v[2] for v in self.values)),
            "staked_wei": str(sum(v[3] for v in self.values)),
            "leaf_count": len(self.values),
        }

    @collector_paused
    def dump(self) -> dict[str, Any]:
        """OpenZeppelin standard-v1 JSON (plus the `veil` metadata key)."""
        return {
            "format": FORMAT,
            "leafEncoding": list(LEAF_ENCODING),
            "tree": ["0x" + node.hex() for node in self.tree],
            "values": [
                {"value": value_to_json(value), "treeIndex": tree_index}
                for value, tree_index in zip(self.values, self.tree_indices, strict=True)
            ],
            "veil": self._veil(),
        }

    def _veil(self) -> dict[str, Any]:
        return {"root": "0x" + self.root.hex(), "totals": self.totals(), **self.metadata}

    @collector_paused
    def dump_text(self) -> str:
        """`dump()` as JSON text, rendered fast (a tree has two million nodes).

        The values are joined into one text as they are rendered: a million separate
        strings would outlive the join and add a few hundred MiB to the peak.
        """
        nodes = [f'"0x{node.hex()}"' for node in self.tree]
        head = {"format": FORMAT, "leafEncoding": list(LEAF_ENCODING)}
        tail = {"veil": self._veil()}
        return json_document(head, tail, {"tree": nodes, "values": [self._values_text()]})

    def _values_text(self) -> str:
        entry = '{"value":["%d","0x%s","%d","%d"],"treeIndex":%d}'
        return ",".join(
            [
                entry % (v[0], v[1].hex(), v[2], v[3], tree_index)
                for v, tree_index in zip(self.values, self.tree_indices, strict=True)
            ]
        )


_CHUNK = 1 << 16  # leaves encoded at a time: bounds the memory of the encodings
_TO_UINT256 = methodcaller("to_bytes", 32, "big")
_KEYED = struct.Struct(">32sI")  # a leaf hash and the position of its value


def _encodings(values: Sequence[LeafValue]) -> list[bytes] | None:
    """`encode_leaf` of every value, column by column; None if any needs its error."""
    try:
        index, account, free, staked = zip(*values, strict=True)
        if set(map(len, account)) != {32}:
            return None
        for column in (index, free, staked):
            if min(column) < 0 or max(column) >= _UINT256:
                return None
        blob = b"".join(
            chain.from_iterable(
                zip(map(_TO_UINT256, index), account, map(_TO_UINT256, free),
                    map(_TO_UINT256, staked), strict=True)
            )
        )  # fmt: skip
    except (TypeError, ValueError, AttributeError):
        return None
    if len(blob) != 128 * len(values):
        return None
    return split_records(blob, 128, 0, 128)


def _leaf_hashes(values: Sequence[LeafValue]) -> list[bytes]:
    hasher = new_double_hasher()
    hashes: list[bytes] = []
    for start in range(0, len(values), _CHUNK):
        chunk = values[start : start + _CHUNK]
        encodings = _encodings(chunk)
        if encodings is None:
            encodings = [encode_leaf(v) for v in chunk]  # raises naming the bad leaf
        hashes += map(hasher, encodings)
    return hashes


def _sorted_leaves(values: Sequence[LeafValue], start: int) -> list[bytes]:
    """(leaf hash, value position) records of `values[start:]`... sorted by hash."""
    hashes = _leaf_hashes(values)
    positions = map(methodcaller("to_bytes", 4, "big"), range(start, start + len(values)))
    keyed = list(map(add, hashes, positions))
    keyed.sort()
    return keyed


def _internal_ranges(count: int, right: bool) -> list[range]:
    """Internal node indices under node 2 (right) or node 1 (left), deepest level first.

    In the heap layout, level d holds nodes 2^d - 1 .. 2^(d+1) - 2 and node 1's
    descendants are the left half of every level, node 2's the right half; internal
    nodes are those below `count - 1`. Each half can thus be hashed on its own.
    """
    last_internal = count - 2
    ranges = []
    depth = 1
    while (1 << depth) - 1 <= last_internal:
        first = (1 << depth) - 1
        half = 1 << (depth - 1)
        start, stop = (first + half, first + 2 * half) if right else (first, first + half)
        stop = min(stop, last_internal + 1)
        if start < stop:
            ranges.append(range(start, stop))
        depth += 1
    return ranges[::-1]


def _hash_internal(tree: list[bytes], ranges: list[range]) -> None:
    """Hash the nodes of each range, one level of the tree each (children come first)."""
    hasher = new_hasher()
    for span in ranges:
        a = tree[2 * span.start + 1 : 2 * span.stop : 2]
        b = tree[2 * span.start + 2 : 2 * span.stop + 1 : 2]
        tree[span.start : span.stop] = map(hasher, map(add, map(min, a, b), map(max, a, b)))


@collector_paused
def build_tree(
    values: Iterable[LeafValue],
    metadata: dict[str, Any] | None = None,
    *,
    workers: int | None = None,
) -> MerkleTree:
    """The tree OpenZeppelin's `StandardMerkleTree.of(values, LEAF_ENCODING)` would build.

    With `workers=2` (the default for large trees on a machine with two or more cores and
    `fork`), a forked child hashes half of the leaves and then the right half of the
    internal nodes while this process does the rest; the result is identical.
    """
    values = list(values)
    count = len(values)
    if not count:
        raise InputError("tree: a Merkle tree needs at least one leaf")
    parallel = can_fork(count) if workers is None else workers >= 2 and count >= 4
    if count >= 2**32:
        raise InputError(f"tree: {count} leaves, at most {2**32 - 1}")
    half = count // 2
    if parallel:
        # Each process hashes and sorts half of the leaves; one merge joins the halves.
        wait = forked(lambda: b"".join(_sorted_leaves(values[half:], half)))
        keyed = _sorted_leaves(values[:half], 0)
        rest = wait()
        if rest is None:
            keyed += _sorted_leaves(values[half:], half)
        else:
            keyed += split_records(rest, _KEYED.size, 0, _KEYED.size)
            del rest
        keyed.sort()  # two sorted runs: a single linear merge
    else:
        keyed = _sorted_leaves(values, 0)
    blob = b"".join(keyed)
    del keyed
    size = 2 * count - 1
    last = size - 1
    # Leaves in hash order fill the end of the array backwards (OpenZeppelin's layout).
    leaves = split_records(blob, _KEYED.size, 0, 32)
    leaves.reverse()
    tree: list[bytes] = [b""] * (count - 1)
    tree += leaves
    del leaves
    tree_indices = [0] * count
    for position, (_, value_index) in enumerate(_KEYED.iter_unpack(blob)):
        tree_indices[value_index] = last - position
    del blob
    left = _internal_ranges(count, right=False)
    right = _internal_ranges(count, right=True)
    if parallel:

        def right_half() -> bytes:
            _hash_internal(tree, right)
            return b"".join(chain.from_iterable(tree[r.start : r.stop] for r in right))

        wait = forked(right_half)
        _hash_internal(tree, left)
        nodes = wait()
        if nodes is None:
            _hash_internal(tree, right)
        else:
            hashed = split_records(nodes, 32, 0, 32)
            del nodes
            offset = 0
            for span in right:
                tree[span.start : span.stop] = hashed[offset : offset + len(span)]
                offset += len(span)
    else:
        _hash_internal(tree, left)
        _hash_internal(tree, right)
    if count >= 2:
        a, b = tree[1], tree[2]
        tree[0] = keccak256(a + b if a <= b else b + a)
    return MerkleTree(tree, values, tree_indices, metadata or {})


def write_tree(tree: MerkleTree, out: str | os.PathLike[str]) -> Path:
    return write_text(out, tree.dump_text())


def verify_proof(root: bytes, value: LeafValue, proof: Sequence[bytes]) -> bool:
    """OpenZeppelin `StandardMerkleTree.verify`: does `proof` lead from `value` to `root`?"""
    node = leaf_hash(value)
    for sibling in proof:
        node = node_hash(node, sibling)
    return node == root


def verify_multiproof(root: bytes, multiproof: Multiproof) -> bool:
    """OpenZeppelin `processMultiProof` (and `MerkleProof.multiProofVerify` on chain)."""
    leaves = [leaf_hash(v) for v in multiproof.leaves]
    proof = list(multiproof.proof)
    if len(proof) < multiproof.proof_flags.count(False):
        return False
    if len(leaves) + len(proof) != len(multiproof.proof_flags) + 1:
        return False
    stack = leaves
    head = 0
    cursor = 0
    for flag in multiproof.proof_flags:
        a = stack[head]
        head += 1
        if flag:
            b = stack[head]
            head += 1
        else:
            b = proof[cursor]
            cursor += 1
        stack.append(node_hash(a, b))
    remaining = stack[head:] + proof[cursor:]
    return len(remaining) == 1 and remaining[0] == root


def _value(raw: Any, where: str) -> LeafValue:
    if not isinstance(raw, list) or len(raw) != 4:
        raise InputError(f"{where}: value must be [index, account, free, staked]")
    try:
        account = bytes.fromhex(raw[1][2:]) if str(raw[1])[:2] == "0x" else b""
        value = (int(raw[0]), account, int(raw[2]), int(raw[3]))
    except (TypeError, ValueError):
        raise InputError(f"{where}: value {str(raw)[:100]} is not numbers and 0x-hex") from None
    if len(account) != 32:
        raise InputError(f"{where}: account {raw[1]!r:.70} is not 32 bytes")
    return value


@collector_paused
def load_tree(path: str | os.PathLike[str], *, validate: bool = True) -> MerkleTree:
    """Read a standard-v1 dump. `validate` re-hashes every node, as OpenZeppelin's `load`.

    Without it only the nodes a proof touches are checked (each proof is verified against
    the root before it is returned), which is what a quick `proof` lookup needs.
    """
    source = Path(path)
    try:
        document = json.loads(source.read_bytes())
    except OSError as error:
        raise InputError(f"{source}: cannot read ({error.strerror})") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise InputError(f"{source}: not valid JSON ({error})") from None
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        raise InputError(f"{source}: not an OpenZeppelin standard-v1 tree dump")
    if document.get("leafEncoding") != list(LEAF_ENCODING):
        raise InputError(f"{source}: leafEncoding must be {list(LEAF_ENCODING)}")
    nodes, entries = document.get("tree"), document.get("values")
    if not isinstance(nodes, list) or not isinstance(entries, list) or not entries:
        raise InputError(f"{source}: tree and values must be non-empty lists")
    if len(nodes) != 2 * len(entries) - 1:
        raise InputError(f"{source}: {len(nodes)} nodes cannot hold {len(entries)} leaves")
    try:
        tree = [bytes.fromhex(node[2:]) for node in nodes]
    except (TypeError, ValueError):
        raise InputError(f"{source}: tree nodes must be 0x-hex") from None
    for i, node in enumerate(tree):
        if len(node) != 32:
            raise InputError(f"{source}: tree node {i} is not 32 bytes")
    values: list[LeafValue] = []
    tree_indices: list[int] = []
    for number, entry in enumerate(entries):
        where = f"{source}: value {number}"
        if not isinstance(entry, dict) or not isinstance(entry.get("treeIndex"), int):
            raise InputError(f"{where}: expected {{value, treeIndex}}")
        if not len(entries) - 1 <= entry["treeIndex"] < len(tree):
            raise InputError(f"{where}: treeIndex {entry['treeIndex']} is not a leaf position")
        values.append(_value(entry.get("value"), where))
        tree_indices.append(entry["treeIndex"])
    result = MerkleTree(tree, values, tree_indices, dict(document.get("veil") or {}))
    if validate:
        hasher = new_hasher()
        for number, (value, position) in enumerate(zip(values, tree_indices, strict=True)):
            if tree[position] != hasher(hasher(encode_leaf(value))):
                raise InputError(f"{source}: value {number} does not match tree node {position}")
        for i in range(len(tree) - len(values) - 1, -1, -1):
            a, b = tree[2 * i + 1], tree[2 * i + 2]
            if tree[i] != hasher(a + b if a <= b else b + a):
                raise InputError(f"{source}: tree node {i} is not the hash of its children")
    result.metadata.pop("root", None)
    result.metadata.pop("totals", None)
    return result
