"""Heartbeat v2: the EIP-712 statement a worker signs, and the epoch clock it is numbered by."""

from __future__ import annotations

import pytest
from eth_account import Account
from eth_account.messages import encode_typed_data
from hypothesis import given
from hypothesis import strategies as st

from veil.compute import heartbeat
from veil.compute.attestation import RegistryDomain
from veil.compute.heartbeat import EpochSchedule, Heartbeat
from veil.errors import InputError

WORKER = Account.from_key(b"\x41" * 32)
DOMAIN = RegistryDomain(73217, "0x" + "12" * 20)
BLOCK = bytes(range(32))


def _beat(**change: object) -> Heartbeat:
    fields: dict[str, object] = {
        "worker": WORKER.address,
        "epoch": 3,
        "sequence": 5,
        "timestamp": 1_700_000_000,
        "block_hash": BLOCK,
    }
    fields.update(change)
    return Heartbeat(**fields)  # type: ignore[arg-type]


def test_digest_is_the_eip712_digest_wallets_sign() -> None:
    """Our hand-assembled digest equals eth-account's EIP-712 encoding of the document,
    so a wallet's eth_signTypedData_v4 over `typed_data` gives the same signature."""
    beat = _beat()
    signable = encode_typed_data(full_message=heartbeat.typed_data(beat, DOMAIN))
    wallet = Account.sign_message(signable, WORKER.key)
    assert heartbeat.recover(beat, DOMAIN, wallet.signature) == WORKER.address
    assert heartbeat.STRUCT.type_string == (
        "Heartbeat(address worker,uint64 epoch,uint64 sequence,uint64 timestamp,bytes32 blockHash)"
    )


def test_signature_binds_every_field_and_the_domain() -> None:
    beat = _beat()
    signature = heartbeat.sign(beat, DOMAIN, WORKER.key)
    assert heartbeat.recover(beat, DOMAIN, signature) == WORKER.address
    for other in (
        _beat(epoch=4),
        _beat(sequence=6),
        _beat(timestamp=1_700_000_001),
        _beat(block_hash=b"\x01" * 32),
        _beat(worker="0x" + "ab" * 20),
    ):
        assert heartbeat.recover(other, DOMAIN, signature) != WORKER.address
    moved = RegistryDomain(DOMAIN.chain_id, "0x" + "34" * 20)
    assert heartbeat.recover(beat, moved, signature) != WORKER.address
    with pytest.raises(InputError):
        heartbeat.recover(beat, DOMAIN, signature[:64])


@pytest.mark.parametrize(
    "change",
    [
        {"sequence": -1},
        {"epoch": 2**64},
        {"timestamp": True},
        {"block_hash": b"\x00" * 31},
        {"block_hash": "0x" + "00" * 32},
        {"worker": "0x1234"},
    ],
)
def test_malformed_heartbeats_are_input_errors(change: dict[str, object]) -> None:
    with pytest.raises(InputError):
        _beat(**change)


def test_request_body_round_trips_the_fields() -> None:
    beat = _beat()
    signature = heartbeat.sign(beat, DOMAIN, WORKER.key)
    body = heartbeat.to_json(beat, signature)
    assert body == {
        "worker": WORKER.address,
        "epoch": 3,
        "sequence": 5,
        "timestamp": 1_700_000_000,
        "block_hash": "0x" + BLOCK.hex(),
        "signature": "0x" + signature.hex(),
    }


def test_epoch_schedule_boundaries() -> None:
    clock = EpochSchedule(1_000, 3_600)
    assert clock.epoch(1_000) == 0
    assert clock.epoch(4_599) == 0
    assert clock.epoch(4_600) == 1
    assert (clock.start(2), clock.end(2)) == (8_200, 11_800)
    with pytest.raises(InputError, match="before the epoch genesis"):
        clock.epoch(999)
    for bad in ((1_000, 0), (1_000, -5), (-1, 60), (1_000, True)):
        with pytest.raises(InputError):
            EpochSchedule(*bad)


@given(
    genesis=st.integers(0, 2**40),
    length=st.integers(1, 10**6),
    offset=st.integers(0, 2**40),
)
def test_every_timestamp_falls_in_exactly_its_epoch(genesis: int, length: int, offset: int) -> None:
    clock = EpochSchedule(genesis, length)
    epoch = clock.epoch(genesis + offset)
    assert clock.start(epoch) <= genesis + offset < clock.end(epoch)


def test_the_reward_pools_schedule_wins_and_options_may_only_repeat_it() -> None:
    pool = EpochSchedule(1_000, 600)
    assert heartbeat.choose_schedule(pool) == pool
    assert heartbeat.choose_schedule(pool, 1_000, 600) == pool
    with pytest.raises(InputError, match="--epoch-length 60: the deployment's RewardPool"):
        heartbeat.choose_schedule(pool, None, 60)
    with pytest.raises(InputError, match="--epoch-genesis 5"):
        heartbeat.choose_schedule(pool, 5)
    assert heartbeat.choose_schedule(None) == EpochSchedule(0, 3_600)
    assert heartbeat.choose_schedule(None, 50, 60) == EpochSchedule(50, 60)
    assert heartbeat.choose_schedule(None, None, 60) == EpochSchedule(0, 60)
