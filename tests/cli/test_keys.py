"""`veil keys`: keystores a chain command can sign with, made without leaking the key."""

from __future__ import annotations

import json
import os
import stat
import subprocess
from pathlib import Path

import pytest
from eth_account import Account

from veil.chain.accounts import resolve_signer
from veil.devnet.demo import veil_executable

KEY = "4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f362318"
PASSWORD = "correct horse battery staple"


def veil(*args: str, stdin: str = "", env: dict[str, str] | None = None,
         password: str | None = PASSWORD) -> subprocess.CompletedProcess[str]:  # fmt: skip
    environ = {k: v for k, v in os.environ.items() if not k.startswith("VEIL_")}
    if password is not None:
        environ["VEIL_KEYSTORE_PASSWORD"] = password
    environ.update(env or {})
    # a new session has no controlling terminal: the commands must not wait on a prompt
    return subprocess.run([str(veil_executable()), *args], input=stdin, capture_output=True,
                          text=True, env=environ, timeout=120, start_new_session=True)  # fmt: skip


def one_error_line(done: subprocess.CompletedProcess[str]) -> str:
    assert done.returncode != 0
    assert "Traceback" not in done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    return lines[0]


def test_import_from_stdin_writes_a_private_keystore_that_signs(tmp_path: Path) -> None:
    done = veil("keys", "import", "--dir", str(tmp_path), "--name", "ops", "--json",
                stdin="0x" + KEY + "\n")  # fmt: skip
    assert done.returncode == 0, done.stderr
    entry = json.loads(done.stdout)
    expected = Account.from_key(bytes.fromhex(KEY)).address
    assert entry == {"address": expected, "path": str(tmp_path / "ops.json")}
    assert KEY not in done.stdout + done.stderr
    path = Path(entry["path"])
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ops.json"]  # no temp file left
    document = json.loads(path.read_text())
    assert document["version"] == 3 and document["crypto"]["kdf"] == "scrypt"
    assert Account.decrypt(document, PASSWORD) == bytes.fromhex(KEY)
    # what every chain command's --keystore does with it
    os.environ["VEIL_KEYSTORE_PASSWORD"] = PASSWORD
    try:
        assert resolve_signer(None, path).address == expected
    finally:
        del os.environ["VEIL_KEYSTORE_PASSWORD"]


def test_new_key_in_the_default_dir_never_printed(tmp_path: Path) -> None:
    home = tmp_path / "home"
    done = veil("keys", "new", env={"VEIL_HOME": str(home)})
    assert done.returncode == 0, done.stderr
    keys_dir = home / "keys"
    assert stat.S_IMODE(keys_dir.stat().st_mode) == 0o700
    (path,) = list(keys_dir.iterdir())
    address = Account.from_key(Account.decrypt(json.loads(path.read_text()), PASSWORD)).address
    assert path.name.startswith("UTC--") and path.name.endswith(address[2:].lower())
    assert f"created {address}" in done.stdout and str(path) in done.stdout
    key = Account.decrypt(json.loads(path.read_text()), PASSWORD).hex()
    assert key.removeprefix("0x") not in done.stdout + done.stderr
    listed = veil("keys", "list", "--json", env={"VEIL_HOME": str(home)}, password=None)
    assert json.loads(listed.stdout) == [{"address": address, "path": str(path)}]


def test_list_shows_keystores_and_skips_other_files(tmp_path: Path) -> None:
    assert veil("keys", "import", "--dir", str(tmp_path), stdin=KEY).returncode == 0
    (tmp_path / "notes.json").write_text('{"address": "not a keystore"}')
    (tmp_path / "empty").write_text("")
    (tmp_path / "sub").mkdir()
    done = veil("keys", "list", "--dir", str(tmp_path), password=None)
    assert done.returncode == 0, done.stderr
    address = Account.from_key(bytes.fromhex(KEY)).address
    (line,) = done.stdout.strip().splitlines()
    assert line.startswith(address) and "UTC--" in line
    empty = tmp_path / "none"
    empty.mkdir()
    assert "no keystores" in veil("keys", "list", "--dir", str(empty)).stdout
    assert json.loads(veil("keys", "list", "--dir", str(empty), "--json").stdout) == []


@pytest.mark.parametrize(
    ("args", "stdin", "password", "message"),
    [
        (["import"], KEY[:-1], PASSWORD, "expected 64 hex digits (32 bytes), got 63"),
        (["import"], "zz" * 32, PASSWORD, "expected 64 hex digits"),
        (["import"], "00" * 32, PASSWORD, "out of range for secp256k1"),
        (["import"], "", PASSWORD, "nothing on stdin"),
        (["import"], KEY, None, "set $VEIL_KEYSTORE_PASSWORD"),
        (["new"], "", None, "set $VEIL_KEYSTORE_PASSWORD"),
        (["new"], "", "", "empty"),
        (["new", "--name", "../escape"], "", PASSWORD, "key name '../escape'"),
        (["new", "--dir", "{tmp}/missing"], "", PASSWORD, "does not exist"),
    ],
)  # fmt: skip
def test_refusals_are_one_line_and_write_nothing(
    tmp_path: Path, args: list[str], stdin: str, password: str | None, message: str
) -> None:
    args = [a.format(tmp=tmp_path) for a in args]
    if "--dir" not in args:
        args += ["--dir", str(tmp_path)]
    done = veil("keys", *args, stdin=stdin, password=password)
    line = one_error_line(done)
    assert message in line
    assert KEY not in done.stdout + done.stderr and KEY[:-1] not in done.stderr
    assert list(tmp_path.iterdir()) == []


def test_the_same_key_twice_or_a_taken_name_is_refused(tmp_path: Path) -> None:
    assert veil("keys", "import", "--dir", str(tmp_path), "--name", "a", stdin=KEY).returncode == 0
    before = sorted(tmp_path.iterdir())
    again = veil("keys", "import", "--dir", str(tmp_path), "--name", "b", stdin=KEY)
    assert "already in" in one_error_line(again)
    taken = veil("keys", "new", "--dir", str(tmp_path), "--name", "a")
    assert "already exists" in one_error_line(taken)
    assert sorted(tmp_path.iterdir()) == before


def test_wallet_balance_reads_a_keystore_address_without_password_or_chain(
    tmp_path: Path,
) -> None:
    """A file that is not a keystore is named as such, before any password or RPC."""
    junk = tmp_path / "junk.json"
    junk.write_text('{"hello": "world"}')
    dead = tmp_path / "dep.json"
    dead.write_text('{"network": "t", "chain_id": 73217, "rpc_url": "http://127.0.0.1:9", '
                    '"contracts": {}}')  # fmt: skip
    done = veil("wallet", "balance", "--keystore", str(junk), "-d", str(dead), password=None)
    assert f"keystore {junk}: not a keystore" in one_error_line(done)
    assert veil("keys", "import", "--dir", str(tmp_path), "--name", "k", stdin=KEY).returncode == 0
    done = veil("wallet", "balance", "--keystore", str(tmp_path / "k.json"), "-d", str(dead),
                password=None)  # fmt: skip
    # the address was read without a password; only the dead RPC stops it
    assert "no answer" in one_error_line(done)
