"""`veil migrate claim` and `veil migrate audit`: the migration's on-chain half.

Kept beside `migrate.py` (the off-chain pipeline) and registered on the same sub-app, so
the pipeline commands need no chain and these need no pipeline internals.
"""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from veil.chain import deployment as deployments
from veil.chain.accounts import resolve_signer
from veil.chain.units import format_amount, format_with_wei
from veil.cli.migrate import app
from veil.cli.options import DeploymentOpt, KeystoreOpt, RpcOpt, open_chain
from veil.errors import InputError, VeilError
from veil.migration.audit import AuditInputs, run_audit
from veil.migration.binding import (
    BindingContext,
    checksum_address,
    context_from_files,
    parse_genesis,
    read_deployment,
    verify_binding,
)
from veil.migration.claim import collect_attestations, submit_claim
from veil.migration.merkle import load_tree
from veil.substrate import ss58
from veil.substrate.signature import SCHEMES

console = Console(highlight=False)


def _context(tree: Path, genesis: str | None, deployment: Path | None) -> BindingContext:
    """Where bindings are valid: the tree's source chain (or --genesis) and the Migrator."""
    path = deployment or deployments.default_path()
    if genesis is None:
        return context_from_files(tree, path)
    chain_id, migrator = read_deployment(path)
    return BindingContext(parse_genesis(genesis), chain_id, migrator)


@app.command()
def claim(
    tree: Path = typer.Option(..., "--tree", help="The published migration tree."),
    account: str = typer.Option(..., "--account", help="Holder's SS58 or 0x account id."),
    to: str = typer.Option(..., "--to", help="The L2 receiver the holder bound."),
    signature: str = typer.Option(..., "--signature", help="The holder's binding signature."),
    scheme: str = typer.Option(None, "--scheme", help="sr25519, ed25519 or ecdsa."),
    pubkey: str = typer.Option(None, "--pubkey", help="33-byte key (ECDSA accounts)."),
    attester: list[str] = typer.Option(..., "--attester", help="Attester URL (repeat)."),
    genesis: str = typer.Option(None, "--genesis", help="Source genesis (default: tree's)."),
    sender_name: str = typer.Option(
        None, "--from", help="Devnet account that sends the transaction (anyone may)."
    ),
    keystore: Path = KeystoreOpt,
    deployment: Path = DeploymentOpt,
    rpc: str = RpcOpt,
) -> None:
    """Check the binding, collect attestations, claim: PHA and vPHA go to the receiver.

    Anyone may send the transaction (--from NAME on the devnet, --keystore, or
    $VEIL_PRIVATE_KEY); the funds only ever go to the bound receiver.
    """
    if scheme is not None and scheme not in SCHEMES:
        raise InputError(f"--scheme {scheme!r}: expected one of {', '.join(SCHEMES)}")
    chain = open_chain(deployment, rpc)
    assert chain.deployment is not None
    context = _context(tree, genesis, deployment)
    migrator = context.migrator
    account_id = ss58.parse_account(account)
    receiver = checksum_address(to, "receiver")
    sig = bytes.fromhex(signature.removeprefix("0x"))
    key = bytes.fromhex(pubkey.removeprefix("0x")) if pubkey else None
    verified = verify_binding(account_id, receiver, sig, context, scheme=scheme, public_key=key)
    merkle = load_tree(tree)
    body = {"account": "0x" + account_id.hex(), "receiver": receiver, "signature": signature}
    if scheme:
        body["scheme"] = scheme
    if pubkey:
        body["pubkey"] = pubkey
    attestations, problems = collect_attestations(
        attester, body, merkle, account_id, receiver, context.chain_id, migrator
    )
    for problem in problems:
        console.print(f"[yellow]warning:[/yellow] {problem}")
    if not attestations:
        raise VeilError(f"claim {ss58.encode(account_id)}: no attester signed the binding")
    sender = resolve_signer(sender_name, keystore)
    result = submit_claim(chain, sender, merkle, account_id, receiver, sig, verified.scheme,
                          attestations)  # fmt: skip
    decimals = chain.contract("Vault").functions.decimals().call()
    holder = ss58.encode(account_id)
    console.print(f"claimed leaf {result.index} for {holder} (tx {result.tx_hash})")
    console.print(f"  PHA   {format_with_wei(result.pha)} -> {receiver}")
    console.print(
        f"  vPHA  {format_amount(result.vpha_shares, decimals, 'vPHA')} "
        f"(worth {format_with_wei(result.vpha_value)}) -> {receiver}"
    )
    console.print(f"  gas   {result.gas_used}")


@app.command()
def audit(
    snapshot: Path = typer.Option(..., "--snapshot", help="Published snapshot."),
    tree: Path = typer.Option(..., "--tree", help="Published tree."),
    positions: Path = typer.Option(None, "--positions", help="Published staked positions."),
    exclusions: Path = typer.Option(None, "--exclusions", help="Published exclusions."),
    ledger: Path = typer.Option(None, "--ledger", help="Published ledger (compared too)."),
    accept_dust: int = typer.Option(0, "--accept-dust", min=0),
    genesis: str = typer.Option(None, "--genesis", help="Source genesis (default: tree's)."),
    deployment: Path = DeploymentOpt,
    rpc: str = RpcOpt,
) -> None:
    """Rebuild everything from public data and the chain; exit 1 on any discrepancy."""
    chain = open_chain(deployment, rpc)
    assert chain.deployment is not None
    context = _context(tree, genesis, deployment)
    inputs = AuditInputs(snapshot, tree, positions, exclusions, ledger, accept_dust)
    report = run_audit(inputs, chain, context)
    table = Table(title=f"migration audit ({report.claims} claims)")
    table.add_column("check")
    table.add_column("result")
    table.add_column("detail", overflow="fold")
    for check in report.checks:
        table.add_row(check.name, "[green]ok[/green]" if check.ok else "[red]FAIL[/red]",
                      check.detail)  # fmt: skip
    console.print(table)
    if not report.ok:
        failed = sum(not c.ok for c in report.checks)
        console.print(f"[red]audit failed: {failed} check(s)[/red]")
        raise typer.Exit(1)
    console.print("[green]audit clean[/green]")
