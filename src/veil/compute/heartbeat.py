"""Heartbeats: a worker's signed "still here", the uptime evidence rewards are paid on.

A heartbeat (v2) is EIP-712 typed data
`Heartbeat(address worker,uint64 epoch,uint64 sequence,uint64 timestamp,bytes32 blockHash)`
under the registry's own domain ("veil ComputeRegistry", "1", chain id, registry), signed
by the worker key, the key whose address the quote's report data binds. Each field closes
one way to be paid for uptime that did not happen:

- the domain ties it to one network;
- `sequence` (strictly increasing per worker) makes a replay detectable;
- `timestamp` lets an attester refuse one from the past or the future;
- `epoch` (`(timestamp - genesisTime) // epochLength`, the RewardPool's numbers) says which
  hourly settlement the worker claims it for, so a log per epoch can be audited alone;
- `blockHash` is the hash of a block the worker read shortly before signing: a heartbeat
  cannot be signed in advance (pre-signing a day of heartbeats, then switching the
  machine off), because nobody knows a future block's hash.

Typed data rather than personal_sign so that a wallet or hardware signer shows exactly
what is signed, and so nothing else the worker signs can pass for a heartbeat.
Verification is on the attester's per-request path (thousands a second), so the digest
is built from precomputed parts and the signer recovered with libsecp256k1 directly.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from veil.attestation.api import HeartbeatRequest
from veil.attestation.typed_data import (
    StructType,
    checksum,
    keccak256,
    recover_digest,
    sign_digest,
)
from veil.compute.attestation import RegistryDomain
from veil.errors import InputError

if TYPE_CHECKING:
    from veil.chain.client import Chain

HEARTBEAT_FIELDS = [
    {"name": "worker", "type": "address"},
    {"name": "epoch", "type": "uint64"},
    {"name": "sequence", "type": "uint64"},
    {"name": "timestamp", "type": "uint64"},
    {"name": "blockHash", "type": "bytes32"},
]
STRUCT = StructType("Heartbeat", tuple((f["name"], f["type"]) for f in HEARTBEAT_FIELDS))
_U64 = 2**64


@dataclass(frozen=True)
class EpochSchedule:
    """The RewardPool's clock: epoch `n` covers `[genesis + n*length, genesis + (n+1)*length)`.

    One definition on both sides of a heartbeat (the worker numbers it, the attester checks
    the number) so that the two can never disagree by an off-by-one at an epoch boundary.
    """

    genesis_time: int
    epoch_length: int

    def __post_init__(self) -> None:
        if isinstance(self.genesis_time, bool) or not isinstance(self.genesis_time, int):
            raise InputError(f"epoch genesis {self.genesis_time!r}: not an integer")
        if not 0 <= self.genesis_time < _U64:
            raise InputError(f"epoch genesis {self.genesis_time}: not a uint64 timestamp")
        length = self.epoch_length
        if isinstance(length, bool) or not isinstance(length, int) or length <= 0:
            raise InputError(f"epoch length {length!r}: must be a positive number of seconds")

    def epoch(self, timestamp: int) -> int:
        """The epoch a timestamp falls in; before genesis there is none (InputError)."""
        if timestamp < self.genesis_time:
            raise InputError(f"timestamp {timestamp}: before the epoch genesis {self.genesis_time}")
        return (timestamp - self.genesis_time) // self.epoch_length

    def start(self, epoch: int) -> int:
        return self.genesis_time + epoch * self.epoch_length

    def end(self, epoch: int) -> int:
        """The first second after the epoch."""
        return self.start(epoch + 1)


REWARD_POOL = "RewardPool"  # the deployment record's key


def schedule_from_chain(chain: Chain) -> EpochSchedule | None:
    """The RewardPool's epoch clock, if the deployment has a RewardPool (else None).

    Read once: epochs are numbered from `genesisTime` in `epochLength` steps, and a
    governed change of the length takes effect for attesters and workers when they next
    start (the pool's own numbering is what settles, so a heartbeat numbered under the
    old length is refused `wrong_epoch` rather than counted in the wrong hour)."""
    deployment = chain.deployment
    if deployment is None or REWARD_POOL not in deployment.contracts:
        return None
    pool = chain.contract(REWARD_POOL)
    genesis = int(pool.functions.genesisTime().call())
    length = int(pool.functions.epochLength().call())
    return EpochSchedule(genesis, length)


#: Without a RewardPool or options: hourly epochs counted from the Unix epoch.
DEFAULT_SCHEDULE = EpochSchedule(0, 3_600)


def choose_schedule(
    pool: EpochSchedule | None, genesis: int | None = None, length: int | None = None
) -> EpochSchedule:
    """The RewardPool's schedule when there is one (options may only repeat it, since a
    different clock would number every heartbeat wrong), else the options, else hourly
    epochs from the Unix epoch."""
    if pool is not None:
        for value, name, have in ((genesis, "--epoch-genesis", pool.genesis_time),
                                  (length, "--epoch-length", pool.epoch_length)):  # fmt: skip
            if value is not None and value != have:
                raise InputError(f"{name} {value}: the deployment's RewardPool says {have}")
        return pool
    return EpochSchedule(
        DEFAULT_SCHEDULE.genesis_time if genesis is None else genesis,
        DEFAULT_SCHEDULE.epoch_length if length is None else length,
    )


@dataclass(frozen=True)
class Heartbeat:
    worker: str
    epoch: int
    sequence: int
    timestamp: int
    block_hash: bytes

    def __post_init__(self) -> None:
        object.__setattr__(self, "worker", checksum(self.worker, "heartbeat worker"))
        for name in ("epoch", "sequence", "timestamp"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < _U64:
                raise InputError(f"heartbeat {name}: {value!r} is not a uint64")
        block = self.block_hash
        if not isinstance(block, bytes | bytearray) or len(block) != 32:
            raise InputError(f"heartbeat blockHash: {block!r:.80} is not 32 bytes")
        object.__setattr__(self, "block_hash", bytes(block))

    def message(self) -> dict[str, Any]:
        """The EIP-712 message, as `eth_signTypedData_v4` takes it."""
        return {
            "worker": self.worker,
            "epoch": self.epoch,
            "sequence": self.sequence,
            "timestamp": self.timestamp,
            "blockHash": "0x" + self.block_hash.hex(),
        }


def typed_data(beat: Heartbeat, domain: RegistryDomain) -> dict[str, Any]:
    return domain.eip712.document(STRUCT, beat.message())


def struct_hash(worker: bytes, epoch: int, sequence: int, timestamp: int, block: bytes) -> bytes:
    """hashStruct from already-checked raw fields (20-byte worker, 32-byte block hash):
    the attester's and the auditor's hot path, equal to `STRUCT.hash(...)` (tested)."""
    return keccak256(
        STRUCT.typehash
        + bytes(12)
        + worker
        + epoch.to_bytes(32, "big")
        + sequence.to_bytes(32, "big")
        + timestamp.to_bytes(32, "big")
        + block
    )


def digest(beat: Heartbeat, domain: RegistryDomain) -> bytes:
    raw = bytes.fromhex(beat.worker[2:])
    return domain.eip712.digest(
        struct_hash(raw, beat.epoch, beat.sequence, beat.timestamp, beat.block_hash)
    )


def sign(beat: Heartbeat, domain: RegistryDomain, private_key: Any) -> bytes:
    return sign_digest(private_key, digest(beat, domain)).to_bytes()


def recover(beat: Heartbeat, domain: RegistryDomain, signature: bytes) -> str:
    """The checksummed signer; a malformed signature is an InputError."""
    return recover_digest(digest(beat, domain), bytes(signature), "heartbeat signature")


def request(beat: Heartbeat, signature: bytes) -> HeartbeatRequest:
    """What the worker posts to every attester."""
    return HeartbeatRequest(
        worker=beat.worker,
        epoch=beat.epoch,
        sequence=beat.sequence,
        timestamp=beat.timestamp,
        block_hash="0x" + beat.block_hash.hex(),
        signature="0x" + signature.hex(),
    )


def to_json(beat: Heartbeat, signature: bytes) -> dict[str, Any]:
    """The POST /v1/compute/heartbeats body."""
    return request(beat, signature).to_json()
