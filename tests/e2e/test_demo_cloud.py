"""`make demo`'s cloud section as the demo runs it, on its own devnet home.

The section checks what it shows (the app's hash of the secret equals the customer's, the
secret is in neither the control plane's database nor the worker's disk, the update's new
version answers, the deleted app stops routing) and raises otherwise; this test runs it
after the compute section it builds on and then checks that no process it started is left.
"""

from __future__ import annotations

import io
import os
from collections.abc import Sequence
from pathlib import Path

import pytest
from rich.console import Console

from veil.devnet import demo
from veil.devnet.anvil import Devnet, free_port
from veil.errors import VeilError

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("anvil")]


def _run(args: Sequence[str]) -> None:
    from veil.cli.main import app

    code = app(list(args), standalone_mode=False)
    if isinstance(code, int) and code != 0:
        raise VeilError(f"demo step `veil {' '.join(args)}` exited with {code}")


def _processes_naming(path: Path) -> list[str]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            cwd = os.readlink(entry / "cwd")  # the app's processes run in its directory
        except OSError:
            continue
        if str(path) in cmdline or cwd.startswith(str(path)):
            found.append(f"{entry.name}: {cmdline[:200]}")
    return found


def test_the_demo_cloud_section_deploys_updates_deletes_and_stops_everything(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    home, deployment = tmp_path / "demo", tmp_path / "demo.json"
    output = io.StringIO()
    w = demo.Walkthrough(_run, Console(file=output, width=200), home, deployment)
    devnet = Devnet(home)
    saved_home = os.environ.get("VEIL_HOME")
    try:
        demo.bring_up(w, free_port())
        demo.compute(w, home / "compute", attester_port=free_port())
        demo.cloud(w, home / "cloud", home / "compute")
    finally:
        if devnet.running() is not None:
            devnet.stop()
    assert os.environ.get("VEIL_HOME") == saved_home  # the section put the user's home back
    text = output.getvalue() + capsys.readouterr().out  # the commands print on stdout
    shown = ("$ veil cloud login", "verdict: ACCEPTED (SIMULATED)", "updating hello (0x",
             "the secret is not in the worker's disk", '"version": "2"', "-> 404")  # fmt: skip
    for line in shown:
        assert line in text, line
    secret = (home / "cloud" / "hello" / ".env").read_text().split("=", 1)[1].strip()
    assert secret not in text  # the demo shows the hash, never the secret
    assert _processes_naming(tmp_path) == []
