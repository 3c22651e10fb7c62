"""`System.Account` storage decoded into snapshot rows: a checked and a fast decoder.

`decode_account_pairs` goes entry by entry and names the first bad key or value;
`decode_account_storage` does the same work on a whole raw state in a few column-wide
operations and steps aside (None) on anything unusual, so the checked decoder can name
it. On any state both accept, they give the same rows and the same state hash
(tests/migration/test_file_formats.py).
"""

from __future__ import annotations

import binascii
import hashlib
import struct
from collections.abc import Iterable
from functools import partial
from itertools import islice
from operator import add, lt, methodcaller
from typing import Any, NamedTuple

from veil.columns import hex_records, split_records
from veil.errors import InputError
from veil.substrate.account_layout import BUILTIN_DESCRIPTION
from veil.substrate.storage import (
    ACCOUNT_INFO_SIZE,
    SYSTEM_ACCOUNT_PREFIX,
    TOTAL_ISSUANCE_KEY,
    decode_u128,
)

ACCOUNT_PREFIX_HEX = "0x" + SYSTEM_ACCOUNT_PREFIX.hex()
TOTAL_ISSUANCE_HEX = "0x" + TOTAL_ISSUANCE_KEY.hex()
_ACCOUNT_KEY_HEX_LEN = 2 + 2 * (32 + 16 + 32)
_ISSUANCE_KEY_HEX_LEN = len(TOTAL_ISSUANCE_HEX)
# Keys of a raw dump that are not storage: where the dump says it was taken.
_DOCUMENT_KEYS = frozenset({"block", "genesis_hash"})
_HEAD = struct.Struct("<IIII")
# account id, then AccountInfo: four u32 counters and four u128 amounts as (low, high) u64s
_RECORD = struct.Struct("<32sIIIIQQQQQQQQ")


class AccountRow(NamedTuple):
    """One decoded `System.Account` entry (a tuple: a million of them must be cheap)."""

    account: bytes
    free: int
    reserved: int
    frozen: int
    flags: int
    nonce: int
    consumers: int
    providers: int
    sufficients: int


Decoded = tuple[int, list[AccountRow], str, int]


def decode_account_pairs(
    pairs: Iterable[tuple[str, str | None]], *, strict_prefix: bool
) -> Decoded:
    """Decode account entries and TotalIssuance; returns (issuance, rows, state hash, ignored).

    `strict_prefix` refuses any key that is neither an account nor TotalIssuance (an RPC
    page of the account map); a full raw dump holds every pallet and those are ignored.
    The state hash is sha256 over (account id, AccountInfo bytes) in account order, then
    the TotalIssuance bytes: the same storage gives the same hash however it was read.
    """
    entries: list[tuple[bytes, bytes]] = []
    append = entries.append
    issuance_value: bytes | None = None
    ignored = 0
    fromhex = binascii.a2b_hex  # strict: no spaces (bytes.fromhex skips them)
    blake2b = hashlib.blake2b
    prefix = ACCOUNT_PREFIX_HEX
    for raw_key, raw_value in pairs:
        if not isinstance(raw_key, str) or not isinstance(raw_value, str):
            raise InputError(f"storage key {raw_key!r:.80}: key and value must be hex strings")
        head = raw_key[:66]
        if head == prefix or head.lower() == prefix:
            if len(raw_key) != _ACCOUNT_KEY_HEX_LEN:
                raise InputError(
                    f"storage key {raw_key}: System.Account key of {(len(raw_key) - 2) // 2} "
                    f"bytes, expected 80"
                )
            try:
                tail = fromhex(raw_key[66:])
                value = fromhex(raw_value[2:]) if raw_value[:2] == "0x" else None
            except ValueError:
                raise InputError(f"storage key {raw_key}: key or value is not valid hex") from None
            if value is None:
                raise InputError(f"storage key {raw_key}: value is not 0x-prefixed hex")
            account = tail[16:]
            if blake2b(account, digest_size=16).digest() != tail[:16]:
                raise InputError(f"storage key {raw_key}: blake2_128 hash does not match its id")
            if len(value) != ACCOUNT_INFO_SIZE:
                raise InputError(
                    f"storage key {raw_key}: AccountInfo of {len(value)} bytes, not the built-in "
                    f"{BUILTIN_DESCRIPTION}; decode it with the chain's own metadata "
                    "(--metadata, or --rpc which reads it from the node)"
                )
            append((account, value))
        elif raw_key.lower() == TOTAL_ISSUANCE_HEX:
            if issuance_value is not None:
                raise InputError(f"storage key {raw_key}: Balances.TotalIssuance appears twice")
            try:
                issuance_value = fromhex(raw_value[2:]) if raw_value[:2] == "0x" else b"?"
            except ValueError:
                raise InputError(f"storage key {raw_key}: value is not valid hex") from None
            decode_u128(issuance_value, raw_key)
        elif strict_prefix:
            raise InputError(f"storage key {raw_key}: not a System.Account key")
        else:
            ignored += 1
    if issuance_value is None:
        raise InputError(
            f"storage key {TOTAL_ISSUANCE_HEX} (Balances.TotalIssuance): missing from the state"
        )
    entries.sort()
    digest = hashlib.sha256()
    update = digest.update
    unpack = _HEAD.unpack_from
    frm = int.from_bytes
    rows: list[AccountRow] = []
    add = rows.append
    previous = b""
    for account, value in entries:
        if account == previous:
            raise InputError(f"account 0x{account.hex()}: appears twice in the state")
        previous = account
        update(account)
        update(value)
        nonce, consumers, providers, sufficients = unpack(value)
        add(
            AccountRow(
                account,
                frm(value[16:32], "little"),
                frm(value[32:48], "little"),
                frm(value[48:64], "little"),
                frm(value[64:80], "little"),
                nonce,
                consumers,
                providers,
                sufficients,
            )
        )
    update(issuance_value)
    return decode_u128(issuance_value), rows, "0x" + digest.hexdigest(), ignored


def decode_account_storage(storage: dict[Any, Any]) -> Decoded | None:
    """`decode_account_pairs(storage.items(), strict_prefix=False)` in a few bulk operations.

    A million entries one by one cost seconds; here keys and values are decoded as two
    joined hex texts, the id hashes checked with `map`, and (id, AccountInfo) records
    sorted as bytes, whose concatenation is exactly what the state hash covers. Returns
    None on anything unusual (an upper-case key, a bad hash, a short value, a duplicate):
    the caller then runs `decode_account_pairs`, which names the problem. Same result otherwise.
    """
    prefix = ACCOUNT_PREFIX_HEX
    try:
        keys = [key for key in storage if key[:66] == prefix]
        others = [key for key in storage if key[:66] != prefix]
    except TypeError:
        return None
    others = [key for key in others if key not in _DOCUMENT_KEYS]
    # Column-wide over the other pallets' entries too (a Phala state has 700,000).
    if others and set(map(type, map(storage.__getitem__, others))) != {str}:
        return None
    if prefix in {key[:66].lower() for key in others}:  # an account key in upper case
        return None
    spellings = [key for key in others if len(key) == _ISSUANCE_KEY_HEX_LEN]
    issuance_keys = [key for key in spellings if key.lower() == TOTAL_ISSUANCE_HEX]
    if len(issuance_keys) != 1:
        return None
    ignored = len(others) - 1
    value = storage[issuance_keys[0]]
    if value[:2] != "0x":
        return None
    try:
        issuance_value = binascii.a2b_hex(value[2:])
    except ValueError:
        return None
    if len(issuance_value) != 16:
        return None
    # Every pass runs in dict order, i.e. the order the strings lie in memory: after
    # sorting, each access would be a cache miss. Only compact records are sorted.
    key_blob = hex_records(keys, len(SYSTEM_ACCOUNT_PREFIX) + 16 + 32)
    if key_blob is None:
        return None
    values = [value for key, value in storage.items() if key[:66] == prefix]
    value_blob = hex_records(values, ACCOUNT_INFO_SIZE)
    if value_blob is None or len(value_blob) != len(keys) * (1 + ACCOUNT_INFO_SIZE):
        return None
    del keys
    skip = 1 + len(SYSTEM_ACCOUNT_PREFIX)
    accounts = split_records(key_blob, skip + 48, skip + 16, 32)
    hashes = split_records(key_blob, skip + 48, skip, 16)
    del key_blob
    blake2_128 = partial(hashlib.blake2b, digest_size=16)
    if list(map(methodcaller("digest"), map(blake2_128, accounts))) != hashes:
        return None
    del hashes
    values = split_records(value_blob, 1 + ACCOUNT_INFO_SIZE, 1, ACCOUNT_INFO_SIZE)
    del value_blob
    records = list(map(add, accounts, values))
    del accounts, values
    records.sort()
    blob = b"".join(records)
    del records
    ids = split_records(blob, _RECORD.size, 0, 32)
    if not all(map(lt, ids, islice(ids, 1, None))):  # an account twice (in two spellings)
        return None
    del ids
    digest = hashlib.sha256(blob)
    digest.update(issuance_value)
    new = tuple.__new__
    rows: list[AccountRow] = [
        new(AccountRow, (a, f | F << 64, r | R << 64, z | Z << 64, g | G << 64, n, c, p, s))
        for a, n, c, p, s, f, F, r, R, z, Z, g, G in _RECORD.iter_unpack(blob)
    ]  # fmt: skip
    return decode_u128(issuance_value), rows, "0x" + digest.hexdigest(), ignored
