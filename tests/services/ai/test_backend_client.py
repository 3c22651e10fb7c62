"""The gateway's client for plain backend calls: key, compression, errors and time limits.

A backend of the test's own records what the gateway sends and answers the awkward cases
(a gzip-compressed body, a 429, a slow answer) that the shared fake backend does not.
"""

from __future__ import annotations

import asyncio
import gzip
import hashlib
import json
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import uvicorn
from ai_kit import SIM_APP, RunningGateway, run_gateway
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from veil.compute.quote_source import Simulator
from veil.services.ai.app import GatewayConfig

SEEN: list[dict[str, str]] = []


async def _chat(request: Request) -> Response:
    SEEN.append(dict(request.headers))
    body = await request.json()
    if body["model"] == "busy":
        return JSONResponse({"error": {"message": "slow down"}}, status_code=429)
    if body["model"] == "slow":
        await asyncio.sleep(3)
    answer = {
        "id": f"chatcmpl-{len(SEEN)}",
        "object": "chat.completion",
        "model": body["model"],
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "zipped"}}],
        "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4},
    }
    raw = json.dumps(answer).encode()
    if "gzip" in request.headers.get("accept-encoding", ""):
        return Response(gzip.compress(raw), media_type="application/json",
                        headers={"Content-Encoding": "gzip"})  # fmt: skip
    return Response(raw, media_type="application/json")


@pytest.fixture(scope="module")
def odd_backend() -> Iterator[str]:
    app = Starlette(routes=[Route("/v1/chat/completions", _chat, methods=["POST"])])
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.02)
    yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    server.should_exit = True
    thread.join(10)


def _gateway(tmp_path: Path, backend: str, timeout: float = 600.0) -> RunningGateway:
    return run_gateway(
        GatewayConfig(
            state_dir=tmp_path,
            quote_source=Simulator(SIM_APP),
            backend=backend,
            backend_key="backend-secret",
            backend_timeout=timeout,
        )
    )


def _ask(url: str, model: str) -> httpx.Response:
    body = {"model": model, "messages": [{"role": "user", "content": "hi"}]}
    return httpx.post(url + "/v1/chat/completions", json=body, timeout=30)


def test_key_sent_and_a_compressed_answer_is_signed_as_delivered(
    tmp_path: Path, odd_backend: str
) -> None:
    running = _gateway(tmp_path, odd_backend)
    try:
        answer = _ask(running.url, "plain")
        assert answer.status_code == 200
        assert answer.json()["choices"][0]["message"]["content"] == "zipped"
        assert SEEN[-1]["authorization"] == "Bearer backend-secret"
        assert "gzip" in SEEN[-1]["accept-encoding"]  # the backend did compress
        signed = httpx.get(running.url + f"/v1/signature/{answer.headers['x-receipt-id']}")
        response_hash = signed.json()["text"].split(":")[1]
        assert response_hash == hashlib.sha256(answer.content).hexdigest()
    finally:
        running.stop()


def test_a_backend_refusal_passes_through_unsigned(tmp_path: Path, odd_backend: str) -> None:
    running = _gateway(tmp_path, odd_backend)
    try:
        answer = _ask(running.url, "busy")
        assert answer.status_code == 429
        assert answer.json() == {"error": {"message": "slow down"}}
        assert "x-receipt-id" not in answer.headers
        assert running.gateway.store.usage() == []
    finally:
        running.stop()


def test_a_backend_past_its_time_limit_is_a_502(tmp_path: Path, odd_backend: str) -> None:
    running = _gateway(tmp_path, odd_backend, timeout=0.5)
    try:
        started = time.monotonic()
        answer = _ask(running.url, "slow")
        assert time.monotonic() - started < 2.5
        assert answer.status_code == 502
        assert answer.json()["code"] == "backend_unavailable"
    finally:
        running.stop()
