"""A billed veil cloud app that is an AI gateway bills per token with nothing but `--price`
in its compose (issue 15).

On a devnet with the network deployed: alice deploys a compose running `veil ai serve
--price ...` through the control plane (SQLite, in process), signs the lease the control
plane describes, and the worker's app loop (process runtime, lease gate on the devnet's
Market) starts the app. Nobody copies the lease into the app's env: the worker tells the
app its lease, market and chain (`VEIL_LEASE_ID`, `VEIL_MARKET`, `VEIL_CHAIN_ID`), so
`veil ai meter` (alice) authorises the app's attested key for exactly that lease and
`veil ai charge` (the provider) charges it the metered amount.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from eth_account import Account
from eth_utils import keccak

from veil.cloud.agent import AppLoop, SyncClient
from veil.cloud.lease_gate import LeaseGate, escrow_reader
from veil.cloud.runtime.process import ProcessRuntime
from veil.compute.quote_source import Simulator
from veil.devnet.accounts import devnet_account
from veil.devnet.anvil import Devnet, free_port
from veil.devnet.demo import veil_executable
from veil.inference.keeper import UsageKeeper
from veil.inference.transport import VerifyingTransport
from veil.inference.verify import VerificationRefused
from veil.inference.voucher import charge_voucher
from veil.market.escrow import Escrow
from veil.market.typed_data import OpenLease
from veil.tee import load_policy
from veil.tee.simulator import AppSpec

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "services" / "cloud"))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "services" / "ai"))
from ai_kit import start_backend
from cloud_kit import CloudKit, make_kit
from devnet_kit import deploy_funded

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("cloud-ai-billing-anvil")]

VEIL = str(veil_executable())
PHA = 10**18
PROMPT_WEI, COMPLETION_WEI = 2 * 10**12, 5 * 10**12
CAP = 10**13
WORKER = Account.from_key(keccak(text="veil cloud ai billing worker"))
CAPACITY = {"vcpu": 4, "memory_mb": 8192, "disk_gb": 40, "gpu_model": 0, "gpu_count": 0}


class Via(httpx.BaseTransport):
    """The worker's sync client talking to the in-process control plane."""

    def __init__(self, client: Any) -> None:
        self.client = client

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        answer = self.client.request(
            request.method, request.url.path, content=request.read(), headers=request.headers
        )
        return httpx.Response(answer.status_code, headers=answer.headers, content=answer.content)


@pytest.fixture
def world(tmp_path: Path) -> Iterator[dict[str, Any]]:
    env = {**os.environ, "VEIL_HOME": str(tmp_path / "home")}
    for name in ("VEIL_AI_LEASE_ID", "VEIL_AI_MARKET", "VEIL_AI_CHAIN_ID"):
        env.pop(name, None)
    devnet = Devnet(tmp_path / "devnet")
    node = devnet.start(port=free_port())
    backend = None
    runtime = ProcessRuntime(tmp_path / "worker", stop_grace=2)
    kit: CloudKit | None = None
    try:
        chain, path = deploy_funded(node.rpc_url, tmp_path / "deployment.json", "alice", "provider")
        escrow = Escrow(chain)
        backend, llm = start_backend(tmp_path)
        kit = make_kit(f"sqlite:///{tmp_path / 'cloud.sqlite'}", escrow=escrow,
                       operator=devnet_account("dave"))  # fmt: skip
        kit.keys["alice"] = kit.login(devnet_account("alice"))
        yield {"tmp": tmp_path, "env": env, "dep": ["-d", str(path)], "escrow": escrow,
               "kit": kit, "runtime": runtime, "llm": llm,
               "chain_id": chain.w3.eth.chain_id}  # fmt: skip
    finally:
        for deployment_id in runtime.deployments():
            runtime.remove(deployment_id)
        if kit is not None:
            kit.client.close()
            kit.state.engine.dispose()
        if backend is not None:
            backend.terminate()
            backend.wait(timeout=20)
        devnet.stop()


def _open_lease(kit: CloudKit, escrow: Escrow, app_id: str) -> int:
    """alice signs the lease the control plane describes; the control plane submits it."""
    alice = devnet_account("alice")
    rate = escrow.price("tdx.small")
    amount = rate * (2 * 3_600 + int(escrow.market.functions.shutdownWindow().call()))
    asked = kit.client.get(f"/v1/apps/{app_id}/lease-request?amount={amount}",
                           headers=kit.key("alice"))  # fmt: skip
    assert asked.status_code == 200, asked.text
    msg = asked.json()["message"]
    request = OpenLease(msg["customer"], msg["provider"], bytes.fromhex(msg["deployment"][2:]),
                        bytes.fromhex(msg["instanceType"][2:]), int(msg["amount"]),
                        int(msg["maxRate"]), int(msg["deadline"]))  # fmt: skip
    signature = escrow.sign_open(alice.key, request)
    body = {"amount": msg["amount"], "max_rate": msg["maxRate"], "deadline": request.deadline,
            "signature": "0x" + signature.hex()}  # fmt: skip
    escrow.deposit(alice, 10 * PHA)
    opened = kit.client.post(f"/v1/apps/{app_id}/lease", json=body, headers=kit.key("alice"))
    assert opened.status_code == 200, opened.text
    return int(opened.json()["lease_id"], 16)


def _veil(world: dict[str, Any], *args: str) -> dict[str, Any]:
    done = subprocess.run([VEIL, *args], capture_output=True, text=True, env=world["env"],
                          timeout=300, cwd=world["tmp"])  # fmt: skip
    assert done.returncode == 0, f"{args}:\n{done.stdout}\n{done.stderr}"
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


@dataclass
class AiApp:
    """The AI gateway app running on the worker under its lease."""

    loop: AppLoop
    lease_id: int
    url: str
    policy: Path


def _ai_app(world: dict[str, Any]) -> AiApp:
    """alice deploys the gateway through the control plane with only a price in its
    compose, signs its lease, and the worker's app loop starts it."""
    kit, escrow, runtime = world["kit"], world["escrow"], world["runtime"]
    provider = devnet_account("provider")
    loop = AppLoop(
        client=SyncClient("http://testserver", WORKER, transport=Via(kit.client)),
        runtime=runtime,
        source=Simulator(),
        provider=provider.address,
        capacity=CAPACITY,
        interval=0.1,
        # what `veil worker run` builds from its deployment: the gate and what it reads
        lease_gate=LeaseGate(escrow_reader(escrow), provider.address, ttl=0.0,
                             market=escrow.market.address, chain_id=world["chain_id"]),
    )  # fmt: skip
    loop.round(0)  # the worker is known before the deploy places the app
    # the template's shape: the price on the command line (attested), no lease anywhere
    command = [VEIL, "ai", "serve", "--backend", world["llm"], "--tee", "sim",
               "--no-embeddings", "--port", "${PORT:-8080}", "--state-dir", "ai",
               "--price", f"fake-llm={PROMPT_WEI}:{COMPLETION_WEI}"]  # fmt: skip
    compose = json.dumps(
        {
            "services": {
                "gateway": {
                    "image": "ghcr.io/veil-network/veil:0.1.0",
                    "command": command,
                    "ports": ["8080"],
                }
            }
        }
    )
    provisioned = kit.provision("alice", "my-ai", compose=compose, allowed_envs=[])
    assert provisioned.status_code == 200, provisioned.text
    committed = kit.commit("alice", provisioned.json(), env_keys=[])
    assert committed.status_code == 200, committed.text
    app_id = committed.json()["app_id"]
    assert loop.round(0).deployments == 0  # awaiting its lease
    lease_id = _open_lease(kit, escrow, app_id)

    deadline = time.monotonic() + 60
    while True:
        loop.round(0)
        (deployment_id,) = runtime.deployments() or ("",)
        status = runtime.status(deployment_id) if deployment_id else None
        if status is not None and status.state == "running":
            break
        assert status is None or status.state != "failed", status.error
        assert time.monotonic() < deadline, "the AI app did not come up"
        time.sleep(0.2)
    sim = AppSpec()
    policy = world["tmp"] / "policy.toml"
    policy.write_text(
        "allow_simulated = true\n"
        f'allowed_compose_hashes = ["{sim.compose_hash.hex()}"]\n'
        f'[[os_images]]\nname = "sim"\nos_image_hash = "{sim.os_image_hash.hex()}"\n'
    )
    return AiApp(loop, lease_id, f"http://{status.ports['8080']}", policy)


def test_a_cloud_ai_app_bills_its_lease_per_token_with_only_a_price(world: dict[str, Any]):
    escrow = world["escrow"]
    app = _ai_app(world)
    url, policy, lease_id = app.url, app.policy, app.lease_id

    # usage through the official openai package, every answer verified
    transport = VerifyingTransport(url, load_policy(policy))
    client = openai.OpenAI(base_url=url + "/v1", api_key="k", max_retries=0,
                           http_client=httpx.Client(transport=transport))  # fmt: skip
    client.chat.completions.create(
        model="fake-llm", messages=[{"role": "user", "content": "bill my cloud app per token"}]
    )
    (checked,) = transport.checked
    receipt = checked.receipt
    tokens = receipt.prompt_tokens + receipt.completion_tokens
    amount = receipt.prompt_tokens * PROMPT_WEI + receipt.completion_tokens * COMPLETION_WEI

    # alice names the app's attested key as the meter of her lease: the lease the app's
    # vouchers name is the one the control plane opened, which only the worker told it
    authorised = _veil(world, "ai", "meter", url, "--max-token-rate", str(CAP), *world["dep"],
                       "-a", "alice", "--policy", str(policy), "--json")  # fmt: skip
    assert authorised["lease_id"] == f"{lease_id:#066x}"
    assert transport.gateway is not None
    assert authorised["meter"] == transport.gateway.ecdsa_address

    # the provider charges the lease exactly what was metered
    before = escrow.lease(lease_id).balance
    done = _veil(world, "ai", "charge", url, *world["dep"], "-a", "provider", "--json")
    assert done["charged"] is True
    assert (done["tokens"], int(done["amount"])) == (tokens, amount)
    assert escrow.market.functions.meterOf(lease_id).call()[2:] == [tokens, amount, amount]
    assert escrow.lease(lease_id).balance < before - amount + 1


def test_the_worker_keeps_metered_leases_charged_on_its_own(world: dict[str, Any]):
    """What `veil worker run --charge-usage-every` does: the worker charges each metered
    lease from its app's voucher, at most once per interval, without the provider."""
    escrow = world["escrow"]
    app = _ai_app(world)
    provider = devnet_account("provider")
    now = [1_000.0]
    keeper = UsageKeeper(escrow, provider, every=600, clock=lambda: now[0])
    address = app.url.removeprefix("http://")
    assert app.loop.billed_endpoints() == {app.lease_id: [address]}
    assert keeper.charge(app.loop.billed_endpoints) == []  # no meter yet: one read, no send

    _veil(world, "ai", "meter", app.url, "--max-token-rate", str(CAP), *world["dep"],
          "-a", "alice", "--policy", str(app.policy), "--json")  # fmt: skip
    transport = VerifyingTransport(app.url, load_policy(app.policy))
    client = openai.OpenAI(base_url=app.url + "/v1", api_key="k", max_retries=0,
                           http_client=httpx.Client(transport=transport))  # fmt: skip

    def use(text: str) -> tuple[int, int]:
        client.chat.completions.create(
            model="fake-llm", messages=[{"role": "user", "content": text}]
        )
        receipt = transport.checked[-1].receipt
        return receipt.prompt_tokens + receipt.completion_tokens, (
            receipt.prompt_tokens * PROMPT_WEI + receipt.completion_tokens * COMPLETION_WEI
        )

    tokens, amount = use("charge me while I work")
    looks = []

    def endpoints() -> dict[int, list[str]]:
        looks.append(now[0])
        return app.loop.billed_endpoints()

    assert keeper.charge(endpoints) == [] and looks == []  # the apps are looked at each minute
    now[0] += 60
    assert keeper.charge(endpoints) == [] and looks == [1_060.0]  # its turn: every 600 s
    now[0] += 540
    (charged,) = keeper.charge(endpoints)
    assert (charged.lease_id, charged.tokens, charged.amount) == (app.lease_id, tokens, amount)
    assert escrow.market.functions.meterOf(app.lease_id).call()[2:] == [tokens, amount, amount]
    now[0] += 600
    assert keeper.charge(endpoints) == []  # nothing new: nothing sent

    # a port that serves no voucher is passed over for the next one
    more_tokens, more_amount = use("and some more")
    now[0] += 600
    dead = f"127.0.0.1:{free_port()}"
    (charged,) = keeper.charge(lambda: {app.lease_id: [dead, address]})
    assert (charged.tokens, charged.amount) == (more_tokens, more_amount)
    # a gateway metering another lease than the one it runs under is refused
    with pytest.raises(VerificationRefused, match="not lease"):
        charge_voucher(escrow, provider, app.url, app.lease_id + 1)
