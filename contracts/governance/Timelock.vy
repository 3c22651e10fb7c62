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

        Exposed (snekmate names): PROPOSER_ROLE, EXECUTOR_ROLE,
        CANCELLER_ROLE, DEFAULT_ADMIN_ROLE, hasRole, getRoleAdmin,
        grantRole, revokeRole, renounceRole, set_role_admin,
        get_minimum_delay, get_timestamp, get_operation_state,
        is_operation, is_operation_pending, is_operation_ready,
        is_operation_done, hash_operation, hash_operation_batch,
        schedule, schedule_batch, execute, execute_batch, cancel,
        update_delay, supportsInterface, onERC721Received,
        onERC1155Received, onERC1155BatchReceived, and a payable
        fallback so that it can hold ETH.
        Payloads are limited to 1,024 bytes each and batches to 255
        calls (snekmate's bounds).
"""


from snekmate.auth import access_control
initializes: access_control


from snekmate.governance import timelock_controller
initializes: timelock_controller[access_control := access_control]


exports: timelock_controller.__interface__


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
