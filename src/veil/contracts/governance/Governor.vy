# pragma version ~=0.4.3
# pragma nonreentrancy off
"""
@title veil Governor
@custom:contract-name Governor
@license GNU Affero General Public License v3.0 only
@notice On-chain governance over vPHA voting power with the ABI of
        OpenZeppelin 5.x `Governor` + `GovernorSettings` +
        `GovernorCountingSimple` + `GovernorVotes` +
        `GovernorVotesQuorumFraction` + `GovernorTimelockControl`, so
        that governance UIs and indexers built for OpenZeppelin work
        unchanged: same selectors, return types, events, proposal ids
        (`uint256(keccak256(abi.encode(targets, values, calldatas,
        descriptionHash)))`), EIP-712 ballots and timelock salts.

        Differences a caller can observe:
          - Reverts carry "Governor: ..." reason strings instead of
            OpenZeppelin's custom errors.
          - Bounds (Vyper needs them): at most 16 actions per proposal,
            1,024 bytes of calldata per action (the timelock's payload
            bound), 4,096 bytes of description, 1,024 bytes of vote
            reason, 256 bytes of vote params and 65-byte signatures.
            `propose` refuses a proposal over the action or calldata limit
            with a reason naming it ("Governor: more than MAX_ACTIONS ...",
            "Governor: calldata over MAX_CALLDATA ..."), as long as it stays
            within one action and one byte of them; anything larger, and
            inputs over the other bounds, fail ABI decoding and revert
            without a reason. `veil gov propose` checks every bound before
            sending. Nothing that `propose` accepts can fail on a bound
            later: the Timelock has the same two limits.
          - `relay` is not provided, and ETH, ERC-721 and ERC-1155 sent to
            the Governor are refused (they belong in the timelock, which
            is also what OpenZeppelin does when a timelock is the executor).
        The clock is the token's ERC-6372 timestamp clock; the
        constructor refuses a token whose clock is not `mode=timestamp`.
@dev Vote tallies hold any vote vPHA can produce. vPHA has 24 decimals and
     its vault refuses to mint more than 2**160 - 1 wei of shares in total
     (its checkpoint packing), so neither one delegate's weight nor the sum
     of the weights cast on one proposal can exceed 2**160 - 1, at any share
     price the vault can reach. For-votes are kept in 208 bits (beside the
     eta), against and abstain in 256 bits each. For scale: the whole 1 B
     PHA staked at the vault's opening price is 10**33 wei (about 2**110),
     and the real network's 65 M delegated PHA about 6.5 * 10**31.
"""


from ethereum.ercs import IERC165
implements: IERC165


from snekmate.utils import eip712_domain_separator as eip712
initializes: eip712


from snekmate.utils import signature_checker


exports: eip712.eip712Domain


interface IVotesToken:
    def getPastVotes(account: address, timepoint: uint256) -> uint256: view
    def getPastTotalSupply(timepoint: uint256) -> uint256: view
    def clock() -> uint48: view
    def CLOCK_MODE() -> String[64]: view


# The subset of snekmate's `timelock_controller` the Governor drives. The
# array bounds are ours (ABI encoding does not depend on them), which keeps
# the Governor's memory small; the timelock accepts up to 255 calls.
interface ITimelock:
    def get_minimum_delay() -> uint256: view
    def get_operation_state(id: bytes32) -> uint256: view
    def schedule_batch(
        targets: DynArray[address, MAX_ACTIONS],
        amounts: DynArray[uint256, MAX_ACTIONS],
        payloads: DynArray[Bytes[MAX_CALLDATA], MAX_ACTIONS],
        predecessor: bytes32,
        salt: bytes32,
        delay: uint256,
    ): nonpayable
    def execute_batch(
        targets: DynArray[address, MAX_ACTIONS],
        amounts: DynArray[uint256, MAX_ACTIONS],
        payloads: DynArray[Bytes[MAX_CALLDATA], MAX_ACTIONS],
        predecessor: bytes32,
        salt: bytes32,
    ): payable
    def cancel(id: bytes32): nonpayable


# Bounds of one proposal and one vote.
MAX_ACTIONS: public(constant(uint256)) = 16
MAX_CALLDATA: public(constant(uint256)) = 1_024
# What `propose` decodes: one more action and one more calldata byte than
# the limits, so that the first proposal over a limit reaches the checks
# that name it instead of failing in the ABI decoder without a reason.
# Vyper reserves memory for a bound, so each step wider costs every
# proposal gas (16 -> 17 and 1,024 -> 1,025: about 330; 32 and 2,048:
# about 15,000), and a proposal further over still fails in the decoder.
_PROPOSE_ACTIONS: constant(uint256) = MAX_ACTIONS + 1
_PROPOSE_CALLDATA: constant(uint256) = MAX_CALLDATA + 1
MAX_DESCRIPTION: public(constant(uint256)) = 4_096
MAX_REASON: public(constant(uint256)) = 1_024
MAX_PARAMS: constant(uint256) = 256


# OpenZeppelin's `IGovernor.ProposalState`, as the `uint8` it encodes to.
PENDING: constant(uint8) = 0
ACTIVE: constant(uint8) = 1
CANCELED: constant(uint8) = 2
DEFEATED: constant(uint8) = 3
SUCCEEDED: constant(uint8) = 4
QUEUED: constant(uint8) = 5
EXPIRED: constant(uint8) = 6
EXECUTED: constant(uint8) = 7


# GovernorCountingSimple's `VoteType`.
SUPPORT_AGAINST: constant(uint8) = 0
SUPPORT_FOR: constant(uint8) = 1
SUPPORT_ABSTAIN: constant(uint8) = 2


BALLOT_TYPEHASH: public(constant(bytes32)) = keccak256(
    "Ballot(uint256 proposalId,uint8 support,address voter,uint256 nonce)"
)
EXTENDED_BALLOT_TYPEHASH: public(constant(bytes32)) = keccak256(
    "ExtendedBallot(uint256 proposalId,uint8 support,address voter,uint256 nonce,string reason,bytes params)"
)


# ERC-165 ids: type(IGovernor).interfaceId of OpenZeppelin 5.7 (with
# `getProposalId`), the same without `getProposalId` (OpenZeppelin 5.0/5.1),
# IERC1155Receiver (which OpenZeppelin's Governor advertises) and IERC165.
_IGOVERNOR_ID: constant(bytes4) = 0xCDBDFCEE
_IGOVERNOR_ID_V50: constant(bytes4) = 0x65455A86
_SUPPORTED_INTERFACES: constant(bytes4[4]) = [
    _IGOVERNOR_ID,
    _IGOVERNOR_ID_V50,
    0x4E2312E0,
    0x01FFC9A7,
]


QUORUM_DENOMINATOR: constant(uint256) = 100


# Packing of `_core[proposalId]`, OpenZeppelin's `ProposalCore` first slot:
# proposer (bits 0..159) | voteStart uint48 (160..207) |
# voteDuration uint32 (208..239) | executed (240) | canceled (241).
_START_SHIFT: constant(uint256) = 160
_DURATION_SHIFT: constant(uint256) = 208
_EXECUTED_BIT: constant(uint256) = 1 << 240
_CANCELED_BIT: constant(uint256) = 1 << 241
_MASK48: constant(uint256) = (1 << 48) - 1
_MASK32: constant(uint256) = (1 << 32) - 1
_MASK208: constant(uint256) = (1 << 208) - 1
_MASK160: constant(uint256) = (1 << 160) - 1

# Packing of `_tally[proposalId]`: forVotes (bits 0..207) | eta (208..255).
# A proposal that can be queued has forVotes > 0, so writing its eta updates
# an existing slot instead of creating one. Against and abstain votes have a
# full slot each (`_against`, `_abstain`).
#
# Why these widths hold every vote: a weight is the token's getPastVotes,
# and the votes of all delegates together never exceed its past total
# supply. vPHA refuses to mint beyond 2**160 - 1 wei of shares (the Vault's
# checkpoint packing, "vPHA: supply overflow"), so no weight and no tally
# of one proposal can exceed 2**160 - 1, whatever the share price: 208 bits
# for the for-votes and 256 for the others leave room to spare. For scale:
# 1 B PHA staked at the vault's opening price (1 PHA = 1 vPHA, 24 decimals)
# is 10**33 wei (about 2**110); the old 104-bit fields held only about
# 20.3 M vPHA, less than one large delegate of the real network.
_ETA_SHIFT: constant(uint256) = 208

# snekmate `OperationState` flag values.
_OP_WAITING: constant(uint256) = 2
_OP_READY: constant(uint256) = 4
_OP_DONE: constant(uint256) = 8

# Quorum numerator checkpoints: timepoint (bits 0..47) | numerator (48..127).
# `_quorum_head` repeats the latest checkpoint next to the count
# (bits 128..255), so the usual lookup (a recent proposal) reads one slot.
_QN_SHIFT: constant(uint256) = 48
_QN_COUNT_SHIFT: constant(uint256) = 128
_MASK128: constant(uint256) = (1 << 128) - 1


event ProposalCreated:
    proposalId: uint256
    proposer: address
    targets: DynArray[address, _PROPOSE_ACTIONS]
    values: DynArray[uint256, _PROPOSE_ACTIONS]
    signatures: DynArray[String[1], _PROPOSE_ACTIONS]
    calldatas: DynArray[Bytes[_PROPOSE_CALLDATA], _PROPOSE_ACTIONS]
    voteStart: uint256
    voteEnd: uint256
    description: String[MAX_DESCRIPTION]


event ProposalQueued:
    proposalId: uint256
    etaSeconds: uint256


event ProposalExecuted:
    proposalId: uint256


event ProposalCanceled:
    proposalId: uint256


event VoteCast:
    voter: indexed(address)
    proposalId: uint256
    support: uint8
    weight: uint256
    reason: String[MAX_REASON]


event VoteCastWithParams:
    voter: indexed(address)
    proposalId: uint256
    support: uint8
    weight: uint256
    reason: String[MAX_REASON]
    params: Bytes[MAX_PARAMS]


event VotingDelaySet:
    oldVotingDelay: uint256
    newVotingDelay: uint256


event VotingPeriodSet:
    oldVotingPeriod: uint256
    newVotingPeriod: uint256


event ProposalThresholdSet:
    oldProposalThreshold: uint256
    newProposalThreshold: uint256


event QuorumNumeratorUpdated:
    oldQuorumNumerator: uint256
    newQuorumNumerator: uint256


event TimelockChange:
    oldTimelock: address
    newTimelock: address


_TOKEN: immutable(address)

_timelock: address

# votingDelay (bits 0..47) | votingPeriod (48..79): one slot read per proposal.
_timing: uint256
_proposal_threshold: uint256

_core: HashMap[uint256, uint256]
_tally: HashMap[uint256, uint256]
_against: HashMap[uint256, uint256]
_abstain: HashMap[uint256, uint256]
_has_voted: HashMap[uint256, HashMap[address, bool]]
_timelock_ids: HashMap[uint256, bytes32]

_quorum_checkpoints: HashMap[uint256, uint256]
_quorum_head: uint256

nonces: public(HashMap[address, uint256])

# Hashes of the calls to this Governor that the proposal being executed
# contains (OpenZeppelin's `_governanceCall` queue). Only those calls pass
# `_check_governance`, so the timelock's other admins cannot reconfigure the
# Governor outside a proposal.
_governance_calls: transient(DynArray[bytes32, MAX_ACTIONS])


@deploy
def __init__(
    token: address,
    timelock: address,
    voting_delay: uint48,
    voting_period: uint32,
    proposal_threshold: uint256,
    quorum_numerator: uint256,
):
    """
    @dev Wires the Governor to its votes token and timelock and sets the
         initial settings, emitting the same setting events as
         OpenZeppelin's constructors.
    @param token ERC-5805 votes token with a timestamp ERC-6372 clock (vPHA).
    @param timelock snekmate timelock that executes proposals; the Governor
           must hold its PROPOSER_ROLE and CANCELLER_ROLE.
    @param voting_delay Seconds between proposing and the vote snapshot.
    @param voting_period Seconds the vote stays open (non-zero).
    @param proposal_threshold Votes needed (one second before proposing)
           to propose.
    @param quorum_numerator Percent of the snapshot total supply that
           for + abstain votes must reach (0..100).
    """
    eip712.__init__("veil Governor", "1")
    assert staticcall IVotesToken(token).CLOCK_MODE() == "mode=timestamp", "Governor: token clock must be mode=timestamp"
    _TOKEN = token
    self._update_timelock(timelock)
    self._set_voting_delay(voting_delay)
    self._set_voting_period(voting_period)
    self._set_proposal_threshold(proposal_threshold)
    self._update_quorum_numerator(quorum_numerator)


# ---------------------------------------------------------------- metadata


@external
@pure
def name() -> String[50]:
    """
    @notice The Governor's name, also its EIP-712 domain name.
    @return String The name "veil Governor".
    """
    return "veil Governor"


@external
@pure
def version() -> String[20]:
    """
    @notice The Governor's version, also its EIP-712 domain version.
    @return String The version "1".
    """
    return "1"


@external
@pure
def COUNTING_MODE() -> String[64]:
    """
    @notice Describes the vote counting for UIs (GovernorCountingSimple).
    @return String "support=bravo&quorum=for,abstain".
    """
    return "support=bravo&quorum=for,abstain"


@external
@view
def supportsInterface(interface_id: bytes4) -> bool:
    """
    @notice ERC-165: IGovernor (OpenZeppelin 5.x ids), IERC1155Receiver
            (advertised as OpenZeppelin does) and IERC165.
    @param interface_id The 4-byte interface identifier.
    @return bool Whether the interface is supported.
    """
    return interface_id in _SUPPORTED_INTERFACES


@external
@view
def token() -> address:
    """
    @notice The ERC-5805 token whose past votes count (vPHA).
    @return address The token.
    """
    return _TOKEN


@external
@view
def timelock() -> address:
    """
    @notice The timelock that executes proposals and owns the parameters.
    @return address The timelock.
    """
    return self._timelock


@external
@view
def clock() -> uint48:
    """
    @notice ERC-6372 clock, delegated to the token (a timestamp).
    @return uint48 The token's current timepoint.
    """
    return staticcall IVotesToken(_TOKEN).clock()


@external
@view
def CLOCK_MODE() -> String[64]:
    """
    @notice ERC-6372 clock mode, delegated to the token.
    @return String "mode=timestamp".
    """
    return staticcall IVotesToken(_TOKEN).CLOCK_MODE()


# ---------------------------------------------------------------- settings


@external
@view
def votingDelay() -> uint256:
    """
    @notice Seconds between a proposal's creation and its vote snapshot.
    @return uint256 The voting delay.
    """
    return self._timing & _MASK48


@external
@view
def votingPeriod() -> uint256:
    """
    @notice Seconds a vote stays open after the snapshot.
    @return uint256 The voting period.
    """
    return (self._timing >> 48) & _MASK32


@external
@view
def proposalThreshold() -> uint256:
    """
    @notice Votes an account needs (one second before proposing) to propose.
    @return uint256 The proposal threshold.
    """
    return self._proposal_threshold


@external
@view
def quorumDenominator() -> uint256:
    """
    @notice Denominator of the quorum fraction.
    @return uint256 100.
    """
    return QUORUM_DENOMINATOR


@external
@view
def quorumNumerator(timepoint: uint256 = max_value(uint256)) -> uint256:
    """
    @notice Quorum numerator in force at `timepoint` (the current one
            when called without argument), as in
            GovernorVotesQuorumFraction.
    @param timepoint The timepoint to look up.
    @return uint256 The numerator (percent of the total supply).
    """
    return self._quorum_numerator_at(timepoint)


@external
@view
def quorum(timepoint: uint256) -> uint256:
    """
    @notice Votes (for + abstain) needed at `timepoint`:
            getPastTotalSupply(timepoint) * quorumNumerator(timepoint) / 100.
    @param timepoint A past timepoint (the token requires it to be past).
    @return uint256 The quorum.
    """
    return self._quorum(timepoint)


@external
@view
def getVotes(account: address, timepoint: uint256) -> uint256:
    """
    @notice Voting power of `account` at `timepoint` (token's getPastVotes).
    @param account The account.
    @param timepoint A past timepoint.
    @return uint256 The votes.
    """
    return staticcall IVotesToken(_TOKEN).getPastVotes(account, timepoint)


@external
@view
def getVotesWithParams(account: address, timepoint: uint256, params: Bytes[MAX_PARAMS]) -> uint256:
    """
    @notice Same as `getVotes`; params are ignored, as in GovernorVotes.
    @param account The account.
    @param timepoint A past timepoint.
    @param params Ignored.
    @return uint256 The votes.
    """
    return staticcall IVotesToken(_TOKEN).getPastVotes(account, timepoint)


@external
def setVotingDelay(new_voting_delay: uint48):
    """
    @notice Sets the voting delay. Only through governance: the timelock
            executing a proposal that contains this call.
    @param new_voting_delay New delay in seconds.
    """
    self._check_governance(keccak256(concat(method_id("setVotingDelay(uint48)"), abi_encode(new_voting_delay))))
    self._set_voting_delay(new_voting_delay)


@external
def setVotingPeriod(new_voting_period: uint32):
    """
    @notice Sets the voting period (non-zero). Only through governance.
    @param new_voting_period New period in seconds.
    """
    self._check_governance(keccak256(concat(method_id("setVotingPeriod(uint32)"), abi_encode(new_voting_period))))
    self._set_voting_period(new_voting_period)


@external
def setProposalThreshold(new_proposal_threshold: uint256):
    """
    @notice Sets the proposal threshold. Only through governance.
    @param new_proposal_threshold New threshold in votes (wei of vPHA).
    """
    self._check_governance(
        keccak256(concat(method_id("setProposalThreshold(uint256)"), abi_encode(new_proposal_threshold)))
    )
    self._set_proposal_threshold(new_proposal_threshold)


@external
def updateQuorumNumerator(new_quorum_numerator: uint256):
    """
    @notice Sets the quorum numerator (0..100) from now on; proposals
            whose snapshot is earlier keep the old one. Only through
            governance.
    @param new_quorum_numerator New numerator in percent.
    """
    self._check_governance(
        keccak256(concat(method_id("updateQuorumNumerator(uint256)"), abi_encode(new_quorum_numerator)))
    )
    self._update_quorum_numerator(new_quorum_numerator)


@external
def updateTimelock(new_timelock: address):
    """
    @notice Moves execution to another timelock. Only through governance.
            Proposals queued on the old timelock can no longer be executed
            through the Governor.
    @param new_timelock The new timelock.
    """
    self._check_governance(keccak256(concat(method_id("updateTimelock(address)"), abi_encode(new_timelock))))
    self._update_timelock(new_timelock)


# ---------------------------------------------------------------- proposals


@external
@pure
def hashProposal(
    targets: DynArray[address, MAX_ACTIONS],
    values: DynArray[uint256, MAX_ACTIONS],
    calldatas: DynArray[Bytes[MAX_CALLDATA], MAX_ACTIONS],
    descriptionHash: bytes32,
) -> uint256:
    """
    @notice Proposal id: uint256(keccak256(abi.encode(targets, values,
            calldatas, descriptionHash))), as OpenZeppelin.
    @param targets Call targets.
    @param values Wei sent with each call.
    @param calldatas Calldata of each call.
    @param descriptionHash keccak256 of the description's UTF-8 bytes.
    @return uint256 The proposal id.
    """
    return convert(keccak256(abi_encode(targets, values, calldatas, descriptionHash)), uint256)


@external
@pure
def getProposalId(
    targets: DynArray[address, MAX_ACTIONS],
    values: DynArray[uint256, MAX_ACTIONS],
    calldatas: DynArray[Bytes[MAX_CALLDATA], MAX_ACTIONS],
    descriptionHash: bytes32,
) -> uint256:
    """
    @notice Same as `hashProposal` (OpenZeppelin 5.2+ name).
    @param targets Call targets.
    @param values Wei sent with each call.
    @param calldatas Calldata of each call.
    @param descriptionHash keccak256 of the description.
    @return uint256 The proposal id.
    """
    return convert(keccak256(abi_encode(targets, values, calldatas, descriptionHash)), uint256)


@external
@view
def state(proposalId: uint256) -> uint8:
    """
    @notice OpenZeppelin ProposalState: 0 Pending, 1 Active, 2 Canceled,
            3 Defeated, 4 Succeeded, 5 Queued, 6 Expired (never used),
            7 Executed. Reverts for an unknown proposal.
    @param proposalId The proposal.
    @return uint8 The state.
    """
    return self._state(proposalId)


@external
@view
def proposalSnapshot(proposalId: uint256) -> uint256:
    """
    @notice Timepoint whose past votes count; voting opens after it.
    @param proposalId The proposal.
    @return uint256 The snapshot (0 for an unknown proposal).
    """
    return (self._core[proposalId] >> _START_SHIFT) & _MASK48


@external
@view
def proposalDeadline(proposalId: uint256) -> uint256:
    """
    @notice Last timepoint at which votes are accepted.
    @param proposalId The proposal.
    @return uint256 The deadline (0 for an unknown proposal).
    """
    core: uint256 = self._core[proposalId]
    return ((core >> _START_SHIFT) & _MASK48) + ((core >> _DURATION_SHIFT) & _MASK32)


@external
@view
def proposalProposer(proposalId: uint256) -> address:
    """
    @notice Account that created the proposal.
    @param proposalId The proposal.
    @return address The proposer (zero for an unknown proposal).
    """
    return convert(self._core[proposalId] & _MASK160, address)


@external
@view
def proposalEta(proposalId: uint256) -> uint256:
    """
    @notice Timestamp from which a queued proposal can be executed.
    @param proposalId The proposal.
    @return uint256 The eta, 0 if never queued.
    """
    return self._tally[proposalId] >> _ETA_SHIFT


@external
@pure
def proposalNeedsQueuing(proposalId: uint256) -> bool:
    """
    @notice Every proposal goes through the timelock.
    @param proposalId The proposal.
    @return bool True.
    """
    return True


@external
@view
def proposalVotes(proposalId: uint256) -> (uint256, uint256, uint256):
    """
    @notice Vote totals, as GovernorCountingSimple. Each is exact up to
            vPHA's whole possible supply (2**160 - 1 wei, see the
            contract's @dev).
    @param proposalId The proposal.
    @return uint256 againstVotes.
    @return uint256 forVotes.
    @return uint256 abstainVotes.
    """
    return self._against[proposalId], self._tally[proposalId] & _MASK208, self._abstain[proposalId]


@external
@view
def hasVoted(proposalId: uint256, account: address) -> bool:
    """
    @notice Whether `account` has voted on the proposal.
    @param proposalId The proposal.
    @param account The account.
    @return bool Whether it voted.
    """
    return self._has_voted[proposalId][account]


@external
def propose(
    targets: DynArray[address, _PROPOSE_ACTIONS],
    values: DynArray[uint256, _PROPOSE_ACTIONS],
    calldatas: DynArray[Bytes[_PROPOSE_CALLDATA], _PROPOSE_ACTIONS],
    description: String[MAX_DESCRIPTION],
) -> uint256:
    """
    @notice Creates a proposal. The caller needs `proposalThreshold()`
            votes one second before now. Voting opens `votingDelay()`
            seconds later and lasts `votingPeriod()` seconds.
            A proposal over `MAX_ACTIONS` actions or `MAX_CALLDATA` bytes of
            calldata in an action is refused here, with a reason naming the
            limit, so that nothing proposed can fail later on the Governor's
            or the Timelock's bounds at queue or execute.
    @param targets Call targets (1..16).
    @param values Wei sent with each call.
    @param calldatas Calldata of each call (up to 1,024 bytes each).
    @param description Free text (up to 4,096 bytes); its keccak256 is
           the `descriptionHash` of queue/execute/cancel. A description
           ending in "#proposer=0x<address>" can only be proposed by
           that address (OpenZeppelin's front-running protection).
    @return uint256 The proposal id.
    """
    # OpenZeppelin's front-running protection: a description that ends in
    # "#proposer=0x" + 40 hex digits can only be proposed by that address.
    length: uint256 = len(description)
    if length >= 52 and slice(description, length - 52, 10) == "#proposer=":
        assert self._suffix_allows(
            msg.sender, convert(slice(description, length - 42, 42), Bytes[42])
        ), "Governor: description restricted to another proposer"
    n: uint256 = len(targets)
    assert n != 0, "Governor: empty proposal"
    assert n == len(values) and n == len(calldatas), "Governor: invalid proposal length"
    assert n <= MAX_ACTIONS, "Governor: more than MAX_ACTIONS (16) actions"
    threshold: uint256 = self._proposal_threshold
    if threshold != 0:
        votes: uint256 = staticcall IVotesToken(_TOKEN).getPastVotes(msg.sender, block.timestamp - 1)
        assert votes >= threshold, "Governor: proposer votes below threshold"

    proposal_id: uint256 = convert(keccak256(abi_encode(targets, values, calldatas, keccak256(description))), uint256)
    assert self._core[proposal_id] == 0, "Governor: proposal already exists"

    timing: uint256 = self._timing
    snapshot: uint256 = block.timestamp + (timing & _MASK48)
    duration: uint256 = (timing >> 48) & _MASK32
    assert snapshot <= _MASK48, "Governor: snapshot overflows uint48"
    self._core[proposal_id] = (
        convert(msg.sender, uint256) | (snapshot << _START_SHIFT) | (duration << _DURATION_SHIFT)
    )

    signatures: DynArray[String[1], _PROPOSE_ACTIONS] = []
    for i: uint256 in range(n, bound=MAX_ACTIONS):
        assert len(calldatas[i]) <= MAX_CALLDATA, "Governor: calldata over MAX_CALLDATA (1,024 bytes)"
        signatures.append("")
    log ProposalCreated(
        proposalId=proposal_id,
        proposer=msg.sender,
        targets=targets,
        values=values,
        signatures=signatures,
        calldatas=calldatas,
        voteStart=snapshot,
        voteEnd=snapshot + duration,
        description=description,
    )
    return proposal_id


@external
def queue(
    targets: DynArray[address, MAX_ACTIONS],
    values: DynArray[uint256, MAX_ACTIONS],
    calldatas: DynArray[Bytes[MAX_CALLDATA], MAX_ACTIONS],
    descriptionHash: bytes32,
) -> uint256:
    """
    @notice Schedules a succeeded proposal on the timelock with the
            timelock's minimum delay and salt
            bytes20(governor) ^ descriptionHash. Anyone may call.
    @param targets Call targets, as proposed.
    @param values Wei per call, as proposed.
    @param calldatas Calldata per call, as proposed.
    @param descriptionHash keccak256 of the description.
    @return uint256 The proposal id.
    """
    proposal_id: uint256 = convert(keccak256(abi_encode(targets, values, calldatas, descriptionHash)), uint256)
    assert self._state(proposal_id) == SUCCEEDED, "Governor: proposal not successful"

    timelock: address = self._timelock
    delay: uint256 = staticcall ITimelock(timelock).get_minimum_delay()
    salt: bytes32 = self._timelock_salt(descriptionHash)
    self._timelock_ids[proposal_id] = keccak256(abi_encode(targets, values, calldatas, empty(bytes32), salt))
    extcall ITimelock(timelock).schedule_batch(targets, values, calldatas, empty(bytes32), salt, delay)

    eta: uint256 = block.timestamp + delay
    assert eta <= _MASK48, "Governor: eta overflows uint48"
    self._tally[proposal_id] = self._tally[proposal_id] | (eta << _ETA_SHIFT)
    log ProposalQueued(proposalId=proposal_id, etaSeconds=eta)
    return proposal_id


@external
@payable
def execute(
    targets: DynArray[address, MAX_ACTIONS],
    values: DynArray[uint256, MAX_ACTIONS],
    calldatas: DynArray[Bytes[MAX_CALLDATA], MAX_ACTIONS],
    descriptionHash: bytes32,
) -> uint256:
    """
    @notice Executes a queued proposal whose eta has passed, through the
            timelock's execute_batch (msg.value is forwarded). Anyone may
            call.
    @param targets Call targets, as proposed.
    @param values Wei per call, as proposed.
    @param calldatas Calldata per call, as proposed.
    @param descriptionHash keccak256 of the description.
    @return uint256 The proposal id.
    """
    proposal_id: uint256 = convert(keccak256(abi_encode(targets, values, calldatas, descriptionHash)), uint256)
    assert self._state(proposal_id) == QUEUED, "Governor: proposal not queued"
    self._core[proposal_id] = self._core[proposal_id] | _EXECUTED_BIT

    calls: DynArray[bytes32, MAX_ACTIONS] = []
    for i: uint256 in range(len(targets), bound=MAX_ACTIONS):
        if targets[i] == self:
            calls.append(keccak256(calldatas[i]))
    if len(calls) != 0:
        self._governance_calls = calls

    extcall ITimelock(self._timelock).execute_batch(
        targets, values, calldatas, empty(bytes32), self._timelock_salt(descriptionHash), value=msg.value
    )

    if len(calls) != 0:
        self._governance_calls = []
    self._timelock_ids[proposal_id] = empty(bytes32)
    log ProposalExecuted(proposalId=proposal_id)
    return proposal_id


@external
def cancel(
    targets: DynArray[address, MAX_ACTIONS],
    values: DynArray[uint256, MAX_ACTIONS],
    calldatas: DynArray[Bytes[MAX_CALLDATA], MAX_ACTIONS],
    descriptionHash: bytes32,
) -> uint256:
    """
    @notice Cancels a proposal. The proposer may cancel while it is
            Pending (OpenZeppelin 5); governance (the timelock executing
            a proposal that contains this call) may cancel it in any
            state but Canceled and Executed, which also cancels its
            timelock operation.
    @param targets Call targets, as proposed.
    @param values Wei per call, as proposed.
    @param calldatas Calldata per call, as proposed.
    @param descriptionHash keccak256 of the description.
    @return uint256 The proposal id.
    """
    proposal_id: uint256 = convert(keccak256(abi_encode(targets, values, calldatas, descriptionHash)), uint256)
    current: uint8 = self._state(proposal_id)
    if msg.sender == self._timelock:
        self._check_governance(
            keccak256(
                concat(
                    method_id("cancel(address[],uint256[],bytes[],bytes32)"),
                    abi_encode(targets, values, calldatas, descriptionHash),
                )
            )
        )
        assert current != CANCELED and current != EXECUTED, "Governor: proposal already final"
    else:
        assert current == PENDING, "Governor: only a pending proposal can be canceled"
        assert msg.sender == convert(self._core[proposal_id] & _MASK160, address), "Governor: only the proposer can cancel"

    self._core[proposal_id] = self._core[proposal_id] | _CANCELED_BIT
    timelock_id: bytes32 = self._timelock_ids[proposal_id]
    if timelock_id != empty(bytes32):
        self._timelock_ids[proposal_id] = empty(bytes32)
        if staticcall ITimelock(self._timelock).get_operation_state(timelock_id) & (_OP_WAITING | _OP_READY) != 0:
            extcall ITimelock(self._timelock).cancel(timelock_id)
    log ProposalCanceled(proposalId=proposal_id)
    return proposal_id


# ---------------------------------------------------------------- voting


@external
def castVote(proposalId: uint256, support: uint8) -> uint256:
    """
    @notice Votes with the caller's votes at the proposal snapshot.
    @param proposalId An Active proposal.
    @param support 0 against, 1 for, 2 abstain.
    @return uint256 The weight counted.
    """
    return self._cast_vote(proposalId, msg.sender, support, "", b"")


@external
def castVoteWithReason(proposalId: uint256, support: uint8, reason: String[MAX_REASON]) -> uint256:
    """
    @notice Votes and publishes a reason (up to 1,024 bytes) in VoteCast.
    @param proposalId An Active proposal.
    @param support 0 against, 1 for, 2 abstain.
    @param reason Free text.
    @return uint256 The weight counted.
    """
    return self._cast_vote(proposalId, msg.sender, support, reason, b"")


@external
def castVoteWithReasonAndParams(
    proposalId: uint256, support: uint8, reason: String[MAX_REASON], params: Bytes[MAX_PARAMS]
) -> uint256:
    """
    @notice Votes with a reason and params; simple counting ignores the
            params but publishes them in VoteCastWithParams.
    @param proposalId An Active proposal.
    @param support 0 against, 1 for, 2 abstain.
    @param reason Free text.
    @param params Opaque bytes (up to 256).
    @return uint256 The weight counted.
    """
    return self._cast_vote(proposalId, msg.sender, support, reason, params)


@external
def castVoteBySig(proposalId: uint256, support: uint8, voter: address, signature: Bytes[65]) -> uint256:
    """
    @notice Votes for `voter` with its EIP-712 signature of
            Ballot(uint256 proposalId,uint8 support,address voter,uint256 nonce)
            under this Governor's domain; uses up `nonces(voter)`.
            ERC-1271 wallets are supported.
    @param proposalId An Active proposal.
    @param support 0 against, 1 for, 2 abstain.
    @param voter The account whose votes are cast.
    @param signature 65-byte (or 64-byte EIP-2098) signature.
    @return uint256 The weight counted.
    """
    nonce: uint256 = self.nonces[voter]
    self.nonces[voter] = nonce + 1
    struct_hash: bytes32 = keccak256(abi_encode(BALLOT_TYPEHASH, proposalId, support, voter, nonce))
    assert signature_checker._is_valid_signature_now(
        voter, eip712._hash_typed_data_v4(struct_hash), signature
    ), "Governor: invalid signature"
    return self._cast_vote(proposalId, voter, support, "", b"")


@external
def castVoteWithReasonAndParamsBySig(
    proposalId: uint256,
    support: uint8,
    voter: address,
    reason: String[MAX_REASON],
    params: Bytes[MAX_PARAMS],
    signature: Bytes[65],
) -> uint256:
    """
    @notice Votes for `voter` with its EIP-712 signature of
            ExtendedBallot(uint256 proposalId,uint8 support,address voter,
            uint256 nonce,string reason,bytes params); uses up its nonce.
    @param proposalId An Active proposal.
    @param support 0 against, 1 for, 2 abstain.
    @param voter The account whose votes are cast.
    @param reason Free text.
    @param params Opaque bytes.
    @param signature 65-byte (or 64-byte EIP-2098) signature.
    @return uint256 The weight counted.
    """
    nonce: uint256 = self.nonces[voter]
    self.nonces[voter] = nonce + 1
    struct_hash: bytes32 = keccak256(
        abi_encode(
            EXTENDED_BALLOT_TYPEHASH, proposalId, support, voter, nonce, keccak256(reason), keccak256(params)
        )
    )
    assert signature_checker._is_valid_signature_now(
        voter, eip712._hash_typed_data_v4(struct_hash), signature
    ), "Governor: invalid signature"
    return self._cast_vote(proposalId, voter, support, reason, params)


# ---------------------------------------------------------------- deposits


@external
def onERC721Received(operator: address, owner: address, token_id: uint256, data: Bytes[1_024]) -> bytes4:
    """
    @notice Refuses ERC-721 deposits: assets belong in the timelock.
    @param operator Ignored.
    @param owner Ignored.
    @param token_id Ignored.
    @param data Ignored.
    @return bytes4 Never returns.
    """
    raise "Governor: deposits go to the timelock"


@external
def onERC1155Received(operator: address, owner: address, id: uint256, amount: uint256, data: Bytes[1_024]) -> bytes4:
    """
    @notice Refuses ERC-1155 deposits: assets belong in the timelock.
    @param operator Ignored.
    @param owner Ignored.
    @param id Ignored.
    @param amount Ignored.
    @param data Ignored.
    @return bytes4 Never returns.
    """
    raise "Governor: deposits go to the timelock"


@external
def onERC1155BatchReceived(
    operator: address,
    owner: address,
    ids: DynArray[uint256, 128],
    amounts: DynArray[uint256, 128],
    data: Bytes[1_024],
) -> bytes4:
    """
    @notice Refuses ERC-1155 deposits: assets belong in the timelock.
    @param operator Ignored.
    @param owner Ignored.
    @param ids Ignored.
    @param amounts Ignored.
    @param data Ignored.
    @return bytes4 Never returns.
    """
    raise "Governor: deposits go to the timelock"


# ---------------------------------------------------------------- internals


@internal
@pure
def _suffix_allows(proposer: address, tail: Bytes[42]) -> bool:
    # `tail` follows "#proposer="; like OpenZeppelin's tryParseAddress, it
    # must be "0x" + 40 hex digits, else it restricts nobody.
    if slice(tail, 0, 2) != b"0x":
        return True
    parsed: uint256 = 0
    for i: uint256 in range(2, 42):
        c: uint256 = convert(slice(tail, i, 1), uint256)
        digit: uint256 = 0
        if c >= 48 and c <= 57:
            digit = c - 48
        elif c >= 97 and c <= 102:
            digit = c - 87
        elif c >= 65 and c <= 70:
            digit = c - 55
        else:
            return True
        parsed = parsed * 16 + digit
    return parsed == convert(proposer, uint256)


@internal
@view
def _timelock_salt(description_hash: bytes32) -> bytes32:
    # bytes20(address(this)) ^ descriptionHash: the address fills the high 20 bytes.
    return convert(convert(description_hash, uint256) ^ (convert(self, uint256) << 96), bytes32)


@internal
@view
def _state(proposal_id: uint256) -> uint8:
    core: uint256 = self._core[proposal_id]
    if core & _EXECUTED_BIT != 0:
        return EXECUTED
    if core & _CANCELED_BIT != 0:
        return CANCELED
    snapshot: uint256 = (core >> _START_SHIFT) & _MASK48
    assert snapshot != 0, "Governor: unknown proposal id"
    if snapshot >= block.timestamp:
        return PENDING
    if snapshot + ((core >> _DURATION_SHIFT) & _MASK32) >= block.timestamp:
        return ACTIVE

    tally: uint256 = self._tally[proposal_id]
    if tally >> _ETA_SHIFT != 0:
        # Queued: the timelock says whether it is still pending, was executed
        # directly on the timelock, or was cancelled there.
        op: uint256 = staticcall ITimelock(self._timelock).get_operation_state(
            self._timelock_ids[proposal_id]
        )
        if op & (_OP_WAITING | _OP_READY) != 0:
            return QUEUED
        if op == _OP_DONE:
            return EXECUTED
        return CANCELED

    for_votes: uint256 = tally & _MASK208
    if for_votes <= self._against[proposal_id]:
        return DEFEATED
    if for_votes + self._abstain[proposal_id] < self._quorum(snapshot):
        return DEFEATED
    return SUCCEEDED


@internal
def _cast_vote(
    proposal_id: uint256, account: address, support: uint8, reason: String[MAX_REASON], params: Bytes[MAX_PARAMS]
) -> uint256:
    core: uint256 = self._core[proposal_id]
    snapshot: uint256 = (core >> _START_SHIFT) & _MASK48
    # Inline Active check: not executed/canceled, snapshot < now <= deadline.
    assert (
        core & (_EXECUTED_BIT | _CANCELED_BIT) == 0
        and snapshot != 0
        and snapshot < block.timestamp
        and snapshot + ((core >> _DURATION_SHIFT) & _MASK32) >= block.timestamp
    ), "Governor: vote not currently active"
    assert not self._has_voted[proposal_id][account], "Governor: vote already cast"
    self._has_voted[proposal_id][account] = True

    weight: uint256 = staticcall IVotesToken(_TOKEN).getPastVotes(account, snapshot)
    if support == SUPPORT_FOR:
        tally: uint256 = self._tally[proposal_id]
        # Unreachable with vPHA (see _ETA_SHIFT); guards the eta bits against
        # a token that reports more votes than 2**208.
        assert (tally & _MASK208) + weight <= _MASK208, "Governor: tally overflow"
        self._tally[proposal_id] = tally + weight
    elif support == SUPPORT_AGAINST:
        self._against[proposal_id] += weight
    elif support == SUPPORT_ABSTAIN:
        self._abstain[proposal_id] += weight
    else:
        raise "Governor: invalid vote type"

    if len(params) == 0:
        log VoteCast(voter=account, proposalId=proposal_id, support=support, weight=weight, reason=reason)
    else:
        log VoteCastWithParams(
            voter=account, proposalId=proposal_id, support=support, weight=weight, reason=reason, params=params
        )
    return weight


@internal
def _check_governance(call_hash: bytes32):
    assert msg.sender == self._timelock, "Governor: only governance"
    calls: DynArray[bytes32, MAX_ACTIONS] = self._governance_calls
    for i: uint256 in range(len(calls), bound=MAX_ACTIONS):
        if calls[i] == call_hash:
            # Consume it, so that each proposed call passes exactly once.
            self._governance_calls[i] = empty(bytes32)
            return
    raise "Governor: call is not part of an executing proposal"


@internal
@view
def _quorum(timepoint: uint256) -> uint256:
    return (
        staticcall IVotesToken(_TOKEN).getPastTotalSupply(timepoint)
        * self._quorum_numerator_at(timepoint)
        // QUORUM_DENOMINATOR
    )


@internal
@view
def _quorum_numerator_at(timepoint: uint256) -> uint256:
    # Checkpoints are ordered by timepoint; most lookups hit the latest.
    head: uint256 = self._quorum_head
    if head & _MASK48 <= timepoint:
        return (head & _MASK128) >> _QN_SHIFT
    count: uint256 = head >> _QN_COUNT_SHIFT
    # Binary search for the last checkpoint at or before `timepoint`.
    low: uint256 = 0
    high: uint256 = count - 1
    for _: uint256 in range(64):
        if low >= high:
            break
        mid: uint256 = (low + high) // 2
        if self._quorum_checkpoints[mid] & _MASK48 <= timepoint:
            low = mid + 1
        else:
            high = mid
    if low == 0:
        return 0
    return self._quorum_checkpoints[low - 1] >> _QN_SHIFT


@internal
def _update_quorum_numerator(new_quorum_numerator: uint256):
    assert new_quorum_numerator <= QUORUM_DENOMINATOR, "Governor: quorum numerator over denominator"
    head: uint256 = self._quorum_head
    count: uint256 = head >> _QN_COUNT_SHIFT
    old: uint256 = (head & _MASK128) >> _QN_SHIFT
    entry: uint256 = (new_quorum_numerator << _QN_SHIFT) | block.timestamp
    if count != 0 and head & _MASK48 == block.timestamp:
        self._quorum_checkpoints[count - 1] = entry
    else:
        self._quorum_checkpoints[count] = entry
        count += 1
    self._quorum_head = entry | (count << _QN_COUNT_SHIFT)
    log QuorumNumeratorUpdated(oldQuorumNumerator=old, newQuorumNumerator=new_quorum_numerator)


@internal
def _set_voting_delay(new_voting_delay: uint48):
    timing: uint256 = self._timing
    log VotingDelaySet(oldVotingDelay=timing & _MASK48, newVotingDelay=convert(new_voting_delay, uint256))
    self._timing = (timing & ~_MASK48) | convert(new_voting_delay, uint256)


@internal
def _set_voting_period(new_voting_period: uint32):
    assert new_voting_period != 0, "Governor: voting period must be non-zero"
    timing: uint256 = self._timing
    log VotingPeriodSet(oldVotingPeriod=(timing >> 48) & _MASK32, newVotingPeriod=convert(new_voting_period, uint256))
    self._timing = (timing & _MASK48) | (convert(new_voting_period, uint256) << 48)


@internal
def _set_proposal_threshold(new_proposal_threshold: uint256):
    log ProposalThresholdSet(
        oldProposalThreshold=self._proposal_threshold, newProposalThreshold=new_proposal_threshold
    )
    self._proposal_threshold = new_proposal_threshold


@internal
def _update_timelock(new_timelock: address):
    log TimelockChange(oldTimelock=self._timelock, newTimelock=new_timelock)
    self._timelock = new_timelock
