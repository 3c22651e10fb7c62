"""`veil stake`: deposit PHA for vPHA, queue and claim unlocks, see a position."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from veil.chain.units import amount_json, format_amount, format_with_wei, parse_amount
from veil.cli.accounts import resolve_address, resolve_signer
from veil.cli.options import AccountOpt, DeploymentOpt, JsonOpt, KeystoreOpt, RpcOpt, open_chain
from veil.cli.output import iso, print_json, print_table, relative, when
from veil.errors import InputError
from veil.staking import vault as staking

app = typer.Typer(no_args_is_help=True, help="Stake PHA in the vPHA vault.")
console = Console(highlight=False, soft_wrap=True)


@app.command(epilog="Example: veil stake deposit 12.5 -a alice")
def deposit(
    amount: str = typer.Argument(
        ..., help="PHA to stake: digits and at most one '.', up to 18 decimals (12.5)."
    ),
    receiver: str = typer.Option(
        None, "--receiver", help="Who gets the vPHA: address or devnet name (default: you)."
    ),
    account: str = AccountOpt,
    keystore: Path = KeystoreOpt,
    deployment: Path = DeploymentOpt,
    rpc: str = RpcOpt,
) -> None:
    """Stake PHA; vPHA starts earning rewards and can carry votes once delegated."""
    assets = parse_amount(amount)
    if receiver is not None:
        receiver = resolve_address(receiver, "--receiver")
    me = resolve_signer(account, keystore)
    chain = open_chain(deployment, rpc)
    shares = staking.deposit(chain, me, assets, receiver)
    decimals = chain.contract("Vault").functions.decimals().call()
    console.print(
        f"staked {format_with_wei(assets)} -> {format_amount(shares, decimals, 'vPHA')} "
        f"for {receiver or me.address}"
    )


@app.command("request-unlock", epilog="Example: veil stake request-unlock 100 -a alice")
def request_unlock(
    amount: str = typer.Argument(
        None, help="PHA to unlock: digits and at most one '.', up to 18 decimals (100)."
    ),
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
    now = int(chain.w3.eth.get_block("latest")["timestamp"])
    console.print(
        f"unlock request {request.request_id}: {format_with_wei(request.assets)} "
        f"claimable from {when(request.claimable_at, now)} (chain time)"
    )


@app.command(epilog="Example: veil stake cancel 3 -a alice")
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


@app.command(epilog="Example: veil stake claim --all -a alice --json")
def claim(
    request_id: int = typer.Argument(None, help="Unlock request id."),
    all_ready: bool = typer.Option(False, "--all", help="Claim every matured request."),
    as_json: bool = JsonOpt,
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
    claimed = []
    for rid in ids:
        paid = staking.claim(chain, me, rid)
        claimed.append({"request": rid, "pha": amount_json(paid)})
        if not as_json:
            console.print(f"claimed request {rid}: {format_with_wei(paid)}")
    if as_json:
        print_json({"account": me.address, "claimed": claimed})


@app.command(epilog="Example: veil stake status -a alice; veil stake status bob --json")
def status(
    address: str = typer.Argument(
        None, help="Address or devnet name to show (default: the signer's)."
    ),
    as_json: bool = JsonOpt,
    account: str = AccountOpt,
    keystore: Path = KeystoreOpt,
    deployment: Path = DeploymentOpt,
    rpc: str = RpcOpt,
) -> None:
    """Balances, staked value, votes, open unlock requests and the vault's parameters."""
    if address is not None:
        address = resolve_address(address, "address", allow_zero=True)
    chain = open_chain(deployment, rpc)
    if address is None:
        address = resolve_signer(account, keystore).address
    vault = chain.contract("Vault")
    decimals = vault.functions.decimals().call()
    pos = staking.position(chain, address)
    now = int(chain.w3.eth.get_block("latest")["timestamp"])
    delegate = pos.delegate if int(pos.delegate, 16) else None
    rate = vault.functions.rewardRate().call()
    reserve = vault.functions.rewardReserve().call()
    total = vault.functions.totalAssets().call()
    period = vault.functions.unlockPeriod().call()
    if as_json:
        print_json(
            {
                "address": pos.address,
                "pha": amount_json(pos.pha),
                "vpha": amount_json(pos.shares, decimals),
                "staked_value": amount_json(pos.staked_value),
                "delegate": delegate,
                "votes": amount_json(pos.votes, decimals),
                "unlock_requests": [
                    {
                        "id": r.request_id,
                        "pha": amount_json(r.assets),
                        "claimable_at": {"unix": r.claimable_at, "iso": iso(r.claimable_at)},
                        "ready": r.ready(now),
                    }
                    for r in pos.requests
                ],
                "vault": {
                    "total_assets": amount_json(total),
                    "reward_rate_per_second": amount_json(rate),
                    "reward_reserve": amount_json(reserve),
                    "unlock_period_seconds": period,
                },
                "chain_time": {"unix": now, "iso": iso(now)},
            }
        )
        return
    console.print(f"account {pos.address}")
    console.print(f"  PHA        {format_with_wei(pos.pha)}")
    console.print(f"  vPHA       {format_amount(pos.shares, decimals, 'vPHA')}")
    console.print(f"  worth      {format_with_wei(pos.staked_value)}")
    console.print(f"  delegate   {delegate or 'nobody (vPHA does not vote until delegated)'}")
    console.print(f"  votes      {format_amount(pos.votes, decimals, 'vPHA')}")
    if pos.requests:
        table = Table(title="unlock requests")
        for col in ("id", "PHA owed", "claimable from", "state"):
            table.add_column(col)
        for r in pos.requests:
            state = "ready" if r.ready(now) else relative(r.claimable_at - now)
            table.add_row(str(r.request_id), format_amount(r.assets), iso(r.claimable_at), state)
        print_table(console, table)
    console.print(
        f"vault: {format_amount(total)} staked, "
        f"reward rate {format_amount(rate)}/s, reserve {format_amount(reserve)}, "
        f"unlock period {period // 86_400} days"
    )
