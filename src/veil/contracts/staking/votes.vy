# pragma version ~=0.4.3
"""
@title vPHA voting power: delegation and checkpoints (ERC-5805, ERC-6372)
@custom:contract-name votes
@license MIT
@notice Shares vote only once their holder delegates, even to itself. Every change of
        a delegate's votes and of the total supply is checkpointed by timestamp, so the
        Governor reads the power a proposal snapshot saw.
@dev Written here rather than taken from snekmate: snekmate 0.1.2 has no checkpoints or
     votes module, and its erc20 module has no hook through which a transfer could move
     votes. The vault calls _move_votes from its own ERC-20 core instead.
     Trace layout: the latest checkpoint of a delegate is value(160) | count(48) |
     key(48) in `latest`; older ones sit in `history` as value(208) | key(48). The
     total-supply trace (key TOTAL, the zero address, which never votes) is the total
     supply itself, so a mint writes one slot, not two.
"""

from . import holders

uses: holders


event DelegateChanged:
    delegator: indexed(address)
    fromDelegate: indexed(address)
    toDelegate: indexed(address)


event DelegateVotesChanged:
    delegate: indexed(address)
    previousVotes: uint256
    newVotes: uint256


TOTAL: constant(address) = empty(address)  # trace key of the total supply

_M48: constant(uint256) = 2**48 - 1
_M160: constant(uint256) = 2**160 - 1
_M208: constant(uint256) = 2**208 - 1

latest: HashMap[address, uint256]
history: HashMap[address, HashMap[uint256, uint256]]


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
    return self.latest[account] & _M160


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
    return self._lookup(TOTAL, timepoint)


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
    return convert((self.latest[account] >> 160) & _M48, uint32)


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
    latest: uint256 = self.latest[account]
    count: uint256 = (latest >> 160) & _M48
    if account == empty(address):
        count = 0  # slot 0x0 holds the total-supply trace, not anyone's votes
    index: uint256 = convert(pos, uint256)
    assert index < count, "vPHA: no such checkpoint"
    if index + 1 == count:
        return convert(latest >> 208, uint48), convert(latest & _M160, uint208)
    packed: uint256 = self.history[account][index]
    return convert(packed >> 208, uint48), convert(packed & _M208, uint208)


@view
@external
def delegates(account: address) -> address:
    """
    @notice Who `account` has delegated its voting power to (zero: nobody, no votes).
    @param account The delegator.
    @return address The delegate.
    """
    return self._delegate_in(account, holders.balances[account])


@external
def delegate(delegatee: address):
    """
    @notice Give the caller's voting power to `delegatee` (yourself to vote directly;
            the zero address to stop voting).
    @param delegatee The delegate.
    """
    self._delegate(msg.sender, delegatee)


@view
@internal
def _delegate_in(account: address, packed: uint256) -> address:
    """The delegate of `account`, given its `holders.balances` word `packed`, which every
    caller has already read: only delegation to another account costs a second load."""
    if packed & holders.SELF_DELEGATED != 0:
        return account
    if packed & holders.OTHER_DELEGATED != 0:
        return convert(holders.accounts[account] & _M160, address)
    return empty(address)


@internal
def _delegate(account: address, delegatee: address):
    packed: uint256 = holders.accounts[account]
    balance: uint256 = holders.balances[account]
    # The stored delegate is current only in the other-delegate mode: self mode may
    # have been set by depositAndDelegate without touching `holders.accounts`.
    previous: address = empty(address)
    if balance & holders.SELF_DELEGATED != 0:
        previous = account
    elif balance & holders.OTHER_DELEGATED != 0:
        previous = convert(packed & _M160, address)
    holders.accounts[account] = (packed & ~_M160) | convert(delegatee, uint256)
    log DelegateChanged(delegator=account, fromDelegate=previous, toDelegate=delegatee)
    mode: uint256 = holders.OTHER_DELEGATED | holders.CHOSEN
    if delegatee == account:
        mode = holders.SELF_DELEGATED | holders.CHOSEN
    elif delegatee == empty(address):
        mode = holders.CHOSEN
    if balance & (holders.MODES | holders.CHOSEN) != mode:
        holders.balances[account] = (balance & ~(holders.MODES | holders.CHOSEN)) | mode
    self._move_votes(previous, delegatee, balance & _M160)


@internal
def _move_votes(source: address, target: address, amount: uint256):
    if source == target or amount == 0:
        return
    if source != empty(address):
        latest: uint256 = self.latest[source]
        before: uint256 = latest & _M160
        after: uint256 = unsafe_sub(before, amount)  # votes >= the delegators' balances
        self._push(source, latest, after)
        log DelegateVotesChanged(delegate=source, previousVotes=before, newVotes=after)
    if target != empty(address):
        latest: uint256 = self.latest[target]
        before: uint256 = latest & _M160
        after: uint256 = unsafe_add(before, amount)  # <= total supply < 2**160
        self._push(target, latest, after)
        log DelegateVotesChanged(delegate=target, previousVotes=before, newVotes=after)


@internal
def _push(trace: address, latest: uint256, amount: uint256):
    """Write `amount` as of now: overwrite this second's checkpoint or open a new one,
    moving the previous latest into history. `latest` is the trace's slot as the caller
    read it, so a caller that needed it anyway pays no second load."""
    count: uint256 = (latest >> 160) & _M48
    key: uint256 = latest >> 208
    if count != 0 and key == block.timestamp:
        self.latest[trace] = (latest & ~_M160) | amount
        return
    if count != 0:
        self.history[trace][count - 1] = (key << 208) | (latest & _M160)
    self.latest[trace] = (block.timestamp << 208) | ((count + 1) << 160) | amount


@view
@internal
def _lookup(trace: address, timepoint: uint256) -> uint256:
    latest: uint256 = self.latest[trace]
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
        if self.history[trace][mid] >> 208 > timepoint:
            high = mid
        else:
            low = mid + 1
    if high == 0:
        return 0
    return self.history[trace][high - 1] & _M208
