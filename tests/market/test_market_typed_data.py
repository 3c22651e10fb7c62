"""The signed messages: keys as the contract derives them, signatures that recover to the
customer (the contract-side check is in tests/contracts/market and tests/market e2e)."""

from __future__ import annotations

import json

import pytest
from eth_account import Account
from eth_account.messages import encode_typed_data
from eth_utils import keccak

from veil.errors import InputError
from veil.market.typed_data import (
    OPEN_LEASE_TYPES,
    PERMIT_TYPES,
    USAGE_TYPES,
    OpenLease,
    UsageVoucher,
    deployment_key,
    domain_from_eip5267,
    instance_type_key,
    sign_open_lease,
    sign_permit,
    sign_usage,
    usage_digest,
    usage_typed_data,
)

KEY = keccak(text="veil market typed data test")
ME = Account.from_key(KEY).address
DOMAIN = {"name": "veil Market", "version": "1", "chainId": 73217, "verifyingContract": ME}


def test_type_strings_match_the_contract() -> None:
    fields = ",".join(f"{f['type']} {f['name']}" for f in OPEN_LEASE_TYPES["OpenLease"])
    assert f"OpenLease({fields})" == (
        "OpenLease(address customer,address provider,bytes32 deployment,bytes32 instanceType,"
        "uint256 amount,uint256 maxRate,uint256 deadline)"
    )
    permit = ",".join(f"{f['type']} {f['name']}" for f in PERMIT_TYPES["Permit"])
    assert permit == "address owner,address spender,uint256 value,uint256 nonce,uint256 deadline"


def test_keys() -> None:
    assert instance_type_key("h100") == keccak(text="h100")
    hex_id = "0x" + "ab" * 32
    assert deployment_key(hex_id) == bytes.fromhex("ab" * 32)
    assert deployment_key("ab" * 32) == bytes.fromhex("ab" * 32)
    uuid = "5f0c6c1e-0b7e-4b83-9a51-0d1c2f3e4a5b"
    assert deployment_key(uuid) == keccak(text=uuid)
    assert deployment_key("0x" + "zz" * 32) == keccak(text="0x" + "zz" * 32)


def test_domain_from_eip5267_answer() -> None:
    answer = (b"\x0f", "veil Market", "1", 73217, ME, b"\x00" * 32, [])
    assert domain_from_eip5267(answer) == DOMAIN


def test_open_lease_signature_recovers_to_the_customer() -> None:
    request = OpenLease(ME, ME, b"\x01" * 32, instance_type_key("h100"), 10**18, 5, 99)
    signature = sign_open_lease(KEY, DOMAIN, request)
    assert len(signature) == 65
    typed = encode_typed_data(
        domain_data=DOMAIN, message_types=OPEN_LEASE_TYPES, message_data=request.message()
    )
    assert Account.recover_message(typed, signature=signature) == ME
    other = OpenLease(ME, ME, b"\x01" * 32, instance_type_key("h100"), 10**18 + 1, 5, 99)
    typed_other = encode_typed_data(
        domain_data=DOMAIN, message_types=OPEN_LEASE_TYPES, message_data=other.message()
    )
    assert Account.recover_message(typed_other, signature=signature) != ME
    assert request.args() == (ME, ME, b"\x01" * 32, instance_type_key("h100"), 10**18, 5, 99)


def test_permit_signature_recovers_to_the_owner() -> None:
    v, r, s = sign_permit(KEY, DOMAIN, ME, 7, 0, 100)
    message = {"owner": ME, "spender": ME, "value": 7, "nonce": 0, "deadline": 100}
    typed = encode_typed_data(domain_data=DOMAIN, message_types=PERMIT_TYPES, message_data=message)
    assert Account.recover_message(typed, vrs=(v, r, s)) == ME


def test_usage_type_string_matches_the_contract() -> None:
    fields = ",".join(f"{f['type']} {f['name']}" for f in USAGE_TYPES["Usage"])
    assert (
        f"Usage({fields})" == "Usage(uint256 leaseId,address meter,uint256 tokens,uint256 amount)"
    )


def test_usage_typed_data_is_a_complete_eip712_document() -> None:
    typed = usage_typed_data(73217, ME, 2**255 + 7, ME, 1_234, 10**21)
    assert typed["primaryType"] == "Usage"
    assert typed["domain"] == DOMAIN
    assert [f["name"] for f in typed["types"]["EIP712Domain"]] == [
        "name",
        "version",
        "chainId",
        "verifyingContract",
    ]
    assert typed["message"] == {
        "leaseId": 2**255 + 7,
        "meter": ME,
        "tokens": 1_234,
        "amount": 10**21,
    }
    json.dumps(typed)  # a gateway serves it as it is
    with pytest.raises(ValueError, match="tokens must be a uint256"):
        usage_typed_data(73217, ME, 1, ME, -1, 0)
    with pytest.raises(ValueError, match="amount must be a uint256"):
        usage_typed_data(73217, ME, 1, ME, 0, 2**256)


def test_usage_signature_recovers_to_the_meter_over_the_digest() -> None:
    signature = sign_usage(KEY, 73217, ME, 5, 100, 10**15)
    digest = usage_digest(73217, ME, 5, ME, 100, 10**15)
    assert Account._recover_hash(digest, signature=signature) == ME
    typed = encode_typed_data(full_message=usage_typed_data(73217, ME, 5, ME, 100, 10**15))
    assert Account.recover_message(typed, signature=signature) == ME
    # Every field and the domain are bound: change one and the signer changes.
    for other in (
        usage_digest(73218, ME, 5, ME, 100, 10**15),
        usage_digest(73217, ME, 6, ME, 100, 10**15),
        usage_digest(73217, ME, 5, ME, 101, 10**15),
        usage_digest(73217, ME, 5, ME, 100, 10**15 + 1),
    ):
        assert other != digest
        assert Account._recover_hash(other, signature=signature) != ME


def _voucher_doc() -> dict:
    signature = sign_usage(KEY, 73217, ME, 5, 100, 10**15)
    return {
        "lease_id": "0x" + (5).to_bytes(32, "big").hex(),
        "meter": ME.lower(),
        "tokens": 100,
        "amount": str(10**15),
        "signature": "0x" + signature.hex(),
    }


def test_usage_voucher_from_the_gateway_json() -> None:
    voucher = UsageVoucher.from_json(_voucher_doc())
    assert (voucher.lease_id, voucher.meter, voucher.tokens, voucher.amount) == (
        5,
        ME,
        100,
        10**15,
    )
    assert voucher.signer(73217, ME) == ME
    assert voucher.signer(1, ME) != ME  # meant for another chain


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"lease_id": 5}, "lease_id 5 is not 0x-hex"),
        ({"lease_id": "0xzz"}, "is not 0x-hex"),
        ({"meter": "0x12"}, "meter '0x12' is not an address"),
        ({"tokens": "1.5"}, "tokens '1.5' is not a whole number"),
        ({"tokens": True}, "tokens True is not a whole number"),
        ({"amount": -1}, "amount -1 is outside uint256"),
        ({"amount": 1.0}, "amount 1.0 is not a whole number"),
        ({"signature": "0x00"}, "signature must be 0x-hex of 65 bytes"),
        ({"signature": "0xnothex"}, "signature must be 0x-hex of 65 bytes"),
    ],
)
def test_usage_voucher_json_refusals_name_the_field(change: dict, message: str) -> None:
    with pytest.raises(InputError, match=message):
        UsageVoucher.from_json(_voucher_doc() | change)


def test_usage_voucher_json_needs_every_field() -> None:
    doc = _voucher_doc()
    del doc["amount"]
    with pytest.raises(InputError, match="missing field 'amount'"):
        UsageVoucher.from_json(doc)
    with pytest.raises(InputError, match="expected a JSON object"):
        UsageVoucher.from_json([])
