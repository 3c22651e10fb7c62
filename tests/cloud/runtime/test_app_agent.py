"""The worker's app loop against an in-process fake control plane speaking layout2's sync."""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from eth_account import Account
from eth_account.messages import encode_defunct
from runtime_kit import ServerThread, deployment, deployment_json
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from veil.cloud.agent import AppLoop, SyncClient, app_quote_source, lease_env
from veil.cloud.lease_gate import LeaseGate
from veil.cloud.runtime import Deployment
from veil.cloud.runtime.process import ProcessRuntime
from veil.cloud.worker_auth import sync_message
from veil.compute.quote_source import QuoteSource, Simulator
from veil.errors import VeilError
from veil.market import runway
from veil.tee.eventlog import parse_event_log

WORKER = Account.from_key(hashlib.sha256(b"veil test worker").digest())
PROVIDER = Account.from_key(hashlib.sha256(b"veil test provider").digest()).address
CAPACITY = {"vcpu": 4, "memory_mb": 8192, "disk_gb": 40, "gpu_model": 0, "gpu_count": 0}


@dataclass
class FakeControlPlane:
    """Checks each sync's signature like the real one and answers the deployments it holds."""

    deployments: list[dict[str, Any]] = field(default_factory=list)
    reports: list[dict[str, Any]] = field(default_factory=list)
    refuse: str | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)

    async def sync(self, request: Request) -> JSONResponse:
        raw = await request.body()
        stamp = int(request.headers["X-Veil-Timestamp"])
        signer = Account.recover_message(
            encode_defunct(text=sync_message(stamp, raw)),
            signature=bytes.fromhex(request.headers["X-Veil-Signature"][2:]),
        )
        body = json.loads(raw)
        if self.refuse:
            return JSONResponse(
                {"code": self.refuse, "message": "refused by test", "request_id": "r-1"}, 403
            )
        if signer != request.headers["X-Veil-Worker"] or signer != body["worker"]:
            return JSONResponse({"code": "bad_signature", "message": "", "request_id": "r"}, 401)
        if abs(stamp - time.time()) > 60:
            return JSONResponse({"code": "stale_timestamp", "message": "", "request_id": "r"}, 401)
        with self.lock:
            self.reports.append(body)
            return JSONResponse({"deployments": list(self.deployments)})

    def last_app(self, deployment_id: str) -> dict[str, Any] | None:
        with self.lock:
            apps = self.reports[-1]["apps"] if self.reports else []
        return next((app for app in apps if app["deployment_id"] == deployment_id), None)


@dataclass
class RecordingOpener:
    """Stands in for the KMS: records the quote each request would carry."""

    env: dict[str, str]
    fail: str | None = None
    calls: list[tuple[Deployment, QuoteSource]] = field(default_factory=list)

    def __call__(self, item: Deployment, source: QuoteSource) -> dict[str, str]:
        self.calls.append((item, source))
        if self.fail:
            raise VeilError(self.fail)
        return dict(self.env)


@pytest.fixture
def control_plane() -> Iterator[tuple[FakeControlPlane, ServerThread]]:
    fake = FakeControlPlane()
    server = ServerThread(
        Starlette(routes=[Route("/v1/workers/sync", fake.sync, methods=["POST"])])
    )
    yield fake, server
    server.close()


@pytest.fixture
def runtime(tmp_path: Path) -> Iterator[ProcessRuntime]:
    engine = ProcessRuntime(tmp_path / "state", stop_grace=2)
    yield engine
    for deployment_id in engine.deployments():
        engine.remove(deployment_id)


def _loop(server: ServerThread, runtime: ProcessRuntime, opener: RecordingOpener) -> AppLoop:
    return AppLoop(
        client=SyncClient(server.url, WORKER),
        runtime=runtime,
        source=Simulator(),
        provider=PROVIDER,
        capacity=CAPACITY,
        open_env=opener,
        interval=0.1,
        retry_after=0.5,
    )


def _until(loop: AppLoop, fake: FakeControlPlane, deployment_id: str, state: str) -> dict:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        loop.round(0)
        app = fake.last_app(deployment_id)
        if app is not None and app["state"] == state:
            return app
        time.sleep(0.05)
    raise AssertionError(f"{deployment_id} never reported {state}: {fake.last_app(deployment_id)}")


def test_deploy_run_report_update_stop_and_remove(control_plane, runtime):
    fake, server = control_plane
    opener = RecordingOpener({"SECRET": "from-the-kms"})
    loop = _loop(server, runtime, opener)
    first = loop.round(1)
    assert first.ok and first.deployments == 0
    body = fake.reports[-1]
    assert body["worker"] == WORKER.address and body["provider"] == PROVIDER
    assert body["runtime"] == "process" and body["simulated"] is True
    assert body["capacity"] == CAPACITY and body["apps"] == []

    item = deployment()
    fake.deployments = [deployment_json(item)]
    started = loop.round(2)
    assert started.started == ["dep-1"], started.errors
    # the key request carried a quote whose RTMR3 log names this app's compose hash
    ((asked, source),) = opener.calls
    assert asked.compose_hash == item.compose_hash
    evidence = json.loads(source.evidence(bytes(64)))
    events = {e.event: e.payload.hex() for e in parse_event_log(evidence["event_log"])}
    assert events["compose-hash"] == item.compose_hash
    assert events["app-id"] == item.app_id[2:]

    app = _until(loop, fake, "dep-1", "running")
    assert app["boot_progress"] == 100 and app["simulated"] is True and app["error"] is None
    reply = httpx.get(f"http://{app['ports']['8080']}/env/SECRET", timeout=5)
    assert reply.text == "from-the-kms"
    attestation = app["attestation"]
    assert attestation["compose_hash"] == item.compose_hash
    assert attestation["worker"] == WORKER.address and attestation["simulated"] is True
    assert attestation["quote"] and attestation["event_log"] and attestation["os_image_hash"]
    assert len(opener.calls) == 1  # running in this revision: no second key request

    # an update (new encrypted env) restarts it with the new env
    updated = deployment(encrypted_env="02")
    opener.env = {"SECRET": "rotated"}
    fake.deployments = [deployment_json(updated)]
    assert loop.round(3).started == ["dep-1"]
    app = _until(loop, fake, "dep-1", "running")
    assert httpx.get(f"http://{app['ports']['8080']}/env/SECRET", timeout=5).text == "rotated"

    stopped = deployment(encrypted_env="02", desired="stopped")
    fake.deployments = [deployment_json(stopped)]
    assert loop.round(4).stopped == ["dep-1"]
    assert _until(loop, fake, "dep-1", "stopped")["ports"] == {}

    fake.deployments = []
    assert loop.round(5).removed == ["dep-1"]
    loop.round(6)
    assert fake.reports[-1]["apps"] == [] and runtime.deployments() == []


def test_a_key_refusal_is_reported_and_retried(control_plane, runtime):
    fake, server = control_plane
    opener = RecordingOpener({}, fail="kms refused: compose hash not allowed for this app")
    loop = _loop(server, runtime, opener)
    now = [1000.0]
    loop.clock = lambda: now[0]  # retry_after is 0.5 s of this clock
    fake.deployments = [deployment_json(deployment())]
    outcome = loop.round(1)
    assert outcome.errors and "compose hash not allowed" in outcome.errors[0]
    app = _until(loop, fake, "dep-1", "failed")
    assert app["error"] == "kms refused: compose hash not allowed for this app"
    assert runtime.deployments() == []  # nothing started without keys
    assert len(opener.calls) == 1  # not hammering the KMS every round
    now[0] += 0.4
    loop.round(2)
    assert len(opener.calls) == 1
    now[0] += 0.2
    opener.fail = None
    assert loop.round(3).started == ["dep-1"]
    assert _until(loop, fake, "dep-1", "running")["error"] is None


def test_a_boot_failure_reaches_the_control_plane_with_its_diagnosis(control_plane, runtime):
    fake, server = control_plane
    loop = _loop(server, runtime, RecordingOpener({}))
    from runtime_kit import echo_compose

    crash = ["python3", "-c", "import sys; print('no DATABASE_URL'); sys.exit(4)"]
    fake.deployments = [deployment_json(deployment(echo_compose(command=crash)))]
    app = _until(loop, fake, "dep-1", "failed")
    assert "exited with code 4" in app["error"] and "no DATABASE_URL" in app["error"]
    before = len(runtime.deployments())
    loop.round(9)  # a failed boot is not restarted in the same revision
    assert _until(loop, fake, "dep-1", "failed") and len(runtime.deployments()) == before


def test_control_plane_errors_leave_running_apps_alone(control_plane, runtime):
    fake, server = control_plane
    loop = _loop(server, runtime, RecordingOpener({}))
    fake.deployments = [deployment_json(deployment())]
    _until(loop, fake, "dep-1", "running")
    fake.refuse = "worker_not_active"
    outcome = loop.round(7)
    assert outcome.errors == [
        "control plane refused the sync: worker_not_active: refused by test (request r-1)"
    ]
    assert runtime.status("dep-1").state == "running"
    offline = AppLoop(
        client=SyncClient("http://127.0.0.1:9", WORKER, timeout=1),
        runtime=runtime,
        source=Simulator(),
        provider=PROVIDER,
        capacity=CAPACITY,
        open_env=RecordingOpener({}),
    )
    assert "unreachable" in offline.round(1).errors[0]
    assert runtime.status("dep-1").state == "running"


def test_an_unreadable_entry_removes_nothing(control_plane, runtime):
    fake, server = control_plane
    loop = _loop(server, runtime, RecordingOpener({}))
    fake.deployments = [deployment_json(deployment())]
    _until(loop, fake, "dep-1", "running")
    fake.deployments = [{"deployment_id": "x", "app_id": "nope"}]
    outcome = loop.round(8)
    assert outcome.errors == ["deployment 'x': app_id 'nope' is not 20 bytes of hex"]
    assert outcome.removed == [] and runtime.status("dep-1").state == "running"


def test_run_stops_on_the_event(control_plane, runtime):
    _fake, server = control_plane
    loop = _loop(server, runtime, RecordingOpener({}))
    stop = threading.Event()
    rounds: list = []
    thread = threading.Thread(target=lambda: rounds.extend(loop.run(stop=stop)))
    thread.start()
    time.sleep(0.5)
    stop.set()
    thread.join(timeout=5)
    assert not thread.is_alive() and len(rounds) >= 2 and all(r.ok for r in rounds)


def test_the_simulator_claims_the_app_and_hardware_sources_are_untouched():
    item = deployment()
    claimed = app_quote_source(Simulator(), item)
    assert isinstance(claimed, Simulator)
    assert claimed.app.compose_hash.hex() == item.compose_hash

    class Hardware:
        name = "dstack"

        def evidence(self, report_data: bytes, gpu_evidence: bytes | None = None) -> str:
            return "{}"

    hardware = Hardware()
    assert app_quote_source(hardware, item) is hardware


def test_running_is_reported_when_it_happens_not_an_interval_later(control_plane, runtime):
    fake, server = control_plane
    loop = _loop(server, runtime, RecordingOpener({}))
    loop.interval = 30.0
    fake.deployments = [deployment_json(deployment())]
    stop = threading.Event()
    thread = threading.Thread(target=loop.run, kwargs={"stop": stop})
    started = time.monotonic()
    thread.start()
    try:
        deadline = started + 15
        while time.monotonic() < deadline:
            app = fake.last_app("dep-1")
            if app is not None and app["state"] == "running":
                break
            time.sleep(0.02)
        assert app is not None and app["state"] == "running"
        assert time.monotonic() - started < 10  # far less than the 30 s interval
        syncs = len(fake.reports)
        time.sleep(0.5)
        assert len(fake.reports) == syncs  # nothing booting: the loop waits the interval
    finally:
        stop.set()
        thread.join(timeout=10)
    assert not thread.is_alive()


MARKET = "0x" + "cd" * 20
LEASE_FACTS = ("VEIL_LEASE_ID", "VEIL_MARKET", "VEIL_CHAIN_ID")


def _paid(lease_id: int) -> tuple[runway.Lease, int]:
    """Every lease runs and pays this provider (the gate's own rules are tested elsewhere)."""
    lease = runway.Lease(customer="0x" + "33" * 20, provider=PROVIDER, rate=1, fee_rate=0,
                         balance=10**18, last_settled=0, window=100,
                         status=runway.STATUS_BILLING)  # fmt: skip
    return lease, 10


def test_a_billed_app_is_told_its_lease_and_an_unbilled_one_nothing(control_plane, runtime):
    fake, server = control_plane
    opener = RecordingOpener({"SECRET": "from-the-kms"})
    loop = _loop(server, runtime, opener)
    loop.lease_gate = LeaseGate(_paid, PROVIDER, ttl=0, market=MARKET, chain_id=31337)
    billed, plain = deployment(), deployment(deployment_id="dep-2")
    fake.deployments = [
        {**deployment_json(billed), "lease_id": "0x" + "00" * 31 + "2a"},
        {**deployment_json(plain), "lease_id": ""},
    ]
    assert sorted(loop.round(1).started) == ["dep-1", "dep-2"]
    # the facts are not part of what the KMS opens: the decrypted env stays the customer's
    assert all(not asked.platform_env or asked.deployment_id == "dep-1"
               for asked, _ in opener.calls)  # fmt: skip
    app = _until(loop, fake, "dep-1", "running")
    told = {key: httpx.get(f"http://{app['ports']['8080']}/env/{key}", timeout=5).text
            for key in LEASE_FACTS}  # fmt: skip
    assert told == {"VEIL_LEASE_ID": "0x" + "00" * 31 + "2a", "VEIL_MARKET": MARKET,
                    "VEIL_CHAIN_ID": "31337"}  # fmt: skip
    other = _until(loop, fake, "dep-2", "running")
    for key in LEASE_FACTS:
        assert httpx.get(f"http://{other['ports']['8080']}/env/{key}", timeout=5).status_code == 404
    # the same lease again: nothing restarts
    assert loop.round(2).started == []
    # the customer replaced the lease: the app restarts and reads the new one
    fake.deployments[0] = {**fake.deployments[0], "lease_id": "0x" + "00" * 31 + "2b"}
    assert loop.round(3).started == ["dep-1"]
    app = _until(loop, fake, "dep-1", "running")
    reply = httpx.get(f"http://{app['ports']['8080']}/env/VEIL_LEASE_ID", timeout=5)
    assert reply.text == "0x" + "00" * 31 + "2b"


def test_a_worker_without_a_market_tells_no_lease(control_plane, runtime):
    fake, server = control_plane
    loop = _loop(server, runtime, RecordingOpener({}))  # no lease gate: no market to vouch for
    fake.deployments = [{**deployment_json(deployment()), "lease_id": "0x" + "00" * 31 + "2a"}]
    assert loop.round(1).started == ["dep-1"]
    app = _until(loop, fake, "dep-1", "running")
    for key in LEASE_FACTS:
        assert httpx.get(f"http://{app['ports']['8080']}/env/{key}", timeout=5).status_code == 404


def test_lease_env_normalises_the_id_and_refuses_what_it_cannot_vouch_for():
    gate = LeaseGate(_paid, PROVIDER, market=MARKET, chain_id=8453)
    assert lease_env("0x2a", gate) == {
        "VEIL_LEASE_ID": "0x" + "00" * 31 + "2a", "VEIL_MARKET": MARKET, "VEIL_CHAIN_ID": "8453"
    }  # fmt: skip
    assert lease_env("", gate) == {} and lease_env(None, gate) == {}
    assert lease_env("0xnot-hex", gate) == {}
    assert lease_env("0x1" + "00" * 32, gate) == {}  # above uint256
    assert lease_env("0x2a", None) == {}
    assert lease_env("0x2a", LeaseGate(_paid, PROVIDER)) == {}  # a gate that knows no market
