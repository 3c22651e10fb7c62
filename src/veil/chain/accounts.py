"""Where signing keys come from: devnet names, an env var, or a keystore file.

Keys never travel as command-line arguments in clear (they would land in shell history
and `ps`). The one exception is the devnet's well-known accounts, derived from anvil's
public test mnemonic and addressed by name.
"""

from __future__ import annotations

import getpass
import json
import os
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

from veil.errors import InputError

if TYPE_CHECKING:  # eth_account takes ~0.25 s to import; only signing needs it
    from eth_account.signers.local import LocalAccount

# anvil's default mnemonic: public, funded on every devnet, worthless anywhere else.
DEVNET_MNEMONIC = "test test test test test test test test test test test junk"
DEVNET_NAMES = ("deployer", "alice", "bob", "carol", "dave", "guardian", "attester", "provider")
KEY_ENV = "VEIL_PRIVATE_KEY"
KEYSTORE_PASSWORD_ENV = "VEIL_KEYSTORE_PASSWORD"


@cache
def devnet_account(name: str) -> LocalAccount:
    """The named devnet account (index in DEVNET_NAMES on anvil's mnemonic)."""
    if name not in DEVNET_NAMES:
        raise InputError(f"account {name!r}: not a devnet name ({', '.join(DEVNET_NAMES)})")
    from eth_account import Account

    Account.enable_unaudited_hdwallet_features()
    index = DEVNET_NAMES.index(name)
    return Account.from_mnemonic(DEVNET_MNEMONIC, account_path=f"m/44'/60'/0'/0/{index}")


def from_keystore(path: Path, password: str | None = None) -> LocalAccount:
    """Decrypt a Web3 Secret Storage (v3) keystore; password from env or a prompt."""
    from eth_account import Account

    try:
        keyfile = json.loads(path.read_text())
    except (OSError, ValueError) as error:
        raise InputError(f"keystore {path}: cannot read ({error})") from error
    if password is None:
        password = os.environ.get(KEYSTORE_PASSWORD_ENV)
    if password is None:
        password = getpass.getpass(f"password for {path}: ")
    try:
        key = Account.decrypt(keyfile, password)
    except ValueError as error:
        raise InputError(f"keystore {path}: cannot decrypt ({error})") from error
    return Account.from_key(key)


def resolve_signer(account: str | None, keystore: Path | None) -> LocalAccount:
    """Pick the signer: keystore file, then a devnet name, then $VEIL_PRIVATE_KEY."""
    if keystore is not None:
        return from_keystore(keystore)
    if account is not None:
        return devnet_account(account)
    key = os.environ.get(KEY_ENV)
    if key:
        from eth_account import Account

        try:
            return Account.from_key(key)
        except (ValueError, TypeError) as error:
            raise InputError(f"${KEY_ENV}: not a private key ({error})") from error
    raise InputError(f"no signer: pass --account NAME (devnet), --keystore FILE, or set ${KEY_ENV}")
