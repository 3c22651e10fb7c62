"""Fixtures for the Migrator tests (the building blocks live in migrator_kit.py)."""

from __future__ import annotations

from collections.abc import Iterator

import boa
import pytest
from migrator_kit import System, Tree, deploy_system, make_leaves


@pytest.fixture(scope="module")
def deployed_system() -> System:
    return deploy_system()


@pytest.fixture
def system(deployed_system: System) -> Iterator[System]:
    """The module's deployment, with every change rolled back after the test."""
    with boa.env.anchor():
        yield deployed_system


@pytest.fixture
def tree() -> Tree:
    return Tree(make_leaves(12))


@pytest.fixture
def live(system: System, tree: Tree) -> tuple[System, Tree]:
    """A system with `tree` set as the root and an open claim period."""
    system.set_tree(tree)
    return system, tree
