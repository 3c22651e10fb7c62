"""Pinned output bytes of the whole Phala-shaped pipeline (snapshot -> ledger -> tree).

Speed work on these steps must not change a single byte of what they write: the files
are signed, compared across operators and loaded by OpenZeppelin's tooling. The hashes
below were taken before that work started; the run with a forced forked helper checks
that the parallel paths (staking child, tree halves) write the same bytes as the serial
ones.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

import veil.bulkwork
import veil.migration.snapshot
from veil.atomic import write_json
from veil.errors import InputError
from veil.merkle import build_tree, load_tree, write_tree
from veil.migration.ledger import build_ledger, tree_from_ledger
from veil.migration.ledger_format import load_ledger, write_ledger
from veil.migration.snapshot import snapshot_from_raw
from veil.migration.snapshot_format import load_snapshot, write_snapshot
from veil.migration.synthetic import generate_phala_state, raw_document
from veil.substrate.metadata import load_metadata

METADATA = (
    Path(__file__).resolve().parents[3] / "shared" / "fixtures" / "substrate" / "metadata"
) / "phala-1291.scale"
if not METADATA.exists():  # a worktree under /work/wt: the shared folder is /work/shared
    METADATA = Path("/work/shared/fixtures/substrate/metadata/phala-1291.scale")

PINNED = {
    "snap.json": "dc4461bba16613f3dc756ff4b0e5eb9c7cf5b2160e5cb965b1d39dac4588b057",
    "ledger.json": "a7c1a2dde17ce39561529b3031ad933461d12c6c024e74a4268ed33fad909ef4",
    "tree.json": "766f4af2e0ff1dcdc9d5f5bcb8594d5828a0cd9c33b5a178967f43d81804376a",
    "proofs": "579bc1112c519911101ea6387b85bec7d829859dba70fdad14000606eb88666b",
}


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _run(folder: Path, metadata_file: bool = False) -> dict[str, str]:
    state = generate_phala_state(3_000, wpha_holders=1_500, pools=40, nfts=400, seed=7)
    write_json(folder / "raw.json", raw_document(state), indent=None)
    metadata = METADATA if metadata_file else load_metadata(METADATA)
    write_snapshot(snapshot_from_raw(folder / "raw.json", metadata), folder / "snap.json")
    ledger = build_ledger(load_snapshot(folder / "snap.json"), [], [])
    write_ledger(ledger, folder / "ledger.json")
    tree = tree_from_ledger(load_ledger(folder / "ledger.json"))
    write_tree(tree, folder / "tree.json")
    loaded = load_tree(folder / "tree.json")
    picks = [0, 1, len(loaded.values) // 3, len(loaded.values) - 1]
    proofs = {
        "single": [[p.hex() for p in loaded.proof(i)] for i in picks],
        "multi": loaded.multiproof(picks).to_json(),
        "again": build_tree(loaded.values).root.hex(),
    }
    out = {name: _sha((folder / name).read_bytes()) for name in PINNED if name != "proofs"}
    out["proofs"] = _sha(json.dumps(proofs, sort_keys=True).encode())
    return out


@pytest.mark.parametrize("forking", [False, True], ids=["serial", "forked"])
def test_pipeline_output_bytes_are_pinned(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, forking: bool
) -> None:
    monkeypatch.setattr(veil.bulkwork, "PARALLEL_MIN_ROWS", 1 if forking else 10**12)
    # forked: the metadata file is also decoded by a child beside the state (as for a big one)
    monkeypatch.setattr(veil.migration.snapshot, "BACKGROUND_METADATA_BYTES", 0)
    assert _run(tmp_path, metadata_file=forking) == PINNED


def test_metadata_decoded_beside_the_state_reports_a_bad_file_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(veil.bulkwork, "PARALLEL_MIN_ROWS", 1)
    monkeypatch.setattr(veil.migration.snapshot, "BACKGROUND_METADATA_BYTES", 0)
    state = generate_phala_state(300, wpha_holders=100, pools=4, nfts=40, seed=3)
    write_json(tmp_path / "raw.json", raw_document(state), indent=None)
    broken = tmp_path / "meta.scale"
    broken.write_bytes(METADATA.read_bytes()[:4000])  # cut short: the child fails, we report
    with pytest.raises(InputError, match=r"meta\.scale"):
        snapshot_from_raw(tmp_path / "raw.json", broken)
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(InputError, match="not valid JSON"):  # the state's problem first
        snapshot_from_raw(tmp_path / "bad.json", METADATA)
