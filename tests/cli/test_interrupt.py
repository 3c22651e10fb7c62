"""Ctrl-C (issue 8, defect 4): one line, exit 130, no traceback, no process, no partial file."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from veil.devnet.demo import veil_executable


def test_interrupted_command_prints_one_line_and_leaves_nothing(tmp_path: Path) -> None:
    """A snapshot waiting on a node that never answers, interrupted like a user would."""
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(1)
    port = silent.getsockname()[1]
    out = tmp_path / "snap.json"
    process = subprocess.Popen(
        [str(veil_executable()), "migrate", "snapshot", "--rpc", f"http://127.0.0.1:{port}",
         "--at", "0x" + "11" * 32, "--out", str(out)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
    )  # fmt: skip
    try:
        silent.settimeout(60)
        connection, _ = silent.accept()  # the command is now waiting for an answer
        os.killpg(process.pid, signal.SIGINT)
        _, err = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
        silent.close()
    assert process.returncode == 130, err
    assert "Traceback" not in err and "KeyboardInterrupt" not in err, err
    assert err.strip().splitlines() == ["interrupted"]
    assert list(tmp_path.iterdir()) == []
    connection.close()


SCRIPT = """
import time
from veil.bulkwork import forked

wait = forked(lambda: time.sleep(60) or b"x")
try:  # "ready" inside the try: a SIGINT that lands before wait() is still the parent's
    print("ready", flush=True)
    wait()
except KeyboardInterrupt:
    print("parent interrupted", flush=True)
    time.sleep(1)  # give a child that would print a traceback the time to do it
"""


def test_forked_worker_dies_quietly_with_its_parent() -> None:
    """The bulk steps fork helpers; Ctrl-C reaches the whole group and each helper used to
    print its own KeyboardInterrupt traceback."""
    # As from a terminal: SIGINT at its default. A test runner's worker may ignore it, and an
    # ignored SIGINT is inherited, so Python would install no KeyboardInterrupt handler.
    process = subprocess.Popen(
        [sys.executable, "-c", SCRIPT],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )  # fmt: skip
    assert process.stdout is not None
    assert process.stdout.readline() == "ready\n"
    time.sleep(0.3)
    os.killpg(process.pid, signal.SIGINT)
    out, err = process.communicate(timeout=30)
    assert out == "parent interrupted\n"
    assert "Traceback" not in err, err
    try:
        os.killpg(process.pid, 0)
    except ProcessLookupError:
        pass  # no process of the group is left
    else:
        raise AssertionError("a forked helper outlived its parent")
