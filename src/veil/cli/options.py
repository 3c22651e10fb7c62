"""Options every chain-facing command shares, so each reads the same way everywhere."""

from __future__ import annotations

from pathlib import Path

import typer

from veil.chain import deployment as deployments
from veil.chain.client import Chain

DeploymentOpt = typer.Option(
    None, "--deployment", "-d", help="Deployment file (default: deployments/devnet.json)."
)
RpcOpt = typer.Option(None, "--rpc", help="RPC URL (default: the deployment's).")
AccountOpt = typer.Option(
    None, "--account", "-a", help="Devnet account name (alice, bob, ...); devnet only."
)
KeystoreOpt = typer.Option(
    None, "--keystore", help="Keystore file; password from $VEIL_KEYSTORE_PASSWORD or a prompt."
)


def open_chain(deployment: Path | None, rpc: str | None) -> Chain:
    return Chain.open(deployments.load(deployment), rpc)
