"""Per-app key derivation: dstack's KDF vector, determinism, separation, the root file."""

from __future__ import annotations

import os
import stat
from concurrent.futures import ThreadPoolExecutor

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from veil.cloud.app_keys import (
    P256_ORDER,
    RootSecret,
    app_id_bytes,
    derive_dh_secret,
    derive_key,
    load_root_secret,
    p256_pkcs8_der,
)
from veil.cloud.envcrypt import decrypt_env, encrypt_env
from veil.errors import InputError

# dstack/ra-tls/src/kdf.rs, test_derive_dh_secret_stable_output: a root key's PKCS#8 DER as
# rcgen wrote it, and the secret dstack derives from it; deployed env keys depend on it.
DSTACK_ROOT_DER = bytes.fromhex(
    "308187020100301306072a8648ce3d020106082a8648ce3d030107046d306b02"
    "01010420f57527cea4ab7ffb49af99b158cdc0e3ec06398f528349ea236b7d2a"
    "fe19cec1a1440342000491f50522407ce29dce3ed7d31a15d80c1c42f13a2355"
    "2d2b33a0ce09ee11e47bce95936f3e7f80d195f879e28e1b144ef37ac9ab8e36"
    "a690cbf930b775897b27"
)
DSTACK_SECRET = "663afd58820be8ad645f9c035e93199d114ab16f738db62393bc1d7d623e8813"
ROOT = RootSecret(bytes.fromhex("5a" * 32))


def test_pkcs8_der_matches_dstack_byte_for_byte():
    scalar = DSTACK_ROOT_DER[36:68]
    assert p256_pkcs8_der(scalar) == DSTACK_ROOT_DER


def test_dh_secret_matches_dstack_vector():
    scalar = DSTACK_ROOT_DER[36:68]
    assert derive_dh_secret(scalar, [b"context one", b"context two"]).hex() == DSTACK_SECRET
    # ring's HKDF joins the info parts: splitting them differently gives the same secret.
    assert derive_dh_secret(scalar, [b"context onecontext two"]).hex() == DSTACK_SECRET


def test_derive_key_is_rfc5869_hkdf_with_ratls_salt():
    import hashlib
    import hmac

    prk = hmac.new(b"RATLS", b"ikm", hashlib.sha256).digest()
    okm = hmac.new(prk, b"ab" + b"\x01", hashlib.sha256).digest()
    assert derive_key(b"ikm", [b"a", b"b"], 32) == okm


def test_keys_are_deterministic_and_per_app():
    one, two = "0x" + "11" * 20, "0x" + "22" * 20
    assert ROOT.app_keys(one) == RootSecret(bytes.fromhex("5a" * 32)).app_keys(one.upper()[2:])
    a, b = ROOT.app_keys(one), ROOT.app_keys(two)
    assert a.env_crypt_key != b.env_crypt_key and a.app_key != b.app_key
    assert a.env_public_key == ROOT.env_public_key(one)
    assert a.app_address != b.app_address != ROOT.signer().address
    other_root = RootSecret(bytes.fromhex("5b" * 32)).app_keys(one)
    assert other_root.env_crypt_key != a.env_crypt_key


def test_released_env_key_opens_what_was_encrypted_to_the_published_key():
    app = "0x" + "ab" * 20
    sealed = encrypt_env({"TOKEN": "s3cret"}, ROOT.env_public_key(app))
    keys = ROOT.app_keys(app)
    assert decrypt_env(sealed, keys.env_crypt_key) == {"TOKEN": "s3cret"}
    assert set(keys.to_json()) == {"env_crypt_key", "app_key"}


@pytest.mark.parametrize("bad", ["0x1234", "zz" * 20, "11" * 21])
def test_bad_app_id_is_one_line(bad):
    with pytest.raises(InputError, match="app id"):
        app_id_bytes(bad)


@pytest.mark.parametrize("raw", [bytes(32), P256_ORDER.to_bytes(32, "big"), b"\x01" * 31])
def test_root_must_be_a_p256_scalar(raw):
    with pytest.raises(InputError, match="not a P-256 private key"):
        RootSecret(raw)


@settings(max_examples=25, deadline=None)
@given(st.binary(min_size=20, max_size=20))
def test_every_app_key_is_a_usable_account(app_id):
    keys = ROOT.app_keys(app_id)
    assert len(keys.env_crypt_key) == 32 and len(keys.app_key) == 32
    assert keys.app_address.startswith("0x")


def test_root_file_created_0600_and_reread(tmp_path):
    path = tmp_path / "root.hex"
    created = load_root_secret(path, create=True)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert load_root_secret(path) == created
    assert load_root_secret(path, create=True) == created
    assert [p.name for p in tmp_path.iterdir()] == ["root.hex"]


def test_concurrent_creators_agree(tmp_path):
    path = tmp_path / "root.hex"
    with ThreadPoolExecutor(4) as pool:
        roots = list(pool.map(lambda _: load_root_secret(path, create=True), range(8)))
    assert len({r.secret for r in roots}) == 1


@pytest.mark.parametrize(
    ("text", "reason"),
    [("nothex", "64 hex"), ("ab" * 31, "expected 32 bytes"), ("00" * 32, "P-256")],
)
def test_bad_root_file_is_one_line(tmp_path, text, reason):
    path = tmp_path / "root.hex"
    path.write_text(text)
    with pytest.raises(InputError, match=reason):
        load_root_secret(path)
    with pytest.raises(InputError, match="cannot read"):
        load_root_secret(tmp_path / "missing.hex")
