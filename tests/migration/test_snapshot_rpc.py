"""Snapshot over RPC: paging, an interruption, and resumption giving the same snapshot."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from substrate_fake_node import METADATA, FakeNode, http_node, websocket_node

from veil.errors import ChainError, InputError
from veil.migration.phala_staking import staking_prefixes
from veil.migration.rpc_snapshot import snapshot_from_rpc, verify_snapshot_proof
from veil.migration.snapshot import snapshot_from_raw
from veil.migration.snapshot_format import (
    load_snapshot,
    progress_path,
    proof_path,
    snapshot_document,
    write_snapshot,
)
from veil.migration.synthetic import generate_state, raw_document
from veil.substrate.metadata import load_metadata
from veil.substrate.storage import SYSTEM_ACCOUNT_PREFIX

GENESIS = "0x" + "cd" * 32
# The node's runtime (phala 1291) has stake pool v2: a snapshot also lists each staking
# map, one (empty, so unproven) page each in these synthetic states.
STAKING_PAGES = sum(not plain for _, plain in staking_prefixes(load_metadata(METADATA)))
STAKING_ITEMS = len(staking_prefixes(load_metadata(METADATA)))


@pytest.fixture(scope="module")
def state():  # type: ignore[no-untyped-def]
    return generate_state(230, seed=11)


def _node(state) -> FakeNode:  # type: ignore[no-untyped-def]
    return FakeNode(state.raw, GENESIS)


@pytest.fixture(scope="module")
def BLOCK(state) -> str:  # type: ignore[no-untyped-def]
    return _node(state).block


def _reference(state, tmp_path: Path) -> dict:  # type: ignore[no-untyped-def]
    raw = tmp_path / "raw.json"
    raw.write_text(json.dumps(raw_document(state)))
    return snapshot_document(snapshot_from_raw(raw))


def test_websocket_snapshot_pages_through_every_account(state, BLOCK: str, tmp_path: Path) -> None:
    node = _node(state)
    out = tmp_path / "snap.json"
    seen: list[int] = []
    with websocket_node(node) as url:
        snap = snapshot_from_rpc(url, BLOCK, out, page_size=50, on_page=seen.append)
    reference = _reference(state, tmp_path)
    assert len(snap.accounts) == reference["account_count"] == 230 + 7
    assert node.calls.count("state_getKeysPaged") == len(snap.accounts) // 50 + 1 + STAKING_PAGES
    assert sum(seen) == len(snap.accounts)
    assert snap.genesis_hash == GENESIS and snap.block == BLOCK
    assert snap.total_issuance == state.total_issuance
    # Same storage, same decoded accounts and the same state hash as the raw-dump path.
    assert snap.state_sha256 == reference["state_sha256"]
    assert snapshot_document(snap)["accounts"] == reference["accounts"]


def test_interrupted_snapshot_resumes_to_the_identical_file(
    state, BLOCK: str, tmp_path: Path
) -> None:
    node = _node(state)
    (tmp_path / "whole").mkdir()
    (tmp_path / "resumed").mkdir()
    whole = tmp_path / "whole" / "snap.json"  # same name: the proof file is named in the snapshot
    out = tmp_path / "resumed" / "snap.json"
    with websocket_node(node) as url:
        write_snapshot(snapshot_from_rpc(url, BLOCK, whole, page_size=40), whole)

        node.pages_served = 0
        node.fail_after_pages = 3
        with pytest.raises(ChainError, match=r"state_getKeysPaged"):
            snapshot_from_rpc(url, BLOCK, out, page_size=40)
        partial = progress_path(out)
        assert partial.exists() and not out.exists()
        assert len(partial.read_text().splitlines()) == 1 + 3  # header + three saved pages

        node.fail_after_pages = None
        node.pages_served = 0
        snap = snapshot_from_rpc(url, BLOCK, out, page_size=40)
    write_snapshot(snap, out)
    # Resumed after the saved pages: only the remaining ones were asked for again.
    assert node.pages_served == len(snap.accounts) // 40 + 1 - 3 + STAKING_PAGES
    assert out.read_bytes() == whole.read_bytes()
    assert proof_path(out).read_bytes() == proof_path(whole).read_bytes()
    assert not partial.exists()


def test_truncated_progress_line_is_ignored_on_resume(state, BLOCK: str, tmp_path: Path) -> None:
    node = _node(state)
    node.fail_after_pages = 2
    out = tmp_path / "snap.json"
    with http_node(node) as url, pytest.raises(ChainError):
        snapshot_from_rpc(url, BLOCK, out, page_size=60)
    with progress_path(out).open("a") as handle:
        handle.write('{"last_key": "0x26aa')  # a crash in the middle of a write
    node.fail_after_pages = None
    with http_node(node) as url:
        snap = snapshot_from_rpc(url, BLOCK, out, page_size=60)
    assert snapshot_document(snap)["accounts"] == _reference(state, tmp_path)["accounts"]


def test_progress_file_of_another_block_is_refused(state, BLOCK: str, tmp_path: Path) -> None:
    out = tmp_path / "snap.json"
    progress_path(out).write_text(
        json.dumps({"format": "veil-snapshot-progress-v1", "at": "0x" + "00" * 32,
                    "prefix": "0x" + SYSTEM_ACCOUNT_PREFIX.hex()}) + "\n"
    )  # fmt: skip
    with websocket_node(_node(state)) as url, pytest.raises(InputError, match=r"another node"):
        snapshot_from_rpc(url, BLOCK, out, page_size=40)


def test_foreign_key_in_a_page_is_named(state, BLOCK: str, tmp_path: Path) -> None:
    node = _node(state)
    node.rogue_key = "0x26aa394eea5630e07c48ae0c9558cef702a5c1b19ab7a04f536c519aca4983ac"
    with websocket_node(node) as url, pytest.raises(InputError, match=node.rogue_key):
        snapshot_from_rpc(url, BLOCK, tmp_path / "snap.json", page_size=40)


def test_unknown_block_and_unreachable_node(state, BLOCK: str, tmp_path: Path) -> None:
    with websocket_node(_node(state)) as url, pytest.raises(ChainError, match=r"unknown"):
        snapshot_from_rpc(url, "0x" + "01" * 32, tmp_path / "a.json")
    with pytest.raises(ChainError, match=r"cannot connect"):
        snapshot_from_rpc("ws://127.0.0.1:9", BLOCK, tmp_path / "b.json")
    with pytest.raises(InputError, match=r"--at"):
        snapshot_from_rpc("ws://127.0.0.1:9", "latest", tmp_path / "c.json")


def test_cli_snapshot_over_rpc(state, BLOCK: str, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    import contextlib
    import io
    import sys

    from veil.cli.main import main

    out = tmp_path / "snap.json"
    with websocket_node(_node(state)) as url:
        argv = ["veil", "migrate", "snapshot", "--rpc", url, "--at", BLOCK, "--out", str(out),
                "--page-size", "64"]  # fmt: skip
        saved = sys.argv
        sys.argv = argv
        stdout = io.StringIO()
        try:
            with contextlib.redirect_stdout(stdout), pytest.raises(SystemExit) as done:
                main()
                raise SystemExit(0)
        finally:
            sys.argv = saved
    assert done.value.code in (0, None)
    assert f"snapshot: {230 + 7} accounts" in stdout.getvalue().replace("\n", " ")
    document = json.loads(out.read_text())
    assert document["genesis_hash"] == GENESIS and document["source"]["kind"] == "rpc"
    assert document["accounts"] == _reference(state, tmp_path)["accounts"]
    assert not progress_path(out).exists()


def test_every_value_is_proven_and_the_proof_reverifies(state, BLOCK: str, tmp_path: Path) -> None:
    out = tmp_path / "snap.json"
    node = _node(state)
    with websocket_node(node) as url:
        write_snapshot(snapshot_from_rpc(url, BLOCK, out, page_size=64), out)
    listings = node.calls.count("state_getKeysPaged") - STAKING_PAGES
    # One proof per account page, TotalIssuance, and one per staking item: these states
    # have no staking entries, and the proof of each empty item shows nothing under it.
    assert node.calls.count("state_getReadProof") == listings + 1 + STAKING_ITEMS
    snap = load_snapshot(out)
    assert snap.source["state_root"] == "0x" + node.state_root.hex()
    assert verify_snapshot_proof(snap, out) == len(snap.accounts) + 1
    # A snapshot edited by one planck no longer matches its proof.
    forged = snap.accounts[3]._replace(free=snap.accounts[3].free + 1)
    snap.accounts[3] = forged
    with pytest.raises(InputError, match="differs from the value its proof shows"):
        verify_snapshot_proof(snap, out)
    # And a proof file swapped for another is refused by its recorded hash.
    proof_path(out).write_text(proof_path(out).read_text().replace('"nodes": [', '"nodes": [ '))
    with pytest.raises(InputError, match="sha256 differs"):
        verify_snapshot_proof(load_snapshot(out), out)


def test_a_node_that_lies_is_caught(state, BLOCK: str, tmp_path: Path) -> None:
    node = _node(state)
    node.lie_about = node.keys[5]
    with websocket_node(node) as url, pytest.raises(ChainError, match=node.keys[5]):
        snapshot_from_rpc(url, BLOCK, tmp_path / "a.json", page_size=50)
    honest = _node(state)
    honest.header = {**honest.header, "stateRoot": "0x" + "77" * 32}  # a root of its choosing
    with websocket_node(honest) as url, pytest.raises(ChainError, match="not that block's header"):
        honest.block = BLOCK  # still answers for the block the operator asked for
        snapshot_from_rpc(url, BLOCK, tmp_path / "b.json", page_size=50)
    assert not (tmp_path / "a.json").exists() and not (tmp_path / "b.json").exists()


def test_audit_reverifies_an_rpc_snapshot_from_its_proof(state, BLOCK: str, tmp_path: Path) -> None:
    """Issue 10: the audit re-checks an RPC snapshot against the block's state root."""
    from veil.migration.audit import AuditInputs, AuditReport, _rebuild

    out = tmp_path / "snap.json"
    with websocket_node(_node(state)) as url:
        write_snapshot(snapshot_from_rpc(url, BLOCK, out, page_size=80), out)
    report = AuditReport()
    _rebuild(AuditInputs(snapshot=out, tree=tmp_path / "unused.json"), report)
    (proof_check,) = [c for c in report.checks if "state root" in c.name]
    assert proof_check.ok, proof_check.detail
    # One planck more in one account: the rebuilt ledger would still reconcile if the
    # issuance moved too, but the proof does not show that value.
    text = out.read_text()
    row = load_snapshot(out).accounts[0]
    forged = text.replace(f'"{row.free}"', f'"{row.free + 1}"', 1)
    assert forged != text
    out.write_text(forged)
    report = AuditReport()
    _rebuild(AuditInputs(snapshot=out, tree=tmp_path / "unused.json"), report)
    (proof_check,) = [c for c in report.checks if "state root" in c.name]
    assert not proof_check.ok and "differs from the value its proof shows" in proof_check.detail
