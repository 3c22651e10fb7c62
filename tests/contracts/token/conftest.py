"""Fixtures for the PHA token tests. The signing kit is shared with the vault tests."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boa
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "staking"))

from vpha_kit import ACCOUNTS


@pytest.fixture(autouse=True)
def _isolated_chain() -> Iterator[None]:
    with boa.env.anchor():
        yield


@pytest.fixture
def owner() -> str:
    return ACCOUNTS[0].address


@pytest.fixture
def minter() -> str:
    return ACCOUNTS[1].address


@pytest.fixture
def alice() -> str:
    return ACCOUNTS[2].address


@pytest.fixture
def bob() -> str:
    return ACCOUNTS[3].address


@pytest.fixture
def token(pha_deployer: Any, owner: str, minter: str) -> Any:
    """PHA deployed by `owner`, with `minter` appointed."""
    with boa.env.prank(owner):
        contract = pha_deployer.deploy("0x" + "00" * 20)  # no Migrator here
        contract.setMinter(minter, True)
    return contract
