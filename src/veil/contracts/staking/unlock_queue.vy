# pragma version ~=0.4.3
"""
@title The vPHA unlock queue (ERC-7540 redeem requests and operators)
@custom:contract-name unlock_queue
@license MIT
@notice Each controller has a queue of open redeem requests, oldest first. A request
        fixes the PHA owed when it is made and becomes claimable after the unlock
        period then in force. Only the controller or its ERC-7540 operators add to,
        claim from or cancel in its queue. This module keeps the requests and their
        order; the vault moves the shares and the PHA.
@dev Storage: `params` unlockPeriod(48) | maxOpenRequests(16) | nextRequestId(40);
     request A: controller(160) | claimableAt(48) | status(8) | prev(40);
     request B: assets(96) | shares(120) | next(40); a controller's queue (head, tail,
     count) is packed in `holders.accounts` beside its delegate. Request ids start at 1,
     so 0 marks the end of a list.
"""

from . import holders

uses: holders


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


event UnlockPeriodSet:
    period: uint256


event MaxOpenRequestsSet:
    limit: uint256


MAX_UNLOCK_PERIOD: public(constant(uint256)) = 365 * 86400
MAX_OPEN_REQUESTS_LIMIT: public(constant(uint256)) = 64
DEFAULT_UNLOCK_PERIOD: constant(uint256) = 21 * 86400
DEFAULT_MAX_OPEN_REQUESTS: constant(uint256) = 8

STATUS_NONE: constant(uint8) = 0
STATUS_PENDING: constant(uint8) = 1
STATUS_CLAIMED: constant(uint8) = 2
STATUS_CANCELLED: constant(uint8) = 3

_M8: constant(uint256) = 2**8 - 1
_M16: constant(uint256) = 2**16 - 1
_M40: constant(uint256) = 2**40 - 1
_M48: constant(uint256) = 2**48 - 1
_M64: constant(uint256) = 2**64 - 1
_M96: constant(uint256) = 2**96 - 1
_M120: constant(uint256) = 2**120 - 1
_M160: constant(uint256) = 2**160 - 1

isOperator: public(HashMap[address, HashMap[address, bool]])
params: uint256
request_a: HashMap[uint256, uint256]
request_b: HashMap[uint256, uint256]


@deploy
def __init__():
    self.params = DEFAULT_UNLOCK_PERIOD | (DEFAULT_MAX_OPEN_REQUESTS << 48) | (1 << 64)


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
    return self._totals(controller)[0]


@view
@external
def maxRedeem(controller: address) -> uint256:
    """
    @notice ERC-7540: shares that `controller` can redeem now, the sum of its requests
            whose unlock period is over.
    @param controller The controller of the requests.
    @return uint256 Shares (as burned when the requests were made).
    """
    return self._totals(controller)[1]


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
    a: uint256 = self.request_a[requestId]
    b: uint256 = self.request_b[requestId]
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
    cursor: uint256 = (holders.accounts[account] >> 160) & _M40
    for i: uint256 in range(MAX_OPEN_REQUESTS_LIMIT):
        if cursor == 0:
            break
        ids.append(cursor)
        cursor = self.request_b[cursor] >> 216
    return ids


@view
@external
def openRequestCount(account: address) -> uint256:
    """
    @notice Number of pending unlock requests controlled by `account`.
    @param account The controller.
    @return uint256 The count (at most maxOpenRequests()).
    """
    return (holders.accounts[account] >> 240) & _M16


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
        return self._totals(controller)[2]
    a: uint256 = self.request_a[requestId]
    if (a & _M160 != convert(controller, uint256)
            or (a >> 208) & _M8 != convert(STATUS_PENDING, uint256)
            or block.timestamp >= (a >> 160) & _M48):
        return 0
    return (self.request_b[requestId] >> 96) & _M120


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
        return self._totals(controller)[1]
    a: uint256 = self.request_a[requestId]
    if (a & _M160 != convert(controller, uint256)
            or (a >> 208) & _M8 != convert(STATUS_PENDING, uint256)
            or block.timestamp < (a >> 160) & _M48):
        return 0
    return (self.request_b[requestId] >> 96) & _M120


@view
@external
def unlockPeriod() -> uint256:
    """
    @notice Seconds between an unlock request and its claim (fixed per request when
            it is made).
    @return uint256 Seconds.
    """
    return self.params & _M48


@view
@external
def maxOpenRequests() -> uint256:
    """
    @notice Most pending unlock requests one controller may hold.
    @return uint256 The limit.
    """
    return (self.params >> 48) & _M16


@view
@internal
def _check_controller(controller: address):
    """The caller acts for `controller`: it is the controller or one of its operators."""
    assert msg.sender == controller or self.isOperator[controller][msg.sender], "vPHA: caller is not the controller or its operator"


@view
@internal
def _check_room(controller: address) -> (uint256, uint256):
    """Refuse a request into a full queue, before the vault burns anything. Returns the
    `params` and `holders.accounts[controller]` words for _enqueue, which the vault's
    burn in between does not write."""
    params: uint256 = self.params
    account: uint256 = holders.accounts[controller]
    assert (account >> 240) & _M16 < (params >> 48) & _M16, "vPHA: too many open unlock requests"
    return params, account


@internal
def _enqueue(
    controller: address, params: uint256, account: uint256, assets: uint256, shares: uint256
) -> uint256:
    """Append a request owing `assets` for `shares` (both already bounded by the vault's
    96-bit pool and 120-bit share fields) to the tail of `controller`'s queue."""
    request_id: uint256 = params >> 64
    assert request_id <= _M40, "vPHA: request ids exhausted"
    self.params = (params & _M64) | ((request_id + 1) << 64)
    claimable_at: uint256 = block.timestamp + (params & _M48)
    queue: uint256 = account >> 160
    count: uint256 = (queue >> 80) & _M16
    tail: uint256 = (queue >> 40) & _M40
    self.request_a[request_id] = (
        convert(controller, uint256)
        | (claimable_at << 160)
        | (convert(STATUS_PENDING, uint256) << 208)
        | (tail << 216)
    )
    self.request_b[request_id] = assets | (shares << 96)
    if tail == 0:
        queue = request_id | (request_id << 40) | ((count + 1) << 80)
    else:
        self.request_b[tail] = self.request_b[tail] | (request_id << 216)
        queue = (queue & _M40) | (request_id << 40) | ((count + 1) << 80)
    holders.accounts[controller] = (account & _M160) | (queue << 160)
    return request_id


@internal
def _close(request_id: uint256, status: uint8) -> (address, uint256, uint256):
    """Take a whole pending request out of its queue as claimed (only once its unlock
    period is over) or cancelled. Returns its controller, PHA and shares."""
    a: uint256 = self.request_a[request_id]
    assert (a >> 208) & _M8 == convert(STATUS_PENDING, uint256), "vPHA: request not pending"
    controller: address = convert(a & _M160, address)
    self._check_controller(controller)
    if status == STATUS_CLAIMED:
        assert block.timestamp >= (a >> 160) & _M48, "vPHA: unlock period not over"
    b: uint256 = self.request_b[request_id]
    self._unlink(request_id, a, b, controller, status)
    return controller, b & _M96, (b >> 96) & _M120


@internal
def _claim_due(amount: uint256, controller: address, in_assets: bool) -> (uint256, uint256):
    """Take `amount` (PHA if `in_assets`, else request shares) out of `controller`'s
    claimable requests, oldest first, splitting the last one touched. Returns the PHA
    and shares taken; the vault pays them. The queue order is the order requests were
    made, so requests keep being paid in order; one still in its unlock period (made
    before a shorter period was set) is skipped, not waited for."""
    assert amount != 0, "vPHA: zero amount"
    self._check_controller(controller)
    left: uint256 = amount
    paid_assets: uint256 = 0
    paid_shares: uint256 = 0
    cursor: uint256 = (holders.accounts[controller] >> 160) & _M40
    for i: uint256 in range(MAX_OPEN_REQUESTS_LIMIT):
        if cursor == 0 or left == 0:
            break
        a: uint256 = self.request_a[cursor]
        b: uint256 = self.request_b[cursor]
        nxt: uint256 = b >> 216
        if block.timestamp >= (a >> 160) & _M48:
            assets: uint256 = b & _M96
            shares: uint256 = (b >> 96) & _M120
            whole: uint256 = shares
            if in_assets:
                whole = assets
            if left >= whole:
                self._unlink(cursor, a, b, controller, STATUS_CLAIMED)
                paid_assets += assets
                paid_shares += shares
                left -= whole
            else:
                # Split: the rest keeps >= 1 wei and >= 1 share, so it stays claimable
                # by either function and pays exactly the remainder of the fixed PHA.
                part_assets: uint256 = left
                part_shares: uint256 = left
                if in_assets:
                    part_shares = min((shares * left + assets - 1) // assets, shares - 1)
                else:
                    part_assets = assets * left // shares
                self.request_b[cursor] = (
                    (b & (_M40 << 216)) | (assets - part_assets) | ((shares - part_shares) << 96)
                )
                paid_assets += part_assets
                paid_shares += part_shares
                left = 0
        cursor = nxt
    assert left == 0, "vPHA: exceeds claimable requests"
    return paid_assets, paid_shares


@internal
def _set_unlock_period(period: uint256):
    assert period <= MAX_UNLOCK_PERIOD, "vPHA: unlock period too long"
    self.params = (self.params & ~_M48) | period
    log UnlockPeriodSet(period=period)


@internal
def _set_max_open_requests(limit: uint256):
    assert limit >= 1 and limit <= MAX_OPEN_REQUESTS_LIMIT, "vPHA: limit out of range"
    self.params = (self.params & ~(_M16 << 48)) | (limit << 48)
    log MaxOpenRequestsSet(limit=limit)


@view
@internal
def _totals(controller: address) -> (uint256, uint256, uint256):
    """PHA and shares of `controller`'s requests whose unlock period is over, and the
    shares of those still inside it."""
    assets: uint256 = 0
    claimable: uint256 = 0
    pending: uint256 = 0
    cursor: uint256 = (holders.accounts[controller] >> 160) & _M40
    for i: uint256 in range(MAX_OPEN_REQUESTS_LIMIT):
        if cursor == 0:
            break
        b: uint256 = self.request_b[cursor]
        if block.timestamp >= (self.request_a[cursor] >> 160) & _M48:
            assets += b & _M96
            claimable += (b >> 96) & _M120
        else:
            pending += (b >> 96) & _M120
        cursor = b >> 216
    return assets, claimable, pending


@internal
def _unlink(request_id: uint256, a: uint256, b: uint256, controller: address, status: uint8):
    prev: uint256 = a >> 216
    nxt: uint256 = b >> 216
    self.request_a[request_id] = (a & ~(_M8 << 208)) | (convert(status, uint256) << 208)
    account: uint256 = holders.accounts[controller]
    queue: uint256 = account >> 160
    head: uint256 = queue & _M40
    tail: uint256 = (queue >> 40) & _M40
    if prev == 0:
        head = nxt
    else:
        self.request_b[prev] = (self.request_b[prev] & ~(_M40 << 216)) | (nxt << 216)
    if nxt == 0:
        tail = prev
    else:
        self.request_a[nxt] = (self.request_a[nxt] & ~(_M40 << 216)) | (prev << 216)
    queue = head | (tail << 40) | ((((queue >> 80) & _M16) - 1) << 80)
    holders.accounts[controller] = (account & _M160) | (queue << 160)
