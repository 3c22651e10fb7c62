"""Startup stays light: commands import heavy libraries only where they use them.

Timings live in bench/startup.py; these tests hold the behaviour that makes them fast
(what a command imports), which a slow CI machine cannot make flaky.
"""

from __future__ import annotations

import importlib
import json
import subprocess
import sys

import pytest
from Crypto.Hash import keccak

from veil.cli import main as cli_main
from veil.devnet.demo import veil_executable
from veil.migration import attestation

HEAVY = ("web3", "eth_account", "eth_utils", "vyper", "boa", "substrateinterface", "pydantic",
         "Crypto")  # fmt: skip
# network clients: only commands that talk to a node, an attester, a PCCS or NRAS need them
NETWORK = ("urllib.request", "http.client")


def _imported_after(argv: list[str]) -> set[str]:
    """Top-level packages loaded by running `veil ARGV` in a fresh interpreter."""
    code = (
        "import json, sys\n"
        f"sys.argv = ['veil', *{argv!r}]\n"
        "from veil.cli.main import main\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        "names = {m.split('.')[0] for m in sys.modules} | {m for m in sys.modules if m in "
        f"{NETWORK!r}}}\n"
        "print(json.dumps(sorted(names)), file=sys.stderr)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120, check=True)  # fmt: skip
    return set(json.loads(done.stderr.strip().splitlines()[-1]))


def test_importing_the_cli_does_not_import_web3() -> None:
    loaded = _imported_after([])
    assert "typer" in loaded  # the probe saw the CLI load
    assert not loaded & set(HEAVY), loaded & set(HEAVY)


@pytest.mark.parametrize(
    "argv",
    [["--help"], ["migrate", "--help"], ["migrate", "tree", "--help"],
     ["attest", "verify", "--help"]],
)  # fmt: skip
def test_help_and_offline_commands_skip_chain_libraries(argv: list[str]) -> None:
    loaded = _imported_after(argv)
    assert not loaded & {*HEAVY, *NETWORK}, loaded & {*HEAVY, *NETWORK}


def test_chain_commands_still_load_what_they_need() -> None:
    """The probe is not blind: a chain command's help does bring web3 in."""
    assert "web3" in _imported_after(["stake", "deposit", "--help"])


def test_every_listed_subcommand_has_its_own_help_and_module() -> None:
    """The root lists sub-apps without importing them; the listing must not drift."""
    for name, (module, summary) in cli_main.SUBCOMMANDS.items():
        app = importlib.import_module(module).app
        assert app.info.help == summary, name


def test_version_and_short_help() -> None:
    veil = str(veil_executable())
    version = subprocess.run([veil, "--version"], capture_output=True, text=True, timeout=60)
    assert version.returncode == 0
    assert version.stdout.strip().startswith("veil ") and version.stdout.count(".") >= 2
    short = subprocess.run([veil, "-V"], capture_output=True, text=True, timeout=60)
    assert short.stdout == version.stdout
    for argv in (["-h"], ["migrate", "-h"], ["migrate", "tree", "-h"], ["keys", "new", "-h"]):
        done = subprocess.run([veil, *argv], capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        assert "Usage: veil" in done.stdout
        long = subprocess.run([veil, *argv[:-1], "--help"], capture_output=True, text=True,
                              timeout=60)  # fmt: skip
        assert long.stdout == done.stdout


def test_typehash_constants_match_their_type_strings() -> None:
    """They are written out so importing the module loads no Keccak library."""

    def digest(text: str) -> bytes:
        return keccak.new(data=text.encode(), digest_bits=256).digest()

    assert digest(attestation.DOMAIN_TYPE) == attestation.DOMAIN_TYPEHASH
    assert digest(attestation.BINDING_TYPE) == attestation.BINDING_TYPEHASH
