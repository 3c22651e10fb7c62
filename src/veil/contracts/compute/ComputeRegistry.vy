# pragma version ~=0.4.3
# pragma nonreentrancy on
"""
@title veil ComputeRegistry
@notice Compute providers post vPHA collateral and register TEE workers (Intel TDX,
        optionally with NVIDIA GPUs) that a threshold of registered attesters has
        verified. Each worker locks collateral per accelerator; a deregistered worker's
        collateral cools down before it is free again; governance (the timelock, the
        owner) can slash collateral to the treasury.
@dev Collateral is counted in vPHA *shares* (the vault token's smallest unit), never
     converted to PHA: a slash or a withdrawal moves exactly the shares that were
     deposited, and the default requirements are set from the vault's own decimals()
     (1,250 * 10**decimals for an H100), so the vault's decimals offset is respected.

     Per provider: collateral == free + locked + cooling (free is not stored).
     `required` is the sum of the collateral requirements of its registered workers;
     locked == required unless a slash reached the locked part. Slashes take free
     collateral first, then cooling, then locked. While locked < required (a shortfall)
     none of the provider's workers is active (isActive false, rewardWeight 0) and it
     cannot register new workers; deposits fill the shortfall first, which reactivates
     the workers. Deregistering a worker releases its requirement, minus any shortfall,
     into cooling; the provider's cooldown then restarts for all of its cooling
     collateral (one timer per provider keeps slashing of cooling collateral exact).

     A worker locks the requirement in force when it registers; later changes of the
     accelerator type change new registrations and every worker's reward weight, not
     existing locks. A worker is active while registered, unexpired, on an OS image and
     compose hash that are still allowlisted (revoking one deactivates its workers at
     once), and its provider has no shortfall.

     Guardian freeze. Only governance slashes, and a slash proposal is public for the
     whole governance path (voting delay + voting period + timelock delay) before it can
     execute; a provider that saw it coming could deregister and walk away with its
     collateral once the cooldown ends. The guardian (a role governance appoints) can
     freeze a registered provider: while frozen, nothing moves its collateral out of the
     registry (no withdrawal, no release of cooling collateral) except a slash. A freeze
     lasts `maxFreeze` seconds (the maximum in force when it starts; later changes of the
     maximum neither lengthen nor shorten it) and ends earlier when governance unfreezes
     or slashes the provider, or the guardian lifts it. After a freeze ends the guardian
     cannot freeze the same provider again for another `maxFreeze` seconds (the cool-off),
     so the guardian can hold a provider's collateral at most half of the time and never
     for good: collateral whose cooldown has ended can always be withdrawn within one
     maximum freeze. Deposits, worker registration and deregistration stay open while
     frozen (none of them moves collateral out).
"""

from snekmate.auth import ownable
from snekmate.utils import eip712_domain_separator as eip712
from ethereum.ercs import IERC20Detailed

from ..attestation import attester_set
from ..interfaces import IVault

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


# --- constants -------------------------------------------------------------------

MAX_REASON: constant(uint256) = 256
MAX_COOLDOWN: constant(uint64) = 365 * 86400
# Upper bound of the governed maximum freeze: governance cannot let the guardian hold
# collateral longer than this, whatever it votes.
MAX_FREEZE_LIMIT: constant(uint64) = 90 * 86400

STATUS_NONE: constant(uint8) = 0
STATUS_REGISTERED: constant(uint8) = 1
STATUS_DEREGISTERED: constant(uint8) = 2

MODEL_CPU_TDX: constant(uint8) = 0
MODEL_H100: constant(uint8) = 1
MODEL_H200: constant(uint8) = 2
MODEL_B200: constant(uint8) = 3

ATTESTATION_TYPEHASH: public(constant(bytes32)) = keccak256(
    "WorkerAttestation(address worker,address provider,bytes32 quoteHash,bytes32 measurementHash,bytes32 osImageHash,bytes32 composeHash,uint8 gpuModel,uint16 gpuCount,uint64 expiry,bytes32 evidenceHash)"
)


# --- types -----------------------------------------------------------------------

struct WorkerAttestation:
    worker: address
    provider: address
    quoteHash: bytes32
    measurementHash: bytes32
    osImageHash: bytes32
    composeHash: bytes32
    gpuModel: uint8
    gpuCount: uint16
    expiry: uint64
    evidenceHash: bytes32

struct AcceleratorType:
    collateral: uint256
    weightBps: uint256
    enabled: bool

struct Worker:
    provider: address
    gpuModel: uint8
    gpuCount: uint16
    expiry: uint64
    evidenceHash: bytes32
    quoteHash: bytes32
    measurementHash: bytes32
    status: uint8
    osImageHash: bytes32
    composeHash: bytes32
    collateral: uint256

# Storage form of a worker: provider (160 bits), model (8), count (16), expiry (64) and
# status (8) share one slot (`head`), which saves four cold stores per registration.
struct WorkerSlot:
    head: uint256
    evidenceHash: bytes32
    quoteHash: bytes32
    measurementHash: bytes32
    osImageHash: bytes32
    composeHash: bytes32
    collateral: uint256

struct Provider:
    registered: bool
    collateral: uint256
    locked: uint256
    cooling: uint256
    cooldownEnd: uint64
    required: uint256
    workers: uint256


# --- events ----------------------------------------------------------------------

event ProviderRegistered:
    provider: indexed(address)

event CollateralDeposited:
    provider: indexed(address)
    amount: uint256
    collateral: uint256

event CollateralWithdrawn:
    provider: indexed(address)
    amount: uint256
    collateral: uint256

event CollateralReleased:
    provider: indexed(address)
    amount: uint256

event WorkerRegistered:
    worker: indexed(address)
    provider: indexed(address)
    gpuModel: uint8
    gpuCount: uint16
    expiry: uint64
    collateral: uint256
    quoteHash: bytes32
    measurementHash: bytes32
    evidenceHash: bytes32

event WorkerReattested:
    worker: indexed(address)
    provider: indexed(address)
    expiry: uint64
    quoteHash: bytes32
    measurementHash: bytes32
    evidenceHash: bytes32

event WorkerDeregistered:
    worker: indexed(address)
    provider: indexed(address)
    cooling: uint256
    cooldownEnd: uint64

event Slashed:
    provider: indexed(address)
    amount: uint256
    shortfall: uint256
    reason: String[MAX_REASON]

event AllowlistChanged:
    kind: String[16]
    item: indexed(bytes32)
    allowed: bool

event AcceleratorTypeChanged:
    gpuModel: indexed(uint8)
    collateral: uint256
    weightBps: uint256
    enabled: bool

event CooldownChanged:
    cooldown: uint64

event TreasuryChanged:
    treasury: indexed(address)

event GuardianChanged:
    guardian: indexed(address)

event MaxFreezeChanged:
    maxFreeze: uint64

event ProviderFrozen:
    provider: indexed(address)
    guardian: indexed(address)
    frozenUntil: uint64
    reason: String[MAX_REASON]

event ProviderUnfrozen:
    provider: indexed(address)
    by: indexed(address)


# --- storage ---------------------------------------------------------------------

vault: public(immutable(address))
treasury: public(address)
cooldown: public(uint64)

guardian: public(address)
maxFreeze: public(uint64)
# When the provider's current (or last) freeze ends; 0 if never frozen. Frozen while
# block.timestamp < frozenUntil; a new freeze needs block.timestamp >= frozenUntil + maxFreeze.
frozenUntil: public(HashMap[address, uint64])

osImageAllowed: public(HashMap[bytes32, bool])
composeHashAllowed: public(HashMap[bytes32, bool])

accelerators: HashMap[uint8, AcceleratorType]
workers: HashMap[address, WorkerSlot]
providers: HashMap[address, Provider]


@deploy
def __init__(vault_: address, owner_: address, treasury_: address):
    """
    @notice Deploy over the vPHA vault; `owner_` is the timelock in a deployment.
    @dev Default accelerator types (CPU-only TDX 250, H100 1,250, H200 1,875,
         B200 2,250 vPHA; weights 0.1, 1.0, 1.5, 1.8) are scaled by the vault's
         decimals(); governance can change them with setAcceleratorType.
    @param vault_ The vPHA vault (ERC-20 shares used as collateral).
    @param owner_ The governance address allowed to change parameters and slash.
    @param treasury_ Where slashed collateral goes.
    """
    assert vault_ != empty(address), "registry: zero vault"
    assert owner_ != empty(address), "registry: zero owner"
    assert treasury_ != empty(address), "registry: zero treasury"
    ownable.__init__()
    eip712.__init__("veil ComputeRegistry", "1")
    attester_set.__init__()
    ownable._transfer_ownership(owner_)
    vault = vault_
    self.treasury = treasury_
    self.cooldown = 7 * 86400
    self.maxFreeze = 14 * 86400

    unit: uint256 = 10 ** convert(staticcall IERC20Detailed(vault_).decimals(), uint256)
    self._set_accelerator(MODEL_CPU_TDX, 250 * unit, 1_000)
    self._set_accelerator(MODEL_H100, 1_250 * unit, 10_000)
    self._set_accelerator(MODEL_H200, 1_875 * unit, 15_000)
    self._set_accelerator(MODEL_B200, 2_250 * unit, 18_000)


# --- providers -------------------------------------------------------------------

@external
def registerProvider():
    """
    @notice Register msg.sender as a compute provider (once).
    """
    assert not self.providers[msg.sender].registered, "registry: provider already registered"
    self.providers[msg.sender].registered = True
    log ProviderRegistered(provider=msg.sender)


@external
def depositCollateral(amount: uint256):
    """
    @notice Pull `amount` vPHA shares from msg.sender (approve first) as collateral.
    @dev A deposit first fills any shortfall left by a slash of locked collateral.
    @param amount vPHA shares, in the vault token's smallest unit.
    """
    assert amount > 0, "registry: zero amount"
    p: Provider = self.providers[msg.sender]
    assert p.registered, "registry: provider not registered"
    assert extcall IVault(vault).transferFrom(msg.sender, self, amount, default_return_value=True), "registry: transfer failed"
    p.collateral += amount
    if p.required > p.locked:
        p.locked += min(p.required - p.locked, amount)
    self.providers[msg.sender] = p
    log CollateralDeposited(provider=msg.sender, amount=amount, collateral=p.collateral)


@external
def withdrawCollateral(amount: uint256):
    """
    @notice Withdraw `amount` of free collateral (not locked by workers, not cooling).
    @dev Cooling collateral whose cooldown has ended is released first. Refused while
         the guardian's freeze holds (a slash may be on its way).
    @param amount vPHA shares to send back to msg.sender.
    """
    assert amount > 0, "registry: zero amount"
    self._check_not_frozen(msg.sender)
    self._release(msg.sender)
    p: Provider = self.providers[msg.sender]
    assert amount <= p.collateral - p.locked - p.cooling, "registry: exceeds free collateral"
    p.collateral -= amount
    self.providers[msg.sender] = p
    assert extcall IVault(vault).transfer(msg.sender, amount, default_return_value=True), "registry: transfer failed"
    log CollateralWithdrawn(provider=msg.sender, amount=amount, collateral=p.collateral)


@external
def releaseCollateral():
    """
    @notice Make msg.sender's cooling collateral free once its cooldown has ended.
    @dev Refused while the guardian's freeze holds.
    """
    self._check_not_frozen(msg.sender)
    p: Provider = self.providers[msg.sender]
    assert p.cooling > 0, "registry: nothing cooling"
    assert block.timestamp >= convert(p.cooldownEnd, uint256), "registry: cooldown not over"
    self._release(msg.sender)


# --- workers ---------------------------------------------------------------------

@external
def registerWorker(attestation: WorkerAttestation, signatures: DynArray[attester_set.Signature, attester_set.MAX_SIGNATURES]):
    """
    @notice Register an attested worker for msg.sender and lock its collateral,
            required(model) * max(count, 1).
    @dev The signatures must come from at least `threshold` distinct registered
         attesters, ordered by strictly increasing recovered address.
    @param attestation The EIP-712 WorkerAttestation the attesters signed.
    @param signatures EIP-2098 compact (r, vs) signatures, low-s only.
    """
    self._check_attestation(attestation, signatures)
    head: Worker = self._unpack(self.workers[attestation.worker].head)
    assert head.status != STATUS_REGISTERED, "registry: worker already registered"
    assert attestation.expiry > head.expiry, "registry: attestation older than the last one"
    t: AcceleratorType = self.accelerators[attestation.gpuModel]
    assert t.enabled, "registry: unknown accelerator type"

    p: Provider = self.providers[msg.sender]
    assert p.registered, "registry: provider not registered"
    assert p.locked >= p.required, "registry: provider has a collateral shortfall"
    need: uint256 = t.collateral * max(convert(attestation.gpuCount, uint256), 1)
    assert need <= p.collateral - p.locked - p.cooling, "registry: insufficient free collateral"
    p.locked += need
    p.required += need
    p.workers += 1
    self.providers[msg.sender] = p

    self._store(attestation.worker, Worker(
        provider=msg.sender,
        gpuModel=attestation.gpuModel,
        gpuCount=attestation.gpuCount,
        expiry=attestation.expiry,
        evidenceHash=attestation.evidenceHash,
        quoteHash=attestation.quoteHash,
        measurementHash=attestation.measurementHash,
        status=STATUS_REGISTERED,
        osImageHash=attestation.osImageHash,
        composeHash=attestation.composeHash,
        collateral=need,
    ))
    log WorkerRegistered(
        worker=attestation.worker,
        provider=msg.sender,
        gpuModel=attestation.gpuModel,
        gpuCount=attestation.gpuCount,
        expiry=attestation.expiry,
        collateral=need,
        quoteHash=attestation.quoteHash,
        measurementHash=attestation.measurementHash,
        evidenceHash=attestation.evidenceHash,
    )


@external
def reattestWorker(attestation: WorkerAttestation, signatures: DynArray[attester_set.Signature, attester_set.MAX_SIGNATURES]):
    """
    @notice Renew a registered worker's attestation (before or after expiry) with new
            evidence and a later expiry; model and GPU count must stay the same.
    @dev The locked collateral stays what it was at registration.
    @param attestation The new EIP-712 WorkerAttestation.
    @param signatures EIP-2098 compact (r, vs) signatures, low-s only, increasing signers.
    """
    self._check_attestation(attestation, signatures)
    w: Worker = self._load(attestation.worker)
    assert w.status == STATUS_REGISTERED, "registry: worker not registered"
    assert w.provider == msg.sender, "registry: not the worker's provider"
    assert attestation.gpuModel == w.gpuModel, "registry: gpu model changed"
    assert attestation.gpuCount == w.gpuCount, "registry: gpu count changed"
    assert attestation.expiry > w.expiry, "registry: attestation older than the last one"
    w.expiry = attestation.expiry
    w.evidenceHash = attestation.evidenceHash
    w.quoteHash = attestation.quoteHash
    w.measurementHash = attestation.measurementHash
    w.osImageHash = attestation.osImageHash
    w.composeHash = attestation.composeHash
    self._store(attestation.worker, w)
    log WorkerReattested(
        worker=attestation.worker,
        provider=msg.sender,
        expiry=attestation.expiry,
        quoteHash=attestation.quoteHash,
        measurementHash=attestation.measurementHash,
        evidenceHash=attestation.evidenceHash,
    )


@external
def deregisterWorker(worker_key: address):
    """
    @notice Deregister one of msg.sender's workers; its collateral starts cooling for
            `cooldown` seconds (the provider's cooldown restarts) and is then released.
    @param worker_key The worker's attested key.
    """
    w: Worker = self._unpack(self.workers[worker_key].head)
    assert w.status == STATUS_REGISTERED, "registry: worker not registered"
    assert w.provider == msg.sender, "registry: not the worker's provider"
    w.collateral = self.workers[worker_key].collateral
    p: Provider = self.providers[msg.sender]
    shortfall: uint256 = p.required - p.locked
    moved: uint256 = w.collateral - min(w.collateral, shortfall)
    p.required -= w.collateral
    p.locked -= moved
    p.cooling += moved
    p.cooldownEnd = convert(block.timestamp, uint64) + self.cooldown
    p.workers -= 1
    self.providers[msg.sender] = p
    w.status = STATUS_DEREGISTERED
    self.workers[worker_key].head = self._pack(w)
    log WorkerDeregistered(worker=worker_key, provider=msg.sender, cooling=moved, cooldownEnd=p.cooldownEnd)


# --- governance ------------------------------------------------------------------

@external
def slash(provider_: address, amount: uint256, reason: String[MAX_REASON]):
    """
    @notice Move `amount` of a provider's collateral to the treasury, with a reason.
    @dev Takes free collateral first, then cooling, then locked; slashing into locked
         leaves a shortfall that deactivates the provider's workers until refilled.
         A slash is governance's verdict, so it also ends a freeze of the provider (the
         guardian's cool-off starts); a proposal that means to slash several times
         does so in one execution.
    @param provider_ The provider to slash.
    @param amount vPHA shares; at most the provider's total collateral.
    @param reason Why, for the public record.
    """
    ownable._check_owner()
    assert amount > 0, "registry: zero amount"
    p: Provider = self.providers[provider_]
    assert amount <= p.collateral, "registry: exceeds collateral"
    free: uint256 = p.collateral - p.locked - p.cooling
    rest: uint256 = amount - min(amount, free)
    from_cooling: uint256 = min(rest, p.cooling)
    p.cooling -= from_cooling
    p.locked -= rest - from_cooling
    p.collateral -= amount
    self.providers[provider_] = p
    if block.timestamp < convert(self.frozenUntil[provider_], uint256):
        self._end_freeze(provider_)
    assert extcall IVault(vault).transfer(self.treasury, amount, default_return_value=True), "registry: transfer failed"
    log Slashed(provider=provider_, amount=amount, shortfall=p.required - p.locked, reason=reason)


@external
def freeze(provider_: address, reason: String[MAX_REASON]):
    """
    @notice Guardian only: stop a provider's withdrawals and releases for `maxFreeze`
            seconds, so that a slash governance is voting on cannot be dodged.
    @dev Refused while the provider is frozen, and for `maxFreeze` seconds after its
         last freeze ended (the cool-off), so the guardian cannot hold collateral for
         good by freezing again and again.
    @param provider_ A registered provider.
    @param reason Why, for the public record (for instance the proposal id).
    """
    assert msg.sender == self.guardian, "registry: caller is not the guardian"
    assert self.providers[provider_].registered, "registry: provider not registered"
    until: uint256 = convert(self.frozenUntil[provider_], uint256)
    assert block.timestamp >= until, "registry: provider already frozen"
    window: uint64 = self.maxFreeze
    if until != 0:
        assert block.timestamp >= until + convert(window, uint256), "registry: freeze cool-off not over"
    end: uint64 = convert(block.timestamp, uint64) + window
    self.frozenUntil[provider_] = end
    log ProviderFrozen(provider=provider_, guardian=msg.sender, frozenUntil=end, reason=reason)


@external
def unfreeze(provider_: address):
    """
    @notice Governance (or the guardian, lifting its own freeze) ends a provider's
            freeze before it lapses; the guardian's cool-off starts now.
    @param provider_ A frozen provider.
    """
    assert msg.sender == ownable.owner or msg.sender == self.guardian, "registry: caller is not the owner or guardian"
    assert block.timestamp < convert(self.frozenUntil[provider_], uint256), "registry: provider not frozen"
    self._end_freeze(provider_)


@external
def setGuardian(guardian_: address):
    """
    @notice Appoint the guardian who may freeze providers; the zero address means none.
    @dev Replacing the guardian does not lift freezes it made.
    @param guardian_ The new guardian, or the zero address.
    """
    ownable._check_owner()
    self.guardian = guardian_
    log GuardianChanged(guardian=guardian_)


@external
def setMaxFreeze(max_freeze: uint64):
    """
    @notice Set how long a guardian freeze lasts (and the cool-off before a provider can
            be frozen again), in seconds. It should cover the governance path (voting
            delay + voting period + timelock delay) so a freeze outlasts a slash vote.
    @dev Freezes in force keep the end they were given.
    @param max_freeze More than zero, at most 90 days.
    """
    ownable._check_owner()
    assert max_freeze > 0, "registry: zero max freeze"
    assert max_freeze <= MAX_FREEZE_LIMIT, "registry: max freeze too long"
    self.maxFreeze = max_freeze
    log MaxFreezeChanged(maxFreeze=max_freeze)


@external
def setOsImageAllowed(image_hash: bytes32, allowed: bool):
    """
    @notice Allow or revoke an OS image hash; workers on a revoked image are inactive.
    @param image_hash The OS image hash attesters report.
    @param allowed True to allow, False to revoke.
    """
    ownable._check_owner()
    self.osImageAllowed[image_hash] = allowed
    log AllowlistChanged(kind="osImage", item=image_hash, allowed=allowed)


@external
def setComposeHashAllowed(compose_hash: bytes32, allowed: bool):
    """
    @notice Allow or revoke an app compose hash; workers on a revoked one are inactive.
    @param compose_hash The docker-compose (app) hash attesters report.
    @param allowed True to allow, False to revoke.
    """
    ownable._check_owner()
    self.composeHashAllowed[compose_hash] = allowed
    log AllowlistChanged(kind="compose", item=compose_hash, allowed=allowed)


@external
def setAcceleratorType(model_id: uint8, collateral: uint256, weight_bps: uint256):
    """
    @notice Define or change an accelerator type (0 CPU-only TDX, 1 H100, 2 H200,
            3 B200; other ids may be added). Applies to new registrations' collateral
            and to every worker's reward weight.
    @param model_id The accelerator type id.
    @param collateral vPHA shares required per accelerator (> 0).
    @param weight_bps Reward weight per accelerator in basis points (10,000 = 1.0).
    """
    ownable._check_owner()
    assert collateral > 0, "registry: zero collateral"
    self._set_accelerator(model_id, collateral, weight_bps)


@external
def disableAcceleratorType(model_id: uint8):
    """
    @notice Refuse new registrations of an accelerator type; registered workers keep
            their collateral and weight.
    @param model_id The accelerator type id.
    """
    ownable._check_owner()
    assert self.accelerators[model_id].enabled, "registry: unknown accelerator type"
    self.accelerators[model_id].enabled = False
    t: AcceleratorType = self.accelerators[model_id]
    log AcceleratorTypeChanged(gpuModel=model_id, collateral=t.collateral, weightBps=t.weightBps, enabled=False)


@external
def setCooldown(cooldown_: uint64):
    """
    @notice Set the cooldown of deregistered workers' collateral, in seconds.
    @param cooldown_ At most one year.
    """
    ownable._check_owner()
    assert cooldown_ <= MAX_COOLDOWN, "registry: cooldown too long"
    self.cooldown = cooldown_
    log CooldownChanged(cooldown=cooldown_)


@external
def setTreasury(treasury_: address):
    """
    @notice Set where slashed collateral goes.
    @param treasury_ A non-zero address.
    """
    ownable._check_owner()
    assert treasury_ != empty(address), "registry: zero treasury"
    self.treasury = treasury_
    log TreasuryChanged(treasury=treasury_)


# --- views -----------------------------------------------------------------------

@view
@external
def worker(worker_key: address) -> Worker:
    """
    @notice A worker's record: provider, model, count, expiry, evidence hash, quote
            hash, measurement hash, status (0 none, 1 registered, 2 deregistered),
            OS image hash, compose hash and locked collateral.
    @param worker_key The worker's attested key.
    """
    return self._load(worker_key)


@view
@external
def provider(provider_: address) -> Provider:
    """
    @notice A provider's collateral: registered, total, locked, cooling, cooldown end,
            required by its workers, and its number of registered workers.
    @param provider_ The provider address.
    """
    return self.providers[provider_]


@view
@external
def freeCollateral(provider_: address) -> uint256:
    """
    @notice Collateral the provider could withdraw now (cooling counted once released);
            0 while the provider is frozen.
    @param provider_ The provider address.
    """
    if block.timestamp < convert(self.frozenUntil[provider_], uint256):
        return 0
    p: Provider = self.providers[provider_]
    free: uint256 = p.collateral - p.locked - p.cooling
    if p.cooling > 0 and block.timestamp >= convert(p.cooldownEnd, uint256):
        free += p.cooling
    return free


@view
@external
def isFrozen(provider_: address) -> bool:
    """
    @notice True while a guardian freeze stops the provider's withdrawals and releases.
    @param provider_ The provider address.
    """
    return block.timestamp < convert(self.frozenUntil[provider_], uint256)


@view
@external
def isActive(worker_key: address) -> bool:
    """
    @notice True while the worker is registered, its attestation has not expired, its
            OS image and compose hash are still allowed, and its provider has no
            collateral shortfall.
    @param worker_key The worker's attested key.
    """
    return self._is_active(worker_key)


@view
@external
def rewardWeight(worker_key: address) -> uint256:
    """
    @notice The worker's reward weight in basis points: weight(model) * max(count, 1)
            while active, 0 otherwise.
    @param worker_key The worker's attested key.
    """
    if not self._is_active(worker_key):
        return 0
    w: Worker = self._unpack(self.workers[worker_key].head)
    return self.accelerators[w.gpuModel].weightBps * max(convert(w.gpuCount, uint256), 1)


@view
@external
def acceleratorType(model_id: uint8) -> AcceleratorType:
    """
    @notice Collateral per accelerator (vPHA shares), weight (bps) and whether new
            registrations are accepted.
    @param model_id The accelerator type id.
    """
    return self.accelerators[model_id]


@view
@external
def requiredCollateral(model_id: uint8, gpu_count: uint16) -> uint256:
    """
    @notice Collateral a new worker of this type and count would lock.
    @param model_id The accelerator type id.
    @param gpu_count The number of accelerators.
    """
    return self.accelerators[model_id].collateral * max(convert(gpu_count, uint256), 1)


@view
@external
def attestationDigest(attestation: WorkerAttestation) -> bytes32:
    """
    @notice The EIP-712 digest attesters sign, for off-chain cross-checks.
    @param attestation The worker attestation.
    """
    return self._digest(attestation)


@view
@external
def domainSeparator() -> bytes32:
    """
    @notice The EIP-712 domain separator ("veil ComputeRegistry", "1", chain, this).
    """
    return eip712._domain_separator_v4()


# --- internal --------------------------------------------------------------------

@internal
def _set_accelerator(model_id: uint8, collateral: uint256, weight_bps: uint256):
    self.accelerators[model_id] = AcceleratorType(collateral=collateral, weightBps=weight_bps, enabled=True)
    log AcceleratorTypeChanged(gpuModel=model_id, collateral=collateral, weightBps=weight_bps, enabled=True)


@view
@internal
def _check_not_frozen(provider_: address):
    assert block.timestamp >= convert(self.frozenUntil[provider_], uint256), "registry: provider frozen"


@internal
def _end_freeze(provider_: address):
    self.frozenUntil[provider_] = convert(block.timestamp, uint64)
    log ProviderUnfrozen(provider=provider_, by=msg.sender)


@internal
def _release(provider_: address):
    p: Provider = self.providers[provider_]
    if p.cooling == 0 or block.timestamp < convert(p.cooldownEnd, uint256):
        return
    amount: uint256 = p.cooling
    self.providers[provider_].cooling = 0
    log CollateralReleased(provider=provider_, amount=amount)


@view
@internal
def _digest(a: WorkerAttestation) -> bytes32:
    return eip712._hash_typed_data_v4(
        keccak256(
            abi_encode(
                ATTESTATION_TYPEHASH,
                a.worker,
                a.provider,
                a.quoteHash,
                a.measurementHash,
                a.osImageHash,
                a.composeHash,
                a.gpuModel,
                a.gpuCount,
                a.expiry,
                a.evidenceHash,
            )
        )
    )


@view
@internal
def _check_attestation(a: WorkerAttestation, signatures: DynArray[attester_set.Signature, attester_set.MAX_SIGNATURES]):
    assert a.provider == msg.sender, "registry: attestation is for another provider"
    assert a.worker != empty(address), "registry: zero worker"
    assert convert(a.expiry, uint256) > block.timestamp, "registry: attestation expired"
    assert self.osImageAllowed[a.osImageHash], "registry: os image not allowed"
    assert self.composeHashAllowed[a.composeHash], "registry: compose hash not allowed"
    # The registry never changes the attester set's scope, so the empty scope is current
    # and the check cannot return False: it reverts on every refusal.
    assert attester_set._check(empty(bytes32), self._digest(a), signatures) != 0


@view
@internal
def _is_active(worker_key: address) -> bool:
    w: Worker = self._unpack(self.workers[worker_key].head)
    if w.status != STATUS_REGISTERED:
        return False
    if convert(w.expiry, uint256) <= block.timestamp:
        return False
    if not self.osImageAllowed[self.workers[worker_key].osImageHash]:
        return False
    if not self.composeHashAllowed[self.workers[worker_key].composeHash]:
        return False
    p: Provider = self.providers[w.provider]
    return p.locked >= p.required


@pure
@internal
def _pack(w: Worker) -> uint256:
    return (
        convert(w.provider, uint256)
        | (convert(w.gpuModel, uint256) << 160)
        | (convert(w.gpuCount, uint256) << 168)
        | (convert(w.expiry, uint256) << 184)
        | (convert(w.status, uint256) << 248)
    )


@pure
@internal
def _unpack(head: uint256) -> Worker:
    """Only the head fields; hashes and collateral stay empty."""
    return Worker(
        provider=convert(convert(head & convert(max_value(uint160), uint256), uint160), address),
        gpuModel=convert((head >> 160) & 255, uint8),
        gpuCount=convert((head >> 168) & 65535, uint16),
        expiry=convert((head >> 184) & convert(max_value(uint64), uint256), uint64),
        evidenceHash=empty(bytes32),
        quoteHash=empty(bytes32),
        measurementHash=empty(bytes32),
        status=convert(head >> 248, uint8),
        osImageHash=empty(bytes32),
        composeHash=empty(bytes32),
        collateral=0,
    )


@view
@internal
def _load(worker_key: address) -> Worker:
    slot: WorkerSlot = self.workers[worker_key]
    w: Worker = self._unpack(slot.head)
    w.evidenceHash = slot.evidenceHash
    w.quoteHash = slot.quoteHash
    w.measurementHash = slot.measurementHash
    w.osImageHash = slot.osImageHash
    w.composeHash = slot.composeHash
    w.collateral = slot.collateral
    return w


@internal
def _store(worker_key: address, w: Worker):
    self.workers[worker_key] = WorkerSlot(
        head=self._pack(w),
        evidenceHash=w.evidenceHash,
        quoteHash=w.quoteHash,
        measurementHash=w.measurementHash,
        osImageHash=w.osImageHash,
        composeHash=w.composeHash,
        collateral=w.collateral,
    )
