# pragma version ~=0.4.3
# pragma nonreentrancy off
"""
@title veil Timelock
@custom:contract-name Timelock
@license GNU Affero General Public License v3.0 only
@notice The owner of every veil parameter. It is snekmate's
        `timelock_controller` module with nothing added, deployed the
        way OpenZeppelin's GovernorTimelockControl expects: the Governor
        holds PROPOSER_ROLE and CANCELLER_ROLE, EXECUTOR_ROLE is granted
        to the zero address (anyone may execute a ready operation), and
        the timelock administers itself, so roles and the minimum delay
        change only through a proposal that targets the timelock.

        Exposed (snekmate names; the batch functions are re-bounded here): PROPOSER_ROLE, EXECUTOR_ROLE,
        CANCELLER_ROLE, DEFAULT_ADMIN_ROLE, hasRole, getRoleAdmin,
        grantRole, revokeRole, renounceRole, set_role_admin,
        get_minimum_delay, get_timestamp, get_operation_state,
        is_operation, is_operation_pending, is_operation_ready,
        is_operation_done, hash_operation, hash_operation_batch,
        schedule, schedule_batch, execute, execute_batch, cancel,
        update_delay, supportsInterface, onERC721Received,
        onERC1155Received, onERC1155BatchReceived, and a payable
        fallback so that it can hold ETH.
        Payloads are limited to 1,024 bytes each (snekmate's bound) and
        batches to 16 calls (see MAX_BATCH below).
"""


from snekmate.auth import access_control
initializes: access_control


from snekmate.governance import timelock_controller
initializes: timelock_controller[access_control := access_control]


# Everything of snekmate's timelock except its three batch entry points,
# which take arrays of up to 255 payloads of 1,024 bytes: Vyper reserves
# memory for the bound, so a one-call batch costs about 1.5 M gas there.
# This contract provides the same three functions, same selectors, same
# operation ids and events, bounded to MAX_BATCH calls.
exports: (
    access_control.DEFAULT_ADMIN_ROLE,
    access_control.hasRole,
    access_control.getRoleAdmin,
    access_control.grantRole,
    access_control.revokeRole,
    access_control.renounceRole,
    access_control.set_role_admin,
    timelock_controller.PROPOSER_ROLE,
    timelock_controller.EXECUTOR_ROLE,
    timelock_controller.CANCELLER_ROLE,
    timelock_controller.IERC721_TOKENRECEIVER_SELECTOR,
    timelock_controller.IERC1155_TOKENRECEIVER_SINGLE_SELECTOR,
    timelock_controller.IERC1155_TOKENRECEIVER_BATCH_SELECTOR,
    timelock_controller.get_timestamp,
    timelock_controller.get_minimum_delay,
    timelock_controller.__default__,
    timelock_controller.supportsInterface,
    timelock_controller.is_operation,
    timelock_controller.is_operation_pending,
    timelock_controller.is_operation_ready,
    timelock_controller.is_operation_done,
    timelock_controller.get_operation_state,
    timelock_controller.hash_operation,
    timelock_controller.schedule,
    timelock_controller.cancel,
    timelock_controller.execute,
    timelock_controller.update_delay,
    timelock_controller.onERC721Received,
    timelock_controller.onERC1155Received,
    timelock_controller.onERC1155BatchReceived,
)


# Calls per batch; equals the Governor's MAX_ACTIONS.
MAX_BATCH: public(constant(uint256)) = 16
_PAYLOAD: constant(uint256) = 1_024


@deploy
@payable
def __init__(
    minimum_delay_: uint256,
    proposers_: DynArray[address, 255],
    executors_: DynArray[address, 255],
    admin_: address,
):
    """
    @dev Grants proposer and canceller roles to `proposers_`, the
         executor role to `executors_` (pass the zero address for an
         open executor), makes the timelock its own admin and, only if
         `admin_` is not the zero address, an extra bootstrap admin that
         should renounce its role once the system is wired.
    @param minimum_delay_ Minimum delay in seconds between scheduling
           and executing an operation.
    @param proposers_ Accounts allowed to schedule and cancel (the
           Governor).
    @param executors_ Accounts allowed to execute ready operations
           (`[empty(address)]` opens execution to everyone).
    @param admin_ Optional bootstrap admin; the zero address for none.
    """
    access_control.__init__()
    timelock_controller.__init__(minimum_delay_, proposers_, executors_, admin_)


@external
@pure
def hash_operation_batch(
    targets: DynArray[address, MAX_BATCH],
    amounts: DynArray[uint256, MAX_BATCH],
    payloads: DynArray[Bytes[_PAYLOAD], MAX_BATCH],
    predecessor: bytes32,
    salt: bytes32,
) -> bytes32:
    """
    @dev Returns the id of a batch operation, exactly as snekmate's
         `hash_operation_batch` (and OpenZeppelin's hashOperationBatch).
    @param targets The call targets.
    @param amounts The wei sent with each call.
    @param payloads The calldata of each call (up to 1,024 bytes).
    @param predecessor Operation that must be done first, or zero.
    @param salt Operation salt.
    @return bytes32 The operation id.
    """
    return keccak256(abi_encode(targets, amounts, payloads, predecessor, salt))


@external
def schedule_batch(
    targets: DynArray[address, MAX_BATCH],
    amounts: DynArray[uint256, MAX_BATCH],
    payloads: DynArray[Bytes[_PAYLOAD], MAX_BATCH],
    predecessor: bytes32,
    salt: bytes32,
    delay: uint256,
):
    """
    @dev Schedules a batch of calls to become executable after `delay`
         (at least the minimum delay). Emits one `CallScheduled` per call
         and `CallSalt` for a non-zero salt.
    @notice Only PROPOSER_ROLE (the Governor).
    @param targets The call targets.
    @param amounts The wei sent with each call.
    @param payloads The calldata of each call (up to 1,024 bytes).
    @param predecessor Operation that must be done first, or zero.
    @param salt Operation salt.
    @param delay Seconds until the batch is ready.
    """
    access_control._check_role(timelock_controller.PROPOSER_ROLE, msg.sender)
    assert len(targets) == len(amounts) and len(targets) == len(payloads), "timelock_controller: length mismatch"
    id: bytes32 = keccak256(abi_encode(targets, amounts, payloads, predecessor, salt))
    timelock_controller._schedule(id, delay)
    for idx: uint256 in range(len(targets), bound=MAX_BATCH):
        log timelock_controller.CallScheduled(
            id=id,
            index=idx,
            target=targets[idx],
            amount=amounts[idx],
            payload=payloads[idx],
            predecessor=predecessor,
            delay=delay,
        )
    if salt != empty(bytes32):
        log timelock_controller.CallSalt(id=id, salt=salt)


@external
@payable
def execute_batch(
    targets: DynArray[address, MAX_BATCH],
    amounts: DynArray[uint256, MAX_BATCH],
    payloads: DynArray[Bytes[_PAYLOAD], MAX_BATCH],
    predecessor: bytes32,
    salt: bytes32,
):
    """
    @dev Executes a ready batch, reverting with the first failing call's
         reason. Emits one `CallExecuted` per call.
    @notice Only EXECUTOR_ROLE, or anyone when the zero address holds it.
    @param targets The call targets.
    @param amounts The wei sent with each call.
    @param payloads The calldata of each call.
    @param predecessor Operation that must be done first, or zero.
    @param salt Operation salt.
    """
    timelock_controller._only_role_or_open_role(timelock_controller.EXECUTOR_ROLE)
    assert len(targets) == len(amounts) and len(targets) == len(payloads), "timelock_controller: length mismatch"
    id: bytes32 = keccak256(abi_encode(targets, amounts, payloads, predecessor, salt))
    timelock_controller._before_call(id, predecessor)
    for idx: uint256 in range(len(targets), bound=MAX_BATCH):
        timelock_controller._execute(targets[idx], amounts[idx], payloads[idx])
        log timelock_controller.CallExecuted(
            id=id, index=idx, target=targets[idx], amount=amounts[idx], payload=payloads[idx]
        )
    timelock_controller._after_call(id)
