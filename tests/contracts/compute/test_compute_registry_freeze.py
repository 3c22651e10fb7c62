"""The guardian freeze: it stops a provider's collateral from leaving (withdrawals and
releases) so that a slash governance is voting on cannot be dodged, and it is bounded so
the guardian cannot hold anyone's collateral for good. Every revert path, every privileged
function refused to other callers, and the bounds (lapse, cool-off, governed maximum)."""

from __future__ import annotations

import boa
import pytest
from registry_world import ATTESTER_KEYS, DAY, UNIT, World

H100 = 1_250 * UNIT
MAX_FREEZE = 14 * DAY
COOLDOWN = 7 * DAY


@pytest.fixture
def guardian(world: World) -> str:
    address = str(boa.env.generate_address("guardian"))
    with boa.env.prank(world.owner):
        world.registry.setGuardian(address)
    return address


def funded(world: World, amount: int = 2 * H100) -> str:
    provider = str(boa.env.generate_address())
    world.fund(provider, amount)
    return provider


def freeze(world: World, guardian: str, provider: str, reason: str = "proposal 7") -> list:
    with boa.env.prank(guardian):
        world.registry.freeze(provider, reason)
        return [e for e in world.registry.get_logs() if e.address == world.registry.address]


def cooling(world: World, provider: str) -> str:
    """Register a worker for `provider` and deregister it: H100 starts cooling."""
    a = world.attestation(provider)
    world.register(a)
    with boa.env.prank(provider):
        world.registry.deregisterWorker(a.worker)
    return a.worker


def test_defaults_no_guardian_and_fourteen_days(world: World) -> None:
    assert world.registry.guardian() == "0x" + "00" * 20
    assert world.registry.maxFreeze() == MAX_FREEZE
    p = funded(world)
    assert world.registry.frozenUntil(p) == 0
    assert not world.registry.isFrozen(p)


def test_freeze_stops_withdrawal_and_release_until_it_lapses(world: World, guardian: str) -> None:
    p = funded(world, 2 * H100)
    cooling(world, p)
    [event] = freeze(world, guardian, p, "slash proposal 42")
    end = world.now() + MAX_FREEZE
    assert (event.provider, event.guardian, event.frozenUntil, event.reason) == (
        p,
        guardian,
        end,
        "slash proposal 42",
    )
    assert world.registry.frozenUntil(p) == end
    assert world.registry.isFrozen(p)
    assert world.registry.freeCollateral(p) == 0
    with boa.env.prank(p), boa.reverts("registry: provider frozen"):
        world.registry.withdrawCollateral(1)
    boa.env.time_travel(seconds=COOLDOWN)
    with boa.env.prank(p):
        with boa.reverts("registry: provider frozen"):
            world.registry.releaseCollateral()
        with boa.reverts("registry: provider frozen"):
            world.registry.withdrawCollateral(2 * H100)
    boa.env.time_travel(seconds=MAX_FREEZE - COOLDOWN - 1)
    assert world.registry.isFrozen(p)
    with boa.env.prank(p), boa.reverts("registry: provider frozen"):
        world.registry.withdrawCollateral(1)
    boa.env.time_travel(seconds=1)
    assert not world.registry.isFrozen(p)
    assert world.registry.freeCollateral(p) == 2 * H100
    with boa.env.prank(p):
        world.registry.releaseCollateral()
        world.registry.withdrawCollateral(2 * H100)
    assert world.token.balanceOf(p) == 2 * H100


def test_frozen_provider_still_deposits_registers_and_deregisters(
    world: World, guardian: str
) -> None:
    p = funded(world, H100)
    freeze(world, guardian, p)
    world.fund(p, H100, register=False)
    worker = cooling(world, p)
    assert not world.registry.isActive(worker)
    info = world.registry.provider(p)
    assert (info.collateral, info.cooling) == (2 * H100, H100)


def test_slash_of_a_frozen_provider_ends_the_freeze(world: World, guardian: str) -> None:
    p = funded(world, 2 * H100)
    freeze(world, guardian, p)
    with boa.env.prank(world.owner):
        world.registry.slash(p, H100, "proposal 42 executed")
        names = [type(e).__name__ for e in world.registry.get_logs()]
    assert "ProviderUnfrozen" in names and "Slashed" in names
    assert world.registry.frozenUntil(p) == world.now()
    assert not world.registry.isFrozen(p)
    assert world.token.balanceOf(world.treasury) == H100
    with boa.env.prank(p):
        world.registry.withdrawCollateral(H100)
    assert world.token.balanceOf(p) == H100


def test_slash_of_an_unfrozen_provider_leaves_freeze_state_alone(
    world: World, guardian: str
) -> None:
    p = funded(world)
    with boa.env.prank(world.owner):
        world.registry.slash(p, 1, "small")
        logs = world.registry.get_logs()
    assert [type(e).__name__ for e in logs if e.address == world.registry.address] == ["Slashed"]
    assert world.registry.frozenUntil(p) == 0
    freeze(world, guardian, p)  # no cool-off started by a slash of an unfrozen provider


@pytest.mark.parametrize("who", ["owner", "guardian"])
def test_unfreeze_by_owner_or_guardian(world: World, guardian: str, who: str) -> None:
    p = funded(world)
    freeze(world, guardian, p)
    caller = world.owner if who == "owner" else guardian
    boa.env.time_travel(seconds=DAY)
    with boa.env.prank(caller):
        world.registry.unfreeze(p)
        [event] = world.registry.get_logs()
    assert (type(event).__name__, event.provider, event.by) == ("ProviderUnfrozen", p, caller)
    assert not world.registry.isFrozen(p)
    assert world.registry.frozenUntil(p) == world.now()
    with boa.env.prank(p):
        world.registry.withdrawCollateral(1)


def test_unfreeze_refusals(world: World, guardian: str) -> None:
    p = funded(world)
    with boa.env.prank(world.owner), boa.reverts("registry: provider not frozen"):
        world.registry.unfreeze(p)
    freeze(world, guardian, p)
    outsiders = [p, world.treasury, ATTESTER_KEYS[0].address, str(boa.env.generate_address())]
    for caller in outsiders:
        with boa.env.prank(caller), boa.reverts("registry: caller is not the owner or guardian"):
            world.registry.unfreeze(p)
    boa.env.time_travel(seconds=MAX_FREEZE)
    with boa.env.prank(guardian), boa.reverts("registry: provider not frozen"):
        world.registry.unfreeze(p)


def test_freeze_refused_to_anyone_but_the_guardian(world: World, guardian: str) -> None:
    p = funded(world)
    outsiders = [world.owner, p, world.treasury, ATTESTER_KEYS[0].address]
    for caller in outsiders:
        with boa.env.prank(caller), boa.reverts("registry: caller is not the guardian"):
            world.registry.freeze(p, "no")
    assert not world.registry.isFrozen(p)


def test_without_a_guardian_nobody_freezes(world: World) -> None:
    p = funded(world)
    for caller in (world.owner, p, "0x" + "00" * 19 + "01"):
        with boa.env.prank(caller), boa.reverts("registry: caller is not the guardian"):
            world.registry.freeze(p, "no")


def test_freeze_refusals(world: World, guardian: str) -> None:
    stranger = str(boa.env.generate_address())
    with boa.env.prank(guardian), boa.reverts("registry: provider not registered"):
        world.registry.freeze(stranger, "no")
    p = funded(world)
    freeze(world, guardian, p)
    with boa.env.prank(guardian), boa.reverts("registry: provider already frozen"):
        world.registry.freeze(p, "again")


def test_cool_off_before_a_refreeze(world: World, guardian: str) -> None:
    """After a freeze lapses the provider gets a full maximum freeze to leave."""
    p = funded(world)
    freeze(world, guardian, p)
    boa.env.time_travel(seconds=MAX_FREEZE)
    for wait in (0, MAX_FREEZE - 1):
        boa.env.time_travel(seconds=wait)
        with boa.env.prank(guardian), boa.reverts("registry: freeze cool-off not over"):
            world.registry.freeze(p, "again")
    with boa.env.prank(p):
        world.registry.withdrawCollateral(1)
    boa.env.time_travel(seconds=1)
    freeze(world, guardian, p, "again")
    assert world.registry.isFrozen(p)


def test_cool_off_starts_when_governance_unfreezes(world: World, guardian: str) -> None:
    p = funded(world)
    freeze(world, guardian, p)
    boa.env.time_travel(seconds=DAY)
    with boa.env.prank(world.owner):
        world.registry.unfreeze(p)
    boa.env.time_travel(seconds=MAX_FREEZE - 1)
    with boa.env.prank(guardian), boa.reverts("registry: freeze cool-off not over"):
        world.registry.freeze(p, "again")
    boa.env.time_travel(seconds=1)
    freeze(world, guardian, p, "again")


def test_max_freeze_change_applies_to_new_freezes_only(world: World, guardian: str) -> None:
    p, q = funded(world), funded(world)
    freeze(world, guardian, p)
    end = world.registry.frozenUntil(p)
    with boa.env.prank(world.owner):
        world.registry.setMaxFreeze(DAY)
        [event] = world.registry.get_logs()
    assert (type(event).__name__, event.maxFreeze) == ("MaxFreezeChanged", DAY)
    assert world.registry.frozenUntil(p) == end
    freeze(world, guardian, q)
    assert world.registry.frozenUntil(q) == world.now() + DAY
    boa.env.time_travel(seconds=DAY)
    assert not world.registry.isFrozen(q) and world.registry.isFrozen(p)


def test_set_max_freeze_bounds(world: World) -> None:
    with boa.env.prank(world.owner):
        with boa.reverts("registry: zero max freeze"):
            world.registry.setMaxFreeze(0)
        with boa.reverts("registry: max freeze too long"):
            world.registry.setMaxFreeze(90 * DAY + 1)
        world.registry.setMaxFreeze(90 * DAY)
    assert world.registry.maxFreeze() == 90 * DAY


def test_set_guardian_and_remove(world: World, guardian: str) -> None:
    p = funded(world)
    freeze(world, guardian, p)
    with boa.env.prank(world.owner):
        world.registry.setGuardian("0x" + "00" * 20)
        [event] = world.registry.get_logs()
    assert (type(event).__name__, event.guardian) == ("GuardianChanged", "0x" + "00" * 20)
    # A replaced guardian can neither freeze nor lift; its freeze stands until it lapses.
    assert world.registry.isFrozen(p)
    with boa.env.prank(guardian):
        with boa.reverts("registry: caller is not the guardian"):
            world.registry.freeze(funded(world), "no")
        with boa.reverts("registry: caller is not the owner or guardian"):
            world.registry.unfreeze(p)


@pytest.mark.parametrize(("name", "args"), [("setGuardian", ("0x" + "55" * 20,)),
                                            ("setMaxFreeze", (DAY,))])  # fmt: skip
def test_freeze_setters_refused_to_guardian_and_others(
    world: World, guardian: str, name: str, args: tuple
) -> None:
    for caller in (guardian, funded(world), world.treasury):
        with boa.env.prank(caller), boa.reverts("ownable: caller is not the owner"):
            getattr(world.registry, name)(*args)
