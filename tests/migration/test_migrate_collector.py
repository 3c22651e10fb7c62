"""`veil migrate` pauses the cyclic collector for its million-row steps, and only for them.

The pause is the program's decision (one callback in `veil.cli.migrate`), restored when
the command ends, whether it succeeds or fails, so a process that runs several commands
(the tests, a notebook) gets its collector back.
"""

from __future__ import annotations

import gc
import json
from pathlib import Path

import pytest
from test_migrate_cli import veil

import veil.cli.migrate as migrate_cli
from veil.migration.synthetic import generate_state, raw_document


@pytest.fixture
def seen(monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """Whether the collector was on when the snapshot step ran, once per run."""
    states: list[bool] = []
    real = migrate_cli.snapshot_from_raw

    def spy(*args, **kwargs):  # type: ignore[no-untyped-def]
        states.append(gc.isenabled())
        return real(*args, **kwargs)

    monkeypatch.setattr(migrate_cli, "snapshot_from_raw", spy)
    return states


def test_a_bulk_step_runs_without_the_collector_and_gives_it_back(
    tmp_path: Path, seen: list[bool]
) -> None:
    raw = tmp_path / "raw.json"
    raw.write_text(json.dumps(raw_document(generate_state(20, seed=3))))
    assert gc.isenabled()
    done = veil("migrate", "snapshot", "--raw-state", raw, "--out", "snap.json", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert seen == [False]
    assert gc.isenabled()


def test_the_collector_comes_back_after_a_refusal(tmp_path: Path, seen: list[bool]) -> None:
    (tmp_path / "raw.json").write_text("{not json")
    done = veil("migrate", "snapshot", "--raw-state", "raw.json", "--out", "s.json", cwd=tmp_path)
    assert done.returncode != 0 and "not valid JSON" in done.stderr
    assert seen == [False]
    assert gc.isenabled()


def test_other_commands_keep_the_collector(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    states: list[bool] = []
    real = migrate_cli.generate_state

    def spy(*args, **kwargs):  # type: ignore[no-untyped-def]
        states.append(gc.isenabled())
        return real(*args, **kwargs)

    monkeypatch.setattr(migrate_cli, "generate_state", spy)
    done = veil(
        "migrate", "generate-state", "--accounts", "5", "--out", "raw.json",
        "--positions", "pos.json", "--exclusions", "exc.json", cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert states == [True]
