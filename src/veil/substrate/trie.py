"""Substrate's base-16 Patricia-Merkle trie: state roots, read proofs, genesis hashes.

A snapshot is only as trustworthy as its link to the chain. Both links Substrate offers
commit to storage through this trie: a raw chain spec's genesis hash (the header's
`state_root` is the trie root of `genesis.raw`) and a node's `state_getReadProof` (the
trie nodes on the path from a block's state root to each key). Recomputing the trie here
lets anyone check that the balances veil migrates are the chain's own, with no trust in
the node or the operator.

The layout is `sp-trie`'s `LayoutV0`/`LayoutV1` with blake2_256: nibble-keyed nodes, a
node referenced by its hash when its encoding is 32 bytes or more and inlined otherwise,
and (V1 only) values of 33 bytes or more stored by hash. Keys are handled as hex strings
so that a nibble is a character: sorting, common prefixes and grouping by the next nibble
become C-speed string operations, which is what makes a million-key root take seconds.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import IntEnum
from itertools import pairwise

from veil.errors import InputError
from veil.substrate.scale import decode_compact, encode_compact

_blake2b = hashlib.blake2b


def _blake2_256(data: bytes) -> bytes:
    return _blake2b(data, digest_size=32).digest()


EMPTY_TRIE_ROOT = _blake2_256(b"\x00")
"""Root of a trie with no keys (the encoding of the empty node is the single byte 0)."""

CHILD_STORAGE_PREFIX = b":child_storage:default:"
_MAX_INLINE_VALUE = 32  # V1 stores values longer than this by hash
_HASH_LEN = 32

# Node header prefixes (sp-trie `trie_constants`) and how many bits each takes.
_LEAF = (0b01 << 6, 2)
_BRANCH_NO_VALUE = (0b10 << 6, 2)
_BRANCH_WITH_VALUE = (0b11 << 6, 2)
_LEAF_HASHED_VALUE = (0b001 << 5, 3)
_BRANCH_HASHED_VALUE = (0b0001 << 4, 4)


class StateVersion(IntEnum):
    """Trie layout: V0 inlines every value; V1 (runtimes since 2022) hashes long ones."""

    V0 = 0
    V1 = 1


class ProofError(InputError):
    """A read proof that does not lead from the state root to a key."""


def _header(prefix: tuple[int, int], nibbles: int) -> bytes:
    """Node header: a prefix, then the partial key's nibble count, continued in extra bytes.

    The count fills the bits left by the prefix; at their maximum it continues in bytes of
    255 until one below 255 ends it (sp-trie `size_and_prefix_iterator`)."""
    mask, bits = prefix
    first_max = 255 >> bits
    if nibbles < first_max:
        return bytes([mask | nibbles])
    out = bytearray([mask | first_max])
    rest = nibbles - first_max
    while rest >= 255:
        out.append(255)
        rest -= 255
    out.append(rest)
    return bytes(out)


def _partial(nibbles: str) -> bytes:
    """Nibbles packed two to a byte; an odd count puts the first nibble alone, low bits."""
    return bytes.fromhex("0" + nibbles if len(nibbles) % 2 else nibbles)


def _shared_nibbles(first: bytes, second: bytes) -> int:
    """How many leading nibbles two keys share: one XOR of big integers, no Python loop."""
    size = min(len(first), len(second))
    diff = int.from_bytes(first[:size], "big") ^ int.from_bytes(second[:size], "big")
    return 2 * size - (diff.bit_length() + 3) // 4


def _nibble(key: bytes, index: int) -> int:
    byte = key[index >> 1]
    return byte & 0x0F if index & 1 else byte >> 4


def _key_part(key: bytes, start: int, end: int) -> bytes:
    """Nibbles [start, end) of a key, packed as a node's partial key."""
    if not start & 1 and not end & 1:
        return key[start >> 1 : end >> 1]
    if start & 1 and not end & 1:
        return bytes([key[start >> 1] & 0x0F]) + key[(start >> 1) + 1 : end >> 1]
    return _partial(key.hex()[start:end])


class _Branch:
    """A branch still open while the sorted keys below it are being read."""

    __slots__ = ("bitmap", "depth", "key", "parts", "value", "value_by_hash")

    def __init__(self, depth: int, key: bytes, value: bytes = b"", by_hash: bool = False) -> None:
        self.depth = depth
        self.key = key
        self.bitmap = 0
        self.parts: list[bytes] = []
        self.value = value
        self.value_by_hash = by_hash


class _Builder:
    """Builds the trie of sorted keys in one pass, from the nibbles adjacent keys share.

    A leaf hangs from the branch at the longer of the prefixes it shares with its two
    neighbours; a branch closes when the next key shares less with it. That decides the
    whole shape in a single loop over the keys, so a million keys cost a few seconds where
    a recursive split costs a minute."""

    def __init__(
        self,
        keys: list[bytes],
        values: list[bytes],
        version: StateVersion,
        nodes: dict[bytes, bytes] | None,
    ) -> None:
        self.keys = keys
        self.nodes = nodes
        self.encoded: list[bytes] = []
        self.by_hash: list[bool] = []
        lengths: dict[int, bytes] = {}
        hashed = version is StateVersion.V1
        for value in values:
            size = len(value)
            if hashed and size > _MAX_INLINE_VALUE:
                digest = _blake2b(value, digest_size=32).digest()
                if nodes is not None:
                    nodes[digest] = value
                self.encoded.append(digest)
                self.by_hash.append(True)
                continue
            length = lengths.get(size)
            if length is None:
                length = lengths[size] = encode_compact(size)
            self.encoded.append(length + value)
            self.by_hash.append(False)
        self.headers: dict[tuple[tuple[int, int], int], bytes] = {}

    def header(self, prefix: tuple[int, int], nibbles: int) -> bytes:
        cached = self.headers.get((prefix, nibbles))
        if cached is None:
            cached = self.headers[(prefix, nibbles)] = _header(prefix, nibbles)
        return cached

    def reference(self, encoded: bytes) -> bytes:
        """How a parent holds a child: inline when short, else by hash (SCALE bytes)."""
        if len(encoded) < _HASH_LEN:
            return encode_compact(len(encoded)) + encoded
        digest = _blake2b(encoded, digest_size=32).digest()
        if self.nodes is not None:
            self.nodes[digest] = encoded
        return b"\x80" + digest  # encode_compact(32) == 0x80

    def branch(self, branch: _Branch, start: int) -> bytes:
        if branch.value_by_hash:
            prefix = _BRANCH_HASHED_VALUE
        else:
            prefix = _BRANCH_WITH_VALUE if branch.value else _BRANCH_NO_VALUE
        return (
            self.header(prefix, branch.depth - start)
            + _key_part(branch.key, start, branch.depth)
            + branch.bitmap.to_bytes(2, "little")
            + branch.value
            + b"".join(branch.parts)
        )

    def root(self) -> bytes:
        keys, encoded, by_hash = self.keys, self.encoded, self.by_hash
        count = len(keys)
        shared = [_shared_nibbles(a, b) for a, b in pairwise(keys)]
        shared.append(-1)
        stack: list[_Branch] = []
        before = -1
        for i in range(count):
            key = keys[i]
            after = shared[i]
            size = 2 * len(key)
            if after == size:  # a prefix of the next key: the value of a branch
                stack.append(_Branch(after, key, encoded[i], by_hash[i]))
                before = after
                continue
            depth = before if before > after else after
            if depth < 0:  # the only key
                prefix = _LEAF_HASHED_VALUE if by_hash[i] else _LEAF
                return self.header(prefix, size) + key + encoded[i]
            if after > before:
                stack.append(_Branch(after, key))
            prefix = _LEAF_HASHED_VALUE if by_hash[i] else _LEAF
            leaf = self.header(prefix, size - depth - 1) + _key_part(key, depth + 1, size)
            top = stack[-1]
            top.bitmap |= 1 << _nibble(key, depth)
            top.parts.append(self.reference(leaf + encoded[i]))
            while stack[-1].depth > after:
                closed = stack.pop()
                if stack and stack[-1].depth >= after:
                    parent = stack[-1]
                elif after >= 0:
                    parent = _Branch(after, closed.key)
                    stack.append(parent)
                else:
                    return self.branch(closed, 0)
                parent.bitmap |= 1 << _nibble(closed.key, parent.depth)
                parent.parts.append(self.reference(self.branch(closed, parent.depth + 1)))
            before = after
        raise AssertionError("unreachable: the last key closes the root")


def trie_root(
    entries: Mapping[bytes, bytes] | Iterable[tuple[bytes, bytes]],
    version: StateVersion = StateVersion.V0,
    *,
    nodes: dict[bytes, bytes] | None = None,
) -> bytes:
    """The blake2_256 trie root of key/value pairs (keys unique).

    Pass `nodes` to collect every hash-referenced node (and V1 hashed value) by its hash:
    that is the database a read proof is cut from."""
    items = entries.items() if isinstance(entries, Mapping) else entries
    pairs = sorted(items)
    if not pairs:
        return EMPTY_TRIE_ROOT
    keys = [key for key, _ in pairs]
    for before, after in pairwise(keys):
        if before == after:
            raise InputError(f"storage key 0x{before.hex()}: appears twice")
    encoded = _Builder(keys, [value for _, value in pairs], version, nodes).root()
    root = _blake2_256(encoded)
    if nodes is not None:
        nodes[root] = encoded
    return root


@dataclass(frozen=True, slots=True)
class Node:
    """A decoded trie node: partial key (hex nibbles), value and child references."""

    partial: str
    value: bytes | None
    value_hash: bytes | None
    children: tuple[bytes | None, ...]

    @property
    def is_leaf(self) -> bool:
        return not self.children


def decode_node(data: bytes) -> Node:
    """Decode one node's encoding; refuses anything that is not a well-formed node."""
    try:
        return _decode_node(data)
    except (IndexError, ValueError) as exc:
        raise ProofError(f"trie node 0x{data[:40].hex()}…: malformed ({exc})") from None


def _node_kind(first: int) -> tuple[int, int]:
    """Which header prefix a node's first byte carries (longest prefixes are rarest)."""
    top = first >> 6
    if top:
        return (_LEAF, _BRANCH_NO_VALUE, _BRANCH_WITH_VALUE)[top - 1]
    if first >> 5 == 1:
        return _LEAF_HASHED_VALUE
    if first >> 4 == 1:
        return _BRANCH_HASHED_VALUE
    raise ValueError(f"unknown node header 0x{first:02x}")


def _decode_node(data: bytes) -> Node:
    first = data[0]
    if first == 0:
        return Node("", None, None, ())
    kind = _node_kind(first)
    bits = kind[1]
    first_max = 255 >> bits
    nibbles = first & first_max
    pos = 1
    if nibbles == first_max:
        while True:
            extra = data[pos]
            pos += 1
            nibbles += extra
            if extra < 255:
                break
    packed = (nibbles + 1) // 2
    partial = data[pos : pos + packed].hex()
    if len(partial) != 2 * packed:
        raise ValueError("partial key runs past the node")
    partial = partial[1:] if nibbles % 2 else partial
    pos += packed

    def read_value(at: int, hashed: bool) -> tuple[bytes | None, bytes | None, int]:
        if hashed:
            return None, data[at : at + _HASH_LEN], at + _HASH_LEN
        length, at = decode_compact(data, at)
        return data[at : at + length], None, at + length

    if kind in (_LEAF, _LEAF_HASHED_VALUE):
        value, value_hash, pos = read_value(pos, kind is _LEAF_HASHED_VALUE)
        if pos != len(data):
            raise ValueError("trailing bytes after a leaf")
        return Node(partial, value, value_hash, ())
    bitmap = int.from_bytes(data[pos : pos + 2], "little")
    pos += 2
    value = value_hash = None
    if kind is not _BRANCH_NO_VALUE:
        value, value_hash, pos = read_value(pos, kind is _BRANCH_HASHED_VALUE)
    children: list[bytes | None] = []
    for index in range(16):
        if bitmap & (1 << index):
            length, pos = decode_compact(data, pos)
            children.append(data[pos : pos + length])
            pos += length
        else:
            children.append(None)
    if pos != len(data):
        raise ValueError("trailing bytes after a branch")
    return Node(partial, value, value_hash, tuple(children))


def _walk(
    root: bytes, key: bytes, nodes: Mapping[bytes, bytes], seen: set[bytes] | None
) -> bytes | None:
    """The value at `key`, following references through `nodes`; None when absent."""
    remaining = key.hex()
    reference = root
    while True:
        if len(reference) == _HASH_LEN:
            encoded = nodes.get(reference)
            if encoded is None:
                raise ProofError(
                    f"key 0x{key.hex()}: trie node 0x{reference.hex()} is not in the proof"
                )
            if seen is not None:
                seen.add(reference)
        else:
            encoded = reference
        node = decode_node(encoded)
        if not node.partial and node.value is None and node.value_hash is None and node.is_leaf:
            return None  # the empty trie
        if not remaining.startswith(node.partial):
            return None
        remaining = remaining[len(node.partial) :]
        if node.is_leaf or not remaining:
            if remaining:
                return None
            if node.value_hash is not None:
                value = nodes.get(node.value_hash)
                if value is None:
                    raise ProofError(f"key 0x{key.hex()}: hashed value is not in the proof")
                if seen is not None:
                    seen.add(node.value_hash)
                return value
            return node.value
        child = node.children[int(remaining[0], 16)]
        if child is None:
            return None
        reference = child
        remaining = remaining[1:]


def read_proof(root: bytes, nodes: Mapping[bytes, bytes], keys: Iterable[bytes]) -> list[bytes]:
    """The nodes a verifier needs to read `keys` under `root`: a `state_getReadProof` answer."""
    seen: set[bytes] = set()
    for key in keys:
        _walk(root, key, nodes, seen)
    return [nodes[digest] for digest in sorted(seen)]


def verify_read_proof(
    root: bytes, proof: Iterable[bytes], keys: Iterable[bytes]
) -> dict[bytes, bytes | None]:
    """Each key's value as the proof shows it under `root` (None: proven absent).

    Raises ProofError when the proof lacks a node on some key's path: a proof that cannot
    show a key proves nothing about it, and a node that hashes to something else is not
    found by its hash, so a forged value never verifies."""
    database = {_blake2_256(node): node for node in proof}
    if root not in database:
        raise ProofError(f"read proof does not contain the state root 0x{root.hex()}")
    return {key: _walk(root, key, database, None) for key in keys}


def genesis_hash(state_root: bytes) -> bytes:
    """Hash of the genesis header: zero parent, number 0, no extrinsics, empty digest."""
    header = bytes(32) + encode_compact(0) + state_root + EMPTY_TRIE_ROOT + encode_compact(0)
    return _blake2_256(header)
