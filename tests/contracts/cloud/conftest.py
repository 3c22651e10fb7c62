"""Fixtures for the AppAuth tests: one compile, a fresh chain state per test."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boa
import pytest
from compiled import compiled


@pytest.fixture(scope="session")
def app_auth_deployer() -> Any:
    return compiled("AppAuth")


@pytest.fixture(autouse=True)
def _isolated_chain() -> Iterator[None]:
    with boa.env.anchor():
        yield


@pytest.fixture
def auth(app_auth_deployer: Any) -> Any:
    return app_auth_deployer.deploy()
