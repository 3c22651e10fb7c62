"""Malformed RAW, SNAP, LEDGER, TREE, positions and exclusions files: one line naming the record."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from veil.atomic import write_json
from veil.errors import InputError
from veil.merkle import load_tree
from veil.migration.ledger import build_ledger, tree_from_ledger
from veil.migration.ledger_format import ledger_document, load_ledger, write_ledger
from veil.migration.positions import load_exclusions, load_positions
from veil.migration.snapshot import snapshot_from_raw
from veil.migration.snapshot_format import load_snapshot, snapshot_document, write_snapshot
from veil.migration.synthetic import generate_state, raw_document
from veil.substrate import ss58
from veil.substrate.storage import SYSTEM_ACCOUNT_PREFIX, TOTAL_ISSUANCE_KEY, account_key

TI_HEX = "0x" + TOTAL_ISSUANCE_KEY.hex()


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("inputs")
    state = generate_state(60, seed=2)
    raw = folder / "raw.json"
    raw.write_text(json.dumps(raw_document(state)))
    snapshot = snapshot_from_raw(raw)
    write_snapshot(snapshot, folder / "snap.json")
    ledger = build_ledger(snapshot, state.positions, state.exclusions)
    write_ledger(ledger, folder / "ledger.json")
    assert json.loads((folder / "ledger.json").read_text()) == ledger_document(ledger)
    assert json.loads((folder / "snap.json").read_text()) == snapshot_document(snapshot)
    write_json(folder / "tree.json", tree_from_ledger(ledger).dump())
    return {"raw": raw, "snap": folder / "snap.json", "ledger": folder / "ledger.json",
            "tree": folder / "tree.json", "dir": folder}  # fmt: skip


def _one_line(error: pytest.ExceptionInfo[InputError]) -> str:
    text = str(error.value)
    assert "\n" not in text
    return text


def _raw_with(files: dict[str, Path], tmp_path: Path, change) -> Path:  # type: ignore[no-untyped-def]
    document = json.loads(files["raw"].read_text())
    change(document)
    path = tmp_path / "raw.json"
    path.write_text(json.dumps(document))
    return path


def test_raw_state_refusals_name_the_key(files: dict[str, Path], tmp_path: Path) -> None:
    some_key = next(k for k in json.loads(files["raw"].read_text()) if k.startswith("0x26aa"))
    cases = [
        (lambda d: d.pop(TI_HEX), r"Balances.TotalIssuance\): missing"),
        (lambda d: d.__setitem__(some_key, d[some_key][:-2]), rf"{some_key}: AccountInfo of 79"),
        (lambda d: d.__setitem__(some_key, "0xzz"), rf"{some_key}: key or value is not valid hex"),
        (lambda d: d.__setitem__(TI_HEX, "0x0102"), r"u128 of 2 bytes"),
    ]
    for change, message in cases:
        with pytest.raises(InputError, match=message) as error:
            snapshot_from_raw(_raw_with(files, tmp_path, change))
        _one_line(error)
    forged = "0x" + (SYSTEM_ACCOUNT_PREFIX + bytes(16) + bytes([1]) * 32).hex()
    with pytest.raises(InputError, match=rf"{forged}: blake2_128 hash does not match"):
        snapshot_from_raw(_raw_with(files, tmp_path, lambda d: d.__setitem__(forged, "0x00")))
    short = "0x" + SYSTEM_ACCOUNT_PREFIX.hex() + "00"
    with pytest.raises(InputError, match=rf"{short}: System.Account key of 33 bytes"):
        snapshot_from_raw(_raw_with(files, tmp_path, lambda d: d.__setitem__(short, "0x00")))
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(InputError, match=r"bad.json: not valid JSON"):
        snapshot_from_raw(tmp_path / "bad.json")


def test_raw_chain_spec_is_read_from_genesis_raw_top(
    files: dict[str, Path], tmp_path: Path
) -> None:
    storage = {k: v for k, v in json.loads(files["raw"].read_text()).items() if k.startswith("0x")}
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps({"name": "phala", "genesis": {"raw": {"top": storage}}}))
    from_spec = snapshot_from_raw(spec)
    assert (
        snapshot_document(from_spec)["accounts"]
        == snapshot_document(load_snapshot(files["snap"]))["accounts"]
    )
    assert from_spec.state_sha256 == load_snapshot(files["snap"]).state_sha256
    (tmp_path / "plain.json").write_text(json.dumps({"genesis": {"runtime": {}}}))
    with pytest.raises(InputError, match=r"without genesis.raw.top"):
        snapshot_from_raw(tmp_path / "plain.json")


def _rewrite(path: Path, tmp_path: Path, change) -> Path:  # type: ignore[no-untyped-def]
    document = json.loads(path.read_text())
    change(document)
    out = tmp_path / path.name
    out.write_text(json.dumps(document))
    return out


def test_snapshot_file_refusals_name_the_record(files: dict[str, Path], tmp_path: Path) -> None:
    def bad_amount(d: dict) -> None:
        d["accounts"][3][1] = "lots"

    def unsorted(d: dict) -> None:
        d["accounts"][4], d["accounts"][5] = d["accounts"][5], d["accounts"][4]

    for change, message in [
        (bad_amount, r"account record 3 free: .lots. is not a decimal string"),
        (unsorted, r"account record 5 .*not sorted or duplicated"),
        (lambda d: d.__setitem__("format", "x"), r"not a veil snapshot"),
        (lambda d: d.__setitem__("total_issuance", None), r"total_issuance missing"),
        (lambda d: d.__setitem__("account_count", 1), r"account_count 1 but"),
    ]:
        with pytest.raises(InputError, match=message) as error:
            load_snapshot(_rewrite(files["snap"], tmp_path, change))
        _one_line(error)


def test_ledger_file_refusals_name_the_record(files: dict[str, Path], tmp_path: Path) -> None:
    def richer(d: dict) -> None:
        d["leaves"][2][2] = str(int(d["leaves"][2][2]) + 1)

    def bad_account(d: dict) -> None:
        d["leaves"][7][1] = "0x1234"

    def bad_amount(d: dict) -> None:
        d["leaves"][8][3] = "-5"

    for change, message in [
        (richer, r"differ from it by -1 wei"),
        (bad_account, r"leaf 7 account: '0x1234' is not 0x \+ 32 bytes"),
        (bad_amount, r"leaf 8 staked_wei: -5 is negative"),
        (lambda d: d["excluded"][0].pop("reason"), r"excluded 0: expected an object with a reason"),
    ]:
        with pytest.raises(InputError, match=message) as error:
            load_ledger(_rewrite(files["ledger"], tmp_path, change))
        _one_line(error)


def test_tree_file_refusals(files: dict[str, Path], tmp_path: Path) -> None:
    def forged_value(d: dict) -> None:
        d["values"][4]["value"][2] = str(int(d["values"][4]["value"][2]) + 1)

    def forged_node(d: dict) -> None:
        d["tree"][1] = "0x" + "00" * 32

    with pytest.raises(InputError, match=r"value 4 does not match tree node"):
        load_tree(_rewrite(files["tree"], tmp_path, forged_value))
    with pytest.raises(InputError, match=r"tree node 1 is not the hash of its children"):
        load_tree(_rewrite(files["tree"], tmp_path, forged_node))
    quick = load_tree(_rewrite(files["tree"], tmp_path, forged_value), validate=False)
    with pytest.raises(InputError, match=r"leaf 4: tree node does not hold"):
        quick.proof(4)
    with pytest.raises(InputError, match=r"leafEncoding must be"):
        load_tree(_rewrite(files["tree"], tmp_path, lambda d: d.__setitem__("leafEncoding", [])))


def test_positions_and_exclusions_files(tmp_path: Path) -> None:
    alice = bytes([1]) * 32
    csv = tmp_path / "pos.csv"
    csv.write_text(f"account,staked,source\n{ss58.encode(alice)},12,pool-1\n0x{'02' * 32},3,p\n")
    positions = load_positions(csv)
    assert [(p.account, p.staked, p.source) for p in positions] == [
        (alice, 12, "pool-1"),
        (bytes([2]) * 32, 3, "p"),
    ]
    csv.write_text(f"account,staked,source\n{ss58.encode(alice)},12,pool-1\nxyz,3,p\n")
    with pytest.raises(InputError, match=r"pos.csv: line 3: address 'xyz'"):
        load_positions(csv)
    csv.write_text(f"account,staked,source\n{ss58.encode(alice)},1.5,pool-1\n")
    with pytest.raises(InputError, match=r"line 2: staked '1.5' is not an integer"):
        load_positions(csv)
    csv.write_text("who,amount\n")
    with pytest.raises(InputError, match=r"CSV header must name account, staked, source"):
        load_positions(csv)
    js = tmp_path / "pos.json"
    js.write_text(json.dumps([{"account": "0x" + "01" * 32, "staked": -1, "source": "p"}]))
    with pytest.raises(InputError, match=r"position 0: staked -1 is negative"):
        load_positions(js)
    js.write_text(json.dumps([{"account": "0x" + "01" * 32, "staked": 5}]))
    with pytest.raises(InputError, match=r"position 0: missing source"):
        load_positions(js)
    exc = tmp_path / "exc.json"
    exc.write_text(json.dumps([{"account": "0x" + "01" * 32, "reason": " "}]))
    with pytest.raises(InputError, match=r"exclusion 0: a written reason is required"):
        load_exclusions(exc)
    polkadot_address = ss58.encode(alice, 0)
    exc.write_text(json.dumps([{"account": polkadot_address, "reason": "bridge"}]))
    with pytest.raises(InputError, match=r"exclusion 0: address .* network prefix 0"):
        load_exclusions(exc)
    assert account_key(alice).startswith(SYSTEM_ACCOUNT_PREFIX)
