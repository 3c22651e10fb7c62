"""The walk-through `make demo` runs: each step is a real `veil` command on the devnet.

The demo drives the same commands a user types (in-process, so it is quick) and prints
each one before its output, so reading the demo teaches the CLI. It runs on its own
devnet home and deployment file so it never disturbs a devnet the user already has, and
it leaves that chain on disk: `veil devnet up --home .veil/demo -d deployments/demo.json`
resumes it for exploring.
"""

from __future__ import annotations

import shlex
from collections.abc import Callable, Sequence
from pathlib import Path

from rich.console import Console
from rich.rule import Rule

from veil.chain.compile import REPO_ROOT
from veil.chain.devnet import Devnet

DEMO_HOME = REPO_ROOT / ".veil" / "demo"
DEMO_DEPLOYMENT = REPO_ROOT / "deployments" / "demo.json"

Runner = Callable[[Sequence[str]], None]


class Walkthrough:
    """Prints a numbered step, then each command and what it printed."""

    def __init__(self, run: Runner, console: Console, home: Path, deployment: Path) -> None:
        self._run = run
        self.console = console
        self.home = home
        self.deployment = deployment
        self._step = 0

    def step(self, title: str) -> None:
        self._step += 1
        self.console.print()
        self.console.print(Rule(f"[bold]{self._step}. {title}", align="left"))

    def say(self, text: str) -> None:
        self.console.print(f"[dim]{text}[/dim]")

    def veil(self, *args: str, chain: bool = True) -> None:
        """Run `veil ARGS` (adding the demo's deployment for chain commands)."""
        extra = ["--deployment", str(self.deployment)] if chain else []
        shown = " ".join(shlex.quote(a) for a in args)
        self.console.print(f"[bold cyan]$ veil {shown}[/bold cyan]")
        self._run([*args, *extra])

    def devnet(self, *args: str) -> None:
        shown = " ".join(shlex.quote(a) for a in args)
        self.console.print(f"[bold cyan]$ veil devnet {shown}[/bold cyan]")
        self._run(["devnet", *args, "--home", str(self.home)])


def economy(w: Walkthrough, port: int) -> None:
    """Issue 2's story: stake, delegate, and change a parameter through governance."""
    w.step("Bring up the L2 devnet and deploy the economy")
    w.say("anvil in optimism mode; every parameter ends up owned by the timelock")
    w.devnet("up", "--fresh", "--port", str(port), "--deployment", str(w.deployment))

    w.step("Stake PHA into the vPHA vault")
    w.veil("stake", "deposit", "250000", "--account", "alice")
    w.veil("stake", "deposit", "100000", "--account", "bob")
    w.veil("stake", "deposit", "20000", "--account", "carol")

    w.step("Delegate voting power (undelegated vPHA does not vote)")
    w.veil("gov", "delegate", "self", "--account", "alice")
    w.veil("gov", "delegate", "self", "--account", "bob")

    w.step("Rewards stream into the vault while the reserve covers them")
    w.devnet("advance", "--days", "1")
    w.veil("stake", "status", "--account", "alice")

    w.step("Alice proposes doubling the reward rate")
    description = "Double the vPHA reward rate to 0.2 PHA per second"
    w.veil(
        "gov", "propose", "-m", description,
        "--action", "Vault:setRewardRate(uint256):0.2PHA",
        "--account", "alice",
    )  # fmt: skip
    proposal = _latest_proposal(w)

    w.step("Vote once the voting delay has passed")
    w.devnet("advance", "--seconds", "3601")
    w.veil("gov", "vote", proposal, "for", "--reason", "more stakers", "--account", "alice")
    w.veil("gov", "vote", proposal, "against", "--account", "bob")

    w.step("Queue in the timelock after the vote, execute after the delay")
    w.devnet("advance", "--days", "3")
    w.veil("gov", "queue", proposal, "--account", "carol")
    w.devnet("advance", "--days", "1", "--seconds", "1")
    w.veil("gov", "execute", proposal, "--account", "carol")
    w.veil("gov", "status", proposal)
    w.veil("stake", "status", "--account", "bob")

    w.step("Unstake through the unlock queue (21 days), cancel one, claim one")
    w.veil("stake", "request-unlock", "5000", "--account", "carol")
    w.veil("stake", "request-unlock", "1000", "--account", "carol")
    w.veil("stake", "cancel", _latest_request(w, "carol"), "--account", "carol")
    w.devnet("advance", "--days", "21", "--seconds", "1")
    w.veil("stake", "claim", "--all", "--account", "carol")
    w.veil("stake", "status", "--account", "carol")


def _latest_proposal(w: Walkthrough) -> str:
    from veil.chain import deployment as deployments
    from veil.chain import governance
    from veil.chain.client import Chain

    chain = Chain.open(deployments.load(w.deployment))
    return str(governance.proposals(chain)[-1].proposal_id)


def _latest_request(w: Walkthrough, name: str) -> str:
    from veil.chain import deployment as deployments
    from veil.chain import staking
    from veil.chain.accounts import devnet_account
    from veil.chain.client import Chain

    chain = Chain.open(deployments.load(w.deployment))
    requests = staking.open_requests(chain, devnet_account(name).address)
    return str(requests[-1].request_id)


def run_demo(run: Runner, port: int, console: Console | None = None) -> None:
    """The whole walk-through; the devnet is stopped at the end (its state kept)."""
    console = console or Console(highlight=False)
    devnet = Devnet(DEMO_HOME)
    if devnet.running() is not None:
        devnet.stop()
    w = Walkthrough(run, console, DEMO_HOME, DEMO_DEPLOYMENT)
    try:
        economy(w, port)
    finally:
        if devnet.running() is not None:
            devnet.stop()
    console.print()
    console.print(
        "[bold green]demo complete.[/bold green] The chain is kept: "
        f"`veil devnet up --home {DEMO_HOME.relative_to(REPO_ROOT)} "
        f"-d {DEMO_DEPLOYMENT.relative_to(REPO_ROOT)}` resumes it."
    )
