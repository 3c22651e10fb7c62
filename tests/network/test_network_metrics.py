"""NetworkWatcher: registry events folded into workers by model and status, the vault's
observed APR, migration progress, reward epochs; and what /metrics makes of them. The chain
here is a stand-in answering the same calls web3 makes (a devnet run is in tests/e2e)."""

from __future__ import annotations

from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

from prometheus_client.core import Metric

from veil.network.metrics import NetworkWatcher

WEI = 10**18


class Call:
    def __init__(self, value: Any) -> None:
        self.value = value

    def call(self) -> Any:
        return self.value() if callable(self.value) else self.value


@dataclass
class Events:
    logs: dict[str, list[Any]]
    asked: list[tuple[int, int]] = field(default_factory=list)

    def __getattr__(self, kind: str) -> Any:
        def get_logs(from_block: int, to_block: int) -> list[Any]:
            self.asked.append((from_block, to_block))
            return [e for e in self.logs.get(kind, []) if from_block <= e.blockNumber <= to_block]

        return SimpleNamespace(get_logs=get_logs)


def log(block: int, index: int, **args: Any) -> Any:
    return SimpleNamespace(blockNumber=block, logIndex=index, args=SimpleNamespace(**args))


class FakeChain:
    def __init__(self) -> None:
        self.head = {"number": 100, "timestamp": 1_000_000}
        self.assets = 1_000_000 * WEI
        self.price = WEI  # PHA per 10**24 share units
        self.logs: dict[str, list[Any]] = {
            "WorkerRegistered": [
                log(
                    12, 0, worker="0xW1", provider="0xP1", gpuModel=1, gpuCount=8, expiry=2_000_000
                ),
                log(12, 1, worker="0xW2", provider="0xP1", gpuModel=1, gpuCount=8, expiry=900_000),
                log(
                    15, 0, worker="0xW3", provider="0xP2", gpuModel=0, gpuCount=0, expiry=2_000_000
                ),
                log(
                    90, 0, worker="0xW4", provider="0xP3", gpuModel=3, gpuCount=4, expiry=2_000_000
                ),
            ],
            "WorkerReattested": [log(40, 0, worker="0xW2", expiry=3_000_000)],
            "WorkerDeregistered": [log(95, 0, worker="0xW4")],
        }
        self.events = Events(self.logs)
        contracts = {"ComputeRegistry": SimpleNamespace(block=10), "Vault": None, "Migrator": None}
        self.deployment = SimpleNamespace(contracts=contracts, parameters={})
        self.w3 = SimpleNamespace(
            eth=SimpleNamespace(get_block=lambda _tag: dict(self.head), chain_id=31337)
        )

    def contract(self, name: str) -> Any:
        if name == "ComputeRegistry":
            return SimpleNamespace(events=self.events)
        if name == "Vault":
            return SimpleNamespace(functions=SimpleNamespace(
                decimals=lambda: Call(24), totalAssets=lambda: Call(lambda: self.assets),
                totalSupply=lambda: Call(10**30),
                convertToAssets=lambda _s: Call(lambda: self.price),
            ))  # fmt: skip
        if name == "Migrator":
            return SimpleNamespace(functions=SimpleNamespace(
                totalFree=lambda: Call(600 * WEI), totalStaked=lambda: Call(400 * WEI),
                claimedFree=lambda: Call(250 * WEI), claimedStaked=lambda: Call(0),
            ))  # fmt: skip
        if name == "RewardPool":
            return SimpleNamespace(functions=SimpleNamespace(
                currentEpoch=lambda: Call(3), lastFinalizedEpoch=lambda: Call(1),
                epochBudget=lambda e: Call((1000 >> (e // 2)) * WEI),
                split=lambda b: Call((b // 10, b * 3 // 10, b - b // 10 - b * 3 // 10)),
            ))  # fmt: skip
        raise AssertionError(name)


def _samples(families: list[Metric]) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {(s.name, tuple(sorted(s.labels.items()))): s.value for f in families for s in f.samples}


def test_workers_follow_registry_events_incrementally() -> None:
    chain = FakeChain()
    watcher = NetworkWatcher(chain)  # type: ignore[arg-type]
    snap = watcher.refresh()
    workers = snap["workers"]
    # W2 expired at registration but was re-attested; W4 came and went
    assert workers["total"] == 3 and workers["active"] == 3 and workers["providers"] == 2
    assert {m["model"]: (m["active"], m["gpus"]) for m in workers["by_model"]} == {
        "CPU_TDX": (1, 0),
        "H100": (2, 16),
    }
    assert chain.events.asked[0] == (10, 100)
    chain.head = {"number": 130, "timestamp": 2_500_000}  # W1 and W3 expire
    chain.logs["WorkerRegistered"].append(
        log(120, 0, worker="0xW5", provider="0xP4", gpuModel=2, gpuCount=2, expiry=9_000_000)
    )
    snap = watcher.refresh()
    assert chain.events.asked[-1] == (101, 130)  # only the new blocks
    by_model = {m["model"]: (m["active"], m["total"]) for m in snap["workers"]["by_model"]}
    assert by_model == {"CPU_TDX": (0, 1), "H100": (1, 2), "H200": (1, 1)}


def test_vault_apr_is_observed_from_the_share_price() -> None:
    chain = FakeChain()
    watcher = NetworkWatcher(chain)  # type: ignore[arg-type]
    first = watcher.refresh()["vault"]
    assert first["apr_bps"] is None and first["share_price"] == 1.0
    chain.head = {"number": 101, "timestamp": 1_000_000 + 36_500 * 24}  # 10 days later...
    chain.price = WEI * 1001 // 1000  # ...+0.1%
    second = watcher.refresh()["vault"]
    # only the last 7 days of readings count: the first one is older, so one reading left
    assert second["apr_bps"] is None
    chain.head = {"number": 102, "timestamp": 1_000_000 + 36_500 * 24 + 86_400}
    chain.price = WEI * 1002 // 1000
    third = watcher.refresh()["vault"]
    expected = round((1.002 / 1.001 - 1) * 365 * 10_000)
    assert third["apr_bps"] == expected


def test_migration_rewards_and_prometheus_families() -> None:
    chain = FakeChain()
    chain.deployment.contracts["RewardPool"] = None
    watcher = NetworkWatcher(chain)  # type: ignore[arg-type]
    assert list(watcher.metrics()) == []  # nothing before the first reading
    snap = watcher.refresh()
    assert snap["migration"] == {"committed": str(1000 * WEI), "claimed": str(250 * WEI)}
    rewards = snap["rewards"]
    assert rewards["current_epoch"] == 3
    assert [(e["epoch"], e["status"]) for e in rewards["epochs"]] == [
        (0, "finalized"), (1, "finalized"), (2, "pending"), (3, "open"),
    ]  # fmt: skip
    assert rewards["epochs"][2]["budget"] == str(500 * WEI)
    assert rewards["epochs"][2]["providers"] == str(300 * WEI)
    samples = _samples(list(watcher.metrics()))
    assert samples[("veil_network_workers", (("model", "H100"), ("status", "active")))] == 2
    assert samples[("veil_migration_claimed_pha", ())] == 250.0
    assert samples[("veil_migration_committed_pha", ())] == 1000.0
    assert samples[("veil_vault_total_assets_pha", ())] == 1_000_000.0
    key = ("veil_rewards_epoch_budget_pha", (("epoch", "2"), ("part", "providers")))
    assert samples[key] == 300.0


def test_a_deployment_without_reward_pool_or_vault_skips_them() -> None:
    chain = FakeChain()
    del chain.deployment.contracts["Vault"]
    snap = NetworkWatcher(chain).refresh()  # type: ignore[arg-type]
    assert snap["rewards"] is None and snap["vault"] is None


def test_a_failing_rpc_keeps_the_last_reading() -> None:
    chain = FakeChain()
    watcher = NetworkWatcher(chain, refresh_seconds=0.05)  # type: ignore[arg-type]
    good = watcher.refresh()

    def down(_tag: str) -> Any:
        raise ConnectionError("rpc down")

    chain.w3.eth.get_block = down
    watcher.start()
    import time

    time.sleep(0.2)
    watcher.stop()
    assert watcher.snapshot() is good


MILLI = 10**15  # wei per second of a lease at 0.001 PHA/s
CUSTOMER, PROVIDER = "0xC1", "0xP1"


def lease_tuple(rate: int, balance: int, last: int, window: int, status: int) -> tuple:
    return (CUSTOMER, PROVIDER, rate, 0, balance, last, window, status)


class MarketChain(FakeChain):
    """FakeChain plus a Market: lease events and the `lease(id)` view, counting reads."""

    def __init__(self) -> None:
        super().__init__()
        self.deployment.contracts["Market"] = SimpleNamespace(block=10)
        self.leases: dict[int, tuple] = {
            1: lease_tuple(MILLI, 7_200 * MILLI, 999_000, 600, 1),  # pauses at 1_005_600
            2: lease_tuple(MILLI, 1_000 * MILLI, 999_000, 600, 1),  # paused since 999_400
            3: lease_tuple(MILLI, 0, 999_000, 600, 3),  # closed
            4: lease_tuple(2 * MILLI, 400_000 * MILLI, 1_000_000, 600, 1),  # ~2.3 days
        }
        self.market_logs: dict[str, list[Any]] = {
            "LeaseOpened": [log(20, 0, lease=1), log(30, 0, lease=2), log(40, 0, lease=3),
                            log(60, 0, lease=4)],
            "Settled": [log(70, 0, lease=1)],
            "LeaseClosed": [log(50, 0, lease=3)],
        }  # fmt: skip
        self.market_events = Events(self.market_logs)
        self.reads: list[int] = []

    def contract(self, name: str) -> Any:
        if name != "Market":
            return super().contract(name)

        def lease(lease_id: int) -> Call:
            self.reads.append(lease_id)
            return Call(self.leases[lease_id])

        return SimpleNamespace(events=self.market_events, functions=SimpleNamespace(lease=lease))


def test_escrow_leases_runways_and_their_families() -> None:
    chain = MarketChain()
    watcher = NetworkWatcher(chain)  # type: ignore[arg-type]
    escrow = watcher.refresh()["escrow"]
    assert escrow["leases"] == {"running": 2, "paused": 1, "closed": 1}
    assert sorted(chain.reads) == [1, 2, 4]  # the closed lease is never read
    # lease 1: 1000 s billed of 7200; lease 2: all spent; lease 4: nothing billed yet
    assert int(escrow["held"]) == 6_200 * MILLI + 0 + 400_000 * MILLI
    assert int(escrow["burn_per_second"]) == 3 * MILLI  # paused leases burn nothing
    assert escrow["shortest_runway"] == 5_600
    assert watcher.lease_runway(1) == ("running", 5_600)
    assert watcher.lease_runway(2) == ("paused", 0)
    assert watcher.lease_runway(3) is None
    assert watcher.lease_runway(4) == ("running", 200_000 - 600)

    samples = _samples(list(watcher.metrics()))
    assert samples[("veil_escrow_leases", (("state", "running"),))] == 2
    assert samples[("veil_escrow_leases", (("state", "paused"),))] == 1
    assert samples[("veil_escrow_leases", (("state", "closed"),))] == 1
    assert samples[("veil_escrow_burn_pha_per_second", ())] == 0.003
    assert samples[("veil_escrow_held_pha", ())] == 406_200 * MILLI / WEI
    hist = "veil_escrow_runway_seconds_bucket"
    assert samples[(hist, (("le", "3600.0"),))] == 0
    assert samples[(hist, (("le", "21600.0"),))] == 1  # lease 1
    assert samples[(hist, (("le", "86400.0"),))] == 1
    assert samples[(hist, (("le", "259200.0"),))] == 2  # and lease 4
    assert samples[(hist, (("le", "+Inf"),))] == 2
    assert samples[("veil_escrow_runway_seconds_count", ())] == 2
    assert samples[("veil_escrow_runway_seconds_sum", ())] == 5_600 + 199_400

    # later: lease 2 is topped up (billing resumes), lease 1 runs out; only lease 2 is re-read
    chain.reads.clear()
    chain.head = {"number": 130, "timestamp": 1_006_000}
    chain.leases[2] = lease_tuple(MILLI, 86_400 * MILLI, 1_005_900, 600, 1)
    chain.market_logs["ToppedUp"] = [log(120, 0, lease=2)]
    escrow = watcher.refresh()["escrow"]
    assert chain.reads == [2]
    assert chain.market_events.asked[-1] == (101, 130)
    assert escrow["leases"] == {"running": 2, "paused": 1, "closed": 1}
    assert watcher.lease_runway(1) == ("paused", 0)
    assert watcher.lease_runway(2) == ("running", 1_005_900 + 86_400 - 600 - 1_006_000)


def test_a_deployment_without_market_has_no_escrow() -> None:
    chain = FakeChain()
    watcher = NetworkWatcher(chain)  # type: ignore[arg-type]
    assert watcher.refresh()["escrow"] is None
    names = {f.name for f in watcher.metrics()}
    assert not any(name.startswith("veil_escrow") for name in names)
    assert watcher.lease_runway(1) is None


def test_no_finalized_epoch_is_not_a_huge_one() -> None:
    chain = FakeChain()
    chain.deployment.contracts["RewardPool"] = None
    pool = chain.contract("RewardPool").functions
    pool.lastFinalizedEpoch = lambda: Call(2**256 - 1)  # the pool's "none yet"
    chain.contract = lambda name, base=chain.contract: (  # type: ignore[method-assign]
        SimpleNamespace(functions=pool) if name == "RewardPool" else base(name)
    )
    rewards = NetworkWatcher(chain).refresh()["rewards"]  # type: ignore[arg-type]
    assert rewards["last_finalized_epoch"] == -1
    assert [e["status"] for e in rewards["epochs"]] == ["pending", "pending", "pending", "open"]
