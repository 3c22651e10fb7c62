# pragma version ~=0.4.3
# pragma nonreentrancy on
"""
@title veil RewardPool
@custom:contract-name RewardPool
@license MIT
@notice Pays compute providers for uptime out of a pool of already-minted PHA (this
        contract never mints): each epoch of chain time has a budget, split between the
        treasury, the stakers (added to the vPHA vault's reward reserve) and the
        providers; a threshold of attesters signs one Merkle root per epoch over every
        provider's cumulative reward, and after a challenge window anyone finalizes it
        and each provider claims `cumulative - claimed` as PHA or as vPHA.

        Epochs. Epoch n covers [genesisTime + n * epochLength, genesisTime + (n + 1) *
        epochLength). Changing the epoch length re-anchors `genesisTime` so the current
        epoch keeps its number and start and the new length applies from it on
        (`EpochLengthSet` says from which epoch); earlier epochs keep their old bounds.

        Budget. `scheduledBudget(n) = initialBudget >> (n // halfLifeEpochs)`: the budget
        halves every `halfLifeEpochs` epochs (a right shift, so Python mirrors it exactly).
        An epoch may pay `epochBudget(n) = min(scheduledBudget(n), available())`, where
        `available()` is the PHA this contract holds minus what finalized roots still owe
        to providers and minus the budgets of posted roots awaiting finalization. When the
        pool runs short an epoch pays what is there, and `RootPosted` and `EpochFinalized`
        carry both the scheduled and the paid budget. The budget is fixed when the root is
        posted.

        Split. `split(budget)`: stakers = budget * stakersBps // 10000, providers =
        budget * providersBps // 10000, treasury = the rest, so the parts add up exactly
        and the rounding goes to the treasury. At finalization the providers' part not
        allocated by the root (the growth of `total` over the previous root's) also goes
        to the treasury: e.g. workers below `minUptimeBps`.

        Roots. Leaves are OpenZeppelin `StandardMerkleTree` leaves of types
        ["address","uint256"]: keccak256(keccak256(abi.encode(provider, cumulative))),
        sorted-pair hashing. `total` is the sum of all leaves' cumulative amounts. Roots
        are posted for consecutive epochs, each after its epoch ended, signed by at least
        `threshold` attesters as EIP-712 `EpochRoot(uint64 epoch,bytes32 root,uint256
        total,bytes32 reportHash)` under ("veil RewardPool", "1"); `total` may not
        decrease and may not grow by more than the epoch's providers part. During
        `challengeWindow` after posting, the guardian or the owner may veto a root, which
        also withdraws every later posted root (each builds on its predecessor's totals).
        Posting stores two words, whatever the number of providers.

        Claims. Only the provider sends its claim; it pays `cumulative - claimed` and
        records `cumulative`, so one claim covers every epoch so far and a provider
        whose workers were deregistered and re-registered loses nothing. Claims are
        debited from what finalized roots owe in total, so even a root whose leaves sum
        to more than its signed `total` can never pay out more than `total`.

        Governance. The owner (the timelock) sets every number: initial budget,
        half-life, split, minimum uptime (read by the off-chain report), challenge
        window, epoch length, guardian, treasury, attesters and threshold.
"""

from snekmate.auth import ownable
from snekmate.utils import eip712_domain_separator as eip712

from ..attestation import attester_set
from ..interfaces import IPHA

initializes: ownable
initializes: eip712
initializes: attester_set[ownable := ownable]

exports: (
    ownable.owner,
    ownable.transfer_ownership,
    eip712.eip712Domain,
    attester_set.setAttester,
    attester_set.setThreshold,
    attester_set.threshold,
    attester_set.isAttester,
    attester_set.attesters,
    attester_set.attesterCount,
)


# The two vault calls the pool makes (its full surface lives in staking/Vault.vy).
interface IRewardVault:
    def fundRewards(amount: uint256): nonpayable
    def deposit(assets: uint256, receiver: address) -> uint256: nonpayable


struct EpochRecord:
    status: uint8  # 0 not posted, 1 posted (in or after its challenge window), 2 finalized
    root: bytes32
    total: uint256
    budget: uint256
    postedAt: uint256


event Funded:
    funder: indexed(address)
    amount: uint256


event RootPosted:
    epoch: indexed(uint256)
    root: bytes32
    total: uint256
    reportHash: bytes32
    scheduledBudget: uint256
    budget: uint256


event RootVetoed:
    epoch: indexed(uint256)
    by: indexed(address)
    withdrawn: uint256


event BudgetShort:
    epoch: indexed(uint256)
    scheduledBudget: uint256
    budget: uint256


event EpochFinalized:
    epoch: indexed(uint256)
    root: bytes32
    total: uint256
    budget: uint256
    treasury: uint256
    stakers: uint256
    providers: uint256


event Claimed:
    provider: indexed(address)
    cumulative: uint256
    amount: uint256
    asVPHA: bool


event BudgetScheduleSet:
    initialBudget: uint256
    halfLifeEpochs: uint256


event SplitSet:
    treasuryBps: uint256
    stakersBps: uint256
    providersBps: uint256


event MinUptimeSet:
    minUptimeBps: uint256


event ChallengeWindowSet:
    challengeWindow: uint256


event EpochLengthSet:
    epochLength: uint256
    genesisTime: uint256
    fromEpoch: uint256


event GuardianSet:
    guardian: indexed(address)


event TreasurySet:
    treasury: indexed(address)


BPS: constant(uint256) = 10_000
MAX_PROOF: constant(uint256) = 32
MAX_EPOCH_LENGTH: constant(uint256) = 30 * 86_400
MAX_CHALLENGE_WINDOW: constant(uint256) = 30 * 86_400

EPOCH_ROOT_TYPEHASH: public(constant(bytes32)) = keccak256(
    "EpochRoot(uint64 epoch,bytes32 root,uint256 total,bytes32 reportHash)"
)

# Amounts are PHA wei: the token's cap (1e27) fits in 96 bits, so two share a word.
_M64: constant(uint256) = (1 << 64) - 1
_M96: constant(uint256) = (1 << 96) - 1
_M128: constant(uint256) = (1 << 128) - 1
_M16: constant(uint256) = (1 << 16) - 1
_CURSOR_MARK: constant(uint256) = 1 << 255
_LEDGER_MARK: constant(uint256) = 1 << 127

PHA: public(immutable(address))
VAULT: public(immutable(address))
REGISTRY: public(immutable(address))

guardian: public(address)
treasury: public(address)
# @notice The root providers claim against (the latest finalized epoch's).
root: public(bytes32)
# @notice Cumulative amount each provider has claimed.
claimed: public(HashMap[address, uint256])

# Words read on the posting path, packed so a post reads four cold slots in all.
# _params: initialBudget (128) | halfLifeEpochs (64) | treasuryBps | stakersBps | providersBps (16 each)
_params: uint256
# _clock: genesisTime (64) | epochLength (64) | challengeWindow (64) | minUptimeBps (16)
_clock: uint256
# _cursor: next epoch to post (64) | next epoch to finalize (64) | last posted total (96) | mark
_cursor: uint256
# _ledger: budgets of posted, unfinalized roots (96) | mark (bit 127) | owed to providers (128)
_ledger: uint256
# Both words carry a bit that is never cleared, set at deployment, so that no post rewrites
# a zero word (20,000 gas more than a non-zero one): the first root costs what later ones do.
# per epoch: its root, and total (96) | budget (96) | stakersBps (16) | postedAt (48); the
# split is fixed at posting so a later change cannot make finalizing underflow.
_roots: HashMap[uint256, bytes32]
_records: HashMap[uint256, uint256]


@deploy
def __init__(
    pha: address,
    vault: address,
    registry: address,
    treasury: address,
    owner: address,
    guardian: address,
    genesisTime: uint256,
    epochLength: uint256,
    attesters: DynArray[address, attester_set.MAX_ATTESTERS],
    threshold: uint256,
    initialBudget: uint256,
    halfLifeEpochs: uint256,
    challengeWindow: uint256,
):
    """
    @notice Deploy the pool with a 20/40/40 treasury/stakers/providers split and a
            minimum uptime of 80%; every number can be changed by the owner later.
    @dev Approves the vault for PHA once (an allowance PHA does not decrement), so
         finalizing and vPHA claims only call the vault.
    @param pha The PHA token paid out.
    @param vault The vPHA vault: stakers' parts fund its reward reserve, vPHA claims deposit.
    @param registry The ComputeRegistry whose workers earn (read by the off-chain report).
    @param treasury Receives the treasury part and unallocated provider parts.
    @param owner The governance timelock.
    @param guardian May veto roots during the challenge window (zero: only the owner).
    @param genesisTime Unix time epoch 0 starts.
    @param epochLength Seconds per epoch.
    @param attesters The attester keys that sign epoch roots.
    @param threshold Signatures of distinct attesters a root needs.
    @param initialBudget PHA wei epoch 0 may pay.
    @param halfLifeEpochs Epochs after which the scheduled budget halves.
    @param challengeWindow Seconds a posted root waits before it can be finalized.
    """
    assert pha != empty(address) and vault != empty(address), "RewardPool: zero token or vault"
    assert owner != empty(address), "RewardPool: zero owner"
    assert treasury != empty(address), "RewardPool: zero treasury"
    ownable.__init__()
    ownable._transfer_ownership(owner)
    eip712.__init__("veil RewardPool", "1")
    attester_set.__init__()
    PHA = pha
    VAULT = vault
    REGISTRY = registry
    self.treasury = treasury
    self.guardian = guardian
    assert genesisTime <= _M64, "RewardPool: bad genesis time"
    self._check_epoch_length(epochLength)
    self._check_challenge_window(challengeWindow)
    self._clock = genesisTime | (epochLength << 64) | (challengeWindow << 128) | (8_000 << 192)
    self._set_schedule(initialBudget, halfLifeEpochs)
    self._set_split(2_000, 4_000, 4_000)
    self._cursor = _CURSOR_MARK
    self._ledger = _LEDGER_MARK
    for a: address in attesters:
        assert a != empty(address), "attester_set: zero attester"
        assert attester_set._accepted[empty(bytes32)][a] == 0, "attester_set: attester unchanged"
        attester_set._attesters.append(a)
        attester_set._accepted[empty(bytes32)][a] = 1
        log attester_set.AttesterSet(attester=a, allowed=True)
    if len(attesters) != 0:
        assert threshold != 0 and threshold <= len(attesters), "RewardPool: bad threshold"
        assert threshold <= attester_set.MAX_SIGNATURES, "RewardPool: bad threshold"
        attester_set.threshold = threshold
        for a: address in attesters:
            attester_set._accepted[empty(bytes32)][a] = threshold
        log attester_set.ThresholdSet(threshold=threshold)
    extcall IPHA(pha).approve(vault, max_value(uint256))


# ---------------------------------------------------------------- funding


@external
def fund(amount: uint256):
    """
    @notice Add `amount` PHA from the caller to the pool (a plain transfer to this
            contract counts the same; this one says who funded).
    @param amount PHA wei; the caller must have approved this contract.
    """
    assert amount != 0, "RewardPool: zero amount"
    assert extcall IPHA(PHA).transferFrom(msg.sender, self, amount), "RewardPool: transfer failed"
    log Funded(funder=msg.sender, amount=amount)


# ---------------------------------------------------------------- settlement


@external
def postRoot(
    epoch: uint64,
    root: bytes32,
    total: uint256,
    reportHash: bytes32,
    signatures: DynArray[attester_set.Signature, attester_set.MAX_SIGNATURES],
):
    """
    @notice Post the attesters' root for the next epoch after it ended. Anyone may
            submit; the signatures are what count. Fixes the epoch's budget
            (`epochBudget`) and starts its challenge window.
    @param epoch The epoch, exactly `nextEpoch()`, and below `currentEpoch()`.
    @param root The StandardMerkleTree root over (provider, cumulative) leaves.
    @param total The sum of all leaves' cumulative amounts: at least the previous
           root's total, and at most that plus the epoch's providers part.
    @param reportHash sha256 of the epoch's canonical report JSON (published, not checked).
    @param signatures At least `threshold` attester signatures over
           `epochRootDigest(epoch, root, total, reportHash)`, sorted by signer address.
    """
    e: uint256 = convert(epoch, uint256)
    cursor: uint256 = self._cursor
    assert e == cursor & _M64, "RewardPool: not the next epoch"
    clock: uint256 = self._clock
    assert e < self._current_epoch(clock), "RewardPool: epoch not over"
    assert root != empty(bytes32) or total == 0, "RewardPool: zero root"
    previous: uint256 = (cursor >> 128) & _M96
    assert total >= previous, "RewardPool: total decreased"
    params: uint256 = self._params
    scheduled: uint256 = self._scheduled(params, e)
    ledger: uint256 = self._ledger
    budget: uint256 = min(scheduled, self._available(ledger))
    assert total - previous <= budget * ((params >> 224) & _M16) // BPS, "RewardPool: total above providers part"

    struct_hash: bytes32 = keccak256(abi_encode(EPOCH_ROOT_TYPEHASH, epoch, root, total, reportHash))
    digest: bytes32 = keccak256(concat(b"\x19\x01", eip712._domain_separator_v4(), struct_hash))
    assert attester_set._check(empty(bytes32), digest, signatures) != 0

    self._roots[e] = root
    self._records[e] = total | (budget << 96) | (((params >> 208) & _M16) << 192) | (block.timestamp << 208)
    self._cursor = (cursor & (_M64 << 64)) | (e + 1) | (total << 128) | _CURSOR_MARK
    self._ledger = ledger + budget
    if budget < scheduled:
        log BudgetShort(epoch=e, scheduledBudget=scheduled, budget=budget)
    log RootPosted(
        epoch=e, root=root, total=total, reportHash=reportHash, scheduledBudget=scheduled, budget=budget
    )


@external
def vetoRoot(epoch: uint256):
    """
    @notice Guardian or owner, during the epoch's challenge window: withdraw its root
            and every root posted after it; the epoch can then be posted again.
    @param epoch A posted, unfinalized epoch whose challenge window is still open.
    """
    assert msg.sender == self.guardian or msg.sender == ownable.owner, "RewardPool: not guardian"
    cursor: uint256 = self._cursor
    next_post: uint256 = cursor & _M64
    assert epoch >= (cursor >> 64) & _M64 and epoch < next_post, "RewardPool: not pending"
    record: uint256 = self._records[epoch]
    assert block.timestamp < (record >> 208) + ((self._clock >> 128) & _M64), "RewardPool: window closed"
    released: uint256 = 0
    for e: uint256 in range(epoch, next_post, bound=65_535):
        released += (self._records[e] >> 96) & _M96
    previous: uint256 = 0
    if epoch != 0:
        previous = self._records[epoch - 1] & _M96
    self._cursor = (cursor & (_M64 << 64)) | epoch | (previous << 128) | _CURSOR_MARK
    self._ledger -= released
    log RootVetoed(epoch=epoch, by=msg.sender, withdrawn=next_post - epoch)


@external
def finalize(epoch: uint256):
    """
    @notice Anyone, after the challenge window: make the epoch's root the claimable
            root, fund the vault's reward reserve with the stakers' part and pay the
            treasury its part plus the providers' part the root did not allocate.
    @param epoch Exactly the next epoch to finalize, posted at least
           `challengeWindow` seconds ago.
    """
    cursor: uint256 = self._cursor
    assert epoch == (cursor >> 64) & _M64, "RewardPool: not the next epoch to finalize"
    assert epoch < cursor & _M64, "RewardPool: not posted"
    record: uint256 = self._records[epoch]
    assert block.timestamp >= (record >> 208) + ((self._clock >> 128) & _M64), "RewardPool: challenge window open"
    total: uint256 = record & _M96
    budget: uint256 = (record >> 96) & _M96
    previous: uint256 = 0
    if epoch != 0:
        previous = self._records[epoch - 1] & _M96
    stakers: uint256 = budget * ((record >> 192) & _M16) // BPS
    allocated: uint256 = total - previous
    to_treasury: uint256 = budget - stakers - allocated
    root: bytes32 = self._roots[epoch]
    self.root = root
    self._cursor = cursor + (1 << 64)
    # reserved shrinks by the budget, owed grows by the providers' allocation
    self._ledger = self._ledger - budget + (allocated << 128)
    if to_treasury != 0:
        assert extcall IPHA(PHA).transfer(self.treasury, to_treasury), "RewardPool: transfer failed"
    if stakers != 0:
        extcall IRewardVault(VAULT).fundRewards(stakers)
    log EpochFinalized(
        epoch=epoch,
        root=root,
        total=total,
        budget=budget,
        treasury=to_treasury,
        stakers=stakers,
        providers=allocated,
    )


@external
def claim(provider: address, cumulative: uint256, proof: DynArray[bytes32, MAX_PROOF], asVPHA: bool):
    """
    @notice The provider itself: receive `cumulative - claimed(provider)`, its rewards
            over every finalized epoch not yet claimed.
    @param provider The provider's address; must be the sender.
    @param cumulative The provider's leaf amount in the claimable root.
    @param proof The leaf's Merkle proof against `root()`.
    @param asVPHA True to receive vPHA (deposited into the vault for the provider), False for PHA.
    """
    assert msg.sender == provider, "RewardPool: only the provider claims"
    computed: bytes32 = keccak256(keccak256(abi_encode(provider, cumulative)))
    for sibling: bytes32 in proof:
        if convert(computed, uint256) < convert(sibling, uint256):
            computed = keccak256(abi_encode(computed, sibling))
        else:
            computed = keccak256(abi_encode(sibling, computed))
    assert computed == self.root, "RewardPool: invalid proof"
    already: uint256 = self.claimed[provider]
    assert cumulative > already, "RewardPool: nothing to claim"
    amount: uint256 = cumulative - already
    self.claimed[provider] = cumulative
    ledger: uint256 = self._ledger
    assert amount <= ledger >> 128, "RewardPool: exceeds finalized total"
    self._ledger = ledger - (amount << 128)
    if asVPHA:
        extcall IRewardVault(VAULT).deposit(amount, provider)
    else:
        assert extcall IPHA(PHA).transfer(provider, amount), "RewardPool: transfer failed"
    log Claimed(provider=provider, cumulative=cumulative, amount=amount, asVPHA=asVPHA)


# ---------------------------------------------------------------- governance


@external
def setBudgetSchedule(initialBudget: uint256, halfLifeEpochs: uint256):
    """
    @notice Owner only: the budget schedule, `initialBudget >> (epoch // halfLifeEpochs)`,
            for roots posted from now on.
    @param initialBudget PHA wei the schedule pays at epoch 0 (below 2**96).
    @param halfLifeEpochs Epochs per halving, at least 1.
    """
    ownable._check_owner()
    self._set_schedule(initialBudget, halfLifeEpochs)


@external
def setSplit(treasuryBps: uint256, stakersBps: uint256, providersBps: uint256):
    """
    @notice Owner only: how budgets split, in basis points summing to 10,000, for
            roots posted from now on (a pending root's check used the split in force).
    @param treasuryBps The treasury's share.
    @param stakersBps The stakers' share (funds the vault's reward reserve).
    @param providersBps The providers' share.
    """
    ownable._check_owner()
    self._set_split(treasuryBps, stakersBps, providersBps)


@external
def setMinUptimeBps(minUptimeBps: uint256):
    """
    @notice Owner only: the uptime below which a worker earns nothing in an epoch; the
            off-chain report reads it from here.
    @param minUptimeBps Basis points, at most 10,000.
    """
    ownable._check_owner()
    assert minUptimeBps <= BPS, "RewardPool: uptime above 100%"
    self._clock = (self._clock & ~(_M16 << 192)) | (minUptimeBps << 192)
    log MinUptimeSet(minUptimeBps=minUptimeBps)


@external
def setChallengeWindow(challengeWindow: uint256):
    """
    @notice Owner only: seconds a posted root waits before finalization; applies to
            pending roots too (a longer window gives the guardian more time on them).
    @param challengeWindow At most 30 days.
    """
    ownable._check_owner()
    self._check_challenge_window(challengeWindow)
    self._clock = (self._clock & ~(_M64 << 128)) | (challengeWindow << 128)
    log ChallengeWindowSet(challengeWindow=challengeWindow)


@external
def setEpochLength(epochLength: uint256):
    """
    @notice Owner only: the epoch length, from the current epoch on. The current epoch
            keeps its number and start; `genesisTime` moves so that
            `(t - genesisTime) // epochLength` numbers epochs from then on.
    @param epochLength Seconds, 1 to 30 days.
    """
    ownable._check_owner()
    self._check_epoch_length(epochLength)
    clock: uint256 = self._clock
    genesis: uint256 = clock & _M64
    current: uint256 = self._current_epoch(clock)
    start: uint256 = genesis + current * ((clock >> 64) & _M64)
    assert start >= current * epochLength, "RewardPool: epoch length too long for the schedule"
    genesis = start - current * epochLength
    self._clock = (clock & ~_M128) | genesis | (epochLength << 64)
    log EpochLengthSet(epochLength=epochLength, genesisTime=genesis, fromEpoch=current)


@external
def setGuardian(guardian: address):
    """
    @notice Owner only: the address that may veto roots (zero: only the owner).
    @param guardian The new guardian.
    """
    ownable._check_owner()
    self.guardian = guardian
    log GuardianSet(guardian=guardian)


@external
def setTreasury(treasury: address):
    """
    @notice Owner only: where treasury parts go.
    @param treasury The new treasury, not zero.
    """
    ownable._check_owner()
    assert treasury != empty(address), "RewardPool: zero treasury"
    self.treasury = treasury
    log TreasurySet(treasury=treasury)


# ---------------------------------------------------------------- views


@view
@external
def currentEpoch() -> uint256:
    """
    @notice The epoch the chain's clock is in (0 before genesis).
    @return uint256 The epoch number.
    """
    return self._current_epoch(self._clock)


@view
@external
def genesisTime() -> uint256:
    """
    @notice Unix time from which `(t - genesisTime) // epochLength` numbers epochs.
    @return uint256 The (possibly re-anchored) genesis time.
    """
    return self._clock & _M64


@view
@external
def epochLength() -> uint256:
    """
    @notice Seconds per epoch.
    @return uint256 The epoch length.
    """
    return (self._clock >> 64) & _M64


@view
@external
def challengeWindow() -> uint256:
    """
    @notice Seconds a posted root waits before it can be finalized.
    @return uint256 The window.
    """
    return (self._clock >> 128) & _M64


@view
@external
def minUptimeBps() -> uint256:
    """
    @notice Uptime below which a worker earns nothing in an epoch (basis points).
    @return uint256 The minimum uptime.
    """
    return (self._clock >> 192) & _M16


@view
@external
def initialBudget() -> uint256:
    """
    @notice PHA wei the schedule pays at epoch 0.
    @return uint256 The initial budget.
    """
    return self._params & _M128


@view
@external
def halfLifeEpochs() -> uint256:
    """
    @notice Epochs per halving of the scheduled budget.
    @return uint256 The half-life.
    """
    return (self._params >> 128) & _M64


@view
@external
def splitBps() -> (uint256, uint256, uint256):
    """
    @notice The split in basis points.
    @return (treasury, stakers, providers), summing to 10,000.
    """
    params: uint256 = self._params
    return (params >> 192) & _M16, (params >> 208) & _M16, (params >> 224) & _M16


@view
@external
def scheduledBudget(epoch: uint256) -> uint256:
    """
    @notice What the schedule gives `epoch` before the pool's cap:
            `initialBudget >> (epoch // halfLifeEpochs)`.
    @param epoch An epoch.
    @return uint256 PHA wei.
    """
    return self._scheduled(self._params, epoch)


@view
@external
def epochBudget(epoch: uint256) -> uint256:
    """
    @notice What `epoch` pays in total: its fixed budget once posted, otherwise
            `min(scheduledBudget(epoch), available())` as a post now would fix it.
    @param epoch An epoch.
    @return uint256 PHA wei.
    """
    if epoch < self._cursor & _M64:
        return (self._records[epoch] >> 96) & _M96
    return min(self._scheduled(self._params, epoch), self._available(self._ledger))


@view
@external
def split(budget: uint256) -> (uint256, uint256, uint256):
    """
    @notice How `budget` splits under the current basis points, exactly.
    @param budget PHA wei.
    @return (treasury, stakers, providers), summing to `budget`; rounding goes to the treasury.
    """
    parts: uint256[3] = self._split(self._params, budget)
    return parts[0], parts[1], parts[2]


@view
@external
def available() -> uint256:
    """
    @notice PHA the pool holds beyond what finalized roots owe providers and what
            posted roots have reserved: what the next epochs can pay.
    @return uint256 PHA wei.
    """
    return self._available(self._ledger)


@view
@external
def reserved() -> uint256:
    """
    @notice The budgets of posted roots awaiting finalization.
    @return uint256 PHA wei.
    """
    return self._ledger & _M96


@view
@external
def owed() -> uint256:
    """
    @notice What finalized roots still owe providers (their total minus claims).
    @return uint256 PHA wei.
    """
    return self._ledger >> 128


@view
@external
def nextEpoch() -> uint256:
    """
    @notice The epoch whose root is to be posted next.
    @return uint256 The epoch number.
    """
    return self._cursor & _M64


@view
@external
def nextEpochToFinalize() -> uint256:
    """
    @notice The epoch to be finalized next (equal to `nextEpoch()` when none is pending).
    @return uint256 The epoch number.
    """
    return (self._cursor >> 64) & _M64


@view
@external
def lastFinalizedEpoch() -> uint256:
    """
    @notice The latest finalized epoch, whose root is `root()`.
    @return uint256 The epoch, or 2**256 - 1 while none is finalized.
    """
    return ((self._cursor >> 64) & _M64) - 1 if (self._cursor >> 64) & _M64 != 0 else max_value(uint256)


@view
@external
def finalizedTotal() -> uint256:
    """
    @notice The total of the claimable root (0 before the first finalization).
    @return uint256 PHA wei.
    """
    f: uint256 = (self._cursor >> 64) & _M64
    if f == 0:
        return 0
    return self._records[f - 1] & _M96


@view
@external
def pending(epoch: uint256) -> EpochRecord:
    """
    @notice An epoch's posted root: status 0 not posted (or vetoed), 1 posted and not
            finalized, 2 finalized.
    @param epoch An epoch.
    @return EpochRecord Its status, root, total, budget and posting time.
    """
    cursor: uint256 = self._cursor
    if epoch >= cursor & _M64:
        return empty(EpochRecord)
    record: uint256 = self._records[epoch]
    status: uint8 = 1
    if epoch < (cursor >> 64) & _M64:
        status = 2
    return EpochRecord(
        status=status,
        root=self._roots[epoch],
        total=record & _M96,
        budget=(record >> 96) & _M96,
        postedAt=record >> 208,
    )


@view
@external
def epochRootDigest(epoch: uint64, root: bytes32, total: uint256, reportHash: bytes32) -> bytes32:
    """
    @notice The EIP-712 digest attesters sign for an epoch root.
    @param epoch The epoch.
    @param root The Merkle root.
    @param total The sum of the leaves' cumulative amounts.
    @param reportHash sha256 of the report JSON.
    @return bytes32 The digest.
    """
    struct_hash: bytes32 = keccak256(abi_encode(EPOCH_ROOT_TYPEHASH, epoch, root, total, reportHash))
    return keccak256(concat(b"\x19\x01", eip712._domain_separator_v4(), struct_hash))


@view
@external
def DOMAIN_SEPARATOR() -> bytes32:
    """
    @notice The EIP-712 domain separator attesters sign under.
    @return bytes32 The separator for this chain and contract.
    """
    return eip712._domain_separator_v4()


# ---------------------------------------------------------------- internals


@internal
@view
def _current_epoch(clock: uint256) -> uint256:
    genesis: uint256 = clock & _M64
    if block.timestamp < genesis:
        return 0
    return (block.timestamp - genesis) // ((clock >> 64) & _M64)


@internal
@pure
def _scheduled(params: uint256, epoch: uint256) -> uint256:
    halvings: uint256 = epoch // ((params >> 128) & _M64)
    if halvings >= 256:
        return 0
    return (params & _M128) >> halvings


@internal
@pure
def _split(params: uint256, budget: uint256) -> uint256[3]:
    stakers: uint256 = budget * ((params >> 208) & _M16) // BPS
    providers: uint256 = budget * ((params >> 224) & _M16) // BPS
    return [budget - stakers - providers, stakers, providers]


@internal
@view
def _available(ledger: uint256) -> uint256:
    held: uint256 = staticcall IPHA(PHA).balanceOf(self)
    committed: uint256 = (ledger & _M96) + (ledger >> 128)
    if held <= committed:
        return 0
    return held - committed


@internal
def _set_schedule(initial_budget: uint256, half_life: uint256):
    assert initial_budget <= _M96, "RewardPool: budget too large"
    assert half_life != 0 and half_life <= _M64, "RewardPool: bad half-life"
    self._params = (self._params & ~(_M128 | (_M64 << 128))) | initial_budget | (half_life << 128)
    log BudgetScheduleSet(initialBudget=initial_budget, halfLifeEpochs=half_life)


@internal
def _set_split(treasury_bps: uint256, stakers_bps: uint256, providers_bps: uint256):
    assert treasury_bps + stakers_bps + providers_bps == BPS, "RewardPool: split must sum to 10000"
    low: uint256 = self._params & ((1 << 192) - 1)
    self._params = low | (treasury_bps << 192) | (stakers_bps << 208) | (providers_bps << 224)
    log SplitSet(treasuryBps=treasury_bps, stakersBps=stakers_bps, providersBps=providers_bps)


@internal
@pure
def _check_epoch_length(epoch_length: uint256):
    assert epoch_length != 0 and epoch_length <= MAX_EPOCH_LENGTH, "RewardPool: bad epoch length"


@internal
@pure
def _check_challenge_window(window: uint256):
    assert window <= MAX_CHALLENGE_WINDOW, "RewardPool: challenge window too long"
