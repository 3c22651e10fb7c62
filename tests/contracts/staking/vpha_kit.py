"""Shared pieces of the PHA and vPHA tests: sources, keys, EIP-712 signatures, price math.

Lives beside the staking tests (the token tests import it through their conftest) so
both suites sign permits the same way a wallet would, with eth_account.
"""

from __future__ import annotations

from fractions import Fraction
from typing import Any

import boa
from eth_account import Account
from eth_account.messages import encode_typed_data

from veil.chain.compile import CONTRACTS_DIR

PHA_SOURCE = CONTRACTS_DIR / "token" / "PHA.vy"
VAULT_SOURCE = CONTRACTS_DIR / "staking" / "Vault.vy"

PHA = 10**18
VIRTUAL_SHARES = 10**6
DAY = 86400
MAX_UINT = 2**256 - 1
ZERO = "0x" + "00" * 20

# Deterministic keys so signatures are reproducible; never used outside tests.
KEYS = [bytes([i + 1]) * 32 for i in range(8)]
ACCOUNTS = [Account.from_key(k) for k in KEYS]

PERMIT_TYPES = {
    "Permit": [
        {"name": "owner", "type": "address"},
        {"name": "spender", "type": "address"},
        {"name": "value", "type": "uint256"},
        {"name": "nonce", "type": "uint256"},
        {"name": "deadline", "type": "uint256"},
    ]
}
DELEGATION_TYPES = {
    "Delegation": [
        {"name": "delegatee", "type": "address"},
        {"name": "nonce", "type": "uint256"},
        {"name": "expiry", "type": "uint256"},
    ]
}


def domain_of(contract: Any) -> dict[str, Any]:
    """The EIP-712 domain a wallet builds from the contract's ERC-5267 answer."""
    _fields, name, version, chain_id, verifying, _salt, _ext = contract.eip712Domain()
    return {
        "name": name,
        "version": version,
        "chainId": chain_id,
        "verifyingContract": str(verifying),
    }


def sign(key: bytes, domain: dict[str, Any], types: dict[str, Any], message: dict[str, Any]):
    """Sign EIP-712 typed data; returns (v, r, s) as the contracts take them."""
    signable = encode_typed_data(domain_data=domain, message_types=types, message_data=message)
    signed = Account.sign_message(signable, key)
    return signed.v, signed.r.to_bytes(32, "big"), signed.s.to_bytes(32, "big")


def sign_permit(key: bytes, token: Any, spender: str, value: int, nonce: int, deadline: int):
    owner = Account.from_key(key).address
    message = {
        "owner": owner,
        "spender": str(spender),
        "value": value,
        "nonce": nonce,
        "deadline": deadline,
    }
    return sign(key, domain_of(token), PERMIT_TYPES, message)


def sign_delegation(key: bytes, vault: Any, delegatee: str, nonce: int, expiry: int):
    message = {"delegatee": str(delegatee), "nonce": nonce, "expiry": expiry}
    return sign(key, domain_of(vault), DELEGATION_TYPES, message)


def price(vault: Any) -> Fraction:
    """Exact PHA per share, as the vault's formulas use it (virtual asset and shares)."""
    return Fraction(vault.totalAssets() + 1, vault.totalSupply() + VIRTUAL_SHARES)


GOV = ACCOUNTS[0].address
TREASURY = ACCOUNTS[1].address
STAKERS = [a.address for a in ACCOUNTS[2:6]]


def deploy_world(pha_deployer: Any, vault_deployer: Any) -> tuple[Any, Any]:
    """PHA and a vault owned by GOV; GOV and every staker hold 100 M PHA, all approved
    to the vault."""
    with boa.env.prank(GOV):
        pha = pha_deployer.deploy("0x" + "00" * 20)  # no Migrator here
        pha.setMinter(GOV, True)
        for account in (GOV, *STAKERS):
            pha.mint(account, 100_000_000 * PHA)
    vault = vault_deployer.deploy(pha.address, GOV, TREASURY)
    for account in (GOV, *STAKERS):
        with boa.env.prank(account):
            pha.approve(vault.address, MAX_UINT)
    return pha, vault
