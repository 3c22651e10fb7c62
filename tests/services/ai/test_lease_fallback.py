"""`veil ai serve` finds its lease as a veil cloud app gets it: flags first, then the
gateway's own `VEIL_AI_*` variables, then the `VEIL_*` facts a worker gives every billed
app, option by option (so a cloud template needs only `--price` to bill per token)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
from pathlib import Path

import pytest
from ai_kit import serve_once

from veil.devnet.demo import veil_executable
from veil.errors import InputError
from veil.services.ai.app import user_config_lease

SERVE = ("ai", "serve", "--no-embeddings", "--port", "1")
MARKET = "0x5FbDB2315678afecb367f032d93F642f64180aa3"
OTHER_MARKET = "0xe7f1725E7734CE288F8367e1Bb143E90bb3F0512"
LEASE = "0x" + "00" * 31 + "2a"
OPTION_VARS = (
    "VEIL_AI_LEASE_ID", "VEIL_AI_MARKET", "VEIL_AI_CHAIN_ID",
    "VEIL_LEASE_ID", "VEIL_MARKET", "VEIL_CHAIN_ID",
)  # fmt: skip


def _env(**given: str) -> dict[str, str]:
    clean = {key: value for key, value in os.environ.items() if key not in OPTION_VARS}
    return {**clean, **given}


def veil(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(veil_executable()), *args], capture_output=True, text=True, timeout=120, env=env
    )


@pytest.mark.parametrize(
    ("args", "env", "problem"),
    [
        # the worker's facts are read when nothing else gives the option ...
        ((), {"VEIL_LEASE_ID": "lease"}, "--lease-id 'lease': expected 0x-hex"),
        ((), {"VEIL_MARKET": "0x1234"}, "--market '0x1234': expected a 0x address"),
        ((), {"VEIL_CHAIN_ID": "0"}, "--chain-id"),
        # ... and lose to the gateway's own variables (the bad fact is never parsed) ...
        ((), {"VEIL_AI_LEASE_ID": LEASE, "VEIL_LEASE_ID": "lease"}, "market, chain id missing"),
        ((), {"VEIL_AI_MARKET": MARKET, "VEIL_MARKET": "0x1234"}, "lease id, chain id missing"),
        ((), {"VEIL_AI_CHAIN_ID": "5", "VEIL_CHAIN_ID": "0"}, "lease id, market missing"),
        # ... which lose to the flags
        (("--lease-id", LEASE), {"VEIL_AI_LEASE_ID": "lease"}, "market, chain id missing"),
        (("--market", MARKET), {"VEIL_AI_MARKET": "0x1234"}, "lease id, chain id missing"),
        (("--chain-id", "5"), {"VEIL_AI_CHAIN_ID": "0"}, "lease id, market missing"),
        # the facts alone are a whole lease: only the price table is still needed
        ((), {"VEIL_LEASE_ID": LEASE, "VEIL_MARKET": MARKET, "VEIL_CHAIN_ID": "31337"},
         "no price table"),
    ],
)  # fmt: skip
def test_the_lease_options_fall_back_in_order(args, env, problem) -> None:
    done = veil(*SERVE, *args, env=_env(**env))
    assert done.returncode == 2, done.stdout + done.stderr
    lines = done.stderr.strip().splitlines()
    assert "Traceback" not in done.stderr
    assert problem in done.stderr and len(lines) <= 3, done.stderr  # click boxes range errors


def test_a_gateway_given_only_the_worker_facts_and_a_price_meters_the_lease(tmp_path: Path):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    # the lease from the worker, the market from the gateway's variable, the chain from a flag
    env = _env(VEIL_LEASE_ID=LEASE, VEIL_MARKET=OTHER_MARKET, VEIL_CHAIN_ID="31337",
               VEIL_AI_MARKET=MARKET, VEIL_AI_CHAIN_ID="7")  # fmt: skip
    argv = [str(veil_executable()), "ai", "serve", "--no-embeddings", "--port", str(port),
            "--state-dir", str(tmp_path), "--price", "*=1:2", "--chain-id", "5"]  # fmt: skip
    output = serve_once(argv, port, env)
    assert f"metering lease {LEASE} in market {MARKET} (chain 5)" in output, output


def test_user_config_lease_reads_the_facts_and_nothing_else(tmp_path: Path) -> None:
    config = tmp_path / "user-config"
    assert user_config_lease(config) == {}  # dstack wrote none: an app without a lease
    assert user_config_lease(tmp_path) == {}  # docker made a directory for the absent file
    config.write_text("  \n")
    assert user_config_lease(config) == {}
    config.write_text(json.dumps({"VEIL_LEASE_ID": LEASE, "VEIL_MARKET": MARKET,
                                  "VEIL_CHAIN_ID": 31337, "OTHER": "x"}))  # fmt: skip
    assert user_config_lease(config) == {
        "VEIL_LEASE_ID": LEASE, "VEIL_MARKET": MARKET, "VEIL_CHAIN_ID": "31337"
    }  # fmt: skip
    for bad, problem in (("{", "not JSON"), ("[1]", "expected a JSON object")):
        config.write_text(bad)
        with pytest.raises(InputError, match=problem):
            user_config_lease(config)


@pytest.mark.parametrize(
    ("facts", "env", "problem"),
    [
        # read when nothing else gives the option ...
        ({"VEIL_LEASE_ID": "lease"}, {}, "--lease-id 'lease': expected 0x-hex"),
        ({"VEIL_CHAIN_ID": "zero"}, {}, "--user-config: VEIL_CHAIN_ID 'zero' is not a chain id"),
        # ... last in line: the worker's variables (and so everything before them) win
        ({"VEIL_LEASE_ID": "lease"}, {"VEIL_LEASE_ID": LEASE}, "market, chain id missing"),
        ({"VEIL_LEASE_ID": LEASE, "VEIL_MARKET": MARKET, "VEIL_CHAIN_ID": 31337}, {},
         "no price table"),
    ],
)  # fmt: skip
def test_the_user_config_is_the_last_fallback(tmp_path: Path, facts, env, problem) -> None:
    config = tmp_path / "user-config"
    config.write_text(json.dumps(facts))
    done = veil(*SERVE, "--user-config", str(config), env=_env(**env))
    assert done.returncode == 2, done.stdout + done.stderr
    assert "Traceback" not in done.stderr and problem in done.stderr, done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
