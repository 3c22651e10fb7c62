"""The `veil` command: one Typer sub-app per domain, errors turned into one line each."""

from __future__ import annotations

import signal
import sys
from collections.abc import Sequence
from typing import Any

import typer

from veil.cli import attest, attester, devnet, gov, migrate, stake, worker
from veil.errors import VeilError

app = typer.Typer(
    name="veil",
    help="Confidential AI compute on an Ethereum L2, and the parachain migration toolkit.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.add_typer(devnet.app, name="devnet")
app.add_typer(stake.app, name="stake")
app.add_typer(gov.app, name="gov")
app.add_typer(migrate.app, name="migrate")
app.add_typer(attest.app, name="attest")
app.add_typer(attester.app, name="attester")
app.add_typer(worker.app, name="worker")


@app.command(epilog="Example: veil demo --port 8555")
def demo(
    port: int = typer.Option(0, "--port", help="RPC port (default: 8545, or a free one)."),
) -> None:
    """Walk through the network on a fresh devnet, printing every command and its output."""
    from veil.chain.devnet import free_port
    from veil.demo import run_demo

    def run(args: Sequence[str]) -> None:
        code = app(list(args), standalone_mode=False)
        if isinstance(code, int) and code != 0:
            raise VeilError(f"demo step `veil {' '.join(args)}` exited with {code}")

    run_demo(run, port or free_port(preferred=8545))


@app.callback()
def _root(
    debug: bool = typer.Option(False, "--debug", help="Show tracebacks instead of one line."),
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
