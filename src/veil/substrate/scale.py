"""SCALE compact integers: the variable-length integer every Substrate structure uses.

Lengths of byte strings, counts of sequences and trie node references all start with one,
so the trie, the chain-spec reader and the metadata-typed decoder share this one codec.
"""

from __future__ import annotations


def encode_compact(value: int) -> bytes:
    """The compact encoding of a non-negative integer (1, 2, 4 or 5+ bytes)."""
    if value < 1 << 6:
        return bytes([value << 2])
    if value < 1 << 14:
        return ((value << 2) | 1).to_bytes(2, "little")
    if value < 1 << 30:
        return ((value << 2) | 2).to_bytes(4, "little")
    body = value.to_bytes((value.bit_length() + 7) // 8, "little")
    return bytes([((len(body) - 4) << 2) | 3]) + body


def decode_compact(data: bytes, at: int) -> tuple[int, int]:
    """The compact integer at `at` and the position after it.

    Raises ValueError when it runs past the end of `data`: callers turn that into their own
    one-line error naming the record."""
    if at >= len(data):
        raise ValueError("compact integer runs past the end of the value")
    mode = data[at] & 3
    if mode == 3:
        start, end = at + 1, at + 1 + (data[at] >> 2) + 4
    else:
        start, end = at, at + (1, 2, 4)[mode]
    if end > len(data):
        raise ValueError("compact integer runs past the end of the value")
    value = int.from_bytes(data[start:end], "little")
    return (value if mode == 3 else value >> 2), end
