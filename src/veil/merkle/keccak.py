"""Keccak-256 (Ethereum's, not SHA3) fast enough for a million-leaf Merkle tree.

A tree of n leaves needs 3n hashes, so the per-call cost is most of a tree's build time.
pycryptodome's `keccak.new(...)` costs ~5 us a call (Python object set-up around its C
core) and driving that core through cffi still ~1.5 us; safe-pysha3, the maintained build
of pysha3 (a hashlib-style C object, one of eth-hash's backends), costs ~0.8 us. Its
objects are created per call, so every function here is thread-safe.
"""

from __future__ import annotations

from collections.abc import Callable

from sha3 import keccak_256 as _keccak_256


def keccak256(data: bytes) -> bytes:
    """Keccak-256 of `data`."""
    return _keccak_256(data).digest()  # type: ignore[no-any-return]


def double_keccak256(data: bytes) -> bytes:
    """keccak256(keccak256(data)): how an OpenZeppelin StandardMerkleTree leaf is hashed."""
    return _keccak_256(_keccak_256(data).digest()).digest()  # type: ignore[no-any-return]


def new_hasher() -> Callable[[bytes], bytes]:
    """A Keccak-256 function for bulk work (kept for callers that ask per job)."""
    return keccak256


def new_double_hasher() -> Callable[[bytes], bytes]:
    """keccak256(keccak256(data)) in one call, as a Merkle leaf hashes its encoding."""
    return double_keccak256
