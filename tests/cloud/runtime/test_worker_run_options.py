"""`veil worker run`'s app-loop options refuse bad input in one line, before any chain work."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from veil.cloud.agent import machine_capacity
from veil.devnet.demo import veil_executable

PROVIDER = "0x" + "11" * 20


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--control-plane", "ftp://cp"], "--control-plane 'ftp://cp': expected an http(s) URL"),
        (["--control-plane", "http://cp", "--runtime", "podman"],
         "--runtime podman: expected process, docker, dstack"),
        (["--control-plane", "http://cp", "--runtime", "dstack"],
         "--runtime dstack: needs --vmm URL and --vmm-image NAME"),
        (["--control-plane", "http://cp", "--sync-interval", "0"],
         "--sync-interval: must be positive"),
        (["--control-plane", "http://cp", "--disk-gb", "-1"],
         "--disk-gb: must not be negative"),
        (["--runtime", "docker"],
         "--runtime/--vmm: apps come from a control plane; add --control-plane"),
    ],
)  # fmt: skip
def test_bad_app_loop_options(extra: list[str], message: str, tmp_path: Path):
    done = subprocess.run(
        [str(veil_executable()), "worker", "run", "--provider", PROVIDER,
         "--attester", "http://127.0.0.1:9", "--state-dir", str(tmp_path), *extra],
        capture_output=True, text=True, timeout=60, env={**os.environ, "VEIL_HOME": str(tmp_path)},
    )  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert done.stderr.strip() == f"error: {message}"


def test_machine_capacity_reads_this_machine(tmp_path: Path):
    capacity = machine_capacity(tmp_path / "state", gpu_model=2, gpu_count=0)
    assert capacity["vcpu"] == os.cpu_count()
    assert capacity["memory_mb"] > 64 and capacity["disk_gb"] >= 0
    assert capacity["gpu_model"] == 0 and capacity["gpu_count"] == 0  # no GPU, no model
    assert machine_capacity(tmp_path, gpu_model=2, gpu_count=2)["gpu_model"] == 2
    # what the operator offers, whatever the disk holds
    assert machine_capacity(tmp_path, gpu_model=0, gpu_count=0, disk_gb=7)["disk_gb"] == 7
