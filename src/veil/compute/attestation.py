"""The EIP-712 worker attestation that attesters sign and ComputeRegistry verifies.

An attester signs only after it has verified a worker's TDX quote (and GPU evidence);
the signed struct names everything it checked by hash, and `evidence_hash` is sha256 of
the full evidence bundle, so anyone can fetch the evidence and re-verify the attester's
decision. The type string, field order and domain here must stay byte-for-byte equal to
`ATTESTATION_TYPEHASH` and `_digest` in contracts/compute/ComputeRegistry.vy; the tests
compare both digests.

The contract takes the signatures ordered by strictly increasing signer address (that is
how it proves they are distinct without storage), so `order_signatures` puts them in that
order, and it refuses high-s signatures, which `recover` refuses too.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from enum import IntEnum
from typing import Any

from eth_account import Account
from eth_account.messages import encode_typed_data
from eth_utils import is_address, keccak, to_checksum_address

from veil.chain.eip712 import DOMAIN_FIELDS
from veil.errors import InputError

DOMAIN_NAME = "veil ComputeRegistry"
DOMAIN_VERSION = "1"
PRIMARY_TYPE = "WorkerAttestation"

#: Field order is part of the signature: it fixes the EIP-712 type string.
ATTESTATION_FIELDS: list[dict[str, str]] = [
    {"name": "worker", "type": "address"},
    {"name": "provider", "type": "address"},
    {"name": "quoteHash", "type": "bytes32"},
    {"name": "measurementHash", "type": "bytes32"},
    {"name": "osImageHash", "type": "bytes32"},
    {"name": "composeHash", "type": "bytes32"},
    {"name": "gpuModel", "type": "uint8"},
    {"name": "gpuCount", "type": "uint16"},
    {"name": "expiry", "type": "uint64"},
    {"name": "evidenceHash", "type": "bytes32"},
]

TYPE_STRING = (
    PRIMARY_TYPE + "(" + ",".join(f"{f['type']} {f['name']}" for f in ATTESTATION_FIELDS) + ")"
)

#: secp256k1 group order; signatures with s above half of it are malleable copies.
SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
_HALF_N = SECP256K1_N // 2

_HASH_FIELDS = ("quote_hash", "measurement_hash", "os_image_hash", "compose_hash", "evidence_hash")


class GpuModel(IntEnum):
    """Accelerator type ids as the registry stores them; governance may add more."""

    CPU_TDX = 0
    H100 = 1
    H200 = 2
    B200 = 3


@dataclass(frozen=True)
class RegistryDomain:
    """Signatures are bound to one registry on one chain, so they cannot be replayed."""

    chain_id: int
    registry: str

    def __post_init__(self) -> None:
        if not isinstance(self.chain_id, int) or self.chain_id <= 0:
            raise InputError(f"attestation domain: chain id {self.chain_id!r} is not positive")
        object.__setattr__(self, "registry", _address("attestation domain registry", self.registry))

    def to_eip712(self) -> dict[str, Any]:
        return {
            "name": DOMAIN_NAME,
            "version": DOMAIN_VERSION,
            "chainId": self.chain_id,
            "verifyingContract": self.registry,
        }


@dataclass(frozen=True)
class WorkerAttestation:
    """What attesters vouch for about one worker key, valid until `expiry` (unix s)."""

    worker: str
    provider: str
    quote_hash: bytes
    measurement_hash: bytes
    os_image_hash: bytes
    compose_hash: bytes
    gpu_model: int
    gpu_count: int
    expiry: int
    evidence_hash: bytes

    def __post_init__(self) -> None:
        object.__setattr__(self, "worker", _address("attestation worker", self.worker))
        object.__setattr__(self, "provider", _address("attestation provider", self.provider))
        for name in _HASH_FIELDS:
            object.__setattr__(self, name, _bytes32(f"attestation {name}", getattr(self, name)))
        _uint("attestation gpu_model", self.gpu_model, 8)
        _uint("attestation gpu_count", self.gpu_count, 16)
        _uint("attestation expiry", self.expiry, 64)

    def message(self) -> dict[str, Any]:
        """The EIP-712 message, keyed by the Solidity-style field names."""
        return {
            "worker": self.worker,
            "provider": self.provider,
            "quoteHash": self.quote_hash,
            "measurementHash": self.measurement_hash,
            "osImageHash": self.os_image_hash,
            "composeHash": self.compose_hash,
            "gpuModel": self.gpu_model,
            "gpuCount": self.gpu_count,
            "expiry": self.expiry,
            "evidenceHash": self.evidence_hash,
        }

    def as_tuple(self) -> tuple[Any, ...]:
        """The `WorkerAttestation` struct argument of registerWorker/reattestWorker."""
        return tuple(self.message()[field["name"]] for field in ATTESTATION_FIELDS)

    def to_json(self) -> dict[str, Any]:
        """JSON-safe form (hashes as 0x-hex) for the attester's HTTP answer and files."""
        return {
            key: "0x" + value.hex() if isinstance(value, bytes) else value
            for key, value in self.message().items()
        }

    @classmethod
    def from_json(cls, data: Any) -> WorkerAttestation:
        """Read the form `to_json` writes; a missing or malformed field is an InputError."""
        if not isinstance(data, dict):
            raise InputError("attestation: expected a JSON object")
        missing = [f["name"] for f in ATTESTATION_FIELDS if f["name"] not in data]
        if missing:
            raise InputError(f"attestation: missing field(s) {', '.join(missing)}")
        return cls(
            worker=data["worker"],
            provider=data["provider"],
            quote_hash=_hex32("attestation quoteHash", data["quoteHash"]),
            measurement_hash=_hex32("attestation measurementHash", data["measurementHash"]),
            os_image_hash=_hex32("attestation osImageHash", data["osImageHash"]),
            compose_hash=_hex32("attestation composeHash", data["composeHash"]),
            gpu_model=data["gpuModel"],
            gpu_count=data["gpuCount"],
            expiry=data["expiry"],
            evidence_hash=_hex32("attestation evidenceHash", data["evidenceHash"]),
        )


def evidence_hash(evidence: bytes) -> bytes:
    """sha256 of the full evidence bundle, the handle anyone uses to fetch and re-check it."""
    return hashlib.sha256(evidence).digest()


def type_hash() -> bytes:
    return keccak(text=TYPE_STRING)


def typed_data(attestation: WorkerAttestation, domain: RegistryDomain) -> dict[str, Any]:
    """The full EIP-712 document, as wallets and `eth_signTypedData_v4` take it."""
    return {
        "types": {
            "EIP712Domain": DOMAIN_FIELDS,
            PRIMARY_TYPE: ATTESTATION_FIELDS,
        },
        "primaryType": PRIMARY_TYPE,
        "domain": domain.to_eip712(),
        "message": attestation.message(),
    }


def digest(attestation: WorkerAttestation, domain: RegistryDomain) -> bytes:
    """keccak256(0x1901 ++ domainSeparator ++ structHash): what is actually signed."""
    signable = encode_typed_data(full_message=typed_data(attestation, domain))
    return keccak(b"\x19" + signable.version + signable.header + signable.body)


def sign(attestation: WorkerAttestation, domain: RegistryDomain, private_key: Any) -> bytes:
    """A 65-byte (r, s, v) signature with v in {27, 28}; eth_account always emits low s."""
    signed = Account.unsafe_sign_hash(digest(attestation, domain), private_key)
    return bytes(signed.signature)


def recover(attestation: WorkerAttestation, domain: RegistryDomain, signature: bytes) -> str:
    """The checksummed signer, refusing what the contract refuses (length, v, high s)."""
    sig = bytes(signature)
    if len(sig) != 65:
        raise InputError(f"attestation signature: {len(sig)} bytes, expected 65")
    s = int.from_bytes(sig[32:64], "big")
    if s > _HALF_N:
        raise InputError("attestation signature: high-s (malleable) signature refused")
    if sig[64] not in (27, 28):
        raise InputError(f"attestation signature: v={sig[64]}, expected 27 or 28")
    return to_checksum_address(Account._recover_hash(digest(attestation, domain), signature=sig))


def order_signatures(
    attestation: WorkerAttestation, domain: RegistryDomain, signatures: list[bytes]
) -> list[bytes]:
    """Sort by signer address as the contract requires; two from one signer is an error."""
    by_signer: dict[int, bytes] = {}
    for signature in signatures:
        signer = recover(attestation, domain, signature)
        key = int(signer, 16)
        if key in by_signer:
            raise InputError(f"attestation signatures: two signatures from {signer}")
        by_signer[key] = bytes(signature)
    return [by_signer[key] for key in sorted(by_signer)]


def _address(record: str, value: Any) -> str:
    if not isinstance(value, str) or not is_address(value):
        raise InputError(f"{record}: {value!r} is not an address")
    return to_checksum_address(value)


def _bytes32(record: str, value: Any) -> bytes:
    if not isinstance(value, bytes | bytearray) or len(value) != 32:
        raise InputError(f"{record}: expected 32 bytes")
    return bytes(value)


def _hex32(record: str, value: Any) -> bytes:
    if not isinstance(value, str):
        raise InputError(f"{record}: expected 0x-prefixed hex, got {type(value).__name__}")
    text = value[2:] if value.startswith(("0x", "0X")) else value
    try:
        raw = bytes.fromhex(text)
    except ValueError:
        raise InputError(f"{record}: {value!r} is not hex") from None
    return _bytes32(record, raw)


def _uint(record: str, value: Any, bits: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 1 << bits:
        raise InputError(f"{record}: {value!r} is not a uint{bits}")
