"""Governor unit tests: OpenZeppelin-compatible interface, lifecycle, votes, governance setters."""

from __future__ import annotations

import boa
import pytest
from compiled import compiled
from eth.exceptions import Revert
from eth_abi import encode
from eth_utils import function_signature_to_4byte_selector, keccak
from governance_kit import (
    ABSTAIN,
    ACTIVE,
    AGAINST,
    CANCELED,
    CANCELLER_ROLE,
    DEFEATED,
    EXECUTED,
    EXECUTOR_ROLE,
    FOR,
    GOVERNOR,
    MIN_DELAY,
    PENDING,
    PROPOSER_ROLE,
    QUEUED,
    QUORUM_NUMERATOR,
    SUCCEEDED,
    TARGET_DOUBLE,
    THRESHOLD,
    TIMELOCK,
    VOTES_DOUBLE,
    VOTING_DELAY,
    VOTING_PERIOD,
    VPHA,
    ZERO,
    Proposal,
    System,
)

# ------------------------------------------------------------------ metadata


def _salt(gov_address: str, proposal: Proposal) -> bytes:
    """OpenZeppelin's timelock salt: bytes20(governor) ^ descriptionHash."""
    value = int.from_bytes(proposal.description_hash, "big") ^ (int(gov_address, 16) << 96)
    return value.to_bytes(32, "big")


def _selector(signature: str) -> int:
    return int.from_bytes(function_signature_to_4byte_selector(signature), "big")


NO_PREDECESSOR = NO_SALT = b"\x00" * 32
NOT_IN_PROPOSAL = "Governor: call is not part of an executing proposal"
IGOVERNOR_FUNCTIONS = [
    "name()",
    "version()",
    "COUNTING_MODE()",
    "hashProposal(address[],uint256[],bytes[],bytes32)",
    "getProposalId(address[],uint256[],bytes[],bytes32)",
    "state(uint256)",
    "proposalThreshold()",
    "proposalSnapshot(uint256)",
    "proposalDeadline(uint256)",
    "proposalProposer(uint256)",
    "proposalEta(uint256)",
    "proposalNeedsQueuing(uint256)",
    "votingDelay()",
    "votingPeriod()",
    "quorum(uint256)",
    "getVotes(address,uint256)",
    "getVotesWithParams(address,uint256,bytes)",
    "hasVoted(uint256,address)",
    "propose(address[],uint256[],bytes[],string)",
    "queue(address[],uint256[],bytes[],bytes32)",
    "execute(address[],uint256[],bytes[],bytes32)",
    "cancel(address[],uint256[],bytes[],bytes32)",
    "castVote(uint256,uint8)",
    "castVoteWithReason(uint256,uint8,string)",
    "castVoteWithReasonAndParams(uint256,uint8,string,bytes)",
    "castVoteBySig(uint256,uint8,address,bytes)",
    "castVoteWithReasonAndParamsBySig(uint256,uint8,address,string,bytes,bytes)",
]


def test_abi_has_every_igovernor_function(system: System) -> None:
    abi = system.governor.abi
    signatures = {
        f"{e['name']}({','.join(i['type'] for i in e['inputs'])})"
        for e in abi
        if e["type"] == "function"
    }
    for signature in [
        *IGOVERNOR_FUNCTIONS,
        "nonces(address)",
        "quorumNumerator()",
        "quorumNumerator(uint256)",
        "quorumDenominator()",
        "token()",
        "timelock()",
        "clock()",
        "CLOCK_MODE()",
        "eip712Domain()",
        "proposalVotes(uint256)",
        "setVotingDelay(uint48)",
        "setVotingPeriod(uint32)",
        "setProposalThreshold(uint256)",
        "updateQuorumNumerator(uint256)",
        "updateTimelock(address)",
        "supportsInterface(bytes4)",
    ]:
        assert signature in signatures, signature


def test_events_match_openzeppelin_signatures(system: System) -> None:
    expected = {
        "ProposalCreated(uint256,address,address[],uint256[],string[],bytes[],uint256,uint256,string)",
        "ProposalQueued(uint256,uint256)",
        "ProposalExecuted(uint256)",
        "ProposalCanceled(uint256)",
        "VoteCast(address,uint256,uint8,uint256,string)",
        "VoteCastWithParams(address,uint256,uint8,uint256,string,bytes)",
        "VotingDelaySet(uint256,uint256)",
        "VotingPeriodSet(uint256,uint256)",
        "ProposalThresholdSet(uint256,uint256)",
        "QuorumNumeratorUpdated(uint256,uint256)",
        "TimelockChange(address,address)",
    }
    events = {
        f"{e['name']}({','.join(i['type'] for i in e['inputs'])})": e
        for e in system.governor.abi
        if e["type"] == "event"
    }
    assert expected <= set(events)
    vote_cast = events["VoteCast(address,uint256,uint8,uint256,string)"]
    assert [i["indexed"] for i in vote_cast["inputs"]] == [True, False, False, False, False]
    created = events[
        "ProposalCreated(uint256,address,address[],uint256[],string[],bytes[],uint256,uint256,string)"
    ]
    assert not any(i["indexed"] for i in created["inputs"])


def test_metadata_and_settings(system: System) -> None:
    gov = system.governor
    assert gov.name() == "veil Governor"
    assert gov.version() == "1"
    assert gov.COUNTING_MODE() == "support=bravo&quorum=for,abstain"
    assert gov.token() == system.token.address
    assert gov.timelock() == system.timelock.address
    assert gov.clock() == system.token.clock() == boa.env.evm.patch.timestamp
    assert gov.CLOCK_MODE() == "mode=timestamp"
    assert gov.votingDelay() == VOTING_DELAY
    assert gov.votingPeriod() == VOTING_PERIOD
    assert gov.proposalThreshold() == THRESHOLD
    assert gov.quorumNumerator() == QUORUM_NUMERATOR
    assert gov.quorumDenominator() == 100
    assert gov.proposalNeedsQueuing(123) is True
    assert gov.BALLOT_TYPEHASH() == keccak(
        text="Ballot(uint256 proposalId,uint8 support,address voter,uint256 nonce)"
    )
    fields, name, version, chain_id, contract, salt, extensions = gov.eip712Domain()
    assert (fields, name, version, contract) == (b"\x0f", "veil Governor", "1", gov.address)
    assert chain_id == boa.env.evm.patch.chain_id
    assert (salt, extensions) == (b"\x00" * 32, [])


def test_supports_interface(system: System) -> None:
    gov = system.governor
    igovernor = 0
    for signature in IGOVERNOR_FUNCTIONS:
        igovernor ^= _selector(signature)
    legacy = igovernor ^ _selector("getProposalId(address[],uint256[],bytes[],bytes32)")
    for interface_id in (igovernor, legacy, 0x01FFC9A7, 0x4E2312E0):
        assert gov.supportsInterface(interface_id.to_bytes(4, "big")), hex(interface_id)
    assert not gov.supportsInterface(b"\xff\xff\xff\xff")
    assert not gov.supportsInterface(b"\x12\x34\x56\x78")


def test_get_votes_and_quorum_read_the_token_at_a_timepoint(system: System) -> None:
    gov, alice = system.governor, system.voters["alice"]
    now = gov.clock()
    assert gov.getVotes(alice, now - 1) == 400 * VPHA
    assert gov.getVotesWithParams(alice, now - 1, b"\x01") == 400 * VPHA
    assert gov.quorum(now - 1) == 1000 * VPHA * QUORUM_NUMERATOR // 100
    system.token.mint(alice, 500 * VPHA)
    boa.env.time_travel(seconds=1)
    assert gov.getVotes(alice, now - 1) == 400 * VPHA
    assert gov.getVotes(alice, gov.clock() - 1) == 900 * VPHA
    assert gov.quorum(gov.clock() - 1) == 1500 * VPHA * QUORUM_NUMERATOR // 100


# ------------------------------------------------------------------ constructor


def test_constructor_emits_setting_events(system: System) -> None:
    gov = compiled(GOVERNOR).deploy(system.token.address, system.timelock.address, 5, 7, 11, 13)
    names = [type(log).__name__ for log in gov.get_logs()]
    assert names == [
        "TimelockChange",
        "VotingDelaySet",
        "VotingPeriodSet",
        "ProposalThresholdSet",
        "QuorumNumeratorUpdated",
    ]
    assert (
        gov.votingDelay(),
        gov.votingPeriod(),
        gov.proposalThreshold(),
        gov.quorumNumerator(),
    ) == (5, 7, 11, 13)


def test_constructor_refuses_a_block_number_clock(system: System) -> None:
    block_clock_token = boa.loads(
        """
@external
@view
def CLOCK_MODE() -> String[64]:
    return "mode=blocknumber&from=default"
"""
    )
    with boa.reverts("Governor: token clock must be mode=timestamp"):
        compiled(GOVERNOR).deploy(block_clock_token.address, system.timelock.address, 1, 1, 0, 4)


def test_constructor_refuses_zero_period_and_quorum_over_100(system: System) -> None:
    with boa.reverts("Governor: voting period must be non-zero"):
        compiled(GOVERNOR).deploy(system.token.address, system.timelock.address, 1, 0, 0, 4)
    with boa.reverts("Governor: quorum numerator over denominator"):
        compiled(GOVERNOR).deploy(system.token.address, system.timelock.address, 1, 1, 0, 101)
    gov = compiled(GOVERNOR).deploy(system.token.address, system.timelock.address, 1, 1, 0, 100)
    assert gov.quorumNumerator() == 100


# ------------------------------------------------------------------ proposal ids


def _oz_proposal_id(
    targets: list[str], values: list[int], calldatas: list[bytes], description: str
) -> int:
    """OpenZeppelin's derivation, computed independently of the contract."""
    encoded = encode(
        ["address[]", "uint256[]", "bytes[]", "bytes32"],
        [targets, values, calldatas, keccak(text=description)],
    )
    return int.from_bytes(keccak(encoded), "big")


def test_hash_proposal_matches_openzeppelin_derivation(system: System) -> None:
    gov, target = system.governor, system.target
    targets = [target.address, system.timelock.address, ZERO]
    values = [0, 5, 10**18]
    calldatas = [target.setFee.prepare_calldata(7), b"", b"\xab" * 1024]
    description = "# Title\n\nBody with unicode: ünïcödé ✓"
    expected = _oz_proposal_id(targets, values, calldatas, description)
    assert gov.hashProposal(targets, values, calldatas, keccak(text=description)) == expected
    assert gov.getProposalId(targets, values, calldatas, keccak(text=description)) == expected
    with boa.env.prank(system.voters["alice"]):
        assert gov.propose(targets, values, calldatas, description) == expected


def test_propose_records_and_emits_like_openzeppelin(system: System) -> None:
    gov = system.governor
    proposal = system.fee_proposal(description="Raise the fee to 42")
    now = gov.clock()
    pid = system.propose(proposal)
    (log,) = gov.get_logs()
    assert type(log).__name__ == "ProposalCreated"
    assert log.proposalId == pid
    assert log.proposer == system.voters["alice"]
    assert log.targets == proposal.targets
    assert log.values == proposal.values
    assert log.signatures == [""]
    assert log.calldatas == proposal.calldatas
    assert log.voteStart == now + VOTING_DELAY
    assert log.voteEnd == now + VOTING_DELAY + VOTING_PERIOD
    assert log.description == "Raise the fee to 42"
    assert gov.proposalSnapshot(pid) == now + VOTING_DELAY
    assert gov.proposalDeadline(pid) == now + VOTING_DELAY + VOTING_PERIOD
    assert gov.proposalProposer(pid) == system.voters["alice"]
    assert gov.proposalEta(pid) == 0
    assert gov.proposalVotes(pid) == (0, 0, 0)
    assert gov.state(pid) == PENDING


def test_unknown_proposal(system: System) -> None:
    gov = system.governor
    with boa.reverts("Governor: unknown proposal id"):
        gov.state(12345)
    assert gov.proposalSnapshot(12345) == 0
    assert gov.proposalDeadline(12345) == 0
    assert gov.proposalProposer(12345) == ZERO


def test_propose_reverts(system: System) -> None:
    gov, target = system.governor, system.target
    cd = target.setFee.prepare_calldata(1)
    with boa.env.prank(system.voters["alice"]):
        with boa.reverts("Governor: empty proposal"):
            gov.propose([], [], [], "nothing")
        with boa.reverts("Governor: invalid proposal length"):
            gov.propose([target.address], [0, 0], [cd], "mismatch")
        with boa.reverts("Governor: invalid proposal length"):
            gov.propose([target.address], [0], [cd, cd], "mismatch")
        gov.propose([target.address], [0], [cd], "once")
        with boa.reverts("Governor: proposal already exists"):
            gov.propose([target.address], [0], [cd], "once")


def test_threshold_counts_votes_one_second_before(system: System) -> None:
    gov, token = system.governor, system.token
    newcomer = boa.env.generate_address("newcomer")
    token.mint(newcomer, THRESHOLD)
    with boa.env.prank(newcomer):
        token.delegate(newcomer)
        # Votes acquired in the same second do not count yet.
        with boa.reverts("Governor: proposer votes below threshold"):
            gov.propose([system.target.address], [0], [b""], "too early")
    boa.env.time_travel(seconds=1)
    with boa.env.prank(newcomer):
        pid = gov.propose([system.target.address], [0], [b""], "now allowed")
    assert gov.proposalProposer(pid) == newcomer
    poorer = boa.env.generate_address("poorer")
    token.mint(poorer, THRESHOLD - 1)
    with boa.env.prank(poorer):
        token.delegate(poorer)
    boa.env.time_travel(seconds=1)
    with boa.env.prank(poorer), boa.reverts("Governor: proposer votes below threshold"):
        gov.propose([system.target.address], [0], [b""], "one wei short")


def test_bounds_are_enforced_by_abi_decoding(system: System) -> None:
    gov = system.governor
    assert (gov.MAX_ACTIONS(), gov.MAX_CALLDATA(), gov.MAX_DESCRIPTION(), gov.MAX_REASON()) == (
        16,
        1024,
        4096,
        1024,
    )
    alice = system.voters["alice"]
    ok = [system.target.address] * 16
    with boa.env.prank(alice):
        gov.propose(ok, [0] * 16, [b"\x01" * 1024] * 16, "x" * 4096)
    too_many = [system.target.address] * 17
    selector = function_signature_to_4byte_selector("propose(address[],uint256[],bytes[],string)")
    for args in (
        (too_many, [0] * 17, [b""] * 17, "too many"),
        ([system.target.address], [0], [b"\x01" * 1025], "calldata too long"),
        ([system.target.address], [0], [b""], "y" * 4097),
    ):
        data = selector + encode(["address[]", "uint256[]", "bytes[]", "string"], list(args))
        with boa.env.prank(alice), pytest.raises(Revert):
            boa.env.raw_call(gov.address, data=data)


# ------------------------------------------------------------------ lifecycle


def test_full_lifecycle_changes_a_timelock_owned_parameter(system: System) -> None:
    gov, target = system.governor, system.target
    proposal = system.fee_proposal(fee=77)
    with boa.reverts("target: only owner"):
        target.setFee(77)
    pid = system.propose(proposal)
    assert gov.state(pid) == PENDING
    boa.env.time_travel(seconds=VOTING_DELAY)
    assert gov.state(pid) == PENDING  # snapshot == now is still pending
    boa.env.time_travel(seconds=1)
    assert gov.state(pid) == ACTIVE
    assert system.vote(pid, "alice", FOR) == 400 * VPHA
    assert system.vote(pid, "bob", AGAINST) == 300 * VPHA
    assert system.vote(pid, "carol", ABSTAIN) == 200 * VPHA
    assert gov.proposalVotes(pid) == (300 * VPHA, 400 * VPHA, 200 * VPHA)
    boa.env.time_travel(seconds=VOTING_PERIOD - 1)
    assert gov.state(pid) == ACTIVE  # deadline itself still accepts votes
    boa.env.time_travel(seconds=1)
    assert gov.state(pid) == SUCCEEDED
    with boa.reverts("Governor: proposal not queued"):
        gov.execute(*proposal.args())

    now = gov.clock()
    assert gov.queue(*proposal.args()) == pid
    (queued,) = [log for log in gov.get_logs() if type(log).__name__ == "ProposalQueued"]
    assert (queued.proposalId, queued.etaSeconds) == (pid, now + MIN_DELAY)
    assert gov.proposalEta(pid) == now + MIN_DELAY
    assert gov.state(pid) == QUEUED
    # the eta shares a slot with the for-votes and leaves the tallies alone
    assert gov.proposalVotes(pid) == (300 * VPHA, 400 * VPHA, 200 * VPHA)
    with boa.reverts("Governor: proposal not successful"):
        gov.queue(*proposal.args())
    with boa.reverts("timelock_controller: operation is not ready"):
        gov.execute(*proposal.args())

    boa.env.time_travel(seconds=MIN_DELAY)
    stranger = boa.env.generate_address("anyone")
    with boa.env.prank(stranger):
        assert gov.execute(*proposal.args()) == pid
    names = [type(log).__name__ for log in gov.get_logs()]
    assert names == ["CallExecuted", "ProposalExecuted"]
    assert target.fee() == 77
    assert gov.state(pid) == EXECUTED
    assert gov.proposalEta(pid) == now + MIN_DELAY
    with boa.reverts("Governor: proposal not queued"):
        gov.execute(*proposal.args())


def test_timelock_salt_and_operation_id_follow_openzeppelin(system: System) -> None:
    gov, timelock = system.governor, system.timelock
    proposal = system.fee_proposal(fee=5, description="salted")
    system.pass_and_queue(proposal)
    salt = _salt(gov.address, proposal)
    op_id = keccak(
        encode(
            ["address[]", "uint256[]", "bytes[]", "bytes32", "bytes32"],
            [proposal.targets, proposal.values, proposal.calldatas, b"\x00" * 32, salt],
        )
    )
    assert timelock.is_operation_pending(op_id)
    assert timelock.get_timestamp(op_id) == gov.clock() + MIN_DELAY


def test_execute_forwards_value_and_fails_atomically(system: System) -> None:
    gov, target = system.governor, system.target
    pay = Proposal(
        [target.address], [10**18], [target.receiveValue.prepare_calldata()], "pay the target"
    )
    system.pass_and_queue(pay)
    boa.env.time_travel(seconds=MIN_DELAY)
    boa.env.set_balance(boa.env.eoa, 2 * 10**18)
    gov.execute(*pay.args(), value=10**18)
    assert target.received() == 10**18
    assert boa.env.get_balance(system.timelock.address) == 0

    failing = Proposal(
        [target.address, target.address],
        [0, 0],
        [target.setFee.prepare_calldata(9), target.fail.prepare_calldata()],
        "second call fails",
    )
    pid = system.pass_and_queue(failing)
    boa.env.time_travel(seconds=MIN_DELAY)
    with boa.reverts("target: failed on purpose"):
        gov.execute(*failing.args())
    assert target.fee() == 0
    assert gov.state(pid) == QUEUED


def test_defeated_when_for_does_not_beat_against(system: System) -> None:
    gov = system.governor
    proposal = system.fee_proposal()
    pid = system.propose(proposal)
    system.to_active()
    system.vote(pid, "bob", FOR)  # 300
    system.vote(pid, "carol", AGAINST)  # 200
    system.vote(pid, "dave", AGAINST)  # 100: tie 300 vs 300
    system.to_ended()
    assert gov.state(pid) == DEFEATED
    with boa.reverts("Governor: proposal not successful"):
        gov.queue(*proposal.args())


def test_defeated_without_votes(system: System) -> None:
    proposal = system.fee_proposal()
    pid = system.propose(proposal)
    system.to_active()
    system.to_ended()
    assert system.governor.state(pid) == DEFEATED


def test_quorum_boundary_counts_for_and_abstain(system: System) -> None:
    """Supply stays 1000 vPHA, so quorum is 40: for + abstain of 40 passes, one wei less fails."""
    gov, token = system.governor, system.token
    alice = system.voters["alice"]
    yes, maybe = boa.env.generate_address("yes"), boa.env.generate_address("maybe")
    for account in (yes, maybe):
        with boa.env.prank(account):
            token.delegate(account)
    with boa.env.prank(alice):
        token.transfer(yes, 25 * VPHA)
        token.transfer(maybe, 15 * VPHA - 1)
    boa.env.time_travel(seconds=1)
    short_id = system.propose(system.fee_proposal(description="one wei below quorum"))
    boa.env.time_travel(seconds=1)
    exact_id = system.propose(system.fee_proposal(description="exactly at quorum"))
    # Now: after the first snapshot, at the second one.
    boa.env.time_travel(seconds=VOTING_DELAY)
    assert gov.proposalSnapshot(short_id) < gov.clock() == gov.proposalSnapshot(exact_id)
    with boa.env.prank(alice):
        token.transfer(maybe, 1)
    boa.env.time_travel(seconds=1)
    for pid in (short_id, exact_id):
        assert gov.quorum(gov.proposalSnapshot(pid)) == 40 * VPHA
        with boa.env.prank(yes):
            gov.castVote(pid, FOR)
        with boa.env.prank(maybe):
            gov.castVote(pid, ABSTAIN)
    assert gov.proposalVotes(short_id) == (0, 25 * VPHA, 15 * VPHA - 1)
    assert gov.proposalVotes(exact_id) == (0, 25 * VPHA, 15 * VPHA)
    system.to_ended()
    assert gov.state(short_id) == DEFEATED
    assert gov.state(exact_id) == SUCCEEDED


def test_against_votes_do_not_count_towards_quorum(system: System) -> None:
    gov = system.governor
    pid = system.propose(system.fee_proposal())
    system.to_active()
    system.vote(pid, "dave", AGAINST)  # 100 against
    tiny = boa.env.generate_address("tiny")
    system.token.mint(tiny, 1)
    system.to_ended()
    assert gov.state(pid) == DEFEATED


# ------------------------------------------------------------------ votes


def test_vote_reverts(system: System) -> None:
    gov = system.governor
    proposal = system.fee_proposal()
    pid = system.propose(proposal)
    with boa.env.prank(system.voters["alice"]):
        with boa.reverts("Governor: vote not currently active"):
            gov.castVote(pid, FOR)  # pending
        with boa.reverts("Governor: vote not currently active"):
            gov.castVote(999, FOR)  # unknown
    system.to_active()
    with boa.env.prank(system.voters["alice"]):
        with boa.reverts("Governor: invalid vote type"):
            gov.castVote(pid, 3)
        gov.castVote(pid, FOR)
        with boa.reverts("Governor: vote already cast"):
            gov.castVote(pid, AGAINST)
        with boa.reverts("Governor: vote already cast"):
            gov.castVoteWithReason(pid, FOR, "again")
    assert gov.hasVoted(pid, system.voters["alice"])
    assert not gov.hasVoted(pid, system.voters["bob"])
    system.to_ended()
    with boa.env.prank(system.voters["bob"]), boa.reverts("Governor: vote not currently active"):
        gov.castVote(pid, FOR)


def test_votes_count_at_the_snapshot_only(system: System) -> None:
    gov, token = system.governor, system.token
    alice, bob = system.voters["alice"], system.voters["bob"]
    late = boa.env.generate_address("late")
    proposal = system.fee_proposal()
    pid = system.propose(proposal)
    boa.env.time_travel(seconds=VOTING_DELAY + 1)  # one second after the snapshot
    token.mint(late, 500 * VPHA)
    with boa.env.prank(late):
        token.delegate(late)
    with boa.env.prank(alice):
        token.transfer(bob, 400 * VPHA)
    with boa.env.prank(late):
        assert gov.castVote(pid, FOR) == 0
    with boa.env.prank(bob):
        assert gov.castVote(pid, AGAINST) == 300 * VPHA
    with boa.env.prank(alice):
        assert gov.castVote(pid, FOR) == 400 * VPHA
    assert gov.proposalVotes(pid) == (300 * VPHA, 400 * VPHA, 0)
    assert gov.hasVoted(pid, late)  # a zero-weight vote is still a vote, as in OpenZeppelin


def test_vote_events_with_reason_and_params(system: System) -> None:
    gov = system.governor
    pid = system.propose(system.fee_proposal())
    system.to_active()
    with boa.env.prank(system.voters["alice"]):
        gov.castVoteWithReason(pid, FOR, "good for the network")
    (log,) = gov.get_logs()
    assert type(log).__name__ == "VoteCast"
    assert (log.voter, log.proposalId, log.support, log.weight, log.reason) == (
        system.voters["alice"],
        pid,
        FOR,
        400 * VPHA,
        "good for the network",
    )
    with boa.env.prank(system.voters["bob"]):
        gov.castVoteWithReasonAndParams(pid, ABSTAIN, "meh", b"\x01\x02")
    (log,) = gov.get_logs()
    assert type(log).__name__ == "VoteCastWithParams"
    assert (log.support, log.weight, log.reason, log.params) == (
        ABSTAIN,
        300 * VPHA,
        "meh",
        b"\x01\x02",
    )
    with boa.env.prank(system.voters["carol"]):
        gov.castVoteWithReasonAndParams(pid, AGAINST, "", b"")
    (log,) = gov.get_logs()
    assert type(log).__name__ == "VoteCast"  # empty params: plain VoteCast, as OpenZeppelin
    with boa.env.prank(system.voters["dave"]):
        gov.castVote(pid, FOR)
    (log,) = gov.get_logs()
    assert (type(log).__name__, log.reason) == ("VoteCast", "")
    assert gov.proposalVotes(pid) == (200 * VPHA, 500 * VPHA, 300 * VPHA)


# ------------------------------------------------------------------ cancel


def test_proposer_cancels_while_pending(system: System) -> None:
    gov = system.governor
    proposal = system.fee_proposal()
    pid = system.propose(proposal)
    with boa.env.prank(system.voters["bob"]), boa.reverts("Governor: only the proposer can cancel"):
        gov.cancel(*proposal.args())
    with boa.env.prank(system.voters["alice"]):
        assert gov.cancel(*proposal.args()) == pid
    assert [type(log).__name__ for log in gov.get_logs()] == ["ProposalCanceled"]
    assert gov.state(pid) == CANCELED
    system.to_active()
    with boa.env.prank(system.voters["bob"]), boa.reverts("Governor: vote not currently active"):
        gov.castVote(pid, FOR)
    only_pending = "Governor: only a pending proposal can be canceled"
    with boa.env.prank(system.voters["alice"]), boa.reverts(only_pending):
        gov.cancel(*proposal.args())
    # The same actions and description cannot be proposed again.
    with boa.env.prank(system.voters["alice"]), boa.reverts("Governor: proposal already exists"):
        gov.propose(proposal.targets, proposal.values, proposal.calldatas, proposal.description)


def test_proposer_cannot_cancel_after_voting_starts(system: System) -> None:
    gov = system.governor
    proposal = system.fee_proposal()
    system.propose(proposal)
    system.to_active()
    only_pending = "Governor: only a pending proposal can be canceled"
    with boa.env.prank(system.voters["alice"]), boa.reverts(only_pending):
        gov.cancel(*proposal.args())
    with boa.reverts("Governor: unknown proposal id"):
        gov.cancel(*system.fee_proposal(description="never proposed").args())


def test_governance_cancels_a_queued_proposal_and_its_timelock_operation(system: System) -> None:
    gov, timelock = system.governor, system.timelock
    victim = system.fee_proposal(fee=666, description="bad idea")
    victim_id = system.pass_and_queue(victim)
    assert gov.state(victim_id) == QUEUED
    cancel_call = gov.cancel.prepare_calldata(*victim.args())
    rescue = system.self_proposal(cancel_call, "cancel the bad idea")
    # The rescue runs through the same timelock delay; the victim becomes ready first.
    system.enact(rescue)
    assert gov.state(victim_id) == CANCELED
    boa.env.time_travel(seconds=MIN_DELAY)
    with boa.reverts("Governor: proposal not queued"):
        gov.execute(*victim.args())
    assert system.target.fee() == 0
    salt = _salt(gov.address, victim)
    op_id = timelock.hash_operation_batch(
        victim.targets, victim.values, victim.calldatas, b"\x00" * 32, salt
    )
    assert not timelock.is_operation(op_id)


def test_direct_cancel_by_timelock_outside_a_proposal_is_refused(system: System) -> None:
    gov = system.governor
    proposal = system.fee_proposal()
    system.propose(proposal)
    system.to_active()
    with boa.env.prank(system.timelock.address), boa.reverts(NOT_IN_PROPOSAL):
        gov.cancel(*proposal.args())


# ------------------------------------------------------------------ state vs. the timelock


def test_state_follows_operations_done_or_cancelled_on_the_timelock(system: System) -> None:
    gov, timelock, admin = system.governor, system.timelock, system.tl_admin
    proposal = system.fee_proposal(fee=3, description="executed around the governor")
    pid = system.pass_and_queue(proposal)
    salt = _salt(gov.address, proposal)
    boa.env.time_travel(seconds=MIN_DELAY)
    # The executor role is open: anyone can execute the batch on the timelock directly.
    timelock.execute_batch(
        proposal.targets, proposal.values, proposal.calldatas, b"\x00" * 32, salt
    )
    assert system.target.fee() == 3
    assert gov.state(pid) == EXECUTED

    other = system.fee_proposal(fee=4, description="cancelled around the governor")
    pid2 = system.pass_and_queue(other)
    salt2 = _salt(gov.address, other)
    op_id = timelock.hash_operation_batch(
        other.targets, other.values, other.calldatas, b"\x00" * 32, salt2
    )
    with boa.env.prank(admin):
        timelock.grantRole(CANCELLER_ROLE, admin)
        timelock.cancel(op_id)
    assert gov.state(pid2) == CANCELED


# ------------------------------------------------------------------ governance-only setters


SETTERS = [
    ("setVotingDelay", (60,), "votingDelay", 60, "VotingDelaySet"),
    ("setVotingPeriod", (600,), "votingPeriod", 600, "VotingPeriodSet"),
    ("setProposalThreshold", (5 * VPHA,), "proposalThreshold", 5 * VPHA, "ProposalThresholdSet"),
    ("updateQuorumNumerator", (10,), "quorumNumerator", 10, "QuorumNumeratorUpdated"),
]


@pytest.mark.parametrize(("setter", "args", "getter", "expected", "event"), SETTERS)
def test_setter_through_a_proposal(
    system: System, setter: str, args: tuple, getter: str, expected: int, event: str
) -> None:
    gov = system.governor
    calldata = getattr(gov, setter).prepare_calldata(*args)
    system.enact(system.self_proposal(calldata, f"{setter}{args}"))
    assert getattr(gov, getter)() == expected


@pytest.mark.parametrize(("setter", "args", "getter", "expected", "event"), SETTERS)
def test_setter_refused_for_any_other_caller(
    system: System, setter: str, args: tuple, getter: str, expected: int, event: str
) -> None:
    gov = system.governor
    before = getattr(gov, getter)()
    for caller in (system.voters["alice"], system.tl_admin, boa.env.generate_address("random")):
        with boa.env.prank(caller), boa.reverts("Governor: only governance"):
            getattr(gov, setter)(*args)
    # The timelock itself, but outside an executing proposal.
    with boa.env.prank(system.timelock.address), boa.reverts(NOT_IN_PROPOSAL):
        getattr(gov, setter)(*args)
    assert getattr(gov, getter)() == before


@pytest.mark.parametrize(("setter", "args", "getter", "expected", "event"), SETTERS)
def test_timelock_admin_cannot_bypass_governance(
    system: System, setter: str, args: tuple, getter: str, expected: int, event: str
) -> None:
    """An account holding timelock roles schedules the setter directly: refused when it runs."""
    gov, timelock, admin = system.governor, system.timelock, system.tl_admin
    before = getattr(gov, getter)()
    calldata = getattr(gov, setter).prepare_calldata(*args)
    with boa.env.prank(admin):
        timelock.grantRole(PROPOSER_ROLE, admin)
        timelock.schedule(gov.address, 0, calldata, b"\x00" * 32, b"\x00" * 32, MIN_DELAY)
    boa.env.time_travel(seconds=MIN_DELAY)
    with boa.env.prank(admin), boa.reverts(NOT_IN_PROPOSAL):
        timelock.execute(gov.address, 0, calldata, b"\x00" * 32, b"\x00" * 32)
    assert getattr(gov, getter)() == before


def test_setter_events(system: System) -> None:
    gov = system.governor
    calls = [getattr(gov, s).prepare_calldata(*a) for s, a, *_ in SETTERS]
    proposal = Proposal([gov.address] * 4, [0] * 4, calls, "all settings at once")
    system.pass_and_queue(proposal)
    boa.env.time_travel(seconds=MIN_DELAY)
    gov.execute(*proposal.args())
    logs = {type(log).__name__: tuple(log)[1:] for log in gov.get_logs()}
    assert logs["VotingDelaySet"] == (VOTING_DELAY, 60)
    assert logs["VotingPeriodSet"] == (VOTING_PERIOD, 600)
    assert logs["ProposalThresholdSet"] == (THRESHOLD, 5 * VPHA)
    assert logs["QuorumNumeratorUpdated"] == (QUORUM_NUMERATOR, 10)
    # New settings apply to new proposals.
    now = gov.clock()
    pid = system.propose(system.fee_proposal(description="after the change"))
    assert gov.proposalSnapshot(pid) == now + 60
    assert gov.proposalDeadline(pid) == now + 660


def test_governance_authorisation_ends_with_the_execution(system: System) -> None:
    """A proposal authorises the calls it contains while it executes, and nothing afterwards."""
    gov, timelock, admin = system.governor, system.timelock, system.tl_admin
    call = gov.setVotingDelay.prepare_calldata(61)
    proposal = system.self_proposal(call, "delay 61")
    pid = system.pass_and_queue(proposal)
    boa.env.time_travel(seconds=MIN_DELAY)
    gov.execute(*proposal.args())
    assert gov.votingDelay() == 61
    assert gov.state(pid) == EXECUTED
    # After execution nothing remains authorised.
    replay = gov.setVotingDelay.prepare_calldata(62)
    with boa.env.prank(admin):
        timelock.grantRole(PROPOSER_ROLE, admin)
        timelock.schedule(gov.address, 0, replay, NO_PREDECESSOR, NO_SALT, MIN_DELAY)
    boa.env.time_travel(seconds=MIN_DELAY)
    with boa.reverts(NOT_IN_PROPOSAL):
        timelock.execute(gov.address, 0, replay, NO_PREDECESSOR, NO_SALT)


def test_invalid_settings_through_governance_revert(system: System) -> None:
    gov = system.governor
    for calldata, reason in (
        (gov.setVotingPeriod.prepare_calldata(0), "Governor: voting period must be non-zero"),
        (
            gov.updateQuorumNumerator.prepare_calldata(101),
            "Governor: quorum numerator over denominator",
        ),
    ):
        proposal = system.self_proposal(calldata, reason)
        pid = system.pass_and_queue(proposal)
        boa.env.time_travel(seconds=MIN_DELAY)
        with boa.reverts(reason):
            gov.execute(*proposal.args())
        assert gov.state(pid) == QUEUED


def test_quorum_numerator_history(system: System) -> None:
    gov = system.governor
    t0 = gov.clock()
    early = system.fee_proposal(description="snapshot before the change")
    early_id = system.propose(early)
    system.enact(system.self_proposal(gov.updateQuorumNumerator.prepare_calldata(50), "quorum 50%"))
    t1 = gov.clock()
    system.enact(
        system.self_proposal(gov.updateQuorumNumerator.prepare_calldata(20), "quorum 20%"),
        supporters=("alice", "bob"),
    )
    t2 = gov.clock()
    assert gov.quorumNumerator() == 20
    assert gov.quorumNumerator(t0) == QUORUM_NUMERATOR
    assert gov.quorumNumerator(t1) == 50
    assert gov.quorumNumerator(t1 - 1) == QUORUM_NUMERATOR
    assert gov.quorumNumerator(t2) == 20
    assert gov.quorumNumerator(0) == 0  # before the Governor existed
    # The early proposal keeps the quorum of its snapshot (4%).
    assert gov.quorum(gov.proposalSnapshot(early_id)) == 1000 * VPHA * QUORUM_NUMERATOR // 100
    assert gov.quorum(t2 - 1) == 1000 * VPHA * 50 // 100
    boa.env.time_travel(seconds=1)
    assert gov.quorum(t2) == 1000 * VPHA * 20 // 100


def test_quorum_updates_in_one_second_keep_one_checkpoint(system: System) -> None:
    """Two updates executed in the same second leave one checkpoint (the later value),
    and a third, later one is found by the history search behind the latest."""
    gov = system.governor
    t0 = gov.clock()
    update = gov.updateQuorumNumerator.prepare_calldata
    twice = Proposal([gov.address] * 2, [0] * 2, [update(30), update(60)], "quorum 30 then 60")
    system.enact(twice)
    logs = [log for log in gov.get_logs() if type(log).__name__ == "QuorumNumeratorUpdated"]
    assert [(e.oldQuorumNumerator, e.newQuorumNumerator) for e in logs] == [(4, 30), (30, 60)]
    t1 = gov.clock()
    system.enact(system.self_proposal(update(10), "quorum 10"), supporters=("alice", "bob"))
    t2 = gov.clock()
    assert gov.quorumNumerator() == 10
    assert gov.quorumNumerator(t2) == 10
    assert gov.quorumNumerator(t2 - 1) == 60
    assert gov.quorumNumerator(t1) == 60
    assert gov.quorumNumerator(t1 - 1) == QUORUM_NUMERATOR
    assert gov.quorumNumerator(t0) == QUORUM_NUMERATOR


def test_update_timelock(system: System) -> None:
    gov = system.governor
    new_tl = compiled(TIMELOCK).deploy(MIN_DELAY, [gov.address], [ZERO], ZERO)
    system.enact(
        system.self_proposal(gov.updateTimelock.prepare_calldata(new_tl.address), "move timelock")
    )
    logs = [log for log in gov.get_logs() if type(log).__name__ == "TimelockChange"]
    assert (logs[0].oldTimelock, logs[0].newTimelock) == (system.timelock.address, new_tl.address)
    assert gov.timelock() == new_tl.address
    with boa.env.prank(system.timelock.address), boa.reverts("Governor: only governance"):
        gov.updateTimelock(system.timelock.address)
    # The new timelock now executes proposals; a target owned by it changes.
    target2 = compiled(TARGET_DOUBLE).deploy(new_tl.address)
    proposal = Proposal(
        [target2.address], [0], [target2.setFee.prepare_calldata(8)], "via the new timelock"
    )
    system.pass_and_queue(proposal)
    boa.env.time_travel(seconds=MIN_DELAY)
    gov.execute(*proposal.args())
    assert target2.fee() == 8


# ------------------------------------------------------------------ deposits


def test_governor_refuses_deposits(system: System) -> None:
    gov = system.governor
    boa.env.set_balance(boa.env.eoa, 10**18)
    with pytest.raises(Revert):
        boa.env.raw_call(gov.address, value=1)
    for call in (
        lambda: gov.onERC721Received(ZERO, ZERO, 1, b""),
        lambda: gov.onERC1155Received(ZERO, ZERO, 1, 1, b""),
        lambda: gov.onERC1155BatchReceived(ZERO, ZERO, [1], [1], b""),
    ):
        with boa.reverts("Governor: deposits go to the timelock"):
            call()


def test_votes_double_is_a_test_double() -> None:
    """Guard: the double says so in its own NatSpec, so it is never mistaken for vPHA."""
    assert "TEST ONLY" in VOTES_DOUBLE.read_text()
    assert keccak(text="EXECUTOR_ROLE") == EXECUTOR_ROLE


def test_description_suffix_restricts_the_proposer(system: System) -> None:
    gov, target = system.governor, system.target
    alice, bob = system.voters["alice"], system.voters["bob"]
    cd = [target.setFee.prepare_calldata(1)]
    for suffix in (alice.lower(), "0x" + alice[2:].upper()):
        description = f"Fee change #proposer={suffix}"
        with (
            boa.env.prank(bob),
            boa.reverts("Governor: description restricted to another proposer"),
        ):
            gov.propose([target.address], [0], cd, description)
        with boa.env.prank(alice):
            pid = gov.propose([target.address], [0], cd, description)
        assert gov.proposalProposer(pid) == alice
    # A suffix that is not "0x" + 40 hex digits restricts nobody, as in OpenZeppelin.
    for suffix in ("zz" + alice[4:] + "00", alice[:-1] + "g", "1x" + alice[2:]):
        with boa.env.prank(bob):
            gov.propose([target.address], [0], cd, f"Not a restriction #proposer={suffix}")


VPHA_MAX_SUPPLY = 2**160 - 1  # the vault refuses to mint more ("vPHA: supply overflow")


def test_tallies_hold_the_largest_supply_vpha_can_have(system: System) -> None:
    """Every side holds 2**160 - 1 vPHA wei, the most the vault can ever mint."""
    gov = system.governor
    sides = (FOR, AGAINST, ABSTAIN)
    whales = [boa.env.generate_address(f"whale{support}") for support in sides]
    for whale in whales:
        system.token.mint(whale, VPHA_MAX_SUPPLY)
        with boa.env.prank(whale):
            system.token.delegate(whale)
    boa.env.time_travel(seconds=1)
    proposal = system.fee_proposal()
    pid = system.propose(proposal)
    system.to_active()
    for whale, support in zip(whales, sides, strict=True):
        with boa.env.prank(whale):
            assert gov.castVote(pid, support) == VPHA_MAX_SUPPLY
    for_votes = VPHA_MAX_SUPPLY + 400 * VPHA
    assert system.vote(pid, "alice", FOR) == 400 * VPHA
    assert gov.proposalVotes(pid) == (VPHA_MAX_SUPPLY, for_votes, VPHA_MAX_SUPPLY)
    system.to_ended()
    assert gov.state(pid) == SUCCEEDED
    gov.queue(*proposal.args())
    assert gov.proposalEta(pid) == gov.clock() + MIN_DELAY
    assert gov.proposalVotes(pid) == (VPHA_MAX_SUPPLY, for_votes, VPHA_MAX_SUPPLY)


def test_for_tally_refuses_to_spill_into_the_eta(system: System) -> None:
    """For-votes share a slot with the eta; a token reporting more than 2**208 votes (which
    vPHA cannot) is refused rather than corrupting it."""
    gov, token = system.governor, system.token
    whales = [boa.env.generate_address(f"whale{i}") for i in range(2)]
    for whale, amount in zip(whales, (2**208 - 1, 1), strict=True):
        token.mint(whale, amount)
        with boa.env.prank(whale):
            token.delegate(whale)
    boa.env.time_travel(seconds=1)
    pid = system.propose(system.fee_proposal())
    system.to_active()
    with boa.env.prank(whales[0]):
        gov.castVote(pid, FOR)
    with boa.env.prank(whales[1]), boa.reverts("Governor: tally overflow"):
        gov.castVote(pid, FOR)
    with boa.env.prank(whales[1]):
        gov.castVote(pid, AGAINST)
    assert gov.proposalVotes(pid) == (1, 2**208 - 1, 0)
    assert gov.proposalEta(pid) == 0


def test_extended_ballot_typehash(system: System) -> None:
    assert system.governor.EXTENDED_BALLOT_TYPEHASH() == keccak(
        text="ExtendedBallot(uint256 proposalId,uint8 support,address voter,uint256 nonce,"
        "string reason,bytes params)"
    )


# ------------------------------------------------------------------ limits at propose


def test_seventeen_actions_are_refused_at_propose_naming_the_limit(system: System) -> None:
    gov, target = system.governor, system.target
    assert gov.MAX_ACTIONS() == 16 == system.timelock.MAX_BATCH()
    calldatas = [target.setFee.prepare_calldata(i) for i in range(17)]
    limit = "Governor: more than MAX_ACTIONS (16) actions"
    with boa.env.prank(system.voters["alice"]), boa.reverts(limit):
        gov.propose([target.address] * 17, [0] * 17, calldatas, "seventeen")


def test_a_1025_byte_calldata_is_refused_at_propose_naming_the_limit(system: System) -> None:
    gov, target = system.governor, system.target
    assert gov.MAX_CALLDATA() == 1_024
    fine = target.setFee.prepare_calldata(1)
    for position in (0, 2):
        calldatas = [fine, fine, fine]
        calldatas[position] = b"\x01" * 1_025
        limit = "Governor: calldata over MAX_CALLDATA (1,024 bytes)"
        with boa.env.prank(system.voters["alice"]), boa.reverts(limit):
            gov.propose([target.address] * 3, [0] * 3, calldatas, f"long call at {position}")


def test_a_proposal_at_both_limits_goes_all_the_way_through(system: System) -> None:
    """16 actions, one of them 1,024 bytes: accepted at propose, so queue and execute on
    the Timelock's own bounds must take it too."""
    target = system.target
    # setFee(uint256) with 988 bytes of trailing data, which the ABI decoder ignores.
    padded = target.setFee.prepare_calldata(7) + b"\x00" * (1_024 - 36)
    assert len(padded) == 1_024
    calldatas = [target.setFee.prepare_calldata(i) for i in range(15)] + [padded]
    proposal = Proposal([target.address] * 16, [0] * 16, calldatas, "both limits")
    pid = system.enact(proposal, supporters=("alice", "bob"))
    assert system.governor.state(pid) == EXECUTED
    assert target.fee() == 7


def test_far_over_the_limits_still_reverts_at_propose(system: System) -> None:
    """Beyond one action or byte over, Vyper's ABI decoder refuses the call (no reason):
    still at propose, never a proposal that fails later."""
    gov, target = system.governor, system.target
    with boa.env.prank(system.voters["alice"]):
        with boa.reverts():
            gov.propose([target.address] * 18, [0] * 18, [b""] * 18, "eighteen")
        with boa.reverts():
            gov.propose([target.address], [0], [b"\x01" * 1_026], "too long")
