"""Fixtures for the Governor/Timelock tests.

Contracts are deployed once per test module; every test runs inside
`boa.env.anchor()` so it starts from that same state.
"""

from __future__ import annotations

from collections.abc import Iterator

import boa
import pytest
from governance_kit import System, deploy_system


@pytest.fixture(scope="module")
def system() -> System:
    return deploy_system()


@pytest.fixture(autouse=True)
def _isolated(system: System) -> Iterator[None]:
    with boa.env.anchor():
        yield
