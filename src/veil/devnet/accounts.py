"""The devnet's named accounts: anvil's public test mnemonic, funded on every devnet.

They are worthless anywhere else, which is why they live here and not in the library:
only the CLI (for `--account alice`) and the devnet's own deploy know these names.
"""

from __future__ import annotations

from functools import cache
from typing import TYPE_CHECKING

from veil.chain.accounts import NamedAccounts
from veil.errors import InputError

if TYPE_CHECKING:  # eth_account takes ~0.25 s to import; only signing needs it
    from eth_account.signers.local import LocalAccount

# anvil's default mnemonic: public, funded on every devnet, worthless anywhere else.
DEVNET_MNEMONIC = "test test test test test test test test test test test junk"
DEVNET_NAMES = ("deployer", "alice", "bob", "carol", "dave", "guardian", "attester", "provider")


@cache
def devnet_account(name: str) -> LocalAccount:
    """The named devnet account (index in DEVNET_NAMES on anvil's mnemonic)."""
    if name not in DEVNET_NAMES:
        raise InputError(f"account {name!r}: not a devnet name ({', '.join(DEVNET_NAMES)})")
    from eth_account import Account

    Account.enable_unaudited_hdwallet_features()
    index = DEVNET_NAMES.index(name)
    account: LocalAccount = Account.from_mnemonic(
        DEVNET_MNEMONIC, account_path=f"m/44'/60'/0'/0/{index}"
    )
    return account


DEVNET_ACCOUNTS = NamedAccounts("devnet", DEVNET_NAMES, devnet_account)
