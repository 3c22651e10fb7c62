"""Heartbeats: a worker's signed "still here", the uptime evidence rewards are paid on.

A heartbeat is EIP-712 typed data `Heartbeat(address worker,uint64 sequence,uint64
timestamp)` under the registry's own domain ("veil ComputeRegistry", "1", chain id,
registry address), signed by the worker key, the key whose address the quote's report
data binds. The domain ties it to one network, the sequence (strictly increasing per
worker) makes a replay detectable, and the timestamp lets an attester refuse stale ones.
Typed data rather than personal_sign so that a wallet or hardware signer shows exactly
what is signed, and so nothing else the worker signs can pass for a heartbeat.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from veil.attestation.api import HeartbeatRequest
from veil.attestation.typed_data import StructType, checksum, recover_digest, sign_digest
from veil.compute.attestation import RegistryDomain
from veil.errors import InputError

HEARTBEAT_FIELDS = [
    {"name": "worker", "type": "address"},
    {"name": "sequence", "type": "uint64"},
    {"name": "timestamp", "type": "uint64"},
]
STRUCT = StructType("Heartbeat", tuple((f["name"], f["type"]) for f in HEARTBEAT_FIELDS))


@dataclass(frozen=True)
class Heartbeat:
    worker: str
    sequence: int
    timestamp: int

    def __post_init__(self) -> None:
        object.__setattr__(self, "worker", checksum(self.worker, "heartbeat worker"))
        for name in ("sequence", "timestamp"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 2**64:
                raise InputError(f"heartbeat {name}: {value!r} is not a uint64")

    def message(self) -> dict[str, Any]:
        return {"worker": self.worker, "sequence": self.sequence, "timestamp": self.timestamp}


def typed_data(beat: Heartbeat, domain: RegistryDomain) -> dict[str, Any]:
    return domain.eip712.document(STRUCT, beat.message())


def digest(beat: Heartbeat, domain: RegistryDomain) -> bytes:
    return domain.eip712.digest(STRUCT.hash((beat.worker, beat.sequence, beat.timestamp)))


def sign(beat: Heartbeat, domain: RegistryDomain, private_key: Any) -> bytes:
    return sign_digest(private_key, digest(beat, domain)).to_bytes()


def recover(beat: Heartbeat, domain: RegistryDomain, signature: bytes) -> str:
    """The checksummed signer; a malformed signature is an InputError."""
    return recover_digest(digest(beat, domain), bytes(signature), "heartbeat signature")


def request(beat: Heartbeat, signature: bytes) -> HeartbeatRequest:
    """What the worker posts to every attester."""
    return HeartbeatRequest(beat.worker, beat.sequence, beat.timestamp, "0x" + signature.hex())


def to_json(beat: Heartbeat, signature: bytes) -> dict[str, Any]:
    """The POST /v1/compute/heartbeats body."""
    return request(beat, signature).to_json()
