"""`veil wallet`: what an account holds on the L2, and moving PHA or vPHA to someone else."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import typer

from veil.chain.addresses import parse_address
from veil.chain.keystore import keystore_address
from veil.chain.units import (
    PHA_DECIMALS,
    VPHA_DECIMALS,
    amount_json,
    format_amount,
    parse_amount,
)
from veil.cli.accounts import resolve_signer
from veil.cli.options import AccountOpt, DeploymentOpt, KeystoreOpt, RpcOpt, open_chain
from veil.cli.output import iso
from veil.devnet.accounts import DEVNET_NAMES, devnet_account
from veil.errors import ChainError, InputError

if TYPE_CHECKING:
    from eth_typing import ChecksumAddress

app = typer.Typer(no_args_is_help=True, help="See balances and votes, transfer PHA or vPHA.")


def _until(seconds: int) -> str:
    """'in 6 days 23 h', 'in 5 h 10 min', 'in 40 s': how far a time is from chain time."""
    days, rest = divmod(seconds, 86_400)
    hours, rest = divmod(rest, 3_600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"in {days} day{'s' if days != 1 else ''}" + (f" {hours} h" if hours else "")
    if hours:
        return f"in {hours} h" + (f" {minutes} min" if minutes else "")
    return f"in {minutes} min" if minutes else f"in {secs} s"


def _named_or_address(text: str, what: str, *, allow_zero: bool) -> str:
    """A devnet name (alice, ...) as `--account` takes it, or a strictly checked address."""
    if text in DEVNET_NAMES:
        return str(devnet_account(text).address)
    return parse_address(text, what, allow_zero=allow_zero)


@app.command(epilog="Example: veil wallet balance -a alice")
def balance(
    address: str = typer.Argument(
        None, help="Address or devnet name (default: the --account or --keystore address)."
    ),
    account: str = AccountOpt,
    keystore: Path = KeystoreOpt,
    deployment: Path = DeploymentOpt,
    rpc: str = RpcOpt,
    as_json: bool = typer.Option(False, "--json", help="Print JSON (amounts as raw strings)."),
) -> None:
    """PHA, vPHA and its PHA value, voting power, delegate and open unlock requests.

    A keystore's address is read without its password.
    """
    from veil.staking import vault as staking

    if address is not None:
        who = _named_or_address(address, "address", allow_zero=True)
    elif keystore is not None:
        who = keystore_address(keystore)
    else:
        who = str(resolve_signer(account, None).address)
    chain = open_chain(deployment, rpc)
    vault = chain.contract("Vault")
    if vault.functions.decimals().call() != VPHA_DECIMALS:
        raise ChainError(f"Vault {vault.address}: not {VPHA_DECIMALS}-decimal vPHA")
    pos = staking.position(chain, who)
    gas = int(chain.w3.eth.get_balance(cast("ChecksumAddress", pos.address)))
    now = int(chain.w3.eth.get_block("latest")["timestamp"])
    delegate = pos.delegate if int(pos.delegate, 16) else None
    requests = [
        {
            "id": r.request_id,
            "pha": amount_json(r.assets, PHA_DECIMALS),
            "vpha_burned": amount_json(r.shares, VPHA_DECIMALS),
            "claimable_at": iso(r.claimable_at),
            "claimable_at_unix": r.claimable_at,
            "ready": r.ready(now),
        }
        for r in pos.requests
    ]
    if as_json:
        typer.echo(
            json.dumps(
                {
                    "address": pos.address,
                    "chain_time": iso(now),
                    "gas_eth": amount_json(gas, 18),
                    "pha": amount_json(pos.pha, PHA_DECIMALS),
                    "vpha": amount_json(pos.shares, VPHA_DECIMALS),
                    "vpha_value_pha": amount_json(pos.staked_value, PHA_DECIMALS),
                    "votes_vpha": amount_json(pos.votes, VPHA_DECIMALS),
                    "delegate": delegate,
                    "unlock_requests": requests,
                }
            )
        )
        return
    if delegate is None:
        shown_delegate = "nobody (vPHA does not vote until delegated: `veil gov delegate`)"
    elif delegate == pos.address:
        shown_delegate = f"{delegate} (itself)"
    else:
        shown_delegate = delegate
    lines = [
        f"account {pos.address}",
        f"  PHA       {format_amount(pos.pha)}",
        f"  vPHA      {format_amount(pos.shares, VPHA_DECIMALS, 'vPHA')}"
        f"  (worth {format_amount(pos.staked_value)})",
        f"  votes     {format_amount(pos.votes, VPHA_DECIMALS, 'vPHA')}",
        f"  delegate  {shown_delegate}",
        f"  gas       {format_amount(gas, 18, 'ETH')}",
    ]
    if pos.requests:
        lines.append(f"unlock requests (chain time {iso(now)}):")
        for r in pos.requests:
            state = "ready to claim" if r.ready(now) else _until(r.claimable_at - now)
            lines.append(
                f"  #{r.request_id}  {format_amount(r.assets)}  claimable "
                f"{iso(r.claimable_at)} ({state})"
            )
    else:
        lines.append("unlock requests: none open")
    typer.echo("\n".join(lines))


@app.command(epilog="Example: veil wallet transfer 12.5 bob -a alice")
def transfer(
    amount: str = typer.Argument(..., help="How much, e.g. 12.5 (PHA: 18 decimals, vPHA: 24)."),
    to: str = typer.Argument(..., help="Receiver: an EIP-55 address, or a devnet name."),
    vpha: bool = typer.Option(
        False, "--vpha", help="Send vPHA (staked PHA; its voting power follows it) instead."
    ),
    eth: bool = typer.Option(
        False, "--eth", help="Send ETH, the L2's gas coin (a new key needs some to send)."
    ),
    account: str = AccountOpt,
    keystore: Path = KeystoreOpt,
    deployment: Path = DeploymentOpt,
    rpc: str = RpcOpt,
    as_json: bool = typer.Option(False, "--json", help="Print JSON: token, from, to, tx."),
) -> None:
    """Send PHA (or vPHA with --vpha, ETH for gas with --eth) from the signer to an address.

    Checked before sending: amount, receiver's EIP-55 checksum, not zero or a token, balance.
    """
    if vpha and eth:
        raise InputError("transfer: --vpha and --eth exclude each other")
    token_name, decimals = ("vPHA", VPHA_DECIMALS) if vpha else ("PHA", PHA_DECIMALS)
    if eth:
        token_name = "ETH"
    value = parse_amount(amount, decimals, f"{token_name} amount")
    if value == 0:
        raise InputError(f"{token_name} amount {amount!r}: must be more than zero")
    receiver = _named_or_address(to, "receiver", allow_zero=False)
    me = resolve_signer(account, keystore)
    chain = open_chain(deployment, rpc)
    for contract_name in ("PHA", "Vault"):
        if chain.contract(contract_name).address == receiver:
            raise InputError(
                f"receiver {receiver}: the {contract_name} contract itself; tokens sent "
                "there are lost"
            )
    if eth:
        held = int(chain.w3.eth.get_balance(me.address))
    else:
        token = chain.contract("Vault" if vpha else "PHA")
        if vpha and token.functions.decimals().call() != VPHA_DECIMALS:
            raise ChainError(f"Vault {token.address}: not {VPHA_DECIMALS}-decimal vPHA")
        held = int(token.functions.balanceOf(me.address).call())
    if held < value:
        raise InputError(
            f"transfer: needs {format_amount(value, decimals, token_name)}, "
            f"{me.address} holds {format_amount(held, decimals, token_name)}"
        )
    if eth:
        receipt = chain.send_value(me, receiver, value, "ETH transfer")
    else:
        call = token.functions.transfer(receiver, value)
        receipt = chain.send(me, call, f"{token_name}.transfer")
    tx = receipt["transactionHash"].to_0x_hex()
    result: dict[str, Any] = {
        "token": token_name,
        "from": me.address,
        "to": receiver,
        "amount": amount_json(value, decimals),
        "tx": tx,
        "block": int(receipt["blockNumber"]),
    }
    if as_json:
        typer.echo(json.dumps(result))
        return
    typer.echo(
        f"sent {format_amount(value, decimals, token_name)} from {me.address} to {receiver} "
        f"(tx {tx}, block {result['block']})"
    )
