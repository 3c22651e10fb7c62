"""The whole cloud path in one process set: customer -> control plane -> worker -> gateway.

Real control plane (SQLite), real KMS, the worker's app loop with the process runtime, and
the gateway, each on its own port. The customer provisions, encrypts a secret to the
KMS-signed key, commits; the scheduler places the app on the worker; the worker fetches
its keys with a quote claiming the compose hash, runs it, reports running; the gateway
reaches it by path and by host; delete removes it from the worker.
"""

from __future__ import annotations

import hashlib
import sys
import time
import tomllib
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from eth_account import Account
from gateway_kit import ServerThread

from veil.cloud.agent import AppLoop, SyncClient
from veil.cloud.app_keys import RootSecret
from veil.cloud.envcrypt import encrypt_env
from veil.cloud.kms import devnet_kms_policy
from veil.cloud.runtime.process import ProcessRuntime
from veil.compute.quote_source import Simulator
from veil.services.cloud.app import create_app as create_cloud
from veil.services.cloud.service import CloudConfig
from veil.services.gateway.proxy import Gateway, RouteTable
from veil.services.kms.server import create_app as create_kms
from veil.services.kms.service import KmsState
from veil.tee.policy import policy_from_dict

TESTS = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(TESTS / "services" / "cloud"))
sys.path.insert(0, str(TESTS / "cloud" / "runtime"))
from cloud_kit import Clock, CloudKit  # noqa: E402

ECHO_APP = str(TESTS / "cloud" / "runtime" / "echo_app.py")
TOKEN = "path-test-gateway-token"
WORKER = Account.from_key(hashlib.sha256(b"veil cloud path worker").digest())
PROVIDER = Account.from_key(hashlib.sha256(b"veil cloud path provider").digest()).address
COMPOSE = f"""services:
  web:
    image: python:3.12-slim
    command: ["{sys.executable}", "{ECHO_APP}", "${{PORT:-8080}}"]
    environment:
      GREETING: ${{GREETING}}
    ports:
      - "8080"
"""


@pytest.fixture
def cloud(tmp_path: Path) -> Iterator[dict]:
    allowed: set[tuple[str, str]] = set()
    kms_state = KmsState(
        RootSecret(hashlib.sha256(b"cloud path kms root").digest()),
        policy_from_dict(tomllib.loads(devnet_kms_policy())),
        lambda app_id: "0x" + "00" * 20,
        lambda app_id, compose_hash: (app_id, compose_hash) in allowed,
        lambda worker: worker == WORKER.address,
    )
    kms = ServerThread(create_kms(kms_state))
    config = CloudConfig(
        db_url=f"sqlite:///{tmp_path / 'cloud.sqlite'}",
        kms_url=kms.url,
        gateway_token=TOKEN,
        siwe_domain="testserver",
        scheduler_interval=0.2,
    )
    control_plane = ServerThread(create_cloud(config))
    gateway = ServerThread(
        Gateway(RouteTable(control_plane.url, TOKEN, ttl=0.2), domain="apps.test")
    )
    runtime = ProcessRuntime(tmp_path / "worker", stop_grace=2)
    loop = AppLoop(
        client=SyncClient(control_plane.url, WORKER),
        runtime=runtime,
        source=Simulator(),
        provider=PROVIDER,
        capacity={"vcpu": 4, "memory_mb": 8192, "disk_gb": 50, "gpu_model": 0, "gpu_count": 0},
        interval=0.1,
    )
    customer = httpx.Client(base_url=control_plane.url, timeout=10)
    kit = CloudKit(customer, config, Clock())  # type: ignore[arg-type]
    yield {"allowed": allowed, "kit": kit, "loop": loop, "runtime": runtime,
           "gateway": gateway, "customer": customer}  # fmt: skip
    customer.close()
    for deployment_id in runtime.deployments():
        runtime.remove(deployment_id)
    for server in (gateway, control_plane, kms):
        server.close()


def _app(cloud: dict, app_id: str) -> dict:
    answer = cloud["customer"].get(f"/v1/apps/{app_id}", headers=cloud["kit"].key("alice"))
    assert answer.status_code == 200, answer.text
    return dict(answer.json())


def test_deploy_reach_through_the_gateway_and_delete(cloud: dict):
    kit, loop, runtime = cloud["kit"], cloud["loop"], cloud["runtime"]
    assert loop.round(1).ok  # the worker announces itself and its capacity
    provisioned = kit.provision("alice", "echo", compose=COMPOSE, allowed_envs=["GREETING"])
    assert provisioned.status_code == 200, provisioned.text
    offer = provisioned.json()
    app_id = offer["app_id"]
    cloud["allowed"].add((app_id.lower(), offer["compose_hash"].removeprefix("0x").lower()))
    sealed = encrypt_env({"GREETING": "hello from alice"}, bytes.fromhex(offer["env_public_key"]))
    committed = kit.commit("alice", offer, encrypted_env=sealed)
    assert committed.status_code == 200, committed.text

    started = time.monotonic()
    deadline = started + 30
    while time.monotonic() < deadline:
        outcome = loop.round(2)
        assert not outcome.errors, outcome.errors
        if _app(cloud, app_id).get("status") == "running":
            break
        time.sleep(0.1)
    app = _app(cloud, app_id)
    assert app["status"] == "running", app
    gateway = cloud["gateway"].url
    by_path = httpx.get(f"{gateway}/apps/{app_id}/8080/env/GREETING", timeout=10)
    assert by_path.status_code == 200 and by_path.text == "hello from alice"
    host = f"{app_id[2:].lower()}-8080.apps.test"
    by_host = httpx.get(f"{gateway}/env/VEIL_SIMULATED", headers={"Host": host}, timeout=10)
    assert by_host.text == "1"

    deleted = cloud["customer"].delete(f"/v1/apps/{app_id}", headers=kit.key("alice"))
    assert deleted.status_code in (200, 202, 204), deleted.text
    deadline = time.monotonic() + 20
    while runtime.deployments() and time.monotonic() < deadline:
        loop.round(3)
        time.sleep(0.1)
    assert runtime.deployments() == []
    gone = httpx.get(f"{gateway}/apps/{app_id}/8080/", timeout=10)
    assert gone.status_code in (404, 503) and gone.json()["code"] in (
        "app_not_found", "app_not_running")  # fmt: skip


def test_the_running_loop_hears_of_a_commit_and_a_delete_long_before_its_interval(cloud: dict):
    """`AppLoop.run` as `veil worker run` runs it: idle syncs are held at the control plane,
    so with a 4 s interval the app runs and goes away within about a second of each call."""
    import threading

    kit, loop, runtime = cloud["kit"], cloud["loop"], cloud["runtime"]
    loop.interval = 4.0
    syncs: list[float] = []
    plain = loop.client.sync

    def counted(body: dict, wait: float = 0.0) -> list:
        syncs.append(wait)
        return plain(body, wait=wait)

    loop.client.sync = counted  # type: ignore[method-assign]
    stop = threading.Event()
    thread = threading.Thread(target=loop.run, kwargs={"stop": stop})
    thread.start()
    try:
        while not loop.client.version:
            time.sleep(0.02)
        time.sleep(1.0)
        assert len(syncs) <= 3 and syncs[-1] == 4.0  # idle: one held sync, no spinning
        offer = kit.provision("alice", "echo", compose=COMPOSE, allowed_envs=["GREETING"]).json()
        app_id = offer["app_id"]
        cloud["allowed"].add((app_id.lower(), offer["compose_hash"].removeprefix("0x").lower()))
        sealed = encrypt_env({"GREETING": "held"}, bytes.fromhex(offer["env_public_key"]))
        began = time.monotonic()
        assert kit.commit("alice", offer, encrypted_env=sealed).status_code == 200
        while _app(cloud, app_id).get("status") != "running":
            assert time.monotonic() - began < 3.5, _app(cloud, app_id)
            time.sleep(0.05)
        deleted = cloud["customer"].delete(f"/v1/apps/{app_id}", headers=kit.key("alice"))
        assert deleted.status_code == 200, deleted.text
        began = time.monotonic()
        while runtime.deployments():
            assert time.monotonic() - began < 3.5, "the held sync did not answer the delete"
            time.sleep(0.05)
    finally:
        stop.set()
        thread.join(timeout=15)
    assert not thread.is_alive()
