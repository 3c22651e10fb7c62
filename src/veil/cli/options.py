"""Options every command shares, so each concept has one name and reads the same everywhere.

One name per concept: the signer is `--account/-a` (or `--keystore`), the deployment is
`-d/--deployment`, a moment in time is `--at`, machine-readable output is `--json`, a file
to write is `--out`. Old spellings survive only as hidden aliases that warn.
"""

from __future__ import annotations

import os
import tempfile
from datetime import UTC, datetime
from pathlib import Path

import typer

from veil.chain import deployment as deployments
from veil.chain.client import Chain
from veil.errors import InputError

DeploymentOpt = typer.Option(
    None, "--deployment", "-d", help="Deployment file (default: deployments/devnet.json)."
)
RpcOpt = typer.Option(None, "--rpc", help="RPC URL (default: the deployment's).")
AccountOpt = typer.Option(
    None,
    "--account",
    "-a",
    help="Signer: a devnet account name (alice, bob, ...; devnet only). "
    "Otherwise use --keystore or $VEIL_PRIVATE_KEY.",
)
KeystoreOpt = typer.Option(
    None, "--keystore", help="Keystore file; password from $VEIL_KEYSTORE_PASSWORD or a prompt."
)
JsonOpt = typer.Option(False, "--json", help="Print JSON instead of text (schema in docs/).")
AtOpt = typer.Option(
    None,
    "--at",
    help="Judge at this time: ISO 8601 (2026-02-18T12:00:00Z) or unix seconds (default: now).",
)


def open_chain(deployment: Path | None, rpc: str | None) -> Chain:
    return Chain.open(deployments.load(deployment), rpc)


def deprecated(old: str, new: str) -> None:
    """Say loudly that an old spelling still works but is going away."""
    typer.echo(f"warning: {old} is deprecated and will be removed; use {new}", err=True)


def parse_time(text: str | None, option: str = "--at") -> int | None:
    """Unix seconds from ISO 8601 (a date or date and time; UTC unless an offset is given)
    or from plain unix seconds, which scripts and older docs use."""
    if text is None:
        return None
    if text.isdigit():
        return int(text)
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise InputError(
            f"{option} {text!r}: not a time (ISO 8601 like 2026-02-18T12:00:00Z, or unix seconds)"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp())


def out_path(path: Path, option: str = "--out") -> Path:
    """Refuse an output path before any work is done: its directory must exist (a typo must
    not create a tree of directories) and accept a new file (not /proc, not read-only)."""
    parent = path.parent
    if path.is_dir():
        raise InputError(f"{option} {path}: is a directory")
    if not parent.exists():
        raise InputError(f"{option} {path}: directory {parent} does not exist")
    if not parent.is_dir():
        raise InputError(f"{option} {path}: {parent} is not a directory")
    try:
        fd, probe = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".probe", dir=parent)
    except OSError as error:
        raise InputError(f"{option} {path}: cannot write in {parent} ({error.strerror})") from None
    os.close(fd)
    os.unlink(probe)
    return path
