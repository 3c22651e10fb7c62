"""Storage read in the layout the runtime's own metadata declares, on real chain data."""

from __future__ import annotations

import copy
import json
from functools import cache
from pathlib import Path

import pytest

from veil.errors import InputError
from veil.migration.snapshot import snapshot_from_raw
from veil.substrate.account_layout import account_layout
from veil.substrate.metadata import Metadata, load_metadata, parse_metadata
from veil.substrate.storage import account_key

FIXTURES = Path(__file__).resolve().parents[2].parent / "shared" / "fixtures" / "substrate"
PHALA_1291 = FIXTURES / "metadata" / "phala-1291.scale"


@cache
def _phala() -> Metadata:
    return load_metadata(PHALA_1291)


def _variant(change) -> Metadata:  # type: ignore[no-untyped-def]
    """phala-1291's registry with System.Account's layout changed as another runtime has it."""
    metadata = copy.deepcopy(_phala())
    change(metadata.types)
    return metadata


def _account_type(types: dict) -> dict:  # type: ignore[type-arg]
    return next(t for t in types.values() if t.get("path") == ["frame_system", "AccountInfo"])


def _u64_nonce(types: dict) -> None:  # type: ignore[type-arg]
    types[11]["def"] = {"primitive": "u64"}  # type 11 is u64 in phala-1291
    _account_type(types)["def"]["composite"]["fields"][0]["type"] = 11


def test_real_metadata_layouts() -> None:
    for name in ("phala-1291", "phala-1250", "khala-1251"):
        layout = account_layout(load_metadata(FIXTURES / "metadata" / f"{name}.scale"))
        assert layout.builtin, name


def test_metadata_in_every_documented_form(tmp_path: Path) -> None:
    raw = PHALA_1291.read_bytes()
    (tmp_path / "meta.hex").write_text("0x" + raw.hex() + "\n")
    answer = {"jsonrpc": "2.0", "id": 1, "result": "0x" + raw.hex()}
    (tmp_path / "meta.json").write_text(json.dumps(answer))
    for path in ("meta.hex", "meta.json"):
        assert set(load_metadata(tmp_path / path).pallets) == set(_phala().pallets)
    for bad, message in [(b"0xzz", "not hex"), (b"{}", "without a hex"), (b"junk", "expected raw")]:
        with pytest.raises(InputError, match=message):
            parse_metadata(bad, "bad")


def test_kilt_accounts_decode_with_a_u64_nonce_layout() -> None:
    """KILT's real genesis stores AccountInfo with a u64 nonce (84 bytes)."""
    spec = FIXTURES / "specs" / "kilt-spiritnet.json"
    with pytest.raises(InputError, match=r"84 bytes, not the built-in .*--metadata"):
        snapshot_from_raw(spec)
    snap = snapshot_from_raw(spec, metadata=_variant(_u64_nonce))
    assert snap.accounts and snap.source["account_layout"].startswith(
        "frame_system::AccountInfo {nonce: u64"
    )
    top = json.loads(spec.read_text())["genesis"]["raw"]["top"]
    for row in snap.accounts[:5]:
        (value,) = [v for k, v in top.items() if k == "0x" + account_key(row.account).hex()]
        raw = bytes.fromhex(value[2:])
        assert row.nonce == int.from_bytes(raw[:8], "little")
        assert row.free == int.from_bytes(raw[20:36], "little")
        assert row.reserved == int.from_bytes(raw[36:52], "little")


def test_old_balances_layout_names_misc_and_fee_frozen(tmp_path: Path) -> None:
    def old_balances(types: dict) -> None:  # type: ignore[type-arg]
        data = next(
            t
            for t in types.values()
            if t.get("path") == ["pallet_balances", "types", "AccountData"]
        )
        fields = data["def"]["composite"]["fields"]
        fields[2]["name"], fields[3]["name"] = "misc_frozen", "fee_frozen"
        fields[3]["type"] = fields[2]["type"]  # both u128, no ExtraFlags
        account = _account_type(types)["def"]["composite"]["fields"]
        del account[3]  # no `sufficients` either

    spec = json.loads((FIXTURES / "specs" / "khala.json").read_text())
    top = spec["genesis"]["raw"]["top"]
    for key, value in list(top.items()):
        if key.startswith("0x26aa394eea5630e07c48ae0c9558cef7b99d880ec681799c0cf30e8886371da9"):
            raw = bytes.fromhex(value[2:])
            misc, fee = (7).to_bytes(16, "little"), (9).to_bytes(16, "little")
            top[key] = "0x" + (raw[:12] + raw[16:48] + misc + fee).hex()  # 76 bytes
    path = tmp_path / "old.json"
    path.write_text(json.dumps(spec))
    snap = snapshot_from_raw(path, metadata=_variant(old_balances))
    assert "data.misc_frozen: u128, data.fee_frozen: u128" in snap.source["account_layout"]
    assert snap.source["frozen"] == "max(misc_frozen, fee_frozen)"
    assert {(row.frozen, row.flags, row.sufficients) for row in snap.accounts} == {(9, 0, 0)}
    assert snap.total_issuance == sum(row.free + row.reserved for row in snap.accounts)
