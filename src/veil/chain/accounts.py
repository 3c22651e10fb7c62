"""Where signing keys come from: a keystore file, an env var, or a name the caller knows.

Keys never travel as command-line arguments in clear (they would land in shell history
and `ps`). Names (`--account alice`) are not the library's to define: a program passes the
accounts it knows by name (the devnet's public ones, from `veil.devnet`), so a library
call on a real network can only ever sign with a keystore or `$VEIL_PRIVATE_KEY`.
"""

from __future__ import annotations

import getpass
import json
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from veil.chain.addresses import parse_address
from veil.errors import InputError

if TYPE_CHECKING:  # eth_account takes ~0.25 s to import; only signing needs it
    from eth_account.signers.local import LocalAccount

KEY_ENV = "VEIL_PRIVATE_KEY"
KEYSTORE_PASSWORD_ENV = "VEIL_KEYSTORE_PASSWORD"


@dataclass(frozen=True)
class NamedAccounts:
    """Accounts a program lets users address by name; `kind` says where they are valid."""

    kind: str
    names: tuple[str, ...]
    lookup: Callable[[str], LocalAccount]

    def account(self, name: str) -> LocalAccount:
        return self.lookup(name)


def from_keystore(path: Path, password: str | None = None) -> LocalAccount:
    """Decrypt a Web3 Secret Storage (v3) keystore; password from env or a prompt.

    The file is checked for the keystore's shape before any password is asked: a user who
    pointed at the wrong file should learn that, not type a password for nothing.
    """
    from eth_account import Account

    try:
        keyfile = json.loads(path.read_text())
    except (OSError, ValueError) as error:
        reason = error.strerror if isinstance(error, OSError) else "not JSON"
        raise InputError(f"keystore {path}: cannot read ({reason})") from error
    crypto = keyfile.get("crypto", keyfile.get("Crypto")) if isinstance(keyfile, dict) else None
    if not isinstance(crypto, dict) or not {"cipher", "ciphertext", "kdf", "mac"} <= set(crypto):
        raise InputError(
            f"keystore {path}: not a keystore (expected Web3 Secret Storage JSON with a "
            "'crypto' object, as `veil keys new` or geth write)"
        )
    if password is None:
        password = os.environ.get(KEYSTORE_PASSWORD_ENV)
    if password is None:
        if not sys.stdin.isatty():
            raise InputError(
                f"keystore {path}: no password; set ${KEYSTORE_PASSWORD_ENV} "
                "(there is no terminal to ask on)"
            )
        password = getpass.getpass(f"password for {path}: ")
    try:
        key = Account.decrypt(keyfile, password)
    except ValueError as error:
        raise InputError(f"keystore {path}: cannot decrypt ({error})") from error
    except (KeyError, TypeError, NotImplementedError) as error:
        raise InputError(f"keystore {path}: not a usable keystore ({error!r})") from error
    account: LocalAccount = Account.from_key(key)
    return account


__all__ = ["NamedAccounts", "parse_address", "resolve_address", "resolve_signer"]


def resolve_address(
    text: str,
    what: str = "address",
    *,
    allow_zero: bool = False,
    named: NamedAccounts | None = None,
) -> str:
    """An address, or a name among `named` (alice, bob, ... on the devnet)."""
    if named is not None and text in named.names:
        return str(named.account(text).address)
    if named is not None and not text.startswith(("0x", "0X")) and text.isidentifier():
        raise InputError(
            f"{what} {text!r}: neither an address nor a {named.kind} name "
            f"({', '.join(named.names)})"
        )
    return parse_address(text, what, allow_zero=allow_zero)


def resolve_signer(
    account: str | None, keystore: Path | None, *, named: NamedAccounts | None = None
) -> LocalAccount:
    """Pick the signer: keystore file, then a name among `named`, then $VEIL_PRIVATE_KEY."""
    if keystore is not None:
        return from_keystore(keystore)
    if account is not None:
        if named is None:
            raise InputError(
                f"--account {account}: named accounts exist only on the devnet; "
                f"use --keystore FILE or set ${KEY_ENV}"
            )
        return named.account(account)
    key = os.environ.get(KEY_ENV)
    if key:
        from eth_account import Account

        try:
            signer: LocalAccount = Account.from_key(key)
            return signer
        except (ValueError, TypeError) as error:
            raise InputError(f"${KEY_ENV}: not a private key ({error})") from error
    raise InputError(f"no signer: pass --account NAME (devnet), --keystore FILE, or set ${KEY_ENV}")
