"""dstack's encrypted-env format: vectors from dstack's own SDKs, both directions, tampering."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from hypothesis import given, settings
from hypothesis import strategies as st

from veil.cloud.envcrypt import (
    MAX_VARIABLES,
    EnvDecryptError,
    decrypt_env,
    encrypt_env,
    env_plaintext,
    open_env,
    public_key_of,
)
from veil.errors import InputError

VECTORS = Path(__file__).parent / "vectors"


def _vector(name: str) -> dict:
    return json.loads((VECTORS / f"envcrypt_{name}.json").read_text())


def _env(vector: dict) -> dict[str, str]:
    return {item["key"]: item["value"] for item in vector["env"]}


@pytest.mark.parametrize("name", ["js", "py"])
def test_decrypts_what_dstack_sdks_encrypt(name):
    vector = _vector(name)
    assert public_key_of(vector["recipient_private_key"]).hex() == vector["recipient_public_key"]
    assert decrypt_env(vector["encrypted"], vector["recipient_private_key"]) == _env(vector)


def test_encrypts_byte_for_byte_like_the_typescript_sdk():
    vector = _vector("js")
    ours = encrypt_env(
        _env(vector),
        vector["recipient_public_key"],
        ephemeral_private_key=bytes.fromhex(vector["ephemeral_private_key"]),
        iv=bytes.fromhex(vector["iv"]),
    )
    assert ours == vector["encrypted"]


def test_python_sdk_differs_only_in_json_spelling():
    vector = _vector("py")
    plaintext = open_env(vector["encrypted"], vector["recipient_private_key"])
    assert plaintext == json.dumps({"env": vector["env"]}).encode()
    assert json.loads(plaintext) == json.loads(env_plaintext(_env(vector)))
    # Same pinned randomness: the first 44 bytes (epk, iv) agree, the ciphertext does not.
    ours = encrypt_env(
        _env(vector),
        vector["recipient_public_key"],
        ephemeral_private_key=bytes.fromhex(vector["ephemeral_private_key"]),
        iv=bytes.fromhex(vector["iv"]),
    )
    assert ours[:88] == vector["encrypted"][:88]


def test_round_trip_uses_fresh_randomness():
    key = X25519PrivateKey.generate().private_bytes_raw()
    env = {"A": "1", "B_2": "two"}
    one = encrypt_env(env, public_key_of(key))
    two = encrypt_env(env, public_key_of(key).hex())
    assert one[:64] != two[:64] and one[64:88] != two[64:88]
    assert decrypt_env(one, key) == decrypt_env("0x" + two, key.hex()) == env


@pytest.mark.parametrize("position", [0, 31, 32, 43, 44, 60, -1])
def test_any_altered_byte_is_refused(position):
    vector = _vector("js")
    raw = bytearray.fromhex(vector["encrypted"])
    raw[position] ^= 0x01
    with pytest.raises(EnvDecryptError):
        decrypt_env(bytes(raw), vector["recipient_private_key"])


def test_wrong_key_is_refused_with_a_reason():
    vector = _vector("js")
    other = X25519PrivateKey.generate().private_bytes_raw()
    with pytest.raises(EnvDecryptError, match="authentication failed"):
        decrypt_env(vector["encrypted"], other)


def test_truncated_and_non_hex_are_refused():
    vector = _vector("js")
    with pytest.raises(EnvDecryptError, match="shorter than"):
        decrypt_env(vector["encrypted"][: 2 * 59], vector["recipient_private_key"])
    with pytest.raises(EnvDecryptError, match="not hex"):
        decrypt_env("zz" + vector["encrypted"], vector["recipient_private_key"])


def test_low_order_ephemeral_key_is_refused():
    """An all-zero shared secret would make the AES key public; dstack refuses it too."""
    key = X25519PrivateKey.generate().private_bytes_raw()
    forged = bytes(32) + bytes(12) + bytes(40)
    with pytest.raises(EnvDecryptError, match="invalid ephemeral"):
        decrypt_env(forged, key)


def _seal(plaintext: bytes, public: bytes) -> str:
    ephemeral = X25519PrivateKey.generate()
    shared = ephemeral.exchange(X25519PublicKey.from_public_bytes(public))
    iv = bytes(range(12))
    epk = ephemeral.public_key().public_bytes_raw()
    return (epk + iv + AESGCM(shared).encrypt(iv, plaintext, None)).hex()


@pytest.mark.parametrize(
    ("plaintext", "reason"),
    [
        (b"not json", "not JSON"),
        (b'{"vars": []}', "not {"),
        (b'{"env": [{"key": "A"}]}', "entry 0"),
        (b'{"env": [{"key": "1BAD", "value": "x"}]}', "name must match"),
        (b'{"env": [{"key": "A-B", "value": "x"}]}', "name must match"),
    ],
)
def test_plaintext_dstack_util_would_refuse_is_refused(plaintext, reason):
    key = X25519PrivateKey.generate().private_bytes_raw()
    with pytest.raises(EnvDecryptError, match=reason):
        decrypt_env(_seal(plaintext, public_key_of(key)), key)


def test_allowed_drops_names_the_compose_did_not_allow():
    key = X25519PrivateKey.generate().private_bytes_raw()
    sealed = encrypt_env({"KEEP": "1", "SMUGGLED": "2"}, public_key_of(key))
    assert decrypt_env(sealed, key, allowed=["KEEP"]) == {"KEEP": "1"}


def test_later_duplicate_wins_as_in_dstack():
    key = X25519PrivateKey.generate().private_bytes_raw()
    plaintext = b'{"env":[{"key":"A","value":"1"},{"key":"A","value":"2"}]}'
    assert decrypt_env(_seal(plaintext, public_key_of(key)), key) == {"A": "2"}


@pytest.mark.parametrize(
    ("env", "reason"),
    [
        ({"bad name": "x"}, "name must match"),
        ({"A": 3}, "must be a string"),
        ({"A": "x" * (128 * 1024 + 1)}, "value longer"),
        ({f"K{i}": "" for i in range(MAX_VARIABLES + 1)}, "at most"),
    ],
)
def test_encrypt_refuses_what_the_cvm_would_refuse(env, reason):
    key = X25519PrivateKey.generate().private_bytes_raw()
    with pytest.raises(InputError, match=reason):
        encrypt_env(env, public_key_of(key))


def test_bad_public_key_is_one_clear_line():
    with pytest.raises(InputError, match="env public key: expected 32 bytes"):
        encrypt_env({"A": "1"}, "abcd")
    with pytest.raises(InputError, match="env public key: not hex"):
        encrypt_env({"A": "1"}, "xyz")


names = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,20}", fullmatch=True)


@settings(max_examples=40, deadline=None)
@given(st.dictionaries(names, st.text(max_size=50), max_size=8))
def test_round_trip_any_env(env):
    key = X25519PrivateKey.generate().private_bytes_raw()
    assert decrypt_env(encrypt_env(env, public_key_of(key)), key) == env
