"""EpochRoot signatures: what the pool recovers, and every way `publish` refuses a set."""

from __future__ import annotations

import pytest

from veil.attestation.typed_data import recover_digest
from veil.errors import InputError
from veil.rewards.pool import pool_domain
from veil.rewards.settlement import (
    EpochRoot,
    gather,
    read_signature,
    sign_root,
    write_signature,
)

POOL = "0x" + "9a" * 20
KEYS = [bytes([i]) * 32 for i in (1, 2, 3, 4)]
STATEMENT = EpochRoot(5, b"\x11" * 32, 10**18, b"\x22" * 32)


def signed(i: int, statement: EpochRoot = STATEMENT, chain_id: int = 31337):
    return sign_root(statement, chain_id, POOL, KEYS[i])


def test_signature_file_round_trip_and_recovery(tmp_path):
    item = signed(0)
    path = write_signature(item, tmp_path)
    again = read_signature(path)
    assert again == item
    assert (
        recover_digest(STATEMENT.digest(pool_domain(31337, POOL)), again.signature) == item.signer
    )
    path.write_text("{}")
    with pytest.raises(InputError, match="not a veil-epoch-root-signature-v1"):
        read_signature(path)
    with pytest.raises(InputError, match="signature file"):
        read_signature(tmp_path / "missing.json")


def test_gather_orders_by_signer_and_takes_the_threshold():
    items = [signed(i) for i in range(3)]
    attesters = [i.signer for i in items]
    ordered = gather(STATEMENT, 31337, POOL, items, attesters, 2)
    assert len(ordered) == 2
    signers = [recover_digest(STATEMENT.digest(pool_domain(31337, POOL)), s) for s in ordered]
    assert signers == sorted(signers, key=lambda a: int(a, 16))[:2]


def test_gather_refusals():
    items = [signed(i) for i in range(2)]
    attesters = [i.signer for i in items]
    with pytest.raises(InputError, match="the pool needs 3"):
        gather(STATEMENT, 31337, POOL, items, attesters, 3)
    with pytest.raises(InputError, match="not one of the pool's attesters"):
        gather(STATEMENT, 31337, POOL, [signed(3)], attesters, 1)
    other = EpochRoot(5, b"\x33" * 32, 10**18, b"\x22" * 32)
    with pytest.raises(InputError, match="not this report's"):
        gather(STATEMENT, 31337, POOL, [signed(0, other)], attesters, 1)
    with pytest.raises(InputError, match="not this report's"):
        gather(STATEMENT, 31337, POOL, [signed(0, chain_id=1)], attesters, 1)
    with pytest.raises(InputError, match="twice"):
        gather(STATEMENT, 31337, POOL, [items[0], items[0]], attesters, 1)
    forged = type(items[0])(STATEMENT, 31337, POOL, items[1].signer, items[0].signature)
    with pytest.raises(InputError, match="recovers"):
        gather(STATEMENT, 31337, POOL, [forged], attesters, 1)
