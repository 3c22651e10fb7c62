"""Fixtures for the ComputeRegistry tests (helpers live in registry_world.py)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boa
import pytest
from compiled import compiled
from registry_world import REGISTRY_SOURCE, SHARE_DECIMALS, TOKEN_SOURCE, World, make_world


@pytest.fixture(scope="session")
def registry_deployer() -> Any:
    return compiled(REGISTRY_SOURCE)


@pytest.fixture(scope="session")
def token_deployer() -> Any:
    return compiled(TOKEN_SOURCE)


@pytest.fixture(autouse=True)
def _isolated_chain() -> Iterator[None]:
    with boa.env.anchor():
        yield


@pytest.fixture
def world(registry_deployer: Any, token_deployer: Any) -> World:
    """Registry with attesters 0..2 registered (threshold 1); key 3 is not an attester."""
    return make_world(registry_deployer, token_deployer.deploy(SHARE_DECIMALS))
