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

from eth_account import Account
from eth_account.messages import encode_typed_data
from eth_utils import keccak, to_checksum_address

from veil.chain.eip712 import DOMAIN_FIELDS
from veil.compute.attestation import RegistryDomain
from veil.compute.evidence import checksum
from veil.errors import InputError

HEARTBEAT_FIELDS = [
    {"name": "worker", "type": "address"},
    {"name": "sequence", "type": "uint64"},
    {"name": "timestamp", "type": "uint64"},
]


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


def typed_data(beat: Heartbeat, domain: RegistryDomain) -> dict[str, Any]:
    return {
        "types": {
            "EIP712Domain": DOMAIN_FIELDS,
            "Heartbeat": HEARTBEAT_FIELDS,
        },
        "primaryType": "Heartbeat",
        "domain": domain.to_eip712(),
        "message": {"worker": beat.worker, "sequence": beat.sequence, "timestamp": beat.timestamp},
    }


def digest(beat: Heartbeat, domain: RegistryDomain) -> bytes:
    signable = encode_typed_data(full_message=typed_data(beat, domain))
    return keccak(b"\x19" + signable.version + signable.header + signable.body)


def sign(beat: Heartbeat, domain: RegistryDomain, private_key: Any) -> bytes:
    return bytes(Account.unsafe_sign_hash(digest(beat, domain), private_key).signature)


def recover(beat: Heartbeat, domain: RegistryDomain, signature: bytes) -> str:
    """The checksummed signer; a malformed signature is an InputError."""
    if len(signature) != 65:
        raise InputError(f"heartbeat signature: {len(signature)} bytes, expected 65")
    try:
        return to_checksum_address(Account._recover_hash(digest(beat, domain), signature=signature))
    except Exception as error:  # eth_keys raises several types for bad (r, s, v)
        raise InputError(f"heartbeat signature: unrecoverable ({type(error).__name__})") from None


def to_json(beat: Heartbeat, signature: bytes) -> dict[str, Any]:
    """The POST /v1/compute/heartbeats body."""
    return {
        "worker": beat.worker,
        "sequence": beat.sequence,
        "timestamp": beat.timestamp,
        "signature": "0x" + signature.hex(),
    }
