"""The network watcher against a real devnet: a deployed network read from the chain, a
deposit moving the vault, and the control plane serving it on /v1/network and /metrics."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from veil.chain.client import Chain, connect
from veil.devnet.accounts import devnet_account
from veil.devnet.anvil import Devnet, free_port
from veil.devnet.network import devnet_parameters, fund_accounts
from veil.network.deploy import deploy_network
from veil.network.metrics import NetworkWatcher
from veil.services.cloud.app import create_app
from veil.services.cloud.service import CloudConfig

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("anvil")]
WEI = 10**18


@pytest.fixture(scope="module")
def chain(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Chain]:
    root = tmp_path_factory.mktemp("network-metrics")
    devnet = Devnet(root / "devnet")
    process = devnet.start(port=free_port())
    try:
        chain = Chain(connect(process.rpc_url))
        alice = devnet_account("alice")
        params = devnet_parameters([devnet_account("attester").address])
        deployment = deploy_network(
            chain, devnet_account("deployer"), "devnet", process.rpc_url, params,
            genesis_mints=fund_accounts({"alice": alice.address}),
        )  # fmt: skip
        yield Chain.open(deployment)
    finally:
        devnet.stop()


def test_watcher_reads_the_deployed_network(chain: Chain, tmp_path: Path) -> None:
    watcher = NetworkWatcher(chain)
    first = watcher.refresh()
    assert first["workers"] == {"total": 0, "active": 0, "providers": 0, "by_model": []}
    rewards = first["rewards"]  # nothing finalized yet: the pool's sentinel is not an epoch
    assert rewards["current_epoch"] == 0 and rewards["last_finalized_epoch"] == -1
    assert [e["status"] for e in rewards["epochs"]] == ["open"]
    assert first["migration"] == {"committed": "0", "claimed": "0"}
    assets = int(first["vault"]["total_assets"])
    alice = devnet_account("alice")
    amount = 5_000 * WEI
    chain.send(alice, chain.contract("PHA").functions.approve(chain.contract("Vault").address,
               amount), "approve")  # fmt: skip
    chain.send(alice, chain.contract("Vault").functions.deposit(amount, alice.address), "deposit")
    second = watcher.refresh()
    assert int(second["vault"]["total_assets"]) >= assets + amount
    assert second["block"] > first["block"] and second["vault"]["share_price"] >= 1.0

    config = CloudConfig(
        db_url=f"sqlite:///{tmp_path / 'cloud.sqlite'}", run_scheduler=False, network=watcher
    )
    with TestClient(create_app(config)) as client:
        view = client.get("/v1/network").json()
        assert view["chain"]["block"] == second["block"]
        scrape = client.get("/metrics").text
    samples = {s.name: s.value for f in text_string_to_metric_families(scrape) for s in f.samples}
    assert samples["veil_vault_total_assets_pha"] == int(second["vault"]["total_assets"]) / WEI
    assert samples["veil_migration_committed_pha"] == 0
    assert samples["veil_network_block"] >= second["block"]
    watcher.stop()


def test_watcher_follows_market_leases_and_their_runway(chain: Chain) -> None:
    """A real lease: opened, read through the Market's events and `lease(id)`, its runway
    projected exactly as the escrow client (and the contract) computes it; closed, gone."""
    from veil.market.escrow import Escrow

    escrow = Escrow(chain)
    alice, provider = devnet_account("alice"), devnet_account("bob")
    escrow.deposit(alice, 50 * WEI)
    lease_id = escrow.open_lease(alice, provider.address, b"\x42" * 32, "tdx.small", 10 * WEI)
    watcher = NetworkWatcher(chain)
    snap = watcher.refresh()
    billing = escrow.billing(lease_id)  # at the same latest block
    assert snap["escrow"]["leases"] == {"running": 1, "paused": 0, "closed": 0}
    assert watcher.lease_runway(lease_id) == ("running", billing.runway_seconds)
    assert snap["escrow"]["shortest_runway"] == billing.runway_seconds
    assert int(snap["escrow"]["burn_per_second"]) == billing.rate
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for f in watcher.metrics()
        for s in f.samples
    }
    assert samples[("veil_escrow_leases", (("state", "running"),))] == 1
    assert samples[("veil_escrow_runway_seconds_count", ())] == 1
    assert samples[("veil_escrow_runway_seconds_sum", ())] == billing.runway_seconds
    escrow.close(alice, lease_id)
    snap = watcher.refresh()
    assert snap["escrow"]["leases"] == {"running": 0, "paused": 0, "closed": 1}
    assert watcher.lease_runway(lease_id) is None
