"""`veil keys`: make, import and list the encrypted keystores chain commands sign with."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import typer

from veil.chain import keystore
from veil.chain.accounts import KEYSTORE_PASSWORD_ENV
from veil.errors import InputError

app = typer.Typer(
    no_args_is_help=True,
    help="Create, import and list encrypted keystores (signing keys).",
)

DirOpt = typer.Option(
    None, "--dir", help="Keystore directory (default: $VEIL_HOME/keys, else ~/.veil/keys)."
)
NameOpt = typer.Option(
    None, "--name", help="File name NAME.json (default: geth's UTC--<time>--<address>)."
)
JsonOpt = typer.Option(False, "--json", help="Print JSON: {address, path}.")


def _report(entry: keystore.KeystoreFile, verb: str, as_json: bool) -> None:
    if as_json:
        typer.echo(json.dumps(entry.to_json()))
        return
    typer.echo(f"{verb} {entry.address}")
    typer.echo(f"  keystore {entry.path}")
    typer.echo(f"  sign with: --keystore {entry.path}  (password from ${KEYSTORE_PASSWORD_ENV})")


@app.command(
    epilog="Example: veil keys new --name treasury (password: VEIL_KEYSTORE_PASSWORD or a prompt)"
)
def new(
    name: str = NameOpt,
    directory: Path = DirOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Make a new key and store it encrypted; prints its address, never the key.

    The password comes from $VEIL_KEYSTORE_PASSWORD or is asked twice on the terminal.
    """
    where = keystore.keys_dir(directory, create=True)
    password = keystore.read_password(confirm=True)
    entry = keystore.write_keystore(where, keystore.new_private_key(), password, name)
    _report(entry, "created", as_json)


@app.command("import", epilog="Example: veil keys import --name ops < key.hex")
def import_(
    name: str = NameOpt,
    directory: Path = DirOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Encrypt an existing private key (64 hex digits) read from stdin or a hidden prompt.

    The key is never an argument, so it stays out of shell history and `ps`.
    """
    if sys.stdin.isatty():
        import getpass

        text = getpass.getpass("private key (hex, hidden): ")
    else:
        text = sys.stdin.read()
    if not text.strip():
        raise InputError("private key: nothing on stdin (pipe it in, or run in a terminal)")
    key = keystore.parse_private_key(text)
    where = keystore.keys_dir(directory, create=True)
    password = keystore.read_password(confirm=True)
    entry = keystore.write_keystore(where, key, password, name)
    _report(entry, "imported", as_json)


@app.command("list", epilog="Example: veil keys list --json")
def list_(
    directory: Path = DirOpt,
    as_json: bool = typer.Option(False, "--json", help="Print a JSON list of {address, path}."),
) -> None:
    """Show each keystore's address and file; no password is needed (addresses are clear)."""
    where = keystore.keys_dir(directory, create=False) if directory else keystore.default_dir()
    found = keystore.list_keystores(where) if where.is_dir() else []
    if as_json:
        typer.echo(json.dumps([entry.to_json() for entry in found]))
        return
    if not found:
        typer.echo(f"no keystores in {where} (make one with `veil keys new`)")
        return
    width = max(len(entry.address) for entry in found)
    for entry in found:
        typer.echo(f"{entry.address:<{width}}  {entry.path}")
