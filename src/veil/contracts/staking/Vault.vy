# pragma version ~=0.4.3
"""
@title vPHA, the PHA staking vault
@custom:contract-name Vault
@license MIT
@notice Stake PHA, receive vPHA shares (ERC-4626). Rewards stream into the vault at a
        governed rate out of a reserve that anyone can fund, and only while the reserve
        covers them. Unstaking goes through an unlock queue in the shape of ERC-7540:
        a request burns shares at the current price and fixes the PHA owed, which the
        controller claims after the unlock period (ERC-7540 redeem/withdraw, or
        claim(requestId)), or cancels to be re-staked without loss. Only the controller
        or its ERC-7540 operators put requests into its queue. vPHA carries ERC-5805
        voting power (timestamp clock, ERC-6372) once the holder delegates, even to
        itself; depositAndDelegate self-delegates a receiver that never chose.
@dev Storage is packed by hand because the gas benchmark compares deposit, unlock
     request, claim, delegate and delegated transfer with OpenZeppelin 5.x ERC4626 +
     ERC20Votes:
       _pool   staked(96) | pending(96) | lastAccrual(48) | bps(14) | streaming(1)
       _stream reserve(96) | treasuryOwed(96) | rewardRate(64)
       _params unlockPeriod(48) | maxOpenRequests(16) | nextRequestId(40)
       _account delegate(160) | queue head(40) | tail(40) | count(16): the unlock
               queue of a controller shares the slot its delegation already uses
       _balance shares(160) | ... | chosen(1, bit 253) | delegation mode(2, top
               bits): none, self or another delegate, so a transfer, mint or burn
               learns the delegate from the slot it already reads and loads _account
               only for delegation to someone else (the delegate field of _account
               is meaningful only in that mode). `chosen` records that the holder
               called delegate/delegateBySig, even to zero, so depositAndDelegate
               never overrides a choice
       trace   latest checkpoint: value(160) | count(48) | key(48); older ones in
               _history as value(208) | key(48). The total-supply trace (key 0x0)
               is the total supply itself, so a mint writes one slot, not two.
       request A: controller(160) | claimableAt(48) | status(8) | prev(40)
               B: assets(96) | shares(120) | next(40)
       queue   a doubly linked list of a controller's open requests (ids in A and B)
     No reentrancy lock: the only external calls go to the immutable asset (PHA, no
     transfer hooks) and every state change is written before them.
     PHA amounts fit 96 bits because PHA's supply is capped at 1e27 < 2**96; every
     place where a packed field grows checks its bound anyway.
"""

from ethereum.ercs import IERC20
from ethereum.ercs import IERC20Detailed
from ethereum.ercs import IERC4626

implements: IERC20
implements: IERC20Detailed
implements: IERC4626


# --- events (ERC-20 and ERC-4626 events come from the interfaces) ----------------

event RedeemRequest:
    controller: indexed(address)
    owner: indexed(address)
    requestId: indexed(uint256)
    sender: address
    shares: uint256


event RedeemRequestCancelled:
    controller: indexed(address)
    requestId: indexed(uint256)
    sender: address
    assets: uint256
    shares: uint256


event OperatorSet:
    controller: indexed(address)
    operator: indexed(address)
    approved: bool


event DelegateChanged:
    delegator: indexed(address)
    fromDelegate: indexed(address)
    toDelegate: indexed(address)


event DelegateVotesChanged:
    delegate: indexed(address)
    previousVotes: uint256
    newVotes: uint256


event RewardsFunded:
    funder: indexed(address)
    amount: uint256
    reserve: uint256


event RewardsAccrued:
    stakers: uint256
    treasury: uint256


event TreasuryPaid:
    treasury: indexed(address)
    amount: uint256


event RewardRateSet:
    rate: uint256


event UnlockPeriodSet:
    period: uint256


event MaxOpenRequestsSet:
    limit: uint256


event TreasurySet:
    treasury: indexed(address)


event TreasuryShareSet:
    bps: uint256


event OwnershipTransferred:
    previous_owner: indexed(address)
    new_owner: indexed(address)


# --- constants -------------------------------------------------------------------

name: public(constant(String[25])) = "Staked PHA"
symbol: public(constant(String[5])) = "vPHA"
DECIMALS_OFFSET: public(constant(uint8)) = 6
decimals: public(constant(uint8)) = 18 + DECIMALS_OFFSET
_VIRTUAL_SHARES: constant(uint256) = 10**6  # 10 ** DECIMALS_OFFSET

BPS: constant(uint256) = 10_000
MAX_UNLOCK_PERIOD: public(constant(uint256)) = 365 * 86400
MAX_OPEN_REQUESTS_LIMIT: public(constant(uint256)) = 64
DEFAULT_UNLOCK_PERIOD: constant(uint256) = 21 * 86400
DEFAULT_MAX_OPEN_REQUESTS: constant(uint256) = 8
DEFAULT_TREASURY_SHARE_BPS: constant(uint256) = 1000

STATUS_NONE: constant(uint8) = 0
STATUS_PENDING: constant(uint8) = 1
STATUS_CLAIMED: constant(uint8) = 2
STATUS_CANCELLED: constant(uint8) = 3

_M8: constant(uint256) = 2**8 - 1
_M14: constant(uint256) = 2**14 - 1
_M16: constant(uint256) = 2**16 - 1
_M40: constant(uint256) = 2**40 - 1
_M48: constant(uint256) = 2**48 - 1
_M64: constant(uint256) = 2**64 - 1
_M96: constant(uint256) = 2**96 - 1
_M120: constant(uint256) = 2**120 - 1
_M160: constant(uint256) = 2**160 - 1
_M208: constant(uint256) = 2**208 - 1
_STREAMING: constant(uint256) = 2**254
_SELF_DELEGATED: constant(uint256) = 2**254  # in _balance: delegate is the account
_OTHER_DELEGATED: constant(uint256) = 2**255  # in _balance: delegate is in _account
_MODES: constant(uint256) = 2**255 | 2**254
_CHOSEN: constant(uint256) = 2**253  # in _balance: the holder has chosen a delegate

# ERC-165 interface ids (tests recompute them from the ERCs' function selectors).
_IERC165_ID: constant(bytes4) = 0x01ffc9a7
_IERC7540_OPERATOR_ID: constant(bytes4) = 0xe3bc4e65
_IERC7540_REDEEM_ID: constant(bytes4) = 0x620ee8e4
_IERC7575_ID: constant(bytes4) = 0x2f0a18c5
_TOTAL: constant(address) = empty(address)  # trace key of the total supply

_VERSION: constant(String[20]) = "1"
_TYPE_HASH: constant(bytes32) = keccak256(
    "EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)"
)
_PERMIT_TYPE_HASH: constant(bytes32) = keccak256(
    "Permit(address owner,address spender,uint256 value,uint256 nonce,uint256 deadline)"
)
_DELEGATION_TYPE_HASH: constant(bytes32) = keccak256(
    "Delegation(address delegatee,uint256 nonce,uint256 expiry)"
)
_MAX_S: constant(uint256) = 57896044618658097711785492504343953926418782139537452191302581570759080747168

_ASSET: immutable(address)
_CACHED_CHAIN_ID: immutable(uint256)
_CACHED_DOMAIN_SEPARATOR: immutable(bytes32)


# --- storage ---------------------------------------------------------------------

_balance: HashMap[address, uint256]
allowance: public(HashMap[address, HashMap[address, uint256]])
nonces: public(HashMap[address, uint256])
isOperator: public(HashMap[address, HashMap[address, bool]])
owner: public(address)
treasury: public(address)

_pool: uint256
_stream: uint256
_params: uint256
_latest: HashMap[address, uint256]
_history: HashMap[address, HashMap[uint256, uint256]]
_request_a: HashMap[uint256, uint256]
_request_b: HashMap[uint256, uint256]
_account: HashMap[address, uint256]


@deploy
def __init__(asset: address, owner: address, treasury: address):
    """
    @notice Create the vault over `asset` (PHA).
    @param asset The staked token, PHA.
    @param owner The governor of the parameters; the deploy script hands this to the
           timelock.
    @param treasury Receives the treasury share of rewards.
    """
    assert asset != empty(address), "vPHA: asset is the zero address"
    assert owner != empty(address), "vPHA: owner is the zero address"
    assert treasury != empty(address), "vPHA: treasury is the zero address"
    _ASSET = asset
    _CACHED_CHAIN_ID = chain.id
    _CACHED_DOMAIN_SEPARATOR = self._build_domain_separator()
    self.owner = owner
    self.treasury = treasury
    self._pool = (block.timestamp << 192) | (DEFAULT_TREASURY_SHARE_BPS << 240)
    self._params = DEFAULT_UNLOCK_PERIOD | (DEFAULT_MAX_OPEN_REQUESTS << 48) | (1 << 64)
    log OwnershipTransferred(previous_owner=empty(address), new_owner=owner)
    log TreasurySet(treasury=treasury)


# =================================================================================
# ERC-20
# =================================================================================


@view
@external
def balanceOf(arg0: address) -> uint256:
    """
    @notice vPHA shares held by `arg0` (named as the public getter it replaces, so the
            ABI is unchanged).
    @param arg0 The holder.
    @return uint256 Shares.
    """
    return self._balance[arg0] & _M160


@view
@external
def totalSupply() -> uint256:
    """
    @notice Total vPHA shares; pending unlock requests hold none.
    @return uint256 Shares in the smallest unit (24 decimals).
    """
    return self._latest[_TOTAL] & _M160


@external
def transfer(to: address, amount: uint256) -> bool:
    """
    @notice Move `amount` vPHA shares to `to`; voting power follows the delegates.
    @param to The recipient (not the zero address).
    @param amount Shares.
    @return bool Always true; failures revert.
    """
    self._transfer(msg.sender, to, amount)
    return True


@external
def transferFrom(owner: address, to: address, amount: uint256) -> bool:
    """
    @notice Move `amount` shares from `owner` to `to` with the caller's allowance.
    @param owner The account whose shares move.
    @param to The recipient.
    @param amount Shares.
    @return bool Always true; failures revert.
    """
    self._spend_allowance(owner, msg.sender, amount)
    self._transfer(owner, to, amount)
    return True


@external
def approve(spender: address, amount: uint256) -> bool:
    """
    @notice Allow `spender` to move up to `amount` of the caller's shares (also lets
            it turn them into an unlock request that it controls, as in ERC-7540).
    @param spender The spender (not the zero address).
    @param amount The allowance; max_value(uint256) never decreases.
    @return bool Always true.
    """
    self._approve(msg.sender, spender, amount)
    return True


@external
def permit(
    owner: address,
    spender: address,
    amount: uint256,
    deadline: uint256,
    v: uint8,
    r: bytes32,
    s: bytes32,
):
    """
    @notice EIP-2612 approval by signature. Shares its nonce with delegateBySig.
    @param owner The signer.
    @param spender The spender.
    @param amount The allowance.
    @param deadline Last valid timestamp.
    @param v Signature v.
    @param r Signature r.
    @param s Signature s.
    """
    assert block.timestamp <= deadline, "vPHA: signature expired"
    nonce: uint256 = self.nonces[owner]
    signer: address = self._recover(
        keccak256(abi_encode(_PERMIT_TYPE_HASH, owner, spender, amount, nonce, deadline)),
        v,
        r,
        s,
    )
    assert signer == owner, "vPHA: invalid signature"
    self.nonces[owner] = unsafe_add(nonce, 1)
    self._approve(owner, spender, amount)


@view
@external
def DOMAIN_SEPARATOR() -> bytes32:
    """
    @notice The EIP-712 domain separator for permit and delegateBySig.
    @return bytes32 The separator on the current chain.
    """
    return self._domain_separator()


@view
@external
def eip712Domain() -> (bytes1, String[50], String[20], uint256, address, bytes32, DynArray[uint256, 32]):
    """
    @notice ERC-5267 domain description for wallets.
    @return bytes1 Fields present (name, version, chainId, verifyingContract).
    @return String Name.
    @return String Version.
    @return uint256 Chain id.
    @return address This contract.
    @return bytes32 Salt (unused).
    @return DynArray Extensions (none).
    """
    return (0x0f, name, _VERSION, chain.id, self, empty(bytes32), empty(DynArray[uint256, 32]))


# =================================================================================
# ERC-4626
# =================================================================================


@view
@external
def asset() -> address:
    """
    @notice The staked token, PHA.
    @return address PHA.
    """
    return _ASSET


@view
@external
def totalAssets() -> uint256:
    """
    @notice PHA backing the shares, including rewards accrued since the last
            checkpoint (so previews are exact). Pending unlocks, the reward reserve and
            the treasury's unpaid share are held by the vault but not counted here.
    @return uint256 PHA wei.
    """
    pool: uint256 = self._accrued_view()[0]
    return pool & _M96


@view
@external
def convertToShares(assets: uint256) -> uint256:
    """
    @notice Shares worth `assets` at the current price, rounded down.
    @param assets PHA wei.
    @return uint256 Shares.
    """
    staked: uint256 = 0
    supply: uint256 = 0
    staked, supply = self._price_view()
    return assets * (supply + _VIRTUAL_SHARES) // (staked + 1)


@view
@external
def convertToAssets(shares: uint256) -> uint256:
    """
    @notice PHA worth `shares` at the current price, rounded down.
    @param shares vPHA shares.
    @return uint256 PHA wei.
    """
    staked: uint256 = 0
    supply: uint256 = 0
    staked, supply = self._price_view()
    return shares * (staked + 1) // (supply + _VIRTUAL_SHARES)


@view
@external
def maxDeposit(receiver: address) -> uint256:
    """
    @notice Largest deposit accepted (bounded only by the 96-bit packing of staked PHA,
            far above PHA's cap).
    @param receiver Ignored.
    @return uint256 PHA wei.
    """
    return _M96 - (self._accrued_view()[0] & _M96)


@view
@external
def previewDeposit(assets: uint256) -> uint256:
    """
    @notice Shares a deposit of `assets` mints now (rounded down).
    @param assets PHA wei.
    @return uint256 Shares.
    """
    staked: uint256 = 0
    supply: uint256 = 0
    staked, supply = self._price_view()
    return assets * (supply + _VIRTUAL_SHARES) // (staked + 1)


@view
@external
def maxMint(receiver: address) -> uint256:
    """
    @notice Largest mint accepted: the shares of maxDeposit.
    @param receiver Ignored.
    @return uint256 Shares.
    """
    staked: uint256 = 0
    supply: uint256 = 0
    staked, supply = self._price_view()
    return (_M96 - staked) * (supply + _VIRTUAL_SHARES) // (staked + 1)


@view
@external
def previewMint(shares: uint256) -> uint256:
    """
    @notice PHA a mint of `shares` takes now (rounded up).
    @param shares Shares.
    @return uint256 PHA wei.
    """
    staked: uint256 = 0
    supply: uint256 = 0
    staked, supply = self._price_view()
    return self._ceil_div(shares * (staked + 1), supply + _VIRTUAL_SHARES)


@view
@external
def maxWithdraw(controller: address) -> uint256:
    """
    @notice ERC-7540: PHA that `controller` can withdraw now, the sum of its requests
            whose unlock period is over. Staked PHA never leaves instantly; it goes
            through requestRedeem first.
    @param controller The controller of the requests.
    @return uint256 PHA wei.
    """
    return self._queue_totals(controller)[0]


@view
@external
def previewWithdraw(assets: uint256) -> uint256:
    """
    @notice Reverts, as ERC-7540 requires of an asynchronous redeem vault: the price
            of a claim was fixed at request time, so no preview at today's price can
            be right. Use convertToShares to size a request.
    @param assets Ignored.
    @return uint256 Never returns.
    """
    raise "vPHA: async redeem, no preview"


@view
@external
def maxRedeem(controller: address) -> uint256:
    """
    @notice ERC-7540: shares that `controller` can redeem now, the sum of its requests
            whose unlock period is over.
    @param controller The controller of the requests.
    @return uint256 Shares (as burned when the requests were made).
    """
    return self._queue_totals(controller)[1]


@view
@external
def previewRedeem(shares: uint256) -> uint256:
    """
    @notice Reverts, as ERC-7540 requires of an asynchronous redeem vault: see
            previewWithdraw. convertToAssets gives what a request for `shares` would
            queue now.
    @param shares Ignored.
    @return uint256 Never returns.
    """
    raise "vPHA: async redeem, no preview"


@external
def deposit(assets: uint256, receiver: address) -> uint256:
    """
    @notice Stake `assets` PHA from the caller; `receiver` gets the vPHA shares.
    @param assets PHA wei; the caller must have approved the vault.
    @param receiver Receives the shares.
    @return uint256 Shares minted (rounded down; reverts if zero).
    """
    return self._deposit(assets, receiver, False)


@external
def depositAndDelegate(assets: uint256, receiver: address) -> uint256:
    """
    @notice Exactly deposit, and if `receiver` has never chosen a delegate (never
            called delegate or delegateBySig, not even to the zero address) it is
            self-delegated, so its vPHA votes from this block. Stake that arrives on
            someone's behalf (the Migrator's staked claims) thereby keeps voting
            without the receiver having to send a transaction first; a receiver that
            chose, whoever it chose, keeps its choice.
    @param assets PHA wei; the caller must have approved the vault.
    @param receiver Receives the shares (and, if it never chose, its own votes).
    @return uint256 Shares minted (rounded down; reverts if zero).
    """
    return self._deposit(assets, receiver, True)


@external
def mint(shares: uint256, receiver: address) -> uint256:
    """
    @notice Mint exactly `shares` vPHA to `receiver` for the PHA they cost (rounded up).
    @param shares Shares wanted (non-zero).
    @param receiver Receives the shares.
    @return uint256 PHA taken from the caller.
    """
    assert shares != 0, "vPHA: zero shares"
    supply: uint256 = self._latest[_TOTAL] & _M160
    pool: uint256 = self._accrue(supply, False)
    staked: uint256 = pool & _M96
    assets: uint256 = self._ceil_div(shares * (staked + 1), supply + _VIRTUAL_SHARES)
    self._stake(pool, staked + assets)
    assert extcall IERC20(_ASSET).transferFrom(msg.sender, self, assets), "vPHA: PHA transfer failed"
    self._mint(receiver, shares, self._latest[_TOTAL], False)  # re-read after the call
    log IERC4626.Deposit(sender=msg.sender, owner=receiver, assets=assets, shares=shares)
    return assets


@external
def withdraw(assets: uint256, receiver: address, controller: address) -> uint256:
    """
    @notice ERC-7540 claim: pay `assets` PHA to `receiver` out of `controller`'s
            requests whose unlock period is over, oldest first. A request larger than
            what is left is split: the rest stays queued with its shares reduced in
            proportion (rounded so that the rest keeps at least one share).
    @dev The caller must be `controller` or its operator. Staked PHA never leaves
         without a request first (requestRedeem).
    @param assets PHA wei, at most maxWithdraw(controller).
    @param receiver Receives the PHA.
    @param controller Whose requests are claimed.
    @return uint256 Shares (as burned at request time) the claimed PHA stood for.
    """
    return self._claim_queue(assets, receiver, controller, True)[1]


@external
def redeem(shares: uint256, receiver: address, controller: address) -> uint256:
    """
    @notice ERC-7540 claim: redeem `shares` of `controller`'s requests whose unlock
            period is over, oldest first, paying their PHA to `receiver`. A request
            larger than what is left is split: its PHA is paid in proportion, rounded
            down, and the rest stays queued, so the request still pays in total
            exactly what was fixed when it was made.
    @dev The caller must be `controller` or its operator.
    @param shares Shares as burned at request time, at most maxRedeem(controller).
    @param receiver Receives the PHA.
    @param controller Whose requests are claimed.
    @return uint256 PHA paid.
    """
    return self._claim_queue(shares, receiver, controller, False)[0]


# =================================================================================
# Unlock queue (ERC-7540 shaped)
# =================================================================================


@external
def setOperator(operator: address, approved: bool) -> bool:
    """
    @notice ERC-7540: let `operator` request, cancel and claim unlocks for the caller,
            including requests that name the caller as controller (only the controller
            and its operators can add to its queue).
    @param operator The operator.
    @param approved Grant or revoke.
    @return bool Always true.
    """
    assert operator != msg.sender, "vPHA: cannot operate for yourself"
    self.isOperator[msg.sender][operator] = approved
    log OperatorSet(controller=msg.sender, operator=operator, approved=approved)
    return True


@external
def requestRedeem(shares: uint256, controller: address, owner: address) -> uint256:
    """
    @notice Start unstaking: burn `shares` of `owner` now, at the current price, and
            queue the PHA they are worth (rounded down) for `controller`, claimable
            in full after unlockPeriod(). Queued PHA earns no rewards.
    @dev The caller must be `owner`, an operator of `owner`, or spend `owner`'s vPHA
         allowance (ERC-7540); and it must be `controller` or an operator of
         `controller`, so nobody fills another account's queue (each controller may
         hold maxOpenRequests() open requests: with this rule the limit only counts
         requests the controller or its own operators made).
    @param shares Shares to unstake.
    @param controller Owns the request: claims it or cancels it.
    @param owner Whose shares are burned.
    @return uint256 The request id.
    """
    assert shares != 0, "vPHA: zero shares"
    assert controller != empty(address), "vPHA: controller is the zero address"
    self._check_controller(controller)
    if msg.sender != owner and not self.isOperator[owner][msg.sender]:
        self._spend_allowance(owner, msg.sender, shares)
    params: uint256 = self._params
    account: uint256 = self._account[controller]
    queue: uint256 = account >> 160
    count: uint256 = (queue >> 80) & _M16
    assert count < (params >> 48) & _M16, "vPHA: too many open unlock requests"

    total: uint256 = self._latest[_TOTAL]
    supply: uint256 = total & _M160
    pool: uint256 = self._accrue(supply, False)
    staked: uint256 = pool & _M96
    assets: uint256 = shares * (staked + 1) // (supply + _VIRTUAL_SHARES)
    assert assets != 0, "vPHA: shares worth less than one wei"
    # staked -= assets (assets <= staked since shares <= supply); pending += assets.
    pending: uint256 = ((pool >> 96) & _M96) + assets
    assert pending <= _M96, "vPHA: pending overflow"
    self._burn(owner, shares, total)
    self._pool = ((pool & ~_M96 & ~(_M96 << 96)) | (staked - assets)) | (pending << 96)

    request_id: uint256 = params >> 64
    assert request_id <= _M40, "vPHA: request ids exhausted"
    self._params = (params & _M64) | ((request_id + 1) << 64)
    claimable_at: uint256 = block.timestamp + (params & _M48)
    tail: uint256 = (queue >> 40) & _M40
    self._request_a[request_id] = (
        convert(controller, uint256)
        | (claimable_at << 160)
        | (convert(STATUS_PENDING, uint256) << 208)
        | (tail << 216)
    )
    self._request_b[request_id] = assets | (shares << 96)
    if tail == 0:
        queue = request_id | (request_id << 40) | ((count + 1) << 80)
    else:
        self._request_b[tail] = self._request_b[tail] | (request_id << 216)
        queue = (queue & _M40) | (request_id << 40) | ((count + 1) << 80)
    self._account[controller] = (account & _M160) | (queue << 160)
    log RedeemRequest(
        controller=controller, owner=owner, requestId=request_id, sender=msg.sender, shares=shares
    )
    return request_id


@external
def claim(requestId: uint256) -> uint256:
    """
    @notice Pay out an unlock request in full once its unlock period has passed. The
            PHA goes to the request's controller.
    @param requestId The request.
    @return uint256 PHA paid, exactly the amount fixed at request time.
    """
    a: uint256 = self._request_a[requestId]
    controller: address = self._open_request(a)
    assert block.timestamp >= (a >> 160) & _M48, "vPHA: unlock period not over"
    b: uint256 = self._request_b[requestId]
    assets: uint256 = b & _M96
    self._close_request(requestId, a, b, controller, STATUS_CLAIMED)
    pool: uint256 = self._pool
    self._pool = pool - (assets << 96)
    assert extcall IERC20(_ASSET).transfer(controller, assets), "vPHA: PHA transfer failed"
    log IERC4626.Withdraw(
        sender=msg.sender,
        receiver=controller,
        owner=controller,
        assets=assets,
        shares=(b >> 96) & _M120,
    )
    return assets


@external
def cancelRedeemRequest(requestId: uint256) -> uint256:
    """
    @notice Cancel a pending unlock request: its PHA is staked again at the current
            price and the controller gets shares worth at least that PHA (no loss).
    @dev Shares are rounded up so the controller loses nothing. What rounding up
         costs the other holders (less than one share's worth) is paid from the
         reward reserve (or else the treasury's unpaid share) when either has it, so
         the share price does not drop. When neither can pay, the other holders carry
         it only if it is less than one wei between them; a share can be worth many
         wei (large rewards into an almost empty vault), and then the cancel is
         refused: the request stays claimable in full, and funding the reserve with
         the gap lets the cancel through.
    @param requestId The request.
    @return uint256 Shares minted to the controller.
    """
    a: uint256 = self._request_a[requestId]
    controller: address = self._open_request(a)
    b: uint256 = self._request_b[requestId]
    assets: uint256 = b & _M96
    self._close_request(requestId, a, b, controller, STATUS_CANCELLED)

    total: uint256 = self._latest[_TOTAL]
    supply: uint256 = total & _M160
    pool: uint256 = self._accrue(supply, False)
    staked: uint256 = pool & _M96
    denominator: uint256 = staked + 1
    shares: uint256 = self._ceil_div(assets * (supply + _VIRTUAL_SHARES), denominator)
    needed: uint256 = self._ceil_div(shares * denominator, supply + _VIRTUAL_SHARES)
    gap: uint256 = needed - assets
    added: uint256 = assets
    if gap != 0:
        stream: uint256 = self._stream
        if stream & _M96 >= gap:
            self._stream = stream - gap
            added = needed
        elif (stream >> 96) & _M96 >= gap:
            self._stream = stream - (gap << 96)
            added = needed
        else:
            # Unpaid, the others lose (shares * (staked + 1) - assets * (supply + V))
            # / (supply + V + shares) wei in total: allowed only below one wei.
            assert shares * denominator - assets * (supply + _VIRTUAL_SHARES) < (
                supply + _VIRTUAL_SHARES + shares
            ), "vPHA: cancel rounding exceeds the reserve"
    # pending -= assets; staked += added
    pool = pool - (assets << 96)
    self._stake(pool, staked + added)
    self._mint(controller, shares, total, False)
    log RedeemRequestCancelled(
        controller=controller, requestId=requestId, sender=msg.sender, assets=assets, shares=shares
    )
    return shares


@view
@external
def redeemRequest(requestId: uint256) -> (address, uint256, uint256, uint256, uint8):
    """
    @notice Read an unlock request.
    @param requestId The request.
    @return address Controller (zero if the id does not exist).
    @return uint256 PHA owed (fixed at request time).
    @return uint256 Shares burned for it.
    @return uint256 Timestamp from which it can be claimed.
    @return uint8 Status: 0 none, 1 pending, 2 claimed, 3 cancelled.
    """
    a: uint256 = self._request_a[requestId]
    b: uint256 = self._request_b[requestId]
    return (
        convert(a & _M160, address),
        b & _M96,
        (b >> 96) & _M120,
        (a >> 160) & _M48,
        convert((a >> 208) & _M8, uint8),
    )


@view
@external
def openRequests(account: address) -> DynArray[uint256, MAX_OPEN_REQUESTS_LIMIT]:
    """
    @notice Ids of the pending unlock requests controlled by `account`, oldest first.
    @param account The controller.
    @return DynArray The ids.
    """
    ids: DynArray[uint256, MAX_OPEN_REQUESTS_LIMIT] = []
    cursor: uint256 = (self._account[account] >> 160) & _M40
    for i: uint256 in range(MAX_OPEN_REQUESTS_LIMIT):
        if cursor == 0:
            break
        ids.append(cursor)
        cursor = self._request_b[cursor] >> 216
    return ids


@view
@external
def openRequestCount(account: address) -> uint256:
    """
    @notice Number of pending unlock requests controlled by `account`.
    @param account The controller.
    @return uint256 The count (at most maxOpenRequests()).
    """
    return (self._account[account] >> 240) & _M16


@view
@external
def pendingRedeemRequest(requestId: uint256, controller: address) -> uint256:
    """
    @notice ERC-7540: shares of a request still inside its unlock period.
    @param requestId The request; 0 (never a request id) sums every request of
           `controller`, as ERC-7540 reads id 0.
    @param controller Its controller.
    @return uint256 Shares, or 0 if claimable, closed or not this controller's.
    """
    if requestId == 0:
        return self._queue_totals(controller)[2]
    a: uint256 = self._request_a[requestId]
    if (a & _M160 != convert(controller, uint256)
            or (a >> 208) & _M8 != convert(STATUS_PENDING, uint256)
            or block.timestamp >= (a >> 160) & _M48):
        return 0
    return (self._request_b[requestId] >> 96) & _M120


@view
@external
def claimableRedeemRequest(requestId: uint256, controller: address) -> uint256:
    """
    @notice ERC-7540: shares of a request whose unlock period is over.
    @param requestId The request; 0 sums every request of `controller`.
    @param controller Its controller.
    @return uint256 Shares, or 0 if still pending, closed or not this controller's.
    """
    if requestId == 0:
        return self._queue_totals(controller)[1]
    a: uint256 = self._request_a[requestId]
    if (a & _M160 != convert(controller, uint256)
            or (a >> 208) & _M8 != convert(STATUS_PENDING, uint256)
            or block.timestamp < (a >> 160) & _M48):
        return 0
    return (self._request_b[requestId] >> 96) & _M120


@view
@external
def share() -> address:
    """
    @notice ERC-7575: the share token, this contract (vPHA).
    @return address This vault.
    """
    return self


@view
@external
def supportsInterface(interfaceId: bytes4) -> bool:
    """
    @notice ERC-165: true for ERC-165 itself, the ERC-7540 operator and asynchronous
            redeem interfaces, and ERC-7575, which ERC-7540 requires.
    @param interfaceId The interface id.
    @return bool Whether it is supported.
    """
    return interfaceId in [_IERC165_ID, _IERC7540_OPERATOR_ID, _IERC7540_REDEEM_ID, _IERC7575_ID]


@view
@external
def pendingAssets() -> uint256:
    """
    @notice PHA owed to all pending unlock requests (held, earning nothing).
    @return uint256 PHA wei.
    """
    return (self._pool >> 96) & _M96


# =================================================================================
# Rewards
# =================================================================================


@external
def fundRewards(amount: uint256):
    """
    @notice Add `amount` PHA from the caller to the reward reserve. Anyone may fund.
    @param amount PHA wei; the caller must have approved the vault.
    """
    assert amount != 0, "vPHA: zero amount"
    supply: uint256 = self._latest[_TOTAL] & _M160
    self._accrue(supply, True)
    stream: uint256 = self._stream
    reserve: uint256 = (stream & _M96) + amount
    assert reserve <= _M96, "vPHA: reserve overflow"
    self._stream = (stream & ~_M96) | reserve
    self._set_streaming(stream >> 192, reserve)
    assert extcall IERC20(_ASSET).transferFrom(msg.sender, self, amount), "vPHA: PHA transfer failed"
    log RewardsFunded(funder=msg.sender, amount=amount, reserve=reserve)


@external
def releaseTreasury() -> uint256:
    """
    @notice Send the treasury's accrued share of rewards to treasury(). Anyone may call.
    @return uint256 PHA sent.
    """
    supply: uint256 = self._latest[_TOTAL] & _M160
    self._accrue(supply, False)
    stream: uint256 = self._stream
    owed: uint256 = (stream >> 96) & _M96
    self._stream = stream & ~(_M96 << 96)
    target: address = self.treasury
    if owed != 0:
        assert extcall IERC20(_ASSET).transfer(target, owed), "vPHA: PHA transfer failed"
    log TreasuryPaid(treasury=target, amount=owed)
    return owed


@external
def accrue():
    """
    @notice Checkpoint accrued rewards into totalAssets. Never needed for correctness
            (every operation accrues first); useful to keepers and tests.
    """
    self._accrue(self._latest[_TOTAL] & _M160, False)


@view
@external
def rewardRate() -> uint256:
    """
    @notice Reward stream in PHA wei per second while the reserve covers it.
    @return uint256 Wei per second.
    """
    return self._stream >> 192


@view
@external
def rewardReserve() -> uint256:
    """
    @notice PHA left to stream, after rewards accrued up to now.
    @return uint256 PHA wei.
    """
    return self._accrued_view()[1] & _M96


@view
@external
def treasuryOwed() -> uint256:
    """
    @notice Treasury share of rewards accrued up to now and not yet released.
    @return uint256 PHA wei.
    """
    return (self._accrued_view()[1] >> 96) & _M96


@view
@external
def treasuryShareBps() -> uint256:
    """
    @notice Share of each accrual that goes to the treasury, in basis points.
    @return uint256 Basis points (<= 10000).
    """
    return (self._pool >> 240) & _M14


@view
@external
def lastAccrual() -> uint256:
    """
    @notice Timestamp of the last reward checkpoint.
    @return uint256 Unix seconds.
    """
    return (self._pool >> 192) & _M48


@view
@external
def unlockPeriod() -> uint256:
    """
    @notice Seconds between an unlock request and its claim (fixed per request when
            it is made).
    @return uint256 Seconds.
    """
    return self._params & _M48


@view
@external
def maxOpenRequests() -> uint256:
    """
    @notice Most pending unlock requests one controller may hold.
    @return uint256 The limit.
    """
    return (self._params >> 48) & _M16


# =================================================================================
# Governance (owner = timelock)
# =================================================================================


@external
def setRewardRate(rate: uint256):
    """
    @notice Set the reward stream in PHA wei per second. Accrues at the old rate first.
    @param rate Wei per second (< 2**64).
    """
    self._check_owner()
    assert rate <= _M64, "vPHA: rate too large"
    self._accrue(self._latest[_TOTAL] & _M160, True)
    stream: uint256 = self._stream
    self._stream = (stream & ~(_M64 << 192)) | (rate << 192)
    self._set_streaming(rate, stream & _M96)
    log RewardRateSet(rate=rate)


@external
def setUnlockPeriod(period: uint256):
    """
    @notice Set the unlock period for new requests (existing ones keep theirs).
    @param period Seconds, at most 365 days.
    """
    self._check_owner()
    assert period <= MAX_UNLOCK_PERIOD, "vPHA: unlock period too long"
    self._params = (self._params & ~_M48) | period
    log UnlockPeriodSet(period=period)


@external
def setMaxOpenRequests(limit: uint256):
    """
    @notice Set how many pending unlock requests one controller may hold.
    @param limit Between 1 and 64.
    """
    self._check_owner()
    assert limit >= 1 and limit <= MAX_OPEN_REQUESTS_LIMIT, "vPHA: limit out of range"
    self._params = (self._params & ~(_M16 << 48)) | (limit << 48)
    log MaxOpenRequestsSet(limit=limit)


@external
def setTreasury(treasury: address):
    """
    @notice Set the treasury. Its unreleased share is paid to the new address.
    @param treasury Not the zero address.
    """
    self._check_owner()
    assert treasury != empty(address), "vPHA: treasury is the zero address"
    self.treasury = treasury
    log TreasurySet(treasury=treasury)


@external
def setTreasuryShareBps(bps: uint256):
    """
    @notice Set the treasury's share of rewards. Accrues at the old share first.
    @param bps Basis points, at most 10000.
    """
    self._check_owner()
    assert bps <= BPS, "vPHA: share above 100%"
    pool: uint256 = self._accrue(self._latest[_TOTAL] & _M160, False)
    self._pool = (pool & ~(_M14 << 240)) | (bps << 240)
    log TreasuryShareSet(bps=bps)


@external
def transferOwnership(new_owner: address):
    """
    @notice Hand the vault's parameters to `new_owner`. Owner only.
    @param new_owner Not the zero address.
    """
    self._transfer_ownership(new_owner)


@external
def transfer_ownership(new_owner: address):
    """
    @notice Same as transferOwnership, under snekmate's name used by veil's deploy code.
    @param new_owner Not the zero address.
    """
    self._transfer_ownership(new_owner)


# =================================================================================
# Votes (ERC-5805, ERC-6372)
# =================================================================================


@view
@external
def clock() -> uint48:
    """
    @notice ERC-6372 clock: the block timestamp.
    @return uint48 Now.
    """
    return convert(block.timestamp, uint48)


@view
@external
def CLOCK_MODE() -> String[14]:
    """
    @notice ERC-6372 clock description.
    @return String "mode=timestamp".
    """
    return "mode=timestamp"


@view
@external
def getVotes(account: address) -> uint256:
    """
    @notice Current voting power delegated to `account`.
    @param account The delegate.
    @return uint256 Votes (in shares); 0 for the zero address, which never votes.
    """
    if account == empty(address):
        return 0
    return self._latest[account] & _M160


@view
@external
def getPastVotes(account: address, timepoint: uint256) -> uint256:
    """
    @notice Voting power of `account` at the end of timestamp `timepoint`.
    @param account The delegate.
    @param timepoint A past timestamp (strictly before clock()).
    @return uint256 Votes.
    """
    assert timepoint < block.timestamp, "vPHA: future lookup"
    if account == empty(address):
        return 0
    return self._lookup(account, timepoint)


@view
@external
def getPastTotalSupply(timepoint: uint256) -> uint256:
    """
    @notice Total vPHA supply at the end of timestamp `timepoint`.
    @param timepoint A past timestamp (strictly before clock()).
    @return uint256 Shares.
    """
    assert timepoint < block.timestamp, "vPHA: future lookup"
    return self._lookup(_TOTAL, timepoint)


@view
@external
def numCheckpoints(account: address) -> uint32:
    """
    @notice Number of vote checkpoints of `account` (OpenZeppelin compatible).
    @param account The delegate.
    @return uint32 Count.
    """
    if account == empty(address):
        return 0
    return convert((self._latest[account] >> 160) & _M48, uint32)


@view
@external
def checkpoints(account: address, pos: uint32) -> (uint48, uint208):
    """
    @notice The `pos`-th vote checkpoint of `account` (OpenZeppelin compatible).
    @param account The delegate.
    @param pos Index, oldest first.
    @return uint48 Timestamp.
    @return uint208 Votes from then on.
    """
    latest: uint256 = self._latest[account]
    count: uint256 = (latest >> 160) & _M48
    if account == empty(address):
        count = 0  # slot 0x0 holds the total-supply trace, not anyone's votes
    index: uint256 = convert(pos, uint256)
    assert index < count, "vPHA: no such checkpoint"
    if index + 1 == count:
        return convert(latest >> 208, uint48), convert(latest & _M160, uint208)
    packed: uint256 = self._history[account][index]
    return convert(packed >> 208, uint48), convert(packed & _M208, uint208)


@view
@external
def delegates(account: address) -> address:
    """
    @notice Who `account` has delegated its voting power to (zero: nobody, no votes).
    @param account The delegator.
    @return address The delegate.
    """
    return self._delegate_in(account, self._balance[account])


@external
def delegate(delegatee: address):
    """
    @notice Give the caller's voting power to `delegatee` (yourself to vote directly;
            the zero address to stop voting).
    @param delegatee The delegate.
    """
    self._delegate(msg.sender, delegatee)


@external
def delegateBySig(delegatee: address, nonce: uint256, expiry: uint256, v: uint8, r: bytes32, s: bytes32):
    """
    @notice Delegate with an EIP-712 `Delegation` signature (OpenZeppelin's typehash);
            the nonce is shared with permit.
    @param delegatee The delegate.
    @param nonce The signer's current nonce.
    @param expiry Last valid timestamp.
    @param v Signature v.
    @param r Signature r.
    @param s Signature s.
    """
    assert block.timestamp <= expiry, "vPHA: signature expired"
    signer: address = self._recover(
        keccak256(abi_encode(_DELEGATION_TYPE_HASH, delegatee, nonce, expiry)), v, r, s
    )
    assert nonce == self.nonces[signer], "vPHA: invalid nonce"
    self.nonces[signer] = unsafe_add(nonce, 1)
    self._delegate(signer, delegatee)


# =================================================================================
# internals
# =================================================================================


@internal
def _transfer(owner: address, to: address, amount: uint256):
    assert to != empty(address), "vPHA: transfer to the zero address"
    packed: uint256 = self._balance[owner]
    assert packed & _M160 >= amount, "vPHA: transfer amount exceeds balance"
    self._balance[owner] = unsafe_sub(packed, amount)
    received: uint256 = self._balance[to]  # read after the write: `to` may be `owner`
    self._balance[to] = unsafe_add(received, amount)  # < 2**160: no carry into the mode
    self._move_votes(self._delegate_in(owner, packed), self._delegate_in(to, received), amount)
    log IERC20.Transfer(sender=owner, receiver=to, value=amount)


@internal
def _mint(to: address, shares: uint256, latest: uint256, self_delegate: bool):
    """`latest` is the total-supply trace slot as the caller read it. `self_delegate`
    makes a holder that never chose a delegate its own delegate; its whole balance,
    old and new, then starts counting as votes."""
    assert to != empty(address), "vPHA: mint to the zero address"
    supply: uint256 = (latest & _M160) + shares
    assert supply <= _M160, "vPHA: supply overflow"
    self._push(_TOTAL, latest, supply)
    packed: uint256 = self._balance[to]
    if self_delegate and packed & (_MODES | _CHOSEN) == 0:
        # Only the mode bits: _account keeps no delegate for self mode (see _delegate).
        self._balance[to] = unsafe_add(packed | _SELF_DELEGATED, shares)
        log DelegateChanged(delegator=to, fromDelegate=empty(address), toDelegate=to)
        self._move_votes(empty(address), to, unsafe_add(packed & _M160, shares))
    else:
        self._balance[to] = unsafe_add(packed, shares)  # balance <= supply < 2**160
        self._move_votes(empty(address), self._delegate_in(to, packed), shares)
    log IERC20.Transfer(sender=empty(address), receiver=to, value=shares)


@internal
def _burn(owner: address, shares: uint256, latest: uint256):
    """`latest` is the total-supply trace slot as the caller read it."""
    packed: uint256 = self._balance[owner]
    assert packed & _M160 >= shares, "vPHA: burn amount exceeds balance"
    self._balance[owner] = unsafe_sub(packed, shares)
    self._push(_TOTAL, latest, unsafe_sub(latest & _M160, shares))
    self._move_votes(self._delegate_in(owner, packed), empty(address), shares)
    log IERC20.Transfer(sender=owner, receiver=empty(address), value=shares)


@internal
def _approve(owner: address, spender: address, amount: uint256):
    assert spender != empty(address), "vPHA: approve to the zero address"
    self.allowance[owner][spender] = amount
    log IERC20.Approval(owner=owner, spender=spender, value=amount)


@internal
def _spend_allowance(owner: address, spender: address, amount: uint256):
    allowed: uint256 = self.allowance[owner][spender]
    if allowed != max_value(uint256):
        assert allowed >= amount, "vPHA: insufficient allowance"
        self.allowance[owner][spender] = unsafe_sub(allowed, amount)


@view
@internal
def _delegate_of(account: address) -> address:
    return convert(self._account[account] & _M160, address)


@view
@internal
def _delegate_in(account: address, packed: uint256) -> address:
    """The delegate of `account`, given its _balance slot `packed`."""
    if packed & _SELF_DELEGATED != 0:
        return account
    if packed & _OTHER_DELEGATED != 0:
        return self._delegate_of(account)
    return empty(address)


@internal
def _delegate(account: address, delegatee: address):
    packed: uint256 = self._account[account]
    balance: uint256 = self._balance[account]
    # The stored delegate is current only in the other-delegate mode: self mode may
    # have been set by depositAndDelegate without touching _account.
    previous: address = empty(address)
    if balance & _SELF_DELEGATED != 0:
        previous = account
    elif balance & _OTHER_DELEGATED != 0:
        previous = convert(packed & _M160, address)
    self._account[account] = (packed & ~_M160) | convert(delegatee, uint256)
    log DelegateChanged(delegator=account, fromDelegate=previous, toDelegate=delegatee)
    mode: uint256 = _OTHER_DELEGATED | _CHOSEN
    if delegatee == account:
        mode = _SELF_DELEGATED | _CHOSEN
    elif delegatee == empty(address):
        mode = _CHOSEN
    if balance & (_MODES | _CHOSEN) != mode:
        self._balance[account] = (balance & ~(_MODES | _CHOSEN)) | mode
    self._move_votes(previous, delegatee, balance & _M160)


@internal
def _move_votes(source: address, target: address, amount: uint256):
    if source == target or amount == 0:
        return
    if source != empty(address):
        latest: uint256 = self._latest[source]
        before: uint256 = latest & _M160
        after: uint256 = unsafe_sub(before, amount)  # votes >= the delegators' balances
        self._push(source, latest, after)
        log DelegateVotesChanged(delegate=source, previousVotes=before, newVotes=after)
    if target != empty(address):
        latest: uint256 = self._latest[target]
        before: uint256 = latest & _M160
        after: uint256 = unsafe_add(before, amount)  # <= total supply < 2**160
        self._push(target, latest, after)
        log DelegateVotesChanged(delegate=target, previousVotes=before, newVotes=after)


@internal
def _push(trace: address, latest: uint256, amount: uint256):
    """Write `amount` as of now: overwrite this second's checkpoint or open a new one,
    moving the previous latest into history."""
    count: uint256 = (latest >> 160) & _M48
    key: uint256 = latest >> 208
    if count != 0 and key == block.timestamp:
        self._latest[trace] = (latest & ~_M160) | amount
        return
    if count != 0:
        self._history[trace][count - 1] = (key << 208) | (latest & _M160)
    self._latest[trace] = (block.timestamp << 208) | ((count + 1) << 160) | amount


@view
@internal
def _lookup(trace: address, timepoint: uint256) -> uint256:
    latest: uint256 = self._latest[trace]
    if latest >> 208 <= timepoint:
        return latest & _M160
    # Binary search the history (keys ascending) for the last key <= timepoint.
    low: uint256 = 0
    high: uint256 = (latest >> 160) & _M48
    if high != 0:
        high -= 1
    for i: uint256 in range(48):
        if low >= high:
            break
        mid: uint256 = unsafe_div(unsafe_add(low, high), 2)
        if self._history[trace][mid] >> 208 > timepoint:
            high = mid
        else:
            low = mid + 1
    if high == 0:
        return 0
    return self._history[trace][high - 1] & _M208


@internal
def _accrue(supply: uint256, checkpoint: bool) -> uint256:
    """Checkpoint rewards streamed since the last accrual and return the pool slot.
    `checkpoint` moves lastAccrual to now even when nothing accrued, which callers
    about to change the rate or the reserve need so no unfunded time is paid later."""
    pool: uint256 = self._pool
    last: uint256 = (pool >> 192) & _M48
    if last == block.timestamp:
        return pool
    if pool & _STREAMING == 0 or supply == 0:
        # Nothing streams (or nobody stakes: rewards would only feed the virtual
        # shares), so time passes unpaid.
        if checkpoint or pool & _STREAMING != 0:
            pool = (pool & ~(_M48 << 192)) | (block.timestamp << 192)
            self._pool = pool
        return pool
    stream: uint256 = self._stream
    reserve: uint256 = stream & _M96
    reward: uint256 = min((stream >> 192) * (block.timestamp - last), reserve)
    cut: uint256 = reward * ((pool >> 240) & _M14) // BPS
    reserve -= reward
    self._stream = (stream & (_M64 << 192)) | reserve | ((((stream >> 96) & _M96) + cut) << 96)
    staked: uint256 = (pool & _M96) + reward - cut
    pool = (pool & ~_M96 & ~(_M48 << 192)) | staked | (block.timestamp << 192)
    if reserve == 0:
        pool = pool & ~_STREAMING
    self._pool = pool
    log RewardsAccrued(stakers=reward - cut, treasury=cut)
    return pool


@view
@internal
def _accrued_view() -> (uint256, uint256):
    """The pool and stream slots as _accrue would leave them now."""
    pool: uint256 = self._pool
    stream: uint256 = self._stream
    last: uint256 = (pool >> 192) & _M48
    if (last == block.timestamp or pool & _STREAMING == 0
            or self._latest[_TOTAL] & _M160 == 0):
        return pool, stream
    reserve: uint256 = stream & _M96
    reward: uint256 = min((stream >> 192) * (block.timestamp - last), reserve)
    cut: uint256 = reward * ((pool >> 240) & _M14) // BPS
    stream = (stream & (_M64 << 192)) | (reserve - reward) | ((((stream >> 96) & _M96) + cut) << 96)
    pool = (pool & ~_M96) | ((pool & _M96) + reward - cut)
    return pool, stream


@view
@internal
def _price_view() -> (uint256, uint256):
    return self._accrued_view()[0] & _M96, self._latest[_TOTAL] & _M160


@internal
def _stake(pool: uint256, staked: uint256):
    assert staked <= _M96, "vPHA: deposit too large"
    self._pool = (pool & ~_M96) | staked


@internal
def _set_streaming(rate: uint256, reserve: uint256):
    pool: uint256 = self._pool
    if rate != 0 and reserve != 0:
        self._pool = pool | _STREAMING
    else:
        self._pool = pool & ~_STREAMING


@internal
def _deposit(assets: uint256, receiver: address, self_delegate: bool) -> uint256:
    supply: uint256 = self._latest[_TOTAL] & _M160
    pool: uint256 = self._accrue(supply, False)
    staked: uint256 = pool & _M96
    shares: uint256 = assets * (supply + _VIRTUAL_SHARES) // (staked + 1)
    assert shares != 0, "vPHA: deposit too small for one share"
    self._stake(pool, staked + assets)
    assert extcall IERC20(_ASSET).transferFrom(msg.sender, self, assets), "vPHA: PHA transfer failed"
    self._mint(receiver, shares, self._latest[_TOTAL], self_delegate)  # re-read after the call
    log IERC4626.Deposit(sender=msg.sender, owner=receiver, assets=assets, shares=shares)
    return shares


@view
@internal
def _queue_totals(controller: address) -> (uint256, uint256, uint256):
    """PHA and shares of `controller`'s requests whose unlock period is over, and the
    shares of those still inside it."""
    assets: uint256 = 0
    claimable: uint256 = 0
    pending: uint256 = 0
    cursor: uint256 = (self._account[controller] >> 160) & _M40
    for i: uint256 in range(MAX_OPEN_REQUESTS_LIMIT):
        if cursor == 0:
            break
        b: uint256 = self._request_b[cursor]
        if block.timestamp >= (self._request_a[cursor] >> 160) & _M48:
            assets += b & _M96
            claimable += (b >> 96) & _M120
        else:
            pending += (b >> 96) & _M120
        cursor = b >> 216
    return assets, claimable, pending


@internal
def _claim_queue(
    amount: uint256, receiver: address, controller: address, in_assets: bool
) -> (uint256, uint256):
    """Pay `amount` (PHA if `in_assets`, else request shares) of `controller`'s
    claimable requests to `receiver`, oldest first, splitting the last one touched.
    Returns the PHA and shares paid. The queue order is the order requests were made,
    so requests keep being paid in order; one still in its unlock period (made
    before a shorter period was set) is skipped, not waited for."""
    assert amount != 0, "vPHA: zero amount"
    self._check_controller(controller)
    left: uint256 = amount
    paid_assets: uint256 = 0
    paid_shares: uint256 = 0
    cursor: uint256 = (self._account[controller] >> 160) & _M40
    for i: uint256 in range(MAX_OPEN_REQUESTS_LIMIT):
        if cursor == 0 or left == 0:
            break
        a: uint256 = self._request_a[cursor]
        b: uint256 = self._request_b[cursor]
        nxt: uint256 = b >> 216
        if block.timestamp >= (a >> 160) & _M48:
            assets: uint256 = b & _M96
            shares: uint256 = (b >> 96) & _M120
            whole: uint256 = shares
            if in_assets:
                whole = assets
            if left >= whole:
                self._close_request(cursor, a, b, controller, STATUS_CLAIMED)
                paid_assets += assets
                paid_shares += shares
                left -= whole
            else:
                # Split: the rest keeps >= 1 wei and >= 1 share, so it stays claimable
                # by either function and pays exactly the remainder of the fixed PHA.
                part_assets: uint256 = left
                part_shares: uint256 = left
                if in_assets:
                    part_shares = min(self._ceil_div(shares * left, assets), shares - 1)
                else:
                    part_assets = assets * left // shares
                self._request_b[cursor] = (
                    (b & (_M40 << 216)) | (assets - part_assets) | ((shares - part_shares) << 96)
                )
                paid_assets += part_assets
                paid_shares += part_shares
                left = 0
        cursor = nxt
    assert left == 0, "vPHA: exceeds claimable requests"
    self._pool = self._pool - (paid_assets << 96)
    assert extcall IERC20(_ASSET).transfer(receiver, paid_assets), "vPHA: PHA transfer failed"
    log IERC4626.Withdraw(
        sender=msg.sender,
        receiver=receiver,
        owner=controller,
        assets=paid_assets,
        shares=paid_shares,
    )
    return paid_assets, paid_shares


@view
@internal
def _open_request(a: uint256) -> address:
    """The controller of a pending request, if the caller may act on it."""
    assert (a >> 208) & _M8 == convert(STATUS_PENDING, uint256), "vPHA: request not pending"
    controller: address = convert(a & _M160, address)
    self._check_controller(controller)
    return controller


@view
@internal
def _check_controller(controller: address):
    """The caller acts for `controller`: it is the controller or one of its operators."""
    assert msg.sender == controller or self.isOperator[controller][msg.sender], "vPHA: caller is not the controller or its operator"


@internal
def _close_request(request_id: uint256, a: uint256, b: uint256, controller: address, status: uint8):
    prev: uint256 = a >> 216
    nxt: uint256 = b >> 216
    self._request_a[request_id] = (a & ~(_M8 << 208)) | (convert(status, uint256) << 208)
    account: uint256 = self._account[controller]
    queue: uint256 = account >> 160
    head: uint256 = queue & _M40
    tail: uint256 = (queue >> 40) & _M40
    if prev == 0:
        head = nxt
    else:
        self._request_b[prev] = (self._request_b[prev] & ~(_M40 << 216)) | (nxt << 216)
    if nxt == 0:
        tail = prev
    else:
        self._request_a[nxt] = (self._request_a[nxt] & ~(_M40 << 216)) | (prev << 216)
    queue = head | (tail << 40) | ((((queue >> 80) & _M16) - 1) << 80)
    self._account[controller] = (account & _M160) | (queue << 160)


@internal
def _check_owner():
    assert msg.sender == self.owner, "vPHA: caller is not the owner"


@internal
def _transfer_ownership(new_owner: address):
    self._check_owner()
    assert new_owner != empty(address), "vPHA: new owner is the zero address"
    previous: address = self.owner
    self.owner = new_owner
    log OwnershipTransferred(previous_owner=previous, new_owner=new_owner)


@view
@internal
def _recover(struct_hash: bytes32, v: uint8, r: bytes32, s: bytes32) -> address:
    digest: bytes32 = keccak256(concat(b"\x19\x01", self._domain_separator(), struct_hash))
    assert convert(s, uint256) <= _MAX_S, "vPHA: invalid signature"
    signer: address = ecrecover(digest, v, r, s)
    assert signer != empty(address), "vPHA: invalid signature"
    return signer


@pure
@internal
def _ceil_div(numerator: uint256, denominator: uint256) -> uint256:
    return (numerator + denominator - 1) // denominator


@view
@internal
def _domain_separator() -> bytes32:
    if chain.id == _CACHED_CHAIN_ID:
        return _CACHED_DOMAIN_SEPARATOR
    return self._build_domain_separator()


@view
@internal
def _build_domain_separator() -> bytes32:
    return keccak256(
        abi_encode(_TYPE_HASH, keccak256(name), keccak256(_VERSION), chain.id, self)
    )
