"""`veil attester serve`: verify, then sign; publish what was verified."""

from __future__ import annotations

import logging
from pathlib import Path

import typer
from rich.console import Console

from veil.attester.service import AttesterConfig, build_server
from veil.chain import deployment as deployments
from veil.chain.accounts import resolve_signer
from veil.chain.client import Chain
from veil.cli.options import AccountOpt, KeystoreOpt, RpcOpt
from veil.migration.binding import BindingContext, context_from_files, parse_genesis
from veil.migration.merkle import load_tree

app = typer.Typer(no_args_is_help=True, help="Run an attester service.")
console = Console(highlight=False)


@app.command()
def serve(
    tree: Path = typer.Option(None, "--tree", help="Migration tree (enables bindings)."),
    genesis: str = typer.Option(None, "--genesis", help="Source genesis hash (default: tree's)."),
    deployment: Path = typer.Option(
        deployments.default_path(), "--deployment", "-d", help="Deployment file."
    ),
    db: Path = typer.Option(Path("attester.sqlite"), "--db", help="SQLite record of signatures."),
    host: str = typer.Option("127.0.0.1", "--host"),
    port: int = typer.Option(8700, "--port"),
    account: str = AccountOpt,
    keystore: Path = KeystoreOpt,
    rpc: str = RpcOpt,
    verbose: bool = typer.Option(False, "--verbose", "-v"),
) -> None:
    """Serve until interrupted. Keys come from --keystore, $VEIL_PRIVATE_KEY, or a devnet
    name (--account attester)."""
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO)
    signer = resolve_signer(account, keystore)
    dep = deployments.load(deployment)
    chain = Chain.open(dep, rpc)
    config = AttesterConfig(signer=signer, db=db, host=host, port=port, chain=chain)
    if tree is not None:
        config.tree = load_tree(tree)
        if genesis is not None:
            migrator = dep.address("Migrator")
            config.context = BindingContext(parse_genesis(genesis), dep.chain_id, migrator)
        else:
            config.context = context_from_files(tree, deployment)
    server = build_server(config)
    console.print(f"attester {signer.address} listening on {server.url}")
    for route in server.posts:
        console.print(f"  POST {route}")
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        console.print("stopped")
    finally:
        server.server_close()
