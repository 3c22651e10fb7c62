"""veil.attestation.typed_data: the one EIP-712 encoder and signer every statement uses.

Checked against eth_account (an independent EIP-712 implementation) on random structs,
and for the refusals the contracts make (high-s, bad v, a signer twice)."""

from __future__ import annotations

import pytest
from eth_account import Account
from eth_account.messages import encode_typed_data
from eth_utils import keccak
from hypothesis import given, settings
from hypothesis import strategies as st

from veil.attestation.typed_data import (
    HALF_N,
    SECP256K1_N,
    DigestSigner,
    Domain,
    Signature,
    StructType,
    checksum,
    encode_signatures,
    order_by_signer,
    recover_digest,
    sign_digest,
)
from veil.errors import InputError

SAMPLE = StructType(
    "Sample",
    (("who", "address"), ("hash", "bytes32"), ("count", "uint64"), ("kind", "uint8"),
     ("flag", "bool")),
)  # fmt: skip
CONTRACT = "0x5FbDB2315678afecb367f032d93F642f64180aa3"
KEYS = [bytes([i + 1]) * 32 for i in range(5)]

addresses = st.binary(min_size=20, max_size=20).map(lambda raw: checksum("0x" + raw.hex(), "a"))
private_keys = st.integers(1, SECP256K1_N - 1).map(lambda n: n.to_bytes(32, "big"))


@settings(max_examples=40, deadline=None)
@given(
    name=st.text(max_size=20),
    chain_id=st.integers(1, 2**64),
    contract=addresses,
    who=addresses,
    digest=st.binary(min_size=32, max_size=32),
    count=st.integers(0, 2**64 - 1),
    kind=st.integers(0, 255),
    flag=st.booleans(),
)
def test_digest_equals_eth_accounts_encoding(name, chain_id, contract, who, digest, count, kind,
                                             flag) -> None:  # fmt: skip
    domain = Domain(name, "1", chain_id, contract)
    values = (who, digest, count, kind, flag)
    message = dict(zip([n for n, _ in SAMPLE.fields], values, strict=True))
    document = domain.document(SAMPLE, message)
    signable = encode_typed_data(full_message=document)
    assert domain.digest(SAMPLE.hash(values)) == keccak(
        b"\x19" + signable.version + signable.header + signable.body
    )
    assert domain.separator == signable.header


def test_type_string_and_hash() -> None:
    assert (
        SAMPLE.type_string == "Sample(address who,bytes32 hash,uint64 count,uint8 kind,bool flag)"
    )
    assert SAMPLE.typehash == keccak(text=SAMPLE.type_string)


@settings(max_examples=25, deadline=None)
@given(key=private_keys, digest=st.binary(min_size=32, max_size=32))
def test_signing_matches_eth_account_and_recovers(key: bytes, digest: bytes) -> None:
    signer = DigestSigner(key)
    assert signer.address == Account.from_key(key).address
    signature = signer.sign(digest)
    assert signature.to_bytes() == bytes(Account.unsafe_sign_hash(digest, key).signature)
    assert 0 < int.from_bytes(signature.s, "big") <= HALF_N  # always the low-s twin
    assert recover_digest(digest, signature) == signer.address
    assert recover_digest(digest, signature.to_bytes()) == signer.address
    assert sign_digest("0x" + key.hex(), digest) == signature


def test_recovery_refuses_what_contracts_refuse() -> None:
    digest = keccak(b"statement")
    good = sign_digest(KEYS[0], digest)
    s = int.from_bytes(good.s, "big")
    twin = Signature(55 - good.v, good.r, (SECP256K1_N - s).to_bytes(32, "big"))
    with pytest.raises(InputError, match="high-s"):
        recover_digest(digest, twin)
    with pytest.raises(InputError, match="high-s"):
        recover_digest(digest, Signature(good.v, good.r, bytes(32)))
    with pytest.raises(InputError, match="must be 27 or 28"):
        recover_digest(digest, Signature(1, good.r, good.s))
    with pytest.raises(InputError, match="does not recover"):
        recover_digest(digest, Signature(27, bytes(32), good.s))
    with pytest.raises(InputError, match="statement: 64 bytes, expected 65"):
        recover_digest(digest, good.to_bytes()[:64], "statement")
    assert recover_digest(keccak(b"other"), good) != Account.from_key(KEYS[0]).address


@settings(max_examples=20, deadline=None)
@given(st.permutations(range(len(KEYS))))
def test_order_by_signer_sorts_by_address_and_refuses_a_signer_twice(order) -> None:
    signers = [Account.from_key(KEYS[i]).address for i in order]
    ordered = order_by_signer((signer, signer) for signer in signers)
    assert [int(a, 16) for a in ordered] == sorted(int(a, 16) for a in signers)
    with pytest.raises(InputError, match="appears twice"):
        order_by_signer([(signers[0], 1), (signers[1], 2), (signers[0].lower(), 3)])


def test_signatures_encode_in_eip2098_compact_form() -> None:
    signatures = [sign_digest(k, keccak(b"x")) for k in KEYS[:2]]
    encoded = encode_signatures([signatures[0], signatures[1].to_bytes()])
    for sig, (r, vs) in zip(signatures, encoded, strict=True):
        assert r == sig.r
        vs_int = int.from_bytes(vs, "big")
        assert vs_int >> 255 == sig.v - 27  # the recovery bit on top of s
        assert (vs_int & ((1 << 255) - 1)).to_bytes(32, "big") == sig.s
    with pytest.raises(InputError, match="expected 65"):
        encode_signatures([b"\x01" * 64])
    high_s = Signature(27, signatures[0].r, (SECP256K1_N - 1).to_bytes(32, "big"))
    with pytest.raises(InputError, match="high-s has no compact form"):
        high_s.compact()
    with pytest.raises(InputError, match="must be 27 or 28"):
        Signature(29, signatures[0].r, signatures[0].s).compact()


@pytest.mark.parametrize(
    ("values", "problem"),
    [
        ((CONTRACT, bytes(32), 1, 1), "4 values for 5 fields"),
        (("0x1234", bytes(32), 1, 1, True), "Sample.who: '0x1234' is not a 20-byte address"),
        ((CONTRACT, bytes(31), 1, 1, True), "Sample.hash: expected 32 bytes"),
        (
            (CONTRACT, bytes(32), 2**64, 1, True),
            "Sample.count: 1844674407370955161",
        ),
        ((CONTRACT, bytes(32), 1, -1, True), "Sample.kind: -1 is not a uint8"),
        ((CONTRACT, bytes(32), True, 1, True), "Sample.count: True is not a uint64"),
    ],
)
def test_struct_values_are_checked(values, problem) -> None:
    with pytest.raises(InputError, match=problem.replace("(", r"\(")):
        SAMPLE.hash(values)


def test_only_static_fields_are_signed_and_domains_are_checked() -> None:
    with pytest.raises(InputError, match="not a static field"):
        StructType("Dynamic", (("name", "string"),)).hash(("x",))
    with pytest.raises(InputError, match="not an address"):
        Domain("veil X", "1", 1, "nobody")
    with pytest.raises(InputError, match="wrong EIP-55 checksum"):
        Domain("veil X", "1", 1, CONTRACT[:-1] + "A")
    with pytest.raises(InputError, match="not an integer"):
        Domain("veil X", "1", True, CONTRACT)  # type: ignore[arg-type]
