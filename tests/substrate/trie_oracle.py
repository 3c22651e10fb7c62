"""A slow, literal Substrate trie: the independent reference the fast builder is checked against.

Written straight from sp-trie's node codec (recursive split on the next nibble, its own
header and compact encoders) and sharing no code with `veil.substrate.trie`, so a bug in
one does not hide in the other."""

from __future__ import annotations

import hashlib


def _hash(data: bytes) -> bytes:
    return hashlib.blake2b(data, digest_size=32).digest()


def _compact(n: int) -> bytes:
    if n < 64:
        return bytes([n * 4])
    if n < 2**14:
        return (n * 4 + 1).to_bytes(2, "little")
    return (n * 4 + 2).to_bytes(4, "little")


def _header(kind: str, nibbles: int) -> bytes:
    prefix, bits = {
        "leaf": (0x40, 2),
        "branch": (0x80, 2),
        "branch+value": (0xC0, 2),
        "leaf+hash": (0x20, 3),
        "branch+hash": (0x10, 4),
    }[kind]
    limit = (1 << (8 - bits)) - 1
    if nibbles < limit:
        return bytes([prefix + nibbles])
    out = [prefix + limit]
    left = nibbles - limit
    while left >= 255:
        out.append(255)
        left -= 255
    return bytes([*out, left])


def _packed(nibbles: str) -> bytes:
    if len(nibbles) % 2:
        return bytes([int(nibbles[0], 16)]) + bytes.fromhex(nibbles[1:])
    return bytes.fromhex(nibbles)


def _value(value: bytes, v1: bool) -> tuple[bytes, bool]:
    if v1 and len(value) >= 33:
        return _hash(value), True
    return _compact(len(value)) + value, False


def _encode(entries: dict[str, bytes], v1: bool) -> bytes:
    keys = sorted(entries)
    if len(keys) == 1:
        value, hashed = _value(entries[keys[0]], v1)
        return _header("leaf+hash" if hashed else "leaf", len(keys[0])) + _packed(keys[0]) + value
    prefix = keys[0]
    for key in keys[1:]:
        while not key.startswith(prefix):
            prefix = prefix[:-1]
    own = entries.get(prefix)
    groups: dict[str, dict[str, bytes]] = {}
    for key in keys:
        if key != prefix:
            groups.setdefault(key[len(prefix)], {})[key[len(prefix) + 1 :]] = entries[key]
    bitmap = sum(1 << int(nibble, 16) for nibble in groups)
    children = b""
    for nibble in "0123456789abcdef":
        if nibble in groups:
            child = _encode(groups[nibble], v1)
            reference = child if len(child) < 32 else _hash(child)
            children += _compact(len(reference)) + reference
    if own is None:
        head, value = _header("branch", len(prefix)), b""
    else:
        value, hashed = _value(own, v1)
        head = _header("branch+hash" if hashed else "branch+value", len(prefix))
    return head + _packed(prefix) + bitmap.to_bytes(2, "little") + value + children


def oracle_root(entries: dict[bytes, bytes], v1: bool = False) -> bytes:
    if not entries:
        return _hash(b"\x00")
    return _hash(_encode({key.hex(): value for key, value in entries.items()}, v1))
