# pragma version ~=0.4.3
# pragma nonreentrancy on
"""
@title veil Market: per-second leases paid from a PHA escrow
@custom:contract-name Market
@license MIT
@notice Customers deposit PHA into the escrow (`deposit`, or `depositWithPermit` with an
        EIP-2612 signature instead of an approval) and fund one lease per deployment from
        that free balance. A lease pays its provider a fixed rate in wei per second, taken
        from a governed price list per instance type when the lease opens. Billing is
        lazy: nothing moves until someone (anyone) settles a lease, and the amount owed
        depends only on the clock, never on when or in which order leases are settled.
        A provider collects the earnings of many leases in one transaction.

        Runway and pause. A lease keeps a prepaid shutdown window: the last `window`
        seconds of its funding pay the provider for stopping the app. When the runway
        (funded seconds minus the window) reaches zero the lease is paused, not closed:
        the worker stops the app and keeps its disk. Billing ends when the funds are
        spent (`window` seconds after the pause); a paused lease is billed for nothing
        more. A top-up that gives it runway again resumes it; once the governed grace
        period has passed since the pause, anyone may close it. Closing (by the customer
        or the provider at any time) refunds the unspent balance to the customer at once.

        A governed protocol fee (basis points) of every second paid goes to the treasury.
        Every parameter belongs to the owner, the timelock.

        Per-token usage. A lease may also pay for tokens metered by an AI gateway that
        runs inside the lease's CVM. The gateway's signing key is generated in the CVM and
        bound to its attestation; a customer who has verified that attestation (and the
        price table in its compose) authorises the key's address as the lease's meter with
        `setMeter`, capped in wei per token. The meter signs cumulative EIP-712 `Usage`
        vouchers (tokens and wei since `setMeter`); anyone, normally the provider, submits
        the latest one to `chargeUsage`, which moves the difference since the last charge
        from the lease balance to the provider. Each voucher may add at most the cap times
        the tokens it adds over the voucher before it, so what a meter charges never
        exceeds the cap times the tokens it signed. The provider cannot forge a voucher (it
        never holds the meter key), the customer cannot deny a voucher charged, and a
        mispriced CVM is bounded by the cap. Usage not yet charged when the customer
        closes the lease, changes its meter or lowers the cap below the meter's prices is
        not charged: providers submit vouchers often (a veil worker does every few
        minutes), which bounds what they risk to the usage of one interval.
@dev Exactness. A lease snapshots its rate and its fee per second (rate * feeBps / 10000,
     rounded down, once) when it opens, so a settlement of n seconds pays exactly
     n * rate, of which n * feeRate is fee: amounts are linear in seconds and no rounding
     depends on how a period is cut into settlements. Later changes of prices, fee or
     window apply to leases opened afterwards.

     Conservation: PHA held == sum(lease balances) + sum(provider earnings, net and fee)
     + feesAccrued + sum(free balances). Settling and charging usage move PHA from a lease
     balance to its provider's earnings; every other function moves PHA across the
     contract boundary by exactly the amount it credits or debits.

     A lease's id is keccak256(customer, deployment), so one deployment has one lease ever
     (which also makes an `OpenLease` signature single-use) and opening writes no index.
     Storage per lease is three packed slots, so that opening, settling and a provider's
     batch withdrawal stay cheap: head = customer | lastSettled << 160 (64 bits, as the
     block header's timestamp) | status << 224 | window << 232 (24 bits > MAX_WINDOW); parties = provider | feeRate << 160; money = balance | rate << 128.
     A meter is two slots: meter | maxTokenRate << 160 (96 bits > MAX_RATE), and
     charged | tokens << 128 (112 bits) | feeBps << 240 (the fee snapshotted when the
     meter was set, as a lease snapshots its own at open) | _UNPAID, where tokens are the
     last voucher's and charged is the wei charged so far. The last voucher's wei are
     charged plus, while _UNPAID is set, a third slot holding the part not charged yet;
     only then is that slot read or written, so a charge paid in full touches two slots.
     A provider's earnings are one slot: net | fee << 128 | 1 << 255 (a marker that keeps
     the slot non-zero once used, so credits after a withdrawal stay cheap); the fee half
     moves to feesAccrued when the provider withdraws or anyone calls `collectFees`.
"""

from ethereum.ercs import IERC20
from snekmate.auth import ownable
from snekmate.utils import ecdsa
from snekmate.utils import eip712_domain_separator as eip712

initializes: ownable
initializes: eip712

exports: (
    ownable.owner,
    ownable.transfer_ownership,
    eip712.eip712Domain,
)


# --- constants -------------------------------------------------------------------

BPS: constant(uint256) = 10_000
MAX_FEE_BPS: constant(uint256) = 2_000
MAX_GRACE: constant(uint256) = 90 * 86400
MAX_WINDOW: constant(uint256) = 86400
# 1e27 wei/s is the whole PHA supply per second: no real price is near it, and it keeps
# rate and feeRate inside their 128 and 96 bits.
MAX_RATE: constant(uint256) = 10**27
MAX_BATCH: constant(uint256) = 256

STATUS_NONE: constant(uint8) = 0
STATUS_BILLING: constant(uint8) = 1
STATUS_STOPPED: constant(uint8) = 2
STATUS_CLOSED: constant(uint8) = 3

# What `state` answers (what a worker acts on).
STATE_NONE: constant(uint8) = 0
STATE_RUNNING: constant(uint8) = 1
STATE_PAUSED: constant(uint8) = 2
STATE_CLOSED: constant(uint8) = 3

_MASK64: constant(uint256) = (1 << 64) - 1
_STATUS_SHIFT: constant(uint256) = 224
_WINDOW_SHIFT: constant(uint256) = 232
_MASK128: constant(uint256) = (1 << 128) - 1
_MASK127: constant(uint256) = (1 << 127) - 1
# Set in a provider's earnings slot from its first credit on, so that the slot never
# returns to zero: a withdrawal leaves the marker, and the next credit rewrites a non-zero
# slot (2,900 gas) instead of filling an empty one (20,000).
_TOUCHED: constant(uint256) = 1 << 255
_MASK160: constant(uint256) = (1 << 160) - 1
_MASK112: constant(uint256) = (1 << 112) - 1
_FEE_SHIFT: constant(uint256) = 240
_MASK15: constant(uint256) = (1 << 15) - 1
# Set in a meter's charged slot while the last voucher is not charged in full; the rest
# is then in _unpaid.
_UNPAID: constant(uint256) = 1 << 255

OPEN_TYPEHASH: public(constant(bytes32)) = keccak256(
    "OpenLease(address customer,address provider,bytes32 deployment,bytes32 instanceType,uint256 amount,uint256 maxRate,uint256 deadline)"
)
USAGE_TYPEHASH: public(constant(bytes32)) = keccak256(
    "Usage(uint256 leaseId,address meter,uint256 tokens,uint256 amount)"
)
_PERMIT_SELECTOR: constant(bytes4) = method_id(
    "permit(address,address,uint256,uint256,uint8,bytes32,bytes32)", output_type=bytes4
)


# --- types -----------------------------------------------------------------------

struct Lease:
    customer: address
    provider: address
    rate: uint256
    feeRate: uint256
    balance: uint256
    lastSettled: uint256
    window: uint256
    status: uint8

struct AutoTopUp:
    threshold: uint256
    amount: uint256
    cap: uint256

# A lease as it would be after a settlement now, and what that settlement bills.
struct Projection:
    status: uint8
    last: uint256
    balance: uint256
    billed: uint256


# --- events ----------------------------------------------------------------------

event Deposited:
    customer: indexed(address)
    amount: uint256

event Withdrawn:
    customer: indexed(address)
    amount: uint256

event LeaseOpened:
    lease: indexed(uint256)
    customer: indexed(address)
    provider: indexed(address)
    deployment: bytes32
    instanceType: bytes32
    rate: uint256
    amount: uint256

event ToppedUp:
    lease: indexed(uint256)
    amount: uint256
    resumed: bool

event Settled:
    lease: indexed(uint256)
    seconds: uint256
    amount: uint256

event BillingStopped:
    lease: indexed(uint256)
    at: uint256

event LeaseClosed:
    lease: indexed(uint256)
    refund: uint256
    closer: address

event EarningsWithdrawn:
    provider: indexed(address)
    amount: uint256

event FeesCollected:
    treasury: indexed(address)
    amount: uint256

event MeterSet:
    leaseId: indexed(uint256)
    meter: indexed(address)
    maxTokenRate: uint256

event UsageCharged:
    leaseId: indexed(uint256)
    provider: indexed(address)
    tokens: uint256
    amount: uint256
    fee: uint256

event AutoTopUpSet:
    customer: indexed(address)
    threshold: uint256
    amount: uint256
    cap: uint256

event PriceSet:
    instanceType: indexed(bytes32)
    rate: uint256

event FeeSet:
    feeBps: uint256

event TreasurySet:
    treasury: indexed(address)

event GracePeriodSet:
    gracePeriod: uint256

event ShutdownWindowSet:
    window: uint256


# --- storage ---------------------------------------------------------------------

pha: public(immutable(IERC20))

treasury: public(address)
feeBps: public(uint256)
gracePeriod: public(uint256)
shutdownWindow: public(uint256)
priceOf: public(HashMap[bytes32, uint256])

freeBalance: public(HashMap[address, uint256])
autoTopUpOf: public(HashMap[address, AutoTopUp])
feesAccrued: public(uint256)

_heads: HashMap[uint256, uint256]
_parties: HashMap[uint256, uint256]
_money: HashMap[uint256, uint256]
_earnings: HashMap[address, uint256]
_meters: HashMap[uint256, uint256]
_charged: HashMap[uint256, uint256]
_unpaid: HashMap[uint256, uint256]


@deploy
def __init__(pha_: address, owner_: address, treasury_: address):
    """
    @notice Deploy over PHA; `owner_` is the timelock in a deployment. Defaults: fee
            2.5 %, grace 7 days, shutdown window 5 minutes, no instance types priced.
    @param pha_ The PHA token the escrow holds.
    @param owner_ The governance address that sets every parameter.
    @param treasury_ Where protocol fees go.
    """
    assert pha_ != empty(address), "market: zero token"
    assert owner_ != empty(address), "market: zero owner"
    assert treasury_ != empty(address), "market: zero treasury"
    ownable.__init__()
    eip712.__init__("veil Market", "1")
    ownable._transfer_ownership(owner_)
    pha = IERC20(pha_)
    self.treasury = treasury_
    self.feeBps = 250
    self.gracePeriod = 7 * 86400
    self.shutdownWindow = 300


# --- customer escrow -------------------------------------------------------------

@external
def deposit(amount: uint256):
    """
    @notice Move `amount` PHA from the caller (approve first) into its free balance.
    @param amount The amount in wei.
    """
    self._deposit(msg.sender, amount)


@external
def depositWithPermit(amount: uint256, deadline: uint256, v: uint8, r: bytes32, s: bytes32):
    """
    @notice Deposit with an EIP-2612 permit signed by the caller instead of a separate
            approval transaction.
    @dev A failed permit is ignored: someone may have submitted the same signature to
         PHA first (which sets the same allowance), and the transfer below still fails
         if no allowance covers the deposit.
    @param amount The amount in wei (also the permitted allowance).
    @param deadline The permit's deadline.
    @param v Signature v.
    @param r Signature r.
    @param s Signature s.
    """
    permitted: bool = raw_call(
        pha.address,
        abi_encode(msg.sender, self, amount, deadline, v, r, s, method_id=_PERMIT_SELECTOR),
        revert_on_failure=False,
    )
    self._deposit(msg.sender, amount)


@external
def withdraw(amount: uint256):
    """
    @notice Take `amount` of the caller's free balance (what no lease holds) back.
    @param amount The amount in wei.
    """
    free: uint256 = self.freeBalance[msg.sender]
    assert amount != 0, "market: zero amount"
    assert free >= amount, "market: amount exceeds free balance"
    self.freeBalance[msg.sender] = unsafe_sub(free, amount)
    extcall pha.transfer(msg.sender, amount)
    log Withdrawn(customer=msg.sender, amount=amount)


@external
def setAutoTopUp(threshold: uint256, amount: uint256, cap: uint256):
    """
    @notice Let anyone top up the caller's leases from its wallet: when a lease's runway
            is below `threshold` seconds, `autoTopUp` moves `amount` (or what is left of
            `cap`) from the caller's wallet through its PHA allowance to the market.
            `cap` is the total that auto top-ups may still take; (0, 0, 0) turns it off.
    @param threshold Runway in seconds below which a top-up is allowed.
    @param amount PHA per top-up, in wei.
    @param cap Total PHA that auto top-ups may take from now on, in wei.
    """
    self.autoTopUpOf[msg.sender] = AutoTopUp(threshold=threshold, amount=amount, cap=cap)
    log AutoTopUpSet(customer=msg.sender, threshold=threshold, amount=amount, cap=cap)


# --- leases ----------------------------------------------------------------------

@external
def openLease(
    provider: address, deployment: bytes32, instance_type: bytes32, amount: uint256, max_rate: uint256
) -> uint256:
    """
    @notice Open the caller's lease for `deployment` on `provider`, funded with `amount`
            from its free balance, at the current price of `instance_type`.
    @param provider Who is paid.
    @param deployment The deployment's id; one lease per customer and deployment, ever
           (the lease id is `leaseId(customer, deployment)`).
    @param instance_type The price-list entry.
    @param amount The initial funding; must buy more seconds than the shutdown window.
    @param max_rate The highest rate (wei/s) the customer accepts.
    @return uint256 The lease id.
    """
    return self._open(msg.sender, provider, deployment, instance_type, amount, max_rate)


@external
def openLeaseFor(
    customer: address,
    provider: address,
    deployment: bytes32,
    instance_type: bytes32,
    amount: uint256,
    max_rate: uint256,
    deadline: uint256,
    signature: Bytes[65],
) -> uint256:
    """
    @notice Open a lease for `customer` with its EIP-712 `OpenLease` signature, so a
            control plane can submit it. The signature is used at most once: a
            deployment has one lease ever.
    @param customer The signer, whose free balance funds the lease.
    @param provider Who is paid.
    @param deployment The deployment's id.
    @param instance_type The price-list entry.
    @param amount The initial funding.
    @param max_rate The highest rate (wei/s) the customer accepts.
    @param deadline Last valid block timestamp of the signature.
    @param signature The customer's 65-byte signature.
    @return uint256 The lease id.
    """
    assert block.timestamp <= deadline, "market: signature expired"
    digest: bytes32 = self._open_digest(
        customer, provider, deployment, instance_type, amount, max_rate, deadline
    )
    assert len(signature) == 65, "market: signature must be 65 bytes"
    signer: address = ecdsa._recover_sig(digest, signature)
    assert signer == customer, "market: signer is not the customer"
    return self._open(customer, provider, deployment, instance_type, amount, max_rate)


@external
def topUp(lease_id: uint256, amount: uint256):
    """
    @notice Add `amount` from the caller's free balance to its lease. A paused lease
            resumes; a top-up of a paused lease that would not give it runway again
            is refused, so that no top-up is spent on a stopped app.
    @param lease_id The lease.
    @param amount The amount in wei.
    """
    assert self._customer(lease_id) == msg.sender, "market: caller is not the lease's customer"
    free: uint256 = self.freeBalance[msg.sender]
    assert free >= amount, "market: amount exceeds free balance"
    self.freeBalance[msg.sender] = unsafe_sub(free, amount)
    self._credit(lease_id, amount)


@external
def autoTopUp(lease_id: uint256):
    """
    @notice Anyone may top up a lease whose runway is below its customer's auto top-up
            threshold, from the customer's wallet (allowance) within the customer's cap.
    @param lease_id The lease.
    """
    customer: address = self._customer(lease_id)
    assert customer != empty(address), "market: no such lease"
    config: AutoTopUp = self.autoTopUpOf[customer]
    assert config.amount != 0, "market: auto top-up is off"
    assert self._runway(lease_id) < config.threshold, "market: runway above the threshold"
    pull: uint256 = min(config.amount, config.cap)
    assert pull != 0, "market: auto top-up cap used up"
    self.autoTopUpOf[customer].cap = unsafe_sub(config.cap, pull)
    extcall pha.transferFrom(customer, self, pull)
    self._credit(lease_id, pull)


@external
def settle(lease_id: uint256):
    """
    @notice Bill a lease up to now (anyone may call): move rate * seconds, at most its
            balance, to the provider's earnings. The outcome does not depend on when
            or how often it is called.
    @param lease_id The lease.
    """
    assert self._heads[lease_id] != 0, "market: no such lease"
    provider: address = empty(address)
    net: uint256 = 0
    fee: uint256 = 0
    provider, net, fee = self._settle(lease_id)
    if net | fee != 0:
        self._earn(provider, net, fee)


@external
def closeLease(lease_id: uint256):
    """
    @notice Close a lease and refund its unspent balance to the customer's wallet at
            once. The customer or the provider may close it any time; anyone may close a
            lease that has stayed paused for the grace period.
    @param lease_id The lease.
    """
    head: uint256 = self._heads[lease_id]
    assert head != 0, "market: no such lease"
    customer: address = convert(head & _MASK160, address)
    provider: address = empty(address)
    net: uint256 = 0
    fee: uint256 = 0
    provider, net, fee = self._settle(lease_id)
    status: uint8 = self._status(self._heads[lease_id])
    assert status != STATUS_CLOSED, "market: lease is closed"
    if msg.sender != customer and msg.sender != provider:
        assert block.timestamp >= self._closable_at(lease_id), "market: grace period not over"
    if net | fee != 0:
        self._earn(provider, net, fee)
    money: uint256 = self._money[lease_id]
    refund: uint256 = money & _MASK128
    self._money[lease_id] = money & ~_MASK128
    head = self._heads[lease_id]
    self._heads[lease_id] = (head & ~(255 << _STATUS_SHIFT)) | (
        convert(STATUS_CLOSED, uint256) << _STATUS_SHIFT
    )
    if refund != 0:
        extcall pha.transfer(customer, refund)
    log LeaseClosed(lease=lease_id, refund=refund, closer=msg.sender)


# --- per-token usage -------------------------------------------------------------

@external
def setMeter(lease_id: uint256, meter: address, max_token_rate: uint256):
    """
    @notice Authorise `meter` (the address of a gateway key the customer has verified in
            the lease's attested CVM) to sign usage vouchers for the caller's lease, at
            most `max_token_rate` wei per token; the zero address turns metering off.
            A new meter counts from zero (a restarted gateway has a new key), so its
            counters and the fee it pays (the governed fee now) start afresh; the
            same meter again only changes the cap and keeps its counters, so that its
            vouchers are never charged twice.
    @dev Usage the previous meter signed but nobody charged yet can no longer be charged.
         Turning metering off forgets the counters, so a key authorised again later
         would count from zero against its old vouchers: authorise a fresh key instead.
    @param lease_id The caller's lease, not closed.
    @param meter The meter's address, or empty(address) to stop per-token charges.
    @param max_token_rate The most a voucher may charge per token, in wei (at most 1e27).
    """
    head: uint256 = self._heads[lease_id]
    assert convert(head & _MASK160, address) == msg.sender, "market: caller is not the lease's customer"
    assert self._status(head) != STATUS_CLOSED, "market: lease is closed"
    assert max_token_rate <= MAX_RATE, "market: rate too high"
    if meter == empty(address):
        self._meters[lease_id] = 0
        self._charged[lease_id] = 0
        log MeterSet(leaseId=lease_id, meter=meter, maxTokenRate=0)
        return
    current: uint256 = self._meters[lease_id]
    self._meters[lease_id] = convert(meter, uint256) | (max_token_rate << 160)
    if current & _MASK160 != convert(meter, uint256):
        self._charged[lease_id] = self.feeBps << _FEE_SHIFT
    log MeterSet(leaseId=lease_id, meter=meter, maxTokenRate=max_token_rate)


@external
def chargeUsage(lease_id: uint256, tokens: uint256, amount: uint256, signature: Bytes[65]) -> uint256:
    """
    @notice Charge a lease for metered tokens (anyone may call; normally the provider):
            settle its seconds, then move what the meter's voucher adds since the last
            charge from the lease balance to the provider's earnings, the fee part to the
            treasury's account.
    @dev The cap applies voucher to voucher: the amount may add at most the cap times
         the tokens added since the last voucher accepted, whether or not that one was
         charged in full, so the wei a meter charges never exceed the cap times its tokens.
         The balance keeps the lease's shutdown window (at least one second) for
         per-second billing, so a charge can pause the lease but never takes what its
         shutdown is paid with. When the rest cannot pay the whole difference, the charge
         takes what it can and keeps the remainder due, so the same voucher (or a later
         one) charges it after a top-up. Submitting the voucher already charged in full
         charges 0 and changes nothing (a keeper racing the provider loses only gas); an
         older voucher reverts. The fee is floor(charged * feeBps / 10000) over the
         meter's cumulative charges, at the fee snapshotted by `setMeter`, so it does not
         depend on how usage is cut into charges. `UsageCharged` reports the tokens the
         voucher adds and the wei this call took, so a statement's token and wei columns
         each sum to what the meter signed and what was charged.
    @param lease_id The lease.
    @param tokens Tokens (prompt and completion) metered since `setMeter`, cumulative.
    @param amount Wei owed for them since `setMeter`, cumulative.
    @param signature The meter's 65-byte EIP-712 signature over `Usage(lease_id, meter,
           tokens, amount)` in this market's domain.
    @return uint256 The wei charged by this call.
    """
    meter_slot: uint256 = self._meters[lease_id]
    meter: address = convert(meter_slot & _MASK160, address)
    assert meter != empty(address), "market: no meter"
    assert self._status(self._heads[lease_id]) != STATUS_CLOSED, "market: lease is closed"
    assert len(signature) == 65, "market: signature must be 65 bytes"
    digest: bytes32 = self._usage_digest(lease_id, meter, tokens, amount)
    assert ecdsa._recover_sig(digest, signature) == meter, "market: signer is not the meter"
    assert tokens <= _MASK112, "market: tokens too large"
    charged: uint256 = self._charged[lease_id]
    charged_amount: uint256 = charged & _MASK128
    last_tokens: uint256 = (charged >> 128) & _MASK112
    last_amount: uint256 = charged_amount
    if charged & _UNPAID != 0:
        last_amount += self._unpaid[lease_id]
    assert tokens >= last_tokens, "market: tokens below the last voucher"
    assert amount >= last_amount, "market: amount below the last voucher"
    new_tokens: uint256 = unsafe_sub(tokens, last_tokens)
    assert unsafe_sub(amount, last_amount) <= new_tokens * (meter_slot >> 160), "market: amount above tokens times the cap"
    due: uint256 = unsafe_sub(amount, charged_amount)
    if new_tokens == 0 and due == 0:
        return 0

    provider: address = empty(address)
    net: uint256 = 0
    fee: uint256 = 0
    provider, net, fee = self._settle(lease_id)
    money: uint256 = self._money[lease_id]
    balance: uint256 = money & _MASK128
    chargeable: uint256 = balance
    head: uint256 = self._heads[lease_id]
    if self._status(head) == STATUS_BILLING:
        rate: uint256 = money >> 128
        keep: uint256 = min(balance // rate, max(head >> _WINDOW_SHIFT, 1))
        chargeable = balance - keep * rate
    paid: uint256 = min(due, chargeable)
    bps: uint256 = (charged >> _FEE_SHIFT) & _MASK15
    # Supply below 2**128 keeps the cumulative amount inside its 128 bits, as balances.
    new_amount: uint256 = charged_amount + paid
    usage_fee: uint256 = new_amount * bps // BPS - charged_amount * bps // BPS
    slot: uint256 = new_amount | (tokens << 128) | (bps << _FEE_SHIFT)
    if paid < due:
        slot |= _UNPAID
        self._unpaid[lease_id] = due - paid
    elif charged & _UNPAID != 0:
        self._unpaid[lease_id] = 0
    self._charged[lease_id] = slot
    if paid != 0:
        self._money[lease_id] = money - paid
    net += paid - usage_fee
    fee += usage_fee
    if net | fee != 0:
        self._earn(provider, net, fee)
    if paid | new_tokens != 0:
        log UsageCharged(
            leaseId=lease_id, provider=provider, tokens=new_tokens, amount=paid, fee=usage_fee
        )
    return paid


# --- providers and fees ----------------------------------------------------------

@external
def withdrawEarnings(lease_ids: DynArray[uint256, MAX_BATCH]) -> uint256:
    """
    @notice Settle the caller's leases in `lease_ids` and pay the caller everything it
            has earned (these and earlier settlements) in one transfer. The fee part
            moves to the treasury's account.
    @param lease_ids Leases of the caller to settle first (may be empty).
    @return uint256 The PHA paid, in wei.
    """
    net_sum: uint256 = 0
    fee_sum: uint256 = 0
    for lease_id: uint256 in lease_ids:
        provider: address = empty(address)
        net: uint256 = 0
        fee: uint256 = 0
        provider, net, fee = self._settle(lease_id)
        assert provider == msg.sender, "market: lease of another provider"
        net_sum += net
        fee_sum += fee
    packed: uint256 = self._earnings[msg.sender]
    net_sum += packed & _MASK128
    fee_sum += (packed >> 128) & _MASK127
    if packed & ~_TOUCHED != 0:
        self._earnings[msg.sender] = _TOUCHED
    if fee_sum != 0:
        self.feesAccrued += fee_sum
    if net_sum != 0:
        extcall pha.transfer(msg.sender, net_sum)
    log EarningsWithdrawn(provider=msg.sender, amount=net_sum)
    return net_sum


@external
def collectFees(providers: DynArray[address, MAX_BATCH]) -> uint256:
    """
    @notice Pay the treasury the accrued fees, including the fee parts still held with
            the listed providers' earnings (anyone may call).
    @param providers Providers whose settled fee parts to include.
    @return uint256 The PHA paid to the treasury, in wei.
    """
    total: uint256 = self.feesAccrued
    for provider: address in providers:
        packed: uint256 = self._earnings[provider]
        fee: uint256 = (packed >> 128) & _MASK127
        if fee != 0:
            self._earnings[provider] = packed & (_MASK128 | _TOUCHED)
            total += fee
    self.feesAccrued = 0
    if total != 0:
        extcall pha.transfer(self.treasury, total)
    log FeesCollected(treasury=self.treasury, amount=total)
    return total


# --- governance ------------------------------------------------------------------

@external
def setPrice(instance_type: bytes32, rate: uint256):
    """
    @notice Set the rate (wei per second) of an instance type for leases opened from now
            on; 0 withdraws the type. Owner (the timelock) only.
    @param instance_type The price-list entry.
    @param rate Wei per second, at most 1e27.
    """
    ownable._check_owner()
    assert rate <= MAX_RATE, "market: rate too high"
    self.priceOf[instance_type] = rate
    log PriceSet(instanceType=instance_type, rate=rate)


@external
def setFeeBps(fee_bps: uint256):
    """
    @notice Set the protocol fee for leases opened from now on. Owner only.
    @param fee_bps Basis points of every payment, at most 2,000 (20 %).
    """
    ownable._check_owner()
    assert fee_bps <= MAX_FEE_BPS, "market: fee too high"
    self.feeBps = fee_bps
    log FeeSet(feeBps=fee_bps)


@external
def setTreasury(treasury_: address):
    """
    @notice Set where fees go. Owner only.
    @param treasury_ The new treasury; not the zero address.
    """
    ownable._check_owner()
    assert treasury_ != empty(address), "market: zero treasury"
    self.treasury = treasury_
    log TreasurySet(treasury=treasury_)


@external
def setGracePeriod(grace: uint256):
    """
    @notice Set how long a paused lease keeps its disk before anyone may close it
            (applies to every lease at once). Owner only.
    @param grace Seconds, at most 90 days.
    """
    ownable._check_owner()
    assert grace <= MAX_GRACE, "market: grace too long"
    self.gracePeriod = grace
    log GracePeriodSet(gracePeriod=grace)


@external
def setShutdownWindow(window: uint256):
    """
    @notice Set the prepaid shutdown window for leases opened from now on. Owner only.
    @param window Seconds, at most one day.
    """
    ownable._check_owner()
    assert window <= MAX_WINDOW, "market: window too long"
    self.shutdownWindow = window
    log ShutdownWindowSet(window=window)


# --- views -----------------------------------------------------------------------

@view
@external
def lease(lease_id: uint256) -> Lease:
    """
    @notice A lease as stored (not settled to now; see `settledLease`).
    @param lease_id The lease.
    @return Lease Its fields; status 0 none, 1 billing, 2 billing stopped, 3 closed.
    """
    return self._unpack(lease_id, self._heads[lease_id], self._money[lease_id])


@view
@external
def settledLease(lease_id: uint256) -> Lease:
    """
    @notice A lease as it would be after a settlement now.
    @param lease_id The lease.
    @return Lease Its fields after settlement.
    """
    head: uint256 = self._heads[lease_id]
    money: uint256 = self._money[lease_id]
    p: Projection = self._project(head, money)
    result: Lease = self._unpack(lease_id, head, money)
    result.balance = p.balance
    result.lastSettled = p.last
    result.status = p.status
    return result


@view
@external
def state(lease_id: uint256) -> uint8:
    """
    @notice What a worker acts on: 1 running, 2 paused (stop the app, keep its disk),
            3 closed (delete it), 0 no such lease.
    @param lease_id The lease.
    @return uint8 The state now.
    """
    status: uint8 = self._status(self._heads[lease_id])
    if status == STATUS_NONE:
        return STATE_NONE
    if status == STATUS_CLOSED:
        return STATE_CLOSED
    if self._runway(lease_id) != 0:
        return STATE_RUNNING
    return STATE_PAUSED


@view
@external
def runway(lease_id: uint256) -> uint256:
    """
    @notice Seconds until the lease pauses (0 if paused or closed).
    @param lease_id The lease.
    @return uint256 Seconds of runway.
    """
    return self._runway(lease_id)


@view
@external
def pausesAt(lease_id: uint256) -> uint256:
    """
    @notice When the lease pauses (or paused) at the funding it has now: the end of its
            funded time minus the shutdown window. 0 for a closed or unknown lease.
    @param lease_id The lease.
    @return uint256 A block timestamp.
    """
    return self._pauses_at(lease_id)


@view
@external
def closableAt(lease_id: uint256) -> uint256:
    """
    @notice From when anyone may close the lease: its pause plus the grace period.
    @param lease_id The lease.
    @return uint256 A block timestamp (0 for a closed or unknown lease).
    """
    return self._closable_at(lease_id)


@view
@external
def earningsOf(provider: address) -> (uint256, uint256):
    """
    @notice A provider's settled earnings not yet withdrawn (settle its leases first to
            include time since their last settlement).
    @param provider The provider.
    @return uint256 Net earnings in wei (paid to the provider).
    @return uint256 Fee part in wei (paid to the treasury).
    """
    packed: uint256 = self._earnings[provider]
    return packed & _MASK128, (packed >> 128) & _MASK127


@pure
@external
def leaseId(customer: address, deployment: bytes32) -> uint256:
    """
    @notice The id of `customer`'s lease for `deployment` (whether opened or not): a
            control plane finds a deployment's lease without an index.
    @param customer The customer.
    @param deployment The deployment's id.
    @return uint256 keccak256(abi.encode(customer, deployment)) as a number.
    """
    return self._lease_id(customer, deployment)


@view
@external
def openDigest(
    customer: address,
    provider: address,
    deployment: bytes32,
    instance_type: bytes32,
    amount: uint256,
    max_rate: uint256,
    deadline: uint256,
) -> bytes32:
    """
    @notice The EIP-712 digest a customer signs for `openLeaseFor`, so a wallet or
            control plane can check what it is about to sign against the contract.
    @param customer The signer.
    @param provider Who is paid.
    @param deployment The deployment's id.
    @param instance_type The price-list entry.
    @param amount The initial funding.
    @param max_rate The highest rate (wei/s) the customer accepts.
    @param deadline Last valid block timestamp of the signature.
    @return bytes32 The digest.
    """
    return self._open_digest(customer, provider, deployment, instance_type, amount, max_rate, deadline)


@view
@external
def usageDigest(lease_id: uint256, meter: address, tokens: uint256, amount: uint256) -> bytes32:
    """
    @notice The EIP-712 digest a meter signs for `chargeUsage`, so a gateway or a client
            can check its typed data against the contract.
    @param lease_id The lease.
    @param meter The meter's address.
    @param tokens Cumulative tokens since `setMeter`.
    @param amount Cumulative wei since `setMeter`.
    @return bytes32 The digest.
    """
    return self._usage_digest(lease_id, meter, tokens, amount)


@view
@external
def meterOf(lease_id: uint256) -> (address, uint256, uint256, uint256, uint256):
    """
    @notice A lease's meter, the last voucher it accepted and how much of it is charged.
    @param lease_id The lease.
    @return address The meter (empty if metering is off).
    @return uint256 Its cap in wei per token.
    @return uint256 The last voucher's tokens (cumulative since `setMeter`).
    @return uint256 The last voucher's wei (cumulative since `setMeter`).
    @return uint256 Wei charged since `setMeter`: the last voucher's wei once it is paid in
            full, less while the lease could not pay it all.
    """
    meter_slot: uint256 = self._meters[lease_id]
    charged: uint256 = self._charged[lease_id]
    amount: uint256 = charged & _MASK128
    if charged & _UNPAID != 0:
        amount += self._unpaid[lease_id]
    return (
        convert(meter_slot & _MASK160, address),
        meter_slot >> 160,
        (charged >> 128) & _MASK112,
        amount,
        charged & _MASK128,
    )


# --- internals -------------------------------------------------------------------

@internal
def _deposit(customer: address, amount: uint256):
    assert amount != 0, "market: zero amount"
    extcall pha.transferFrom(customer, self, amount)
    self.freeBalance[customer] += amount
    log Deposited(customer=customer, amount=amount)


@internal
def _open(
    customer: address,
    provider: address,
    deployment: bytes32,
    instance_type: bytes32,
    amount: uint256,
    max_rate: uint256,
) -> uint256:
    assert provider != empty(address), "market: zero provider"
    rate: uint256 = self.priceOf[instance_type]
    assert rate != 0, "market: instance type not offered"
    assert rate <= max_rate, "market: price above max rate"
    lease_id: uint256 = self._lease_id(customer, deployment)
    assert self._heads[lease_id] == 0, "market: deployment already has a lease"
    window: uint256 = self.shutdownWindow
    assert amount // rate > window, "market: funding does not cover the shutdown window"
    free: uint256 = self.freeBalance[customer]
    assert free >= amount, "market: amount exceeds free balance"
    self.freeBalance[customer] = unsafe_sub(free, amount)
    fee_rate: uint256 = rate * self.feeBps // BPS
    self._heads[lease_id] = (
        convert(customer, uint256)
        | (block.timestamp << 160)
        | (convert(STATUS_BILLING, uint256) << _STATUS_SHIFT)
        | (window << _WINDOW_SHIFT)
    )
    self._parties[lease_id] = convert(provider, uint256) | (fee_rate << 160)
    self._money[lease_id] = amount | (rate << 128)
    log LeaseOpened(
        lease=lease_id,
        customer=customer,
        provider=provider,
        deployment=deployment,
        instanceType=instance_type,
        rate=rate,
        amount=amount,
    )
    return lease_id


@internal
def _earn(provider: address, net: uint256, fee: uint256):
    self._earnings[provider] = (self._earnings[provider] | _TOUCHED) + (net | (fee << 128))


@internal
def _credit(lease_id: uint256, amount: uint256):
    assert amount != 0, "market: zero amount"
    provider: address = empty(address)
    net: uint256 = 0
    fee: uint256 = 0
    provider, net, fee = self._settle(lease_id)
    if net | fee != 0:
        self._earn(provider, net, fee)
    head: uint256 = self._heads[lease_id]
    status: uint8 = self._status(head)
    assert status == STATUS_BILLING or status == STATUS_STOPPED, "market: lease is closed"
    was_paused: bool = self._runway(lease_id) == 0
    money: uint256 = self._money[lease_id]
    self._money[lease_id] = money + amount
    if status == STATUS_STOPPED:
        # Billing restarts now: the stopped time is not billed.
        head = (head & ~((_MASK64 << 160) | (255 << _STATUS_SHIFT))) | (
            block.timestamp << 160
        ) | (convert(STATUS_BILLING, uint256) << _STATUS_SHIFT)
        self._heads[lease_id] = head
    if was_paused:
        assert self._runway(lease_id) != 0, "market: top-up too small to resume"
    log ToppedUp(lease=lease_id, amount=amount, resumed=was_paused)


@internal
def _settle(lease_id: uint256) -> (address, uint256, uint256):
    """Bill the lease up to now; the caller credits the provider (so that a batch writes
    the provider's earnings once)."""
    head: uint256 = self._heads[lease_id]
    money: uint256 = self._money[lease_id]
    parties: uint256 = self._parties[lease_id]
    provider: address = convert(parties & _MASK160, address)
    p: Projection = self._project(head, money)
    if p.billed == 0:
        return provider, 0, 0
    self._heads[lease_id] = (
        (head & _MASK160)
        | (p.last << 160)
        | (convert(p.status, uint256) << _STATUS_SHIFT)
        | ((head >> _WINDOW_SHIFT) << _WINDOW_SHIFT)
    )
    self._money[lease_id] = (money & ~_MASK128) | p.balance
    cost: uint256 = p.billed * (money >> 128)
    fee: uint256 = p.billed * (parties >> 160)
    log Settled(lease=lease_id, seconds=p.billed, amount=cost)
    if p.status == STATUS_STOPPED:
        log BillingStopped(lease=lease_id, at=p.last)
    return provider, cost - fee, fee


@view
@internal
def _project(head: uint256, money: uint256) -> Projection:
    status: uint8 = self._status(head)
    last: uint256 = (head >> 160) & _MASK64
    balance: uint256 = money & _MASK128
    if status != STATUS_BILLING:
        return Projection(status=status, last=last, balance=balance, billed=0)
    rate: uint256 = money >> 128
    affordable: uint256 = balance // rate
    elapsed: uint256 = block.timestamp - last
    if elapsed < affordable:
        return Projection(
            status=STATUS_BILLING, last=block.timestamp, balance=balance - elapsed * rate, billed=elapsed
        )
    return Projection(
        status=STATUS_STOPPED,
        last=last + affordable,
        balance=balance - affordable * rate,
        billed=affordable,
    )


@view
@internal
def _pauses_at(lease_id: uint256) -> uint256:
    head: uint256 = self._heads[lease_id]
    status: uint8 = self._status(head)
    if status != STATUS_BILLING and status != STATUS_STOPPED:
        return 0
    last: uint256 = (head >> 160) & _MASK64
    window: uint256 = head >> _WINDOW_SHIFT
    if status == STATUS_STOPPED:
        return last - window
    money: uint256 = self._money[lease_id]
    # lastSettled + balance // rate is the end of funded time, the same before and
    # after any settlement while billing runs.
    return last + (money & _MASK128) // (money >> 128) - window


@view
@internal
def _runway(lease_id: uint256) -> uint256:
    pause: uint256 = self._pauses_at(lease_id)
    if pause > block.timestamp:
        return pause - block.timestamp
    return 0


@view
@internal
def _closable_at(lease_id: uint256) -> uint256:
    pause: uint256 = self._pauses_at(lease_id)
    if pause == 0:
        return 0
    return pause + self.gracePeriod


@view
@internal
def _customer(lease_id: uint256) -> address:
    return convert(self._heads[lease_id] & _MASK160, address)


@pure
@internal
def _lease_id(customer: address, deployment: bytes32) -> uint256:
    return convert(keccak256(abi_encode(customer, deployment)), uint256)


@pure
@internal
def _status(head: uint256) -> uint8:
    return convert((head >> _STATUS_SHIFT) & 255, uint8)


@view
@internal
def _unpack(lease_id: uint256, head: uint256, money: uint256) -> Lease:
    parties: uint256 = self._parties[lease_id]
    return Lease(
        customer=convert(head & _MASK160, address),
        provider=convert(parties & _MASK160, address),
        rate=money >> 128,
        feeRate=parties >> 160,
        balance=money & _MASK128,
        lastSettled=(head >> 160) & _MASK64,
        window=head >> _WINDOW_SHIFT,
        status=self._status(head),
    )


@view
@internal
def _open_digest(
    customer: address,
    provider: address,
    deployment: bytes32,
    instance_type: bytes32,
    amount: uint256,
    max_rate: uint256,
    deadline: uint256,
) -> bytes32:
    return eip712._hash_typed_data_v4(
        keccak256(
            abi_encode(
                OPEN_TYPEHASH, customer, provider, deployment, instance_type, amount, max_rate, deadline
            )
        )
    )


@view
@internal
def _usage_digest(lease_id: uint256, meter: address, tokens: uint256, amount: uint256) -> bytes32:
    return eip712._hash_typed_data_v4(
        keccak256(abi_encode(USAGE_TYPEHASH, lease_id, meter, tokens, amount))
    )
