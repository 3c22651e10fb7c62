"""The EpochRoot statement as attesters sign it, and the signer order the pool requires."""

from __future__ import annotations

import pytest
from eth_account import Account
from eth_account.messages import encode_typed_data
from eth_utils import keccak

from veil.attestation.typed_data import DigestSigner, recover_digest
from veil.errors import InputError
from veil.rewards.pool import MAX_SIGNATURES, EpochRoot, order_signatures, pool_domain

POOL = "0x" + "ab" * 20
STATEMENT = EpochRoot(42, keccak(text="root"), 123_456 * 10**18, keccak(text="report"))
KEYS = [keccak(text=f"pool typed data key {i}") for i in range(10)]


def test_digest_is_the_wallet_typed_data_hash() -> None:
    domain = pool_domain(31337, POOL)
    document = STATEMENT.typed_data(domain)
    assert document["primaryType"] == "EpochRoot"
    signed = Account.sign_message(encode_typed_data(full_message=document), KEYS[0])
    assert signed.message_hash == STATEMENT.digest(domain)
    assert recover_digest(STATEMENT.digest(domain), STATEMENT.sign(domain, KEYS[0])) == (
        Account.from_key(KEYS[0]).address
    )


def test_digest_binds_chain_pool_and_every_field() -> None:
    domain = pool_domain(31337, POOL)
    digests = {
        STATEMENT.digest(domain),
        STATEMENT.digest(pool_domain(10, POOL)),
        STATEMENT.digest(pool_domain(31337, "0x" + "cd" * 20)),
        EpochRoot(43, STATEMENT.root, STATEMENT.total, STATEMENT.report_hash).digest(domain),
        EpochRoot(42, bytes(32), STATEMENT.total, STATEMENT.report_hash).digest(domain),
        EpochRoot(42, STATEMENT.root, STATEMENT.total + 1, STATEMENT.report_hash).digest(domain),
        EpochRoot(42, STATEMENT.root, STATEMENT.total, bytes(32)).digest(domain),
    }
    assert len(digests) == 7


def test_signatures_come_back_in_signer_order() -> None:
    domain = pool_domain(31337, POOL)
    signers = [DigestSigner(k) for k in KEYS[:5]]
    signatures = [STATEMENT.sign(domain, k) for k in KEYS[:5]]
    ordered = order_signatures(STATEMENT, domain, signatures)
    recovered = [int(recover_digest(STATEMENT.digest(domain), s), 16) for s in ordered]
    assert recovered == sorted(int(s.address, 16) for s in signers)


def test_bad_signature_sets_are_refused() -> None:
    domain = pool_domain(31337, POOL)
    one = STATEMENT.sign(domain, KEYS[0])
    with pytest.raises(InputError, match="no attester signatures"):
        order_signatures(STATEMENT, domain, [])
    with pytest.raises(InputError, match="appears twice"):
        order_signatures(STATEMENT, domain, [one, one])
    many = [STATEMENT.sign(domain, k) for k in KEYS[: MAX_SIGNATURES + 1]]
    with pytest.raises(InputError, match="at most 8"):
        order_signatures(STATEMENT, domain, many)


def test_statement_json_keeps_amounts_exact() -> None:
    assert STATEMENT.to_json() == {
        "epoch": 42,
        "root": "0x" + STATEMENT.root.hex(),
        "total": str(123_456 * 10**18),
        "reportHash": "0x" + STATEMENT.report_hash.hex(),
    }
