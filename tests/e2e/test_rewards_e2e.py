"""One rewards epoch on a devnet, through the CLI: close, publish, finalize, claim, audit.

Three simulated workers of one provider (CPU, H100, H200) heartbeat through an epoch; the
H200 is offline for its second half. Two attesters' logs are written with the real log
writer and real worker signatures, the pool needs both (threshold 2). The report must pay
weight x uptime, the treasury and the vault must receive their parts at finalization, the
provider claims vPHA, and the audit must pass, then fail on a log that holds a heartbeat
the worker never signed.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from veil.attestation.typed_data import DigestSigner, Domain
from veil.chain.client import connect
from veil.compute.attestation import RegistryDomain, WorkerAttestation, sign
from veil.compute.heartbeat import struct_hash
from veil.compute.registry import RegistryClient
from veil.devnet.accounts import devnet_account
from veil.devnet.anvil import Devnet, free_port
from veil.devnet.client import DevnetChain
from veil.devnet.demo import veil_executable
from veil.devnet.network import devnet_parameters, fund_accounts
from veil.network.deploy import deploy_network
from veil.network.genesis import devnet_allowlist
from veil.staking.vault import deposit

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("anvil")]

VEIL = str(veil_executable())
LENGTH = 600
INTERVAL = 60
WINDOW = 120
BUDGET = 1_000 * 10**18
WORKER_KEYS = {"cpu": b"\x0c" * 32, "h100": b"\x01" * 32, "h200": b"\x02" * 32}
MODELS = {"cpu": 0, "h100": 1, "h200": 2}


@dataclass
class Net:
    root: Path
    chain: DevnetChain
    deployment: Path
    clock_start: int
    workers: dict[str, str]

    def veil(self, *args: str, ok: bool = True) -> subprocess.CompletedProcess[str]:
        env = dict(os.environ, VEIL_HOME=str(self.root / "home"))
        done = subprocess.run(
            [VEIL, *args, "--deployment", str(self.deployment)],
            capture_output=True, text=True, timeout=300, env=env,
        )  # fmt: skip
        if ok and done.returncode != 0:
            raise AssertionError(f"veil {' '.join(args)} exited {done.returncode}:\n"
                                 f"{done.stdout}{done.stderr}")  # fmt: skip
        return done


def _as_timelock(chain: DevnetChain, call: Any, label: str) -> None:
    """Send `call` from the timelock: anvil impersonation stands in for a governance round
    (the pool's numbers are governed; this test needs a short epoch and two attesters)."""
    from web3.types import RPCEndpoint

    timelock = chain.deployment.address("Timelock")
    make = chain.w3.provider.make_request
    make(RPCEndpoint("anvil_impersonateAccount"), [timelock])
    make(RPCEndpoint("anvil_setBalance"), [timelock, hex(10**20)])
    try:
        receipt = chain.w3.eth.wait_for_transaction_receipt(call.transact({"from": timelock}))
        assert receipt["status"] == 1, label
    finally:
        make(RPCEndpoint("anvil_stopImpersonatingAccount"), [timelock])


def _govern_pool(chain: DevnetChain) -> None:
    pool = chain.contract("RewardPool")
    _as_timelock(chain, pool.functions.setMinUptimeBps(5_000), "setMinUptimeBps")
    carol = devnet_account("carol").address
    _as_timelock(chain, pool.functions.setAttester(carol, True), "setAttester")
    _as_timelock(chain, pool.functions.setThreshold(2), "setThreshold")


def _register_workers(chain: DevnetChain) -> dict[str, str]:
    registry = RegistryClient.from_chain(chain)
    provider = devnet_account("provider")
    registry.register_provider(provider)
    registry.deposit_collateral(provider, deposit(chain, provider, 20_000 * 10**18))
    images, composes = devnet_allowlist()
    domain = RegistryDomain(chain.w3.eth.chain_id, registry.contract.address)
    out = {}
    for name, key in WORKER_KEYS.items():
        worker = DigestSigner(key).address
        attestation = WorkerAttestation(
            worker, provider.address, bytes(32), bytes(32), images[0], composes[0],
            MODELS[name], 1, 2**40, bytes(32),
        )  # fmt: skip
        signature = sign(attestation, domain, devnet_account("attester").key)
        registry.register_worker(provider, attestation, [signature])
        out[name] = worker
    return out


def write_logs(net: Net, epoch: int, forged: bool = False) -> list[Path]:
    """Both attesters' logs of `epoch`; the H200 is silent for the second half."""
    from veil.compute.heartbeat_log import LogHeader, entry_line, write_log

    chain_id = net.chain.w3.eth.chain_id
    registry = net.chain.deployment.address("ComputeRegistry")
    domain = Domain("veil ComputeRegistry", "1", chain_id, registry)
    start = net.clock_start + epoch * LENGTH
    block = bytes(net.chain.w3.eth.get_block("latest")["hash"])
    lines = []
    for name, key in WORKER_KEYS.items():
        signer = DigestSigner(key)
        raw = bytes.fromhex(signer.address[2:])
        for k in range(LENGTH // INTERVAL):
            if name == "h200" and k >= LENGTH // INTERVAL // 2:
                break
            ts = start + k * INTERVAL + 5
            seq = epoch * 1000 + k + 1
            digest = domain.digest(struct_hash(raw, epoch, seq, ts, block))
            sig = signer.sign(digest).to_bytes()
            if forged and name == "h200" and k == 0:
                sig = DigestSigner(b"\x77" * 32).sign(digest).to_bytes()
            lines.append(entry_line(signer.address, epoch, seq, ts, block, sig, ts + 1))
    paths = []
    for attester in ("attester", "carol"):
        key = DigestSigner(devnet_account(attester).key)
        header = LogHeader(epoch, key.address, chain_id, registry, True)
        tallies = {(net.workers["h200"], "replayed"): 2}
        path = net.root / f"{attester}-{epoch}{'-forged' if forged else ''}.ndjson"
        with open(path, "wb") as out:
            for chunk in write_log(header, key, iter([(b"".join(lines), len(lines))]), tallies):
                out.write(chunk)
        paths.append(path)
    return paths


@pytest.fixture(scope="module")
def net(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Net]:
    root = tmp_path_factory.mktemp("rewards-e2e")
    devnet = Devnet(root / "devnet")
    process = devnet.start(port=free_port())
    try:
        base = DevnetChain(connect(process.rpc_url))
        params = devnet_parameters([devnet_account("attester").address])
        params.os_images, params.compose_hashes = devnet_allowlist()
        genesis = int(base.w3.eth.get_block("latest")["timestamp"]) + 300
        params.reward_genesis_time, params.reward_epoch_length = genesis, LENGTH
        params.reward_challenge_window = WINDOW
        params.reward_initial_budget_pha = BUDGET // 10**18
        accounts = {n: devnet_account(n).address for n in ("provider", "alice")}
        deployed = deploy_network(
            base, devnet_account("deployer"), "devnet", process.rpc_url, params,
            genesis_mints=fund_accounts(accounts),
        )  # fmt: skip
        chain = DevnetChain(base.w3, deployed)
        path = deployed.save(root / "deployment.json")
        _govern_pool(chain)
        workers = _register_workers(chain)
        chain.advance_time(
            genesis + LENGTH + 5 - int(chain.w3.eth.get_block("latest")["timestamp"])
        )
        yield Net(root, chain, path, genesis, workers)
    finally:
        devnet.stop()


def test_epoch_closes_publishes_finalizes_claims_and_audits(net: Net) -> None:
    chain = net.chain
    pool, vault, pha = (chain.contract(n) for n in ("RewardPool", "Vault", "PHA"))
    logs = write_logs(net, 0)
    log_args = [arg for p in logs for arg in ("--log", str(p))]
    net.veil("rewards", "close", "0", *log_args, "--sign", "-a", "attester")
    closed = json.loads(net.veil("rewards", "close", "0", *log_args, "--sign", "-a", "carol",
                                 "--json").stdout)  # fmt: skip
    report = json.loads(Path(closed["report"]).read_bytes())
    rows = {w["model"]: w for w in report["workers"]}
    assert rows["h100"]["uptimeBps"] == 10_000 and rows["cpu"]["uptimeBps"] == 10_000
    assert rows["h200"]["uptimeBps"] == 5_000 and rows["h200"]["eligible"]
    assert rows["h200"]["heartbeats"]["refused"] == {"replayed": 4}
    assert rows["h200"]["heartbeats"]["counted"] == {
        devnet_account("attester").address: 5, devnet_account("carol").address: 5
    }  # fmt: skip
    providers_part = BUDGET * 4_000 // 10_000
    scores = {"cpu": 1_000 * 10_000, "h100": 10_000 * 10_000, "h200": 15_000 * 5_000}
    total_score = sum(scores.values())
    for name, score in scores.items():
        assert int(rows[name]["reward"]) == providers_part * score // total_score
    earned = sum(providers_part * s // total_score for s in scores.values())
    assert report["total"] == str(earned)

    net.veil("rewards", "publish", "0", "-a", "alice")
    status = json.loads(net.veil("rewards", "status", "--json").stdout)
    assert status["nextEpochToPost"] == 1 and status["pending"][0]["total"] == str(earned)

    treasury = pool.functions.treasury().call()
    before_treasury = pha.functions.balanceOf(treasury).call()
    before_vault = pha.functions.balanceOf(vault.address).call()
    refused = net.veil("rewards", "finalize", "0", "-a", "alice", ok=False)
    assert refused.returncode != 0 and "Traceback" not in refused.stderr
    chain.advance_time(WINDOW + 1)
    net.veil("rewards", "finalize", "0", "-a", "alice")
    stakers = BUDGET * 4_000 // 10_000
    assert pha.functions.balanceOf(treasury).call() - before_treasury == BUDGET - stakers - earned
    assert pha.functions.balanceOf(vault.address).call() - before_vault == stakers

    provider = devnet_account("provider").address
    shares_before = vault.functions.balanceOf(provider).call()
    net.veil("rewards", "claim", "--as", "vpha", "-a", "provider")
    received = vault.functions.balanceOf(provider).call() - shares_before
    # deposited at the price of the claim's block (the stream moves it between blocks)
    worth = vault.functions.convertToAssets(received).call()
    assert earned - earned // 10**6 <= worth <= earned
    assert pool.functions.claimed(provider).call() == earned
    again = net.veil("rewards", "claim", "-a", "provider", ok=False)
    assert again.returncode != 0 and "nothing to claim" in again.stdout + again.stderr

    audit = json.loads(net.veil("rewards", "audit", "0", *log_args, "--json",
                                "--report", closed["report"]).stdout)  # fmt: skip
    assert audit["ok"] and audit["heartbeatsChecked"] == 50
    assert audit["root"] == report["root"]

    forged = write_logs(net, 0, forged=True)
    bad = net.veil("rewards", "audit", "0", "--log", str(forged[0]), "--log", str(logs[1]),
                   ok=False)  # fmt: skip
    assert bad.returncode == 1
    assert f"heartbeat {net.workers['h200']} sequence 1 is not signed by the worker" in bad.stdout

    status = net.veil("worker", "status", "--worker", net.workers["h200"], "--json")
    history = json.loads(status.stdout)["rewards"]
    assert history[0]["epoch"] == 0 and history[0]["uptimeBps"] == 5_000
