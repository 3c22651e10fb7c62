"""What the AI gateway signs, and how anyone checks it: the one definition both sides share.

Two signatures cover every response, so that existing tools and new ones both work:

1. The vllm-proxy shape (Phala / NEAR AI): `text = sha256(request body):sha256(response
   body)` (lower-case hex), signed as an EIP-191 personal message by the ECDSA key
   (`0x`-hex, 65 bytes) or as raw UTF-8 by the ed25519 key (hex, no prefix; the signing
   address is then the public key in hex).
2. An EIP-712 receipt, signed by the ECDSA key, which adds what the plain text cannot say:
   the model, the token counts billed, the time, and the attestation digest, so that a
   signature is tied to the TEE measurements that were live when it was made.

The attestation digest (`attestation_digest`) covers the TD's measurements, its app identity
and the signing address: it does not depend on the nonce, so a client that verified any
fresh report from the gateway can recompute it and compare.

Streams: the gateway sends each server-sent event of the backend unchanged, followed by an
SSE comment line `: veil-sha256 <hex>` holding the sha256 of every byte sent so far in this
response up to the end of that event's data. SSE clients ignore comments; a verifying client
checks each as it arrives, and the final response hash is over all bytes sent, comments
included.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from dataclasses import dataclass
from typing import Any

import coincurve
import nacl.exceptions
import nacl.signing
from eth_utils import keccak, to_checksum_address

ECDSA = "ecdsa"
ED25519 = "ed25519"
SIGNING_ALGOS = (ECDSA, ED25519)

RECEIPT_DOMAIN = {"name": "veil inference receipt", "version": "1"}
RECEIPT_TYPES = {
    "EIP712Domain": [
        {"name": "name", "type": "string"},
        {"name": "version", "type": "string"},
    ],
    "Receipt": [
        {"name": "id", "type": "string"},
        {"name": "requestHash", "type": "bytes32"},
        {"name": "responseHash", "type": "bytes32"},
        {"name": "model", "type": "string"},
        {"name": "promptTokens", "type": "uint64"},
        {"name": "completionTokens", "type": "uint64"},
        {"name": "attestationDigest", "type": "bytes32"},
        {"name": "issuedAt", "type": "uint64"},
    ],
}
_RECEIPT_TYPE = (
    b"Receipt(string id,bytes32 requestHash,bytes32 responseHash,string model,"
    b"uint64 promptTokens,uint64 completionTokens,bytes32 attestationDigest,uint64 issuedAt)"
)
_DOMAIN_TYPE = b"EIP712Domain(string name,string version)"
DOMAIN_SEPARATOR = keccak(
    keccak(_DOMAIN_TYPE)
    + keccak(RECEIPT_DOMAIN["name"].encode())
    + keccak(RECEIPT_DOMAIN["version"].encode())
)

STREAM_HASH_PREFIX = b": veil-sha256 "
IDENTITY_FIELDS = (
    "mr_td", "rtmr0", "rtmr1", "rtmr2", "app_id", "compose_hash", "os_image_hash",
)  # fmt: skip


class SignatureProblem(Exception):
    """A signature, receipt or stream hash does not check out; the message says which."""


def signature_text(request_hash: str, response_hash: str) -> str:
    return f"{request_hash}:{response_hash}"


def report_data(signing_address: bytes, nonce: bytes) -> bytes:
    """vllm-proxy's layout: the signing address right-padded to 32 bytes, then the nonce."""
    if not 0 < len(signing_address) <= 32:
        raise ValueError("signing address: 1 to 32 bytes")
    if len(nonce) != 32:
        raise ValueError("nonce: 32 bytes")
    return signing_address.ljust(32, b"\0") + nonce


def address_bytes(signing_address: str) -> bytes:
    """The bytes a report binds: the 20-byte address (ECDSA) or the 32-byte key (ed25519)."""
    return bytes.fromhex(signing_address.removeprefix("0x"))


def attestation_digest(identity: dict[str, str | None], signing_address: str) -> str:
    """sha256 of the canonical JSON of what the quote attests and the ECDSA signing address.

    `identity` holds MRTD and RTMR0-2 (firmware, kernel, initrd) and, from the replayed
    RTMR3 event log, the app id, compose hash and OS image hash. RTMR3 itself is left out on
    purpose: GPU evidence bound per report extends it, and the digest must be the same for
    every report of one running gateway.
    """
    doc = {name: (identity.get(name) or "").lower() for name in IDENTITY_FIELDS}
    doc["signing_address"] = signing_address.lower()
    text = json.dumps(doc, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


@dataclass(frozen=True)
class Receipt:
    """The EIP-712 `Receipt` message; hashes are lower-case hex without 0x."""

    id: str
    request_hash: str
    response_hash: str
    model: str
    prompt_tokens: int
    completion_tokens: int
    attestation_digest: str
    issued_at: int

    def message(self) -> dict[str, Any]:
        """The message as eth-account's `encode_typed_data(full_message=...)` takes it."""
        return {
            "id": self.id,
            "requestHash": "0x" + self.request_hash,
            "responseHash": "0x" + self.response_hash,
            "model": self.model,
            "promptTokens": self.prompt_tokens,
            "completionTokens": self.completion_tokens,
            "attestationDigest": "0x" + self.attestation_digest,
            "issuedAt": self.issued_at,
        }

    def typed_data(self) -> dict[str, Any]:
        return {
            "types": RECEIPT_TYPES,
            "primaryType": "Receipt",
            "domain": dict(RECEIPT_DOMAIN),
            "message": self.message(),
        }

    def digest(self) -> bytes:
        """The EIP-712 hash, computed directly (the server signs many; eth-account is slow)."""
        struct = keccak(
            keccak(_RECEIPT_TYPE)
            + keccak(self.id.encode())
            + bytes.fromhex(self.request_hash)
            + bytes.fromhex(self.response_hash)
            + keccak(self.model.encode())
            + self.prompt_tokens.to_bytes(32, "big")
            + self.completion_tokens.to_bytes(32, "big")
            + bytes.fromhex(self.attestation_digest)
            + self.issued_at.to_bytes(32, "big")
        )
        return keccak(b"\x19\x01" + DOMAIN_SEPARATOR + struct)

    @classmethod
    def from_message(cls, message: dict[str, Any]) -> Receipt:
        try:
            return cls(
                id=str(message["id"]),
                request_hash=_hex32(message["requestHash"]),
                response_hash=_hex32(message["responseHash"]),
                model=str(message["model"]),
                prompt_tokens=int(message["promptTokens"]),
                completion_tokens=int(message["completionTokens"]),
                attestation_digest=_hex32(message["attestationDigest"]),
                issued_at=int(message["issuedAt"]),
            )
        except (KeyError, TypeError, ValueError) as error:
            raise SignatureProblem(f"receipt: malformed message ({error})") from None


def _hex32(value: Any) -> str:
    text = str(value).lower().removeprefix("0x")
    if len(bytes.fromhex(text)) != 32:
        raise ValueError("expected 32 bytes")
    return text


def _personal_digest(text: str) -> bytes:
    data = text.encode()
    return keccak(b"\x19Ethereum Signed Message:\n" + str(len(data)).encode() + data)


def _recover(digest: bytes, signature: str) -> str:
    raw = bytes.fromhex(signature.removeprefix("0x"))
    if len(raw) != 65 or raw[64] not in (27, 28):
        raise SignatureProblem("ECDSA signature: expected 65 bytes ending in v = 27 or 28")
    try:
        key = coincurve.PublicKey.from_signature_and_message(
            raw[:64] + bytes([raw[64] - 27]), digest, hasher=None
        )
    except Exception:  # coincurve raises bare Exception for unrecoverable input
        raise SignatureProblem("ECDSA signature: no key recovers from it") from None
    return to_checksum_address(keccak(key.format(compressed=False)[1:])[12:])


class SigningKeys:
    """The gateway's two signing keys, generated in memory: they are never written anywhere.

    Why memory only: a key that never touches disk cannot be copied out of the CVM by
    whoever reads its volumes; a restart makes a new key and a new attestation report, and
    receipts signed before stay checkable by their stored signature and address.
    """

    def __init__(self, ecdsa_secret: bytes | None = None, ed25519_seed: bytes | None = None):
        self._ecdsa = coincurve.PrivateKey(ecdsa_secret or secrets.token_bytes(32))
        self._ed25519 = nacl.signing.SigningKey(ed25519_seed or secrets.token_bytes(32))
        public = self._ecdsa.public_key.format(compressed=False)[1:]
        self.ecdsa_address = to_checksum_address(keccak(public)[12:])
        self.ecdsa_public_key = public.hex()
        self.ed25519_public_key = bytes(self._ed25519.verify_key).hex()

    def address(self, algo: str) -> str:
        return self.ecdsa_address if algo == ECDSA else self.ed25519_public_key

    def public_key(self, algo: str) -> str:
        return self.ecdsa_public_key if algo == ECDSA else self.ed25519_public_key

    def _ecdsa_sign(self, digest: bytes) -> str:
        raw = self._ecdsa.sign_recoverable(digest, hasher=None)
        return "0x" + (raw[:64] + bytes([raw[64] + 27])).hex()

    def sign_text(self, text: str, algo: str) -> str:
        if algo == ECDSA:
            return self._ecdsa_sign(_personal_digest(text))
        return self._ed25519.sign(text.encode()).signature.hex()

    def sign_receipt(self, receipt: Receipt) -> str:
        return self._ecdsa_sign(receipt.digest())

    def sign_digest(self, digest: bytes) -> str:
        """An ECDSA signature over a 32-byte EIP-712 digest the caller built (usage
        vouchers): the attested key signs it, so the chain can check who metered."""
        if len(digest) != 32:
            raise ValueError("digest: 32 bytes")
        return self._ecdsa_sign(digest)


def verify_text_signature(text: str, signature: str, signing_address: str, algo: str) -> None:
    """Raise SignatureProblem unless `signature` over `text` is by `signing_address`."""
    if algo == ECDSA:
        signer = _recover(_personal_digest(text), signature)
        if signer.lower() != signing_address.lower():
            raise SignatureProblem(f"ECDSA signature is by {signer}, not {signing_address}")
        return
    if algo != ED25519:
        raise SignatureProblem(f"signing algorithm {algo!r}: expected ecdsa or ed25519")
    try:
        key = nacl.signing.VerifyKey(bytes.fromhex(signing_address.removeprefix("0x")))
        key.verify(text.encode(), bytes.fromhex(signature.removeprefix("0x")))
    except (ValueError, nacl.exceptions.CryptoError):
        raise SignatureProblem(
            f"ed25519 signature does not verify under {signing_address[:16]}..."
        ) from None


def verify_receipt_signature(receipt: Receipt, signature: str, signing_address: str) -> None:
    signer = _recover(receipt.digest(), signature)
    if signer.lower() != signing_address.lower():
        raise SignatureProblem(f"receipt is signed by {signer}, not {signing_address}")


class StreamFramer:
    """The sending side of the stream format: one SSE event in, the exact bytes to send out.

    The event goes out unchanged, then its `: veil-sha256` comment, then the blank line
    that ends the event; the running hash covers everything sent, so `hexdigest()` at the
    end is the response hash the signature covers.
    """

    def __init__(self) -> None:
        self.running = hashlib.sha256()

    def frame(self, event: bytes) -> bytes:
        """`event` without its terminating blank line (e.g. b'data: {...}')."""
        out = event + b"\n"
        self.running.update(out)
        tail = STREAM_HASH_PREFIX + self.running.hexdigest().encode() + b"\n\n"
        self.running.update(tail)
        return out + tail

    def hexdigest(self) -> str:
        return self.running.hexdigest()
