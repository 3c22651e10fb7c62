"""`veil devnet`: the embedded L2 (anvil in optimism mode) with the economy deployed."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from veil.chain import deployment as deployments
from veil.chain.client import Chain, connect
from veil.chain.devnet import DEFAULT_HOME, DEFAULT_PORT, Devnet, DevnetError, check_port
from veil.chain.network import devnet_up

app = typer.Typer(no_args_is_help=True, help="Run the embedded devnet (anvil, optimism mode).")
console = Console(highlight=False)

HomeOpt = typer.Option(DEFAULT_HOME, "--home", help="Where the devnet keeps state, pid and log.")
DeploymentPathOpt = typer.Option(
    deployments.default_path(), "--deployment", "-d", help="Deployment file to write/read."
)


@app.command()
def up(
    port: int = typer.Option(DEFAULT_PORT, "--port", "-p", help="RPC port on 127.0.0.1."),
    fresh: bool = typer.Option(False, "--fresh", help="Forget the saved chain and redeploy."),
    home: Path = HomeOpt,
    deployment: Path = DeploymentPathOpt,
) -> None:
    """Start the devnet, deploy (or resume) the contracts, and print where they are."""
    check_port(port)
    devnet = Devnet(home)
    if fresh:
        devnet.reset()
        deployment.unlink(missing_ok=True)
    result = devnet_up(devnet, deployment, port, progress=lambda m: console.print(f"  {m}"))
    verb = "resumed" if result.resumed else "started"
    console.print(f"devnet {verb}: {result.process.rpc_url} (chain id {result.process.chain_id})")
    _print_deployment(result.deployment, deployment)


@app.command()
def down(home: Path = HomeOpt) -> None:
    """Stop the devnet; its state stays on disk and `up` resumes it."""
    stopped = Devnet(home).stop()
    console.print(f"devnet stopped (pid {stopped.pid}); state kept in {home}")


@app.command()
def status(home: Path = HomeOpt, deployment: Path = DeploymentPathOpt) -> None:
    """Say whether the devnet runs, at which block and time, and what is deployed."""
    process = Devnet(home).running()
    if process is None:
        console.print(f"devnet: not running (state in {home})")
        raise typer.Exit(1)
    w3 = connect(process.rpc_url)
    block = w3.eth.get_block("latest")
    console.print(
        f"devnet: running, pid {process.pid}, {process.rpc_url}, chain id {w3.eth.chain_id}, "
        f"block {block['number']}, time {block['timestamp']}"
    )
    if deployment.exists():
        _print_deployment(deployments.load(deployment), deployment)
    else:
        console.print(f"no deployment file at {deployment}")


@app.command()
def advance(
    seconds: int = typer.Option(0, "--seconds", "-s", min=0),
    days: float = typer.Option(0, "--days", min=0),
    home: Path = HomeOpt,
) -> None:
    """Move the devnet clock forward (anvil time travel) and mine a block."""
    process = Devnet(home).running()
    if process is None:
        raise DevnetError("devnet is not running")
    total = seconds + int(days * 86_400)
    now = Chain(connect(process.rpc_url)).advance_time(total)
    console.print(f"advanced {total} s; chain time is now {now}")


def _print_deployment(deployment: deployments.Deployment, path: Path) -> None:
    table = Table(title=f"{deployment.network} contracts ({path})")
    table.add_column("contract")
    table.add_column("address")
    table.add_column("block", justify="right")
    for name, rec in deployment.contracts.items():
        table.add_row(name, rec.address, str(rec.block))
    console.print(table)
    if deployment.accounts:
        accounts = ", ".join(f"{n} {a}" for n, a in deployment.accounts.items())
        console.print(f"accounts (anvil's public test mnemonic): {accounts}")
