"""Fixtures for the Migrator tests (the building blocks live in migrator_kit.py)."""

from __future__ import annotations

import pytest
from migrator_kit import System, Tree, deploy_system, make_leaves


@pytest.fixture
def system() -> System:
    return deploy_system()


@pytest.fixture
def tree() -> Tree:
    return Tree(make_leaves(12))


@pytest.fixture
def live(system: System, tree: Tree) -> tuple[System, Tree]:
    """A system with `tree` set as the root and an open claim period."""
    system.set_tree(tree)
    return system, tree
