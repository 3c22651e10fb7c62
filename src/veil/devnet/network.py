"""Bring the devnet up with the veil economy on it, or resume the one already there."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, cast

from veil.chain import deployment as deployments
from veil.chain.accounts import DEVNET_NAMES, devnet_account
from veil.chain.client import Chain, connect
from veil.chain.deploy import Progress, deploy_network, devnet_parameters
from veil.chain.deployment import Deployment
from veil.chain.devnet import DEFAULT_PORT, Devnet, DevnetProcess
from veil.compute.genesis import devnet_allowlist

if TYPE_CHECKING:
    from eth_typing import ChecksumAddress

DEMO_NAMES = ("alice", "bob", "carol", "dave", "provider")


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
        demo = {name: str(devnet_account(name).address) for name in DEMO_NAMES}
        params = devnet_parameters(demo, [devnet_account("attester").address])
        params.os_images, params.compose_hashes = devnet_allowlist()
        deployment = deploy_network(
            chain,
            devnet_account("deployer"),
            "devnet",
            process.rpc_url,
            params,
            guardian=devnet_account("guardian").address,
            progress=progress,
        )
        deployment.accounts.update(
            {n: devnet_account(n).address for n in DEVNET_NAMES if n not in deployment.accounts}
        )
        deployment.save(deployment_path)
        return DevnetUp(process, deployment, resumed=False)
