"""Signers come from a keystore, a devnet name or $VEIL_PRIVATE_KEY, never argv.

Devnet names are the devnet package's: the library resolves a name only among the
accounts its caller hands it, so a library call without them can never sign as `alice`.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from eth_account import Account

from veil.chain.accounts import KEY_ENV, KEYSTORE_PASSWORD_ENV, resolve_signer
from veil.devnet.accounts import DEVNET_ACCOUNTS, devnet_account
from veil.errors import InputError

KEY = "0x" + "11" * 32


def test_devnet_names_are_anvils_accounts() -> None:
    assert devnet_account("deployer").address == "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"
    assert devnet_account("alice").address == "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"
    with pytest.raises(InputError, match="not a devnet name"):
        devnet_account("mallory")


def test_names_resolve_only_among_the_accounts_handed_in(monkeypatch: pytest.MonkeyPatch) -> None:
    from veil.chain.accounts import resolve_address

    monkeypatch.setenv(KEY_ENV, KEY)
    alice = devnet_account("alice").address
    assert resolve_signer("alice", None, named=DEVNET_ACCOUNTS).address == alice
    with pytest.raises(InputError, match="named accounts exist only on the devnet"):
        resolve_signer("alice", None)
    with pytest.raises(InputError, match="not an address"):
        resolve_address("alice")
    assert resolve_address("alice", named=DEVNET_ACCOUNTS) == alice


def test_env_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(KEY_ENV, KEY)
    assert resolve_signer(None, None).address == Account.from_key(KEY).address
    monkeypatch.setenv(KEY_ENV, "0x1234")
    with pytest.raises(InputError, match="not a private key"):
        resolve_signer(None, None)


def test_keystore_with_password_from_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "key.json"
    path.write_text(json.dumps(Account.encrypt(KEY, "hunter2", iterations=2)))
    monkeypatch.setenv(KEYSTORE_PASSWORD_ENV, "hunter2")
    assert resolve_signer(None, path).address == Account.from_key(KEY).address
    monkeypatch.setenv(KEYSTORE_PASSWORD_ENV, "wrong")
    with pytest.raises(InputError, match="cannot decrypt"):
        resolve_signer(None, path)
    path.write_text("not json")
    with pytest.raises(InputError, match="cannot read"):
        resolve_signer(None, path)


def test_no_signer_is_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(KEY_ENV, raising=False)
    with pytest.raises(InputError, match="no signer"):
        resolve_signer(None, None)


ALICE = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"


def test_addresses_follow_eip55() -> None:
    """Issue 8, defect 3: one wrong-case letter used to be re-checksummed silently."""
    from veil.chain.accounts import parse_address

    assert parse_address(ALICE) == ALICE
    assert parse_address(ALICE.lower()) == ALICE  # no checksum given: accepted (EIP-55)
    assert parse_address("0x" + ALICE[2:].upper()) == ALICE
    typo = ALICE[:-2] + "c8"  # 'C8' -> 'c8': one letter's case wrong
    with pytest.raises(InputError, match="wrong EIP-55 checksum") as refused:
        parse_address(typo, "receiver")
    assert ALICE in str(refused.value) and str(refused.value).startswith("receiver")
    for bad in ("0xZZZ", "0x1234", ALICE + "00", ALICE[2:], " " + ALICE):
        with pytest.raises(InputError, match="not an address"):
            parse_address(bad)


def test_zero_address_is_refused_unless_allowed() -> None:
    from veil.chain.accounts import parse_address

    with pytest.raises(InputError, match="zero address"):
        parse_address("0x" + "00" * 20, "delegatee")
    assert parse_address("0x" + "00" * 20, allow_zero=True) == "0x" + "00" * 20


def test_devnet_names_resolve_as_addresses() -> None:
    from veil.chain.accounts import resolve_address

    assert resolve_address("alice", named=DEVNET_ACCOUNTS) == ALICE
    assert resolve_address(ALICE.lower(), named=DEVNET_ACCOUNTS) == ALICE
    with pytest.raises(InputError, match="neither an address nor a devnet name"):
        resolve_address("mallory", named=DEVNET_ACCOUNTS)


def test_keystore_that_is_not_a_keystore(tmp_path: Path) -> None:
    path = tmp_path / "key.json"
    for text in ('{"address": "00"}', "[]", '{"crypto": 5}', '"x"'):
        path.write_text(text)
        with pytest.raises(InputError, match="not a keystore"):
            resolve_signer(None, path)


def test_keystore_without_password_or_terminal_names_the_env_var(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import io

    path = tmp_path / "key.json"
    path.write_text(json.dumps(Account.encrypt(KEY, "hunter2", iterations=2)))
    monkeypatch.delenv(KEYSTORE_PASSWORD_ENV, raising=False)
    monkeypatch.setattr("sys.stdin", io.StringIO(""))
    with pytest.raises(InputError, match=KEYSTORE_PASSWORD_ENV):
        resolve_signer(None, path)
