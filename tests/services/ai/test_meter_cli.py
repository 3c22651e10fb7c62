"""`veil ai serve` metering options and `veil ai meter|charge`: bad input is one line, exit 2,
no traceback, before anything is started or sent. (The happy paths and the refusals of a
verification or a charge run against a devnet in tests/e2e/test_usage_billing_e2e.py.)"""

from __future__ import annotations

import subprocess

import pytest

from veil.devnet.demo import veil_executable


def veil(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(veil_executable()), *args], capture_output=True, text=True, timeout=120
    )


SERVE = ("ai", "serve", "--no-embeddings", "--port", "1")
MARKET = "0x5FbDB2315678afecb367f032d93F642f64180aa3"


@pytest.mark.parametrize(
    ("args", "problem"),
    [
        ((*SERVE, "--price", "qwen"), "expected MODEL=PROMPT_WEI:COMPLETION_WEI"),
        ((*SERVE, "--price", "qwen=1:2", "--price", "qwen=3:4"), "given twice"),
        ((*SERVE, "--price", "m=1:1", "--lease-id", "0x01"), "market, chain id missing"),
        ((*SERVE, "--lease-id", "lease"), "--lease-id 'lease': expected 0x-hex"),
        ((*SERVE, "--market", "0x1234"), "--market '0x1234': expected a 0x address"),
        (
            (*SERVE, "--lease-id", "7", "--market", MARKET, "--chain-id", "31337"),
            "no price table",
        ),
        (("ai", "meter", "gw.example", "--max-token-rate", "5"), "expected http(s)"),
        (("ai", "meter", "http://127.0.0.1:1", "--max-token-rate", "0"), "positive integer"),
        (("ai", "meter", "http://127.0.0.1:1", "--max-token-rate", "1.5"), "positive integer"),
        (
            ("ai", "meter", "http://127.0.0.1:1", "--max-token-rate", "5", "--lease-id", "x"),
            "--lease-id 'x'",
        ),
        (("ai", "charge", "gw.example"), "expected http(s)"),
    ],
)
def test_bad_input_is_one_line(args: tuple[str, ...], problem: str) -> None:
    result = veil(*args)
    assert result.returncode == 2, result.stdout + result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and problem in lines[0], result.stderr
    assert "Traceback" not in result.stderr
