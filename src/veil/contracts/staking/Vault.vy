# pragma version ~=0.4.3
# pragma optimize codesize
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
@dev Modules: `unlock_queue` keeps the redeem requests, `votes` the delegation and
     checkpoints, `holders` the two packed words per account that both share with the
     ERC-20 core here. From snekmate: `ownable` (the owner, handed to the timelock),
     `eip712_domain_separator` (EIP-712 domain, ERC-5267), `ecdsa` (signature
     recovery, low-s rule) and `math` (ceil_div). Not from snekmate, and why:
       - `tokens/erc20`: it keeps balances and total supply in slots of its own and has
         no hook, so a transfer could not move votes, and every mint, burn or transfer
         would cost extra slots (the balance word carries the delegation mode, and the
         total supply is the head of the votes' total-supply trace);
       - `extensions/erc4626`: built on that erc20, redeems synchronously (ERC-7540
         requests are asynchronous), and counts every PHA the vault holds as assets,
         where the reward reserve, the treasury's share and the queued PHA are not;
       - `math._mul_div`: the 512-bit product is never needed (assets fit 96 bits and
         shares 160, so every product fits 256 bits, and a checked multiplication
         reverts on anything else) and would add gas to every deposit and request.
     Optimised for code size (the pragma above): with the default gas optimisation the
     modules cost about 700 bytes and the vault no longer fits EIP-170's 24,576 bytes
     (25,221 deployed; 24,282 with this pragma). Venom would leave more room (22,861) but
     is still experimental in 0.4.3, and a contract that holds every staked PHA is
     compiled with the stable one; codesize costs about 0.5% gas on deposits and
     requests. tests/contracts/staking/test_vault_bounds_unit.py holds the size to the
     limit with a margin.
     Storage of the vault itself is packed by hand because the gas benchmark compares
     deposit, unlock request, claim, delegate and delegated transfer with OpenZeppelin
     5.x ERC4626 + ERC20Votes:
       _pool   staked(96) | pending(96) | lastAccrual(48) | bps(14) | streaming(1)
       _stream reserve(96) | treasuryOwed(96) | rewardRate(64)
     No reentrancy lock: the only external calls go to the immutable asset (PHA, no
     transfer hooks) and every state change is written before them.
     PHA amounts fit 96 bits because PHA's supply is capped at 1e27 < 2**96; every
     place where a packed field grows checks its bound anyway.
"""

from ethereum.ercs import IERC20
from ethereum.ercs import IERC20Detailed
from ethereum.ercs import IERC4626

from snekmate.auth import ownable
from snekmate.utils import ecdsa
from snekmate.utils import eip712_domain_separator as eip712
from snekmate.utils import math

from . import holders
from . import unlock_queue
from . import votes

implements: IERC20
implements: IERC20Detailed
implements: IERC4626

initializes: ownable
initializes: eip712
initializes: holders
initializes: votes[holders := holders]
initializes: unlock_queue[holders := holders]

exports: (
    ownable.owner,
    ownable.transfer_ownership,
    eip712.eip712Domain,
    votes.clock,
    votes.CLOCK_MODE,
    votes.getVotes,
    votes.getPastVotes,
    votes.getPastTotalSupply,
    votes.numCheckpoints,
    votes.checkpoints,
    votes.delegates,
    votes.delegate,
    unlock_queue.MAX_UNLOCK_PERIOD,
    unlock_queue.MAX_OPEN_REQUESTS_LIMIT,
    unlock_queue.isOperator,
    unlock_queue.setOperator,
    unlock_queue.maxWithdraw,
    unlock_queue.maxRedeem,
    unlock_queue.redeemRequest,
    unlock_queue.openRequests,
    unlock_queue.openRequestCount,
    unlock_queue.pendingRedeemRequest,
    unlock_queue.claimableRedeemRequest,
    unlock_queue.unlockPeriod,
    unlock_queue.maxOpenRequests,
)


# --- events (ERC-20 and ERC-4626 events come from the interfaces, the queue's and
# the votes' from their modules) ----------------------------------------------------

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


event TreasurySet:
    treasury: indexed(address)


event TreasuryShareSet:
    bps: uint256


# --- constants -------------------------------------------------------------------

name: public(constant(String[25])) = "Staked PHA"
symbol: public(constant(String[5])) = "vPHA"
DECIMALS_OFFSET: public(constant(uint8)) = 6
decimals: public(constant(uint8)) = 18 + DECIMALS_OFFSET
_VIRTUAL_SHARES: constant(uint256) = 10**6  # 10 ** DECIMALS_OFFSET

BPS: constant(uint256) = 10_000
DEFAULT_TREASURY_SHARE_BPS: constant(uint256) = 1000

_M14: constant(uint256) = 2**14 - 1
_M48: constant(uint256) = 2**48 - 1
_M64: constant(uint256) = 2**64 - 1
_M96: constant(uint256) = 2**96 - 1
_M160: constant(uint256) = 2**160 - 1
_STREAMING: constant(uint256) = 2**254

# ERC-165 interface ids (tests recompute them from the ERCs' function selectors).
_IERC165_ID: constant(bytes4) = 0x01ffc9a7
_IERC7540_OPERATOR_ID: constant(bytes4) = 0xe3bc4e65
_IERC7540_REDEEM_ID: constant(bytes4) = 0x620ee8e4
_IERC7575_ID: constant(bytes4) = 0x2f0a18c5

_VERSION: constant(String[20]) = "1"
_PERMIT_TYPE_HASH: constant(bytes32) = keccak256(
    "Permit(address owner,address spender,uint256 value,uint256 nonce,uint256 deadline)"
)
_DELEGATION_TYPE_HASH: constant(bytes32) = keccak256(
    "Delegation(address delegatee,uint256 nonce,uint256 expiry)"
)

_ASSET: immutable(address)


# --- storage ---------------------------------------------------------------------

allowance: public(HashMap[address, HashMap[address, uint256]])
nonces: public(HashMap[address, uint256])
treasury: public(address)

_pool: uint256
_stream: uint256


@deploy
def __init__(asset: address, owner: address, treasury: address):
    """
    @notice Create the vault over `asset` (PHA).
    @dev snekmate's ownable starts with the deployer as owner; the ownership then
         moves to `owner` at once (two OwnershipTransferred events).
    @param asset The staked token, PHA.
    @param owner The governor of the parameters; the deploy script hands this to the
           timelock.
    @param treasury Receives the treasury share of rewards.
    """
    assert asset != empty(address), "vPHA: asset is the zero address"
    assert owner != empty(address), "vPHA: owner is the zero address"
    assert treasury != empty(address), "vPHA: treasury is the zero address"
    _ASSET = asset
    ownable.__init__()
    ownable._transfer_ownership(owner)
    eip712.__init__(name, _VERSION)
    unlock_queue.__init__()
    self.treasury = treasury
    self._pool = (block.timestamp << 192) | (DEFAULT_TREASURY_SHARE_BPS << 240)
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
    return holders.balances[arg0] & _M160


@view
@external
def totalSupply() -> uint256:
    """
    @notice Total vPHA shares; pending unlock requests hold none.
    @return uint256 Shares in the smallest unit (24 decimals).
    """
    return votes.latest[votes.TOTAL] & _M160


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
    return eip712._domain_separator_v4()


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
    return math._ceil_div(shares * (staked + 1), supply + _VIRTUAL_SHARES)


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
    supply: uint256 = votes.latest[votes.TOTAL] & _M160
    pool: uint256 = self._accrue(supply, False)
    staked: uint256 = pool & _M96
    assets: uint256 = math._ceil_div(shares * (staked + 1), supply + _VIRTUAL_SHARES)
    self._stake(pool, staked + assets)
    assert extcall IERC20(_ASSET).transferFrom(msg.sender, self, assets), "vPHA: PHA transfer failed"
    self._mint(receiver, shares, votes.latest[votes.TOTAL], False)  # re-read after the call
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
    unlock_queue._check_controller(controller)
    if msg.sender != owner and not unlock_queue.isOperator[owner][msg.sender]:
        self._spend_allowance(owner, msg.sender, shares)
    params: uint256 = 0
    account: uint256 = 0
    params, account = unlock_queue._check_room(controller)

    total: uint256 = votes.latest[votes.TOTAL]
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

    request_id: uint256 = unlock_queue._enqueue(controller, params, account, assets, shares)
    log unlock_queue.RedeemRequest(
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
    controller: address = empty(address)
    assets: uint256 = 0
    shares: uint256 = 0
    controller, assets, shares = unlock_queue._close(requestId, unlock_queue.STATUS_CLAIMED)
    pool: uint256 = self._pool
    self._pool = pool - (assets << 96)
    assert extcall IERC20(_ASSET).transfer(controller, assets), "vPHA: PHA transfer failed"
    log IERC4626.Withdraw(
        sender=msg.sender,
        receiver=controller,
        owner=controller,
        assets=assets,
        shares=shares,
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
    controller: address = empty(address)
    assets: uint256 = 0
    burned: uint256 = 0
    controller, assets, burned = unlock_queue._close(requestId, unlock_queue.STATUS_CANCELLED)

    total: uint256 = votes.latest[votes.TOTAL]
    supply: uint256 = total & _M160
    pool: uint256 = self._accrue(supply, False)
    staked: uint256 = pool & _M96
    denominator: uint256 = staked + 1
    shares: uint256 = math._ceil_div(assets * (supply + _VIRTUAL_SHARES), denominator)
    needed: uint256 = math._ceil_div(shares * denominator, supply + _VIRTUAL_SHARES)
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
    log unlock_queue.RedeemRequestCancelled(
        controller=controller, requestId=requestId, sender=msg.sender, assets=assets, shares=shares
    )
    return shares


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
    supply: uint256 = votes.latest[votes.TOTAL] & _M160
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
    supply: uint256 = votes.latest[votes.TOTAL] & _M160
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
    self._accrue(votes.latest[votes.TOTAL] & _M160, False)


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


# =================================================================================
# Governance (owner = timelock)
# =================================================================================


@external
def setRewardRate(rate: uint256):
    """
    @notice Set the reward stream in PHA wei per second. Accrues at the old rate first.
    @param rate Wei per second (< 2**64).
    """
    ownable._check_owner()
    assert rate <= _M64, "vPHA: rate too large"
    self._accrue(votes.latest[votes.TOTAL] & _M160, True)
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
    ownable._check_owner()
    unlock_queue._set_unlock_period(period)


@external
def setMaxOpenRequests(limit: uint256):
    """
    @notice Set how many pending unlock requests one controller may hold.
    @param limit Between 1 and 64.
    """
    ownable._check_owner()
    unlock_queue._set_max_open_requests(limit)


@external
def setTreasury(treasury: address):
    """
    @notice Set the treasury. Its unreleased share is paid to the new address.
    @param treasury Not the zero address.
    """
    ownable._check_owner()
    assert treasury != empty(address), "vPHA: treasury is the zero address"
    self.treasury = treasury
    log TreasurySet(treasury=treasury)


@external
def setTreasuryShareBps(bps: uint256):
    """
    @notice Set the treasury's share of rewards. Accrues at the old share first.
    @param bps Basis points, at most 10000.
    """
    ownable._check_owner()
    assert bps <= BPS, "vPHA: share above 100%"
    pool: uint256 = self._accrue(votes.latest[votes.TOTAL] & _M160, False)
    self._pool = (pool & ~(_M14 << 240)) | (bps << 240)
    log TreasuryShareSet(bps=bps)


@external
def transferOwnership(new_owner: address):
    """
    @notice Hand the vault's parameters to `new_owner`. Owner only. The same as
            snekmate's transfer_ownership (exported too; veil's deploy code calls it),
            under OpenZeppelin's name. There is no renounce: the vault always has an
            owner.
    @param new_owner Not the zero address.
    """
    ownable._check_owner()
    assert new_owner != empty(address), "ownable: new owner is the zero address"
    ownable._transfer_ownership(new_owner)


# =================================================================================
# Votes (ERC-5805, ERC-6372)
# =================================================================================


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
    votes._delegate(signer, delegatee)


# =================================================================================
# internals
# =================================================================================


@internal
def _transfer(owner: address, to: address, amount: uint256):
    assert to != empty(address), "vPHA: transfer to the zero address"
    packed: uint256 = holders.balances[owner]
    assert packed & _M160 >= amount, "vPHA: transfer amount exceeds balance"
    holders.balances[owner] = unsafe_sub(packed, amount)
    received: uint256 = holders.balances[to]  # read after the write: `to` may be `owner`
    holders.balances[to] = unsafe_add(received, amount)  # < 2**160: no carry into the mode
    votes._move_votes(votes._delegate_in(owner, packed), votes._delegate_in(to, received), amount)
    log IERC20.Transfer(sender=owner, receiver=to, value=amount)


@internal
def _mint(to: address, shares: uint256, latest: uint256, self_delegate: bool):
    """`latest` is the total-supply trace slot as the caller read it. `self_delegate`
    makes a holder that never chose a delegate its own delegate; its whole balance,
    old and new, then starts counting as votes."""
    assert to != empty(address), "vPHA: mint to the zero address"
    supply: uint256 = (latest & _M160) + shares
    assert supply <= _M160, "vPHA: supply overflow"
    votes._push(votes.TOTAL, latest, supply)
    packed: uint256 = holders.balances[to]
    if self_delegate and packed & (holders.MODES | holders.CHOSEN) == 0:
        # Only the mode bits: holders.accounts keeps no delegate for self mode.
        holders.balances[to] = unsafe_add(packed | holders.SELF_DELEGATED, shares)
        log votes.DelegateChanged(delegator=to, fromDelegate=empty(address), toDelegate=to)
        votes._move_votes(empty(address), to, unsafe_add(packed & _M160, shares))
    else:
        holders.balances[to] = unsafe_add(packed, shares)  # balance <= supply < 2**160
        votes._move_votes(empty(address), votes._delegate_in(to, packed), shares)
    log IERC20.Transfer(sender=empty(address), receiver=to, value=shares)


@internal
def _burn(owner: address, shares: uint256, latest: uint256):
    """`latest` is the total-supply trace slot as the caller read it."""
    packed: uint256 = holders.balances[owner]
    assert packed & _M160 >= shares, "vPHA: burn amount exceeds balance"
    holders.balances[owner] = unsafe_sub(packed, shares)
    votes._push(votes.TOTAL, latest, unsafe_sub(latest & _M160, shares))
    votes._move_votes(votes._delegate_in(owner, packed), empty(address), shares)
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
            or votes.latest[votes.TOTAL] & _M160 == 0):
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
    return self._accrued_view()[0] & _M96, votes.latest[votes.TOTAL] & _M160


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
    supply: uint256 = votes.latest[votes.TOTAL] & _M160
    pool: uint256 = self._accrue(supply, False)
    staked: uint256 = pool & _M96
    shares: uint256 = assets * (supply + _VIRTUAL_SHARES) // (staked + 1)
    assert shares != 0, "vPHA: deposit too small for one share"
    self._stake(pool, staked + assets)
    assert extcall IERC20(_ASSET).transferFrom(msg.sender, self, assets), "vPHA: PHA transfer failed"
    self._mint(receiver, shares, votes.latest[votes.TOTAL], self_delegate)  # re-read after the call
    log IERC4626.Deposit(sender=msg.sender, owner=receiver, assets=assets, shares=shares)
    return shares


@internal
def _claim_queue(
    amount: uint256, receiver: address, controller: address, in_assets: bool
) -> (uint256, uint256):
    """Pay `amount` (PHA if `in_assets`, else request shares) of `controller`'s
    claimable requests to `receiver`, oldest first (the queue splits the last one
    touched). Returns the PHA and shares paid."""
    paid_assets: uint256 = 0
    paid_shares: uint256 = 0
    paid_assets, paid_shares = unlock_queue._claim_due(amount, controller, in_assets)
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
def _recover(struct_hash: bytes32, v: uint8, r: bytes32, s: bytes32) -> address:
    """The signer of an EIP-712 message of this domain; snekmate's ecdsa refuses a
    high s (malleable) and a signature that recovers to no one."""
    return ecdsa._recover_vrs(
        eip712._hash_typed_data_v4(struct_hash),
        convert(v, uint256),
        convert(r, uint256),
        convert(s, uint256),
    )
