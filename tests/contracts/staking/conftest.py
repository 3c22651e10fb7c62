"""Fixtures for the vPHA vault tests: contracts compiled once, each test on an anchored chain."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boa
import pytest
from vpha_kit import ACCOUNTS, PHA


@pytest.fixture(autouse=True)
def _isolated_chain() -> Iterator[None]:
    with boa.env.anchor():
        yield


@pytest.fixture
def gov() -> str:
    """The vault's owner (the timelock in production)."""
    return ACCOUNTS[0].address


@pytest.fixture
def treasury() -> str:
    return ACCOUNTS[1].address


@pytest.fixture
def alice() -> str:
    return ACCOUNTS[2].address


@pytest.fixture
def bob() -> str:
    return ACCOUNTS[3].address


@pytest.fixture
def carol() -> str:
    return ACCOUNTS[4].address


@pytest.fixture
def pha(pha_deployer: Any, gov: str, alice: str, bob: str, carol: str) -> Any:
    """PHA with 1,000,000 PHA for each of gov, alice, bob and carol."""
    with boa.env.prank(gov):
        token = pha_deployer.deploy("0x" + "00" * 20)  # no Migrator here
        token.setMinter(gov, True)
        for account in (gov, alice, bob, carol):
            token.mint(account, 1_000_000 * PHA)
    return token


@pytest.fixture
def vault(
    vault_deployer: Any, pha: Any, gov: str, treasury: str, alice: str, bob: str, carol: str
) -> Any:
    """A fresh vault; every test account has approved it for all its PHA."""
    contract = vault_deployer.deploy(pha.address, gov, treasury)
    for account in (gov, alice, bob, carol):
        with boa.env.prank(account):
            pha.approve(contract.address, 2**256 - 1)
    return contract
