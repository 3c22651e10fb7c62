"""Fixtures for the AI gateway tests; the helpers they use live in ai_kit.py."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from ai_kit import SIM_APP, RunningGateway, run_gateway, start_backend

from veil.compute.quote_source import Simulator
from veil.inference.embedding import EmbeddingModel
from veil.services.ai.app import GatewayConfig


@pytest.fixture(scope="session")
def backend_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    process, url = start_backend(tmp_path_factory.mktemp("backend"))
    yield url
    process.terminate()
    process.wait(10)


@pytest.fixture(scope="session")
def embedding_model() -> EmbeddingModel:
    return EmbeddingModel()


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
