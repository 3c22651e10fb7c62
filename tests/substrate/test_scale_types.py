"""Storage keys and values decoded with the runtime's own registry, and refused when wrong."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
import xxhash

from veil.migration.phala_staking import pallet_ids
from veil.substrate.metadata import load_metadata
from veil.substrate.scale import encode_compact
from veil.substrate.scale_types import ScaleError, StorageMap, TypeRegistry

METADATA = Path(__file__).resolve().parents[2].parent / "shared/fixtures/substrate/metadata"


@pytest.fixture(scope="module")
def registry() -> TypeRegistry:
    return TypeRegistry(load_metadata(METADATA / "phala-1291.scale"))


def _twox64(data: bytes) -> bytes:
    return xxhash.xxh64_digest(data, seed=0)[::-1]


def test_nft_key_and_value(registry: TypeRegistry) -> None:
    nfts = StorageMap(registry, "RmrkCore", "Nfts")
    key = nfts.prefix + _twox64(b"\x13\x27\0\0") + b"\x13\x27\0\0" + _twox64(b"\x05\0\0\0")
    key += b"\x05\0\0\0"
    assert nfts.decode_key(key) == [10003, 5]
    owner = bytes(range(32))
    value = b"\x00" + owner + b"\x00" + encode_compact(2) + b"hi" + b"\x00" + b"\x00\x01"
    info = nfts.decode_value(value, key)
    assert info["owner"] == ("AccountId", owner)
    assert info["royalty"] is None and info["metadata"] == b"hi" and info["transferable"] is True
    with pytest.raises(ScaleError, match="Twox64Concat hash does not match"):
        nfts.decode_key(key[:-1] + b"\x06")
    with pytest.raises(ScaleError, match="1 bytes left"):
        nfts.decode_value(value + b"\x00", key)
    with pytest.raises(ScaleError, match=r"does not decode|past"):
        nfts.decode_value(value[:10], key)
    with pytest.raises(ScaleError, match="no variant with index 7"):
        nfts.decode_value(b"\x07" + value[1:], key)


def test_asset_account_key_with_two_blake2_parts(registry: TypeRegistry) -> None:
    accounts = StorageMap(registry, "Assets", "Account")
    who = b"\x11" * 32
    parts = [(10000).to_bytes(4, "little"), who]
    key = accounts.prefix + b"".join(hashlib.blake2b(p, digest_size=16).digest() + p for p in parts)
    assert accounts.decode_key(key) == [10000, who]
    value = (5).to_bytes(16, "little") + b"\x00" + b"\x02" + (9).to_bytes(16, "little")
    assert accounts.decode_value(value, key) == {
        "balance": 5, "status": "Liquid", "reason": ("DepositHeld", 9), "extra": [],
    }  # fmt: skip


def test_compact_round_trip(registry: TypeRegistry) -> None:
    for number in (0, 63, 64, 16383, 16384, 2**30 - 1, 2**30, 2**64, 2**128 - 1):
        decoded, end = registry.decoder(_compact_type(registry))(encode_compact(number), 0)
        assert decoded == number and end == len(encode_compact(number))


def _compact_type(registry: TypeRegistry) -> int:
    return next(i for i, t in registry.metadata.types.items() if "compact" in t["def"])


def test_pallet_ids_name_the_treasury(registry: TypeRegistry) -> None:
    names = pallet_ids(registry.metadata)
    assert names["py/trsry"] == "Treasury" and names["phala/pp"].startswith("PhalaComputation")
