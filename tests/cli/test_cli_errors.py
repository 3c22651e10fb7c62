"""Bad input at the command line: one `error:` line naming the problem, non-zero, no traceback."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from veil.demo import veil_executable


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(veil_executable()), *args], capture_output=True, text=True,
                          timeout=60)  # fmt: skip


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["stake", "deposit", "10", "--account", "alice", "-d", "{missing}"], 2,
         "error: deployment {missing}: not found"),
        (["stake", "deposit", "1.0000000000000000001", "--account", "alice", "-d", "{dep}"], 2,
         "more than 18 decimals"),
        (["stake", "deposit", "10", "--account", "mallory", "-d", "{dep}"], 2,
         "not a devnet name"),
        (["gov", "vote", "1", "maybe", "-d", "{dep}"], 2, "choose for, against or abstain"),
        (["devnet", "down", "--home", "{tmp}"], 1, "error: devnet is not running"),
        (["migrate", "snapshot", "--raw-state", "{missing}", "--out", "{tmp}/s.json"], 2,
         "{missing}"),
    ],
)  # fmt: skip
def test_one_line_errors(tmp_path: Path, args: list[str], code: int, message: str) -> None:
    dep = tmp_path / "dep.json"
    dep.write_text(
        '{"network": "t", "chain_id": 73217, "rpc_url": "http://127.0.0.1:9", "contracts": {}}'
    )
    names = {"missing": str(tmp_path / "missing.json"), "dep": str(dep), "tmp": str(tmp_path)}
    done = run(*[a.format(**names) for a in args])
    assert done.returncode == code, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert message.format(**names) in lines[0]
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "s.json").exists()


def test_claim_with_a_bad_signature_fails_before_any_chain_call(tmp_path: Path) -> None:
    """The claim client checks the binding locally: no attester, no RPC is bothered."""
    from veil.atomic import write_json
    from veil.migration.merkle import build_tree
    from veil.migration.synthetic import keypair
    from veil.substrate import ss58

    holder = keypair("sr25519", b"\x01" * 32)
    tree = build_tree([(0, holder.account, 10**18, 0)],
                      {"ledger": {"snapshot": {"genesis_hash": "0x" + "11" * 32}}})  # fmt: skip
    write_json(tmp_path / "tree.json", tree.dump())
    dep = tmp_path / "dep.json"
    dep.write_text('{"network": "t", "chain_id": 73217, "rpc_url": "http://127.0.0.1:9", '
                   '"contracts": {"Migrator": {"address": "0x' + "ab" * 20 + '", "abi": []}}}')
    done = run("migrate", "claim", "--tree", str(tmp_path / "tree.json"),
               "--account", ss58.encode(holder.account), "--to", "0x" + "cd" * 20,
               "--signature", "0x" + "00" * 64, "--attester", "http://127.0.0.1:9",
               "--from", "dave", "-d", str(dep))  # fmt: skip
    assert done.returncode == 1, done.stderr
    assert "not a valid" in done.stderr and len(done.stderr.strip().splitlines()) == 1
    assert "no answer" not in done.stderr
