"""Fixtures for the attester_set module tests: a host contract and attester keys."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boa
import pytest
from compiled import compiled

HOST = Path(__file__).resolve().parent / "TestOnlyAttestedHost.vy"


@pytest.fixture(scope="session")
def host_deployer() -> Any:
    return compiled(HOST)


@pytest.fixture(scope="module")
def deployed_host(host_deployer: Any) -> Any:
    return host_deployer.deploy()


@pytest.fixture
def host(deployed_host: Any) -> Iterator[Any]:
    """The module's host, with every change rolled back after the test."""
    with boa.env.anchor():
        yield deployed_host
