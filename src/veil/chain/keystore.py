"""Encrypted keystores a user makes with `veil keys` and signs with via `--keystore FILE`.

The format is Web3 Secret Storage v3 (eth-account's `Account.encrypt`, scrypt), the one
geth, foundry's `cast wallet` and MetaMask exports read, so a key made here moves to other
tools and back. Files live in one documented directory, `$VEIL_HOME/keys` (default
`~/.veil/keys`), are readable by their owner only (0600), and appear complete or not at
all: a keystore half-written on a crash would be a lost key.

A private key never appears on a command line (shell history, `ps`), in an error message
or in output; it comes from stdin or a hidden prompt.
"""

from __future__ import annotations

import contextlib
import getpass
import json
import os
import re
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from veil.chain.accounts import KEYSTORE_PASSWORD_ENV
from veil.chain.home import HOME_ENV
from veil.errors import InputError

SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
_MAX_KEYSTORE_BYTES = 64 * 1024


@dataclass(frozen=True)
class KeystoreFile:
    address: str
    path: Path

    def to_json(self) -> dict[str, str]:
        return {"address": self.address, "path": str(self.path)}


def default_dir() -> Path:
    """`$VEIL_HOME/keys`, else `~/.veil/keys`."""
    home = os.environ.get(HOME_ENV)
    return (Path(home) if home else Path.home() / ".veil") / "keys"


def keys_dir(directory: Path | None, *, create: bool) -> Path:
    """The directory to use; the default one is created (0700), a given one must exist."""
    if directory is None:
        directory = default_dir()
        if create and not directory.exists():
            try:
                directory.mkdir(mode=0o700, parents=True)
            except OSError as error:
                raise InputError(
                    f"keys dir {directory}: cannot create ({error.strerror})"
                ) from None
    if not directory.exists():
        raise InputError(f"keys dir {directory}: does not exist")
    if not directory.is_dir():
        raise InputError(f"keys dir {directory}: not a directory")
    return directory


def _tty_prompt(prompt: str) -> str:
    """Ask on the terminal with echo off; refuse when there is none (getpass would fall
    back to reading stdin with echo on, which is where a piped key may be waiting)."""
    try:
        with open("/dev/tty"):
            pass
    except OSError:
        raise InputError(
            f"no keystore password: set ${KEYSTORE_PASSWORD_ENV} (no terminal to ask on)"
        ) from None
    return getpass.getpass(prompt)


def read_password(*, confirm: bool) -> str:
    """From $VEIL_KEYSTORE_PASSWORD, else a hidden prompt (twice when making a keystore)."""
    password = os.environ.get(KEYSTORE_PASSWORD_ENV)
    from_env = password is not None
    if password is None:
        password = _tty_prompt("keystore password: ")
    if not password:
        where = f"${KEYSTORE_PASSWORD_ENV}" if from_env else "password"
        raise InputError(f"{where}: empty; a keystore needs a password")
    if confirm and not from_env and _tty_prompt("repeat the password: ") != password:
        raise InputError("passwords do not match; nothing was written")
    return password


def parse_private_key(text: str) -> bytes:
    """A secp256k1 private key as 64 hex digits (0x optional). Errors never quote it."""
    digits = text.strip().removeprefix("0x").removeprefix("0X")
    if len(digits) != 64 or not re.fullmatch(r"[0-9a-fA-F]{64}", digits):
        raise InputError(
            f"private key: expected 64 hex digits (32 bytes), got {len(digits)} characters"
        )
    key = bytes.fromhex(digits)
    if not 0 < int.from_bytes(key, "big") < SECP256K1_N:
        raise InputError("private key: out of range for secp256k1 (zero or above the order)")
    return key


def _address_of(document: Any) -> str | None:
    """The checksummed address a keystore document names, or None if it is not one."""
    if not isinstance(document, dict):
        return None
    crypto = document.get("crypto", document.get("Crypto"))
    address = document.get("address")
    if not isinstance(crypto, dict) or not isinstance(address, str):
        return None
    digits = address.lower().removeprefix("0x")
    if not re.fullmatch(r"[0-9a-f]{40}", digits):
        return None
    from eth_utils.address import to_checksum_address

    return str(to_checksum_address("0x" + digits))


def _read_document(path: Path) -> Any:
    with path.open("rb") as handle:
        raw = handle.read(_MAX_KEYSTORE_BYTES + 1)
    if len(raw) > _MAX_KEYSTORE_BYTES:
        return None
    return json.loads(raw)


def keystore_address(path: Path) -> str:
    """The address a keystore holds, read without its password (it is stored in clear)."""
    try:
        document = _read_document(path)
    except OSError as error:
        raise InputError(f"keystore {path}: cannot read ({error.strerror})") from None
    except ValueError:
        document = None
    address = _address_of(document)
    if address is None:
        raise InputError(
            f"keystore {path}: not a keystore (expected Web3 Secret Storage JSON with "
            "'address' and 'crypto')"
        )
    return address


def list_keystores(directory: Path) -> list[KeystoreFile]:
    """Every keystore file in `directory` (other files are skipped), by file name."""
    found = []
    for path in sorted(directory.iterdir()):
        if path.name.startswith(".") or not path.is_file():
            continue
        try:
            address = _address_of(_read_document(path))
        except (OSError, ValueError):
            continue
        if address is not None:
            found.append(KeystoreFile(address, path))
    return found


def _file_name(address: str, name: str | None) -> str:
    if name is None:  # geth's naming, so the directory also works as a geth keystore
        stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H-%M-%S.%fZ")
        return f"UTC--{stamp}--{address[2:].lower()}"
    if not _NAME.fullmatch(name):
        raise InputError(
            f"key name {name!r}: use letters, digits, '.', '_' or '-' (at most 64, "
            "not starting with '.')"
        )
    return name if name.endswith(".json") else f"{name}.json"


def write_keystore(directory: Path, key: bytes, password: str, name: str | None) -> KeystoreFile:
    """Encrypt `key` into a new 0600 file in `directory`; never overwrites anything.

    The document is written to a private temporary file and hard-linked to its name, which
    fails if the name exists: no other keystore is ever replaced, and no reader sees a
    partial file.
    """
    from eth_account import Account

    address = str(Account.from_key(key).address)
    for existing in list_keystores(directory):
        if existing.address == address:
            raise InputError(f"key {address}: already in {existing.path}; nothing was written")
    target = directory / _file_name(address, name)
    if target.exists():
        raise InputError(f"keystore {target}: already exists; choose another --name")
    document = Account.encrypt(key, password)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "w") as handle:
            json.dump(document, handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o600)
        try:
            os.link(tmp, target)
        except FileExistsError:
            raise InputError(f"keystore {target}: already exists; choose another --name") from None
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
    return KeystoreFile(address, target)


def new_private_key() -> bytes:
    """32 bytes from the OS's CSPRNG, retried in the (2^-128) case they are not a key."""
    while True:
        key = os.urandom(32)
        if 0 < int.from_bytes(key, "big") < SECP256K1_N:
            return key
