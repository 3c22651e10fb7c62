"""`veil substrate`: facts about a Substrate chain that anyone can recompute from its files."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from veil.errors import InputError

app = typer.Typer(
    no_args_is_help=True, help="Recompute a Substrate chain's identity from its own data."
)


@app.command(
    "genesis-hash",
    epilog="Example: veil substrate genesis-hash ../shared/fixtures/substrate/specs/khala.json",
)
def genesis_hash(
    spec: Path = typer.Argument(..., help="Raw chain spec JSON (`build-spec --raw`)."),
    state_version: int | None = typer.Option(
        None,
        "--state-version",
        help="Trie layout, 0 or 1 (default: the one the genesis runtime in :code declares).",
    ),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    """Print a raw spec's genesis state root and genesis hash.

    The hash must equal the chain's published genesis hash (what polkadot.js and every node
    call the chain); if it does, the spec's storage is that chain's genesis state.
    """
    from veil.substrate.chainspec import genesis_state, load_chain_spec
    from veil.substrate.trie import StateVersion

    if state_version is not None and state_version not in (0, 1):
        raise InputError(f"--state-version {state_version}: must be 0 or 1")
    loaded = load_chain_spec(spec)
    state = genesis_state(loaded, None if state_version is None else StateVersion(state_version))
    record = {
        "spec": str(spec),
        "name": loaded.name,
        "id": loaded.chain_id,
        "format": "2019 (genesis.raw as a list)" if loaded.legacy_format else "raw",
        "keys": state.keys,
        "state_version": int(state.state_version),
        "state_version_source": state.state_version_source,
        "state_root": "0x" + state.state_root.hex(),
        "genesis_hash": "0x" + state.genesis_hash.hex(),
    }
    if as_json:
        typer.echo(json.dumps(record))
        return
    width = max(len(key) for key in record)
    for key, value in record.items():
        typer.echo(f"{key.replace('_', ' '):<{width}}  {value}")
