"""A devnet network for the e2e tests that start their own anvil: deployed by the devnet
deployer with the devnet's parameters, named accounts funded at genesis. A module of its
own name (not conftest) so that tests import it like the other kits."""

from __future__ import annotations

from pathlib import Path

from veil.chain.client import connect
from veil.devnet.accounts import devnet_account
from veil.devnet.client import DevnetChain
from veil.devnet.network import devnet_parameters, fund_accounts
from veil.network.deploy import deploy_network


def deploy_funded(rpc_url: str, save_to: Path, *names: str) -> tuple[DevnetChain, Path]:
    """Deploy the network on the devnet at `rpc_url`, fund the devnet accounts `names`,
    and save the deployment record to `save_to`; the chain and the record's path."""
    chain = DevnetChain(connect(rpc_url))
    funded = {name: devnet_account(name).address for name in names}
    deployment = deploy_network(
        chain,
        devnet_account("deployer"),
        "devnet",
        rpc_url,
        devnet_parameters([]),
        genesis_mints=fund_accounts(funded),
    )
    return chain, deployment.save(save_to)
