"""Attester keys and EIP-2098 compact signatures over raw digests, for the module tests."""

from __future__ import annotations

from eth_keys import keys
from eth_utils import keccak

from veil.attestation.typed_data import Signature

SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
KEYS = [keys.PrivateKey(keccak(text=f"attester_set test key {i}")) for i in range(12)]
ADDRESSES = [k.public_key.to_checksum_address() for k in KEYS]


def sign(key_index: int, digest: bytes) -> tuple[bytes, bytes]:
    """The compact (r, vs) signature of `digest` by KEYS[key_index]."""
    v, r, s = KEYS[key_index].sign_msg_hash(digest).vrs
    return Signature(v + 27, r.to_bytes(32, "big"), s.to_bytes(32, "big")).compact()


def by_address(indices: list[int]) -> list[int]:
    """Key indices sorted by their address, as the module requires signers."""
    return sorted(indices, key=lambda i: int(ADDRESSES[i], 16))
