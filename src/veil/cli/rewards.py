"""`veil rewards`: close an epoch, publish its root, claim, and audit anyone's epoch."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer
from rich.console import Console

from veil.chain.units import format_amount
from veil.cli.accounts import resolve_signer
from veil.cli.options import AccountOpt, DeploymentOpt, JsonOpt, KeystoreOpt, RpcOpt, open_chain
from veil.errors import InputError
from veil.rewards.report import (
    DEFAULT_HEARTBEAT_INTERVAL,
    load_report,
    report_path,
    rewards_dir,
    tree_path,
    write_report,
)

app = typer.Typer(
    no_args_is_help=True, help="Compute rewards: close epochs, publish roots, claim, audit."
)
console = Console(highlight=False, soft_wrap=True)

DirOpt = typer.Option(None, "--dir", help="Reports directory (default: $VEIL_HOME/rewards).")
LogOpt = typer.Option(
    [],
    "--log",
    help="An attester's URL (its GET /v1/compute/heartbeats) or a saved log file; repeat per "
    "attester (default: the deployment's attester_urls).",
)
IntervalOpt = typer.Option(
    DEFAULT_HEARTBEAT_INTERVAL, "--heartbeat-interval", help="Seconds between heartbeats."
)
STATUS = {0: "not posted", 1: "posted", 2: "finalized"}


def _pha(wei: int) -> str:
    return format_amount(wei)


def _contracts(deployment: Path | None, rpc: str | None) -> tuple[Any, Any, Any, int]:
    chain = open_chain(deployment, rpc)
    assert chain.deployment is not None
    record = chain.deployment.contracts.get("ComputeRegistry")
    block = record.block if record is not None else 0
    return chain, chain.contract("RewardPool"), chain.contract("ComputeRegistry"), block


def _sources(chain: Any, logs: list[str]) -> list[str]:
    if logs:
        return logs
    urls = chain.deployment.parameters.get("attester_urls", []) if chain.deployment else []
    if not urls:
        raise InputError("no heartbeat logs: give --log URL-or-file once per attester")
    return list(urls)


def _directory(directory: Path | None) -> Path:
    return directory or rewards_dir()


@app.command(epilog="Example: veil rewards status --json")
def status(
    as_json: bool = JsonOpt,
    directory: Path = DirOpt,
    deployment: Path = DeploymentOpt,
    rpc: str = RpcOpt,
) -> None:
    """The pool: current epoch, posted and finalized roots, budget, what is owed."""
    _, pool, _, _ = _contracts(deployment, rpc)
    f = pool.functions
    current = int(f.currentEpoch().call())
    next_epoch = int(f.nextEpoch().call())
    to_finalize = int(f.nextEpochToFinalize().call())
    window = int(f.challengeWindow().call())
    pending: list[dict[str, Any]] = []
    for epoch in range(to_finalize, next_epoch):
        _state, root, total, budget, posted_at = f.pending(epoch).call()
        pending.append(
            {
                "epoch": epoch,
                "root": "0x" + bytes(root).hex(),
                "total": str(total),
                "budget": str(budget),
                "finalizableAt": int(posted_at) + window,
            }
        )
    last = int(f.lastFinalizedEpoch().call())
    doc: dict[str, Any] = {
        "currentEpoch": current,
        "nextEpochToPost": next_epoch,
        "lastFinalizedEpoch": None if last >= 2**64 else last,
        "claimableRoot": "0x" + bytes(f.root().call()).hex(),
        "budgetNextEpoch": str(f.epochBudget(next_epoch).call()),
        "available": str(f.available().call()),
        "owed": str(f.owed().call()),
        "minUptimeBps": int(f.minUptimeBps().call()),
        "challengeWindow": window,
        "pending": pending,
        "localReports": sorted(
            p.name
            for p in _directory(directory).glob("epoch-*.json")
            if ".sig-" not in p.name and ".tree" not in p.name
        ),
    }
    if as_json:
        typer.echo(json.dumps(doc, indent=2))
        return
    console.print(f"epoch now {current}; next root to post: epoch {next_epoch}")
    console.print(f"last finalized: {doc['lastFinalizedEpoch']}, root {doc['claimableRoot']}")
    console.print(
        f"next budget {_pha(int(doc['budgetNextEpoch']))}, pool available "
        f"{_pha(int(doc['available']))}, owed to providers {_pha(int(doc['owed']))}"
    )
    for item in pending:
        console.print(
            f"  epoch {item['epoch']}: posted, total {_pha(int(item['total']))}, "
            f"finalizable at {item['finalizableAt']}"
        )


@app.command(epilog="Example: veil rewards close 12 --log http://127.0.0.1:8700 --sign -a attester")
def close(
    epoch: int = typer.Argument(..., help="The epoch to close (ended, next to post)."),
    logs: list[str] = LogOpt,
    sign: bool = typer.Option(False, "--sign", help="Sign the EpochRoot with the attester key."),
    heartbeat_interval: int = IntervalOpt,
    directory: Path = DirOpt,
    account: str = AccountOpt,
    keystore: Path = KeystoreOpt,
    as_json: bool = JsonOpt,
    deployment: Path = DeploymentOpt,
    rpc: str = RpcOpt,
) -> None:
    """Build the epoch report and claim tree from the logs and the registry (--sign: sign it).

    With --sign (an attester operator), also write the attester's EpochRoot signature file
    that `veil rewards publish` gathers.
    """
    from veil.rewards.closing import close_epoch
    from veil.rewards.settlement import EpochRoot, sign_root, write_signature

    chain, pool, registry, block = _contracts(deployment, rpc)
    out = _directory(directory)
    report = close_epoch(
        pool,
        registry,
        epoch,
        _sources(chain, logs),
        directory=out,
        registry_block=block,
        heartbeat_interval=heartbeat_interval,
    )
    path = write_report(report, out)
    result: dict[str, Any] = {
        "epoch": epoch,
        "report": str(path),
        "tree": str(tree_path(epoch, out)),
        "root": report.doc["root"],
        "total": report.doc["total"],
        "reportHash": "0x" + report.report_hash.hex(),
        "allocated": report.doc["allocated"],
        "unallocated": report.doc["unallocated"],
        "workers": len(report.doc["workers"]),
    }
    if sign:
        signer = resolve_signer(account, keystore)
        statement = EpochRoot(epoch, report.root, report.total, report.report_hash)
        signed = sign_root(statement, report.doc["chainId"], report.doc["pool"], signer.key)
        result["signature"] = str(write_signature(signed, out))
    if as_json:
        typer.echo(json.dumps(result, indent=2))
        return
    console.print(f"epoch {epoch}: {result['workers']} worker(s), root {result['root']}")
    console.print(
        f"  allocated {_pha(int(result['allocated']))}, unallocated "
        f"{_pha(int(result['unallocated']))} (to the treasury)"
    )
    for row in report.doc["workers"]:
        console.print(
            f"  {row['worker']} {row['model']:>5} weight {row['weightBps']:>6} bps "
            f"uptime {row['uptimeBps'] / 100:6.2f}% reward {_pha(int(row['reward']))}"
        )
    console.print(f"  report {path} (sha256 {result['reportHash']})")
    if "signature" in result:
        console.print(f"  signature {result['signature']}")


@app.command(epilog="Example: veil rewards publish 12 -a alice")
def publish(
    epoch: int = typer.Argument(..., help="The closed epoch."),
    signatures: list[Path] = typer.Option(
        [], "--signature", help="Signature file (default: every epoch-N.sig-*.json in --dir)."
    ),
    directory: Path = DirOpt,
    account: str = AccountOpt,
    keystore: Path = KeystoreOpt,
    deployment: Path = DeploymentOpt,
    rpc: str = RpcOpt,
) -> None:
    """Submit the epoch's root with the threshold of attester signatures (anyone may)."""
    from veil.attestation.typed_data import encode_signatures
    from veil.rewards.closing import pool_state
    from veil.rewards.settlement import EpochRoot, gather, read_signature

    chain, pool, _, _ = _contracts(deployment, rpc)
    out = _directory(directory)
    report = load_report(report_path(epoch, out))
    files = signatures or sorted(out.glob(f"epoch-{epoch}.sig-*.json"))
    if not files:
        raise InputError(f"epoch {epoch}: no signature files in {out} (run close --sign)")
    state = pool_state(pool)
    statement = EpochRoot(epoch, report.root, report.total, report.report_hash)
    ordered = gather(
        statement,
        state.chain_id,
        state.pool,
        [read_signature(p) for p in files],
        state.attesters,
        state.threshold,
    )
    signer = resolve_signer(account, keystore)
    call = pool.functions.postRoot(
        epoch, report.root, report.total, report.report_hash, encode_signatures(ordered)
    )
    receipt = chain.send(signer, call, f"postRoot epoch {epoch}")
    console.print(
        f"epoch {epoch}: root {report.doc['root']} posted in block "
        f"{receipt['blockNumber']} (gas {receipt['gasUsed']})"
    )


@app.command(epilog="Example: veil rewards finalize 12 -a alice")
def finalize(
    epoch: int = typer.Argument(..., help="A posted epoch whose challenge window is over."),
    account: str = AccountOpt,
    keystore: Path = KeystoreOpt,
    deployment: Path = DeploymentOpt,
    rpc: str = RpcOpt,
) -> None:
    """Pay the epoch's treasury and stakers' parts and make its root claimable (anyone)."""
    chain, pool, _, _ = _contracts(deployment, rpc)
    receipt = chain.send(
        resolve_signer(account, keystore), pool.functions.finalize(epoch), f"finalize {epoch}"
    )
    console.print(f"epoch {epoch}: finalized in block {receipt['blockNumber']}")


@app.command(epilog="Example: veil rewards claim --as vpha -a provider")
def claim(
    as_: str = typer.Option("vpha", "--as", help="vpha (deposited to the vault for you) or pha."),
    directory: Path = DirOpt,
    account: str = AccountOpt,
    keystore: Path = KeystoreOpt,
    deployment: Path = DeploymentOpt,
    rpc: str = RpcOpt,
) -> None:
    """Claim everything earned up to the last finalized epoch (the signer is the provider)."""
    if as_ not in ("vpha", "pha"):
        raise InputError(f"--as {as_}: must be vpha or pha")
    chain, pool, _, _ = _contracts(deployment, rpc)
    signer = resolve_signer(account, keystore)
    last = int(pool.functions.lastFinalizedEpoch().call())
    if last >= 2**64:
        raise InputError("claim: no epoch is finalized yet")
    report = load_report(report_path(last, _directory(directory)))
    on_chain = bytes(pool.functions.root().call())
    if report.root != on_chain:
        raise InputError(
            f"report of epoch {last}: root 0x{report.root.hex()} is not the "
            f"claimable root 0x{on_chain.hex()} (fetch the published report)"
        )
    cumulative = report.tree.cumulative(signer.address)
    claimed = int(pool.functions.claimed(signer.address).call())
    if cumulative <= claimed:
        raise InputError(
            f"{signer.address}: nothing to claim (earned {_pha(cumulative)}, "
            f"claimed {_pha(claimed)})"
        )
    proof = report.tree.proof(signer.address)
    receipt = chain.send(
        signer,
        pool.functions.claim(signer.address, cumulative, proof, as_ == "vpha"),
        "claim",
    )
    console.print(
        f"{signer.address}: claimed {_pha(cumulative - claimed)} as {as_.upper()} "
        f"(through epoch {last}; gas {receipt['gasUsed']})"
    )


@app.command(epilog="Example: veil rewards audit 12 --log http://127.0.0.1:8700")
def audit(
    epoch: int = typer.Argument(..., help="A posted epoch."),
    logs: list[str] = LogOpt,
    previous: Path = typer.Option(
        None, "--previous", help="Published report of epoch - 1 (default: in --dir)."
    ),
    report: Path = typer.Option(
        None, "--report", help="The published report to compare byte for byte (optional)."
    ),
    heartbeat_interval: int = IntervalOpt,
    directory: Path = DirOpt,
    as_json: bool = JsonOpt,
    deployment: Path = DeploymentOpt,
    rpc: str = RpcOpt,
) -> None:
    """Recompute the epoch from the attesters' logs and the chain; exit 1 on any difference."""
    from veil.rewards.audit import audit_epoch

    chain, pool, registry, block = _contracts(deployment, rpc)
    out = _directory(directory)
    if previous is None and epoch > 0:
        previous = report_path(epoch - 1, out)
    result = audit_epoch(
        pool,
        registry,
        epoch,
        _sources(chain, logs),
        previous_report=previous,
        published_report=report,
        registry_block=block,
        heartbeat_interval=heartbeat_interval,
    )
    if as_json:
        typer.echo(json.dumps(result.to_json(), indent=2))
    else:
        for line in result.differences:
            console.print(f"DIFFERENCE {line}")
        verdict = "matches the chain" if result.ok else "DOES NOT match the chain"
        console.print(
            f"epoch {epoch}: {result.heartbeats_checked} heartbeat signature(s) "
            f"checked; the recomputed report {verdict}"
        )
    if not result.ok:
        raise typer.Exit(1)
