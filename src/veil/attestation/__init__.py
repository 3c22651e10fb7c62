"""Attester statements and their transport: EIP-712 signing (`typed_data`), the attester
HTTP API (`api`) and its one client (`client`). Below the domains, above the codecs."""
