"""SS58 addresses: the form Polkadot wallets show an account id in.

The checksum binds the address to its network prefix, so an address for another chain is
refused rather than silently read as the same 32 bytes.
"""

from __future__ import annotations

import hashlib

import base58

from veil.errors import InputError

PHALA_PREFIX = 30
_CHECKSUM_CONTEXT = b"SS58PRE"


def _checksum(payload: bytes) -> bytes:
    return hashlib.blake2b(_CHECKSUM_CONTEXT + payload, digest_size=64).digest()[:2]


def _prefix_bytes(prefix: int) -> bytes:
    if not 0 <= prefix < 16384 or prefix in (46, 47):
        raise InputError(f"ss58 prefix {prefix}: not a valid network prefix")
    if prefix < 64:
        return bytes([prefix])
    # Two-byte form: 14 bits spread over two bytes with the 0b01 marker, per the SS58 spec.
    first = ((prefix & 0b1111_1100) >> 2) | 0b0100_0000
    second = (prefix >> 8) | ((prefix & 0b11) << 6)
    return bytes([first, second])


def encode(account_id: bytes, prefix: int = PHALA_PREFIX) -> str:
    """SS58 text of a 32-byte account id (the form users paste and wallets display)."""
    if len(account_id) != 32:
        raise InputError(f"account id 0x{account_id.hex()}: expected 32 bytes")
    payload = _prefix_bytes(prefix) + account_id
    return base58.b58encode(payload + _checksum(payload)).decode()


def decode(address: str, prefix: int | None = PHALA_PREFIX) -> bytes:
    """Account id of an SS58 address; refuses a bad checksum or another network's prefix.

    `prefix=None` accepts any network, for tools that only need the 32 bytes.
    """
    try:
        raw = base58.b58decode(address.strip())
    except ValueError as error:
        raise InputError(f"address {address!r}: not base58 ({error})") from None
    if len(raw) < 3:
        raise InputError(f"address {address!r}: too short for SS58")
    if raw[0] & 0b0100_0000:
        if len(raw) < 4:
            raise InputError(f"address {address!r}: too short for SS58")
        lower = ((raw[0] & 0b0011_1111) << 2) | (raw[1] >> 6)
        upper = raw[1] & 0b0011_1111
        found, head = lower | (upper << 8), 2
    else:
        found, head = raw[0], 1
    body, check = raw[:-2], raw[-2:]
    account_id = body[head:]
    if len(account_id) != 32:
        raise InputError(f"address {address!r}: holds {len(account_id)} bytes, not a 32-byte id")
    if _checksum(body) != check:
        raise InputError(f"address {address!r}: checksum mismatch (mistyped?)")
    if prefix is not None and found != prefix:
        raise InputError(f"address {address!r}: network prefix {found}, expected {prefix}")
    return account_id


def parse_account(text: str, prefix: int | None = PHALA_PREFIX) -> bytes:
    """An account given either as SS58 or as 0x-hex of its 32-byte id (both appear in files)."""
    value = text.strip()
    if value.startswith(("0x", "0X")):
        try:
            account_id = bytes.fromhex(value[2:])
        except ValueError:
            raise InputError(f"account {text!r}: not valid hex") from None
        if len(account_id) != 32:
            raise InputError(f"account {text!r}: expected 32 bytes, got {len(account_id)}")
        return account_id
    return decode(value, prefix)
