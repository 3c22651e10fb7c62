"""Bring the devnet up with the veil economy on it, or resume the one already there.

The devnet is the production genesis (`veil.network.deploy`) with a devnet profile: short
governance timings, a realistic yield, the simulator's app allowlisted, and the public demo
accounts funded while the deployer may still mint. Only this package knows those accounts.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, cast

from veil.chain import deployment as deployments
from veil.chain.client import Chain, connect
from veil.chain.deployment import Deployment
from veil.chain.units import WEI_PER_PHA
from veil.devnet.accounts import DEVNET_NAMES, devnet_account
from veil.devnet.anvil import DEFAULT_PORT, Devnet, DevnetProcess
from veil.network.deploy import (
    DAY,
    GenesisMinter,
    GenesisMints,
    NetworkParameters,
    Progress,
    deploy_network,
)
from veil.network.genesis import devnet_allowlist

if TYPE_CHECKING:
    from eth_typing import ChecksumAddress

DEMO_NAMES = ("alice", "bob", "carol", "dave", "provider")
DEMO_BALANCE_PHA = 1_000_000

# 0.0014 PHA a second is 44,150 PHA a year: on the demo's 370,000 staked PHA that is about
# 11.9% a year, 10.7% to stakers after the treasury's 10% (the demo then raises it to 0.0018).
DEVNET_REWARD_RATE = WEI_PER_PHA * 14 // 10_000
# The compute reward pool's reserve: 500 epochs of the default 2,000 PHA budget.
DEVNET_REWARD_POOL_PHA = 1_000_000


def devnet_parameters(attesters: list[str]) -> NetworkParameters:
    """Short governance timings so the demo's time travel stays small; a realistic yield."""
    return NetworkParameters(
        timelock_delay=DAY,
        voting_delay=3_600,
        voting_period=3 * DAY,
        reward_rate=DEVNET_REWARD_RATE,
        reward_pool_pha=DEVNET_REWARD_POOL_PHA,
        attesters=attesters,
    )


def fund_accounts(accounts: dict[str, str], balance_pha: int = DEMO_BALANCE_PHA) -> GenesisMints:
    """A genesis hook minting `balance_pha` PHA to each named account and recording it."""

    def mint(genesis: GenesisMinter) -> None:
        for name, address in accounts.items():
            genesis.mint(address, balance_pha * WEI_PER_PHA, f"PHA.mint to {name}")
            genesis.deployment.accounts[name] = address
            genesis.progress(f"funded {name} with {balance_pha:,} PHA")

    return mint


def demo_accounts() -> dict[str, str]:
    """The devnet accounts funded at genesis, by name."""
    return {name: str(devnet_account(name).address) for name in DEMO_NAMES}


@dataclass
class DevnetUp:
    process: DevnetProcess
    deployment: Deployment
    resumed: bool


def _deployment_live(chain: Chain, deployment: Deployment) -> bool:
    """The saved deployment belongs to this chain if its contracts have code here."""
    if deployment.chain_id != chain.w3.eth.chain_id or not deployment.contracts:
        return False
    code = chain.w3.eth.get_code
    return all(
        len(code(cast("ChecksumAddress", r.address))) > 0 for r in deployment.contracts.values()
    )


def devnet_up(
    devnet: Devnet,
    deployment_path: Path,
    port: int = DEFAULT_PORT,
    progress: Progress = lambda _msg: None,
) -> DevnetUp:
    """Start anvil; deploy unless the saved deployment is already on the resumed chain.

    Any failure or Ctrl-C stops anvil again and removes what this start created (see
    `Devnet.started`); the deployment file is written atomically only once complete.
    """
    with devnet.started(port=port) as process:
        w3 = connect(process.rpc_url, process.chain_id)
        chain = Chain(w3)
        if deployment_path.exists():
            saved = deployments.load(deployment_path)
            if _deployment_live(chain, saved):
                saved.rpc_url = process.rpc_url
                saved.save(deployment_path)
                return DevnetUp(process, saved, resumed=True)
        progress("deploying the veil contracts")
        params = devnet_parameters([devnet_account("attester").address])
        params.os_images, params.compose_hashes = devnet_allowlist()
        deployment = deploy_network(
            chain,
            devnet_account("deployer"),
            "devnet",
            process.rpc_url,
            params,
            guardian=devnet_account("guardian").address,
            genesis_mints=fund_accounts(demo_accounts()),
            progress=progress,
        )
        deployment.accounts.update(
            {n: devnet_account(n).address for n in DEVNET_NAMES if n not in deployment.accounts}
        )
        deployment.save(deployment_path)
        return DevnetUp(process, deployment, resumed=False)
