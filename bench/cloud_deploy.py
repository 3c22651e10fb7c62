"""Deploy to running with the process runtime: p50 and p99 over repeated deploys.

The whole path runs for real, each service on its own port in this process: the control
plane (SQLite, scheduler loop), the KMS (devnet policy, simulated quotes), and a worker's
app loop with the process runtime, run as `veil worker run` runs it (`AppLoop.run`, the
CLI's default 3 s sync interval): idle syncs long-poll, so the worker hears of a commit
when it happens. The same loop sleeping between syncs (`long_poll=False`, how it worked
before) is measured after it for comparison: one JSON line each. Each run provisions an app,
seals a secret to the KMS-signed key, commits, and times commit -> `running` as the
customer sees it (`GET /v1/apps/{id}`), then deletes it. The app is a small Python HTTP
server (tests/cloud/runtime/echo_app.py), so the figure includes its process start.

Target (issue 12): p50 under 1 s.

Run: .venv/bin/python bench/cloud_deploy.py [--runs 10] [--interval 3] [--only-long-poll]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import socket
import statistics
import sys
import tempfile
import threading
import time
import tomllib
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from eth_account import Account

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "services" / "cloud"))

from cloud_kit import Clock, CloudKit  # noqa: E402

from veil.cloud.agent import AppLoop, SyncClient  # noqa: E402
from veil.cloud.app_keys import RootSecret  # noqa: E402
from veil.cloud.envcrypt import encrypt_env  # noqa: E402
from veil.cloud.kms import devnet_kms_policy  # noqa: E402
from veil.cloud.runtime.process import ProcessRuntime  # noqa: E402
from veil.compute.quote_source import Simulator  # noqa: E402
from veil.services.cloud.app import create_app as create_cloud  # noqa: E402
from veil.services.cloud.service import CloudConfig  # noqa: E402
from veil.services.kms.server import create_app as create_kms  # noqa: E402
from veil.services.kms.service import KmsState  # noqa: E402
from veil.tee.policy import policy_from_dict  # noqa: E402

ECHO_APP = str(ROOT / "tests" / "cloud" / "runtime" / "echo_app.py")
WORKER = Account.from_key(hashlib.sha256(b"veil bench deploy worker").digest())
PROVIDER = Account.from_key(hashlib.sha256(b"veil bench deploy provider").digest()).address
COMPOSE = f"""services:
  web:
    image: python:3.12-slim
    command: ["{sys.executable}", "{ECHO_APP}", "${{PORT:-8080}}"]
    environment:
      GREETING: ${{GREETING}}
    ports:
      - "8080"
"""


class Served:
    """An ASGI app on a free port in a thread."""

    def __init__(self, app: Any) -> None:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = int(probe.getsockname()[1])
        self.server = uvicorn.Server(
            uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning")
        )
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        while not self.server.started:
            time.sleep(0.01)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def close(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--interval", type=float, default=3.0, help="worker sync interval (s)")
    parser.add_argument("--only-long-poll", action="store_true", help="skip the comparison")
    args = parser.parse_args()
    for long_poll in (True,) if args.only_long_poll else (True, False):
        print(json.dumps(measure(args.runs, args.interval, long_poll)), flush=True)


def measure(runs: int, interval: float, long_poll: bool) -> dict[str, Any]:
    tmp = Path(tempfile.mkdtemp(prefix="veil-deploy-bench-"))
    allowed: set[tuple[str, str]] = set()
    kms = Served(
        create_kms(
            KmsState(
                RootSecret(hashlib.sha256(b"bench kms root").digest()),
                policy_from_dict(tomllib.loads(devnet_kms_policy())),
                lambda app_id: "0x" + "00" * 20,
                lambda app_id, compose_hash: (app_id, compose_hash) in allowed,
                lambda worker: worker == WORKER.address,
            )
        )
    )
    config = CloudConfig(
        db_url=f"sqlite:///{tmp / 'cloud.sqlite'}",
        kms_url=kms.url,
        siwe_domain="testserver",
        scheduler_interval=0.2,
    )
    control_plane = Served(create_cloud(config))
    runtime = ProcessRuntime(tmp / "worker", stop_grace=2)
    loop = AppLoop(
        client=SyncClient(control_plane.url, WORKER),
        runtime=runtime,
        source=Simulator(),
        provider=PROVIDER,
        capacity={"vcpu": 8, "memory_mb": 16384, "disk_gb": 200, "gpu_model": 0, "gpu_count": 0},
        interval=interval,
        long_poll=long_poll,
    )
    stop = threading.Event()
    thread = threading.Thread(target=loop.run, kwargs={"stop": stop}, daemon=True)
    thread.start()
    while not loop.client.version:  # the worker has announced itself and its capacity
        time.sleep(0.01)
    customer = httpx.Client(base_url=control_plane.url, timeout=10)
    kit = CloudKit(customer, config, Clock())  # type: ignore[arg-type]
    headers = kit.key("alice")
    times: list[float] = []
    try:
        for run in range(runs):
            offer = kit.provision("alice", f"bench{run}", compose=COMPOSE).json()
            app_id = offer["app_id"]
            allowed.add((app_id.lower(), offer["compose_hash"].lower()))
            sealed = encrypt_env({"GREETING": "hi"}, bytes.fromhex(offer["env_public_key"]))
            started = time.perf_counter()
            committed = kit.commit("alice", offer, encrypted_env=sealed)
            assert committed.status_code == 200, committed.text
            while True:
                status = customer.get(f"/v1/apps/{app_id}", headers=headers).json()
                if status["status"] == "running":
                    break
                if status["status"] == "failed" or time.perf_counter() - started > 30:
                    raise SystemExit(f"deploy {run} did not run: {status}")
                time.sleep(0.01)
            times.append(time.perf_counter() - started)
            customer.delete(f"/v1/apps/{app_id}", headers=headers)
            time.sleep(0.2)  # the worker removes it (its long-poll answers the delete)
    finally:
        stop.set()
        thread.join(timeout=interval + 15)
        for deployment_id in runtime.deployments():
            runtime.remove(deployment_id)
        customer.close()
        control_plane.close()
        kms.close()
    times.sort()
    return {
        "bench": "cloud_deploy_to_running",
        "runtime": "process (SIMULATED)",
        "runs": len(times),
        "p50_s": round(statistics.median(times), 3),
        "p99_s": round(times[min(len(times) - 1, int(0.99 * len(times)))], 3),
        "max_s": round(times[-1], 3),
        "target_met": statistics.median(times) < 1.0,
        "worker_sync_interval_s": interval,
        "long_poll": long_poll,
        "load_average_1m": os.getloadavg()[0],
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
    }


if __name__ == "__main__":
    main()
