"""veil.compute.attestation: EIP-712 worker attestations built, signed and recovered
exactly as ComputeRegistry checks them (the contract-side digest comparison lives in
tests/contracts/compute/)."""

from __future__ import annotations

import hashlib

import pytest
from eth_account import Account
from eth_account.messages import encode_typed_data
from eth_utils import keccak
from hypothesis import given, settings
from hypothesis import strategies as st

from veil.compute import attestation as att
from veil.errors import InputError

KEYS = [Account.from_key(keccak(text=f"attestation test key {i}")) for i in range(3)]
DOMAIN = att.RegistryDomain(31337, "0x" + "ab" * 20)


def sample(**changes: object) -> att.WorkerAttestation:
    fields: dict[str, object] = {
        "worker": "0x" + "11" * 20,
        "provider": "0x" + "22" * 20,
        "quote_hash": b"\x01" * 32,
        "measurement_hash": b"\x02" * 32,
        "os_image_hash": b"\x03" * 32,
        "compose_hash": b"\x04" * 32,
        "gpu_model": att.GpuModel.H100,
        "gpu_count": 8,
        "expiry": 1_900_000_000,
        "evidence_hash": att.evidence_hash(b"evidence"),
    }
    fields.update(changes)
    return att.WorkerAttestation(**fields)  # type: ignore[arg-type]


def test_type_string_is_the_contracts() -> None:
    assert att.TYPE_STRING == (
        "WorkerAttestation(address worker,address provider,bytes32 quoteHash,"
        "bytes32 measurementHash,bytes32 osImageHash,bytes32 composeHash,uint8 gpuModel,"
        "uint16 gpuCount,uint64 expiry,bytes32 evidenceHash)"
    )


def test_digest_is_eip712_by_hand() -> None:
    a = sample()
    domain_type = keccak(
        text="EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)"
    )
    separator = keccak(
        domain_type
        + keccak(text="veil ComputeRegistry")
        + keccak(text="1")
        + (31337).to_bytes(32, "big")
        + bytes(12)
        + bytes.fromhex("ab" * 20)
    )
    word = lambda n: n.to_bytes(32, "big")  # noqa: E731
    struct = keccak(
        att.type_hash()
        + bytes(12)
        + bytes.fromhex("11" * 20)
        + bytes(12)
        + bytes.fromhex("22" * 20)
        + a.quote_hash
        + a.measurement_hash
        + a.os_image_hash
        + a.compose_hash
        + word(1)
        + word(8)
        + word(1_900_000_000)
        + a.evidence_hash
    )
    assert att.digest(a, DOMAIN) == keccak(b"\x19\x01" + separator + struct)


def test_sign_recovers_to_signer_and_matches_sign_typed_data() -> None:
    a = sample()
    sig = att.sign(a, DOMAIN, KEYS[0].key)
    assert len(sig) == 65 and sig[64] in (27, 28)
    assert att.recover(a, DOMAIN, sig) == KEYS[0].address
    signable = encode_typed_data(full_message=att.typed_data(a, DOMAIN))
    reference = Account.sign_message(signable, KEYS[0].key)
    assert sig == bytes(reference.signature)


def test_signature_bound_to_every_field_and_domain() -> None:
    a = sample()
    sig = att.sign(a, DOMAIN, KEYS[0].key)
    for changed in (
        sample(provider="0x" + "33" * 20),
        sample(expiry=1_900_000_001),
        sample(gpu_count=7),
        sample(evidence_hash=att.evidence_hash(b"other")),
    ):
        assert att.recover(changed, DOMAIN, sig) != KEYS[0].address
    other_chain = att.RegistryDomain(1, DOMAIN.registry)
    assert att.recover(a, other_chain, sig) != KEYS[0].address


def test_recover_refuses_high_s_bad_v_and_length() -> None:
    a = sample()
    sig = att.sign(a, DOMAIN, KEYS[0].key)
    s = int.from_bytes(sig[32:64], "big")
    high = sig[:32] + (att.SECP256K1_N - s).to_bytes(32, "big") + bytes([55 - sig[64]])
    with pytest.raises(InputError, match="high-s"):
        att.recover(a, DOMAIN, high)
    with pytest.raises(InputError, match="v=0"):
        att.recover(a, DOMAIN, sig[:64] + b"\x00")
    with pytest.raises(InputError, match="64 bytes"):
        att.recover(a, DOMAIN, sig[:64])


def test_order_signatures_sorts_by_signer_and_refuses_duplicates() -> None:
    a = sample()
    sigs = [att.sign(a, DOMAIN, k.key) for k in KEYS]
    ordered = att.order_signatures(a, DOMAIN, list(reversed(sigs)))
    signers = [int(att.recover(a, DOMAIN, s), 16) for s in ordered]
    assert signers == sorted(signers) and len(set(signers)) == 3
    with pytest.raises(InputError, match="two signatures from"):
        att.order_signatures(a, DOMAIN, [sigs[0], sigs[1], sigs[0]])


def test_json_round_trip() -> None:
    a = sample()
    data = a.to_json()
    assert data["evidenceHash"] == "0x" + hashlib.sha256(b"evidence").hexdigest()
    assert att.WorkerAttestation.from_json(data) == a


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"quoteHash": "0x1234"}, "attestation quoteHash: expected 32 bytes"),
        ({"quoteHash": "0xzz"}, "is not hex"),
        ({"composeHash": 5}, "attestation composeHash: expected 0x-prefixed hex"),
        ({"worker": "0x1234"}, "attestation worker"),
        ({"provider": None}, "attestation provider"),
        ({"gpuModel": 256}, "is not a uint8"),
        ({"gpuCount": -1}, "is not a uint16"),
        ({"expiry": 2**64}, "is not a uint64"),
        ({"expiry": True}, "is not a uint64"),
    ],
)
def test_from_json_refuses_bad_fields(overrides: dict[str, object], message: str) -> None:
    with pytest.raises(InputError, match=message):
        att.WorkerAttestation.from_json({**sample().to_json(), **overrides})


def test_from_json_refuses_non_object_and_missing_fields() -> None:
    with pytest.raises(InputError, match="expected a JSON object"):
        att.WorkerAttestation.from_json([])
    data = sample().to_json()
    del data["expiry"], data["worker"]
    with pytest.raises(InputError, match="missing field\\(s\\) worker, expiry"):
        att.WorkerAttestation.from_json(data)


def test_domain_validation() -> None:
    with pytest.raises(InputError, match="chain id"):
        att.RegistryDomain(0, "0x" + "ab" * 20)
    with pytest.raises(InputError, match="registry"):
        att.RegistryDomain(1, "not an address")


@settings(max_examples=25, deadline=None)
@given(
    key_index=st.integers(0, 2),
    count=st.integers(0, 2**16 - 1),
    expiry=st.integers(0, 2**64 - 1),
    evidence=st.binary(max_size=64),
)
def test_sign_recover_round_trip(key_index: int, count: int, expiry: int, evidence: bytes) -> None:
    a = sample(gpu_count=count, expiry=expiry, evidence_hash=att.evidence_hash(evidence))
    sig = att.sign(a, DOMAIN, KEYS[key_index].key)
    assert att.recover(a, DOMAIN, sig) == KEYS[key_index].address
