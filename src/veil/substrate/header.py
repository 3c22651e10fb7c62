"""Block headers as nodes serve them (`chain_getHeader`), re-hashed to bind a state root.

A read proof is only as good as the state root it is checked against, and a node could
serve any root. Hashing the header it returns and comparing with the block hash the
operator chose (from a block explorer, a second node, a finalised checkpoint) makes the
root the block's own.
"""

from __future__ import annotations

import hashlib
from typing import Any

from veil.errors import ChainError
from veil.substrate.scale import encode_compact


def _bytes32(header: dict[str, Any], field: str) -> bytes:
    value = header.get(field)
    try:
        raw = bytes.fromhex(str(value).removeprefix("0x"))
    except ValueError:
        raw = b""
    if len(raw) != 32:
        raise ChainError(f"block header: {field} {value!r:.80} is not a 32-byte hex hash")
    return raw


def header_hash(header: dict[str, Any]) -> bytes:
    """blake2_256 of the SCALE header: parent, compact number, roots, digest logs."""
    number = header.get("number")
    try:
        height = int(str(number), 16) if str(number).startswith("0x") else int(str(number))
        logs = [bytes.fromhex(str(log).removeprefix("0x")) for log in header["digest"]["logs"]]
    except (KeyError, TypeError, ValueError):
        raise ChainError("block header: number or digest logs malformed") from None
    encoded = (
        _bytes32(header, "parentHash")
        + encode_compact(height)
        + _bytes32(header, "stateRoot")
        + _bytes32(header, "extrinsicsRoot")
        + encode_compact(len(logs))
        + b"".join(logs)
    )
    return hashlib.blake2b(encoded, digest_size=32).digest()


def state_root_of_block(header: dict[str, Any], block: str) -> bytes:
    """The header's state root, after checking that the header hashes to `block`."""
    digest = header_hash(header)
    if "0x" + digest.hex() != block.lower():
        raise ChainError(
            f"block {block}: the node's header hashes to 0x{digest.hex()}; "
            "it is not that block's header"
        )
    return _bytes32(header, "stateRoot")
