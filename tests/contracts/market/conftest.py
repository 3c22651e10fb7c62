"""Fixtures for the Market tests (deployment and signing live in market_kit.py)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boa
import pytest
from compiled import compiled
from market_kit import MARKET_SOURCE, Market, make_market


@pytest.fixture(scope="session")
def market_deployer() -> Any:
    return compiled(MARKET_SOURCE)


@pytest.fixture(autouse=True)
def _isolated_chain() -> Iterator[None]:
    with boa.env.anchor():
        yield


@pytest.fixture
def m(market_deployer: Any, pha_deployer: Any) -> Market:
    """The market over real PHA, H100 and CPU priced, default fee, grace and window."""
    return make_market(market_deployer, pha_deployer)
