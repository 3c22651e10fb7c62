"""What the gateway does when its backend misbehaves: clear errors, never a shared receipt."""

from __future__ import annotations

from pathlib import Path

import httpx
from ai_kit import SIM_APP, run_gateway, sim_policy, start_backend

from veil.compute.quote_source import Simulator
from veil.inference.transport import VerifyingTransport
from veil.services.ai.app import GatewayConfig

CHAT = {"model": "fake-llm", "messages": [{"role": "user", "content": "again"}]}


def test_backend_down_is_a_502_with_a_code(tmp_path: Path) -> None:
    running = run_gateway(
        GatewayConfig(
            state_dir=tmp_path, quote_source=Simulator(SIM_APP), backend="http://127.0.0.1:9"
        )
    )
    try:
        answer = httpx.post(running.url + "/v1/chat/completions", json=CHAT)
        assert answer.status_code == 502
        assert answer.json()["code"] == "backend_unavailable"
        assert answer.headers["x-request-id"] == answer.json()["request_id"]
    finally:
        running.stop()


def test_a_backend_repeating_ids_still_gets_one_receipt_per_answer(tmp_path: Path) -> None:
    backend, url = start_backend(tmp_path, "--fixed-id", "chatcmpl-constant")
    running = run_gateway(
        GatewayConfig(state_dir=tmp_path / "gw", quote_source=Simulator(SIM_APP), backend=url)
    )
    try:
        transport = VerifyingTransport(running.url, sim_policy())
        with httpx.Client(transport=transport, base_url=running.url) as client:
            ids = []
            for stream in (False, False, True):
                answer = client.post("/v1/chat/completions", json={**CHAT, "stream": stream})
                answer.read()
                ids.append(answer.headers["x-receipt-id"])
        assert ids[0] == "chatcmpl-constant"
        assert len(set(ids)) == 3 and all(i.startswith("chatcmpl-constant") for i in ids)
        assert [c.receipt_id for c in transport.checked] == ids
    finally:
        running.stop()
        backend.terminate()
        backend.wait(10)
