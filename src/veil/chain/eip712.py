"""EIP-712 pieces every veil contract's typed data shares.

All veil domains (Migrator bindings, registry attestations, worker heartbeats) use the
same four domain fields, so wallets and `eth_signTypedData_v4` see one shape everywhere.
"""

from __future__ import annotations

DOMAIN_FIELDS: list[dict[str, str]] = [
    {"name": "name", "type": "string"},
    {"name": "version", "type": "string"},
    {"name": "chainId", "type": "uint256"},
    {"name": "verifyingContract", "type": "address"},
]


def compact_signature(v: int, r: bytes, s: bytes) -> tuple[bytes, bytes]:
    """EIP-2098 `(r, vs)`: the recovery bit moves into the top bit of `s`.

    Every veil contract that checks attester signatures (the shared `attester_set`
    module) takes this form: 64 static calldata bytes instead of 96 for `(v, r, s)` or 160
    for a 65-byte `bytes`. `s` must be low (at most half the curve order), as every
    signer here produces it, so its top bit is free.
    """
    if v not in (27, 28):
        raise ValueError(f"signature v={v}: must be 27 or 28")
    s_int = int.from_bytes(s, "big")
    if s_int >> 255:
        raise ValueError(f"signature s=0x{s.hex()}: high-s has no compact form")
    return bytes(r), ((v - 27) << 255 | s_int).to_bytes(32, "big")


def compact_from_rsv(signature: bytes) -> tuple[bytes, bytes]:
    """The compact form of a 65-byte `r ++ s ++ v` signature (what eth_account emits)."""
    if len(signature) != 65:
        raise ValueError(f"signature: {len(signature)} bytes, expected 65")
    return compact_signature(signature[64], signature[:32], signature[32:64])
