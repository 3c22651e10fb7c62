"""The bulk fast paths read exactly what the record-by-record paths read, or step aside.

Each fast path either returns the same result as its slow twin or None (the slow path
then runs and names the problem); these tests hold both to that on real and spoiled input.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from veil.columns import has_float, hex_records, load_json, split_records
from veil.migration.account_storage import decode_account_pairs, decode_account_storage
from veil.migration.snapshot import snapshot_from_raw
from veil.migration.snapshot_format import load_snapshot, rows_checked, rows_fast, write_snapshot
from veil.migration.synthetic import generate_state, raw_document

PREFIX_LEN = 2 + 2 * 32  # "0x" + System.Account prefix


@pytest.fixture(scope="module")
def storage() -> dict[str, Any]:
    return raw_document(generate_state(120, seed=5))


def _slow(storage: dict[str, Any]) -> Any:
    pairs = ((k, v) for k, v in storage.items() if k not in ("block", "genesis_hash"))
    return decode_account_pairs(pairs, strict_prefix=False)


def _account_keys(storage: dict[str, Any]) -> list[str]:
    return [k for k in storage if k.startswith("0x26aa394eea5630e07c48ae0c9558cef7b99d880ec6")]


def test_fast_storage_decode_equals_slow(storage: dict[str, Any]) -> None:
    fast = decode_account_storage(storage)
    assert fast is not None
    issuance, rows, state_hash, ignored = fast
    assert fast == _slow(storage)
    assert len(rows) >= 120 and ignored >= 0 and issuance > 0 and state_hash.startswith("0x")
    assert [r.account for r in rows] == sorted(r.account for r in rows)


def _spoil(storage: dict[str, Any], how: str) -> dict[str, Any]:
    spoiled = dict(storage)
    key = _account_keys(storage)[7]
    value = spoiled.pop(key)
    if how == "upper-account":
        spoiled[key[:-64] + key[-64:].upper()] = value
    elif how == "upper-prefix":
        spoiled[key[:PREFIX_LEN].upper().replace("0X", "0x") + key[PREFIX_LEN:]] = value
    elif how == "space-in-value":
        spoiled[key] = value[:-2] + " " + value[-2:]
    elif how == "x-in-value":
        spoiled[key] = value[:-3] + "x" + value[-2:]
    elif how == "short-value":
        spoiled[key] = value[:-2]
    elif how == "bad-hash":
        spoiled[key[:PREFIX_LEN] + "00" * 16 + key[PREFIX_LEN + 32 :]] = value
    elif how == "not-a-string":
        spoiled[key] = 5
    elif how == "upper-hex-value":
        spoiled[key] = "0x" + value[2:].upper()
    elif how == "duplicate":
        spoiled[key] = value
        spoiled[key[:-64] + key[-64:].upper()] = value
    return spoiled


@pytest.mark.parametrize(
    "how",
    ["upper-account", "upper-prefix", "space-in-value", "x-in-value", "short-value",
     "bad-hash", "not-a-string", "upper-hex-value", "duplicate"],
)  # fmt: skip
def test_fast_storage_decode_steps_aside_on_anything_unusual(
    storage: dict[str, Any], how: str
) -> None:
    spoiled = _spoil(storage, how)
    fast = decode_account_storage(spoiled)
    if how in ("upper-account", "upper-hex-value"):  # valid hex: both paths read it alike
        assert fast is not None and fast == _slow(spoiled)
        return
    assert fast is None
    try:
        slow = _slow(spoiled)
    except Exception as error:  # the slow path names the problem (or accepts the entry)
        assert "storage key" in str(error) or "account 0x" in str(error)
    else:
        assert how in ("upper-prefix", "space-in-value")
        assert len(slow[1]) == len(decode_account_storage(storage)[1])  # type: ignore[index]


def test_fast_storage_decode_needs_total_issuance(storage: dict[str, Any]) -> None:
    without = {k: v for k, v in storage.items() if not k.startswith("0xc2261276")}
    assert decode_account_storage(without) is None


def test_fast_rows_equal_checked_rows(storage: dict[str, Any], tmp_path: Path) -> None:
    raw = tmp_path / "raw.json"
    raw.write_text(json.dumps(storage))
    write_snapshot(snapshot_from_raw(raw), tmp_path / "snap.json")
    records = json.loads((tmp_path / "snap.json").read_text())["accounts"]
    fast = rows_fast(records)
    assert fast is not None and fast == rows_checked(records, tmp_path)
    assert load_snapshot(tmp_path / "snap.json").accounts == fast
    steps_aside = (
        lambda r: r[3].__setitem__(5, "7"),  # counter as a string: slow path reads it
        lambda r: r[3].__setitem__(1, 7),  # amount as a number: slow path reads it
        lambda r: r[3].__setitem__(1, "-7"),
        lambda r: r.__setitem__(3, r[4]),  # duplicate
        lambda r: r.reverse(),  # unsorted
        lambda r: r[3].append(1),
        lambda r: r[3].__setitem__(0, r[3][0] + " "),
    )
    for spoil in steps_aside:
        spoiled = json.loads(json.dumps(records))
        spoil(spoiled)
        assert rows_fast(spoiled) is None
    read_alike = (
        lambda r: r[3].__setitem__(0, r[3][0].upper().replace("0X", "0x")),
        lambda r: r[3].__setitem__(5, 2**70),
    )
    for spoil in read_alike:
        spoiled = json.loads(json.dumps(records))
        spoil(spoiled)
        read = rows_fast(spoiled)
        assert read is not None and read == rows_checked(spoiled, tmp_path)


def test_big_integers_are_read_exactly(storage: dict[str, Any], tmp_path: Path) -> None:
    raw = tmp_path / "raw.json"
    raw.write_text(json.dumps(storage))
    write_snapshot(snapshot_from_raw(raw), tmp_path / "snap.json")
    document = json.loads((tmp_path / "snap.json").read_text())
    document["accounts"][0][5] = 2**70 + 1  # a counter beyond 64 bits: orjson gives a float
    (tmp_path / "big.json").write_text(json.dumps(document))
    assert load_snapshot(tmp_path / "big.json").accounts[0].nonce == 2**70 + 1


def test_hex_records_and_split() -> None:
    texts = ["0x" + bytes([i]).hex() * 4 for i in range(5)]
    blob = hex_records(texts, 4)
    assert blob == b"".join(b"\0" + bytes([i]) * 4 for i in range(5))
    assert split_records(blob, 5, 1, 4) == [bytes([i]) * 4 for i in range(5)]
    assert hex_records([], 4) == b""
    for bad in (["0x0000000"], ["0X00000000"], ["x000000000"], ["0x00x00000"], ["0x0000000g"],
                [b"0x00000000"], ["0x000000\u00e9"]):  # fmt: skip
        assert hex_records(bad, 4) is None
    assert load_json(b"[NaN]")[0] != load_json(b"[NaN]")[0]  # json's extension still loads
    assert has_float({"a": [1, {"b": 2.0}]}) and not has_float({"a": [1, "2.0"]})
