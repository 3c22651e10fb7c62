"""End-to-end fixtures: a real devnet per test module, driven through the `veil` CLI."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest
from rich.console import Console

from veil.chain import deployment as deployments
from veil.chain.client import Chain
from veil.devnet.anvil import Devnet, free_port
from veil.devnet.demo import Walkthrough, veil_executable

VEIL = str(veil_executable())


@dataclass
class CliRun:
    """Runs `veil ARGS` as a subprocess, keeping every output for assertions."""

    outputs: list[tuple[list[str], str]]

    def __call__(self, args: Sequence[str]) -> None:
        done = subprocess.run([VEIL, *args], capture_output=True, text=True, timeout=300)
        self.outputs.append((list(args), done.stdout + done.stderr))
        if done.returncode != 0:
            raise AssertionError(f"veil {' '.join(args)} exited {done.returncode}:\n{done.stderr}")

    def last(self, *prefix: str) -> str:
        for args, out in reversed(self.outputs):
            if args[: len(prefix)] == list(prefix):
                return out
        raise AssertionError(f"no `veil {' '.join(prefix)}` was run")


@dataclass
class E2E:
    walkthrough: Walkthrough
    run: CliRun
    port: int
    deployment: Path
    devnet: Devnet

    def chain(self) -> Chain:
        return Chain.open(deployments.load(self.deployment))


@pytest.fixture(scope="module")
def e2e(tmp_path_factory: pytest.TempPathFactory) -> Iterator[E2E]:
    root = tmp_path_factory.mktemp("e2e")
    home, deployment = root / "devnet", root / "deployment.json"
    run = CliRun([])
    console = Console(file=open(root / "walkthrough.log", "w"), highlight=False)  # noqa: SIM115
    devnet = Devnet(home)
    yield E2E(Walkthrough(run, console, home, deployment), run, free_port(), deployment, devnet)
    if devnet.running() is not None:
        devnet.stop()
    console.file.close()
