"""Quote sources: configfs-tsm against a fake tree, dstack against a fake socket, simulator.

There is no TDX hardware here. The configfs-tsm test runs against a temporary directory
standing in for /sys/kernel/config/tsm/report, with a thread playing the kernel (it
answers an `inblob` with an `outblob` quote); the dstack test runs against a unix-socket
HTTP server speaking the guest agent's GetQuote/EmitEvent API. Both fakes produce
simulator quotes, so what the sources hand over is checked by the real verifier.
"""

from __future__ import annotations

import hashlib
import json
import socketserver
import threading
import tomllib
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account
from eth_utils import to_canonical_address

from veil.compute.evidence import WORKER_TAG, worker_report_data
from veil.compute.quote_source import ConfigfsTsm, DstackSocket, QuoteError, Simulator
from veil.network.genesis import devnet_policy
from veil.tee import Policy, verify_evidence
from veil.tee.evidence import evidence_from_bytes
from veil.tee.identity import GPU_EVIDENCE_EVENT
from veil.tee.policy import policy_from_dict
from veil.tee.simulator import parse_simulated_quote, simulate

WORKER = Account.from_key(b"\x31" * 32)
REPORT_DATA = worker_report_data(WORKER.address)


def bound_policy() -> Policy:
    policy = policy_from_dict(tomllib.loads(devnet_policy()))
    return policy.binding(content=to_canonical_address(WORKER.address))


def verdict_for(evidence_text: str, policy: Policy | None = None) -> Any:
    evidence = evidence_from_bytes(evidence_text.encode())
    return verify_evidence(evidence, None, policy or bound_policy(), 0)


# --- configfs-tsm --------------------------------------------------------------------


class FakeTsmKernel:
    """Answers each report entry's inblob with a simulated quote, as the TDX guest driver."""

    def __init__(self, root: Path, *, race: bool = False) -> None:
        self.root = root
        self.race = race
        self.stop = threading.Event()
        self.served: list[bytes] = []
        self.thread = threading.Thread(target=self._loop, daemon=True)

    def _loop(self) -> None:
        while not self.stop.is_set():
            for entry in self.root.iterdir():
                inblob, outblob = entry / "inblob", entry / "outblob"
                if inblob.exists() and not outblob.exists():
                    data = inblob.read_bytes()
                    (entry / "provider").write_text("tdx_guest\n")
                    (entry / "generation").write_text("1\n")
                    quote = bytes.fromhex(simulate(data)["quote"])
                    if self.race:  # another writer bumps the generation meanwhile
                        (entry / "generation").write_text("2\n")
                    tmp = entry / ".outblob"
                    tmp.write_bytes(quote)
                    tmp.rename(outblob)
                    self.served.append(data)
            self.stop.wait(0.01)


@pytest.fixture
def tsm(tmp_path: Path) -> Iterator[FakeTsmKernel]:
    root = tmp_path / "tsm" / "report"
    root.mkdir(parents=True)
    kernel = FakeTsmKernel(root)
    kernel.thread.start()
    yield kernel
    kernel.stop.set()
    kernel.thread.join()


def test_configfs_tsm_writes_inblob_and_reads_the_quote(tsm: FakeTsmKernel, tmp_path: Path) -> None:
    event_log = tmp_path / "event_log.json"
    event_log.write_text(simulate(REPORT_DATA)["event_log"])
    text = ConfigfsTsm(tsm.root, event_log=event_log).evidence(REPORT_DATA)
    assert tsm.served == [REPORT_DATA]
    quote = bytes.fromhex(json.loads(text)["quote"])
    assert parse_simulated_quote(quote).measurements.report_data == REPORT_DATA.hex()
    verdict = verdict_for(text)
    assert verdict.accepted, verdict.reasons


def test_configfs_tsm_without_event_log_lacks_the_app_identity(tsm: FakeTsmKernel) -> None:
    text = ConfigfsTsm(tsm.root).evidence(REPORT_DATA)
    assert "event_log" not in json.loads(text)
    verdict = verdict_for(text)
    assert not verdict.accepted
    assert any("event log" in reason for reason in verdict.reasons)


def test_configfs_tsm_refusals(tmp_path: Path) -> None:
    with pytest.raises(QuoteError, match="absent"):
        ConfigfsTsm(tmp_path / "missing").evidence(REPORT_DATA)
    with pytest.raises(QuoteError, match="64"):
        ConfigfsTsm(tmp_path).evidence(b"short")
    with pytest.raises(QuoteError, match="GPU"):
        ConfigfsTsm(tmp_path).evidence(REPORT_DATA, b"{}")
    with pytest.raises(QuoteError, match="no quote"):
        ConfigfsTsm(tmp_path, timeout=0.1).evidence(REPORT_DATA)  # nothing plays the kernel


def test_configfs_tsm_detects_a_concurrent_writer(tmp_path: Path) -> None:
    kernel = FakeTsmKernel(tmp_path, race=True)
    kernel.thread.start()
    try:
        with pytest.raises(QuoteError, match="another process"):
            ConfigfsTsm(tmp_path).evidence(REPORT_DATA)
    finally:
        kernel.stop.set()
        kernel.thread.join()


# --- dstack guest agent socket ---------------------------------------------------------


class FakeGuestAgent(socketserver.ThreadingUnixStreamServer):
    daemon_threads = True

    def __init__(self, path: Path) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.fail_quotes = False
        super().__init__(str(path), _GuestHandler)


class _GuestHandler(BaseHTTPRequestHandler):
    server: FakeGuestAgent

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.server.calls.append((self.path, body))
        if self.path == "/GetQuote" and not self.server.fail_quotes:
            answer = simulate(bytes.fromhex(body["report_data"]))
            payload = json.dumps({k: answer[k] for k in ("quote", "event_log", "report_data",
                                                          "vm_config")}).encode()  # fmt: skip
            status = 200
        elif self.path == "/EmitEvent":
            payload, status = b"", 200
        else:
            payload, status = b'{"error": "quote generation failed"}', 500
        self.send_response(status)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)


@pytest.fixture
def agent_socket(tmp_path: Path) -> Iterator[tuple[Path, FakeGuestAgent]]:
    path = tmp_path / "dstack.sock"
    server = FakeGuestAgent(path)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield path, server
    server.shutdown()
    server.server_close()


def test_dstack_socket_get_quote(agent_socket: tuple[Path, FakeGuestAgent]) -> None:
    path, server = agent_socket
    text = DstackSocket(path).evidence(REPORT_DATA)
    assert server.calls == [("/GetQuote", {"report_data": REPORT_DATA.hex()})]
    verdict = verdict_for(text)
    assert verdict.accepted, verdict.reasons
    assert verdict.report_data == REPORT_DATA.hex()


def test_dstack_socket_binds_gpu_evidence_before_quoting(
    agent_socket: tuple[Path, FakeGuestAgent],
) -> None:
    path, server = agent_socket
    gpu = b'{"claims": []}'
    DstackSocket(path).evidence(REPORT_DATA, gpu)
    emitted = {"event": GPU_EVIDENCE_EVENT, "payload": hashlib.sha256(gpu).hexdigest()}
    assert server.calls[0] == ("/EmitEvent", emitted)
    assert server.calls[1][0] == "/GetQuote"


def test_dstack_socket_failures_are_quote_errors(
    agent_socket: tuple[Path, FakeGuestAgent], tmp_path: Path
) -> None:
    path, server = agent_socket
    server.fail_quotes = True
    with pytest.raises(QuoteError, match="HTTP 500"):
        DstackSocket(path).evidence(REPORT_DATA)
    with pytest.raises(QuoteError, match="GetQuote failed"):
        DstackSocket(tmp_path / "absent.sock", timeout=1).evidence(REPORT_DATA)


# --- simulator ----------------------------------------------------------------------


def test_simulator_evidence_binds_the_worker_and_is_refused_by_default() -> None:
    text = Simulator().evidence(REPORT_DATA)
    assert json.loads(text)["simulated"] is True
    assert verdict_for(text).accepted
    other = Account.from_key(b"\x32" * 32)
    wrong = bound_policy().binding(content=to_canonical_address(other.address))
    assert not verdict_for(text, wrong).accepted
    default = Policy().binding(content=to_canonical_address(WORKER.address))
    assert not verdict_for(text, default).accepted
    assert bound_policy().report_data.tag == WORKER_TAG
