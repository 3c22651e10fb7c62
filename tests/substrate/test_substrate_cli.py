"""`veil substrate genesis-hash`: the published hash from the real spec; one line on bad input."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from veil.devnet.demo import veil_executable

SPECS = Path(__file__).resolve().parents[2].parent / "shared" / "fixtures" / "substrate" / "specs"
PHALA = "0x1bb969d85965e4bb5a651abbedf21a54b6b31a21f66b5401cc3f1e286268d736"


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(veil_executable()), "substrate", *args], capture_output=True, text=True, timeout=120
    )


def test_genesis_hash_of_the_phala_spec() -> None:
    done = run("genesis-hash", str(SPECS / "phala.json"), "--json")
    assert done.returncode == 0, done.stderr
    record = json.loads(done.stdout)
    assert record["genesis_hash"] == PHALA
    assert record["state_version"] == 0
    assert record["state_version_source"].startswith("runtime phala 1090")
    human = run("genesis-hash", str(SPECS / "phala.json"))
    assert PHALA in human.stdout


def test_bad_input_is_one_line(tmp_path: Path) -> None:
    plain = tmp_path / "plain.json"
    plain.write_text('{"genesis": {"runtime": {"system": {}}}}')
    for args, message in [
        ([str(tmp_path / "missing.json")], "cannot read"),
        ([str(plain)], "not a raw chain spec"),
        ([str(SPECS / "phala.json"), "--state-version", "2"], "must be 0 or 1"),
    ]:
        done = run("genesis-hash", *args)
        assert done.returncode == 2, done.stderr
        assert done.stderr.count("\n") == 1 and message in done.stderr
        assert "Traceback" not in done.stderr
