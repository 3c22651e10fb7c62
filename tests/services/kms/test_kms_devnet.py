"""`veil kms serve` as a real process on a devnet with AppAuth and the registry deployed.

The customer (alice) registers an app in AppAuth with its own key; a worker registered in
the ComputeRegistry (attested by the devnet attester) asks for the app's keys with a real
simulated quote whose RTMR3 log carries the app's compose hash and id. It gets them, and
they open the env alice encrypted to the KMS-signed key. Then the chain changes and the
KMS follows at once: an unlisted compose is refused, a removed hash is refused, a worker
the registry does not know is refused.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from eth_account import Account
from eth_utils import keccak

from veil.chain.client import Chain, connect
from veil.chain.units import WEI_PER_PHA
from veil.cloud.app_auth import AppAuthClient
from veil.cloud.envcrypt import decrypt_env, encrypt_env
from veil.cloud.kms import KmsError, fetch_env_pubkey, request_app_keys
from veil.compute import attestation as att
from veil.compute.quote_source import Simulator
from veil.compute.registry import RegistryClient
from veil.devnet.accounts import devnet_account
from veil.devnet.anvil import Devnet, free_port
from veil.devnet.demo import veil_executable
from veil.devnet.network import devnet_parameters, fund_accounts
from veil.network.deploy import DAY, deploy_network
from veil.network.genesis import devnet_allowlist
from veil.staking.vault import deposit
from veil.tee.simulator import AppSpec

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("anvil")]

VEIL = str(veil_executable())
WORKER = Account.from_key(hashlib.sha256(b"kms devnet worker").digest())
COMPOSE_V1 = hashlib.sha256(b"kms devnet compose v1").digest()
COMPOSE_V2 = hashlib.sha256(b"kms devnet compose v2").digest()


@dataclass
class Net:
    chain: Chain
    kms_url: str
    signer: str
    root_file: Path
    kms_log: Path


def _register_worker(chain: Chain) -> None:
    """Stake, register the provider and a CPU worker, signed by the devnet attester."""
    provider, attester = devnet_account("provider"), devnet_account("attester")
    registry = RegistryClient.from_chain(chain)
    deposit(chain, provider, 2_000 * WEI_PER_PHA)
    registry.register_provider(provider)
    registry.deposit_collateral(provider, registry.required_collateral(att.GpuModel.CPU_TDX, 0))
    images, composes = devnet_allowlist()
    a = att.WorkerAttestation(
        worker=WORKER.address, provider=provider.address, quote_hash=keccak(b"q"),
        measurement_hash=keccak(b"m"), os_image_hash=images[0], compose_hash=composes[0],
        gpu_model=int(att.GpuModel.CPU_TDX), gpu_count=0,
        expiry=registry.chain_time() + 30 * DAY, evidence_hash=keccak(b"e"),
    )  # fmt: skip
    registry.register_worker(provider, a, [att.sign(a, registry.domain(), attester.key)])
    assert registry.worker(WORKER.address).active


@pytest.fixture(scope="module")
def net(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Net]:
    root = tmp_path_factory.mktemp("kms-devnet")
    devnet = Devnet(root / "devnet")
    process = devnet.start(port=free_port())
    kms = None
    try:
        chain = Chain(connect(process.rpc_url))
        params = devnet_parameters([devnet_account("attester").address])
        params.os_images, params.compose_hashes = devnet_allowlist()
        funded = {name: devnet_account(name).address for name in ("provider", "alice")}
        deployment = deploy_network(chain, devnet_account("deployer"), "devnet",
                                    process.rpc_url, params,
                                    genesis_mints=fund_accounts(funded))  # fmt: skip
        path = deployment.save(root / "deployment.json")
        _register_worker(chain)
        port, root_file, log = free_port(), root / "kms-root.hex", root / "kms.log"
        with open(log, "w") as out:
            kms = subprocess.Popen(
                [VEIL, "kms", "serve", "--root-secret-file", str(root_file), "-d", str(path),
                 "--devnet", "--port", str(port)],
                stdout=out, stderr=subprocess.STDOUT,
            )  # fmt: skip
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(url + "/v1/kms/info", timeout=2) as answer:
                    info = json.loads(answer.read())
                break
            except OSError:
                assert kms.poll() is None, log.read_text()
                assert time.monotonic() < deadline, "the KMS did not come up"
                time.sleep(0.2)
        yield Net(chain, url, info["signer"], root_file, log)
    finally:
        if kms is not None:
            kms.terminate()
            kms.wait(timeout=10)
        devnet.stop()


def _source(app_id: str, compose: bytes) -> Simulator:
    return Simulator(AppSpec(compose_hash=compose, app_id=bytes.fromhex(app_id[2:])))


def test_kms_process_says_simulated_and_keeps_its_root_private(net: Net) -> None:
    with urllib.request.urlopen(net.kms_url + "/v1/kms/info", timeout=5) as answer:
        info = json.loads(answer.read())
    assert info["simulated"] is True and info["policy"]["allow_simulated"] is True
    assert info["app_auth"] == net.chain.contract("AppAuth").address
    assert info["registry"] == net.chain.contract("ComputeRegistry").address
    assert stat.S_IMODE(os.stat(net.root_file).st_mode) == 0o600
    out = net.kms_log.read_text()
    assert "SIMULATED KMS" in out and "created root secret" in out


def test_attested_worker_gets_keys_and_chain_changes_take_effect(net: Net) -> None:
    alice = devnet_account("alice")
    auth = AppAuthClient.from_chain(net.chain)
    app_id = auth.allow(alice, "kms-demo", COMPOSE_V1)
    assert auth.owner(app_id) == alice.address

    public = fetch_env_pubkey(net.kms_url, app_id, net.signer)
    sealed = encrypt_env({"API_TOKEN": "only-inside"}, public)
    keys = request_app_keys(net.kms_url, app_id, WORKER, _source(app_id, COMPOSE_V1))
    assert decrypt_env(sealed, keys.env_crypt_key) == {"API_TOKEN": "only-inside"}

    # A quote for a compose the app never allowed.
    with pytest.raises(KmsError) as caught:
        request_app_keys(net.kms_url, app_id, WORKER, _source(app_id, COMPOSE_V2))
    assert caught.value.code == "compose_not_allowed" and caught.value.request_id

    # The owner upgrades (adds v2), then revokes v1: v2 works, v1 is refused at once.
    auth.allow(alice, "kms-demo", COMPOSE_V2)
    auth.remove_compose_hash(alice, app_id, COMPOSE_V1)
    assert request_app_keys(net.kms_url, app_id, WORKER, _source(app_id, COMPOSE_V2)) == keys
    with pytest.raises(KmsError) as caught:
        request_app_keys(net.kms_url, app_id, WORKER, _source(app_id, COMPOSE_V1))
    assert caught.value.code == "compose_not_allowed"

    # A worker the registry does not list gets nothing, even with a valid quote.
    stranger = Account.from_key(hashlib.sha256(b"unregistered worker").digest())
    with pytest.raises(KmsError) as caught:
        request_app_keys(net.kms_url, app_id, stranger, _source(app_id, COMPOSE_V2))
    assert caught.value.code == "worker_not_active"
