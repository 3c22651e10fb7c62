"""veil installed from its wheel works outside the repository (issue 9, section 2).

The package is built from a copy of the sources (`pip install DIR`, no `-e`) into a fresh
venv in a temporary directory, and every command runs from a working directory outside the
repository with no VEIL_* variable set: the devnet comes up, the migration pipeline runs
from a synthetic parachain state to a root committed by the production genesis, a real TDX
quote verifies, and the devnet goes down. What the commands write lands in that working
directory and nowhere in the checkout. The pip cache makes reinstalling quick; anvil is
taken from PATH (the repository's pinned one), as a user who installed it would have it.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from veil.devnet.accounts import devnet_account
from veil.devnet.anvil import DEVNET_CHAIN_ID, Devnet, free_port

# its own group: it starts its own anvil on a free port, and pip need not wait for the others
pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("packaging")]

REPO_ROOT = Path(__file__).resolve().parents[2]
FIXTURES = REPO_ROOT.parent / "shared" / "fixtures" / "tee"
# anvil's tenth test account: funded on every devnet, never used by the devnet's own deploy.
OPERATOR_KEY = "0x2a871d0798f97d79848a013d4936a73bf4cc922c825d33c1cf7073dff6d409c6"
OPERATOR = "0xa0Ee7A142d267C1f36714E4a8F75612F20a79720"
ATTESTER = devnet_account("attester").address
TDX_NOW = 1750331763  # the fixture collateral's validity (../shared/fixtures/tee/README.md)


def _install(tmp_path: Path) -> Path:
    """A clean venv with veil installed from a copy of the sources; returns its bin/."""
    source = tmp_path / "source"
    shutil.copytree(
        REPO_ROOT / "src",
        source / "src",
        ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"),
    )
    shutil.copy(REPO_ROOT / "pyproject.toml", source)
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    bin_dir = venv / "bin"
    done = subprocess.run(
        [str(bin_dir / "python"), "-m", "pip", "install", "--quiet", str(source)],
        capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    return bin_dir


def test_installed_wheel_runs_devnet_migrate_and_attest_outside_the_repository(
    tmp_path: Path,
) -> None:
    assert FIXTURES.is_dir(), f"{FIXTURES}: the shared TEE fixtures are missing"
    bin_dir = _install(tmp_path)
    work = tmp_path / "work"
    work.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VEIL_", "PYTHON"))}
    env.pop("VIRTUAL_ENV", None)
    env["PATH"] = os.pathsep.join(
        [str(bin_dir), str(REPO_ROOT / "node_modules" / ".bin"), "/usr/bin", "/bin"]
    )
    env["NO_COLOR"] = "1"

    def veil(*args: str, extra: dict[str, str] | None = None) -> str:
        done = subprocess.run(
            [str(bin_dir / "veil"), *args], cwd=work, env={**env, **(extra or {})},
            capture_output=True, text=True, timeout=300,
        )  # fmt: skip
        assert done.returncode == 0, f"veil {' '.join(args)}: {done.stdout}{done.stderr}"
        return done.stdout

    located = subprocess.run(
        [str(bin_dir / "python"), "-c", "import veil; print(veil.__file__)"],
        cwd=work, env=env, capture_output=True, text=True, check=True, timeout=60,
    ).stdout.strip()  # fmt: skip
    assert Path(located).is_relative_to(tmp_path / "venv"), located
    assert Path(located).parent.joinpath("contracts", "migration", "Migrator.vy").is_file()

    devnet = Devnet(work / ".veil" / "devnet")
    try:
        up = json.loads(veil("devnet", "up", "--port", str(free_port()), "--json"))
        assert up["state"] == "started" and up["chain_id"] == DEVNET_CHAIN_ID
        assert (work / "deployments" / "devnet.json").is_file()
        assert (work / ".veil" / "devnet" / "process.json").is_file()

        veil("migrate", "generate-state", "--accounts", "40", "--out", "RAW.json",
             "--positions", "POS.json", "--exclusions", "EXC.json", "--seed", "3")  # fmt: skip
        veil("migrate", "snapshot", "--raw-state", "RAW.json", "--out", "SNAP.json")
        veil("migrate", "ledger", "SNAP.json", "--positions", "POS.json",
             "--exclusions", "EXC.json", "--out", "LEDGER.json")  # fmt: skip
        veil("migrate", "tree", "LEDGER.json", "--out", "TREE.json")
        tree = json.loads((work / "TREE.json").read_text())
        deployed = veil(
            "network", "deploy", "--rpc", up["rpc_url"], "--chain-id", str(DEVNET_CHAIN_ID),
            "--tree", "TREE.json", "--ledger", "LEDGER.json", "--attester", ATTESTER,
            "--threshold", "1", "--guardian", "none", "--out", "deployments/l2.json",
            extra={"VEIL_PRIVATE_KEY": OPERATOR_KEY},
        )  # fmt: skip
        assert tree["veil"]["root"] in deployed
        veil("network", "check", "--deployer", OPERATOR, "-d", "deployments/l2.json")

        quote = ["--quote", str(FIXTURES / "tdx_quote"),
                 "--collateral", str(FIXTURES / "tdx_quote_collateral.json")]  # fmt: skip
        verdict = json.loads(veil("attest", "verify", *quote, "--at", str(TDX_NOW), "--json"))
        assert verdict["accepted"] is True and verdict["tcb_status"] == "UpToDate"

        down = json.loads(veil("devnet", "down", "--json"))
        assert down["state"] == "stopped"
    finally:
        if devnet.running() is not None:
            devnet.stop()
    written = {p.relative_to(work).parts[0] for p in work.iterdir()}
    assert {".veil", "deployments", "TREE.json", "LEDGER.json"} <= written
