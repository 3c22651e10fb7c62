"""`veil kms serve` refuses bad input in one line, before creating anything."""

from __future__ import annotations

import json
import subprocess

from veil.devnet.demo import veil_executable


class _Run:
    def __init__(self, done: subprocess.CompletedProcess[str]) -> None:
        self.exit_code = done.returncode
        self.output = done.stdout + done.stderr


def invoke(args: list[str]) -> _Run:
    done = subprocess.run([str(veil_executable()), *args], capture_output=True, text=True,
                          timeout=120)  # fmt: skip
    return _Run(done)


def _deployment(path):
    path.write_text(json.dumps({
        "network": "t", "chain_id": 31337, "rpc_url": "http://127.0.0.1:1",
        "contracts": {"AppAuth": {"address": "0x" + "11" * 20, "abi": []},
                      "ComputeRegistry": {"address": "0x" + "22" * 20, "abi": []}},
    }))  # fmt: skip
    return path


def test_policy_and_devnet_together_are_refused(tmp_path):
    root = tmp_path / "root.hex"
    done = invoke(["kms", "serve", "--root-secret-file", str(root),
                               "--devnet", "--policy", str(tmp_path / "p.toml")])  # fmt: skip
    assert done.exit_code == 2 and "give --policy or --devnet" in done.output
    assert not root.exists()


def test_missing_deployment_creates_no_root_secret(tmp_path):
    root = tmp_path / "root.hex"
    done = invoke(["kms", "serve", "--root-secret-file", str(root),
                               "-d", str(tmp_path / "none.json")])  # fmt: skip
    assert done.exit_code != 0 and "not found" in done.output
    assert "Traceback" not in done.output and not root.exists()


def test_bad_policy_file_is_one_line(tmp_path):
    policy = tmp_path / "p.toml"
    policy.write_text("allow_simulated = 'yes'\n")
    done = invoke(["kms", "serve", "--root-secret-file", str(tmp_path / "r.hex"),
                               "--policy", str(policy),
                               "-d", str(_deployment(tmp_path / "d.json"))])  # fmt: skip
    assert done.exit_code == 2 and "allow_simulated: expected true or false" in done.output


def test_unreadable_root_secret_is_one_line(tmp_path):
    root = tmp_path / "root.hex"
    root.write_text("not a secret\n")
    done = invoke(["kms", "serve", "--root-secret-file", str(root),
                               "-d", str(_deployment(tmp_path / "d.json"))])  # fmt: skip
    assert done.exit_code == 2 and "root secret" in done.output and "64 hex" in done.output
    assert done.output.count("\n") == 1 and "Traceback" not in done.output
