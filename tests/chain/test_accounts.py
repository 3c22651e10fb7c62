"""Signers come from a keystore, a devnet name or $VEIL_PRIVATE_KEY, never argv."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from eth_account import Account

from veil.chain.accounts import KEY_ENV, KEYSTORE_PASSWORD_ENV, devnet_account, resolve_signer
from veil.errors import InputError

KEY = "0x" + "11" * 32


def test_devnet_names_are_anvils_accounts() -> None:
    assert devnet_account("deployer").address == "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"
    assert devnet_account("alice").address == "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"
    with pytest.raises(InputError, match="not a devnet name"):
        devnet_account("mallory")


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
