"""`veil attester serve` passes its limits to the server: a real process, on a bare anvil
(the attester needs a chain to start; these routes never call it)."""

from __future__ import annotations

import json
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from binding_kit import parse_answer, raw_exchange

from veil.devnet.anvil import Devnet, free_port
from veil.devnet.demo import veil_executable
from veil.network.genesis import devnet_policy

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("anvil")]


@pytest.fixture
def served(tmp_path: Path) -> Iterator[int]:
    devnet = Devnet(tmp_path / "devnet")
    chain = devnet.start(port=free_port())
    deployment = tmp_path / "deployment.json"
    deployment.write_text(json.dumps({
        "network": "scratch", "chain_id": chain.chain_id,
        "rpc_url": f"http://127.0.0.1:{chain.port}",
        "contracts": {"ComputeRegistry": {"address": "0x" + "11" * 20, "abi": []}},
    }))  # fmt: skip
    policy = tmp_path / "policy.toml"
    policy.write_text(devnet_policy())
    port = free_port()
    process = subprocess.Popen(
        [str(veil_executable()), "attester", "serve", "--policy", str(policy),
         "--deployment", str(deployment), "--account", "attester", "--port", str(port),
         "--db", str(tmp_path / "a.sqlite"), "--rate", "1", "--burst", "2",
         "--header-timeout", "0.5"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while True:  # wait by TCP connect, so no request spends a token
            assert process.poll() is None, process.stderr.read() if process.stderr else ""
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert time.monotonic() < deadline, "attester did not start"
                time.sleep(0.1)
        yield port
    finally:
        process.terminate()
        process.wait(10)
        devnet.stop()


def test_serve_applies_rate_limit_and_header_timeout(served: int) -> None:
    url = f"http://127.0.0.1:{served}/v1/health"
    statuses = []
    for _ in range(3):
        try:
            with urllib.request.urlopen(url, timeout=10) as response:
                statuses.append(response.status)
        except urllib.error.HTTPError as error:
            statuses.append(error.code)
            refusal = json.loads(error.read())
            retry_after = error.headers["Retry-After"]
    assert statuses == [200, 200, 429]
    assert refusal["code"] == "rate_limited" and int(retry_after) >= 1

    time.sleep(1.1)  # a token again, for the request that will stall
    started = time.monotonic()
    status, _, answer = parse_answer(raw_exchange(served, [b"GET /v1/health HTTP/1.1\r\n"]))
    assert status == 408 and answer["code"] == "header_timeout"
    assert time.monotonic() - started < 3
