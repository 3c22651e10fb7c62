"""`veil gov`: delegate, propose, vote, queue, execute, and read proposals."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table
from web3 import Web3

from veil.chain import governance as gov
from veil.chain.accounts import resolve_signer
from veil.chain.client import Chain, event_args
from veil.chain.units import format_amount
from veil.cli.options import AccountOpt, DeploymentOpt, KeystoreOpt, RpcOpt, open_chain
from veil.errors import InputError

app = typer.Typer(no_args_is_help=True, help="On-chain governance (OpenZeppelin Governor ABI).")
console = Console(highlight=False)


def _vote_units(chain: Chain) -> tuple[int, str]:
    return int(chain.contract("Vault").functions.decimals().call()), "vPHA"


@app.command()
def delegate(
    to: str = typer.Argument("self", help="Delegatee address, or 'self'."),
    account: str = AccountOpt,
    keystore: Path = KeystoreOpt,
    deployment: Path = DeploymentOpt,
    rpc: str = RpcOpt,
) -> None:
    """Give your vPHA's voting power to an address (yourself included: undelegated vPHA
    does not vote)."""
    me = resolve_signer(account, keystore)
    chain = open_chain(deployment, rpc)
    target = me.address if to == "self" else to
    if not Web3.is_address(target):
        raise InputError(f"delegatee {to!r}: not an address")
    vault = chain.contract("Vault")
    chain.send(me, vault.functions.delegate(Web3.to_checksum_address(target)), "Vault.delegate")
    decimals, unit = _vote_units(chain)
    votes = vault.functions.getVotes(Web3.to_checksum_address(target)).call()
    shown = format_amount(votes, decimals, unit)
    console.print(f"{me.address} delegates to {target}; its votes: {shown}")


@app.command()
def propose(
    description: str = typer.Option(..., "--description", "-m", help="Proposal text."),
    action: list[str] = typer.Option(
        None, "--action", help="target:signature:args, e.g. Vault:setRewardRate(uint256):0.2PHA"
    ),
    actions_file: Path = typer.Option(None, "--actions", help="JSON list of actions."),
    account: str = AccountOpt,
    keystore: Path = KeystoreOpt,
    deployment: Path = DeploymentOpt,
    rpc: str = RpcOpt,
) -> None:
    """Create a proposal; prints its id and the decoded actions."""
    chain = open_chain(deployment, rpc)
    assert chain.deployment is not None
    parsed = [gov.parse_action(a, chain.deployment) for a in action or []]
    if actions_file is not None:
        parsed += gov.load_actions(actions_file, chain.deployment)
    if not parsed:
        raise InputError("proposal: give at least one --action or an --actions file")
    gov.check_bounds(chain, parsed, description)
    me = resolve_signer(account, keystore)
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
    console.print(f"proposal {proposal_id}")
    for a in parsed:
        console.print(f"  {gov.decode_calldata(a.target, a.calldata, chain.deployment)}")
    start = governor.functions.proposalSnapshot(proposal_id).call()
    end = governor.functions.proposalDeadline(proposal_id).call()
    console.print(f"voting opens at {start} and closes at {end} (chain time, unix seconds)")


@app.command()
def vote(
    proposal: str = typer.Argument(..., help="Proposal id."),
    support: str = typer.Argument(..., help="for, against or abstain."),
    reason: str = typer.Option("", "--reason", "-r"),
    account: str = AccountOpt,
    keystore: Path = KeystoreOpt,
    deployment: Path = DeploymentOpt,
    rpc: str = RpcOpt,
) -> None:
    """Cast your vote with the voting power you had at the proposal's snapshot."""
    if support.lower() not in gov.SUPPORT:
        raise InputError(f"vote {support!r}: choose for, against or abstain")
    proposal_id = gov.parse_proposal_id(proposal)
    me = resolve_signer(account, keystore)
    chain = open_chain(deployment, rpc)
    governor = chain.contract("Governor")
    choice = gov.SUPPORT[support.lower()]
    call = (
        governor.functions.castVoteWithReason(proposal_id, choice, reason)
        if reason
        else governor.functions.castVote(proposal_id, choice)
    )
    receipt = chain.send(me, call, "Governor.castVote")
    weight = event_args(governor, receipt, "VoteCast")["weight"]
    decimals, unit = _vote_units(chain)
    shown = format_amount(weight, decimals, unit)
    console.print(f"{me.address} voted {support.lower()} with {shown}")


def _lifecycle(
    name: str,
    proposal: str,
    account: str | None,
    keystore: Path | None,
    deployment: Path | None,
    rpc: str | None,
) -> None:
    proposal_id = gov.parse_proposal_id(proposal)
    me = resolve_signer(account, keystore)
    chain = open_chain(deployment, rpc)
    found = gov.find_proposal(chain, proposal_id)
    governor = chain.contract("Governor")
    fn = getattr(governor.functions, name)
    args = (found.targets, found.values, found.calldatas, found.description_hash)
    chain.send(me, fn(*args), f"Governor.{name}")
    state = gov.STATES[governor.functions.state(found.proposal_id).call()]
    console.print(f"proposal {found.proposal_id}: {name} done, state {state}")
    if name == "queue":
        eta = governor.functions.proposalEta(found.proposal_id).call()
        now = governor.functions.clock().call()
        console.print(f"executable from {eta} (chain time; now {now}, {max(eta - now, 0)} s to go)")


@app.command()
def queue(
    proposal: str = typer.Argument(...),
    account: str = AccountOpt,
    keystore: Path = KeystoreOpt,
    deployment: Path = DeploymentOpt,
    rpc: str = RpcOpt,
) -> None:
    """Queue a succeeded proposal in the timelock."""
    _lifecycle("queue", proposal, account, keystore, deployment, rpc)


@app.command()
def execute(
    proposal: str = typer.Argument(...),
    account: str = AccountOpt,
    keystore: Path = KeystoreOpt,
    deployment: Path = DeploymentOpt,
    rpc: str = RpcOpt,
) -> None:
    """Execute a queued proposal once the timelock delay has passed."""
    _lifecycle("execute", proposal, account, keystore, deployment, rpc)


@app.command()
def status(
    proposal: str = typer.Argument(...),
    deployment: Path = DeploymentOpt,
    rpc: str = RpcOpt,
) -> None:
    """State, votes, quorum, timings and the decoded actions of one proposal."""
    chain = open_chain(deployment, rpc)
    assert chain.deployment is not None
    found = gov.find_proposal(chain, gov.parse_proposal_id(proposal))
    governor = chain.contract("Governor")
    pid = found.proposal_id
    state = gov.STATES[governor.functions.state(pid).call()]
    against, for_, abstain = governor.functions.proposalVotes(pid).call()
    snapshot = governor.functions.proposalSnapshot(pid).call()
    now = governor.functions.clock().call()
    quorum = governor.functions.quorum(snapshot).call() if snapshot < now else None
    decimals, unit = _vote_units(chain)
    console.print(f"proposal {pid}")
    console.print(f"  state     {state}")
    console.print(f"  proposer  {found.proposer}")
    console.print(f"  voting    {found.vote_start} .. {found.vote_end} (now {now})")
    console.print(
        f"  votes     for {format_amount(for_, decimals, unit)}, "
        f"against {format_amount(against, decimals, unit)}, "
        f"abstain {format_amount(abstain, decimals, unit)}"
    )
    if quorum is not None:
        console.print(f"  quorum    {format_amount(quorum, decimals, unit)}")
    eta = governor.functions.proposalEta(pid).call()
    if eta:
        console.print(f"  eta       {eta}")
    console.print(f"  description: {found.description}")
    console.print("  actions:")
    for target, value, data in zip(found.targets, found.values, found.calldatas, strict=True):
        extra = f" (+{format_amount(value, 18, 'ETH')})" if value else ""
        console.print(f"    {gov.decode_calldata(target, data, chain.deployment)}{extra}")


@app.command(name="list")
def list_(deployment: Path = DeploymentOpt, rpc: str = RpcOpt) -> None:
    """Every proposal with its state."""
    chain = open_chain(deployment, rpc)
    governor = chain.contract("Governor")
    table = Table(title="proposals")
    for col in ("id", "state", "proposer", "description"):
        table.add_column(col)
    for p in gov.proposals(chain):
        state = gov.STATES[governor.functions.state(p.proposal_id).call()]
        table.add_row(str(p.proposal_id), state, p.proposer, p.description.splitlines()[0][:60])
    console.print(table)
