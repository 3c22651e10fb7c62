"""ComputeRegistry on the real stack: PHA (contracts/token/PHA.vy) staked into the vPHA
vault (contracts/staking/Vault.vy), vPHA shares posted as collateral. Checks that the
default requirements follow the vault's decimals (18 + offset), and that deposit, worker
registration, slashing, cooldown and withdrawal move exactly the vPHA shares involved."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import boa
import pytest
from compiled import compiled
from registry_world import DAY, PHA_SOURCE, VAULT_SOURCE, World, make_vault_world

from veil.compute import attestation as att

PHA = 10**18


@pytest.fixture(scope="module")
def stack_deployers() -> tuple[Any, Any]:
    return compiled(PHA_SOURCE), compiled(VAULT_SOURCE)


@dataclass
class Stack:
    world: World
    pha: Any
    vault: Any
    deployer: str


@pytest.fixture
def stack(registry_deployer: Any, stack_deployers: tuple[Any, Any]) -> Stack:
    world = make_vault_world(registry_deployer, *stack_deployers)
    return Stack(world, world.pha, world.token, world.pha_minter)


def stake(pha: Any, vault: Any, deployer: str, holder: str, amount: int) -> int:
    """Mint PHA to `holder`, deposit it into the vault, return the vPHA shares received."""
    with boa.env.prank(deployer):
        pha.mint(holder, amount)
    with boa.env.prank(holder):
        pha.approve(vault.address, amount)
        before = vault.balanceOf(holder)
        vault.deposit(amount, holder)
    return vault.balanceOf(holder) - before


def test_requirements_follow_vault_decimals(stack: Stack) -> None:
    world, vault = stack.world, stack.vault
    unit = 10 ** vault.decimals()
    assert vault.decimals() >= 18
    assert world.registry.acceleratorType(att.GpuModel.H100).collateral == 1_250 * unit
    assert world.registry.acceleratorType(att.GpuModel.B200).collateral == 2_250 * unit
    assert world.registry.acceleratorType(att.GpuModel.CPU_TDX).collateral == 250 * unit


def test_full_provider_lifecycle_on_real_vault(stack: Stack) -> None:
    world, pha, vault = stack.world, stack.pha, stack.vault
    r = world.registry
    provider = str(boa.env.generate_address("provider"))
    shares = stake(pha, vault, stack.deployer, provider, 3_000 * PHA)
    need = r.requiredCollateral(att.GpuModel.H100, 2)
    assert shares >= need, "a fresh vault should mint about 1 share unit per PHA unit"

    with boa.env.prank(provider):
        vault.approve(r.address, shares)
        r.registerProvider()
        r.depositCollateral(shares)
    assert vault.balanceOf(r.address) == shares
    assert vault.balanceOf(provider) == 0

    a = world.attestation(provider, model=att.GpuModel.H100, count=2)
    world.register(a)
    assert r.isActive(a.worker)
    assert r.rewardWeight(a.worker) == 20_000
    assert r.provider(provider).locked == need

    with boa.env.prank(world.owner):
        r.slash(provider, 10, "integration slash")
    assert vault.balanceOf(world.treasury) == 10

    with boa.env.prank(provider):
        r.deregisterWorker(a.worker)
        with boa.reverts("registry: exceeds free collateral"):
            r.withdrawCollateral(shares - 10)
    boa.env.time_travel(seconds=7 * DAY)
    with boa.env.prank(provider):
        r.withdrawCollateral(shares - 10)
    assert vault.balanceOf(provider) == shares - 10
    assert vault.balanceOf(r.address) == 0
    # The shares are still redeemable vPHA: the registry never touched their value.
    assert vault.convertToAssets(vault.balanceOf(provider)) > 0


def test_deposit_without_vpha_refused(stack: Stack) -> None:
    world, vault = stack.world, stack.vault
    provider = str(boa.env.generate_address("poor provider"))
    with boa.env.prank(provider):
        world.registry.registerProvider()
        vault.approve(world.registry.address, 1)
        with boa.reverts():
            world.registry.depositCollateral(1)
    assert world.registry.provider(provider).collateral == 0
