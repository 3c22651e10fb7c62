"""What the AI gateway tests share: the fake backend as a process, the gateway on a real
socket, test policies, a man in the middle. A module of its own name (not conftest) so that
no other test directory's conftest can shadow it."""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import uvicorn

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


@contextmanager
def serving(argv: list[str], port: int, env: dict[str, str] | None = None) -> Iterator[list[str]]:
    """Run `veil ai serve` as a process until the block ends, once `/v1/models` answers 200
    on `port`; the list it yields holds what the process printed (how a user sees the
    gateway start) after the block."""
    process = subprocess.Popen(
        argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env
    )
    printed: list[str] = []
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                answer = httpx.get(f"http://127.0.0.1:{port}/v1/models")
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline and process.poll() is None
                time.sleep(0.2)
        assert answer.status_code == 200
        yield printed
    finally:
        process.terminate()
        output, _ = process.communicate(timeout=20)
        printed.append(output)


def serve_once(argv: list[str], port: int, env: dict[str, str]) -> str:
    """Start `veil ai serve`, wait until it answers, stop it; what it printed."""
    with serving(argv, port, env) as printed:
        pass
    return printed[0]


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


class Meddler(httpx.BaseTransport):
    """A man in the middle: rewrites answers on their way to the client."""

    def __init__(self, rewrite: Callable[[httpx.Request, httpx.Response], httpx.Response]):
        self.inner = httpx.HTTPTransport()
        self.rewrite = rewrite

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = self.inner.handle_request(request)
        response.read()
        return self.rewrite(request, response)


def replace_body(response: httpx.Response, content: bytes) -> httpx.Response:
    headers = {k: v for k, v in response.headers.items() if k.lower() != "content-length"}
    return httpx.Response(response.status_code, headers=headers, content=content)
