"""A simulated worker joins the devnet through the CLI: provider, attester, run, status.

The chain is deployed as the devnet's genesis does it (the devnet `attester` account is
the only ComputeRegistry attester, threshold 1, and the simulator's default app is
allowlisted); the attester runs as its own `veil attester serve` process.
"""

from __future__ import annotations

import json
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from veil.attestation.client import AttesterClient
from veil.chain.client import Chain, connect
from veil.compute.heartbeat_log import read_log
from veil.devnet.accounts import devnet_account
from veil.devnet.anvil import Devnet, free_port
from veil.devnet.demo import veil_executable
from veil.devnet.network import devnet_parameters, fund_accounts
from veil.network.deploy import deploy_network
from veil.network.genesis import devnet_allowlist, devnet_policy

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("anvil")]

VEIL = str(veil_executable())


@dataclass
class Net:
    root: Path
    deployment: Path
    attester_url: str
    attester_db: Path


def veil(*args: str, ok: bool = True) -> subprocess.CompletedProcess[str]:
    done = subprocess.run([VEIL, *args], capture_output=True, text=True, timeout=300)
    if ok and done.returncode != 0:
        raise AssertionError(f"veil {' '.join(args)} exited {done.returncode}:\n{done.stderr}")
    return done


@pytest.fixture(scope="module")
def net(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Net]:
    root = tmp_path_factory.mktemp("worker-e2e")
    devnet = Devnet(root / "devnet")
    process = devnet.start(port=free_port())
    attester = None
    try:
        chain = Chain(connect(process.rpc_url))
        demo = {name: devnet_account(name).address for name in ("provider", "alice")}
        params = devnet_parameters([devnet_account("attester").address])
        params.os_images, params.compose_hashes = devnet_allowlist()
        deployment = deploy_network(
            chain,
            devnet_account("deployer"),
            "devnet",
            process.rpc_url,
            params,
            genesis_mints=fund_accounts(demo),
        )
        path = deployment.save(root / "deployment.json")
        policy = root / "devnet-policy.toml"
        policy.write_text(devnet_policy())
        port, db = free_port(), root / "attester.sqlite"
        attester = subprocess.Popen(
            [VEIL, "attester", "serve", "--policy", str(policy), "--deployment", str(path),
             "--account", "attester", "--port", str(port), "--db", str(db),
             "--min-heartbeat-interval", "0"],  # keep every beat: the test sends 2 in 0.5 s
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(url + "/v1/health", timeout=2) as answer:
                    assert json.loads(answer.read())["compute"]["allow_simulated"] is True
                break
            except OSError:
                assert attester.poll() is None, "the attester exited"
                assert time.monotonic() < deadline, "the attester did not come up"
                time.sleep(0.2)
        yield Net(root, path, url, db)
    finally:
        if attester is not None:
            attester.terminate()
            attester.wait(timeout=10)
        devnet.stop()


def test_simulated_worker_registers_heartbeats_and_shows_in_status(net: Net) -> None:
    provider = devnet_account("provider").address
    dep = ["--deployment", str(net.deployment)]
    state = net.root / "worker-state"
    out = veil("worker", "provider", "--stake", "1000", "--account", "provider", *dep).stdout
    assert f"registered provider {provider}" in out

    run = veil("worker", "run", "--provider", provider, "--tee", "sim",
               "--attester", net.attester_url, "--state-dir", str(state),
               "--iterations", "2", "--interval", "0.5", "--account", "provider", *dep)  # fmt: skip
    assert "SIMULATED" in run.stdout
    assert "round 1: registered" in run.stdout and "heartbeat #2" in run.stdout, run.stdout

    status = veil("worker", "status", "--state-dir", str(state), "--attester", net.attester_url,
                  *dep).stdout  # fmt: skip
    assert "registered, active" in status and f"provider: {provider}" in status
    assert "model: CPU_TDX x 0" in status and "#2 sent" in status

    shown = json.loads(veil("worker", "status", "--state-dir", str(state), "--json",
                            "--attester", net.attester_url, *dep).stdout)  # fmt: skip
    worker = shown["registry"]["worker"]
    assert shown["registry"]["status"] == "registered" and shown["registry"]["active"] is True
    view = shown["attesters"][net.attester_url]
    assert view["registration"]["evidence_hash"] == shown["registry"]["evidence_hash"]
    assert [b["sequence"] for b in view["heartbeats"]] == [2, 1]

    # the attester's signed per-epoch logs hold both heartbeats, signed by the worker
    logged = []
    for epoch in sorted({b["epoch"] for b in view["heartbeats"]}):
        log = read_log(AttesterClient(net.attester_url).heartbeat_log(epoch))
        assert log.attester == devnet_account("attester").address
        logged += [e.sequence for e in log if e.worker == worker]
    assert logged == [1, 2]

    policy = net.root / "devnet-policy.toml"
    ok = veil("worker", "verify", "--worker", worker, "--attester", net.attester_url,
              "--policy", str(policy), *dep)  # fmt: skip
    assert "re-verification: OK" in ok.stdout
    strict = net.root / "production.toml"
    strict.write_text("# the default policy: no simulated TEEs\n")
    refused = veil("worker", "verify", "--worker", worker, "--attester", net.attester_url,
                   "--policy", str(strict), *dep, ok=False)  # fmt: skip
    assert refused.returncode == 1 and "SIMULATED evidence is refused" in refused.stdout


def test_run_with_a_foreign_provider_key_is_refused(net: Net) -> None:
    done = veil("worker", "run", "--provider", devnet_account("alice").address,
                 "--attester", net.attester_url, "--once", "--account", "provider",
                 "--deployment", str(net.deployment), ok=False)  # fmt: skip
    assert done.returncode != 0 and "error: --provider" in done.stderr
    assert "Traceback" not in done.stderr
