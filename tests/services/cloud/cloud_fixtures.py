"""The control-plane fixtures: a kit on SQLite and on a throwaway PostgreSQL server.

Shared by the cloud and the monitoring tests (each conftest imports them), so the two suites
run on the same two databases the same way.
"""

from __future__ import annotations

import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from cloud_kit import CloudKit, make_kit

import pg


@pytest.fixture(scope="session")
def pg_base() -> Iterator[str]:
    with pg.server() as url:
        yield url


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'cloud.sqlite'}"
        return
    base = request.getfixturevalue("pg_base")
    name = f"veil_{uuid.uuid4().hex[:12]}"
    url = pg.fresh_database(base, name)
    try:
        yield url
    finally:
        pg.drop_database(base, name)


@pytest.fixture
def cloud(db_url: str) -> Iterator[CloudKit]:
    kit = make_kit(db_url)
    try:
        yield kit
    finally:
        kit.client.close()
        kit.state.engine.dispose()
