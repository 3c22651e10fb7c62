"""The worker agent against a real attester and a real registry on anvil (simulated TEE)."""

from __future__ import annotations

import hashlib
import sqlite3
import stat
import threading
import time
from pathlib import Path

import pytest
from compute_kit import ComputeNetwork, RunningAttester, start_attester, stored_heartbeats

from veil.attestation.client import AttesterClient
from veil.chain.client import event_args
from veil.compute.evidence import EvidenceBundle
from veil.compute.identity import KEY_FILE, load_or_create_identity
from veil.compute.quote_source import Simulator
from veil.compute.worker import RoundReport, WorkerAgent, WorkerConfig
from veil.devnet.accounts import devnet_account
from veil.devnet.anvil import free_port

pytestmark = pytest.mark.xdist_group("compute-anvil")


def make_agent(
    network: ComputeNetwork, attester_urls: list[str], state: Path, **extra: object
) -> WorkerAgent:
    options: dict[str, object] = {"interval": 0.1, "max_backoff": 0.4, "reattest_margin": 60}
    config = WorkerConfig(
        provider=devnet_account("provider"),
        source=Simulator(),
        attesters=attester_urls,
        state_dir=state,
        **{**options, **extra},  # type: ignore[arg-type]
    )
    return WorkerAgent(config, network.registry)


def test_identity_is_created_once_with_private_mode(tmp_path: Path) -> None:
    first = load_or_create_identity(tmp_path / "state")
    key_file = tmp_path / "state" / KEY_FILE
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    before = key_file.read_bytes()
    again = load_or_create_identity(tmp_path / "state")
    assert again.address == first.address and key_file.read_bytes() == before


def test_bounded_run_registers_and_heartbeats(
    network: ComputeNetwork, attester: RunningAttester, tmp_path: Path
) -> None:
    agent = make_agent(network, [attester.url], tmp_path / "w1")
    reports = agent.run(iterations=3)
    assert [r.ok for r in reports] == [True, True, True], [r.errors for r in reports]
    assert reports[0].action == "registered" and reports[1].action is None
    assert [r.sequence for r in reports] == [1, 2, 3]

    record = network.registry.worker(agent.address)
    assert record.registered and record.active
    assert record.provider == devnet_account("provider").address
    assert record.gpu_model == 0 and record.gpu_count == 0
    assert record.expiry == reports[0].expiry

    # the evidence the attester published is the evidence the registry names
    bundle = AttesterClient(attester.url).evidence("0x" + record.evidence_hash.hex())
    assert hashlib.sha256(bundle).digest() == record.evidence_hash
    assert EvidenceBundle.decode(bundle).evidence.startswith("{")

    assert stored_heartbeats(attester.config, agent.address) == [1, 2, 3]
    view = AttesterClient(attester.url).worker(agent.address)
    assert view["registration"]["evidence_hash"] == "0x" + record.evidence_hash.hex()

    # a second agent on the same state dir is the same worker and continues the sequence
    again = make_agent(network, [attester.url], tmp_path / "w1")
    assert again.address == agent.address
    [report] = again.run(iterations=1)
    assert report.ok and report.action is None and report.sequence == 4


def test_reattests_when_expiry_is_near(
    network: ComputeNetwork, attester: RunningAttester, tmp_path: Path
) -> None:
    agent = make_agent(network, [attester.url], tmp_path / "w2", reattest_margin=1_000)
    [first] = agent.run(iterations=1)
    assert first.ok and first.action == "registered", first.errors
    old = network.registry.worker(agent.address)
    time.sleep(1.1)  # the new expiry (attester clock + validity) must be strictly later
    network.chain.advance_time(3_000)  # 600 s of the 3600 s validity left: inside the margin
    [second] = agent.run(iterations=1)
    assert second.ok and second.action == "reattested", second.errors
    new = network.registry.worker(agent.address)
    assert new.expiry > old.expiry and new.active
    with sqlite3.connect(attester.config.db) as db:
        (signed,) = db.execute(
            "SELECT COUNT(*) FROM registrations WHERE worker = ?", (agent.address,)
        ).fetchone()
    assert signed == 2  # the evidence was verified and signed again, not the old one resent
    logs = network.registry.contract.events.WorkerReattested().get_logs(
        from_block=network.chain.w3.eth.block_number - 2
    )
    assert any(log["args"]["worker"] == agent.address for log in logs)


def test_survives_an_attester_restart(
    network: ComputeNetwork, attester: RunningAttester, tmp_path: Path
) -> None:
    agent = make_agent(network, [attester.url], tmp_path / "w3")
    key_before = (tmp_path / "w3" / KEY_FILE).read_bytes()
    reports: list[RoundReport] = []
    stop = threading.Event()
    thread = threading.Thread(
        target=agent.run, kwargs={"stop": stop, "on_round": reports.append}, daemon=True
    )
    thread.start()

    def stored() -> list[int]:
        return stored_heartbeats(attester.config, agent.address)

    def wait_for(condition: object, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while not condition():  # type: ignore[operator]
            assert time.monotonic() < deadline, [r.errors for r in reports]
            time.sleep(0.05)

    wait_for(lambda: len(stored()) >= 2)
    attester.stop()
    down_at = len(reports)
    wait_for(lambda: sum(1 for r in reports[down_at:] if not r.ok) >= 2)
    restarted = attester.restart()
    try:
        before = max(stored())
        wait_for(lambda: max(stored()) > before + 1)
    finally:
        stop.set()
        thread.join(timeout=10)
        restarted.stop()
    failed = [r for r in reports if not r.ok]
    assert failed and all("unreachable" in " ".join(r.errors) for r in failed)
    assert (tmp_path / "w3" / KEY_FILE).read_bytes() == key_before
    sequences = [r.sequence for r in reports if r.sequence is not None]
    assert sequences == sorted(set(sequences))  # never reused, even across the outage
    assert network.registry.worker(agent.address).active


def test_unregistered_attester_signature_is_not_used(
    network: ComputeNetwork, attester: RunningAttester, tmp_path: Path
) -> None:
    """An attester the registry does not know cannot make up the threshold."""
    rogue_config = type(attester.config)(**{**attester.config.__dict__})
    rogue_config.signer = devnet_account("dave")
    rogue_config.db = tmp_path / "rogue.sqlite"
    rogue_config.port = 0
    rogue = start_attester(rogue_config)
    try:
        agent = make_agent(network, [rogue.url], tmp_path / "w4")
        [report] = agent.run(iterations=1)
    finally:
        rogue.stop()
    assert not report.ok and "not registered on chain" in report.errors[0]
    assert not network.registry.worker(agent.address).registered


def test_registration_event_names_the_evidence(
    network: ComputeNetwork, attester: RunningAttester, tmp_path: Path
) -> None:
    agent = make_agent(network, [attester.url], tmp_path / "w5")
    signed, signatures = agent.attest()
    receipt = network.registry.register_worker(devnet_account("provider"), signed, signatures)
    args = event_args(network.registry.contract, receipt, "WorkerRegistered")
    assert args["evidenceHash"] == signed.evidence_hash
    assert args["measurementHash"] == signed.measurement_hash


def test_one_attester_down_of_two_still_registers(
    network: ComputeNetwork, attester: RunningAttester, tmp_path: Path
) -> None:
    """With threshold 1, a dead first attester costs nothing but its heartbeat."""
    dead = f"http://127.0.0.1:{free_port()}"
    agent = make_agent(network, [dead, attester.url], tmp_path / "w6")
    [report] = agent.run(iterations=1)
    assert report.ok and report.action == "registered", report.errors
    assert report.heartbeats == 1
    assert network.registry.worker(agent.address).active
