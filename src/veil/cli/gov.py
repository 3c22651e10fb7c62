"""`veil gov`: delegate, propose, vote, queue, execute, and read proposals."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.table import Table
from web3 import Web3

from veil.chain.client import Chain, event_args
from veil.chain.units import amount_json, format_amount
from veil.cli.accounts import resolve_address, resolve_signer
from veil.cli.options import AccountOpt, DeploymentOpt, JsonOpt, KeystoreOpt, RpcOpt, open_chain
from veil.cli.output import iso, print_json, print_table, when
from veil.errors import InputError
from veil.governance import governor as gov

app = typer.Typer(no_args_is_help=True, help="On-chain governance (OpenZeppelin Governor ABI).")
console = Console(highlight=False, soft_wrap=True)

ProposalArg = typer.Argument(
    ..., help="Proposal: its number from `veil gov list` (3 or #3) or its full id."
)


def _vote_units(chain: Chain) -> tuple[int, str]:
    return int(chain.contract("Vault").functions.decimals().call()), "vPHA"


def _chain_now(chain: Chain) -> int:
    return int(chain.contract("Governor").functions.clock().call())


@app.command(epilog="Example: veil gov delegate self -a alice; veil gov delegate bob -a carol")
def delegate(
    to: str = typer.Argument(
        "self", help="Delegatee: 'self', an address, or a devnet name (alice, bob, ...)."
    ),
    account: str = AccountOpt,
    keystore: Path = KeystoreOpt,
    deployment: Path = DeploymentOpt,
    rpc: str = RpcOpt,
) -> None:
    """Give your vPHA's voting power to an address (yourself too: undelegated vPHA has none)."""
    me = resolve_signer(account, keystore)
    target = me.address if to == "self" else resolve_address(to, "delegatee")
    chain = open_chain(deployment, rpc)
    vault = chain.contract("Vault")
    chain.send(me, vault.functions.delegate(target), "Vault.delegate")
    decimals, unit = _vote_units(chain)
    votes = vault.functions.getVotes(target).call()
    shown = format_amount(votes, decimals, unit)
    console.print(f"{me.address} delegates to {target}; its votes: {shown}")


@app.command(
    epilog="Example: veil gov propose -a alice -m 'Lower the reward rate' "
    "--action 'Vault:setRewardRate(uint256):0.2PHA'"
)
def propose(
    description: str = typer.Option(..., "--description", "-m", help="Proposal text."),
    action: list[str] = typer.Option(
        None,
        "--action",
        help="target:signature:args, e.g. Vault:setRewardRate(uint256):0.2PHA (repeatable); "
        "the signature must be one of the target's functions.",
    ),
    actions_file: Path = typer.Option(
        None, "--actions", help="JSON list of {target, signature, args, value} objects."
    ),
    account: str = AccountOpt,
    keystore: Path = KeystoreOpt,
    deployment: Path = DeploymentOpt,
    rpc: str = RpcOpt,
) -> None:
    """Create a proposal, after checking its actions and your votes; prints its number."""
    chain = open_chain(deployment, rpc)
    assert chain.deployment is not None
    parsed = [gov.parse_action(a, chain.deployment) for a in action or []]
    if actions_file is not None:
        parsed += gov.load_actions(actions_file, chain.deployment)
    if not parsed:
        raise InputError("proposal: give at least one --action or an --actions file")
    gov.check_bounds(chain, parsed, description)
    me = resolve_signer(account, keystore)
    gov.check_threshold(chain, me.address)
    governor = chain.contract("Governor")
    targets = [a.target for a in parsed]
    values = [a.value for a in parsed]
    calldatas = [a.calldata for a in parsed]
    proposal_id = governor.functions.hashProposal(
        targets, values, calldatas, Web3.keccak(text=description)
    ).call()
    chain.send(
        me, governor.functions.propose(targets, values, calldatas, description), "Governor.propose"
    )
    number, _ = gov.find_proposal(chain, proposal_id)
    console.print(f"proposal #{number} (id {proposal_id})")
    for a in parsed:
        console.print(f"  {gov.decode_calldata(a.target, a.calldata, chain.deployment)}")
    start = governor.functions.proposalSnapshot(proposal_id).call()
    end = governor.functions.proposalDeadline(proposal_id).call()
    now = _chain_now(chain)
    console.print(f"voting opens {when(start, now)} and closes {when(end, now)} (chain time)")


@app.command(epilog="Example: veil gov vote 1 for -a alice --reason 'fair rate'")
def vote(
    proposal: str = ProposalArg,
    support: str = typer.Argument(..., help="for, against or abstain."),
    reason: str = typer.Option("", "--reason", "-r", help="Why; recorded on chain with the vote."),
    account: str = AccountOpt,
    keystore: Path = KeystoreOpt,
    deployment: Path = DeploymentOpt,
    rpc: str = RpcOpt,
) -> None:
    """Cast your vote with the voting power you had at the proposal's snapshot."""
    if support.lower() not in gov.SUPPORT:
        raise InputError(f"vote {support!r}: choose for, against or abstain")
    gov.parse_proposal_id(proposal)
    me = resolve_signer(account, keystore)
    chain = open_chain(deployment, rpc)
    number, found = gov.find_proposal(chain, proposal)
    governor = chain.contract("Governor")
    choice = gov.SUPPORT[support.lower()]
    pid = found.proposal_id
    call = (
        governor.functions.castVoteWithReason(pid, choice, reason)
        if reason
        else governor.functions.castVote(pid, choice)
    )
    receipt = chain.send(me, call, "Governor.castVote")
    weight = event_args(governor, receipt, "VoteCast")["weight"]
    decimals, unit = _vote_units(chain)
    shown = format_amount(weight, decimals, unit)
    console.print(f"{me.address} voted {support.lower()} on #{number} with {shown}")


def _lifecycle(
    name: str,
    proposal: str,
    account: str | None,
    keystore: Path | None,
    deployment: Path | None,
    rpc: str | None,
) -> None:
    gov.parse_proposal_id(proposal)
    me = resolve_signer(account, keystore)
    chain = open_chain(deployment, rpc)
    number, found = gov.find_proposal(chain, proposal)
    governor = chain.contract("Governor")
    fn = getattr(governor.functions, name)
    args = (found.targets, found.values, found.calldatas, found.description_hash)
    chain.send(me, fn(*args), f"Governor.{name}")
    state = gov.STATES[governor.functions.state(found.proposal_id).call()]
    console.print(f"proposal #{number}: {name} done, state {state}")
    if name == "queue":
        eta = governor.functions.proposalEta(found.proposal_id).call()
        console.print(f"executable from {when(eta, _chain_now(chain))} (chain time)")


@app.command(epilog="Example: veil gov queue 1 -a alice")
def queue(
    proposal: str = ProposalArg,
    account: str = AccountOpt,
    keystore: Path = KeystoreOpt,
    deployment: Path = DeploymentOpt,
    rpc: str = RpcOpt,
) -> None:
    """Queue a succeeded proposal in the timelock."""
    _lifecycle("queue", proposal, account, keystore, deployment, rpc)


@app.command(epilog="Example: veil gov execute 1 -a alice")
def execute(
    proposal: str = ProposalArg,
    account: str = AccountOpt,
    keystore: Path = KeystoreOpt,
    deployment: Path = DeploymentOpt,
    rpc: str = RpcOpt,
) -> None:
    """Execute a queued proposal once the timelock delay has passed."""
    _lifecycle("execute", proposal, account, keystore, deployment, rpc)


def _time_json(unix: int) -> dict[str, Any]:
    return {"unix": unix, "iso": iso(unix)}


@app.command(epilog="Example: veil gov status 1; veil gov status 1 --json")
def status(
    proposal: str = ProposalArg,
    as_json: bool = JsonOpt,
    deployment: Path = DeploymentOpt,
    rpc: str = RpcOpt,
) -> None:
    """State, votes, quorum, timings and the decoded actions of one proposal."""
    gov.parse_proposal_id(proposal)
    chain = open_chain(deployment, rpc)
    assert chain.deployment is not None
    number, found = gov.find_proposal(chain, proposal)
    governor = chain.contract("Governor")
    pid = found.proposal_id
    state = gov.STATES[governor.functions.state(pid).call()]
    against, for_, abstain = governor.functions.proposalVotes(pid).call()
    snapshot = governor.functions.proposalSnapshot(pid).call()
    now = _chain_now(chain)
    quorum = governor.functions.quorum(snapshot).call() if snapshot < now else None
    eta = governor.functions.proposalEta(pid).call()
    decimals, unit = _vote_units(chain)
    actions = [
        {
            "target": target,
            "value": str(value),
            "calldata": "0x" + bytes(data).hex(),
            "decoded": gov.decode_calldata(target, data, chain.deployment),
        }
        for target, value, data in zip(found.targets, found.values, found.calldatas, strict=True)
    ]
    if as_json:
        print_json(
            {
                "number": number,
                "id": str(pid),
                "state": state,
                "proposer": found.proposer,
                "description": found.description,
                "vote_start": _time_json(found.vote_start),
                "vote_end": _time_json(found.vote_end),
                "now": _time_json(now),
                "votes": {
                    "for": amount_json(for_, decimals),
                    "against": amount_json(against, decimals),
                    "abstain": amount_json(abstain, decimals),
                },
                "quorum": None if quorum is None else amount_json(quorum, decimals),
                "eta": _time_json(eta) if eta else None,
                "actions": actions,
            }
        )
        return
    console.print(f"proposal #{number}")
    console.print(f"  id        {pid}")
    console.print(f"  state     {state}")
    console.print(f"  proposer  {found.proposer}")
    console.print(f"  opens     {when(found.vote_start, now)}")
    console.print(f"  closes    {when(found.vote_end, now)}")
    console.print(
        f"  votes     for {format_amount(for_, decimals, unit)}, "
        f"against {format_amount(against, decimals, unit)}, "
        f"abstain {format_amount(abstain, decimals, unit)}"
    )
    if quorum is not None:
        console.print(f"  quorum    {format_amount(quorum, decimals, unit)}")
    if eta:
        console.print(f"  eta       {when(eta, now)}")
    console.print(f"  description: {found.description}")
    console.print("  actions:")
    for item in actions:
        value = int(item["value"])
        extra = f" (+{format_amount(value, 18, 'ETH')})" if value else ""
        console.print(f"    {item['decoded']}{extra}")


@app.command(name="list", epilog="Example: veil gov list; veil gov list --json")
def list_(
    as_json: bool = JsonOpt,
    deployment: Path = DeploymentOpt,
    rpc: str = RpcOpt,
) -> None:
    """Every proposal with its number (which every gov command accepts) and its state."""
    chain = open_chain(deployment, rpc)
    governor = chain.contract("Governor")
    rows = []
    for number, p in enumerate(gov.proposals(chain), start=1):
        state = gov.STATES[governor.functions.state(p.proposal_id).call()]
        rows.append((number, p, state))
    if as_json:
        print_json(
            [
                {
                    "number": number,
                    "id": str(p.proposal_id),
                    "state": state,
                    "proposer": p.proposer,
                    "description": p.description,
                    "vote_start": _time_json(p.vote_start),
                    "vote_end": _time_json(p.vote_end),
                }
                for number, p, state in rows
            ]
        )
        return
    table = Table(title="proposals")
    for col in ("#", "state", "closes", "proposer", "description"):
        table.add_column(col)
    for number, p, state in rows:
        title = (p.description.splitlines() or [""])[0]
        table.add_row(str(number), state, iso(p.vote_end), p.proposer, title)
    print_table(console, table)
