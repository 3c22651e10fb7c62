"""The clone stays clean: a complete npm lockfile and a .gitignore covering what runs write.

`make setup` used to rewrite package-lock.json (the other platforms' anvil packages were
missing), so every fresh clone showed a modified file; these checks keep that from coming
back without a network install in the test.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]

ANVIL = "@foundry-rs/anvil"


def _lock() -> dict[str, dict[str, object]]:
    return json.loads((REPO_ROOT / "package-lock.json").read_text())["packages"]


def test_lockfile_pins_every_platforms_anvil() -> None:
    packages = _lock()
    anvil = packages[f"node_modules/{ANVIL}"]
    optional = anvil["optionalDependencies"]
    assert isinstance(optional, dict) and len(optional) >= 5
    for name, version in optional.items():
        entry = packages.get(f"node_modules/{name}")
        assert entry is not None, f"package-lock.json lacks {name} (run npm install on any OS)"
        assert entry["version"] == version == anvil["version"]
        assert str(entry["integrity"]).startswith("sha512-")
        assert entry.get("optional") is True and entry.get("os") and entry.get("cpu")


def test_lockfile_matches_package_json() -> None:
    declared = json.loads((REPO_ROOT / "package.json").read_text())["dependencies"]
    root = _lock()[""]
    assert root["dependencies"] == declared
    for name, version in declared.items():
        assert _lock()[f"node_modules/{name}"]["version"] == version


def test_setup_installs_from_the_lockfile_without_rewriting_it() -> None:
    recipe = (REPO_ROOT / "Makefile").read_text()
    assert "npm ci " in recipe and "npm install" not in recipe


@pytest.mark.parametrize(
    "written",
    [
        ".veil/demo/state.json",  # veil demo
        ".veil/devnet/anvil.log",  # veil devnet up (default home)
        ".veil/worker/state.json",  # veil worker run
        "deployments/devnet.json",
        "deployments/demo.json",
        "deployments/.devnet.json.x1y2.tmp",  # an atomic write cut short
        "build/lib/veil/__init__.py",  # pip install . (setuptools builds in the tree)
        ".hypothesis/examples/x",
        ".mypy_cache/3.11/x.json",
        "src/veil/__pycache__/x.cpython-311.pyc",
        "bench/results/gas.jsonl.tmp",
    ],
)
def test_files_runs_write_are_ignored(written: str) -> None:
    done = subprocess.run(
        ["git", "check-ignore", "--no-index", "-q", written], cwd=REPO_ROOT, timeout=30
    )
    assert done.returncode == 0, f"{written} would show in `git status`: add it to .gitignore"
