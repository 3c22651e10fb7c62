"""The signed messages: keys as the contract derives them, signatures that recover to the
customer (the contract-side check is in tests/contracts/market and tests/market e2e)."""

from __future__ import annotations

from eth_account import Account
from eth_account.messages import encode_typed_data
from eth_utils import keccak

from veil.market.typed_data import (
    OPEN_LEASE_TYPES,
    PERMIT_TYPES,
    OpenLease,
    deployment_key,
    domain_from_eip5267,
    instance_type_key,
    sign_open_lease,
    sign_permit,
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
