"""Positions derived from Phala's own staking storage, checked against the rules computed
here independently (from what the fixture builder put in storage, not with veil's code)."""

from __future__ import annotations

import copy
import functools
import json
from collections import defaultdict
from pathlib import Path

import phala_storage
import pytest
from phala_storage import (
    BASEPOOL,
    BUDGET,
    METADATA,
    TREASURY,
    WPHA,
    PhalaStorage,
    blake2_128_concat,
    derived,
    twox128,
)
from test_migrate_cli import veil

from veil.errors import ChainError, InputError
from veil.migration.ledger import LedgerRefused, build_ledger, tree_from_ledger
from veil.migration.ledger_format import load_ledger, write_ledger
from veil.migration.positions import Position
from veil.migration.snapshot import record_decimals, snapshot_from_raw
from veil.migration.snapshot_format import load_snapshot, write_snapshot
from veil.substrate.metadata import load_metadata

WEI = 10**6  # PHA: 12 decimals
_built = functools.cache(phala_storage.build)
_metadata = functools.cache(load_metadata)


def build(dump: str, runtime: str = "phala-1291") -> PhalaStorage:
    """A fresh copy of the storage (tests add to it), encoded once per dump and runtime."""
    return copy.deepcopy(_built(dump, runtime))


def _split(assets: int, shares: dict[bytes, int]) -> dict[bytes, int]:
    """Largest remainder, written out long-hand: floors, then +1 in remainder order."""
    total = sum(shares.values())
    if total == 0:
        return {}
    floors, remainders = {}, []
    for account in sorted(shares):
        whole, rest = divmod(assets * shares[account], total)
        floors[account] = whole
        remainders.append((rest, account))
    remainders.sort(key=lambda item: item[1])
    remainders.sort(key=lambda item: item[0], reverse=True)  # stable: ties stay ascending
    for _, account in remainders[: assets - sum(floors.values())]:
        floors[account] += 1
    return floors


def expected(state: PhalaStorage) -> dict[bytes, tuple[int, int]]:
    """Every holder's (free, staked) planck by the issue's rules."""
    machine = {BASEPOOL, WPHA, BUDGET, TREASURY}
    for pool in state.pools:
        machine |= {pool["bp"], pool.get("sl", b""), pool.get("so", b"")}
    machine |= {a for a in state.native if a.startswith(b"spm/")}
    free: dict[bytes, int] = defaultdict(int)
    staked: dict[bytes, int] = defaultdict(int)
    for account, amount in state.native.items():
        if account not in machine:
            free[account] += amount
    for account, amount in state.wpha.items():
        if account not in machine:
            free[account] += amount
    for book in (state.legacy, state.reimbursements):
        for (account, _pid), amount in book.items():
            free[account] += amount
    vaults = {p["bp"]: p for p in state.pools if p["kind"] == "vault"}
    inflow: dict[bytes, int] = defaultdict(int)
    for kind in ("stake-pool", "vault"):
        for pool in (p for p in state.pools if p["kind"] == kind):
            shares: dict[bytes, int] = defaultdict(int)
            for nft in state.nfts:
                if nft["cid"] == pool["cid"]:
                    owner = (
                        pool["queue"][nft["nft_id"]] if nft["owner"] == BASEPOOL else nft["owner"]
                    )
                    shares[owner] += nft["shares"]
            if kind == "vault":
                shares[pool["owner"]] += pool["owner_shares"]
                assets = state.wpha.get(pool["bp"], 0) + inflow[pool["bp"]]
            else:
                assets = state.wpha.get(pool["bp"], 0) + state.wpha.get(pool["sl"], 0)
                free[pool["owner"]] += pool["reward"]
            for holder, amount in _split(assets, {a: s for a, s in shares.items() if s}).items():
                if holder in vaults:
                    inflow[holder] += amount
                else:
                    staked[holder] += amount
    holders = (set(free) | set(staked)) - machine
    return {a: (free[a], staked[a]) for a in holders if free[a] or staked[a]}


def _snapshot(tmp_path: Path, state: PhalaStorage, runtime: str = "phala-1291"):
    raw = tmp_path / "raw.json"
    raw.write_text(json.dumps(state.document()))
    return snapshot_from_raw(raw, metadata=_metadata(METADATA / f"{runtime}.scale"))


CASES = [
    ("dump_21000.json", "phala-1291"),
    ("dump_48000.json", "phala-1291"),
    ("dump_102000.json", "phala-1291"),
    ("dump_102000.json", "khala-1251"),
    ("2426198.json", "phala-1291"),
]


@pytest.mark.parametrize(("dump", "runtime"), CASES)
def test_every_holder_gets_what_the_rules_give(tmp_path: Path, dump: str, runtime: str) -> None:
    state = build(dump, runtime)
    ledger = build_ledger(_snapshot(tmp_path, state, runtime))
    got = {leaf.account: (leaf.free_wei, leaf.staked_wei) for leaf in ledger.leaves}
    want = {a: (f * WEI, s * WEI) for a, (f, s) in expected(state).items()}
    assert got == want
    # Conservation, exactly, and the W-PHA side of it.
    assert ledger.total_issuance_wei == sum(state.native.values()) * WEI
    assert ledger.free_wei + ledger.staked_wei + ledger.excluded_wei == ledger.total_issuance_wei
    wpha = dict(ledger.phala["wpha"])
    assert int(wpha["W-PHA supply (Assets.Asset 10000)"]) == sum(state.wpha.values())
    assert wpha["difference"] == "0"
    # No leaf for any pool, vault or pallet account.
    machine = {p["bp"] for p in state.pools} | {BASEPOOL, WPHA, BUDGET, TREASURY}
    assert not machine & set(got)


def test_pools_report_the_runtimes_own_value_beside_the_exact_allocation(tmp_path: Path) -> None:
    state = build("dump_102000.json")
    ledger = build_ledger(_snapshot(tmp_path, state))
    report = {p["pid"]: p for p in ledger.phala["pools"]}
    for pool in state.pools:
        line = report[pool["pid"]]
        runtime = 0
        price = (pool["total_value"] << 64) // pool["total_shares"] if pool["total_shares"] else 0
        for nft in state.nfts:
            if nft["cid"] == pool["cid"]:
                runtime += nft["shares"] * price >> 64
        runtime += pool.get("owner_shares", 0) * price >> 64
        assert int(line["runtime_value_planck"]) == runtime
        assert int(line["difference_planck"]) == int(line["assets_planck"]) - runtime
    # Stake pool 3 (one delegator holding every share) gets all its W-PHA; the runtime's
    # U64F64 value floors one planck below it.
    assert report[3]["assets_planck"] == "31751718604674654"
    assert report[3]["difference_planck"] == "1"


def test_exclusions_each_carry_their_reason(tmp_path: Path) -> None:
    state = build("dump_48000.json")
    ledger = build_ledger(_snapshot(tmp_path, state))
    by_reason: dict[str, int] = defaultdict(int)
    for item in ledger.excluded:
        by_reason[item.reason] += item.amount_wei
    owed = sum(state.legacy.values()) + sum(state.reimbursements.values())
    assert by_reason["module account modlpy/trsry (Treasury)"] == state.native[TREASURY] * WEI
    assert by_reason["wpha/: UnmintableDust (PHA too small to mint as W-PHA)"] == (
        state.unmintable_dust * WEI
    )
    residual = "wpha/: residual above W-PHA supply and UnmintableDust (no W-PHA claims it)"
    assert by_reason[residual] == state.wpha_residual * WEI
    budget = [r for r in by_reason if r.startswith("computation budget")]
    assert by_reason[budget[0]] == (state.native[BUDGET] - owed) * WEI
    pool_natives = sum(v for a, v in state.native.items() if a.startswith((b"bp/", b"spm/")))
    assert (
        sum(v for r, v in by_reason.items() if r.startswith("native PHA of"))
        == (pool_natives + state.native[BASEPOOL]) * WEI
    )


def _with_account(state: PhalaStorage, account: bytes, free: int) -> None:
    key = twox128(b"System") + twox128(b"Account") + blake2_128_concat(account)
    info = (1).to_bytes(4, "little") + bytes(4) + (1).to_bytes(4, "little") + bytes(4)
    info += free.to_bytes(16, "little") + bytes(32) + (1 << 127).to_bytes(16, "little")
    state.raw["0x" + key.hex()] = "0x" + info.hex()


def test_a_pool_account_no_pool_derives_is_refused_by_name(tmp_path: Path) -> None:
    state = build("dump_21000.json")
    stray = derived(b"bp/", 999, b"\x07" * 32, 29)
    _with_account(state, stray, 5)
    with pytest.raises(LedgerRefused) as refused:
        build_ledger(_snapshot(tmp_path, state))
    assert any(stray.hex() in p and "no pool derives it" in p for p in refused.value.problems)


def test_a_budget_that_cannot_pay_what_it_owes_is_refused(tmp_path: Path) -> None:
    state = build("dump_21000.json")
    _with_account(state, BUDGET, 1)
    with pytest.raises(LedgerRefused, match=r"owe \d+ planck but the computation budget"):
        build_ledger(_snapshot(tmp_path, state))


def test_a_positions_file_beside_staking_storage_is_refused(tmp_path: Path) -> None:
    snap = _snapshot(tmp_path, build("dump_21000.json"))
    with pytest.raises(InputError, match="count them twice"):
        build_ledger(snap, [Position(b"\x01" * 32, 1, "modl:phala/sp:0")])


def test_staking_survives_the_snapshot_and_ledger_files(tmp_path: Path) -> None:
    state = build("dump_102000.json")
    snap = _snapshot(tmp_path, state)
    write_snapshot(snap, tmp_path / "snap.json")
    again = load_snapshot(tmp_path / "snap.json")
    assert again.staking == snap.staking
    ledger = build_ledger(again)
    write_ledger(ledger, tmp_path / "ledger.json")
    back = load_ledger(tmp_path / "ledger.json")
    assert back.leaves == ledger.leaves and back.phala == ledger.phala
    assert tree_from_ledger(back).root == tree_from_ledger(ledger).root


def test_decimals_set_the_wei_factor_and_a_mismatch_is_refused(tmp_path: Path) -> None:
    state = build("dump_21000.json")
    snap = _snapshot(tmp_path, state)
    record_decimals(snap, 10)  # a raw dump declares none: the operator's value is recorded
    ledger = build_ledger(snap)
    assert ledger.total_issuance_wei == sum(state.native.values()) * 10**8
    assert ledger.free_wei + ledger.staked_wei + ledger.excluded_wei == ledger.total_issuance_wei
    snap.source["token_decimals"] = 12
    with pytest.raises(InputError, match="declares tokenDecimals 12"):
        record_decimals(snap, 10)


def test_cli_snapshot_ledger_tree_without_a_positions_file(tmp_path: Path) -> None:
    state = build("dump_102000.json")
    (tmp_path / "raw.json").write_text(json.dumps(state.document()))
    meta = METADATA / "phala-1291.scale"
    done = veil("migrate", "snapshot", "--raw-state", "raw.json", "--metadata", meta,
                "--out", "snap.json", cwd=tmp_path)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert f"phala staking: 18 pools, {len(state.nfts) + 1} NFTs" in done.stdout
    done = veil("migrate", "ledger", "snap.json", "--out", "ledger.json", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    total = sum(state.native.values()) * WEI
    # Piped, the table is printed whole: the issuance line carries every digit.
    assert any(
        "TotalIssuance x 10^6" in line and str(total) in line for line in done.stdout.splitlines()
    )
    lines = done.stdout.splitlines()
    cells = [[cell.strip() for cell in line.split("│")[1:3]] for line in lines if "│" in line]
    assert ["difference", "0"] in cells
    assert any("excluded: module account modlpy/trsry (Treasury)" in line for line in lines)
    done = veil("migrate", "tree", "ledger.json", "--out", "tree.json", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    done = veil("migrate", "snapshot", "--raw-state", "raw.json", "--metadata", meta,
                "--decimals", "10", "--out", "s2.json", cwd=tmp_path)  # fmt: skip
    assert done.returncode == 0  # a raw dump declares no decimals; the operator's are kept
    assert load_snapshot(tmp_path / "s2.json").token_decimals == 10


def test_rpc_snapshot_reads_and_proves_the_staking_storage(tmp_path: Path) -> None:
    from substrate_fake_node import FakeNode, websocket_node

    from veil.migration.rpc_snapshot import snapshot_from_rpc

    state = build("dump_48000.json")
    node = FakeNode(state.document(), "0x" + "ab" * 32)
    node.lie_about = next(k for k in node.keys if k.startswith("0x" + twox128(b"RmrkCore").hex()))
    metadata = _metadata(METADATA / "phala-1291.scale")
    with websocket_node(node) as url, pytest.raises(ChainError, match="read proof"):
        snapshot_from_rpc(url, node.block, tmp_path / "lied.json", page_size=7, metadata=metadata)
    node.lie_about = None
    with websocket_node(node) as url:
        snap = snapshot_from_rpc(
            url, node.block, tmp_path / "s.json", page_size=7, metadata=metadata
        )
    assert snap.staking == _snapshot(tmp_path, state).staking
    assert build_ledger(snap).leaves == build_ledger(_snapshot(tmp_path, state)).leaves


def test_spec_decimals_are_recorded_and_a_contrary_decimals_is_one_line(tmp_path: Path) -> None:
    spec = METADATA.parent / "specs" / "khala.json"
    done = veil("migrate", "snapshot", "--raw-state", spec, "--decimals", "10",
                "--out", "s.json", cwd=tmp_path)  # fmt: skip
    assert done.returncode != 0 and not (tmp_path / "s.json").exists()
    assert done.stderr.strip().splitlines() == [
        "error: --decimals 10: the chain declares tokenDecimals 12 (chain-spec); planck would "
        "convert to wei by the wrong factor"
    ]
    done = veil("migrate", "snapshot", "--raw-state", spec, "--out", "s.json", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert load_snapshot(tmp_path / "s.json").token_decimals == 12


def test_the_benchmark_state_is_phala_1291_storage_and_reconciles(tmp_path: Path) -> None:
    from scalecodec.base import ScaleBytes

    from veil.migration.synthetic import generate_phala_state

    state = generate_phala_state(600, wpha_holders=300, pools=9, nfts=400, seed=3)
    config, items = phala_storage._runtime("phala-1291")
    checked = set()
    for key, value in state.raw.items():
        for (pallet, item), kind in items.items():
            prefix = "0x" + (twox128(pallet.encode()) + twox128(item.encode())).hex()
            every_one = pallet == "PhalaBasePool"  # stake pools and vaults alike
            if key.startswith(prefix) and (every_one or (pallet, item) not in checked):
                type_id = kind["Plain"] if "Plain" in kind else kind["Map"]["value"]
                decoded = config.create_scale_object(
                    f"scale_info::{type_id}", data=ScaleBytes(value)
                )
                decoded.decode(check_remaining=True)  # scalecodec: the hand encoding is exact
                checked.add((pallet, item))
    assert {("PhalaBasePool", "Pools"), ("RmrkCore", "Nfts"), ("RmrkCore", "Properties"),
            ("Assets", "Account"), ("Assets", "Asset")} <= checked  # fmt: skip
    raw = tmp_path / "raw.json"
    raw.write_text(json.dumps(state.raw))
    ledger = build_ledger(snapshot_from_raw(raw, metadata=_metadata(METADATA / "phala-1291.scale")))
    assert ledger.reconciliation()[-1] == ("difference", 0)
    assert dict(ledger.phala["wpha"])["difference"] == "0"
    assert ledger.staked_wei > 0 and any(p["kind"] == "vault" for p in ledger.phala["pools"])


def test_a_wpha_balance_under_a_key_whose_hash_is_wrong_is_refused(tmp_path: Path) -> None:
    state = build("dump_21000.json")
    prefix = "0x" + (twox128(b"Assets") + twox128(b"Account")).hex()
    key = next(k for k in state.raw if k.startswith(prefix) and "1027" in k[66:106])
    forged = key[:106] + ("00" if key[106:108] != "00" else "01") + key[108:]
    state.raw[forged] = state.raw.pop(key)
    with pytest.raises(InputError, match=f"{forged}: Blake2_128Concat hash does not match"):
        _snapshot(tmp_path, state)
