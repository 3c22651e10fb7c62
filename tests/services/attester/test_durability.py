"""A crash loses nothing that was answered 200: the attester process is killed with
SIGKILL in the middle of a load, restarted on the same file, and every binding a client
got an answer for is in the record and answered again, identically."""

from __future__ import annotations

import http.client
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from attester_process import SCHEMES
from binding_kit import body_for, make_holders, post

from veil.attestation.api import BINDINGS as BINDINGS_PATH
from veil.services.attester.store import Store

HOLDERS = 240
HERE = Path(__file__).resolve().parent


def start(db: Path, tmp: Path, name: str) -> tuple[subprocess.Popen[bytes], int]:
    port_file = tmp / f"{name}.port"
    process = subprocess.Popen(
        [sys.executable, str(HERE / "attester_process.py"), str(db), str(port_file), str(HOLDERS)],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    deadline = time.monotonic() + 60
    while not port_file.exists():
        assert process.poll() is None, process.stderr.read() if process.stderr else ""
        assert time.monotonic() < deadline, "attester did not start"
        time.sleep(0.05)
    return process, int(port_file.read_text())


def test_kill_9_mid_load_then_restart_finds_every_answered_binding(tmp_path: Path) -> None:
    holders = make_holders(HOLDERS, SCHEMES)
    bodies = [body_for(h) for h in holders]
    db = tmp_path / "attester.sqlite"
    process, port = start(db, tmp_path, "first")
    answered: dict[str, dict[str, Any]] = {}
    lock = threading.Lock()

    def client(share: list[dict[str, Any]]) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        for body in share:
            try:
                conn.request("POST", BINDINGS_PATH, json.dumps(body).encode(),
                             {"Content-Type": "application/json"})  # fmt: skip
                response = conn.getresponse()
                raw = response.read()
            except (OSError, http.client.HTTPException):
                return  # the attester died under us
            if response.status == 200:
                with lock:
                    answered[body["account"]] = json.loads(raw)

    try:
        threads = [threading.Thread(target=client, args=(bodies[i::4],)) for i in range(4)]
        for t in threads:
            t.start()
        deadline = time.monotonic() + 60
        while len(answered) < 60:
            assert time.monotonic() < deadline, "too slow to answer 60 bindings"
            time.sleep(0.01)
        os.kill(process.pid, signal.SIGKILL)  # mid-load: the clients are still posting
        process.wait(10)
        for t in threads:
            t.join(20)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert 60 <= len(answered) < HOLDERS, "the kill must land mid-load"

    store = Store(db)
    for account, answer in answered.items():
        [row] = store.bindings_for(account)
        assert row["digest"] == answer["digest"]

    restarted, port = start(db, tmp_path, "second")
    try:
        for body in bodies:
            if body["account"] in answered:
                status, again, _ = post(port, body)
                assert status == 200 and again == answered[body["account"]]
        missing = next(b for b in bodies if b["account"] not in answered)
        assert post(port, missing)[0] == 200  # and it resumes serving new ones
        assert store.count("bindings") <= len(answered) + 5  # in flight at the kill, at most
    finally:
        restarted.terminate()
        restarted.wait(10)
