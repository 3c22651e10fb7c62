"""SS58, storage keys and AccountInfo decoding, cross-checked against substrate-interface."""

from __future__ import annotations

import os

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scalecodec.base import RuntimeConfiguration
from scalecodec.type_registry import load_type_registry_preset
from scalecodec.utils.ss58 import ss58_decode, ss58_encode

from veil.errors import InputError
from veil.substrate import ss58
from veil.substrate.storage import (
    SYSTEM_ACCOUNT_PREFIX,
    TOTAL_ISSUANCE_KEY,
    AccountInfo,
    account_id_of_key,
    account_key,
    decode_account_info,
    twox128,
)

u32 = st.integers(0, 2**32 - 1)
u128 = st.integers(0, 2**128 - 1)


@given(st.binary(min_size=32, max_size=32), st.sampled_from([0, 2, 30, 42, 63, 64, 255, 2254]))
@settings(max_examples=60, deadline=None)
def test_ss58_matches_substrate_interface(account: bytes, prefix: int) -> None:
    ours = ss58.encode(account, prefix)
    assert ours == ss58_encode(account, ss58_format=prefix)
    assert ss58.decode(ours, prefix) == account
    assert ss58_decode(ours, valid_ss58_format=prefix) == account.hex()


def test_ss58_refuses_other_networks_and_typos() -> None:
    account = bytes(range(32))
    polkadot = ss58.encode(account, 0)
    with pytest.raises(InputError, match=r"network prefix 0, expected 30"):
        ss58.decode(polkadot)
    assert ss58.decode(polkadot, None) == account
    phala = ss58.encode(account)
    typo = phala[:-3] + ("2" if phala[-3] != "2" else "3") + phala[-2:]
    with pytest.raises(InputError, match=r"checksum|base58"):
        ss58.decode(typo)
    with pytest.raises(InputError, match=r"expected 32 bytes"):
        ss58.parse_account("0x1234")
    assert ss58.parse_account("0x" + account.hex()) == account


def test_well_known_storage_prefixes() -> None:
    # The constants every Substrate explorer shows for these items.
    assert SYSTEM_ACCOUNT_PREFIX.hex() == (
        "26aa394eea5630e07c48ae0c9558cef7b99d880ec681799c0cf30e8886371da9"
    )
    assert TOTAL_ISSUANCE_KEY.hex() == (
        "c2261276cc9d1f8598ea4b6a74b15c2f57c875e4cff74148e4628f264b974c80"
    )
    assert twox128(b"Timestamp").hex() == "f0c365c3cf59d671eb72da0e7a4113c4"


def test_account_key_round_trip_and_refusals() -> None:
    account = os.urandom(32)
    key = account_key(account)
    assert account_id_of_key(key) == account
    with pytest.raises(InputError, match=r"blake2_128 hash does not match"):
        account_id_of_key(key[:40] + bytes([key[40] ^ 1]) + key[41:])
    with pytest.raises(InputError, match=r"not a System.Account key"):
        account_id_of_key(TOTAL_ISSUANCE_KEY + account)
    with pytest.raises(InputError, match=r"key of 79 bytes"):
        account_id_of_key(key[:-1])


@given(st.tuples(u32, u32, u32, u32, u128, u128, u128, u128))
@settings(max_examples=40, deadline=None)
def test_account_info_matches_scalecodec(fields: tuple[int, ...]) -> None:
    info = AccountInfo(*fields)
    encoded = info.encode()
    assert len(encoded) == 80
    assert decode_account_info(encoded) == info
    config = RuntimeConfiguration()
    config.update_type_registry(load_type_registry_preset("legacy"))
    config.update_type_registry(
        {"types": {"VeilAccountData": {"type": "struct", "type_mapping": [
            ["free", "u128"], ["reserved", "u128"], ["frozen", "u128"], ["flags", "u128"]]},
         "VeilAccountInfo": {"type": "struct", "type_mapping": [
            ["nonce", "u32"], ["consumers", "u32"], ["providers", "u32"],
            ["sufficients", "u32"], ["data", "VeilAccountData"]]}}}
    )  # fmt: skip
    from scalecodec.base import ScaleBytes

    decoded = config.create_scale_object("VeilAccountInfo", ScaleBytes(encoded)).decode()
    assert decoded["nonce"] == info.nonce and decoded["sufficients"] == info.sufficients
    assert decoded["data"]["free"] == info.free and decoded["data"]["flags"] == info.flags
    assert decoded["data"]["reserved"] == info.reserved
    assert decoded["data"]["frozen"] == info.frozen


def test_account_info_of_wrong_size_names_the_key() -> None:
    with pytest.raises(InputError, match=r"storage key 0xabc: AccountInfo of 79 bytes"):
        decode_account_info(b"\0" * 79, "0xabc")
