"""Billing end to end on a devnet with the network deployed (Market included), on SQLite
and PostgreSQL: a deploy waits for its lease, the customer signs the lease the control
plane describes and the control plane submits it, the worker's app loop runs the app only
while the lease runs on the chain (it stops the app when the runway ends and starts it
again after a top-up, whatever the control plane says), the watcher sends signed
webhooks and retries them, the statement agrees with the chain; bad input is refused."""

from __future__ import annotations

import csv
import io
import json
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from cloud_kit import CloudKit, make_kit
from eth_account import Account
from eth_utils import keccak
from typer.testing import CliRunner

from server_thread import ServerThread
from veil.chain.client import connect
from veil.cli import cloud as cloud_cli
from veil.cloud.agent import AppLoop, SyncClient
from veil.cloud.lease_gate import LeaseGate, escrow_reader
from veil.cloud.runtime.process import ProcessRuntime
from veil.compute.quote_source import Simulator
from veil.devnet.accounts import devnet_account
from veil.devnet.anvil import Devnet, free_port
from veil.devnet.client import DevnetChain
from veil.devnet.network import devnet_parameters, fund_accounts
from veil.market import webhooks
from veil.market.escrow import Escrow
from veil.market.typed_data import OpenLease
from veil.network.deploy import deploy_network
from veil.services.cloud.billing import BillingWatcher

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "cloud" / "runtime"))
from runtime_kit import echo_compose

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("billing-anvil")]

PHA = 10**18
WORKER = Account.from_key(keccak(text="veil billing test worker"))
CAPACITY = {"vcpu": 4, "memory_mb": 8192, "disk_gb": 40, "gpu_model": 0, "gpu_count": 0}


@pytest.fixture(scope="module")
def escrow(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Escrow]:
    devnet = Devnet(Path(tmp_path_factory.mktemp("billing-devnet")))
    process = devnet.start(port=free_port())
    try:
        chain = DevnetChain(connect(process.rpc_url))
        accounts = {n: devnet_account(n).address for n in ("alice", "bob", "provider")}
        deploy_network(
            chain,
            devnet_account("deployer"),
            "billing-test",
            process.rpc_url,
            devnet_parameters([]),
            genesis_mints=fund_accounts(accounts, 10_000),
        )
        yield Escrow(chain)
    finally:
        devnet.stop()


class Via(httpx.BaseTransport):
    """The worker's sync client talking to the in-process control plane."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self.down = False

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if self.down:
            raise httpx.ConnectError("control plane down (test)")
        answer = self.client.request(
            request.method, request.url.path, content=request.read(), headers=request.headers
        )
        return httpx.Response(answer.status_code, headers=answer.headers, content=answer.content)


class Receiver:
    """A webhook endpoint that fails its first `failures` posts, then accepts."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.posts: list[tuple[str, bytes, dict[str, str]]] = []

    def __call__(self, url: str, body: bytes, headers: dict[str, str]) -> int:
        self.posts.append((url, body, headers))
        if self.failures > 0:
            self.failures -= 1
            return 503
        return 200


@pytest.fixture
def billed(db_url: str, escrow: Escrow) -> Iterator[tuple[CloudKit, Receiver]]:
    receiver = Receiver(failures=1)
    kit = make_kit(db_url, escrow=escrow, operator=devnet_account("dave"), webhook_post=receiver)
    for name in ("alice", "bob"):
        kit.keys[name] = kit.login(devnet_account(name))
    try:
        yield kit, receiver
    finally:
        kit.client.close()
        kit.state.engine.dispose()


def _sign_lease(kit: CloudKit, escrow: Escrow, who: str, app_id: str, amount: int) -> Any:
    req = kit.client.get(f"/v1/apps/{app_id}/lease-request?amount={amount}", headers=kit.key(who))
    assert req.status_code == 200, req.text
    msg = req.json()["message"]
    request = OpenLease(
        msg["customer"],
        msg["provider"],
        bytes.fromhex(msg["deployment"][2:]),
        bytes.fromhex(msg["instanceType"][2:]),
        int(msg["amount"]),
        int(msg["maxRate"]),
        int(msg["deadline"]),
    )
    signature = escrow.sign_open(devnet_account(who).key, request)
    body = {
        "amount": msg["amount"],
        "max_rate": msg["maxRate"],
        "deadline": request.deadline,
        "signature": "0x" + signature.hex(),
    }
    return req.json(), body


def _until(loop: AppLoop, kit: CloudKit, app_id: str, state: str, who: str = "alice") -> dict:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        loop.round(0)
        entry = kit.client.get(f"/v1/apps/{app_id}", headers=kit.key(who)).json()
        if entry["status"] == state:
            return dict(entry)
        time.sleep(0.1)
    raise AssertionError(f"app {app_id} never {state}: {entry}")


def test_lease_gates_the_app_from_the_chain(
    billed: tuple[CloudKit, Receiver], escrow: Escrow, tmp_path: Path
) -> None:
    kit, receiver = billed
    chain = escrow.chain
    assert isinstance(chain, DevnetChain)
    alice, provider = devnet_account("alice"), devnet_account("provider")
    left = escrow.free_balance(alice.address)  # the devnet is shared by the db variants
    if left:
        escrow.withdraw(alice, left)
    hook = kit.client.post(
        "/v1/webhooks", json={"url": "https://alice.example/hook"}, headers=kit.key("alice")
    )
    assert hook.status_code == 200, hook.text
    secret = hook.json()["secret"].encode()
    assert "secret" not in kit.client.get("/v1/webhooks", headers=kit.key("alice")).json()[0]

    runtime = ProcessRuntime(tmp_path / "state", stop_grace=2)
    via = Via(kit.client)
    loop = AppLoop(
        client=SyncClient("http://testserver", WORKER, transport=via),
        runtime=runtime,
        source=Simulator(),
        provider=provider.address,
        capacity=CAPACITY,
        interval=0.1,
        lease_gate=LeaseGate(escrow_reader(escrow), provider.address, ttl=0.0),
    )
    try:
        loop.round(0)  # the worker is known (and online) before the deploy places the app
        provisioned = kit.provision(
            "alice", "billed", compose=echo_compose(), allowed_envs=[], instance_type="tdx.small"
        )
        assert provisioned.status_code == 200, provisioned.text
        committed = kit.commit("alice", provisioned.json(), env_keys=[])
        assert committed.status_code == 200, committed.text
        app_id = committed.json()["app_id"]

        # placed, but no lease yet: the worker is not given the app
        outcome = loop.round(0)
        assert outcome.deployments == 0
        status = kit.client.get(f"/v1/apps/{app_id}/billing", headers=kit.key("alice")).json()
        assert status["billed"] is False and "awaiting_lease" in status["reason"]

        rate = escrow.price("tdx.small")
        window = int(escrow.market.functions.shutdownWindow().call())
        amount = rate * (2 * 3_600 + window)  # two hours of runway
        described, body = _sign_lease(kit, escrow, "alice", app_id, amount)
        assert described["message"]["provider"] == provider.address
        assert described["price_wei_per_second"] == str(rate)

        # the escrow is empty: refused with how much is missing
        short = kit.client.post(f"/v1/apps/{app_id}/lease", json=body, headers=kit.key("alice"))
        assert short.status_code == 402 and str(amount) in short.json()["message"]
        escrow.deposit(alice, 10 * PHA)

        # a signature by another key over the same request is refused before the chain
        forged = dict(body)
        forged["signature"] = (
            "0x"
            + escrow.sign_open(
                devnet_account("bob").key,
                OpenLease(
                    alice.address,
                    provider.address,
                    bytes.fromhex(described["message"]["deployment"][2:]),
                    bytes.fromhex(described["message"]["instanceType"][2:]),
                    amount,
                    rate,
                    body["deadline"],
                ),
            ).hex()
        )
        refused = kit.client.post(f"/v1/apps/{app_id}/lease", json=forged, headers=kit.key("alice"))
        assert refused.status_code == 400 and refused.json()["code"] == "bad_signature"

        opened = kit.client.post(f"/v1/apps/{app_id}/lease", json=body, headers=kit.key("alice"))
        assert opened.status_code == 200, opened.text
        figures = opened.json()
        assert figures["billed"] and figures["state"] == "running"
        assert figures["rate_wei_per_second"] == str(rate)
        lease_id = int(figures["lease_id"], 16)
        assert lease_id == escrow.lease_id(alice.address, described["message"]["deployment"])
        assert escrow.free_balance(alice.address) == 10 * PHA - amount
        again = kit.client.post(f"/v1/apps/{app_id}/lease", json=body, headers=kit.key("alice"))
        assert again.status_code == 409

        # bob cannot see, bill or sign for alice's app
        for path in ("billing", f"lease-request?amount={amount}"):
            other = kit.client.get(f"/v1/apps/{app_id}/{path}", headers=kit.key("bob"))
            assert other.status_code == 404 and other.json()["code"] == "app_not_found"

        running = _until(loop, kit, app_id, "running")
        deployment_id = running["deployment_id"]
        watcher = BillingWatcher(kit.state)
        # first look: 2 h of runway is under the 24 h threshold -> one low-balance event
        assert watcher.tick()["events"] == 1
        assert watcher.tick()["events"] == 0  # once per crossing, not on every pass

        # an hour and a bit later: below 1 h of runway -> low balance again
        chain.advance_time(3_600 + 60)
        assert watcher.tick()["events"] == 1
        bill = kit.client.get(f"/v1/apps/{app_id}/billing", headers=kit.key("alice")).json()
        assert 0 < bill["runway_seconds"] < 3_600
        assert int(bill["cost_so_far_wei"]) >= (3_600 + 60) * rate

        # runway spent: the worker stops the app on its own reading of the chain, while
        # the control plane still wants it running, and even while it cannot reach it
        chain.advance_time(3_600)
        via.down = True
        held = loop.round(0)
        assert held.errors and held.held == [deployment_id] and held.stopped == [deployment_id]
        assert runtime.status(deployment_id).state == "stopped"
        via.down = False
        stopped = _until(loop, kit, app_id, "stopped")
        assert stopped["desired"] == "running"
        assert "paused on the chain" in stopped["status_reason"] + stopped["error"]
        assert runtime.status(deployment_id).state == "stopped"  # disk kept: still held
        watcher.tick()

        # the customer tops up: the lease resumes and the worker starts the app again
        escrow.top_up(alice, lease_id, rate * 3 * 3_600)
        _until(loop, kit, app_id, "running")
        watcher.tick()
        kit.clock.advance(1)
        for _ in range(3):  # failed first attempts are retried after their backoff
            kit.clock.advance(4)
            watcher.tick()

        deliveries = kit.client.get("/v1/webhooks/deliveries", headers=kit.key("alice")).json()
        kinds = sorted(d["type"] for d in deliveries)
        # 24 h and 1 h warnings, the pause, the resume (with a 24 h warning: still short)
        assert kinds == sorted([webhooks.LOW_BALANCE] * 3 + [webhooks.PAUSED, webhooks.RESUMED]), (
            kinds
        )
        assert all(d["status"] == "delivered" for d in deliveries), deliveries
        assert max(d["attempts"] for d in deliveries) == 2  # the receiver's 503 was retried
        for _url, raw, headers in receiver.posts:
            webhooks.verify(secret, raw, headers["Veil-Signature"], now=int(kit.clock()))
            event = json.loads(raw)
            assert event["data"]["lease_id"] == figures["lease_id"]
            assert event["data"]["app_id"] == app_id

        # the customer closes (what `veil cloud delete -d` does): refund at once, the
        # worker drops the app, the watcher reports the close
        refund = escrow.close(alice, lease_id)
        assert refund > 0
        _until(loop, kit, app_id, "stopped")
        watcher.tick()
        closed = kit.client.get("/v1/webhooks/deliveries", headers=kit.key("alice")).json()
        assert webhooks.CLOSED in {d["type"] for d in closed}

        # the statement: the seconds billed, as JSON and CSV, from the chain's events
        month = time.strftime("%Y-%m", time.gmtime(escrow.now()))
        doc = kit.client.get(
            f"/v1/billing/statement?month={month}", headers=kit.key("alice")
        ).json()
        mine = [row for row in doc["leases"] if int(row["lease"], 16) == lease_id]
        assert len(mine) == 1 and int(mine[0]["amount_wei"]) == mine[0]["seconds"] * rate
        assert mine[0]["seconds"] >= 2 * 3_600
        text = kit.client.get(
            f"/v1/billing/statement?month={month}&format=csv", headers=kit.key("alice")
        )
        assert text.headers["content-type"].startswith("text/csv")
        rows = list(csv.DictReader(io.StringIO(text.text)))
        assert (
            sum(int(r["seconds"]) for r in rows if int(r["lease"], 16) == lease_id)
            == (mine[0]["seconds"])
        )
        bad = kit.client.get("/v1/billing/statement?month=2026-13", headers=kit.key("alice"))
        assert bad.status_code == 400 and bad.json()["code"] == "invalid_month"
    finally:
        for deployment_id in runtime.deployments():
            runtime.remove(deployment_id)


def test_a_lease_the_chain_does_not_know_is_a_409_not_a_crash(
    billed: tuple[CloudKit, Receiver], escrow: Escrow
) -> None:
    """The database remembers a lease the market has never seen (a control plane kept
    across a devnet reset, as a second `veil demo` did): the billing route says so."""
    from veil.services.cloud.models import Lease

    kit, _ = billed
    worker = Account.from_key(keccak(text="orphan lease worker"))
    assert kit.sync(worker).status_code == 200
    app = kit.deploy("alice")
    ghost = "0x" + keccak(text="a lease of another chain").hex()
    with kit.state.sessions() as session:
        owner = devnet_account("alice").address
        session.add(Lease(lease_id=ghost, app_id=app["app_id"], owner=owner,
                          provider=worker.address, deployment_key="k", instance_type="tdx.small",
                          rate="1", amount="1", tx="0x", opened_at=0))  # fmt: skip
        session.commit()
    answer = kit.client.get(f"/v1/apps/{app['app_id']}/billing", headers=kit.key("alice"))
    assert answer.status_code == 409, answer.text
    body = answer.json()
    assert body["code"] == "lease_not_on_chain" and "no such lease" in body["message"]
    assert body["request_id"]


def test_unbilled_control_plane_says_so(db_url: str) -> None:
    kit = make_kit(db_url)
    try:
        worker = Account.from_key(keccak(text="unbilled worker"))
        assert kit.sync(worker).status_code == 200
        app = kit.deploy("alice")
        status = kit.client.get(f"/v1/apps/{app['app_id']}/billing", headers=kit.key("alice"))
        assert status.json()["billed"] is False
        assert "no market" in status.json()["reason"]
        listed = kit.sync(worker).json()["deployments"]
        assert [d["lease_id"] for d in listed] == [""]  # runs, unbilled
        statement = kit.client.get("/v1/billing/statement?month=2026-11", headers=kit.key("alice"))
        assert statement.status_code == 404 and statement.json()["code"] == "billing_disabled"
        hook = kit.client.post("/v1/webhooks", json={"url": "ftp://x"}, headers=kit.key("alice"))
        assert hook.status_code in (400, 422)
    finally:
        kit.client.close()
        kit.state.engine.dispose()


@pytest.fixture
def live_billed(tmp_path: Path, escrow: Escrow) -> Iterator[tuple[CloudKit, str]]:
    kit = make_kit(
        f"sqlite:///{tmp_path / 'cloud.sqlite'}", escrow=escrow, operator=devnet_account("dave")
    )
    server = ServerThread(kit.client.app)
    try:
        yield kit, server.url
    finally:
        server.close()
        kit.client.close()
        kit.state.engine.dispose()


def _veil(home: Path, *args: str) -> Any:
    return CliRunner().invoke(
        cloud_cli.app, list(args), env={"VEIL_HOME": str(home), "COLUMNS": "200"}
    )


def _refused(result: Any, text: str) -> bool:
    """Non-zero exit with `text` in the one line `veil` prints for a VeilError."""
    said = result.output + (str(result.exception) if result.exception else "")
    return result.exit_code != 0 and text in said


def test_cli_deploy_signs_the_lease_topup_statement_delete_refunds(
    live_billed: tuple[CloudKit, str], escrow: Escrow, tmp_path: Path
) -> None:
    kit, url = live_billed
    home = tmp_path / "home"
    record = escrow.chain.deployment.save(tmp_path / "devnet.json")  # type: ignore[union-attr]
    carol = devnet_account("carol")
    mint = escrow.token.functions.transfer(carol.address, 50 * PHA)
    escrow.chain.send(devnet_account("bob"), mint, "fund carol")
    provider = devnet_account("provider").address
    kit.sync(WORKER, provider=provider)
    assert _veil(home, "login", "--url", url, "-a", "carol").exit_code == 0
    app_dir = tmp_path / "paid"
    app_dir.mkdir()
    (app_dir / "compose.yaml").write_text(echo_compose())
    chain = ("-d", str(record), "-a", "carol")

    # without -d the deploy cannot sign the lease: one clear line, non-zero exit
    unsigned = _veil(home, "deploy", str(app_dir / "compose.yaml"))
    assert _refused(unsigned, "pass -d DEPLOYMENT")

    deployed = _veil(home, "deploy", str(app_dir / "compose.yaml"), "--fund", "2", *chain)
    assert deployed.exit_code == 0, deployed.output
    assert "depositing 2" in deployed.output  # the empty escrow was said and filled
    assert "billing: lease 0x" in deployed.output
    shown = _veil(home, "billing", "paid", "--json")
    figures = json.loads(shown.output)
    assert figures["billed"] and figures["state"] == "running"
    lease_id = int(figures["lease_id"], 16)
    assert escrow.lease(lease_id).customer == carol.address
    assert [d["lease_id"] for d in kit.sync(WORKER, provider=provider).json()["deployments"]] == [
        figures["lease_id"]
    ]

    no_allowance = _veil(home, "topup", "1", "--from-allowance", *chain)
    assert _refused(no_allowance, "allowance to the market is 0")
    before = escrow.lease(lease_id).balance
    topped = _veil(home, "topup", "1", "--app", "paid", *chain)
    assert topped.exit_code == 0, topped.output
    assert escrow.lease(lease_id).balance > before
    too_much = _veil(home, "topup", "1000000", *chain)
    assert _refused(too_much, "short of")

    month = time.strftime("%Y-%m", time.gmtime(escrow.now()))
    out = tmp_path / "statement.csv"
    written = _veil(home, "statement", month, "--csv", "-o", str(out))
    assert written.exit_code == 0, written.output
    assert out.read_text().startswith("lease,")
    bad = _veil(home, "statement", "November")
    assert _refused(bad, "expected YYYY-MM")

    wallet = int(escrow.token.functions.balanceOf(carol.address).call())
    deleted = _veil(home, "delete", "paid", *chain)
    assert deleted.exit_code == 0, deleted.output
    assert "closed:" in deleted.output and "refunded" in deleted.output
    assert escrow.state(lease_id) == 3  # closed
    assert int(escrow.token.functions.balanceOf(carol.address).call()) > wallet

    # the provider collects from every lease it has (the other tests' too) in one go
    wallet = int(escrow.token.functions.balanceOf(provider).call())
    shown = _veil(home, "earnings", "-d", str(record), "-a", "provider", "--json")
    assert shown.exit_code == 0, shown.output
    open_leases = json.loads(shown.output)["leases"]
    collected = _veil(home, "earnings", "--withdraw", "-d", str(record), "-a", "provider")
    assert collected.exit_code == 0, collected.output
    assert f"from {len(open_leases)} lease(s) in one tx" in collected.output
    assert int(escrow.token.functions.balanceOf(provider).call()) > wallet
    assert escrow.earnings(provider) == (0, 0)
    nothing = _veil(home, "earnings", "--withdraw", "-d", str(record), "-a", "bob")
    assert _refused(nothing, "nothing to withdraw")
