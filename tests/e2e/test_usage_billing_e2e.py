"""Per-token billing through the escrow on the devnet, through real processes (issue 15).

anvil with the network deployed; `veil ai serve` as its own process, metering alice's lease
with a price table on its command line (simulated TEE); the official openai package calls
it through veil's verifying transport. Alice authorises the gateway's attested key as her
lease's meter with `veil ai meter` (refused, and nothing sent, under a policy the gateway
does not meet); the provider submits the gateway's voucher with `veil ai charge`. The
lease's balance falls by exactly the metered amount (on top of the seconds the same
transaction settles, computed with `veil.market.runway`), the provider's earnings rise by
the amount less the protocol fee, and a second charge takes only what is new. A lease
nearly spent pays what it can without touching its shutdown window, and the same voucher
charges the rest after a top-up.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest

from veil.devnet.accounts import devnet_account
from veil.devnet.anvil import Devnet, free_port
from veil.devnet.demo import veil_executable
from veil.inference.transport import VerifyingTransport
from veil.market import runway
from veil.market.escrow import Escrow
from veil.tee import load_policy
from veil.tee.simulator import AppSpec

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "services" / "ai"))
from ai_kit import start_backend
from devnet_kit import deploy_funded

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("meter-anvil")]

VEIL = str(veil_executable())
PHA = 10**18
PROMPT_WEI, COMPLETION_WEI = 2 * 10**12, 5 * 10**12
CAP = 10**13  # the most wei per token alice accepts: above both prices


def _policy(path: Path, compose_hash: str) -> Path:
    sim = AppSpec()
    path.write_text(
        "allow_simulated = true\n"
        f'allowed_compose_hashes = ["{compose_hash}"]\n'
        "[[os_images]]\n"
        f'name = "sim"\nos_image_hash = "{sim.os_image_hash.hex()}"\n'
    )
    return path


def _start(args: list[str], log: Path, env: dict[str, str]) -> subprocess.Popen[bytes]:
    with open(log, "wb") as out:
        return subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, env=env)


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    root = tmp_path_factory.mktemp("meter-e2e")
    env = {**os.environ, "VEIL_HOME": str(root / "home")}
    devnet = Devnet(root / "devnet")
    node = devnet.start(port=free_port())
    running: list[subprocess.Popen[bytes]] = []
    try:
        chain, path = deploy_funded(node.rpc_url, root / "deployment.json", "alice", "provider")
        escrow = Escrow(chain)
        alice, provider = devnet_account("alice"), devnet_account("provider")
        escrow.deposit(alice, 100 * PHA)
        lease_id = escrow.open_lease(alice, provider.address, "ai-app", "tdx.small", 50 * PHA)

        backend, llm = start_backend(root)
        running.append(backend)
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        # the price table on the command line (in a CVM: the compose, so attested); the
        # lease, market and chain from the environment, as a cloud deploy's env gives them
        gateway_env = {**env, "VEIL_AI_LEASE_ID": f"{lease_id:#066x}",
                       "VEIL_AI_MARKET": escrow.market.address,
                       "VEIL_AI_CHAIN_ID": str(chain.w3.eth.chain_id)}  # fmt: skip
        log = root / "ai.log"
        gateway = _start(
            [VEIL, "ai", "serve", "--backend", llm,
             "--tee", "sim", "--port", str(port), "--state-dir", str(root / "ai"),
             "--no-embeddings", "--price", f"fake-llm={PROMPT_WEI}:{COMPLETION_WEI}"],
            log, gateway_env,
        )  # fmt: skip
        running.append(gateway)
        deadline = time.monotonic() + 90
        while True:
            try:
                if httpx.get(url + "/v1/models", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert gateway.poll() is None, log.read_text()[-3000:]
            assert time.monotonic() < deadline, "the AI gateway did not come up"
            time.sleep(0.2)
        yield {"root": root, "env": env, "dep": ["-d", str(path)], "url": url,
               "escrow": escrow, "lease_id": lease_id, "chain": chain}  # fmt: skip
    finally:
        for process in reversed(running):
            _stop(process)
        devnet.stop()


def _veil(world: dict, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([VEIL, *args], capture_output=True, text=True, env=world["env"],
                          timeout=300, cwd=world["root"])  # fmt: skip


def _ok(done: subprocess.CompletedProcess[str]) -> dict:
    assert done.returncode == 0, f"{done.args}:\n{done.stdout}\n{done.stderr}"
    return json.loads(done.stdout.strip().splitlines()[-1])


def _refused(done: subprocess.CompletedProcess[str], reason: str) -> None:
    assert done.returncode != 0, done.stdout
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and reason in lines[0], done.stderr
    assert "Traceback" not in done.stderr


def test_openai_usage_is_metered_authorised_and_charged_through_the_escrow(world: dict):
    escrow: Escrow = world["escrow"]
    lease_id, url, dep = world["lease_id"], world["url"], world["dep"]
    meter = ["ai", "meter", url, "--max-token-rate", str(CAP), *dep, "-a", "alice"]
    sim = AppSpec()

    # a customer whose policy the gateway does not meet sends nothing to the chain
    other = _policy(world["root"] / "other.toml", "ab" * 32)
    _refused(_veil(world, *meter, "--policy", str(other)), "refused (quote_refused)")
    assert escrow.market.functions.meterOf(lease_id).call()[0] == "0x" + "00" * 20
    # nor does a production policy (the gateway's TEE is simulated)
    _refused(_veil(world, *meter), "SIMULATED")
    # the provider cannot charge before alice named the meter
    charge = ["ai", "charge", url, *dep, "-a", "provider", "--json"]
    _refused(_veil(world, *charge), "meter_not_set")
    nobody = f"http://127.0.0.1:{free_port()}"
    _refused(_veil(world, "ai", "charge", nobody, *dep, "-a", "provider"), "cannot reach")
    _refused(_veil(world, "ai", "meter", nobody, "--max-token-rate", "1", *dep, "-a", "alice"),
             "cannot reach")  # fmt: skip

    # usage through the official openai package, every answer verified
    policy = _policy(world["root"] / "policy.toml", sim.compose_hash.hex())
    transport = VerifyingTransport(url, load_policy(policy))
    client = openai.OpenAI(base_url=url + "/v1", api_key="k", max_retries=0,
                           http_client=httpx.Client(transport=transport))  # fmt: skip
    client.chat.completions.create(
        model="fake-llm", messages=[{"role": "user", "content": "bill me per token please"}]
    )
    stream = client.chat.completions.create(
        model="fake-llm", messages=[{"role": "user", "content": "and stream too"}], stream=True
    )
    assert "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    receipts = [c.receipt for c in transport.checked]
    tokens = sum(r.prompt_tokens + r.completion_tokens for r in receipts)
    amount = sum(r.prompt_tokens * PROMPT_WEI + r.completion_tokens * COMPLETION_WEI
                 for r in receipts)  # fmt: skip
    assert len(receipts) == 2 and tokens > 0

    # a verified gateway that meters another lease than the one named, or a signer who is
    # not the lease's customer, is refused before any transaction
    _refused(_veil(world, *meter, "--policy", str(policy), "--lease-id", "0x01"),
             "refused (wrong_lease)")  # fmt: skip
    bob = [*meter[:-1], "bob", "--policy", str(policy)]
    _refused(_veil(world, *bob), f"belongs to {devnet_account('alice').address}")
    assert escrow.market.functions.meterOf(lease_id).call()[0] == "0x" + "00" * 20

    # alice verifies the gateway and names its attested key as her lease's meter
    authorised = _ok(_veil(world, *meter, "--policy", str(policy), "--json"))
    assert transport.gateway is not None
    assert authorised["meter"] == transport.gateway.ecdsa_address
    assert authorised["lease_id"] == f"{lease_id:#066x}"
    assert authorised["compose_hash"] == sim.compose_hash.hex() and authorised["simulated"]
    on_chain = escrow.market.functions.meterOf(lease_id).call()
    assert tuple(on_chain) == (transport.gateway.ecdsa_address, CAP, 0, 0, 0)

    # the provider charges: the lease pays exactly the metered amount, on top of seconds
    before = escrow.lease(lease_id)
    net_before, fee_before = escrow.earnings(before.provider)
    fee_bps = int(escrow.market.functions.feeBps().call())
    done = _ok(_veil(world, *charge))
    at = escrow.now()  # anvil mines one block per transaction: the charge's block
    after = escrow.lease(lease_id)
    seconds = runway.project(before, at)
    assert (done["tokens"], int(done["amount"])) == (tokens, amount)
    usage_fee = amount * fee_bps // 10_000
    assert int(done["fee"]) == usage_fee
    assert after.balance == seconds.balance - amount == int(done["balance"])
    net_after, fee_after = escrow.earnings(before.provider)
    assert net_after - net_before == seconds.billed * (before.rate - before.fee_rate) + (
        amount - usage_fee
    )
    assert fee_after - fee_before == seconds.billed * before.fee_rate + usage_fee
    assert escrow.market.functions.meterOf(lease_id).call()[2:] == [tokens, amount, amount]

    # the same voucher again: nothing new, said in one line, exit 0
    again = _ok(_veil(world, *charge))
    assert again["charged"] is False and "nothing new" in again["reason"]

    # more usage: the next charge takes only the difference
    more = client.chat.completions.create(
        model="fake-llm", messages=[{"role": "user", "content": "one more"}]
    )
    extra = transport.checked[-1].receipt
    assert extra.id == more.id
    second = _ok(_veil(world, *charge))
    assert second["tokens"] == extra.prompt_tokens + extra.completion_tokens
    assert int(second["amount"]) == (
        extra.prompt_tokens * PROMPT_WEI + extra.completion_tokens * COMPLETION_WEI
    )
    assert second["voucher_tokens"] == tokens + second["tokens"]

    # a lease nearly spent pays what it can (its shutdown window stays funded); the same
    # voucher charges the rest after a top-up
    chain, alice = world["chain"], devnet_account("alice")
    lease = escrow.lease(lease_id)
    window = int(escrow.market.functions.shutdownWindow().call())
    chain.advance_time(
        lease.balance // lease.rate - window - 3 - (escrow.now() - lease.last_settled)
    )
    words = " ".join(["word"] * 120)  # about 240 tokens: more wei than a few seconds' rate
    client.chat.completions.create(model="fake-llm", messages=[{"role": "user", "content": words}])
    big = transport.checked[-1].receipt
    due = big.prompt_tokens * PROMPT_WEI + big.completion_tokens * COMPLETION_WEI
    assert due > 5 * lease.rate
    before = escrow.market.functions.meterOf(lease_id).call()
    partial = _ok(_veil(world, *charge))
    assert int(partial["due"]) == due and int(partial["amount"]) < due
    after = escrow.lease(lease_id)
    assert after.status == runway.STATUS_BILLING  # still running, on its shutdown window
    assert after.balance == int(partial["balance"]) == (after.balance // after.rate) * after.rate
    assert 0 < after.balance <= window * after.rate
    # The voucher is accepted whole (its tokens and wei); what was not paid stays due.
    assert partial["tokens"] == big.prompt_tokens + big.completion_tokens
    state = escrow.market.functions.meterOf(lease_id).call()
    assert state[2:] == [
        before[2] + partial["tokens"],
        before[3] + due,
        before[4] + int(partial["amount"]),
    ]
    escrow.top_up(alice, lease_id, PHA)
    rest = _ok(_veil(world, *charge))
    assert int(rest["amount"]) == due - int(partial["amount"])
    assert rest["tokens"] == 0  # no new tokens: the rest of the wei
    final = escrow.market.functions.meterOf(lease_id).call()
    paid_up = int(rest["voucher_amount"])
    assert final[2:] == [rest["voucher_tokens"], paid_up, paid_up]
