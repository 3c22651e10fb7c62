"""A Phala snapshot reads its staking items in a forked child: same snapshot, same errors.

The child is only an optimisation (`veil.bulkwork.forked`): whether it runs, fails or
is not available, the snapshot and any refusal must be what the serial reading gives.
"""

from __future__ import annotations

import json
from pathlib import Path

import phala_storage
import pytest

import veil.migration.snapshot as snapshot_module
from veil.errors import InputError
from veil.migration.snapshot import snapshot_from_raw
from veil.migration.snapshot_format import snapshot_document
from veil.substrate.metadata import load_metadata

METADATA = phala_storage.METADATA / "phala-1291.scale"


@pytest.fixture(scope="module")
def raw(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("parallel") / "raw.json"
    path.write_text(json.dumps(phala_storage.build("dump_48000.json", "phala-1291").document()))
    return path


def _read(raw: Path, monkeypatch: pytest.MonkeyPatch, *, fork: bool) -> dict:
    monkeypatch.setattr(snapshot_module, "can_fork", lambda rows: fork)
    return snapshot_document(snapshot_from_raw(raw, load_metadata(METADATA)))


def test_forked_staking_read_gives_the_serial_snapshot(
    raw: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    parallel = _read(raw, monkeypatch, fork=True)
    serial = _read(raw, monkeypatch, fork=False)
    assert parallel == serial
    assert parallel["phala_staking"]["pools"] and parallel["accounts"]


def test_a_failing_child_leaves_the_work_and_the_report_to_the_parent(
    raw: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    document = json.loads(raw.read_text())
    base_pool = "0x" + phala_storage.twox128(b"PhalaBasePool").hex()
    pools = next(key for key in document if key.startswith(base_pool))
    document[pools] = "0xzz"  # not hex: read_staking refuses it, in the child and again here
    spoiled = tmp_path / "spoiled.json"
    spoiled.write_text(json.dumps(document))
    with pytest.raises(InputError, match="not 0x-hex"):
        _read(spoiled, monkeypatch, fork=True)
    assert "Traceback" not in capfd.readouterr().err  # the child dies quietly
