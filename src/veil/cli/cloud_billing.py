"""`veil cloud billing|topup|statement`, and the lease steps of `deploy` and `delete`.

The customer's key never leaves this machine: the control plane describes the lease to
sign, this module checks the description against the chain (the market, the price, the
customer, the instance type) before signing, and the control plane only submits it.
Closing a lease is the customer's own transaction (`delete -d`): the control plane's
operator is no party of the lease and could not close it.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import typer

from veil.chain.units import format_amount, parse_amount
from veil.cli.accounts import resolve_signer
from veil.cli.cloud import JsonOpt, UrlOpt, _app_id, _call, _client, app, console
from veil.cli.options import AccountOpt, KeystoreOpt, RpcOpt, open_chain
from veil.errors import InputError, VeilError

#: Runway a deploy funds when --fund is not given.
DEFAULT_RUNWAY = 86_400
DeploymentOpt = typer.Option(None, "--deployment", "-d", help="Network deployment file.")


def _escrow(deployment: Path | None, rpc: str | None) -> Any:
    from veil.market.escrow import Escrow

    chain = open_chain(deployment, rpc)
    if chain.deployment is None or "Market" not in chain.deployment.contracts:
        raise InputError("this network has no Market deployed: nothing to bill through")
    return Escrow(chain)


def _price_name(instance_type: str) -> str:
    from veil.services.cloud.billing import price_name

    return price_name(instance_type)


def open_app_lease(
    client: Any,
    app_id: str,
    signer: Any,
    deployment: Path | None,
    rpc: str | None,
    fund: str | None,
    timeout: float = 30.0,
) -> dict[str, Any]:
    """Sign and submit the app's lease (depositing first what the escrow lacks); the
    app's billing as the control plane then reports it. Returns at once when unbilled."""
    from eth_utils import keccak

    from veil.market.typed_data import OpenLease

    state = _call(client, "GET", f"/v1/apps/{app_id}/billing")
    if state.get("billed") or "awaiting_lease" not in str(state.get("reason", "")):
        return dict(state)
    if deployment is None:
        raise InputError(
            "this control plane bills through the market: pass -d DEPLOYMENT (and -a) "
            "so the lease can be signed here"
        )
    escrow = _escrow(deployment, rpc)
    entry = _call(client, "GET", f"/v1/apps/{app_id}")
    rate = escrow.price(_price_name(entry["instance_type"]))
    window = int(escrow.market.functions.shutdownWindow().call())
    amount = parse_amount(fund, what="--fund") if fund else rate * (DEFAULT_RUNWAY + window)
    deadline = time.monotonic() + timeout
    while True:
        try:
            req = _call(client, "GET", f"/v1/apps/{app_id}/lease-request?amount={amount}")
            break
        except VeilError as error:
            if "not_placed" not in str(error) or time.monotonic() > deadline:
                raise
            time.sleep(0.5)
    msg = req["message"]
    # what the control plane asks us to sign must be what we mean to sign
    expected = {
        "market": escrow.market.address.lower(),
        "customer": signer.address.lower(),
        "instanceType": "0x" + keccak(text=_price_name(entry["instance_type"])).hex(),
        "maxRate": str(rate),
        "amount": str(amount),
    }
    got = {
        "market": req["market"].lower(),
        "customer": msg["customer"].lower(),
        "instanceType": msg["instanceType"].lower(),
        "maxRate": msg["maxRate"],
        "amount": msg["amount"],
    }
    for key, value in expected.items():
        if got[key] != value:
            raise VeilError(f"the control plane's lease request has {key} {got[key]}, not {value}")
    free = escrow.free_balance(signer.address)
    if free < amount:
        short = amount - free
        console.print(
            f"escrow free balance {format_amount(free)} is short of {format_amount(amount)}: "
            f"depositing {format_amount(short)}"
        )
        _ensure_wallet(escrow, signer.address, short)
        escrow.deposit(signer, short)
    request = OpenLease(
        msg["customer"],
        msg["provider"],
        bytes.fromhex(msg["deployment"][2:]),
        bytes.fromhex(msg["instanceType"][2:]),
        int(msg["amount"]),
        int(msg["maxRate"]),
        int(msg["deadline"]),
    )
    signature = escrow.sign_open(signer.key, request)
    return dict(
        _call(
            client,
            "POST",
            f"/v1/apps/{app_id}/lease",
            json={
                "amount": msg["amount"],
                "max_rate": msg["maxRate"],
                "deadline": request.deadline,
                "signature": "0x" + signature.hex(),
            },
        )
    )


def _ensure_wallet(escrow: Any, who: str, amount: int) -> None:
    held = int(escrow.token.functions.balanceOf(who).call())
    if held < amount:
        raise InputError(
            f"wallet {who} holds {format_amount(held)}, short of {format_amount(amount)}"
        )


def close_app_lease(
    client: Any, app_id: str, signer: Any, deployment: Path | None, rpc: str | None
) -> str | None:
    """Close the app's open lease as its customer; a line saying what happened."""
    state = _call(client, "GET", f"/v1/apps/{app_id}/billing")
    if not state.get("billed") or state.get("state") == "closed":
        return None
    if deployment is None:
        return (
            f"lease {state['lease_id']} stays open (pass -d and -a to close it and get the "
            "unspent balance back now; otherwise it pauses when its runway ends)"
        )
    escrow = _escrow(deployment, rpc)
    refund = escrow.close(signer, int(state["lease_id"], 16))
    return f"lease {state['lease_id']} closed: {format_amount(refund)} refunded to {signer.address}"


def print_billing(entry: dict[str, Any]) -> None:
    console.print(f"{entry['app_id']}")
    if not entry.get("billed"):
        console.print(f"  billing  not billed: {entry.get('reason', '')}")
        return
    rate = int(entry["rate_wei_per_second"])
    console.print(f"  lease    {entry['lease_id']} ({entry['state']})")
    console.print(f"  provider {entry['provider']}   type {entry['instance_type']}")
    console.print(f"  rate     {format_amount(rate)}/s ({format_amount(rate * 3600)}/h)")
    console.print(f"  cost     {format_amount(int(entry['cost_so_far_wei']))} so far")
    console.print(f"  balance  {format_amount(int(entry['balance_wei']))}")
    left = int(entry["runway_seconds"])
    console.print(f"  runway   {left} s ({left / 3600:.1f} h)")


@app.command(epilog="Example: veil cloud billing web")
def billing(
    app_ref: str = typer.Argument(None, metavar="[APP]", help="App id or name (default: all)."),
    url: str = UrlOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Rate, cost so far, balance and runway of your apps' leases (read from the chain)."""
    client = _client(url)
    ids = (
        [_app_id(client, app_ref)]
        if app_ref
        else [str(e["app_id"]) for e in _call(client, "GET", "/v1/apps")]
    )
    entries = [_call(client, "GET", f"/v1/apps/{i}/billing") for i in ids]
    if as_json:
        typer.echo(json.dumps(entries if not app_ref else entries[0]))
        return
    if not entries:
        console.print("no apps")
    for entry in entries:
        print_billing(entry)


@app.command(epilog="Example: veil cloud topup 50 --app web -d devnet.json -a alice")
def topup(
    amount: str = typer.Argument(..., help="PHA to add."),
    app_ref: str = typer.Option(None, "--app", help="Also move it into this app's lease."),
    from_allowance: bool = typer.Option(
        False, "--from-allowance", help="Deposit through an approval already given (no permit)."
    ),
    deployment: Path = DeploymentOpt,
    rpc: str = RpcOpt,
    account: str = AccountOpt,
    keystore: Path = KeystoreOpt,
    url: str = UrlOpt,
) -> None:
    """Deposit PHA into your escrow; with --app, also top up that app's lease.

    The deposit is one transaction (an EIP-2612 permit); topping up a paused lease resumes
    it, and the worker starts the app again."""
    wei = parse_amount(amount, what="AMOUNT")
    if wei <= 0:
        raise InputError("AMOUNT must be positive")
    signer = resolve_signer(account, keystore)
    escrow = _escrow(deployment, rpc)
    lease_id = None
    if app_ref:
        client = _client(url)
        state = _call(client, "GET", f"/v1/apps/{_app_id(client, app_ref)}/billing")
        if not state.get("billed"):
            raise InputError(f"app {app_ref} has no lease: {state.get('reason', '')}")
        if state["state"] == "closed":
            raise InputError(f"app {app_ref}: lease {state['lease_id']} is closed")
        lease_id = int(state["lease_id"], 16)
    _ensure_wallet(escrow, signer.address, wei)
    if from_allowance:
        allowed = int(
            escrow.token.functions.allowance(signer.address, escrow.market.address).call()
        )
        if allowed < wei:
            raise InputError(
                f"allowance to the market is {format_amount(allowed)}, short of "
                f"{format_amount(wei)} (approve it first, or drop --from-allowance for a permit)"
            )
    escrow.deposit(signer, wei, permit=not from_allowance)
    free = escrow.free_balance(signer.address)
    console.print(f"deposited {format_amount(wei)}; free balance {format_amount(free)}")
    if lease_id is not None:
        escrow.top_up(signer, lease_id, wei)
        figures = escrow.billing(lease_id)
        console.print(
            f"lease {lease_id:#066x} topped up: {figures.state}, runway {figures.runway_seconds} s"
        )


@app.command(epilog="Example: veil cloud statement 2026-11 --csv -o nov.csv")
def statement(
    month: str = typer.Argument(..., help="YYYY-MM (UTC)."),
    csv: bool = typer.Option(False, "--csv", help="CSV usage records instead of JSON."),
    out: Path = typer.Option(None, "--out", "-o", help="Write to this file."),
    url: str = UrlOpt,
) -> None:
    """Your monthly statement: per-second usage records, per-lease totals, funding."""
    import httpx

    from veil import atomic
    from veil.market.usage import month_bounds

    month_bounds(month)  # a bad month is refused here, in one line
    client = _client(url)
    try:
        answer = client.get(
            "/v1/billing/statement", params={"month": month, "format": "csv" if csv else "json"}
        )
    except httpx.HTTPError as error:
        raise VeilError(f"control plane {client.base_url}: {type(error).__name__}") from None
    if answer.status_code >= 400:
        _call(client, "GET", "/v1/billing/statement", params={"month": month})  # raises
        raise VeilError(f"statement: HTTP {answer.status_code}")
    body = answer.text
    if out is not None:
        atomic.write_text(out, body if csv else json.dumps(json.loads(body), indent=2) + "\n")
        console.print(f"statement {month} written to {out}")
        return
    typer.echo(body.rstrip("\n"))


@app.command(epilog="Example: veil cloud earnings --withdraw -d devnet.json -a provider")
def earnings(
    withdraw: bool = typer.Option(
        False, "--withdraw", help="Settle every open lease and collect, in one transaction."
    ),
    deployment: Path = DeploymentOpt,
    rpc: str = RpcOpt,
    account: str = AccountOpt,
    keystore: Path = KeystoreOpt,
    as_json: bool = JsonOpt,
) -> None:
    """A provider's leases and earnings on the market, read from the chain.

    --withdraw settles every open lease and pays the provider in one transaction (up to
    256 leases)."""
    from veil.market import runway

    signer = resolve_signer(account, keystore)
    escrow = _escrow(deployment, rpc)
    lease_ids = escrow.leases_of_provider(signer.address)
    now = escrow.now()
    owed = 0
    rows = []
    for lease_id in lease_ids:
        lease = escrow.lease(lease_id)
        pending = runway.project(lease, now)
        owed += pending.billed * (lease.rate - lease.fee_rate)
        rows.append(
            {
                "lease": f"{lease_id:#066x}",
                "customer": lease.customer,
                "state": runway.STATE_NAMES[runway.state(lease, now)],
                "rate_wei_per_second": str(lease.rate),
                "unsettled_seconds": pending.billed,
            }
        )
    net, _fee = escrow.earnings(signer.address)
    paid = 0
    if withdraw:
        if not lease_ids and net == 0:
            raise InputError(f"provider {signer.address} has nothing to withdraw")
        paid = escrow.withdraw_earnings(signer, lease_ids[:256])
    if as_json:
        doc = {
            "provider": signer.address,
            "leases": rows,
            "settled_net_wei": str(net),
            "unsettled_net_wei": str(owed),
            "withdrawn_wei": str(paid),
        }
        typer.echo(json.dumps(doc))
        return
    console.print(f"provider {signer.address}: {len(rows)} open lease(s)")
    for row in rows:
        console.print(
            f"  {row['lease'][:18]}..  {row['state']:<8} {row['customer']}  "
            f"{row['unsettled_seconds']} s unsettled"
        )
    console.print(f"  earned   {format_amount(net)} settled, ~{format_amount(owed)} unsettled")
    if withdraw:
        console.print(f"withdrew {format_amount(paid)} from {len(lease_ids)} lease(s) in one tx")
