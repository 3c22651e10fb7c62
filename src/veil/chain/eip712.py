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
