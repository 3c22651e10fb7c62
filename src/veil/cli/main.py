"""The `veil` command: one Typer sub-app per domain, errors turned into one line each.

Sub-apps are imported only when their command runs (or its help is shown): `veil --help`
must not pay for web3, vyper or substrate-interface, which only some commands use.
"""

from __future__ import annotations

import importlib
import signal
import sys
from collections.abc import Sequence
from typing import Any

import typer
from typer.core import TyperGroup

from veil.errors import VeilError

# name -> (module holding `app`, the sub-app's help). The help is repeated here so that
# listing commands imports nothing; a test checks it matches the sub-app's own.
SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "devnet": ("veil.cli.devnet", "Run the embedded devnet (anvil, optimism mode)."),
    "stake": ("veil.cli.stake", "Stake PHA in the vPHA vault."),
    "gov": ("veil.cli.gov", "On-chain governance (OpenZeppelin Governor ABI)."),
    "migrate": (
        "veil.cli.migrate",
        "Move parachain balances to the L2: snapshot, ledger, Merkle tree, bindings.",
    ),
    "attest": ("veil.cli.attest", "Verify TEE attestation evidence (Intel TDX, NVIDIA GPU)."),
    "attester": ("veil.cli.attester", "Run an attester service."),
    "worker": ("veil.cli.worker", "Run and inspect a compute worker."),
    "gateway": ("veil.cli.gateway", "Run the app gateway (HTTP and WebSocket)."),
    "kms": ("veil.cli.kms", "Run the key management service (KMS)."),
    "cloud": ("veil.cli.cloud", "Deploy confidential apps and run the cloud control plane."),
    "keys": ("veil.cli.keys", "Create, import and list encrypted keystores (signing keys)."),
    "wallet": ("veil.cli.wallet", "See balances and votes, transfer PHA or vPHA."),
    "network": ("veil.cli.network", "Deploy a production network and check its genesis."),
    "substrate": (
        "veil.cli.substrate",
        "Recompute a Substrate chain's identity from its own data.",
    ),
}


def _unset_flags_are_false(command: Any, ctx: Any) -> None:
    """Give the flags no command sees (--help, completion) the value False when unset.

    Typer coerces such a flag's None through a pydantic adapter, and importing pydantic
    for that was a third of the startup of `veil migrate --help`; a bool needs no coercion.
    Flags a command receives keep their declared default.
    """
    for param in [*command.params, command.get_help_option(ctx)]:
        if (
            param is not None
            and not param.expose_value
            and getattr(param, "is_flag", False)
            and param.default is None
        ):
            param.default = False
    for sub in getattr(command, "commands", {}).values():
        if not isinstance(sub, _Pending):
            _unset_flags_are_false(sub, ctx)


class _Pending(typer.core.TyperCommand):
    """Stands in for a sub-app in help listings until the sub-app is needed."""

    def __init__(self, name: str, module: str, summary: str) -> None:
        super().__init__(name=name, help=summary)
        self.module = module

    def load(self) -> TyperGroup:
        group = typer.main.get_group(importlib.import_module(self.module).app)
        group.name = self.name
        return group


class _LazyGroup(TyperGroup):
    """The root group: resolving a sub-app's name imports it; listing does not."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        for name, (module, summary) in SUBCOMMANDS.items():
            self.commands.setdefault(name, _Pending(name, module, summary))

    def resolve_command(self, ctx: Any, args: list[str]) -> tuple[str | None, Any, list[str]]:
        name, command, rest = super().resolve_command(ctx, args)
        if isinstance(command, _Pending) and name is not None:
            command = self.commands[name] = command.load()
            _unset_flags_are_false(command, ctx)
        return name, command, rest

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        _unset_flags_are_false(self, ctx)
        return super().parse_args(ctx, args)


app = typer.Typer(
    name="veil",
    cls=_LazyGroup,
    help="Confidential AI compute on an Ethereum L2, and the parachain migration toolkit.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


@app.command(epilog="Example: veil demo --port 8555")
def demo(
    port: int = typer.Option(0, "--port", help="RPC port (default: 8545, or a free one)."),
) -> None:
    """Walk through the network on a fresh devnet, printing every command and its output."""
    from veil.devnet.anvil import free_port
    from veil.devnet.demo import run_demo

    def run(args: Sequence[str]) -> None:
        code = app(list(args), standalone_mode=False)
        if isinstance(code, int) and code != 0:
            raise VeilError(f"demo step `veil {' '.join(args)}` exited with {code}")

    run_demo(run, port or free_port(preferred=8545))


def _version(value: bool) -> None:
    if value:
        from importlib.metadata import version

        typer.echo(f"veil {version('veil')}")
        raise typer.Exit()


@app.callback()
def _root(
    debug: bool = typer.Option(False, "--debug", help="Show tracebacks instead of one line."),
    version: bool = typer.Option(
        False,
        "--version",
        "-V",
        callback=_version,
        is_eager=True,
        help="Print veil's version and exit.",
    ),
) -> None:
    """`--debug` is read in main() before parsing; declared here so --help shows it."""


def main() -> None:
    """Entry point: a `VeilError` becomes `error: <message>` on stderr and its exit code."""
    debug = "--debug" in sys.argv
    interrupted = []

    def on_interrupt(signum: int, frame: Any) -> None:
        # Typer turns KeyboardInterrupt into a silent exit 130; remember that it was one.
        interrupted.append(signum)
        signal.default_int_handler(signum, frame)

    signal.signal(signal.SIGINT, on_interrupt)
    try:
        code = app(standalone_mode=False)
    except VeilError as error:
        if debug:
            raise
        typer.echo(f"error: {error}", err=True)
        sys.exit(error.exit_code)
    except typer.Abort:
        typer.echo("aborted", err=True)
        sys.exit(130)
    except KeyboardInterrupt:
        # Outputs are written atomically (temp file, then rename) and child processes die
        # with us, so an interrupt leaves nothing behind; it deserves one line, not a trace.
        if debug:
            raise
        typer.echo("interrupted", err=True)
        sys.exit(130)
    except OSError as error:  # a file or socket the user named cannot be used
        if debug:
            raise
        where = f"{error.filename}: " if error.filename else ""
        typer.echo(f"error: {where}{error.strerror or error}", err=True)
        sys.exit(1)
    except typer.TyperException as error:  # usage errors: click's message and exit code 2
        show = getattr(error, "show", None)
        if show is None:
            raise
        ctx = getattr(error, "ctx", None)
        if type(error).__name__ == "NoArgsIsHelpError" or ctx is None or debug:
            show()  # a bare `veil stake` asks for the help text
        else:  # one line, like every other error, pointing at the help
            message = error.format_message().strip().replace("\n", " ")
            typer.echo(f"error: {message} (see `{ctx.command_path} --help`)", err=True)
        sys.exit(getattr(error, "exit_code", 2))
    if interrupted and code == 130:
        typer.echo("interrupted", err=True)
    sys.exit(code if isinstance(code, int) else 0)
