"""A cloud app on the devnet through real processes, with the worker's app loop in the middle.

anvil, `veil attester serve`, `veil kms serve --devnet`, `veil cloud serve`, `veil gateway
serve` and `veil worker run --control-plane ... --runtime process` each run as their own
process; alice deploys with `veil cloud deploy -d` (AppAuth allows the compose hash), the
worker gets the keys from the KMS with a quote naming that hash, the app answers through
the gateway with the secret it alone decrypted (HTTP, and WebSocket for a second app that is
then updated to a new compose and deleted); when a second worker has joined and the
first is stopped, the app is rescheduled onto the second and answers again; `veil cloud
delete` removes it from the worker.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import connect as ws_connect

from veil.chain.client import Chain, connect
from veil.devnet.accounts import devnet_account
from veil.devnet.anvil import Devnet, free_port
from veil.devnet.demo import veil_executable
from veil.devnet.network import devnet_parameters, fund_accounts
from veil.network.deploy import deploy_network
from veil.network.genesis import devnet_allowlist, devnet_policy

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "services" / "ai"))
from ai_kit import start_backend

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("anvil")]

VEIL = str(veil_executable())
ECHO_APP = Path(__file__).resolve().parents[1] / "cloud" / "runtime" / "echo_app.py"
WS_APP = Path(__file__).resolve().with_name("ws_app.py")
GATEWAY_TOKEN = "e2e-gateway-token"


def _get(url: str, timeout: float = 5) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as answer:
            return answer.status, answer.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def _wait_up(url: str, process: subprocess.Popen[bytes], log: Path, what: str) -> None:
    deadline = time.monotonic() + 90
    while True:
        try:
            _get(url, timeout=2)
            return
        except OSError:
            assert process.poll() is None, f"{what} exited:\n{log.read_text()[-3000:]}"
            assert time.monotonic() < deadline, f"{what} did not come up"
            time.sleep(0.2)


class Processes:
    """Background processes of the test, each logging to a file, all stopped at the end."""

    def __init__(self, root: Path, env: dict[str, str]) -> None:
        self.root, self.env = root, env
        self.running: list[subprocess.Popen[bytes]] = []

    def start(self, name: str, *args: str) -> tuple[subprocess.Popen[bytes], Path]:
        log = self.root / f"{name}.log"
        with open(log, "wb") as out:
            process = subprocess.Popen([VEIL, *args], stdout=out, stderr=subprocess.STDOUT,
                                       env=self.env)  # fmt: skip
        self.running.append(process)
        return process, log

    def stop(self) -> None:
        for process in reversed(self.running):
            if process.poll() is None:
                process.send_signal(signal.SIGINT)
        for process in reversed(self.running):
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    root = tmp_path_factory.mktemp("cloud-e2e")
    env = {**os.environ, "VEIL_HOME": str(root / "home"), "VEIL_GATEWAY_TOKEN": GATEWAY_TOKEN}
    devnet = Devnet(root / "devnet")
    chain_process = devnet.start(port=free_port())
    processes = Processes(root, env)
    try:
        chain = Chain(connect(chain_process.rpc_url))
        params = devnet_parameters([devnet_account("attester").address])
        params.os_images, params.compose_hashes = devnet_allowlist()
        funded = {name: devnet_account(name).address for name in ("provider", "alice")}
        path = deploy_network(chain, devnet_account("deployer"), "devnet", chain_process.rpc_url,
                              params, genesis_mints=fund_accounts(funded)).save(
            root / "deployment.json")  # fmt: skip
        dep = ["-d", str(path)]
        policy = root / "devnet-policy.toml"
        policy.write_text(devnet_policy())
        ports = {name: free_port() for name in ("attester", "kms", "cloud", "gateway")}
        urls = {name: f"http://127.0.0.1:{port}" for name, port in ports.items()}
        attester, log = processes.start(
            "attester", "attester", "serve", "--policy", str(policy), *dep, "--account",
            "attester", "--port", str(ports["attester"]), "--db", str(root / "attester.sqlite"),
            "--min-heartbeat-interval", "0")  # fmt: skip
        _wait_up(urls["attester"] + "/v1/health", attester, log, "attester")
        kms, log = processes.start(
            "kms", "kms", "serve", "--root-secret-file", str(root / "kms-root.hex"), *dep,
            "--devnet", "--port", str(ports["kms"]))  # fmt: skip
        _wait_up(urls["kms"] + "/v1/kms/info", kms, log, "kms")
        cloud, log = processes.start(
            "cloud", "cloud", "serve", "--db", f"sqlite:///{root / 'cloud.sqlite'}",
            "--port", str(ports["cloud"]), "--kms-url", urls["kms"], *dep,
            "--worker-timeout", "6")  # fmt: skip
        _wait_up(urls["cloud"] + "/openapi.json", cloud, log, "control plane")
        gateway, log = processes.start(
            "gateway", "gateway", "serve", "--control-plane", urls["cloud"],
            "--port", str(ports["gateway"]), "--domain", "apps.localhost")  # fmt: skip
        _wait_up(urls["gateway"] + "/", gateway, log, "gateway")
        provider = devnet_account("provider").address
        stake = [VEIL, "worker", "provider", "--stake", "3000", "-a", "provider", *dep]
        staked = subprocess.run(stake, capture_output=True, text=True, env=env, timeout=300)
        assert staked.returncode == 0, staked.stderr

        def start_worker(name: str) -> tuple[subprocess.Popen[bytes], Path]:
            return processes.start(
                name, "worker", "run", "--provider", provider, "--tee", "sim", "--attester",
                urls["attester"], "--state-dir", str(root / name), "--interval", "5",
                "-a", "provider", *dep, "--control-plane", urls["cloud"], "--runtime", "process",
                "--sync-interval", "0.5")  # fmt: skip

        worker, log = start_worker("worker")
        yield {"root": root, "env": env, "dep": dep, "urls": urls, "worker": worker,
               "worker_log": log, "start_worker": start_worker}  # fmt: skip
    finally:
        processes.stop()
        devnet.stop()


def _veil(world: dict, *args: str) -> subprocess.CompletedProcess[str]:
    done = subprocess.run([VEIL, *args], capture_output=True, text=True, env=world["env"],
                          timeout=300, cwd=world["root"])  # fmt: skip
    assert done.returncode == 0, (
        f"veil {' '.join(args)}:\n{done.stdout}\n{done.stderr}\n"
        + (world["worker_log"].read_text()[-3000:])
    )
    return done


def _synced(process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 120  # registration, then the registry cache's refresh
    while "apps: synced with the control plane" not in log.read_text():
        assert process.poll() is None, log.read_text()[-3000:]
        assert time.monotonic() < deadline, log.read_text()[-3000:]
        time.sleep(0.3)


def _greeting(url: str, expect: bytes, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        status, body = _get(url)
        if (status, body) == (200, expect) or time.monotonic() > deadline:
            break
        time.sleep(0.3)
    assert (status, body) == (200, expect)


def _ws_compose(version: str) -> str:
    return (
        "services:\n  chat:\n    image: python:3.12-slim\n"
        f'    command: ["{sys.executable}", "{WS_APP}"]\n'
        f'    environment:\n      APP_VERSION: "{version}"\n      GREETING: ${{GREETING}}\n'
        '    ports:\n      - "8765"\n'
    )  # fmt: skip


def _ws_hello(url: str, expect: str, timeout: float) -> None:
    """Connect through the gateway until the app greets with EXPECT, then check the echo."""
    deadline = time.monotonic() + timeout
    greeting = None
    while True:
        try:
            with ws_connect(url, open_timeout=5) as socket:
                greeting = socket.recv(timeout=5)
                if greeting == expect:
                    socket.send("ping through the gateway")
                    assert socket.recv(timeout=5) == "echo ping through the gateway"
                    return
        except (OSError, InvalidStatus, ConnectionClosed, TimeoutError):
            pass
        assert time.monotonic() < deadline, f"no {expect!r} at {url} (last: {greeting!r})"
        time.sleep(0.3)


def test_websocket_and_update_through_the_gateway(world: dict):
    """Runs first (the worker it uses is stopped by the reschedule test below)."""
    urls, root = world["urls"], world["root"]
    _synced(world["worker"], world["worker_log"])
    _veil(world, "cloud", "login", "--url", urls["cloud"], "-a", "alice")
    app_dir = root / "chat"
    app_dir.mkdir()
    (app_dir / "compose.yaml").write_text(_ws_compose("1"))
    (app_dir / ".env").write_text("GREETING=ws-secret\n")
    deploy = ["cloud", "deploy", str(app_dir / "compose.yaml"), "--env-file",
              str(app_dir / ".env"), "--name", "chat", "-a", "alice", *world["dep"], "--wait",
              "--timeout", "120"]  # fmt: skip
    first = _veil(world, *deploy, "--json")
    app_id = json.loads(first.stdout.strip().splitlines()[-1])["app_id"]
    ws_url = urls["gateway"].replace("http://", "ws://") + f"/apps/{app_id}/8765/"
    _ws_hello(ws_url, "hello v1 greeting=yes", 30)

    # an update: a new compose under the same name is a new hash on the same app id
    (app_dir / "compose.yaml").write_text(_ws_compose("2"))
    updated = _veil(world, *deploy, "--json")
    assert f"updating chat ({app_id})" in updated.stdout + updated.stderr
    # --wait follows the update itself, not the previous version's "running"
    after = json.loads(updated.stdout.strip().splitlines()[-1])
    before = json.loads(first.stdout.strip().splitlines()[-1])
    assert after["status"] == "running" and after["compose_hash"] != before["compose_hash"]
    _ws_hello(ws_url, "hello v2 greeting=yes", 60)
    listed = json.loads(_veil(world, "cloud", "status", app_id, "--json").stdout)
    assert listed["app_id"].lower() == app_id.lower()

    _veil(world, "cloud", "delete", app_id)
    deadline = time.monotonic() + 30
    while _get(f"{urls['gateway']}/apps/{app_id}/8765/")[0] not in (404, 503):
        assert time.monotonic() < deadline, "the deleted app still answers"
        time.sleep(0.3)


def test_openai_through_the_cloud_gateway_to_the_ai_gateway_as_a_cloud_app(world: dict):
    """Issue 15 on the cloud: `veil ai serve` deployed as an app (process runtime, its port
    from $PORT, its simulated quote claiming the app's compose hash); the official openai
    package, through veil.inference's verifying transport, calls chat (plain and streamed)
    and embeddings through the cloud gateway. The model server is the fake OpenAI backend,
    outside the app: the process runtime has no service network for an `llm` service."""
    import httpx
    import openai

    from veil.inference.transport import VerifyingTransport
    from veil.inference.verify import VerificationRefused
    from veil.tee.policy import OsImage, Policy
    from veil.tee.simulator import AppSpec

    urls, root = world["urls"], world["root"]
    _synced(world["worker"], world["worker_log"])
    _veil(world, "cloud", "login", "--url", urls["cloud"], "-a", "alice")
    backend, llm = start_backend(root)
    try:
        app_dir = root / "ai"
        app_dir.mkdir()
        (app_dir / "compose.yaml").write_text(
            "services:\n  gateway:\n    image: ghcr.io/veil-network/veil:0.1.0\n"
            f'    command: ["{VEIL}", "ai", "serve", "--backend",'
            f' "{llm}", "--tee", "sim",'
            ' "--compose-hash", "${VEIL_COMPOSE_HASH:-}", "--state-dir", "state"]\n'
            "    environment:\n      VEIL_AI_USAGE_TOKEN: ${VEIL_AI_USAGE_TOKEN}\n"
            '    ports:\n      - "8080"\n'
        )  # fmt: skip
        (app_dir / ".env").write_text("VEIL_AI_USAGE_TOKEN=usage-secret\n")
        deployed = _veil(world, "cloud", "deploy", str(app_dir / "compose.yaml"), "--env-file",
                         str(app_dir / ".env"), "--name", "ai", "-a", "alice", *world["dep"],
                         "--wait", "--timeout", "180", "--json")  # fmt: skip
        app = json.loads(deployed.stdout.strip().splitlines()[-1])
        base = f"{urls['gateway']}/apps/{app['app_id']}/8080"
        compose_hash = app["compose_hash"].removeprefix("0x")
        sim_os = OsImage(name="sim", os_image_hash=AppSpec().os_image_hash.hex())
        policy = Policy(allow_simulated=True, allowed_compose_hashes=(compose_hash,),
                        os_images=(sim_os,))  # fmt: skip
        transport = VerifyingTransport(base, policy)
        http = httpx.Client(transport=transport, timeout=60)
        client = openai.OpenAI(base_url=base + "/v1", api_key="k", max_retries=0, http_client=http)
        plain = client.chat.completions.create(
            model="fake-llm", messages=[{"role": "user", "content": "hello from the cloud"}]
        )
        assert plain.choices[0].message.content == "echo: hello from the cloud"
        assert transport.checked[-1].receipt_id == plain.id
        stream = client.chat.completions.create(
            model="fake-llm", messages=[{"role": "user", "content": "one two three"}], stream=True
        )
        text = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
        assert text == "echo: one two three"
        vectors = client.embeddings.create(model="all-MiniLM-L6-v2", input=["a", "b"])
        assert [len(item.embedding) for item in vectors.data] == [384, 384]
        assert len(transport.checked) == 3 and transport.gateway is not None
        assert transport.gateway.simulated
        verdict = transport.gateway.verdict
        assert verdict is not None and verdict.app is not None
        assert verdict.app.compose_hash.removeprefix("0x") == compose_hash
        # a client pinning another compose hash refuses before sending anything
        other = Policy(allow_simulated=True, allowed_compose_hashes=("ab" * 32,),
                       os_images=(sim_os,))  # fmt: skip
        with pytest.raises(VerificationRefused):
            openai.OpenAI(base_url=base + "/v1", api_key="k", max_retries=0,
                          http_client=httpx.Client(transport=VerifyingTransport(base, other))
                          ).models.list()  # fmt: skip
        _veil(world, "cloud", "delete", app["app_id"])
    finally:
        backend.terminate()
        backend.wait(timeout=10)


def test_deploy_reach_reschedule_and_delete_through_real_processes(world: dict):
    urls, root = world["urls"], world["root"]
    _synced(world["worker"], world["worker_log"])
    _veil(world, "cloud", "login", "--url", urls["cloud"], "-a", "alice")
    app_dir = root / "echo"
    app_dir.mkdir()
    (app_dir / "compose.yaml").write_text(
        "services:\n  web:\n    image: python:3.12-slim\n"
        f'    command: ["{sys.executable}", "{ECHO_APP}", "${{PORT:-8080}}"]\n'
        "    environment:\n      GREETING: ${GREETING}\n    ports:\n      - \"8080\"\n"
    )  # fmt: skip
    (app_dir / ".env").write_text("GREETING=only-inside-the-app\n")
    deployed = _veil(world, "cloud", "deploy", str(app_dir / "compose.yaml"), "--env-file",
                     str(app_dir / ".env"), "--name", "echo", "-a", "alice", *world["dep"],
                     "--wait", "--timeout", "120", "--json")  # fmt: skip
    app_id = json.loads(deployed.stdout.strip().splitlines()[-1])["app_id"]
    _greeting(f"{urls['gateway']}/apps/{app_id}/8080/env/GREETING", b"only-inside-the-app", 10)
    status, body = _get(f"{urls['gateway']}/apps/{app_id}/8080/env/VEIL_SIMULATED")
    assert (status, body) == (200, b"1")
    # the running app's quote (from the worker's app loop) verifies for alice
    policy = str(root / "devnet-policy.toml")
    verified = _veil(world, "cloud", "attestation", app_id, "--policy", policy)
    assert "SIMULATED" in verified.stdout + verified.stderr
    # the secret is nowhere on the worker's disk
    for file in root.glob("worker*/**/*"):
        if file.is_file():
            assert b"only-inside-the-app" not in file.read_bytes(), file

    # a second worker joins; the first stops (its apps stop with it): the app moves
    second, second_log = world["start_worker"]("worker2")
    _synced(second, second_log)
    world["worker"].send_signal(signal.SIGINT)
    world["worker"].wait(timeout=30)
    _greeting(f"{urls['gateway']}/apps/{app_id}/8080/env/GREETING", b"only-inside-the-app", 90)
    assert "apps: started" in second_log.read_text()

    _veil(world, "cloud", "delete", app_id)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        status, body = _get(f"{urls['gateway']}/apps/{app_id}/8080/")
        if status in (404, 503):
            break
        time.sleep(0.3)
    assert status in (404, 503), body
    apps_dir = root / "worker2" / "runtime" / "apps"
    while any(apps_dir.glob("*")) and time.monotonic() < deadline:
        time.sleep(0.3)
    assert not any(apps_dir.glob("*")), "the worker kept the deleted app"
