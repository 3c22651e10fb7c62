"""Each app's keys, derived deterministically from the KMS root secret with dstack's KDF.

Deterministic, because a KMS must hand the same keys to every attested replica of an app
and after every restart, and a KMS replica holding the same root must agree, without a
key database to lose or leak. We reproduce dstack's derivation (ra-tls `kdf.rs` and
kms `main_service.rs`) rather than a fresh HKDF scheme, so a dstack KMS root key moved
into veil yields the very env keys it already published, and the derivation is checked
against dstack's own test vector instead of trusted on our word:

- `derive_key(ikm, context, n)` is HKDF-SHA256 with salt `b"RATLS"` and info the
  concatenation of the context parts.
- The root secret is a P-256 private scalar (dstack's root CA key).
- `derive_dh_secret(root, ctx)` = sha256 of the PKCS#8 DER of the P-256 key
  `derive_key(root, ctx, 32)` (dstack hashes the DER, public key included, for history's
  sake; we build the same DER bytes by hand).
- The env key: X25519 private key `derive_dh_secret(root, [app_id, b"env-encrypt-key"])`.

dstack keeps a second, secp256k1 root for app signing keys and for signing env public
keys. veil keeps one root secret file, so that k256 root is `derive_key(root,
[b"veil-kms-k256-root"], 32)`; the app key is then dstack's `derive_k256_key`:
`derive_key(k256_root, [app_id, b"app-key"], 32)`, and the KMS signer is the k256 root.
"""

from __future__ import annotations

import hashlib
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from eth_account import Account
from eth_account.signers.local import LocalAccount

from veil.cloud.envcrypt import public_key_of
from veil.errors import InputError

P256_ORDER = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
SECP256K1_ORDER = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
RATLS_SALT = b"RATLS"
K256_ROOT_CONTEXT = b"veil-kms-k256-root"

# PKCS#8 PrivateKeyInfo for a P-256 key as the p256 crate writes it: the algorithm names
# the curve, so the inner ECPrivateKey carries no parameters, only the key and public key.
_PKCS8_PREFIX = bytes.fromhex(
    "308187020100301306072a8648ce3d020106082a8648ce3d030107046d306b0201010420"
)
_PKCS8_PUBLIC = bytes.fromhex("a144034200")


def derive_key(input_key_material: bytes, context: list[bytes], size: int = 32) -> bytes:
    """dstack's `kdf::derive_key`: HKDF-SHA256, salt "RATLS", info = the parts joined."""
    return HKDF(hashes.SHA256(), size, RATLS_SALT, b"".join(context)).derive(input_key_material)


def _p256_scalar(raw: bytes, what: str) -> int:
    scalar = int.from_bytes(raw, "big")
    if len(raw) != 32 or not 0 < scalar < P256_ORDER:
        raise InputError(f"{what}: not a P-256 private key (32 bytes, 0 < k < n)")
    return scalar


def p256_pkcs8_der(private_key: bytes) -> bytes:
    """The PKCS#8 DER of a P-256 private key, byte-identical to the p256 crate's output."""
    scalar = _p256_scalar(private_key, "P-256 key")
    point = ec.derive_private_key(scalar, ec.SECP256R1()).public_key().public_numbers()
    uncompressed = b"\x04" + point.x.to_bytes(32, "big") + point.y.to_bytes(32, "big")
    return _PKCS8_PREFIX + private_key + _PKCS8_PUBLIC + uncompressed


def derive_dh_secret(root: bytes, context: list[bytes]) -> bytes:
    """dstack's `kdf::derive_dh_secret`: sha256 of the derived P-256 key's PKCS#8 DER."""
    derived = derive_key(root, context, 32)
    return hashlib.sha256(p256_pkcs8_der(derived)).digest()


def app_id_bytes(app_id: str | bytes) -> bytes:
    """A 20-byte app id from its 0x-hex (address) form; one clear line otherwise."""
    if isinstance(app_id, bytes):
        raw = app_id
    else:
        try:
            raw = bytes.fromhex(app_id.strip().lower().removeprefix("0x"))
        except ValueError:
            raise InputError(f"app id {app_id!r}: not hex") from None
    if len(raw) != 20:
        raise InputError(f"app id {app_id!r}: expected 20 bytes, got {len(raw)}")
    return raw


@dataclass(frozen=True)
class AppKeys:
    """What the KMS releases to an attested CVM of one app."""

    app_id: bytes
    env_crypt_key: bytes
    app_key: bytes

    @property
    def env_public_key(self) -> bytes:
        return public_key_of(self.env_crypt_key)

    @property
    def app_address(self) -> str:
        return str(Account.from_key(self.app_key).address)

    def to_json(self) -> dict[str, str]:
        """The plaintext the KMS encrypts to the worker: dstack's field names, hex values."""
        return {"env_crypt_key": self.env_crypt_key.hex(), "app_key": self.app_key.hex()}


@dataclass(frozen=True)
class RootSecret:
    """The KMS root: one P-256 scalar from which every app key and the signer follow."""

    secret: bytes

    def __post_init__(self) -> None:
        _p256_scalar(self.secret, "KMS root secret")

    @classmethod
    def generate(cls) -> RootSecret:
        while True:
            raw = secrets.token_bytes(32)
            if 0 < int.from_bytes(raw, "big") < P256_ORDER:
                return cls(raw)

    def k256_root(self) -> bytes:
        return derive_key(self.secret, [K256_ROOT_CONTEXT], 32)

    def signer(self) -> LocalAccount:
        """The KMS's secp256k1 identity: it signs env public keys (clients pin its address)."""
        account: LocalAccount = Account.from_key(self.k256_root())
        return account

    def env_crypt_key(self, app_id: str | bytes) -> bytes:
        return derive_dh_secret(self.secret, [app_id_bytes(app_id), b"env-encrypt-key"])

    def env_public_key(self, app_id: str | bytes) -> bytes:
        return public_key_of(self.env_crypt_key(app_id))

    def app_key(self, app_id: str | bytes) -> bytes:
        key = derive_key(self.k256_root(), [app_id_bytes(app_id), b"app-key"], 32)
        if not 0 < int.from_bytes(key, "big") < SECP256K1_ORDER:  # as k256 refuses it
            raise InputError("app key derivation produced an invalid secp256k1 key")
        return key

    def app_keys(self, app_id: str | bytes) -> AppKeys:
        raw = app_id_bytes(app_id)
        return AppKeys(raw, self.env_crypt_key(raw), self.app_key(raw))


def load_root_secret(path: str | os.PathLike[str], *, create: bool = False) -> RootSecret:
    """Read the root secret file (64 hex chars); with `create`, make it (mode 0600) if absent.

    Written to a 0600 temporary file, then hard-linked into place: the secret is never
    readable by others, a crash never leaves a torn file, and of two replicas starting at
    once exactly one creates it (the other's link fails and it reads the winner's).
    """
    file = Path(path)
    if create and not file.exists():
        root = RootSecret.generate()
        temporary = file.with_name(f".{file.name}.{secrets.token_hex(8)}.tmp")
        try:
            fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as handle:
                handle.write(root.secret.hex() + "\n")
                handle.flush()
                os.fsync(handle.fileno())
            try:
                os.link(temporary, file)
            except FileExistsError:
                return load_root_secret(file)
        except OSError as error:
            raise InputError(f"root secret {file}: cannot create ({error.strerror})") from None
        finally:
            temporary.unlink(missing_ok=True)
        return root
    try:
        text = file.read_text().strip()
    except OSError as error:
        raise InputError(f"root secret {file}: cannot read ({error.strerror})") from None
    try:
        raw = bytes.fromhex(text.removeprefix("0x"))
    except ValueError:
        raise InputError(f"root secret {file}: expected 64 hex characters") from None
    if len(raw) != 32:
        raise InputError(f"root secret {file}: expected 32 bytes, got {len(raw)}")
    return RootSecret(raw)
