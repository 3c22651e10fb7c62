"""Fixtures: the fake backend as a process, the gateway on a real socket, test policies."""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import uvicorn

from veil.compute.quote_source import Simulator
from veil.inference.embedding import EmbeddingModel
from veil.services.ai.app import Gateway, GatewayConfig, create_app
from veil.tee.policy import OsImage, Policy
from veil.tee.simulator import AppSpec

HERE = Path(__file__).resolve().parent
SIM_APP = AppSpec()


def sim_policy(app: AppSpec = SIM_APP) -> Policy:
    """A policy that accepts the simulator (CI has no TDX) and pins compose + OS image."""
    return Policy(
        allow_simulated=True,
        allowed_compose_hashes=(app.compose_hash.hex(),),
        os_images=(OsImage(name="sim", os_image_hash=app.os_image_hash.hex()),),
    )


def start_backend(tmp: Path, *extra: str) -> tuple[subprocess.Popen[bytes], str]:
    port_file = tmp / f"backend-{time.monotonic_ns()}.port"
    process = subprocess.Popen(
        [sys.executable, str(HERE / "fake_backend.py"), str(port_file), *extra]
    )
    deadline = time.monotonic() + 30
    while not port_file.exists():
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            raise RuntimeError("fake backend did not start")
        time.sleep(0.05)
    return process, f"http://127.0.0.1:{port_file.read_text()}"


@pytest.fixture(scope="session")
def backend_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    process, url = start_backend(tmp_path_factory.mktemp("backend"))
    yield url
    process.terminate()
    process.wait(10)


@pytest.fixture(scope="session")
def embedding_model() -> EmbeddingModel:
    return EmbeddingModel()


@dataclass
class RunningGateway:
    url: str
    gateway: Gateway
    server: uvicorn.Server
    thread: threading.Thread

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(10)


def run_gateway(config: GatewayConfig) -> RunningGateway:
    app = create_app(config)
    sock = socket.socket()
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # as uvicorn's own sockets
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("gateway did not start")
        time.sleep(0.02)
    return RunningGateway(
        f"http://127.0.0.1:{sock.getsockname()[1]}", app.state.gateway, server, thread
    )


@pytest.fixture(scope="module")
def gateway(
    tmp_path_factory: pytest.TempPathFactory, backend_url: str, embedding_model: EmbeddingModel
) -> Iterator[RunningGateway]:
    config = GatewayConfig(
        state_dir=tmp_path_factory.mktemp("gateway"),
        quote_source=Simulator(SIM_APP),
        backend=backend_url,
        embedding_model=embedding_model,
        usage_token="usage-secret",
    )
    running = run_gateway(config)
    yield running
    running.stop()
