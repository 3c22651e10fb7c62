"""Issue 10's open items on a real-layout Phala state served by the fake node with real trie
proofs: staking reads that resume, a node that hides a staking entry, the audit proving and
re-deriving every staking value, and `--accept-dust` on the Phala path."""

from __future__ import annotations

import copy
import functools
import json
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import phala_storage
import pytest
from phala_storage import METADATA, blake2_128_concat, twox64_concat, twox128
from substrate_fake_node import FakeNode, websocket_node
from test_migrate_cli import veil

from veil.errors import ChainError, InputError
from veil.migration.audit import AuditInputs, AuditReport, _rebuild
from veil.migration.ledger import LedgerRefused, build_ledger, tree_from_ledger
from veil.migration.phala_staking import staking_prefixes
from veil.migration.rpc_snapshot import snapshot_from_rpc
from veil.migration.snapshot import snapshot_from_raw
from veil.migration.snapshot_format import (
    load_snapshot,
    progress_path,
    proof_path,
    staking_progress_path,
    write_snapshot,
)
from veil.substrate.metadata import load_metadata

META = METADATA / "phala-1291.scale"
PAGE = 25
_built = functools.cache(phala_storage.build)


def state(dump: str = "dump_48000.json") -> phala_storage.PhalaStorage:
    return copy.deepcopy(_built(dump))


def _prefix(pallet: str, item: str) -> str:
    return "0x" + (twox128(pallet.encode()) + twox128(item.encode())).hex()


class RecordingNode(FakeNode):
    """The fake node, noting every storage key whose value it was asked for."""

    def __init__(self, storage: dict[str, str], genesis: str) -> None:
        super().__init__(storage, genesis)
        self.queried: list[str] = []

    def answer(self, request: dict[str, Any]) -> dict[str, Any] | None:
        if request["method"] == "state_queryStorageAt":
            self.queried.extend(request["params"][0])
        return super().answer(request)


@functools.cache
def _metadata():  # type: ignore[no-untyped-def]
    return load_metadata(META)


@pytest.fixture(scope="module")
def published(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An honest RPC snapshot of the dump_48000 state and its proof file."""
    where = tmp_path_factory.mktemp("published")
    node = FakeNode(state().document(), "0x" + "ab" * 32)
    with websocket_node(node) as url:
        snap = snapshot_from_rpc(url, node.block, where / "snap.json", page_size=PAGE)
    write_snapshot(snap, where / "snap.json")
    return where


def _copy(published: Path, tmp_path: Path) -> Path:
    for name in ("snap.json", "snap.json.proof.json"):
        shutil.copy(published / name, tmp_path / name)
    return tmp_path / "snap.json"


def _audit(snap: Path, **options: Any) -> dict[str, Any]:
    report = AuditReport()
    tree = _rebuild(AuditInputs(snapshot=snap, tree=snap.with_name("unused"), **options), report)
    return {"checks": {c.name: c for c in report.checks}, "tree": tree}


STAKING = "staking entries re-verify against the read proof"
POSITIONS = "positions re-derive from the proven staking storage"


def _same_file(resumed: Path, whole: Path) -> bool:
    """Byte for byte the same snapshot, but for the node's address it records (each test's
    fake node listens on a port of its own)."""
    ours, theirs = json.loads(resumed.read_text()), json.loads(whole.read_text())
    address = theirs["source"]["endpoint"].removeprefix("ws://")
    own = ours["source"]["endpoint"].removeprefix("ws://")
    assert own != address
    return resumed.read_text().replace(own, address) == whole.read_text()


def _raw_reference(tmp_path: Path, storage: phala_storage.PhalaStorage):  # type: ignore[no-untyped-def]
    raw = tmp_path / "raw.json"
    raw.write_text(json.dumps(storage.document()))
    return snapshot_from_raw(raw, metadata=_metadata())


# --- 1. the audit proves every staking value ---------------------------------------------


def test_audit_proves_every_staking_entry_and_rederives_positions(
    published: Path, tmp_path: Path
) -> None:
    snap = _copy(published, tmp_path)
    done = _audit(snap, metadata=META)
    checks = done["checks"]
    assert checks[STAKING].ok, checks[STAKING].detail
    assert checks[POSITIONS].ok, checks[POSITIONS].detail
    # Every staking entry of the state is among those proven (and nothing else).
    prefixes = tuple(prefix for prefix, _ in staking_prefixes(_metadata()))
    entries = sum(1 for key in state().raw if key.startswith(prefixes))
    assert checks[STAKING].detail.startswith(f"{entries} staking entries")
    # The rebuilt root is the one of the raw state's own ledger.
    reference = tree_from_ledger(build_ledger(_raw_reference(tmp_path, state())))
    assert done["tree"].root == reference.root


def test_audit_without_metadata_cannot_prove_staking_and_fails(
    published: Path, tmp_path: Path
) -> None:
    checks = _audit(_copy(published, tmp_path))["checks"]
    assert not checks[STAKING].ok and "pass --metadata" in checks[STAKING].detail


def _properties_key(cid: int, nft_id: int) -> str:
    """RmrkCore.Properties (cid, Some(nft), "stake-info"), keyed as the runtime keys it."""
    key = twox128(b"RmrkCore") + twox128(b"Properties")
    key += blake2_128_concat(cid.to_bytes(4, "little"))
    key += blake2_128_concat(b"\x01" + nft_id.to_bytes(4, "little"))
    key += blake2_128_concat(bytes([len(b"stake-info") << 2]) + b"stake-info")
    return "0x" + key.hex()


def test_a_tampered_share_count_in_the_snapshot_is_named_by_its_storage_key(
    published: Path, tmp_path: Path
) -> None:
    snap = _copy(published, tmp_path)
    document = json.loads(snap.read_text())
    nfts = document["phala_staking"]["nfts"]
    index = next(i for i, n in enumerate(nfts) if n[3] not in (None, "0"))
    cid, nft_id, _owner, shares = nfts[index]
    nfts[index][3] = str(int(shares) * 2)
    snap.write_text(json.dumps(document))
    key = _properties_key(cid, nft_id)
    assert key in state().raw  # the key the runtime stores it under
    done = _audit(snap, metadata=META)
    staking = done["checks"][STAKING]
    assert not staking.ok
    assert staking.detail.startswith(
        f"storage key {key} (RmrkCore.Properties({cid}, {nft_id}, stake-info)): the snapshot "
        f"has {int(shares) * 2}, the proof shows {shares}"
    )
    # In this state every share of that pool ends with one delegator: no position moves.
    assert done["checks"][POSITIONS].ok


def test_an_nft_given_to_another_owner_is_caught_and_never_reaches_the_root(
    published: Path, tmp_path: Path
) -> None:
    snap = _copy(published, tmp_path)
    document = json.loads(snap.read_text())
    nfts = document["phala_staking"]["nfts"]
    index = next(i for i, n in enumerate(nfts) if n[3] not in (None, "0") and n[2])
    cid, nft_id, owner, _shares = nfts[index]
    thief = "0x" + "42" * 32
    nfts[index][2] = thief
    snap.write_text(json.dumps(document))
    key = twox128(b"RmrkCore") + twox128(b"Nfts")  # RMRK keys NFTs with Twox64Concat
    key += twox64_concat(cid.to_bytes(4, "little")) + twox64_concat(nft_id.to_bytes(4, "little"))
    done = _audit(snap, metadata=META)
    staking = done["checks"][STAKING]
    assert not staking.ok
    assert staking.detail.startswith(
        f"storage key 0x{key.hex()} (RmrkCore.Nfts({cid}, {nft_id})): the snapshot has "
        f"{thief}, the proof shows {owner}"
    )
    positions = done["checks"][POSITIONS]
    assert not positions.ok
    assert f"holder {thief}: staked " in positions.detail or f"holder {owner}" in positions.detail
    # The ledger is rebuilt from the proven entries: the forged owner never reaches the root.
    reference = tree_from_ledger(build_ledger(_raw_reference(tmp_path, state())))
    assert done["tree"].root == reference.root
    forged = build_ledger(load_snapshot(snap))
    assert any(leaf.account == bytes.fromhex(thief[2:]) for leaf in forged.leaves)
    assert tree_from_ledger(forged).root != reference.root


def test_a_tampered_wpha_balance_is_named_by_its_storage_key(
    published: Path, tmp_path: Path
) -> None:
    snap = _copy(published, tmp_path)
    document = json.loads(snap.read_text())
    balances = document["phala_staking"]["wpha_balances"]
    account = next(iter(balances))
    balances[account] = str(int(balances[account]) + 1)
    snap.write_text(json.dumps(document))
    key = (
        twox128(b"Assets") + twox128(b"Account") + blake2_128_concat((10000).to_bytes(4, "little"))
    )
    key += blake2_128_concat(bytes.fromhex(account[2:]))
    detail = _audit(snap, metadata=META)["checks"][STAKING].detail
    assert detail.startswith(f"storage key 0x{key.hex()} (Assets.Account(10000, {account}))")


def test_an_entry_added_to_the_snapshot_is_refused(published: Path, tmp_path: Path) -> None:
    snap = _copy(published, tmp_path)
    document = json.loads(snap.read_text())
    stranger = "0x" + "42" * 32
    document["phala_staking"]["wpha_balances"][stranger] = "5"
    snap.write_text(json.dumps(document))
    detail = _audit(snap, metadata=META)["checks"][STAKING].detail
    assert detail == (
        f"Assets.Account(10000, {stranger}): in the snapshot, but the proof shows no such "
        "storage key"
    )


def _rewrite_proof(snap: Path, change: Any) -> None:
    """Alter the proof file and, like a careful forger, the hash the snapshot records."""
    import hashlib

    proof = json.loads(proof_path(snap).read_text())
    proof["nodes"] = change(proof["nodes"])
    text = json.dumps(proof)
    proof_path(snap).write_text(text)
    document = json.loads(snap.read_text())
    document["source"]["read_proof"]["sha256"] = "0x" + hashlib.sha256(text.encode()).hexdigest()
    snap.write_text(json.dumps(document))


def _forge_value(node: str, value: str) -> str:
    """The same leaf with its last value byte changed: it no longer hashes to its reference."""
    return node[:-2] + ("00" if node[-2:] != "00" else "01") if node.endswith(value) else node


@pytest.mark.parametrize("forgery", ["dropped", "altered"])
def test_a_proof_missing_or_altering_a_staking_node_names_the_item_and_key_path(
    published: Path, tmp_path: Path, forgery: str
) -> None:
    snap = _copy(published, tmp_path)
    shares = next(
        v for k, v in state().raw.items() if k.startswith(_prefix("RmrkCore", "Properties"))
    )[2:]
    # The leaf holding one stake-info value, left out or with its value edited: either way
    # the node its parent references is not in the proof, and the item is no longer whole.
    if forgery == "dropped":
        _rewrite_proof(snap, lambda nodes: [n for n in nodes if not n.endswith(shares)])
    else:
        _rewrite_proof(snap, lambda nodes: [_forge_value(n, shares) for n in nodes])
    done = _audit(snap, metadata=META)
    detail = done["checks"][STAKING].detail
    assert not done["checks"][STAKING].ok
    assert detail.startswith("staking storage not covered by the proof: RmrkCore.Properties: ")
    assert "is not in the proof" in detail
    prefix = _prefix("RmrkCore", "Properties")[2:]
    assert f"key path 0x{prefix}" in detail


def test_a_proof_file_changed_without_its_hash_is_refused(published: Path, tmp_path: Path) -> None:
    snap = _copy(published, tmp_path)
    proof_path(snap).write_text(proof_path(snap).read_text().replace('"nodes": [', '"nodes": [ '))
    detail = _audit(snap, metadata=META)["checks"][STAKING].detail
    assert "sha256 differs from the one the snapshot recorded" in detail


# --- a node that hides a staking entry -----------------------------------------------------


def test_a_node_that_leaves_a_staking_entry_out_of_its_listing_is_caught(tmp_path: Path) -> None:
    node = FakeNode(state().document(), "0x" + "ab" * 32)
    hidden = next(k for k in node.keys if k.startswith(_prefix("RmrkCore", "Nfts")))
    node.keys.remove(hidden)  # listed by no page, still in the trie its proofs come from
    with websocket_node(node) as url, pytest.raises(ChainError) as caught:
        snapshot_from_rpc(url, node.block, tmp_path / "s.json", page_size=PAGE)
    message = str(caught.value)
    assert "not in the proof" in message or hidden in message
    assert "RmrkCore.Nfts" in message or hidden in message
    assert not (tmp_path / "s.json").exists()


# --- 2. staking reads resume ----------------------------------------------------------------


def test_interrupted_staking_reads_resume_and_give_the_identical_snapshot(
    published: Path, tmp_path: Path
) -> None:
    node = RecordingNode(state().document(), "0x" + "ab" * 32)
    out = tmp_path / "snap.json"
    account_pages = sum(1 for k in node.keys if k.startswith(_prefix("System", "Account"))) // PAGE
    with websocket_node(node) as url:
        node.fail_after_pages = account_pages + 1 + 6  # accounts done, six staking pages in
        with pytest.raises(ChainError, match="state_getKeysPaged"):
            snapshot_from_rpc(url, node.block, out, page_size=PAGE)
        saved = staking_progress_path(out)
        lines = saved.read_text().splitlines()
        assert json.loads(lines[0])["at"] == node.block and len(lines) >= 1 + 6
        read_before = set(node.queried)
        staking_before = {k for k in read_before if not k.startswith(_prefix("System", "Account"))}
        assert staking_before  # the interruption came in the middle of the staking items

        node.fail_after_pages = None
        node.pages_served = 0
        node.queried.clear()
        snap = snapshot_from_rpc(url, node.block, out, page_size=PAGE)
    # Only what was missing was read again: six pages fewer than a whole read of the staking
    # maps, and no saved entry asked for twice.
    whole = sum(
        sum(1 for k in node.keys if k.startswith(prefix)) // PAGE + 1
        for prefix, plain in staking_prefixes(_metadata())
        if not plain
    )
    assert node.pages_served == whole - 6
    assert not set(node.queried) & read_before
    # (UnmintableDust, a single value, is read with state_getStorage: not among these.)
    prefixes = tuple(prefix for prefix, plain in staking_prefixes(_metadata()) if not plain)
    staking_keys = {k for k in node.keys if k.startswith(prefixes)}
    assert staking_before | set(node.queried) >= staking_keys
    write_snapshot(snap, out)
    assert _same_file(out, published / "snap.json")
    assert proof_path(out).read_bytes() == (published / "snap.json.proof.json").read_bytes()
    assert not saved.exists() and not progress_path(out).exists()


class SlowNode(FakeNode):
    """Answers staking listings slowly, so a process reading them can be killed midway."""

    def answer(self, request: dict[str, Any]) -> dict[str, Any] | None:
        reply = super().answer(request)  # counted at once, even for a reader killed meanwhile
        if request["method"] == "state_getKeysPaged" and not request["params"][0].startswith(
            _prefix("System", "Account")
        ):
            time.sleep(0.3)
        return reply


def test_a_snapshot_process_killed_during_staking_reads_resumes(
    published: Path, tmp_path: Path
) -> None:
    node = SlowNode(state().document(), "0x" + "ab" * 32)
    out = tmp_path / "snap.json"
    saved = staking_progress_path(out)
    veil = Path(sys.executable).with_name("veil")
    with websocket_node(node) as url:
        command = [str(veil), "migrate", "snapshot", "--rpc", url, "--at", node.block,
                   "--out", str(out), "--page-size", str(PAGE)]  # fmt: skip
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline and process.poll() is None:
                if saved.exists() and len(saved.read_text().splitlines()) >= 4:
                    break
                time.sleep(0.05)
            assert process.poll() is None, process.stderr.read() if process.stderr else ""
            process.send_signal(signal.SIGKILL)  # no chance to clean up or flush anything
        finally:
            process.wait(timeout=30)
        assert not out.exists()
        plain = {prefix for prefix, single in staking_prefixes(_metadata()) if single}
        pages = []
        for line in saved.read_text().splitlines()[1:]:
            try:  # the kill may have cut the last line short: it does not count
                pages.append(json.loads(line))
            except json.JSONDecodeError:
                break
        listed_before = sum(page["prefix"] not in plain for page in pages)
        assert listed_before >= 2
        time.sleep(0.5)  # a listing the killed reader sent last is answered into the void
        node.pages_served = 0
        snap = snapshot_from_rpc(url, node.block, out, page_size=PAGE)
    whole = sum(
        sum(1 for k in node.keys if k.startswith(prefix)) // PAGE + 1
        for prefix, plain in staking_prefixes(_metadata())
        if not plain
    )
    # Only the listings not saved before the kill were asked for again.
    assert node.pages_served == whole - listed_before
    write_snapshot(snap, out)
    assert _same_file(out, published / "snap.json")
    assert proof_path(out).read_bytes() == (published / "snap.json.proof.json").read_bytes()


def test_a_torn_staking_progress_line_is_dropped_and_the_read_completes(
    published: Path, tmp_path: Path
) -> None:
    node = FakeNode(state().document(), "0x" + "ab" * 32)
    out = tmp_path / "snap.json"
    account_pages = sum(1 for k in node.keys if k.startswith(_prefix("System", "Account"))) // PAGE
    with websocket_node(node) as url:
        node.fail_after_pages = account_pages + 1 + 3
        with pytest.raises(ChainError):
            snapshot_from_rpc(url, node.block, out, page_size=PAGE)
        saved = staking_progress_path(out)
        with saved.open("a") as handle:
            handle.write('{"prefix": "0x8e0b')  # a crash in the middle of a write
        node.fail_after_pages = None
        snap = snapshot_from_rpc(url, node.block, out, page_size=PAGE)
        # The broken tail was cut before new pages were appended: every line is JSON.
        assert all(json.loads(line) for line in saved.read_text().splitlines())
    write_snapshot(snap, out)
    assert _same_file(out, published / "snap.json")


def test_staking_progress_of_another_block_is_refused(tmp_path: Path) -> None:
    node = FakeNode(state().document(), "0x" + "ab" * 32)
    out = tmp_path / "snap.json"
    staking_progress_path(out).write_text(
        json.dumps({"format": "veil-staking-progress-v1", "at": "0x" + "00" * 32}) + "\n"
    )
    with websocket_node(node) as url, pytest.raises(InputError, match="another block"):
        snapshot_from_rpc(url, node.block, out, page_size=PAGE)


# --- 3. --accept-dust on the Phala path -----------------------------------------------------


def _differences(storage: phala_storage.PhalaStorage) -> dict[int, int]:
    """Each pool's assets minus the runtime's U64F64 value of its held shares, computed
    here from what the fixture put in storage (stake pools before the vaults they feed)."""
    from test_phala_positions import _split

    vaults = {p["bp"] for p in storage.pools if p["kind"] == "vault"}
    inflow: dict[bytes, int] = {}
    out: dict[int, int] = {}
    for kind in ("stake-pool", "vault"):
        for pool in (p for p in storage.pools if p["kind"] == kind):
            price = (
                (pool["total_value"] << 64) // pool["total_shares"] if pool["total_shares"] else 0
            )
            shares: dict[bytes, int] = {}
            runtime = 0
            for nft in storage.nfts:
                if nft["cid"] == pool["cid"]:
                    owner = nft["owner"]
                    if owner == phala_storage.BASEPOOL:
                        owner = pool["queue"][nft["nft_id"]]
                    shares[owner] = shares.get(owner, 0) + nft["shares"]
                    runtime += nft["shares"] * price >> 64
            assets = storage.wpha.get(pool["bp"], 0)
            if kind == "vault":
                shares[pool["owner"]] = shares.get(pool["owner"], 0) + pool["owner_shares"]
                runtime += pool["owner_shares"] * price >> 64
                assets += inflow.get(pool["bp"], 0)
            else:
                assets += storage.wpha.get(pool["sl"], 0)
            for holder, amount in _split(assets, {a: s for a, s in shares.items() if s}).items():
                if holder in vaults:
                    inflow[holder] = inflow.get(holder, 0) + amount
            out[pool["pid"]] = assets - runtime
    return out


def test_accept_dust_bounds_each_pools_gap_to_the_runtime_value(tmp_path: Path) -> None:
    storage = state("dump_102000.json")
    snap = _raw_reference(tmp_path, storage)
    gaps = _differences(storage)
    largest = max(abs(g) for g in gaps.values())
    assert largest > 1  # this real state has vaults whose total_value lags their assets
    unlimited = build_ledger(snap)
    assert unlimited.phala is not None and unlimited.phala["dust_limit_planck"] is None
    at_limit = build_ledger(snap, accept_dust=largest)
    assert at_limit.leaves == unlimited.leaves  # the limit only refuses; it moves nothing
    assert at_limit.phala is not None and at_limit.phala["dust_limit_planck"] == largest
    assert at_limit.dust_limit_planck == largest
    with pytest.raises(LedgerRefused) as refused:
        build_ledger(snap, accept_dust=1)
    over = {pid for pid, gap in gaps.items() if abs(gap) > 1}
    assert len(refused.value.problems) == len(over)
    for pid in over:
        assert any(
            f" {pid} (" in p and f"by {gaps[pid]} planck (more than --accept-dust 1)" in p
            for p in refused.value.problems
        ), pid


def test_cli_ledger_and_audit_apply_accept_dust_on_a_phala_snapshot(tmp_path: Path) -> None:
    storage = state("dump_102000.json")
    (tmp_path / "raw.json").write_text(json.dumps(storage.document()))
    done = veil("migrate", "snapshot", "--raw-state", "raw.json", "--metadata", META,
                "--out", "snap.json", cwd=tmp_path)  # fmt: skip
    assert done.returncode == 0, done.stderr
    largest = max(abs(g) for g in _differences(storage).values())
    done = veil("migrate", "ledger", "snap.json", "--accept-dust", str(largest - 1),
                "--out", "ledger.json", cwd=tmp_path)  # fmt: skip
    assert done.returncode != 0 and not (tmp_path / "ledger.json").exists()
    assert f"(more than --accept-dust {largest - 1})" in done.stderr
    assert "Traceback" not in done.stderr
    done = veil("migrate", "ledger", "snap.json", "--accept-dust", str(largest),
                "--out", "ledger.json", cwd=tmp_path)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert json.loads((tmp_path / "ledger.json").read_text())["dust_limit_planck"] == largest
    # The audit rebuilds with the same limit: too low a one fails its rebuild.
    checks = _audit(tmp_path / "snap.json", accept_dust=largest - 1)["checks"]
    rebuilt = checks["ledger rebuilds from the snapshot"]
    assert not rebuilt.ok and f"--accept-dust {largest - 1}" in rebuilt.detail
    assert _audit(tmp_path / "snap.json", accept_dust=largest)["checks"][
        "ledger rebuilds from the snapshot"
    ].ok
