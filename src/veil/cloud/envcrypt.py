"""Secret environment variables in dstack's encrypted-env format, byte for byte.

A customer encrypts its secrets on its own machine to the app's X25519 env public key
(served, signed, by the KMS); only a CVM the KMS released the matching private key to can
read them. The format is the one dstack's SDKs write (`encryptEnvVars` in
@phala/dstack-sdk, `encrypt_env_vars` in dstack-sdk for Python) and dstack-util reads
(`dh_decrypt` + `parse_env`), so ciphertext made by either side is accepted by the other:

    hex( ephemeral X25519 public key (32) || AES-GCM IV (12) || AES-256-GCM(ct || tag) )

The AES-256 key is the raw 32-byte X25519 shared secret, with no KDF and no associated
data: that is what dstack does, and any deviation would break compatibility. The plaintext
is JSON `{"env": [{"key": K, "value": V}, ...]}`. We write it compact, as the TypeScript SDK
does (`JSON.stringify`); the Python SDK writes `json.dumps` defaults (spaces, ASCII escapes),
and both parse the same, so decryption accepts any JSON of that shape.

Decryption mirrors dstack-util's checks (key names `[A-Za-z_][A-Za-z0-9_]*`, at most 1024
variables, names at most 255 bytes, values at most 128 KiB, an all-zero shared secret
refused), so a ciphertext the CVM would reject is rejected here first, with the reason.
"""

from __future__ import annotations

import json
import re
import secrets
from collections.abc import Iterable, Mapping

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from veil.errors import InputError

PUBLIC_KEY_SIZE = 32
IV_SIZE = 12
TAG_SIZE = 16
MAX_VARIABLES = 1024
MAX_NAME_BYTES = 255
MAX_VALUE_BYTES = 128 * 1024
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


class EnvDecryptError(InputError):
    """The encrypted env cannot be opened with this key, or opens to something unusable."""


def _key_bytes(value: bytes | str, what: str) -> bytes:
    if isinstance(value, str):
        try:
            value = bytes.fromhex(value.strip().removeprefix("0x"))
        except ValueError:
            raise InputError(f"{what}: not hex") from None
    if len(value) != PUBLIC_KEY_SIZE:
        raise InputError(f"{what}: expected {PUBLIC_KEY_SIZE} bytes, got {len(value)}")
    return value


def public_key_of(private_key: bytes | str) -> bytes:
    """The X25519 public key (32 bytes) of a 32-byte private key (clamped as X25519 does)."""
    key = X25519PrivateKey.from_private_bytes(_key_bytes(private_key, "env private key"))
    return key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)


def check_env_name(name: str) -> None:
    """Refuse a variable name dstack-util would refuse, naming it."""
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise InputError(f"env {name!r}: a name must match [A-Za-z_][A-Za-z0-9_]*")
    if len(name.encode()) > MAX_NAME_BYTES:
        raise InputError(f"env {name[:32]}...: name longer than {MAX_NAME_BYTES} bytes")


def _check_env(env: Mapping[str, str]) -> None:
    if len(env) > MAX_VARIABLES:
        raise InputError(f"env: {len(env)} variables, at most {MAX_VARIABLES}")
    for name, value in env.items():
        check_env_name(name)
        if not isinstance(value, str):
            raise InputError(f"env {name}: the value must be a string")
        if len(value.encode()) > MAX_VALUE_BYTES:
            raise InputError(f"env {name}: value longer than {MAX_VALUE_BYTES} bytes")


def env_plaintext(env: Mapping[str, str]) -> bytes:
    """The JSON bytes that get encrypted, in the TypeScript SDK's compact form."""
    items = [{"key": name, "value": value} for name, value in env.items()]
    return json.dumps({"env": items}, separators=(",", ":"), ensure_ascii=False).encode()


def seal(
    plaintext: bytes,
    public_key: bytes | str,
    *,
    ephemeral_private_key: bytes | None = None,
    iv: bytes | None = None,
) -> str:
    """Encrypt any bytes to an X25519 public key in this format; hex `epk || iv || ct`.

    The KMS uses it to send an app's keys to the CVM's ephemeral key, so the worker's
    decryption path is the one it already has for the env.
    """
    recipient = X25519PublicKey.from_public_bytes(_key_bytes(public_key, "env public key"))
    ephemeral = (
        X25519PrivateKey.generate()
        if ephemeral_private_key is None
        else X25519PrivateKey.from_private_bytes(_key_bytes(ephemeral_private_key, "ephemeral"))
    )
    nonce = secrets.token_bytes(IV_SIZE) if iv is None else iv
    if len(nonce) != IV_SIZE:
        raise InputError(f"iv: expected {IV_SIZE} bytes, got {len(nonce)}")
    try:
        shared = ephemeral.exchange(recipient)
    except ValueError:
        raise InputError("env public key: a low-order point, not a usable X25519 key") from None
    sealed = AESGCM(shared).encrypt(nonce, plaintext, None)
    epk = ephemeral.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    return (epk + nonce + sealed).hex()


def encrypt_env(
    env: Mapping[str, str],
    public_key: bytes | str,
    *,
    ephemeral_private_key: bytes | None = None,
    iv: bytes | None = None,
) -> str:
    """Encrypt `env` to the app's X25519 public key; hex `epk || iv || ciphertext`.

    `ephemeral_private_key` and `iv` exist only so test vectors can be reproduced; leave
    them out (fresh randomness each call), since reusing either with a key leaks secrets.
    """
    _check_env(env)
    return seal(env_plaintext(env), public_key, ephemeral_private_key=ephemeral_private_key, iv=iv)


def open_env(encrypted: str | bytes, private_key: bytes | str) -> bytes:
    """Decrypt to the plaintext JSON bytes; refuses a wrong key or any altered byte."""
    if isinstance(encrypted, str):
        try:
            raw = bytes.fromhex(encrypted.strip().removeprefix("0x"))
        except ValueError:
            raise EnvDecryptError("encrypted env: not hex") from None
    else:
        raw = encrypted
    if len(raw) < PUBLIC_KEY_SIZE + IV_SIZE + TAG_SIZE:
        raise EnvDecryptError(
            f"encrypted env: {len(raw)} bytes, shorter than key + iv + tag "
            f"({PUBLIC_KEY_SIZE + IV_SIZE + TAG_SIZE})"
        )
    epk, nonce, sealed = raw[:32], raw[32:44], raw[44:]
    key = X25519PrivateKey.from_private_bytes(_key_bytes(private_key, "env private key"))
    try:
        shared = key.exchange(X25519PublicKey.from_public_bytes(epk))
    except ValueError:
        # cryptography refuses an all-zero shared secret (a low-order point), as dstack does.
        raise EnvDecryptError("encrypted env: invalid ephemeral public key") from None
    try:
        return AESGCM(shared).decrypt(nonce, sealed, None)
    except InvalidTag:
        raise EnvDecryptError(
            "encrypted env: authentication failed (wrong app key, or the ciphertext was altered)"
        ) from None


def decrypt_env(
    encrypted: str | bytes,
    private_key: bytes | str,
    *,
    allowed: Iterable[str] | None = None,
) -> dict[str, str]:
    """Decrypt and parse dstack's env JSON into {name: value}; a later duplicate wins.

    With `allowed`, names outside it are dropped, as dstack-util drops them: the compose's
    `allowed_envs` is measured, so a host cannot smuggle in a variable the app never named.
    """
    plaintext = open_env(encrypted, private_key)
    try:
        data = json.loads(plaintext)
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise EnvDecryptError("encrypted env: plaintext is not JSON") from None
    items = data.get("env") if isinstance(data, dict) else None
    if not isinstance(items, list):
        raise EnvDecryptError('encrypted env: plaintext is not {"env": [...]}')
    if len(items) > MAX_VARIABLES:
        raise EnvDecryptError(f"encrypted env: {len(items)} variables, at most {MAX_VARIABLES}")
    keep = None if allowed is None else set(allowed)
    env: dict[str, str] = {}
    for index, item in enumerate(items):
        if not (
            isinstance(item, dict)
            and isinstance(item.get("key"), str)
            and isinstance(item.get("value"), str)
        ):
            raise EnvDecryptError(f"encrypted env: entry {index} is not {{key, value}} strings")
        name, value = item["key"], item["value"]
        if keep is not None and name not in keep:
            continue
        try:
            check_env_name(name)
        except InputError as error:
            raise EnvDecryptError(f"encrypted env: {error}") from None
        if len(value.encode()) > MAX_VALUE_BYTES:
            raise EnvDecryptError(f"encrypted env {name}: value longer than {MAX_VALUE_BYTES}")
        env[name] = value
    return env
