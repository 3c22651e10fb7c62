"""`veil stake`: deposit PHA for vPHA, queue and claim unlocks, see a position."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table
from web3 import Web3

from veil.chain import staking
from veil.chain.accounts import resolve_signer
from veil.chain.units import format_amount, format_with_wei, parse_amount
from veil.cli.options import AccountOpt, DeploymentOpt, KeystoreOpt, RpcOpt, open_chain
from veil.errors import InputError

app = typer.Typer(no_args_is_help=True, help="Stake PHA in the vPHA vault.")
console = Console(highlight=False)


@app.command()
def deposit(
    amount: str = typer.Argument(..., help="PHA to stake, e.g. 12.5"),
    receiver: str = typer.Option(None, "--receiver", help="Who gets the vPHA (default: you)."),
    account: str = AccountOpt,
    keystore: Path = KeystoreOpt,
    deployment: Path = DeploymentOpt,
    rpc: str = RpcOpt,
) -> None:
    """Stake PHA; vPHA starts earning rewards and can carry votes once delegated."""
    assets = parse_amount(amount)
    me = resolve_signer(account, keystore)
    chain = open_chain(deployment, rpc)
    shares = staking.deposit(chain, me, assets, receiver)
    decimals = chain.contract("Vault").functions.decimals().call()
    console.print(
        f"staked {format_with_wei(assets)} -> {format_amount(shares, decimals, 'vPHA')} "
        f"for {receiver or me.address}"
    )


@app.command("request-unlock")
def request_unlock(
    amount: str = typer.Argument(None, help="PHA to unlock, e.g. 100"),
    all_: bool = typer.Option(False, "--all", help="Unlock every vPHA you hold."),
    account: str = AccountOpt,
    keystore: Path = KeystoreOpt,
    deployment: Path = DeploymentOpt,
    rpc: str = RpcOpt,
) -> None:
    """Burn vPHA now and fix the PHA owed; claim it after the unlock period."""
    if (amount is None) == (not all_):
        raise InputError("request-unlock: give an amount or --all (not both)")
    assets = None if all_ else parse_amount(amount)
    me = resolve_signer(account, keystore)
    chain = open_chain(deployment, rpc)
    request = staking.request_unlock(chain, me, assets=assets, all_shares=all_)
    console.print(
        f"unlock request {request.request_id}: {format_with_wei(request.assets)} "
        f"claimable at {request.claimable_at} (chain time)"
    )


@app.command()
def cancel(
    request_id: int = typer.Argument(..., help="Unlock request id."),
    account: str = AccountOpt,
    keystore: Path = KeystoreOpt,
    deployment: Path = DeploymentOpt,
    rpc: str = RpcOpt,
) -> None:
    """Cancel a pending unlock: its PHA is staked again at today's price, nothing lost."""
    me = resolve_signer(account, keystore)
    chain = open_chain(deployment, rpc)
    request = staking.read_request(chain, request_id)
    shares = staking.cancel(chain, me, request_id)
    decimals = chain.contract("Vault").functions.decimals().call()
    console.print(
        f"cancelled request {request_id}: {format_with_wei(request.assets)} re-staked as "
        f"{format_amount(shares, decimals, 'vPHA')}"
    )


@app.command()
def claim(
    request_id: int = typer.Argument(None, help="Unlock request id."),
    all_ready: bool = typer.Option(False, "--all", help="Claim every matured request."),
    account: str = AccountOpt,
    keystore: Path = KeystoreOpt,
    deployment: Path = DeploymentOpt,
    rpc: str = RpcOpt,
) -> None:
    """Receive the PHA of a matured unlock request, in full."""
    me = resolve_signer(account, keystore)
    chain = open_chain(deployment, rpc)
    if all_ready:
        now = chain.w3.eth.get_block("latest")["timestamp"]
        ids = [r.request_id for r in staking.open_requests(chain, me.address) if r.ready(now)]
        if not ids:
            raise InputError(f"claim: {me.address} has no matured unlock request")
    elif request_id is not None:
        ids = [request_id]
    else:
        raise InputError("claim: give a request id or --all")
    for rid in ids:
        paid = staking.claim(chain, me, rid)
        console.print(f"claimed request {rid}: {format_with_wei(paid)}")


@app.command()
def status(
    address: str = typer.Argument(None, help="Address to show (default: the signer's)."),
    account: str = AccountOpt,
    keystore: Path = KeystoreOpt,
    deployment: Path = DeploymentOpt,
    rpc: str = RpcOpt,
) -> None:
    """Balances, staked value, votes, open unlock requests and the vault's parameters."""
    chain = open_chain(deployment, rpc)
    if address is None:
        address = resolve_signer(account, keystore).address
    elif not Web3.is_address(address):
        raise InputError(f"address {address!r}: not an address")
    vault = chain.contract("Vault")
    decimals = vault.functions.decimals().call()
    pos = staking.position(chain, address)
    console.print(f"account {pos.address}")
    console.print(f"  PHA        {format_with_wei(pos.pha)}")
    console.print(f"  vPHA       {format_amount(pos.shares, decimals, 'vPHA')}")
    console.print(f"  worth      {format_with_wei(pos.staked_value)}")
    delegate = "nobody (vPHA does not vote until delegated)"
    if int(pos.delegate, 16):
        delegate = pos.delegate
    console.print(f"  delegate   {delegate}")
    console.print(f"  votes      {format_amount(pos.votes, decimals, 'vPHA')}")
    now = chain.w3.eth.get_block("latest")["timestamp"]
    if pos.requests:
        table = Table(title="unlock requests")
        for col in ("id", "PHA owed", "claimable at", "state"):
            table.add_column(col)
        for r in pos.requests:
            state = "ready" if r.ready(now) else f"in {r.claimable_at - now} s"
            table.add_row(str(r.request_id), format_amount(r.assets), str(r.claimable_at), state)
        console.print(table)
    rate = vault.functions.rewardRate().call()
    reserve = vault.functions.rewardReserve().call()
    console.print(
        f"vault: {format_amount(vault.functions.totalAssets().call())} staked, "
        f"reward rate {format_amount(rate)}/s, reserve {format_amount(reserve)}, "
        f"unlock period {vault.functions.unlockPeriod().call() // 86_400} days"
    )
