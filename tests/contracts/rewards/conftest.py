"""Fixtures for the RewardPool tests: one compile, a fresh funded world per test."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boa
import pytest
from compiled import compiled
from pool_kit import World, make_world


@pytest.fixture(scope="session")
def pool_deployer() -> Any:
    return compiled("RewardPool")


@pytest.fixture
def world(pha_deployer: Any, vault_deployer: Any, pool_deployer: Any) -> Iterator[World]:
    with boa.env.anchor():
        yield make_world(pha_deployer, vault_deployer, pool_deployer)
