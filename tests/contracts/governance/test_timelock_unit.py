"""Timelock: snekmate's timelock_controller wired the way GovernorTimelockControl expects."""

from __future__ import annotations

import boa
from compiled import compiled
from eth_abi import encode
from eth_utils import keccak
from governance_kit import (
    CANCELLER_ROLE,
    DEFAULT_ADMIN_ROLE,
    EXECUTOR_ROLE,
    MIN_DELAY,
    PROPOSER_ROLE,
    TIMELOCK,
    ZERO,
    Proposal,
    System,
)

NO_PREDECESSOR = NO_SALT = b"\x00" * 32


def test_roles_after_wiring(system: System) -> None:
    timelock, gov = system.timelock, system.governor
    assert timelock.PROPOSER_ROLE() == PROPOSER_ROLE
    assert timelock.EXECUTOR_ROLE() == EXECUTOR_ROLE
    assert timelock.CANCELLER_ROLE() == CANCELLER_ROLE
    assert timelock.DEFAULT_ADMIN_ROLE() == DEFAULT_ADMIN_ROLE
    assert timelock.hasRole(PROPOSER_ROLE, gov.address)
    assert timelock.hasRole(CANCELLER_ROLE, gov.address)
    assert timelock.hasRole(EXECUTOR_ROLE, ZERO)  # open executor
    assert timelock.hasRole(DEFAULT_ADMIN_ROLE, timelock.address)  # self-administered
    assert not timelock.hasRole(DEFAULT_ADMIN_ROLE, boa.env.eoa)
    assert timelock.get_minimum_delay() == MIN_DELAY
    assert timelock.MAX_BATCH() == 16


def test_production_wiring_without_admin(system: System) -> None:
    """Deployed with the Governor as proposer and no bootstrap admin: only itself administers."""
    gov = system.governor
    timelock = compiled(TIMELOCK).deploy(MIN_DELAY, [gov.address], [ZERO], ZERO)
    assert timelock.hasRole(PROPOSER_ROLE, gov.address)
    assert timelock.hasRole(CANCELLER_ROLE, gov.address)
    assert timelock.hasRole(DEFAULT_ADMIN_ROLE, timelock.address)
    assert not timelock.hasRole(DEFAULT_ADMIN_ROLE, boa.env.eoa)
    with boa.reverts("access_control: account is missing role"):
        timelock.grantRole(PROPOSER_ROLE, boa.env.eoa)


def test_receives_eth_and_tokens(system: System) -> None:
    timelock = system.timelock
    boa.env.set_balance(boa.env.eoa, 10**18)
    boa.env.raw_call(timelock.address, value=12345)
    assert boa.env.get_balance(timelock.address) == 12345
    assert timelock.onERC721Received(ZERO, ZERO, 1, b"") == bytes.fromhex("150b7a02")
    assert timelock.onERC1155Received(ZERO, ZERO, 1, 2, b"") == bytes.fromhex("f23a6e61")
    assert timelock.onERC1155BatchReceived(ZERO, ZERO, [1], [2], b"") == bytes.fromhex("bc197c81")
    assert timelock.supportsInterface(bytes.fromhex("4e2312e0"))
    assert timelock.supportsInterface(bytes.fromhex("01ffc9a7"))


def test_only_proposer_schedules_and_only_canceller_cancels(system: System) -> None:
    timelock, target = system.timelock, system.target
    call = target.setFee.prepare_calldata(1)
    stranger = boa.env.generate_address("stranger")
    with boa.env.prank(stranger):
        with boa.reverts("access_control: account is missing role"):
            timelock.schedule_batch(
                [target.address], [0], [call], NO_PREDECESSOR, NO_SALT, MIN_DELAY
            )
        with boa.reverts("access_control: account is missing role"):
            timelock.schedule(target.address, 0, call, NO_PREDECESSOR, NO_SALT, MIN_DELAY)
    with boa.env.prank(system.governor.address):
        timelock.schedule_batch([target.address], [0], [call], NO_PREDECESSOR, NO_SALT, MIN_DELAY)
        with boa.reverts("timelock_controller: operation already scheduled"):
            timelock.schedule_batch(
                [target.address], [0], [call], NO_PREDECESSOR, NO_SALT, MIN_DELAY
            )
        with boa.reverts("timelock_controller: insufficient delay"):
            timelock.schedule_batch(
                [target.address], [1], [call], NO_PREDECESSOR, NO_SALT, MIN_DELAY - 1
            )
        with boa.reverts("timelock_controller: length mismatch"):
            timelock.schedule_batch(
                [target.address], [0, 0], [call], NO_PREDECESSOR, NO_SALT, MIN_DELAY
            )
    op_id = timelock.hash_operation_batch([target.address], [0], [call], NO_PREDECESSOR, NO_SALT)
    with boa.env.prank(stranger), boa.reverts("access_control: account is missing role"):
        timelock.cancel(op_id)
    with boa.env.prank(system.governor.address):
        timelock.cancel(op_id)
    assert not timelock.is_operation(op_id)


def test_batch_id_events_and_execution(system: System) -> None:
    timelock, target = system.timelock, system.target
    targets = [target.address, target.address]
    amounts = [0, 0]
    payloads = [target.setFee.prepare_calldata(5), target.setFee.prepare_calldata(6)]
    salt = keccak(text="salt")
    expected = keccak(
        encode(
            ["address[]", "uint256[]", "bytes[]", "bytes32", "bytes32"],
            [targets, amounts, payloads, NO_PREDECESSOR, salt],
        )
    )
    assert (
        timelock.hash_operation_batch(targets, amounts, payloads, NO_PREDECESSOR, salt) == expected
    )
    with boa.env.prank(system.governor.address):
        timelock.schedule_batch(targets, amounts, payloads, NO_PREDECESSOR, salt, MIN_DELAY)
    logs = timelock.get_logs()
    assert [type(log).__name__ for log in logs] == ["CallScheduled", "CallScheduled", "CallSalt"]
    assert [(log.id, log.index, log.payload, log.delay) for log in logs[:2]] == [
        (expected, 0, payloads[0], MIN_DELAY),
        (expected, 1, payloads[1], MIN_DELAY),
    ]
    assert timelock.is_operation_pending(expected) and not timelock.is_operation_ready(expected)
    with boa.reverts("timelock_controller: operation is not ready"):
        timelock.execute_batch(targets, amounts, payloads, NO_PREDECESSOR, salt)
    boa.env.time_travel(seconds=MIN_DELAY)
    assert timelock.is_operation_ready(expected)
    with boa.reverts("timelock_controller: length mismatch"):
        timelock.execute_batch(targets, [0], payloads, NO_PREDECESSOR, salt)
    timelock.execute_batch(targets, amounts, payloads, NO_PREDECESSOR, salt)
    assert [type(log).__name__ for log in timelock.get_logs()] == ["CallExecuted", "CallExecuted"]
    assert target.fee() == 6
    assert timelock.is_operation_done(expected)
    assert timelock.get_operation_state(expected) == 8  # snekmate OperationState.DONE


def test_closed_executor_role_is_enforced(system: System) -> None:
    gov, target = system.governor, system.target
    executor = boa.env.generate_address("executor")
    timelock = compiled(TIMELOCK).deploy(MIN_DELAY, [gov.address], [executor], ZERO)
    call = target.setFee.prepare_calldata(1)
    with boa.env.prank(gov.address):
        timelock.schedule_batch([target.address], [0], [call], NO_PREDECESSOR, NO_SALT, MIN_DELAY)
    boa.env.time_travel(seconds=MIN_DELAY)
    with boa.reverts("access_control: account is missing role"):
        timelock.execute_batch([target.address], [0], [call], NO_PREDECESSOR, NO_SALT)
    with boa.env.prank(executor), boa.reverts("target: only owner"):
        # Executes, but this target is owned by the other timelock.
        timelock.execute_batch([target.address], [0], [call], NO_PREDECESSOR, NO_SALT)


def test_update_delay_only_by_itself(system: System) -> None:
    timelock = system.timelock
    for caller in (system.tl_admin, system.governor.address, boa.env.eoa):
        with boa.env.prank(caller), boa.reverts("timelock_controller: caller must be timelock"):
            timelock.update_delay(1)
    proposal_call = timelock.update_delay.prepare_calldata(3 * 86_400)
    system.enact(Proposal([timelock.address], [0], [proposal_call], "longer timelock delay"))
    assert timelock.get_minimum_delay() == 3 * 86_400
