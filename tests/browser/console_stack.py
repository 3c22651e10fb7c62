"""A whole console stack on loopback: the control plane (uvicorn, SQLite), a worker running
the real app loop with the process runtime and telemetry, and a customer's API key.

The KMS is the control-plane tests' fake (env pubkey only); the worker's env opener hands
the app an empty env, since these tests watch monitoring, not key release.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from eth_account import Account
from fastapi.testclient import TestClient

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "services" / "cloud"))
from cloud_kit import fake_kms

from veil.cloud.agent import AppLoop, SyncClient
from veil.cloud.runtime.process import ProcessRuntime
from veil.cloud.telemetry import TelemetryShipper
from veil.compute.quote_source import Simulator
from veil.services.cloud.app import create_app
from veil.services.cloud.auth import issue_key
from veil.services.cloud.service import CloudConfig

CHATTY = str(Path(__file__).with_name("chatty_app.py"))
CUSTOMER = Account.from_key(hashlib.sha256(b"veil console customer").digest())
WORKER = Account.from_key(hashlib.sha256(b"veil console worker").digest())
PROVIDER = Account.from_key(hashlib.sha256(b"veil console provider").digest())
SCREENSHOTS = Path(__file__).resolve().parents[2] / "build" / "screenshots"
CAPACITY = {"vcpu": 8, "memory_mb": 16384, "disk_gb": 200, "gpu_model": 0, "gpu_count": 0}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def chatty_compose(boot_seconds: float = 2.0) -> str:
    service = {
        "image": "python:3.12-slim",
        "command": [sys.executable, CHATTY, "${PORT:-8080}", str(boot_seconds)],
        "ports": ["8080"],
    }
    return json.dumps({"services": {"web": service}})


class ConsoleStack:
    def __init__(self, root: Path, *, worker: bool = True, interval: float = 0.3) -> None:
        root.mkdir(parents=True, exist_ok=True)
        self.config = CloudConfig(
            db_url=f"sqlite:///{root / 'cloud.sqlite'}",
            kms_url="http://kms",
            scheduler_interval=0.5,
            kms_client=TestClient(fake_kms()),
        )
        self.asgi = create_app(self.config)
        self.port = free_port()
        self.server = uvicorn.Server(
            uvicorn.Config(self.asgi, host="127.0.0.1", port=self.port, log_level="warning")
        )
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 15
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("control plane did not start")
            time.sleep(0.02)
        state = self.asgi.state.cloud
        with state.sessions() as session, session.begin():
            _, self.api_key = issue_key(
                session, CUSTOMER.address, ["apps:read", "apps:write"], "console", state.now()
            )
        self.http = httpx.Client(
            base_url=self.url, headers={"Authorization": f"Bearer {self.api_key}"}, timeout=10
        )
        self.runtime = ProcessRuntime(root / "worker", stop_grace=2)
        self.stop = threading.Event()
        self.loop: AppLoop | None = None
        self.loop_thread: threading.Thread | None = None
        if worker:
            self.loop = AppLoop(
                client=SyncClient(self.url, WORKER),
                runtime=self.runtime,
                source=Simulator(),
                provider=PROVIDER.address,
                capacity=CAPACITY,
                open_env=lambda _deployment, _source: {},
                interval=interval,
                telemetry=TelemetryShipper(self.url, WORKER, disk_path=str(root)),
            )
            self.loop.round(0)  # the worker is known before anything is deployed
            self.loop_thread = threading.Thread(
                target=self.loop.run, kwargs={"stop": self.stop}, daemon=True
            )
            self.loop_thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def deploy(self, name: str, compose: str) -> dict[str, Any]:
        provisioned = self.http.post(
            "/v1/apps/provision",
            json={
                "name": name,
                "compose": compose,
                "instance_type": "tdx.small",
                "allowed_envs": [],
            },
        )
        assert provisioned.status_code == 200, provisioned.text
        body = provisioned.json()
        committed = self.http.post(
            f"/v1/apps/{body['app_id']}/commit",
            json={"provision_id": body["provision_id"], "encrypted_env": "", "env_keys": []},
        )
        assert committed.status_code == 200, committed.text
        return dict(committed.json())

    def app(self, app_id: str) -> dict[str, Any]:
        return dict(self.http.get(f"/v1/apps/{app_id}").json())

    def wait_state(self, app_id: str, state: str, timeout: float = 30) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            current = self.app(app_id)
            if current["status"] == state:
                return current
            time.sleep(0.1)
        raise AssertionError(f"app {app_id} not {state} in {timeout} s: {current}")

    def close(self) -> None:
        self.stop.set()
        if self.loop_thread is not None:
            self.loop_thread.join(timeout=10)
        for deployment_id in self.runtime.deployments():
            self.runtime.remove(deployment_id)
        self.http.close()
        self.server.should_exit = True
        self.thread.join(timeout=10)
        self.asgi.state.cloud.engine.dispose()


def shoot(page: object, name: str) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)  # type: ignore[attr-defined]
    return path


if __name__ == "__main__":  # a stack to look at by hand: python tests/browser/console_stack.py
    import tempfile

    stack = ConsoleStack(Path(tempfile.mkdtemp(prefix="veil-console-")))
    stack.deploy(os.environ.get("APP_NAME", "inference-api"), chatty_compose())
    print(f"{stack.url}/console/  API key: {stack.api_key}", flush=True)
    try:
        threading.Event().wait()
    finally:
        stack.close()
