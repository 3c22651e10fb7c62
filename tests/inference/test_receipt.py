"""The receipt format: the server's direct EIP-712 hash equals eth-account's, for any input."""

from __future__ import annotations

import hashlib

import pytest
from eth_account import Account
from eth_account.messages import _hash_eip191_message, encode_defunct, encode_typed_data
from hypothesis import given, settings
from hypothesis import strategies as st

from veil.inference.receipt import (
    ECDSA,
    ED25519,
    Receipt,
    SignatureProblem,
    SigningKeys,
    attestation_digest,
    report_data,
    verify_receipt_signature,
    verify_text_signature,
)

KEYS = SigningKeys(bytes.fromhex("11" * 32), bytes.fromhex("22" * 32))
hex32 = st.binary(min_size=32, max_size=32).map(bytes.hex)
uint64 = st.integers(0, 2**64 - 1)

receipts = st.builds(
    Receipt,
    id=st.text(max_size=40),
    request_hash=hex32,
    response_hash=hex32,
    model=st.text(max_size=40),
    prompt_tokens=uint64,
    completion_tokens=uint64,
    attestation_digest=hex32,
    issued_at=uint64,
)


@settings(max_examples=60, deadline=None)
@given(receipts)
def test_receipt_digest_matches_eth_account(receipt: Receipt) -> None:
    signable = encode_typed_data(full_message=receipt.typed_data())
    assert _hash_eip191_message(signable) == receipt.digest()
    signature = KEYS.sign_receipt(receipt)
    assert Account.recover_message(signable, signature=signature) == KEYS.ecdsa_address
    assert Receipt.from_message(receipt.message()) == receipt


@settings(max_examples=40, deadline=None)
@given(st.text(max_size=200))
def test_text_signatures_verify_both_ways(text: str) -> None:
    ecdsa = KEYS.sign_text(text, ECDSA)
    assert Account.recover_message(encode_defunct(text=text), signature=ecdsa) == KEYS.ecdsa_address
    verify_text_signature(text, ecdsa, KEYS.ecdsa_address, ECDSA)
    verify_text_signature(text, KEYS.sign_text(text, ED25519), KEYS.ed25519_public_key, ED25519)


def test_wrong_signer_or_text_is_refused() -> None:
    other = SigningKeys()
    text = "a:b"
    with pytest.raises(SignatureProblem, match="not"):
        verify_text_signature(text, other.sign_text(text, ECDSA), KEYS.ecdsa_address, ECDSA)
    with pytest.raises(SignatureProblem, match="ed25519"):
        verify_text_signature("a:c", KEYS.sign_text(text, ED25519), KEYS.ed25519_public_key,
                              ED25519)  # fmt: skip
    with pytest.raises(SignatureProblem, match="65 bytes"):
        verify_text_signature(text, "0x1234", KEYS.ecdsa_address, ECDSA)
    receipt = Receipt("r", "00" * 32, "11" * 32, "m", 1, 2, "22" * 32, 3)
    signature = KEYS.sign_receipt(receipt)
    with pytest.raises(SignatureProblem):
        verify_receipt_signature(replace_tokens(receipt), signature, KEYS.ecdsa_address)


def replace_tokens(receipt: Receipt) -> Receipt:
    return Receipt(**{**receipt.__dict__, "completion_tokens": receipt.completion_tokens + 1})


def test_report_data_layout_and_digest() -> None:
    address = bytes.fromhex(KEYS.ecdsa_address[2:])
    nonce = bytes(range(32))
    assert report_data(address, nonce) == address + bytes(12) + nonce
    with pytest.raises(ValueError):
        report_data(address, b"short")
    identity: dict[str, str | None] = {name: "AB" * 48 for name in ("mr_td", "rtmr0", "rtmr1")}
    identity.update(rtmr2=None, app_id="cd" * 20, compose_hash="ef" * 32, os_image_hash=None)
    canonical = (
        '{"app_id":"' + "cd" * 20 + '","compose_hash":"' + "ef" * 32 + '","mr_td":"'
        + "ab" * 48 + '","os_image_hash":"","rtmr0":"' + "ab" * 48 + '","rtmr1":"' + "ab" * 48
        + '","rtmr2":"","signing_address":"' + KEYS.ecdsa_address.lower() + '"}'
    )  # fmt: skip
    expected = hashlib.sha256(canonical.encode()).hexdigest()
    assert attestation_digest(identity, KEYS.ecdsa_address) == expected
    identity["compose_hash"] = "00" * 32
    assert attestation_digest(identity, KEYS.ecdsa_address) != expected
