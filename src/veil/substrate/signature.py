"""Verify raw-message signatures made by Substrate keys (sr25519, ed25519, ecdsa).

Each scheme is checked exactly as `@polkadot/util-crypto`'s `signatureVerify` checks it,
because that is what the wallets holders use (polkadot.js, Talisman, SubWallet) produce:

- sr25519 with the "substrate" signing context, ed25519 plain, both over the message
  bytes themselves, the public key being the 32-byte account id;
- ecdsa (secp256k1) over blake2_256(message) whatever the message length, a 65-byte
  r || s || recovery-id signature, and an account id equal to blake2_256 of the
  33-byte compressed public key.

Wallets' `signRaw` wraps the message as `<Bytes>...</Bytes>`; `verify_raw` accepts
either form, as `signatureVerify` does.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import ed25519_zebra
import sr25519

from veil.substrate.storage import blake2_256

Scheme = Literal["sr25519", "ed25519", "ecdsa"]
SCHEMES: tuple[Scheme, ...] = ("sr25519", "ed25519", "ecdsa")
BYTES_OPEN = b"<Bytes>"
BYTES_CLOSE = b"</Bytes>"
_MULTISIG_PREFIX: dict[int, Scheme] = {0: "ed25519", 1: "sr25519", 2: "ecdsa"}


def wrap_bytes(message: bytes) -> bytes:
    """The `<Bytes>` form wallets actually sign for `signRaw` (it cannot be a transaction)."""
    if message.startswith(BYTES_OPEN) and message.endswith(BYTES_CLOSE):
        return message
    return BYTES_OPEN + message + BYTES_CLOSE


@dataclass(frozen=True, slots=True)
class Verified:
    """Which scheme matched and whether the signed bytes were the wrapped form."""

    scheme: Scheme
    wrapped: bool
    public_key: bytes


def _sr25519_ok(message: bytes, signature: bytes, public_key: bytes) -> bool:
    if len(signature) != 64 or len(public_key) != 32:
        return False
    try:
        return bool(sr25519.verify(signature, message, public_key))
    except (ValueError, TypeError):
        return False


def _ed25519_ok(message: bytes, signature: bytes, public_key: bytes) -> bool:
    if len(signature) != 64 or len(public_key) != 32:
        return False
    try:
        return bool(ed25519_zebra.ed_verify(signature, message, public_key))
    except (ValueError, TypeError):
        return False


def recover_ecdsa(message: bytes, signature: bytes) -> bytes | None:
    """Compressed public key that made `signature` over blake2_256(message), if any."""
    if len(signature) != 65:
        return None
    v = signature[64]
    if v >= 27:
        v -= 27
    if v not in (0, 1):
        return None
    from eth_keys import keys as eth_keys  # eth_keys pulls eth_utils (~0.1 s); only ECDSA needs it
    from eth_keys.exceptions import BadSignature

    try:
        sig = eth_keys.Signature(signature[:64] + bytes([v]))
        return sig.recover_public_key_from_msg_hash(blake2_256(message)).to_compressed_bytes()
    except (BadSignature, ValueError):
        return None


def _ecdsa_ok(
    message: bytes, signature: bytes, account_id: bytes, public_key: bytes | None
) -> bytes | None:
    recovered = recover_ecdsa(message, signature)
    if recovered is None:
        return None
    if public_key is not None and recovered != public_key:
        return None
    if blake2_256(recovered) != account_id and recovered != account_id:
        return None
    return recovered


def _verify_one(
    scheme: Scheme, message: bytes, signature: bytes, account_id: bytes, public_key: bytes | None
) -> bytes | None:
    if scheme == "ecdsa":
        return _ecdsa_ok(message, signature, account_id, public_key)
    key = account_id if public_key is None else public_key
    if key != account_id:
        return None
    check = _sr25519_ok if scheme == "sr25519" else _ed25519_ok
    return key if check(message, signature, key) else None


def split_multisignature(signature: bytes) -> tuple[Scheme | None, bytes]:
    """Strip a SCALE `MultiSignature` prefix (0 ed25519, 1 sr25519, 2 ecdsa) if present."""
    if len(signature) == 66 and signature[0] == 2:
        return "ecdsa", signature[1:]
    if len(signature) == 65 and signature[0] in (0, 1):
        return _MULTISIG_PREFIX[signature[0]], signature[1:]
    return None, signature


def verify_raw(
    message: bytes,
    signature: bytes,
    account_id: bytes,
    *,
    scheme: Scheme | None = None,
    public_key: bytes | None = None,
) -> Verified | None:
    """Check `signature` by `account_id` over `message`, bare or `<Bytes>`-wrapped.

    Returns what matched, or None. `public_key` is needed by no scheme (ecdsa keys are
    recovered) but, when given, must be the key that signed.
    """
    if (
        public_key is not None
        and scheme in (None, "ecdsa")
        and len(public_key) == 33
        and blake2_256(public_key) != account_id
    ):
        return None
    candidates: list[tuple[Scheme, bytes]] = []
    tagged, bare = split_multisignature(signature)
    for name in (scheme,) if scheme else SCHEMES:
        if tagged is not None and tagged == name:
            candidates.append((name, bare))
        candidates.append((name, signature))
    unwrapped = message
    if message.startswith(BYTES_OPEN) and message.endswith(BYTES_CLOSE):
        unwrapped = message[len(BYTES_OPEN) : -len(BYTES_CLOSE)]
    forms = ((unwrapped, False), (wrap_bytes(unwrapped), True))
    for name, sig in candidates:
        for form, wrapped in forms:
            key = _verify_one(name, form, sig, account_id, public_key)
            if key is not None:
                return Verified(scheme=name, wrapped=wrapped, public_key=key)
    return None
