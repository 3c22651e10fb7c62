"""`veil devnet`: the embedded L2 (anvil in optimism mode) with the economy deployed."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

from veil.chain import deployment as deployments
from veil.chain.client import connect
from veil.cli.options import JsonOpt
from veil.cli.output import iso
from veil.devnet.anvil import DEFAULT_HOME, DEFAULT_PORT, Devnet, DevnetError, check_port
from veil.devnet.client import DevnetChain
from veil.devnet.network import devnet_up

app = typer.Typer(no_args_is_help=True, help="Run the embedded devnet (anvil, optimism mode).")
console = Console(highlight=False)

HomeOpt = typer.Option(DEFAULT_HOME, "--home", help="Where the devnet keeps state, pid and log.")
DeploymentPathOpt = typer.Option(
    deployments.default_path(), "--deployment", "-d", help="Deployment file to write/read."
)


@app.command(epilog="Example: veil devnet up --fresh --port 8555")
def up(
    port: int = typer.Option(DEFAULT_PORT, "--port", "-p", help="RPC port on 127.0.0.1."),
    fresh: bool = typer.Option(False, "--fresh", help="Forget the saved chain and redeploy."),
    home: Path = HomeOpt,
    deployment: Path = DeploymentPathOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Start the devnet, deploy (or resume) the contracts, and print where they are."""
    check_port(port)
    devnet = Devnet(home)
    if fresh:
        devnet.reset()
        deployment.unlink(missing_ok=True)
    quiet = console.quiet
    console.quiet = as_json
    try:
        result = devnet_up(devnet, deployment, port, progress=lambda m: console.print(f"  {m}"))
    finally:
        console.quiet = quiet
    if as_json:
        record = {
            "state": "resumed" if result.resumed else "started",
            "pid": result.process.pid,
            "rpc_url": result.process.rpc_url,
            "chain_id": result.process.chain_id,
            "home": str(home),
        }
        typer.echo(json.dumps({**record, **_deployment_json(result.deployment, deployment)}))
        return
    verb = "resumed" if result.resumed else "started"
    console.print(f"devnet {verb}: {result.process.rpc_url} (chain id {result.process.chain_id})")
    _print_deployment(result.deployment, deployment)


@app.command(epilog="Example: veil devnet down --home .veil/demo")
def down(home: Path = HomeOpt, as_json: bool = JsonOpt) -> None:
    """Stop the devnet; its state stays on disk and `up` resumes it."""
    stopped = Devnet(home).stop()
    if as_json:
        typer.echo(json.dumps({"state": "stopped", "pid": stopped.pid, "home": str(home)}))
        return
    console.print(f"devnet stopped (pid {stopped.pid}); state kept in {home}")


@app.command(epilog="Example: veil devnet status --json")
def status(
    home: Path = HomeOpt, deployment: Path = DeploymentPathOpt, as_json: bool = JsonOpt
) -> None:
    """Say whether the devnet runs, at which block and time, and what is deployed.

    Exits 1 when it is not running (the JSON then says `"running": false`).
    """
    process = Devnet(home).running()
    if process is None:
        if as_json:
            typer.echo(json.dumps({"running": False, "home": str(home)}))
        else:
            console.print(f"devnet: not running (state in {home})")
        raise typer.Exit(1)
    w3 = connect(process.rpc_url)
    block = w3.eth.get_block("latest")
    saved = deployments.load(deployment) if deployment.exists() else None
    if as_json:
        record: dict[str, Any] = {
            "running": True,
            "pid": process.pid,
            "rpc_url": process.rpc_url,
            "chain_id": w3.eth.chain_id,
            "block": block["number"],
            "time": {"unix": block["timestamp"], "iso": iso(block["timestamp"])},
            "home": str(home),
        }
        extra = _deployment_json(saved, deployment) if saved else {"deployment": None}
        typer.echo(json.dumps({**record, **extra}))
        return
    console.print(
        f"devnet: running, pid {process.pid}, {process.rpc_url}, chain id {w3.eth.chain_id}, "
        f"block {block['number']}, time {iso(block['timestamp'])}"
    )
    if saved is not None:
        _print_deployment(saved, deployment)
    else:
        console.print(f"no deployment file at {deployment}")


@app.command(epilog="Example: veil devnet advance --days 21")
def advance(
    seconds: int = typer.Option(0, "--seconds", "-s", min=0, help="Seconds to move forward."),
    days: float = typer.Option(0, "--days", min=0, help="Days to move forward (added)."),
    home: Path = HomeOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Move the devnet clock forward (anvil time travel) and mine a block."""
    process = Devnet(home).running()
    if process is None:
        raise DevnetError("devnet is not running")
    total = seconds + int(days * 86_400)
    now = DevnetChain(connect(process.rpc_url)).advance_time(total)
    if as_json:
        typer.echo(json.dumps({"advanced_seconds": total, "time": {"unix": now, "iso": iso(now)}}))
        return
    console.print(f"advanced {total} s; chain time is now {iso(now)}")


def _deployment_json(deployment: deployments.Deployment, path: Path) -> dict[str, Any]:
    contracts = {
        name: {"address": rec.address, "block": rec.block}
        for name, rec in deployment.contracts.items()
    }
    return {
        "deployment": str(path),
        "network": deployment.network,
        "contracts": contracts,
        "accounts": dict(deployment.accounts),
    }


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
