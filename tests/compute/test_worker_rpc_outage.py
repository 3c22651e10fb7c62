"""The worker keeps its identity and resumes when the chain's RPC goes away and returns.

The devnet is stopped mid-run (anvil dumps its state) and started again on the same port
(it resumes that state): rounds fail in between, then registration is found intact and
heartbeats continue with fresh sequence numbers.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from compute_kit import ComputeNetwork, RunningAttester, stored_heartbeats

from veil.compute.identity import KEY_FILE
from veil.compute.quote_source import Simulator
from veil.compute.worker import RoundReport, WorkerAgent, WorkerConfig
from veil.devnet.accounts import devnet_account

pytestmark = pytest.mark.xdist_group("compute-anvil")


def wait_for(
    condition: Callable[[], bool], reports: list[RoundReport], timeout: float = 60.0
) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, [r.errors for r in reports]
        time.sleep(0.05)


def test_survives_an_rpc_outage(
    network: ComputeNetwork, attester: RunningAttester, tmp_path: Path
) -> None:
    config = WorkerConfig(
        provider=devnet_account("provider"),
        source=Simulator(),
        attesters=[attester.url],
        state_dir=tmp_path / "w",
        interval=0.1,
        max_backoff=0.5,
        reattest_margin=60,
    )
    agent = WorkerAgent(config, network.registry)
    key = (tmp_path / "w" / KEY_FILE).read_bytes()
    reports: list[RoundReport] = []
    stop = threading.Event()
    thread = threading.Thread(
        target=agent.run, kwargs={"stop": stop, "on_round": reports.append}, daemon=True
    )
    thread.start()
    try:
        wait_for(lambda: len(stored_heartbeats(attester.config, agent.address)) >= 2, reports)
        port = network.devnet.running().port  # type: ignore[union-attr]
        network.devnet.stop()
        down_at = len(reports)
        wait_for(lambda: sum(1 for r in reports[down_at:] if not r.ok) >= 2, reports)
        network.devnet.start(port=port)
        up_at = len(reports)
        wait_for(lambda: any(r.ok for r in reports[up_at:]), reports)
    finally:
        stop.set()
        thread.join(timeout=20)
    outage = [r for r in reports[down_at:up_at] if not r.ok]
    assert outage, "no round failed while the RPC was down"
    after = [r for r in reports[up_at:] if r.ok]
    assert after and all(r.action is None for r in after)  # still registered: no new worker
    assert (tmp_path / "w" / KEY_FILE).read_bytes() == key
    assert sum(1 for r in reports if r.action == "registered") == 1
    assert network.registry.worker(agent.address).active
