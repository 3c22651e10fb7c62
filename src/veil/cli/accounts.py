"""Signers and addresses as the CLI takes them: the library's key sources plus devnet names.

The library resolves keystores and `$VEIL_PRIVATE_KEY` only; `--account alice` works because
the CLI hands it the devnet's public accounts.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from veil.chain import accounts
from veil.devnet.accounts import DEVNET_ACCOUNTS

if TYPE_CHECKING:
    from eth_account.signers.local import LocalAccount


def resolve_signer(account: str | None, keystore: Path | None) -> LocalAccount:
    """Keystore file, then a devnet name, then $VEIL_PRIVATE_KEY."""
    return accounts.resolve_signer(account, keystore, named=DEVNET_ACCOUNTS)


def resolve_address(text: str, what: str = "address", *, allow_zero: bool = False) -> str:
    """An address or a devnet name (alice, bob, ...), as `--account NAME` accepts it."""
    return accounts.resolve_address(text, what, allow_zero=allow_zero, named=DEVNET_ACCOUNTS)
