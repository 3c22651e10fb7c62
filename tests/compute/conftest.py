"""A scratch anvil with the veil contracts, a funded provider and an in-process attester.

The deployment mirrors the devnet's genesis: the devnet `attester` account is the only
registry attester (threshold 1) and the simulator's default app is allowlisted.
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest
from compute_kit import ComputeNetwork, RunningAttester, start_attester

from veil.chain.client import connect
from veil.chain.units import WEI_PER_PHA
from veil.compute.registry import RegistryClient
from veil.devnet.accounts import devnet_account
from veil.devnet.anvil import Devnet, free_port
from veil.devnet.client import DevnetChain
from veil.devnet.network import devnet_parameters, fund_accounts
from veil.network.deploy import deploy_network
from veil.network.genesis import devnet_allowlist, devnet_policy
from veil.services.attester.service import AttesterConfig
from veil.staking.vault import deposit
from veil.tee.policy import policy_from_dict


@pytest.fixture(scope="module")
def network(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ComputeNetwork]:
    root = tmp_path_factory.mktemp("compute-net")
    devnet = Devnet(root / "devnet")
    process = devnet.start(port=free_port())
    try:
        chain = DevnetChain(connect(process.rpc_url))
        provider = devnet_account("provider")
        params = devnet_parameters([devnet_account("attester").address])
        params.os_images, params.compose_hashes = devnet_allowlist()
        params.reward_reserve_pha = 0
        deployment = deploy_network(
            chain,
            devnet_account("deployer"),
            "compute-test",
            process.rpc_url,
            params,
            genesis_mints=fund_accounts({"provider": provider.address}),
        )
        path = deployment.save(root / "deployment.json")
        registry = RegistryClient.from_chain(chain)
        shares = deposit(chain, provider, 2_000 * WEI_PER_PHA)
        registry.register_provider(provider)
        registry.deposit_collateral(provider, shares)
        yield ComputeNetwork(devnet, chain, deployment, path, registry)
    finally:
        devnet.stop()


@pytest.fixture
def attester(network: ComputeNetwork, tmp_path: Path) -> Iterator[RunningAttester]:
    """The devnet attester with the devnet policy, on a fixed port (restartable)."""
    config = AttesterConfig(
        signer=devnet_account("attester"),
        db=tmp_path / "attester.sqlite",
        port=free_port(),
        policy=policy_from_dict(tomllib.loads(devnet_policy())),
        registry=network.registry.domain(),
        validity=3_600,
        chain=network.chain,  # recent block hashes for heartbeats, chain time for expiries
    )
    running = start_attester(config)
    yield running
    running.stop()  # a no-op if the test already stopped it
