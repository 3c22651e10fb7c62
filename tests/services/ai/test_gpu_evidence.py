"""GPU evidence in the report: bound to the quote (RTMR3) and to the client's nonce."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import httpx
import pytest
from ai_kit import HERE, SIM_APP, Meddler, RunningGateway, replace_body, run_gateway, sim_policy

from veil.compute.quote_source import Simulator
from veil.inference.transport import VerifyingTransport
from veil.inference.verify import VerificationRefused
from veil.services.ai.app import GatewayConfig, gpu_evidence_command
from veil.tee.policy import GpuPolicy

FAKE = [sys.executable, str(HERE / "fake_gpu_evidence.py")]


@pytest.fixture(scope="module")
def gpu_gateway(
    tmp_path_factory: pytest.TempPathFactory, backend_url: str
) -> Iterator[RunningGateway]:
    config = GatewayConfig(
        state_dir=tmp_path_factory.mktemp("gpu"),
        quote_source=Simulator(SIM_APP),
        backend=backend_url,
        gpu_evidence=gpu_evidence_command(FAKE),
    )
    running = run_gateway(config)
    yield running
    running.stop()


def gpu_policy() -> object:
    return replace(sim_policy(), gpu=GpuPolicy(required=True))


def test_gpu_evidence_is_verified_and_signatures_still_tie_to_the_td(
    gpu_gateway: RunningGateway,
) -> None:
    transport = VerifyingTransport(gpu_gateway.url, gpu_policy())  # type: ignore[arg-type]
    gateway = transport.attest()
    assert gateway.verdict.gpu is not None and gateway.verdict.gpu["bound"] is True
    assert gateway.verdict.gpu["claims"][0]["eat_nonce"] == gateway.nonce
    # RTMR3 differs per report (the GPU hash is extended into it); the digest does not
    assert gateway.attestation_digest == gpu_gateway.gateway.attestation_digest
    with httpx.Client(transport=transport, base_url=gpu_gateway.url) as client:
        client.post(
            "/v1/chat/completions",
            json={"model": "fake-llm", "messages": [{"role": "user", "content": "gpu"}]},
        )
    assert len(transport.checked) == 1  # fmt: skip


def test_replayed_gpu_evidence_is_refused(gpu_gateway: RunningGateway) -> None:
    old = httpx.get(gpu_gateway.url + "/v1/attestation/report",
                    params={"nonce": "ab" * 32}).json()["nvidia_payload"]  # fmt: skip

    def swap(request: httpx.Request, response: httpx.Response) -> httpx.Response:
        if request.url.path.endswith("/attestation/report"):
            report = dict(response.json(), nvidia_payload=old)
            return replace_body(response, json.dumps(report).encode())
        return response

    transport = VerifyingTransport(gpu_gateway.url, gpu_policy(), inner=Meddler(swap))  # type: ignore[arg-type]
    with pytest.raises(VerificationRefused) as caught:
        transport.attest()
    assert caught.value.reason == "quote_refused"
    assert "nonce" in str(caught.value) and "gpu binding" in str(caught.value)


def test_gpu_required_but_absent_is_refused(gateway: RunningGateway) -> None:
    transport = VerifyingTransport(gateway.url, gpu_policy())  # type: ignore[arg-type]
    with pytest.raises(VerificationRefused, match="requires GPU evidence"):
        transport.attest()


def test_failing_gpu_command_is_a_503(tmp_path: Path, backend_url: str) -> None:
    config = GatewayConfig(
        state_dir=tmp_path, quote_source=Simulator(SIM_APP), backend=backend_url,
        gpu_evidence=gpu_evidence_command([sys.executable, "-c", "import sys; sys.exit('no GPU')"]),
    )  # fmt: skip
    running = run_gateway(config)
    try:
        answer = httpx.get(running.url + "/v1/attestation/report", params={"nonce": "cd" * 32})
        assert answer.status_code == 503 and answer.json()["code"] == "quote_unavailable"
        assert "no GPU" in answer.json()["message"]
    finally:
        running.stop()
