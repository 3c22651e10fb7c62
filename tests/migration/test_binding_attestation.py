"""veil.migration.attestation: the EIP-712 Binding digest, signing, recovery and ordering.

The contract side of the same digest is checked in tests/contracts/migration."""

from __future__ import annotations

import pytest
from eth_account import Account
from eth_account.messages import encode_typed_data
from hypothesis import given, settings
from hypothesis import strategies as st

from veil.errors import InputError
from veil.migration.attestation import (
    BINDING_TYPE,
    BINDING_TYPEHASH,
    DOMAIN_TYPE,
    DOMAIN_TYPEHASH,
    HALF_N,
    SECP256K1_N,
    Attestation,
    binding_digest,
    binding_typed_data,
    order_attestations,
    published_signature,
    recover_signer,
    sign_binding,
    signature_hash,
)

MIGRATOR = "0x5FbDB2315678afecb367f032d93F642f64180aa3"
RECEIVER = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"
ACCOUNT = bytes.fromhex("d43593c715fdd31c61141abd04a99fd6822c8558854ccde39a5684e7a56da27d")
KEYS = [bytes([i + 1]) * 32 for i in range(4)]
SIG = signature_hash(b"\x42" * 64, "sr25519")


def test_binding_typehash_is_the_documented_type() -> None:
    from eth_utils import keccak

    assert (
        keccak(text="Binding(bytes32 account,address receiver,bytes32 signatureHash)")
        == BINDING_TYPEHASH
        == keccak(text=BINDING_TYPE)
    )
    assert keccak(text=DOMAIN_TYPE) == DOMAIN_TYPEHASH  # both are written out as hex


@pytest.mark.parametrize(
    ("scheme", "bare"),
    [("ed25519", b"\x01" * 64), ("sr25519", b"\x02" * 64), ("ecdsa", b"\x03" * 65)],
)
def test_signature_hash_is_keccak_of_the_scale_multisignature(scheme, bare) -> None:
    from eth_utils import keccak

    variant = {"ed25519": 0, "sr25519": 1, "ecdsa": 2}[scheme]
    assert signature_hash(bare, scheme) == keccak(bytes([variant]) + bare)
    assert signature_hash(bytes([variant]) + bare, scheme) == signature_hash(bare, scheme)
    assert published_signature(bytes([variant]) + bare, scheme) == bare
    others = {"ed25519", "sr25519", "ecdsa"} - {scheme}
    assert all(signature_hash(bare, o) != signature_hash(bare, scheme) for o in others
               if len(bare) == {"ecdsa": 65}.get(o, 64))  # fmt: skip


@pytest.mark.parametrize(
    ("signature", "scheme", "problem"),
    [
        (b"\x01" * 63, "sr25519", "sr25519 signature of 63 bytes: expected 64"),
        (b"\x00" * 65, "sr25519", "sr25519 signature of 65 bytes: expected 64"),
        (b"\x01" * 64, "ecdsa", "ecdsa signature of 64 bytes: expected 65"),
        (b"\x01" * 64, "rsa", "signature scheme 'rsa'"),
    ],
)
def test_signature_hash_refuses_what_no_claim_could_publish(signature, scheme, problem) -> None:
    with pytest.raises(InputError, match=problem):
        signature_hash(signature, scheme)


@settings(max_examples=30, deadline=None)
@given(
    account=st.binary(min_size=32, max_size=32),
    receiver=st.binary(min_size=20, max_size=20),
    chain_id=st.integers(1, 2**64),
)
def test_digest_equals_eth_account_typed_data_hash(account, receiver, chain_id) -> None:
    receiver_hex = "0x" + receiver.hex()
    signable = encode_typed_data(
        full_message=binding_typed_data(account, receiver_hex, SIG, chain_id, MIGRATOR)
    )
    from eth_utils import keccak

    expected = keccak(b"\x19" + signable.version + signable.header + signable.body)
    assert binding_digest(account, receiver_hex, SIG, chain_id, MIGRATOR) == expected


def test_sign_and_recover_round_trip_and_wallet_signature_agrees() -> None:
    signed = sign_binding(KEYS[0], ACCOUNT, RECEIVER, SIG, 8453, MIGRATOR)
    assert signed.signer == Account.from_key(KEYS[0]).address
    assert recover_signer(signed, ACCOUNT, RECEIVER, SIG, 8453, MIGRATOR) == signed.signer
    assert recover_signer(
        signed.as_tuple(), "0x" + ACCOUNT.hex(), RECEIVER, "0x" + SIG.hex(), 8453, MIGRATOR
    ) == (signed.signer)
    wallet = Account.sign_typed_data(
        KEYS[0], full_message=binding_typed_data(ACCOUNT, RECEIVER, SIG, 8453, MIGRATOR)
    )
    assert (wallet.v, wallet.r, wallet.s) == (
        signed.v,
        int.from_bytes(signed.r, "big"),
        int.from_bytes(signed.s, "big"),
    )
    assert int.from_bytes(signed.s, "big") <= HALF_N


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("receiver", "0x70997970C51812dc3A010C7d01b50e0d17dc79C9"),
        ("chain", 1),
        ("account", b"\1" * 32),
        ("signature", signature_hash(b"\x43" * 64, "sr25519")),
        ("signature", signature_hash(b"\x42" * 64, "ed25519")),
    ],
)
def test_recovery_over_another_binding_gives_another_signer(field, value) -> None:
    signed = sign_binding(KEYS[0], ACCOUNT, RECEIVER, SIG, 8453, MIGRATOR)
    args = {"account": ACCOUNT, "receiver": RECEIVER, "chain": 8453, "signature": SIG}
    args[field] = value
    recovered = recover_signer(
        signed, args["account"], args["receiver"], args["signature"], args["chain"], MIGRATOR
    )
    assert recovered != signed.signer


def test_recover_refuses_what_the_contract_refuses() -> None:
    signed = sign_binding(KEYS[0], ACCOUNT, RECEIVER, SIG, 8453, MIGRATOR)
    high_s = (SECP256K1_N - int.from_bytes(signed.s, "big")).to_bytes(32, "big")
    with pytest.raises(InputError, match="high-s"):
        recover_signer((55 - signed.v, signed.r, high_s), ACCOUNT, RECEIVER, SIG, 8453, MIGRATOR)
    with pytest.raises(InputError, match="must be 27 or 28"):
        recover_signer((29, signed.r, signed.s), ACCOUNT, RECEIVER, SIG, 8453, MIGRATOR)


@pytest.mark.parametrize(
    ("account", "receiver", "migrator", "problem"),
    [
        (b"\1" * 31, RECEIVER, MIGRATOR, "32-byte account id"),
        ("0x1234", RECEIVER, MIGRATOR, "32-byte account id"),
        (ACCOUNT, "0x1234", MIGRATOR, "receiver '0x1234': not an Ethereum address"),
        (ACCOUNT, RECEIVER, "nope", "migrator 'nope': not an Ethereum address"),
    ],
)
def test_bad_input_is_one_line_naming_the_field(account, receiver, migrator, problem) -> None:
    with pytest.raises(InputError, match=problem) as raised:
        binding_digest(account, receiver, SIG, 1, migrator)
    assert "\n" not in str(raised.value)


def test_a_signature_hash_of_the_wrong_size_is_one_line() -> None:
    with pytest.raises(InputError, match="signature hash") as raised:
        binding_digest(ACCOUNT, RECEIVER, b"\x01" * 31, 1, MIGRATOR)
    assert "\n" not in str(raised.value)


def test_order_attestations_sorts_by_signer_and_refuses_duplicates() -> None:
    signed = [sign_binding(k, ACCOUNT, RECEIVER, SIG, 1, MIGRATOR) for k in KEYS]
    ordered = order_attestations(reversed(signed))
    numbers = [int(a.signer, 16) for a in ordered]
    assert numbers == sorted(numbers) and len(set(numbers)) == len(KEYS)
    twin = Attestation(signed[0].signer.lower(), signed[0].v, signed[0].r, signed[0].s)
    with pytest.raises(InputError, match="appears twice"):
        order_attestations([*signed, twin])
