"""Deploy refuses genesis parameters under which a provider can dodge a slash, and the
deployed network (through `deploy_network`, on anvil) holds a deregistered provider's
collateral until a slash voted through the Governor and Timelock executes."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from eth_utils import keccak
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner
from web3 import Web3

from veil.chain.client import connect
from veil.chain.deployment import Deployment
from veil.chain.units import WEI_PER_PHA
from veil.cli.main import app
from veil.compute import attestation as att
from veil.compute.registry import RegistryClient
from veil.devnet.accounts import devnet_account
from veil.devnet.anvil import Devnet, free_port
from veil.devnet.client import DevnetChain
from veil.devnet.network import devnet_parameters, fund_accounts
from veil.errors import ChainError, InputError
from veil.network.deploy import (
    DAY,
    NetworkParameters,
    SlashWindowRefused,
    check_slash_window,
    deploy_network,
)
from veil.staking.vault import deposit

pytestmark = pytest.mark.xdist_group("anvil")

OS_IMAGE = keccak(text="slash window os image")
COMPOSE = keccak(text="slash window compose")


def test_genesis_defaults_and_devnet_are_accepted() -> None:
    check_slash_window(NetworkParameters())
    check_slash_window(devnet_parameters([]))


def test_short_cooldown_refused_naming_both_numbers() -> None:
    params = NetworkParameters(collateral_cooldown=7 * DAY)
    with pytest.raises(SlashWindowRefused) as caught:
        check_slash_window(params)
    message = str(caught.value)
    assert "collateral cooldown 604800 s" in message
    assert "the 777600 s a slash needs" in message  # 1 + 5 + 2 days + 1 day reaction
    assert isinstance(caught.value, InputError) and caught.value.exit_code == 2


def test_cooldown_exactly_the_window_is_enough() -> None:
    params = NetworkParameters()
    params.collateral_cooldown = params.governance_path() + params.guardian_reaction
    check_slash_window(params)
    params.collateral_cooldown -= 1
    with pytest.raises(SlashWindowRefused, match="shorter than the 777600 s"):
        check_slash_window(params)


def test_longer_governance_path_needs_a_longer_cooldown() -> None:
    params = NetworkParameters(voting_period=9 * DAY)
    with pytest.raises(SlashWindowRefused, match="voting period 777600"):
        check_slash_window(params)


def test_short_max_freeze_refused() -> None:
    with pytest.raises(SlashWindowRefused, match=r"maximum freeze 86400 s .* path 691200 s"):
        check_slash_window(NetworkParameters(max_freeze=DAY))


@settings(max_examples=200, deadline=None)
@given(
    delay=st.integers(0, 30 * DAY),
    period=st.integers(1, 30 * DAY),
    timelock=st.integers(0, 30 * DAY),
    reaction=st.integers(0, 3 * DAY),
    cooldown=st.integers(0, 120 * DAY),
    max_freeze=st.integers(1, 90 * DAY),
)
def test_refused_exactly_when_a_slash_could_be_dodged(
    delay: int, period: int, timelock: int, reaction: int, cooldown: int, max_freeze: int
) -> None:
    params = NetworkParameters(
        voting_delay=delay, voting_period=period, timelock_delay=timelock,
        guardian_reaction=reaction, collateral_cooldown=cooldown, max_freeze=max_freeze,
    )  # fmt: skip
    path = delay + period + timelock
    safe = cooldown >= path + reaction and max_freeze >= path
    if safe:
        check_slash_window(params)
        return
    with pytest.raises(SlashWindowRefused) as caught:
        check_slash_window(params)
    named = str(cooldown) if cooldown < path + reaction else str(max_freeze)
    assert named in str(caught.value)


def test_deploy_refuses_before_sending_anything() -> None:
    """No chain is touched: the check comes first (a None chain would fail on first use)."""
    params = NetworkParameters(collateral_cooldown=DAY)
    with pytest.raises(SlashWindowRefused):
        deploy_network(None, devnet_account("deployer"), "x", "", params)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def chain(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevnetChain]:
    devnet = Devnet(tmp_path_factory.mktemp("slash-window"))
    process = devnet.start(port=free_port())
    try:
        yield DevnetChain(connect(process.rpc_url))
    finally:
        devnet.stop()


def _deploy(chain: DevnetChain, **overrides: object) -> tuple[NetworkParameters, Deployment]:
    """Genesis with production timings (NetworkParameters() defaults), two demo accounts."""
    params = NetworkParameters(
        attesters=[devnet_account("attester").address],
        os_images=[OS_IMAGE],
        compose_hashes=[COMPOSE],
        reward_reserve_pha=0,
    )  # fmt: skip
    for key, value in overrides.items():
        setattr(params, key, value)
    url = chain.w3.provider.endpoint_uri  # type: ignore[attr-defined]
    funded = {name: devnet_account(name).address for name in ("alice", "provider")}
    deployment = deploy_network(
        chain,
        devnet_account("deployer"),
        "slash-window",
        url,
        params,
        genesis_mints=fund_accounts(funded),
    )
    return params, deployment


def _h100_worker(chain: DevnetChain, registry: RegistryClient, key: str) -> tuple[str, int]:
    """Stake, register the provider, post one H100's collateral and register a worker."""
    provider, attester = devnet_account("provider"), devnet_account("attester")
    stake = registry.required_collateral(att.GpuModel.H100, 1)
    deposit(chain, provider, 2_000 * WEI_PER_PHA)
    registry.register_provider(provider)
    registry.deposit_collateral(provider, stake)
    worker = Web3.to_checksum_address("0x" + key * 20)
    a = att.WorkerAttestation(
        worker=worker, provider=provider.address, quote_hash=keccak(b"q"),
        measurement_hash=keccak(b"m"), os_image_hash=OS_IMAGE, compose_hash=COMPOSE,
        gpu_model=int(att.GpuModel.H100), gpu_count=1, expiry=registry.chain_time() + 30 * DAY,
        evidence_hash=keccak(b"e"),
    )  # fmt: skip
    registry.register_worker(provider, a, [att.sign(a, registry.domain(), attester.key)])
    return worker, stake


def test_deployed_registry_gets_cooldown_freeze_and_guardian(
    chain: DevnetChain, tmp_path: Path
) -> None:
    """The deploy wiring, the client's freeze, and what `veil worker status` shows."""
    guardian = devnet_account("guardian")
    params, deployment = _deploy(chain, registry_guardian=guardian.address)
    registry = RegistryClient.from_chain(chain)
    assert registry.contract.functions.cooldown().call() == params.collateral_cooldown
    assert registry.max_freeze() == params.max_freeze
    assert registry.guardian() == guardian.address
    assert registry.contract.functions.owner().call() == chain.contract("Timelock").address

    worker, _ = _h100_worker(chain, registry, "78")
    provider = devnet_account("provider").address
    assert not registry.provider(provider).frozen
    receipt = registry.freeze(guardian, provider, "slash proposal 1")
    until = registry.chain_time() + params.max_freeze
    assert chain.w3.eth.get_block(receipt["blockNumber"])["timestamp"] + params.max_freeze == until
    record = registry.provider(provider)
    assert (record.frozen, record.frozen_until, record.free) == (True, until, 0)

    path = deployment.save(tmp_path / "deployment.json")
    dep = ["--deployment", str(path)]
    shown = CliRunner().invoke(app, ["worker", "status", "--worker", worker, "--json", *dep])
    assert shown.exit_code == 0, shown.output
    assert json.loads(shown.output)["registry"]["provider_frozen_until"] == until
    text = CliRunner().invoke(app, ["worker", "status", "--worker", worker, *dep])
    assert "provider FROZEN by the guardian until" in text.output


def test_deregistering_at_the_proposal_cannot_dodge_the_slash(chain: DevnetChain) -> None:
    """With the deployed timings alone (no guardian): the provider deregisters as the slash
    proposal appears and tries to withdraw just before it can execute; the slash executes.
    Before the fix the cooldown (7 days) ended a day before the slash could (8 days), the
    withdrawal went through and the execution reverted."""
    _deploy(chain)
    registry = RegistryClient.from_chain(chain)
    governor, vault = chain.contract("Governor"), chain.contract("Vault")
    alice, provider = devnet_account("alice"), devnet_account("provider")

    deposit(chain, alice, 500_000 * WEI_PER_PHA)
    chain.send(alice, vault.functions.delegate(alice.address), "Vault.delegate")
    worker, stake = _h100_worker(chain, registry, "77")
    assert registry.provider(provider.address).locked == stake
    chain.advance_time(1)

    targets = [registry.contract.address]
    calldata = registry.contract.encode_abi("slash", [provider.address, stake, "forged evidence"])
    description = "Slash the provider: forged evidence"
    args = (targets, [0], [bytes.fromhex(calldata[2:])])
    desc_hash = keccak(text=description)
    chain.send(alice, governor.functions.propose(*args, description), "Governor.propose")
    pid = governor.functions.hashProposal(*args, desc_hash).call()
    chain.send(provider, registry.contract.functions.deregisterWorker(worker), "deregister")

    chain.advance_time(governor.functions.votingDelay().call() + 1)
    chain.send(alice, governor.functions.castVote(pid, 1), "Governor.castVote")
    chain.advance_time(governor.functions.votingPeriod().call() + 1)
    chain.send(alice, governor.functions.queue(*args, desc_hash), "Governor.queue")
    eta = governor.functions.proposalEta(pid).call()
    chain.advance_time(eta - registry.chain_time() - 2)

    withdraw = registry.contract.functions.withdrawCollateral(stake)
    with pytest.raises(ChainError, match="exceeds free collateral"):
        chain.send(provider, withdraw, "ComputeRegistry.withdrawCollateral")
    chain.advance_time(2)
    chain.send(alice, governor.functions.execute(*args, desc_hash), "Governor.execute")
    assert registry.provider(provider.address).collateral == 0
    assert vault.functions.balanceOf(chain.contract("Timelock").address).call() == stake
