"""A raw chain spec snapshots as the genesis state it is: its own genesis hash, recomputed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from veil.errors import InputError
from veil.migration.snapshot import record_genesis, snapshot_from_raw

SPECS = Path(__file__).resolve().parents[2].parent / "shared" / "fixtures" / "substrate" / "specs"
KHALA = "0xd43540ba6d3eb4897c28a77d48cb5b729fea37603cbbfc7a86a73b72adb3be8d"
PHALA = "0x1bb969d85965e4bb5a651abbedf21a54b6b31a21f66b5401cc3f1e286268d736"


def test_spec_snapshot_records_its_genesis_and_state_root() -> None:
    snap = snapshot_from_raw(SPECS / "khala.json")
    assert snap.genesis_hash == snap.block == KHALA
    assert snap.source["kind"] == "chain-spec" and snap.source["state_version"] == 0
    assert snap.source["state_root"].startswith("0x") and len(snap.source["state_root"]) == 66
    assert snap.total_issuance == sum(a.free + a.reserved for a in snap.accounts)
    record_genesis(snap, KHALA)  # the same hash is accepted
    with pytest.raises(InputError, match="another chain"):
        record_genesis(snap, PHALA)


def test_2019_format_spec_snapshots_the_same(tmp_path: Path) -> None:
    document = json.loads((SPECS / "khala.json").read_text())
    document["genesis"]["raw"] = [document["genesis"]["raw"]["top"], {}]
    legacy = tmp_path / "legacy.json"
    legacy.write_text(json.dumps(document))
    snap = snapshot_from_raw(legacy)
    assert snap.genesis_hash == KHALA
    assert snap.accounts == snapshot_from_raw(SPECS / "khala.json").accounts


def test_accounts_missing_but_issuance_is_refused(tmp_path: Path) -> None:
    document = json.loads((SPECS / "khala.json").read_text())
    top = document["genesis"]["raw"]["top"]
    for key in [k for k in top if k.startswith("0x26aa394eea5630e07c48ae0c9558cef7b99d880ec6")]:
        del top[key]
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps(document))
    with pytest.raises(InputError, match=r"no System\.Account entries but TotalIssuance"):
        snapshot_from_raw(spec)
