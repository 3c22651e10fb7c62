"""castVoteBySig and its extended form, with real EIP-712 signatures from eth_account."""

from __future__ import annotations

import boa
from eth_account import Account
from eth_account.signers.local import LocalAccount
from governance_kit import ABSTAIN, AGAINST, FOR, VPHA, System

BALLOT_TYPES = {
    "Ballot": [
        {"name": "proposalId", "type": "uint256"},
        {"name": "support", "type": "uint8"},
        {"name": "voter", "type": "address"},
        {"name": "nonce", "type": "uint256"},
    ]
}
EXTENDED_TYPES = {
    "ExtendedBallot": [
        {"name": "proposalId", "type": "uint256"},
        {"name": "support", "type": "uint8"},
        {"name": "voter", "type": "address"},
        {"name": "nonce", "type": "uint256"},
        {"name": "reason", "type": "string"},
        {"name": "params", "type": "bytes"},
    ]
}


def _domain(system: System) -> dict:
    _, name, version, chain_id, contract, _, _ = system.governor.eip712Domain()
    return {"name": name, "version": version, "chainId": chain_id, "verifyingContract": contract}


def _sign_ballot(
    system: System, signer: LocalAccount, pid: int, support: int, voter: str, nonce: int
) -> bytes:
    message = {"proposalId": pid, "support": support, "voter": voter, "nonce": nonce}
    signed = signer.sign_typed_data(_domain(system), BALLOT_TYPES, message)
    return bytes(signed.signature)


def _funded_signer(system: System, seed: str, amount: int) -> LocalAccount:
    signer = Account.from_key(bytes.fromhex(seed * 32))
    system.token.mint(signer.address, amount)
    with boa.env.prank(signer.address):
        system.token.delegate(signer.address)
    return signer


def _active_proposal(system: System) -> int:
    boa.env.time_travel(seconds=1)
    pid = system.propose(system.fee_proposal())
    system.to_active()
    return pid


def test_vote_by_signature_counts_for_the_signer(system: System) -> None:
    gov = system.governor
    signer = _funded_signer(system, "11", 50 * VPHA)
    pid = _active_proposal(system)
    assert gov.nonces(signer.address) == 0
    signature = _sign_ballot(system, signer, pid, FOR, signer.address, 0)
    relayer = boa.env.generate_address("relayer")
    with boa.env.prank(relayer):
        assert gov.castVoteBySig(pid, FOR, signer.address, signature) == 50 * VPHA
    (log,) = [log for log in gov.get_logs() if type(log).__name__ == "VoteCast"]
    assert (log.voter, log.support, log.weight, log.reason) == (signer.address, FOR, 50 * VPHA, "")
    assert gov.hasVoted(pid, signer.address)
    assert not gov.hasVoted(pid, relayer)
    assert gov.nonces(signer.address) == 1
    assert gov.proposalVotes(pid) == (0, 50 * VPHA, 0)


def test_replayed_signature_is_refused(system: System) -> None:
    gov = system.governor
    signer = _funded_signer(system, "12", 50 * VPHA)
    pid = _active_proposal(system)
    second = system.propose(system.fee_proposal(description="second"))
    system.to_active()
    signature = _sign_ballot(system, signer, pid, FOR, signer.address, 0)
    gov.castVoteBySig(pid, FOR, signer.address, signature)
    # Same signature again: the nonce moved on, so it recovers another signer.
    with boa.reverts("Governor: invalid signature"):
        gov.castVoteBySig(pid, FOR, signer.address, signature)
    # Nor can it be replayed on another proposal.
    with boa.reverts("Governor: invalid signature"):
        gov.castVoteBySig(second, FOR, signer.address, signature)
    # A fresh signature with the current nonce works on the second proposal.
    fresh = _sign_ballot(system, signer, second, AGAINST, signer.address, 1)
    assert gov.castVoteBySig(second, AGAINST, signer.address, fresh) == 50 * VPHA
    assert gov.nonces(signer.address) == 2


def test_signature_of_someone_else_is_refused(system: System) -> None:
    gov = system.governor
    victim = _funded_signer(system, "13", 50 * VPHA)
    attacker = Account.from_key(bytes.fromhex("14" * 32))
    pid = _active_proposal(system)
    forged = _sign_ballot(system, attacker, pid, AGAINST, victim.address, 0)
    with boa.reverts("Governor: invalid signature"):
        gov.castVoteBySig(pid, AGAINST, victim.address, forged)
    assert gov.nonces(victim.address) == 0
    assert not gov.hasVoted(pid, victim.address)


def test_signed_fields_are_bound(system: System) -> None:
    gov = system.governor
    signer = _funded_signer(system, "15", 50 * VPHA)
    pid = _active_proposal(system)
    signature = _sign_ballot(system, signer, pid, FOR, signer.address, 0)
    with boa.reverts("Governor: invalid signature"):
        gov.castVoteBySig(pid, AGAINST, signer.address, signature)  # support changed
    wrong_nonce = _sign_ballot(system, signer, pid, FOR, signer.address, 5)
    with boa.reverts("Governor: invalid signature"):
        gov.castVoteBySig(pid, FOR, signer.address, wrong_nonce)
    # A signature for another domain (another verifying contract) does not verify here.
    other_domain = _domain(system) | {"verifyingContract": system.target.address}
    message = {"proposalId": pid, "support": FOR, "voter": signer.address, "nonce": 0}
    foreign = bytes(signer.sign_typed_data(other_domain, BALLOT_TYPES, message).signature)
    with boa.reverts("Governor: invalid signature"):
        gov.castVoteBySig(pid, FOR, signer.address, foreign)
    with boa.reverts("ecdsa: invalid signature"):
        gov.castVoteBySig(pid, FOR, signer.address, b"\x00" * 65)
    assert gov.castVoteBySig(pid, FOR, signer.address, signature) == 50 * VPHA


def test_signed_vote_still_needs_an_active_proposal(system: System) -> None:
    gov = system.governor
    signer = _funded_signer(system, "16", 50 * VPHA)
    boa.env.time_travel(seconds=1)
    pid = system.propose(system.fee_proposal())
    signature = _sign_ballot(system, signer, pid, FOR, signer.address, 0)
    with boa.reverts("Governor: vote not currently active"):
        gov.castVoteBySig(pid, FOR, signer.address, signature)
    assert gov.nonces(signer.address) == 0


def test_extended_ballot_by_signature(system: System) -> None:
    gov = system.governor
    signer = _funded_signer(system, "17", 70 * VPHA)
    pid = _active_proposal(system)
    message = {
        "proposalId": pid,
        "support": ABSTAIN,
        "voter": signer.address,
        "nonce": 0,
        "reason": "conflict of interest",
        "params": b"\x05",
    }
    signature = bytes(signer.sign_typed_data(_domain(system), EXTENDED_TYPES, message).signature)
    with boa.reverts("Governor: invalid signature"):
        gov.castVoteWithReasonAndParamsBySig(
            pid, ABSTAIN, signer.address, "another reason", b"\x05", signature
        )
    assert (
        gov.castVoteWithReasonAndParamsBySig(
            pid, ABSTAIN, signer.address, "conflict of interest", b"\x05", signature
        )
        == 70 * VPHA
    )
    (log,) = [log for log in gov.get_logs() if type(log).__name__ == "VoteCastWithParams"]
    assert (log.voter, log.reason, log.params) == (signer.address, "conflict of interest", b"\x05")
    assert gov.proposalVotes(pid) == (0, 0, 70 * VPHA)
    assert gov.nonces(signer.address) == 1
