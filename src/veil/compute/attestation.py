"""The EIP-712 worker attestation that attesters sign and ComputeRegistry verifies.

An attester signs only after it has verified a worker's TDX quote (and GPU evidence);
the signed struct names everything it checked by hash, and `evidence_hash` is sha256 of
the full evidence bundle, so anyone can fetch the evidence and re-verify the attester's
decision. The type string, field order and domain here must stay byte-for-byte equal to
`ATTESTATION_TYPEHASH` and `_digest` in contracts/compute/ComputeRegistry.vy; the tests
compare both digests.

Hashing, signing, recovery and signer ordering are `veil.attestation.typed_data`'s, the
same for every statement; this module only says what a worker attestation is.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any

from veil.attestation.typed_data import (
    SECP256K1_N,
    Domain,
    StructType,
    checksum,
    order_by_signer,
    recover_digest,
    sign_digest,
)
from veil.errors import InputError

__all__ = ["SECP256K1_N", "GpuModel", "RegistryDomain", "WorkerAttestation"]

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

STRUCT = StructType(PRIMARY_TYPE, tuple((f["name"], f["type"]) for f in ATTESTATION_FIELDS))
TYPE_STRING = STRUCT.type_string

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
        eip712 = Domain(DOMAIN_NAME, DOMAIN_VERSION, self.chain_id, self.registry)
        object.__setattr__(self, "eip712", eip712)

    eip712: Domain = field(init=False, repr=False, compare=False)

    def to_eip712(self) -> dict[str, Any]:
        return self.eip712.to_eip712()


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
    return STRUCT.typehash


def typed_data(attestation: WorkerAttestation, domain: RegistryDomain) -> dict[str, Any]:
    """The full EIP-712 document, as wallets and `eth_signTypedData_v4` take it."""
    return domain.eip712.document(STRUCT, attestation.message())


def digest(attestation: WorkerAttestation, domain: RegistryDomain) -> bytes:
    """keccak256(0x1901 ++ domainSeparator ++ structHash): what is actually signed."""
    return domain.eip712.digest(STRUCT.hash(attestation.as_tuple()))


def sign(attestation: WorkerAttestation, domain: RegistryDomain, private_key: Any) -> bytes:
    """A 65-byte (r, s, v) signature with v in {27, 28} and low s."""
    return sign_digest(private_key, digest(attestation, domain)).to_bytes()


def recover(attestation: WorkerAttestation, domain: RegistryDomain, signature: bytes) -> str:
    """The checksummed signer, refusing what the contract refuses (length, v, high s)."""
    return recover_digest(digest(attestation, domain), bytes(signature), "attestation signature")


def order_signatures(
    attestation: WorkerAttestation, domain: RegistryDomain, signatures: list[bytes]
) -> list[bytes]:
    """Sort by signer address as the contract requires; two from one signer is an error."""
    hashed = digest(attestation, domain)
    signed = ((recover_digest(hashed, s, "attestation signature"), bytes(s)) for s in signatures)
    return order_by_signer(signed, "attestation signatures")


def _address(record: str, value: Any) -> str:
    return checksum(value, record)


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
