"""Chain commands against a real devnet (issue 8, defects 2, 5, 6, 7, 8): they check before
sending, name proposals by a short number, and print whole ids, ISO dates and PHA amounts."""

from __future__ import annotations

import json
import re
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from veil.devnet.accounts import devnet_account
from veil.devnet.anvil import free_port
from veil.devnet.demo import veil_executable

ISO = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ")


class Veil:
    def __init__(self, root: Path) -> None:
        self.home = root / "devnet"
        self.deployment = root / "deployment.json"

    def __call__(self, *args: str, ok: bool = True) -> subprocess.CompletedProcess[str]:
        chain_args = ["-d", str(self.deployment)] if args[0] not in ("devnet",) else []
        done = subprocess.run([str(veil_executable()), *args, *chain_args],
                              capture_output=True, text=True, timeout=300)  # fmt: skip
        if ok:
            assert done.returncode == 0, f"veil {' '.join(args)}: {done.stderr}"
        else:
            assert done.returncode != 0, done.stdout
            assert "Traceback" not in done.stderr
            assert len(done.stderr.strip().splitlines()) == 1, done.stderr
        return done

    def advance(self, seconds: int) -> None:
        subprocess.run([str(veil_executable()), "devnet", "advance", "--seconds", str(seconds),
                        "--home", str(self.home)], check=True, capture_output=True)  # fmt: skip


@pytest.fixture(scope="module")
def veil(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Veil]:
    runner = Veil(tmp_path_factory.mktemp("cli"))
    up = ["devnet", "up", "--fresh", "--port", str(free_port()), "--home", str(runner.home),
          "--deployment", str(runner.deployment)]  # fmt: skip
    subprocess.run([str(veil_executable()), *up], check=True, capture_output=True, timeout=600)
    try:
        yield runner
    finally:
        subprocess.run([str(veil_executable()), "devnet", "down", "--home", str(runner.home)],
                       capture_output=True, timeout=60)  # fmt: skip


def test_governance_checks_first_and_numbers_proposals(veil: Veil) -> None:
    alice = devnet_account("alice").address
    # defect 7: an action the target does not have is refused before anything is sent
    action = "Vault:setRewardRate(uint256):0.2PHA"
    done = veil("gov", "propose", "-a", "alice", "-m", "typo", "--action",
                "Vault:setFoo(uint256):1", ok=False)  # fmt: skip
    assert "Vault has no function setFoo(uint256)" in done.stderr
    # defect 7: below the threshold, the refusal states the votes and the threshold
    done = veil("gov", "propose", "-a", "bob", "-m", "no votes", "--action", action, ok=False)
    assert re.search(r"has 0 vPHA of votes, proposing takes [\d,]+ vPHA", done.stderr)
    assert json.loads(veil("gov", "list", "--json").stdout) == []

    veil("stake", "deposit", "20000", "-a", "alice")
    veil("gov", "delegate", "self", "-a", "alice")
    veil.advance(2)
    done = veil("gov", "propose", "-a", "alice", "-m", "Lower the reward rate", "--action", action)
    assert done.stdout.startswith("proposal #1 (id ")
    assert ISO.search(done.stdout) and "(in " in done.stdout

    # defect 8: the list, piped, shows whole cells; --json has the full id
    listed = veil("gov", "list").stdout
    assert alice in listed and "Lower the reward rate" in listed
    [entry] = json.loads(veil("gov", "list", "--json").stdout)
    assert entry["number"] == 1 and int(entry["id"]) > 2**64
    assert ISO.fullmatch(entry["vote_end"]["iso"])
    for ref in ("1", "#1", entry["id"]):
        shown = veil("gov", "status", ref).stdout
        assert shown.startswith("proposal #1\n") and entry["id"] in shown
        assert ISO.search(shown) and str(entry["vote_end"]["unix"]) not in shown
    status = json.loads(veil("gov", "status", "1", "--json").stdout)
    assert status["id"] == entry["id"] and status["state"] == "Pending"
    assert status["actions"][0]["decoded"] == "Vault.setRewardRate(rate=200000000000000000)"
    assert "no such proposal" in veil("gov", "status", "2", ok=False).stderr
    assert "no such proposal" in veil("gov", "vote", "#2", "for", "-a", "alice", ok=False).stderr


def test_delegate_takes_the_devnet_names_account_takes(veil: Veil) -> None:
    """Defect 6: `gov delegate bob` was refused while `--account bob` was accepted."""
    bob = devnet_account("bob").address
    done = veil("gov", "delegate", "bob", "-a", "carol")
    assert f"delegates to {bob}" in done.stdout


def test_stake_output_and_errors_speak_pha(veil: Veil) -> None:
    veil("stake", "deposit", "10", "-a", "dave")
    done = veil("stake", "request-unlock", "1.5", "-a", "dave")
    assert ISO.search(done.stdout) and "(in 21 days)" in done.stdout
    status = json.loads(veil("stake", "status", "dave", "--json").stdout)
    assert status["address"] == devnet_account("dave").address
    assert status["unlock_requests"][0]["ready"] is False
    assert ISO.fullmatch(status["unlock_requests"][0]["claimable_at"]["iso"])
    assert status["pha"]["amount"].replace(".", "").isdigit()
    # defect 2: errors state amounts in PHA/vPHA, not wei or shares
    done = veil("stake", "deposit", "100000000", "-a", "dave", ok=False)
    assert re.search(r"needs 100,000,000 PHA, 0x[0-9a-fA-F]{40} holds [\d,.]+ PHA", done.stderr)
    done = veil("stake", "request-unlock", "1000", "-a", "dave", ok=False)
    assert re.search(r"needs [\d,.]+ vPHA, 0x[0-9a-fA-F]{40} holds [\d,.]+ vPHA", done.stderr)
    assert "wei" not in done.stderr and "shares" not in done.stderr


def test_attester_on_a_busy_port_is_one_line(veil: Veil) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        done = veil("attester", "serve", "--port", str(port), "-a", "attester",
                    "--db", str(veil.home / "a.sqlite"), ok=False)  # fmt: skip
    assert f"cannot listen on 127.0.0.1:{port}" in done.stderr
