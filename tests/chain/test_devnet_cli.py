"""`veil devnet` as a user drives it: resume keeps the clock, Ctrl-C and bad input leave
nothing behind (no anvil, no files), each failure is one line."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
from anvil_processes import anvil_pids

from veil.devnet.anvil import _port_busy, free_port
from veil.devnet.demo import veil_executable

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("anvil")]

VEIL = str(veil_executable())


def veil(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([VEIL, *args], capture_output=True, text=True, timeout=300)


def test_down_up_then_stake_after_time_travel(tmp_path: Path) -> None:
    """Issue 8, defect 1, as reported, with a home like the demo's (`.veil/demo`)."""
    home, dep, port = tmp_path / ".veil" / "demo", tmp_path / "demo.json", str(free_port())
    where = ("--home", str(home))
    try:
        for step in (
            ("devnet", "up", "--fresh", *where, "-d", str(dep), "--port", port),
            ("devnet", "advance", "--days", "1", *where),
            ("stake", "deposit", "10", "-a", "alice", "-d", str(dep)),
            ("devnet", "down", *where),
            ("devnet", "up", *where, "-d", str(dep), "--port", port),
            ("stake", "deposit", "10", "-a", "bob", "-d", str(dep)),
        ):
            done = veil(*step)
            assert done.returncode == 0, f"veil {' '.join(step)}:\n{done.stdout}{done.stderr}"
    finally:
        veil("devnet", "down", *where)


def _interrupt_up(args: list[str], when: str, home: Path) -> subprocess.CompletedProcess[str]:
    """Run `veil devnet up ARGS` as a terminal would and press Ctrl-C at `when`.

    The terminal's Ctrl-C goes to the foreground process group: `veil` is started in its
    own group here and the group gets SIGINT (anvil runs in its own session, as for a user).
    """
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen(
        [VEIL, "devnet", "up", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        start_new_session=True,
    )
    assert process.stdout is not None
    deadline = time.monotonic() + 120
    if when == "deploying":
        for line in process.stdout:
            if "deploying" in line:
                break
    else:  # the moment anvil exists, before it answers or while the chain is resumed
        while not anvil_pids(str(home)) and time.monotonic() < deadline:
            time.sleep(0.005)
    os.killpg(process.pid, signal.SIGINT)
    stdout, stderr = process.communicate(timeout=60)
    return subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)


def test_ctrl_c_during_up_leaves_no_anvil_and_no_files(tmp_path: Path) -> None:
    """Issue 8, defect 4: the orphan anvil kept the port and `status`/`down` could not see it."""
    home, dep, port = tmp_path / "home", tmp_path / "dep.json", free_port()
    where = ["--home", str(home), "-d", str(dep), "--port", str(port)]
    done = _interrupt_up(["--fresh", *where], "deploying", home)
    assert done.returncode == 130, done.stderr
    assert "Traceback" not in done.stderr + done.stdout
    assert done.stderr.strip().splitlines() == [
        "error: interrupted: devnet start undone, no anvil left running"
    ]
    assert not anvil_pids(str(home))
    assert not _port_busy(port)
    assert not home.exists() and not dep.exists()

    # the port is free for the next `up`, and resuming a saved chain survives a Ctrl-C
    try:
        assert veil("devnet", "up", *where).returncode == 0
        assert veil("devnet", "down", "--home", str(home)).returncode == 0
        done = _interrupt_up(where, "anvil", home)
        assert done.returncode == 130, done.stdout + done.stderr
        assert "Traceback" not in done.stderr + done.stdout
        assert not anvil_pids(str(home)) and not _port_busy(port)
        assert (home / "state.json").stat().st_size > 0
        again = veil("devnet", "up", *where)
        assert again.returncode == 0 and "devnet resumed" in again.stdout, again.stderr
    finally:
        veil("devnet", "down", "--home", str(home))


@pytest.mark.parametrize("content", ["{}", "[]"])
def test_deployment_file_that_is_not_one(tmp_path: Path, content: str) -> None:
    dep = tmp_path / "dep.json"
    dep.write_text(content)
    home = tmp_path / "home"
    done = veil("devnet", "up", "--home", str(home), "-d", str(dep), "--port", str(free_port()))
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: deployment {dep}: not a deployment")
    assert not home.exists() and not anvil_pids(str(home))
    assert dep.read_text() == content
    done = veil("stake", "deposit", "1", "-a", "alice", "-d", str(dep))
    assert done.returncode == 2 and f"deployment {dep}: not a deployment" in done.stderr


def test_port_out_of_range_is_one_line(tmp_path: Path) -> None:
    done = veil("devnet", "up", "--fresh", "--home", str(tmp_path / "h"), "--port", "70000")
    assert done.returncode == 1
    assert done.stderr.strip() == "error: --port 70000: not a TCP port (use 1 to 65535)"
    assert not (tmp_path / "h").exists()


def test_devnet_commands_speak_json(tmp_path: Path) -> None:
    """Issue 8: --json on every devnet command, with the fields docs/devnet.md lists."""
    import json

    home, dep, port = tmp_path / "home", tmp_path / "dep.json", str(free_port())
    where = ("--home", str(home))
    try:
        up = veil("devnet", "up", *where, "-d", str(dep), "--port", port, "--json")
        assert up.returncode == 0, up.stderr
        started = json.loads(up.stdout)  # nothing but the JSON object on stdout
        assert started["state"] == "started" and started["rpc_url"].endswith(port)
        assert set(started["contracts"]) >= {"PHA", "Vault", "Governor", "Migrator"}
        status = json.loads(veil("devnet", "status", *where, "-d", str(dep), "--json").stdout)
        assert status["running"] and status["chain_id"] == started["chain_id"]
        before = status["time"]["unix"]
        moved = json.loads(veil("devnet", "advance", "--days", "1", *where, "--json").stdout)
        assert moved["advanced_seconds"] == 86_400
        assert moved["time"]["unix"] >= before + 86_400 and moved["time"]["iso"].endswith("Z")
        down = json.loads(veil("devnet", "down", *where, "--json").stdout)
        assert down["state"] == "stopped" and down["pid"] == started["pid"]
        stopped = veil("devnet", "status", *where, "--json")
        assert stopped.returncode == 1 and json.loads(stopped.stdout) == {
            "running": False,
            "home": str(home),
        }
    finally:
        veil("devnet", "down", *where)
