"""`veil rewards` refuses bad input in one line, with no traceback and a non-zero exit."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from veil.devnet.demo import veil_executable


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(veil_executable()), *args], capture_output=True, text=True, timeout=60
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["rewards", "claim", "--as", "eth", "-a", "provider", "-d", "{dep}"],
         "--as eth: must be vpha or pha"),
        (["rewards", "status", "-d", "{missing}"], "deployment {missing}: not found"),
        (["rewards", "close", "3", "-d", "{missing}"], "deployment {missing}: not found"),
    ],
)  # fmt: skip
def test_one_line_errors(tmp_path: Path, args: list[str], message: str) -> None:
    dep = tmp_path / "dep.json"
    dep.write_text(
        '{"network": "t", "chain_id": 73217, "rpc_url": "http://127.0.0.1:9", "contracts": {}}'
    )
    names = {"missing": str(tmp_path / "missing.json"), "dep": str(dep)}
    done = run(*[a.format(**names) for a in args])
    assert done.returncode != 0
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert message.format(**names) in lines[0]
    assert "Traceback" not in done.stderr


def test_help_lists_the_life_cycle() -> None:
    done = run("rewards", "--help")
    assert done.returncode == 0
    for command in ("status", "close", "publish", "finalize", "claim", "audit"):
        assert command in done.stdout
