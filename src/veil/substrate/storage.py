"""Storage keys and SCALE values of the two items a PHA migration reads.

Decoding is done by hand with `int.from_bytes` on fixed offsets: a snapshot holds a
million accounts, and a generic SCALE codec is two orders of magnitude slower for a
layout that never changes shape.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import xxhash

from veil.errors import InputError


def twox128(data: bytes) -> bytes:
    """Substrate's `Twox128` hasher: two xxh64 rounds (seeds 0 and 1), little-endian."""
    return xxhash.xxh64_digest(data, seed=0)[::-1] + xxhash.xxh64_digest(data, seed=1)[::-1]


def blake2_128(data: bytes) -> bytes:
    return hashlib.blake2b(data, digest_size=16).digest()


def blake2_256(data: bytes) -> bytes:
    return hashlib.blake2b(data, digest_size=32).digest()


SYSTEM_ACCOUNT_PREFIX = twox128(b"System") + twox128(b"Account")
TOTAL_ISSUANCE_KEY = twox128(b"Balances") + twox128(b"TotalIssuance")
ACCOUNT_INFO_SIZE = 80
_ACCOUNT_KEY_SIZE = len(SYSTEM_ACCOUNT_PREFIX) + 16 + 32
_U128_MAX = (1 << 128) - 1


@dataclass(frozen=True, slots=True)
class AccountInfo:
    """`frame_system::AccountInfo<u32, pallet_balances::AccountData<u128>>`."""

    nonce: int
    consumers: int
    providers: int
    sufficients: int
    free: int
    reserved: int
    frozen: int
    flags: int

    def encode(self) -> bytes:
        return (
            self.nonce.to_bytes(4, "little")
            + self.consumers.to_bytes(4, "little")
            + self.providers.to_bytes(4, "little")
            + self.sufficients.to_bytes(4, "little")
            + self.free.to_bytes(16, "little")
            + self.reserved.to_bytes(16, "little")
            + self.frozen.to_bytes(16, "little")
            + self.flags.to_bytes(16, "little")
        )


def account_key(account_id: bytes) -> bytes:
    """`System.Account` key: blake2_128_concat keeps the id readable at the key's end."""
    return SYSTEM_ACCOUNT_PREFIX + blake2_128(account_id) + account_id


def account_id_of_key(key: bytes) -> bytes:
    """The account id a `System.Account` key stores; refuses keys of other items."""
    if not key.startswith(SYSTEM_ACCOUNT_PREFIX):
        raise InputError(f"storage key 0x{key.hex()}: not a System.Account key")
    if len(key) != _ACCOUNT_KEY_SIZE:
        raise InputError(
            f"storage key 0x{key.hex()}: System.Account key of {len(key)} bytes, "
            f"expected {_ACCOUNT_KEY_SIZE}"
        )
    account_id = key[48:]
    if blake2_128(account_id) != key[32:48]:
        raise InputError(f"storage key 0x{key.hex()}: blake2_128 hash does not match its id")
    return account_id


def decode_account_info(value: bytes, key_hex: str = "?") -> AccountInfo:
    """Decode the 80-byte SCALE `AccountInfo`; anything else names its key and is refused."""
    if len(value) != ACCOUNT_INFO_SIZE:
        raise InputError(
            f"storage key {key_hex}: AccountInfo of {len(value)} bytes, "
            f"expected {ACCOUNT_INFO_SIZE}"
        )
    frm = int.from_bytes
    return AccountInfo(
        nonce=frm(value[0:4], "little"),
        consumers=frm(value[4:8], "little"),
        providers=frm(value[8:12], "little"),
        sufficients=frm(value[12:16], "little"),
        free=frm(value[16:32], "little"),
        reserved=frm(value[32:48], "little"),
        frozen=frm(value[48:64], "little"),
        flags=frm(value[64:80], "little"),
    )


def encode_u128(value: int) -> bytes:
    if not 0 <= value <= _U128_MAX:
        raise InputError(f"value {value}: does not fit in u128")
    return value.to_bytes(16, "little")


def decode_u128(value: bytes, key_hex: str = "?") -> int:
    if len(value) != 16:
        raise InputError(f"storage key {key_hex}: u128 of {len(value)} bytes, expected 16")
    return int.from_bytes(value, "little")


def hex_bytes(text: str, what: str) -> bytes:
    """0x-hex from a JSON file or RPC answer; `what` names the record in the error."""
    if not isinstance(text, str) or not text.startswith("0x"):
        raise InputError(f"{what}: expected a 0x-prefixed hex string, got {text!r:.80}")
    try:
        return bytes.fromhex(text[2:])
    except ValueError:
        raise InputError(f"{what}: not valid hex ({text!r:.80})") from None
