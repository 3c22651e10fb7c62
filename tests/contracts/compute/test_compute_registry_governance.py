"""End to end through the real Governor and Timelock: a provider who sees a slash proposal
cannot take its collateral out before the slash executes.

The system is wired the way `veil.network.deploy.deploy_network` wires it (Timelock first,
PHA, the vPHA Vault, Governor, ComputeRegistry owned by the timelock, the deployer left
with no role) with the genesis parameters of `NetworkParameters()`, which
`check_slash_window` accepts; the guardian is a separate account. Only the Governor's
proposal, executed by the timelock, can slash.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import boa
import pytest
from compiled import compiled
from eth_utils import keccak
from registry_world import (
    ATTESTER_KEYS,
    COMPOSE,
    OS_IMAGE,
    PHA_SOURCE,
    REGISTRY_SOURCE,
    VAULT_SOURCE,
    World,
)

from veil.chain.compile import CONTRACTS_DIR
from veil.compute import attestation as att
from veil.network.deploy import NetworkParameters, check_slash_window

GOVERNOR_SOURCE = CONTRACTS_DIR / "governance" / "Governor.vy"
TIMELOCK_SOURCE = CONTRACTS_DIR / "governance" / "Timelock.vy"
ZERO = "0x" + "00" * 20
PHA = 10**18
FOR = 1
SUCCEEDED, QUEUED, EXECUTED = 4, 5, 7
HOUR = 3_600


@dataclass
class Network:
    params: NetworkParameters
    world: World  # the registry, its vault (vPHA) and the attester keys
    governor: Any
    timelock: Any
    guardian: str
    voter: str

    @property
    def registry(self) -> Any:
        return self.world.registry

    def slash_proposal(self, provider: str, amount: int, why: str) -> tuple[list, ...]:
        call = self.registry.slash.prepare_calldata(provider, amount, why)
        return [self.registry.address], [0], [call], f"Slash {provider}: {why}"

    def propose(self, proposal: tuple[list, ...]) -> int:
        with boa.env.prank(self.voter):
            return self.governor.propose(*proposal)

    def vote_and_queue(self, pid: int, proposal: tuple[list, ...], *, since: int) -> None:
        """From `since` (the proposal's creation): vote as soon as voting opens, queue as
        soon as it closes."""
        self.travel_to(since + self.params.voting_delay + 1)
        with boa.env.prank(self.voter):
            self.governor.castVote(pid, FOR)
        self.travel_to(since + self.params.voting_delay + self.params.voting_period + 1)
        assert self.governor.state(pid) == SUCCEEDED
        targets, values, calldatas, description = proposal
        self.governor.queue(targets, values, calldatas, keccak(text=description))
        assert self.governor.state(pid) == QUEUED

    def execute(self, proposal: tuple[list, ...]) -> None:
        targets, values, calldatas, description = proposal
        self.governor.execute(targets, values, calldatas, keccak(text=description))

    def eta(self, pid: int) -> int:
        return int(self.governor.proposalEta(pid))

    def travel_to(self, when: int) -> None:
        now = self.world.now()
        assert when >= now, (when, now)
        if when > now:
            boa.env.time_travel(seconds=when - now)


def deploy_like_genesis(params: NetworkParameters) -> Network:
    check_slash_window(params)
    me = boa.env.eoa
    timelock = compiled(TIMELOCK_SOURCE).deploy(params.timelock_delay, [], [ZERO], me)
    pha = compiled(PHA_SOURCE).deploy("0x" + "00" * 20)  # no Migrator here
    vault = compiled(VAULT_SOURCE).deploy(pha.address, me, timelock.address)
    threshold = params.proposal_threshold_pha * 10 ** vault.decimals()
    governor = compiled(GOVERNOR_SOURCE).deploy(
        vault.address,
        timelock.address,
        params.voting_delay,
        params.voting_period,
        threshold,
        params.quorum_numerator,
    )
    registry = compiled(REGISTRY_SOURCE).deploy(vault.address, me, timelock.address)
    guardian = str(boa.env.generate_address("guardian"))
    registry.setAttester(ATTESTER_KEYS[0].address, True)
    registry.setOsImageAllowed(OS_IMAGE, True)
    registry.setComposeHashAllowed(COMPOSE, True)
    registry.setCooldown(params.collateral_cooldown)
    registry.setMaxFreeze(params.max_freeze)
    registry.setGuardian(guardian)
    pha.setMinter(me, True)
    voter = str(boa.env.generate_address("voter"))
    pha.mint(voter, 1_000_000 * PHA)
    with boa.env.prank(voter):
        pha.approve(vault.address, 1_000_000 * PHA)
        vault.deposit(1_000_000 * PHA, voter)
        vault.delegate(voter)
    pha.setMinter(me, False)
    timelock.grantRole(keccak(text="PROPOSER_ROLE"), governor.address)
    timelock.grantRole(keccak(text="CANCELLER_ROLE"), governor.address)
    for contract in (pha, vault, registry):
        contract.transfer_ownership(timelock.address)
    timelock.renounceRole(b"\x00" * 32, me)
    boa.env.time_travel(seconds=1)
    domain = att.RegistryDomain(int(boa.env.evm.patch.chain_id), str(registry.address))
    world = World(registry, vault, timelock.address, timelock.address, domain, pha, str(me))
    return Network(params, world, governor, timelock, guardian, voter)


@pytest.fixture(scope="module")
def network() -> Network:
    return deploy_like_genesis(NetworkParameters())


@pytest.fixture(autouse=True)
def _isolated(network: Network) -> Any:
    with boa.env.anchor():
        yield


def provider_with_worker(net: Network) -> tuple[str, str, int]:
    """A provider whose whole collateral is locked by one H100 worker. The minter is gone
    after genesis, so the provider's vPHA comes from the voter (as bought vPHA would)."""
    provider = str(boa.env.generate_address("provider"))
    stake = int(net.registry.requiredCollateral(att.GpuModel.H100, 1))
    with boa.env.prank(net.voter):
        net.world.token.transfer(provider, stake)
    with boa.env.prank(provider):
        net.world.token.approve(net.registry.address, stake)
        net.registry.registerProvider()
        net.registry.depositCollateral(stake)
    a = net.world.attestation(provider, ttl=30 * 86_400)
    net.world.register(a)
    return provider, a.worker, stake


def tries_to_leave(net: Network, provider: str, stake: int) -> list[str]:
    """Try every way collateral can leave the registry; return the reasons each was refused
    (a way that succeeds shows up as "left")."""
    reasons = []
    with boa.env.prank(provider):
        for attempt in (
            lambda: net.registry.releaseCollateral(),
            lambda: net.registry.withdrawCollateral(stake),
        ):
            try:
                attempt()
            except boa.BoaError as error:
                found = re.search(r"<(registry: [^>]+)>", str(error))
                reasons.append(found.group(1) if found else str(error))
            else:
                reasons.append("left")
    return reasons


def test_genesis_parameters_cover_the_governance_path(network: Network) -> None:
    p = network.params
    path = int(network.governor.votingDelay() + network.governor.votingPeriod())
    path += int(network.timelock.get_minimum_delay())
    assert path == p.governance_path()
    assert network.registry.cooldown() >= path + p.guardian_reaction
    assert network.registry.maxFreeze() >= path


def test_deregistering_at_the_proposal_cannot_dodge_the_slash(network: Network) -> None:
    """The provider deregisters the moment the proposal appears and tries to leave at every
    step; the guardian freezes a few hours later; the slash executes. (The genesis cooldown
    alone outlasts the governance path here; the freeze is the second wall.)"""
    net = network
    provider, worker, stake = provider_with_worker(net)
    proposal = net.slash_proposal(provider, stake, "forged GPU evidence")
    t0 = net.world.now()
    pid = net.propose(proposal)
    with boa.env.prank(provider):
        net.registry.deregisterWorker(worker)
    assert tries_to_leave(net, provider, stake) == [
        "registry: cooldown not over",
        "registry: exceeds free collateral",
    ]
    net.travel_to(t0 + 3 * HOUR)
    with boa.env.prank(net.guardian):
        net.registry.freeze(provider, f"slash proposal {pid}")
    net.vote_and_queue(pid, proposal, since=t0)
    net.travel_to(net.eta(pid) - 1)
    assert tries_to_leave(net, provider, stake) == ["registry: provider frozen"] * 2
    assert net.registry.freeCollateral(provider) == 0
    net.travel_to(net.eta(pid))
    treasury_before = net.world.token.balanceOf(net.timelock.address)
    net.execute(proposal)
    assert net.governor.state(pid) == EXECUTED
    assert net.world.token.balanceOf(net.timelock.address) - treasury_before == stake
    assert net.world.token.balanceOf(provider) == 0
    assert net.registry.provider(provider).collateral == 0
    assert not net.registry.isFrozen(provider)


def test_early_deregistration_is_held_by_the_freeze(network: Network) -> None:
    """The provider deregisters before any proposal (it knows what it did); the proposal
    comes two days later, so the cooldown ends before the slash can execute. The guardian's
    freeze is what holds the collateral until the timelock slashes."""
    net = network
    provider, worker, stake = provider_with_worker(net)
    with boa.env.prank(provider):
        net.registry.deregisterWorker(worker)
    cooldown_end = int(net.registry.provider(provider).cooldownEnd)
    with boa.env.prank(net.guardian):
        net.registry.freeze(provider, "evidence of forged GPU attestations")
    net.travel_to(net.world.now() + 2 * 86_400)
    proposal = net.slash_proposal(provider, stake, "forged GPU evidence")
    t0 = net.world.now()
    pid = net.propose(proposal)
    net.vote_and_queue(pid, proposal, since=t0)
    assert net.eta(pid) > cooldown_end
    net.travel_to(cooldown_end)
    assert tries_to_leave(net, provider, stake) == ["registry: provider frozen"] * 2
    net.travel_to(net.eta(pid))
    assert tries_to_leave(net, provider, stake) == ["registry: provider frozen"] * 2
    net.execute(proposal)
    assert net.registry.provider(provider).collateral == 0
    assert net.world.token.balanceOf(provider) == 0


def test_without_a_freeze_an_early_deregistration_escapes(network: Network) -> None:
    """Why the guardian exists: the same early deregistration with no freeze leaves before
    the slash executes, and the timelock's execution then reverts."""
    net = network
    provider, worker, stake = provider_with_worker(net)
    with boa.env.prank(provider):
        net.registry.deregisterWorker(worker)
    cooldown_end = int(net.registry.provider(provider).cooldownEnd)
    net.travel_to(net.world.now() + 2 * 86_400)
    proposal = net.slash_proposal(provider, stake, "forged GPU evidence")
    t0 = net.world.now()
    pid = net.propose(proposal)
    net.vote_and_queue(pid, proposal, since=t0)
    net.travel_to(cooldown_end)
    with boa.env.prank(provider):
        net.registry.withdrawCollateral(stake)
    net.travel_to(net.eta(pid))
    with boa.reverts():
        net.execute(proposal)
    assert net.world.token.balanceOf(provider) == stake


def test_governance_can_unfreeze_and_the_provider_leaves(network: Network) -> None:
    """A freeze governance disagrees with is lifted by a proposal; the provider's
    collateral then leaves as soon as its cooldown ends."""
    net = network
    provider, worker, stake = provider_with_worker(net)
    with boa.env.prank(provider):
        net.registry.deregisterWorker(worker)
    with boa.env.prank(net.guardian):
        net.registry.freeze(provider, "suspicion")
    call = net.registry.unfreeze.prepare_calldata(provider)
    proposal = [net.registry.address], [0], [call], f"Unfreeze {provider}"
    t0 = net.world.now()
    pid = net.propose(proposal)
    net.vote_and_queue(pid, proposal, since=t0)
    net.travel_to(net.eta(pid))
    assert net.registry.isFrozen(provider)
    net.execute(proposal)
    assert not net.registry.isFrozen(provider)
    net.travel_to(int(net.registry.provider(provider).cooldownEnd))
    with boa.env.prank(provider):
        net.registry.releaseCollateral()
        net.registry.withdrawCollateral(stake)
    assert net.world.token.balanceOf(provider) == stake
