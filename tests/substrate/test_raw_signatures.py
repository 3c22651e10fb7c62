"""Raw-message signature checks for the three Substrate schemes (Python-side signers)."""

from __future__ import annotations

import pytest

from veil.migration.synthetic import keypair
from veil.substrate.signature import verify_raw, wrap_bytes
from veil.substrate.storage import blake2_256

MESSAGE = b"veil: a message long enough to matter " * 9  # > 256 bytes on purpose


@pytest.mark.parametrize("scheme", ["sr25519", "ed25519", "ecdsa"])
def test_each_scheme_bare_wrapped_and_tagged(scheme: str) -> None:
    key = keypair(scheme, bytes([7]) * 32)  # type: ignore[arg-type]
    bare = key.sign(MESSAGE)
    wrapped = key.sign(wrap_bytes(MESSAGE))
    found = verify_raw(MESSAGE, bare, key.account)
    assert found is not None and found.scheme == scheme and not found.wrapped
    found = verify_raw(MESSAGE, wrapped, key.account)
    assert found is not None and found.wrapped
    # Checking a wrapped message given in its wrapped form works too.
    assert verify_raw(wrap_bytes(MESSAGE), wrapped, key.account) is not None
    # SCALE MultiSignature form: the scheme's byte in front.
    tag = {"ed25519": 0, "sr25519": 1, "ecdsa": 2}[scheme]
    assert verify_raw(MESSAGE, bytes([tag]) + bare, key.account) is not None
    # Restricting to another scheme refuses.
    other = "ed25519" if scheme != "ed25519" else "sr25519"
    assert verify_raw(MESSAGE, bare, key.account, scheme=other) is None  # type: ignore[arg-type]


@pytest.mark.parametrize("scheme", ["sr25519", "ed25519", "ecdsa"])
def test_tampering_and_wrong_keys_are_refused(scheme: str) -> None:
    key = keypair(scheme, bytes([9]) * 32)  # type: ignore[arg-type]
    other = keypair(scheme, bytes([10]) * 32)  # type: ignore[arg-type]
    signature = key.sign(MESSAGE)
    assert verify_raw(MESSAGE + b"!", signature, key.account) is None
    assert verify_raw(MESSAGE, signature, other.account) is None
    flipped = bytes([signature[0] ^ 1]) + signature[1:]
    assert verify_raw(MESSAGE, flipped, key.account) is None


def test_ecdsa_public_key_must_hash_to_the_account() -> None:
    key = keypair("ecdsa", bytes([3]) * 32)
    assert key.account == blake2_256(key.public_key) and len(key.public_key) == 33
    signature = key.sign(MESSAGE)
    assert verify_raw(MESSAGE, signature, key.account, public_key=key.public_key) is not None
    stranger = keypair("ecdsa", bytes([4]) * 32).public_key
    assert verify_raw(MESSAGE, signature, key.account, public_key=stranger) is None
    # Ethereum-style v (27/28) is accepted as the same signature.
    eth_style = signature[:64] + bytes([signature[64] + 27])
    assert verify_raw(MESSAGE, eth_style, key.account, scheme="ecdsa") is not None
