"""The network as the chain says it is, for `/metrics` and the console's Network page.

`NetworkWatcher` reads the deployment's contracts in a background thread every
`refresh_seconds` and keeps the last reading; a scrape or a page view only copies it, so a
slow or unreachable RPC never slows either (they show the last good reading and its age).

What it reads:
- workers: the ComputeRegistry has no enumeration, so the watcher follows its events
  incrementally from the registry's deployment block (WorkerRegistered, WorkerReattested,
  WorkerDeregistered); a worker is active while registered and its attestation unexpired
  at the latest block's time (the registry's `isActive` additionally honours provider
  freezes, which the per-worker views would cost one call each to read).
- the vault: total assets, share price (`convertToAssets` of one whole vPHA), and the APR
  observed from the share price's growth over the readings of the last 7 days (None until
  two readings are a minute apart): what stakers actually earned, fees and slashes included.
- the migration: committed (`totalFree + totalStaked`) against claimed.
- escrow: when the deployment has a Market, its leases, followed like the registry (every
  lease event marks its lease, and only marked leases are read again with `lease(id)`);
  each lease's state and runway are then projected to the latest block's time with
  `veil.market.runway`, exactly as the contract would bill, at no RPC cost per lease.
  Exported as counts by state and one runway histogram (bounded cardinality however many
  leases); per-lease runways stay in memory for the control plane's per-app families.
- rewards: when the deployment has a RewardPool, the current and last finalized epoch and
  each recent epoch's budget and provider share (`epochBudget`, `split`); without one the
  section is None (skipped cleanly).
- attesters: per-worker uptime and heartbeats live in the attesters, not on chain, so the
  watcher scrapes each attester's own `/metrics` (the deployment's `attester_urls`, or
  the URLs it is given) and keeps, per attester, the epoch, the workers heard in it and
  how many were heard in the last ten minutes; an attester that does not answer is shown
  down, never blocks the rest of the reading.
"""

from __future__ import annotations

import logging
import threading
import time
import urllib.request
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from prometheus_client.core import GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.parser import text_string_to_metric_families

from veil.chain.client import Chain
from veil.market import runway

log = logging.getLogger("veil.network.metrics")

GPU_MODELS = {0: "CPU_TDX", 1: "H100", 2: "H200", 3: "B200"}
YEAR = 365 * 86400
WEEK = 7 * 86400
#: Recent reward epochs shown and exported.
EPOCHS_SHOWN = 12
#: Blocks per eth_getLogs request while catching up on registry events.
LOG_SPAN = 5000
#: Market events that change a lease's stored fields.
LEASE_EVENTS = ("LeaseOpened", "ToppedUp", "Settled", "BillingStopped", "LeaseClosed")
#: Upper bounds (seconds) of the runway histogram: an hour, six, a day, three, a week, 30 days.
#: Attesters scraped per reading, and the seconds each may take.
MAX_ATTESTERS = 16
ATTESTER_TIMEOUT = 5.0
RUNWAY_BUCKETS = (3600, 6 * 3600, 86400, 3 * 86400, WEEK, 30 * 86400)


@dataclass
class _Worker:
    provider: str
    model: int
    count: int
    expiry: int


@dataclass
class NetworkWatcher:
    """A cached, background-refreshed reading of the deployment's contracts."""

    chain: Chain
    refresh_seconds: float = 30.0
    #: attesters whose /metrics give uptime; None: the deployment's `attester_urls`
    attester_urls: list[str] | None = None
    _workers: dict[str, _Worker] = field(default_factory=dict, init=False)
    _next_block: int | None = field(default=None, init=False)
    _prices: deque[tuple[int, float]] = field(default_factory=deque, init=False)
    _snapshot: dict[str, Any] | None = field(default=None, init=False)
    _leases: dict[int, runway.Lease] = field(default_factory=dict, init=False)
    _closed_leases: int = field(default=0, init=False)
    _next_market_block: int | None = field(default=None, init=False)
    #: lease id -> (state name, runway seconds) at the last reading; replaced, never mutated
    _runways: dict[int, tuple[str, int]] = field(default_factory=dict, init=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False)
    _stop: threading.Event = field(default_factory=threading.Event, init=False)
    _thread: threading.Thread | None = field(default=None, init=False)

    # --- reading ------------------------------------------------------------------

    def _has(self, name: str) -> bool:
        deployment = self.chain.deployment
        return deployment is not None and name in deployment.contracts

    def _follow_registry(self, head: int) -> None:
        registry = self.chain.contract("ComputeRegistry")
        if self._next_block is None:
            assert self.chain.deployment is not None
            self._next_block = self.chain.deployment.contracts["ComputeRegistry"].block
        events = registry.events
        while self._next_block <= head:
            last = min(head, self._next_block + LOG_SPAN - 1)
            span = {"from_block": self._next_block, "to_block": last}
            found: list[tuple[int, int, str, Any]] = []
            for kind in ("WorkerRegistered", "WorkerReattested", "WorkerDeregistered"):
                for entry in getattr(events, kind).get_logs(**span):
                    found.append((entry.blockNumber, entry.logIndex, kind, entry.args))
            for _block, _index, kind, args in sorted(found, key=lambda item: item[:2]):
                if kind == "WorkerRegistered":
                    self._workers[args.worker] = _Worker(
                        args.provider, int(args.gpuModel), int(args.gpuCount), int(args.expiry)
                    )
                elif kind == "WorkerReattested" and args.worker in self._workers:
                    self._workers[args.worker].expiry = int(args.expiry)
                elif kind == "WorkerDeregistered":
                    self._workers.pop(args.worker, None)
            self._next_block = last + 1

    def _workers_view(self, now: int) -> dict[str, Any]:
        models: dict[str, dict[str, int]] = {}
        providers: set[str] = set()
        for worker in self._workers.values():
            name = GPU_MODELS.get(worker.model, f"model_{worker.model}")
            entry = models.setdefault(name, {"active": 0, "total": 0, "gpus": 0})
            entry["total"] += 1
            if worker.expiry > now:
                entry["active"] += 1
                entry["gpus"] += worker.count
            providers.add(worker.provider)
        return {
            "total": sum(m["total"] for m in models.values()),
            "active": sum(m["active"] for m in models.values()),
            "providers": len(providers),
            "by_model": [{"model": k, **v} for k, v in sorted(models.items())],
        }

    def _vault(self, now: int) -> dict[str, Any] | None:
        if not self._has("Vault"):
            return None
        vault = self.chain.contract("Vault").functions
        decimals = int(vault.decimals().call())
        total_assets = int(vault.totalAssets().call())
        total_supply = int(vault.totalSupply().call())
        price = int(vault.convertToAssets(10**decimals).call()) / 10**18
        self._prices.append((now, price))
        while self._prices and self._prices[0][0] < now - WEEK:
            self._prices.popleft()
        apr_bps = None
        then, old = self._prices[0]
        if now - then >= 60 and old > 0:
            apr_bps = round((price / old - 1) * YEAR / (now - then) * 10_000)
        return {
            "total_assets": str(total_assets),
            "total_supply": str(total_supply),
            "share_price": price,
            "apr_bps": apr_bps,
        }

    def _migration(self) -> dict[str, Any] | None:
        if not self._has("Migrator"):
            return None
        migrator = self.chain.contract("Migrator").functions
        committed = int(migrator.totalFree().call()) + int(migrator.totalStaked().call())
        claimed = int(migrator.claimedFree().call()) + int(migrator.claimedStaked().call())
        return {"committed": str(committed), "claimed": str(claimed)}

    def _rewards(self) -> dict[str, Any] | None:
        if not self._has("RewardPool"):
            return None
        pool = self.chain.contract("RewardPool").functions
        current = int(pool.currentEpoch().call())
        finalized = int(pool.lastFinalizedEpoch().call())
        if finalized == 2**256 - 1:  # the pool's "none finalized yet"
            finalized = -1
        epochs = []
        for epoch in range(max(0, current - EPOCHS_SHOWN + 1), current + 1):
            budget = int(pool.epochBudget(epoch).call())
            _treasury, stakers, providers = (int(x) for x in pool.split(budget).call())
            status = (
                "finalized" if epoch <= finalized else "open" if epoch == current else "pending"
            )
            epochs.append(
                {
                    "epoch": epoch,
                    "budget": str(budget),
                    "stakers": str(stakers),
                    "providers": str(providers),
                    "status": status,
                }
            )
        return {"current_epoch": current, "last_finalized_epoch": finalized, "epochs": epochs}

    def _follow_market(self, head: int) -> None:
        market = self.chain.contract("Market")
        if self._next_market_block is None:
            assert self.chain.deployment is not None
            self._next_market_block = self.chain.deployment.contracts["Market"].block
        events = market.events
        while self._next_market_block <= head:
            last = min(head, self._next_market_block + LOG_SPAN - 1)
            span = {"from_block": self._next_market_block, "to_block": last}
            touched: set[int] = set()
            closed: set[int] = set()
            for kind in LEASE_EVENTS:
                for entry in getattr(events, kind).get_logs(**span):
                    (closed if kind == "LeaseClosed" else touched).add(int(entry.args.lease))
            for lease_id in sorted(touched - closed):
                answer = runway.Lease.from_chain(market.functions.lease(lease_id).call())
                if answer.status in (runway.STATUS_BILLING, runway.STATUS_STOPPED):
                    self._leases[lease_id] = answer
            for lease_id in closed:
                self._leases.pop(lease_id, None)
            self._closed_leases += len(closed)
            self._next_market_block = last + 1

    def _escrow(self, head: int, now: int) -> dict[str, Any] | None:
        if not self._has("Market"):
            return None
        self._follow_market(head)
        runways: dict[int, tuple[str, int]] = {}
        counts = {"running": 0, "paused": 0}
        buckets = [0] * len(RUNWAY_BUCKETS)
        held = burn = runway_sum = 0
        for lease_id, lease in self._leases.items():
            left = runway.runway(lease, now)
            name = runway.STATE_NAMES[runway.state(lease, now)]
            runways[lease_id] = (name, left)
            counts[name] = counts.get(name, 0) + 1
            held += runway.project(lease, now).balance
            if name == "running":
                burn += lease.rate
                runway_sum += left
                for i, bound in enumerate(RUNWAY_BUCKETS):
                    if left <= bound:
                        buckets[i] += 1
        self._runways = runways
        return {
            "leases": {**counts, "closed": self._closed_leases},
            "held": str(held),
            "burn_per_second": str(burn),
            "runway_buckets": [[b, n] for b, n in zip(RUNWAY_BUCKETS, buckets, strict=True)],
            "runway_sum": runway_sum,
            "shortest_runway": min(
                (left for name, left in runways.values() if name == "running"), default=None
            ),
        }

    def _attesters(self) -> list[dict[str, Any]] | None:
        urls = self.attester_urls
        if urls is None:
            deployment = self.chain.deployment
            urls = list(deployment.parameters.get("attester_urls", [])) if deployment else []
        if not urls:
            return None
        return [read_attester(url) for url in urls[:MAX_ATTESTERS]]

    def lease_runway(self, lease_id: int) -> tuple[str, int] | None:
        """The lease's state name and runway seconds at the last reading (None: unknown
        or closed), for the control plane's per-app families."""
        return self._runways.get(lease_id)

    def refresh(self) -> dict[str, Any]:
        """One reading of everything; the previous one stays served if this one fails."""
        block = self.chain.w3.eth.get_block("latest")
        head, now = int(block["number"]), int(block["timestamp"])
        self._follow_registry(head)
        snapshot = {
            "chain_id": self.chain.w3.eth.chain_id,
            "block": head,
            "block_time": now,
            "read_at": int(time.time()),
            "workers": self._workers_view(now),
            "vault": self._vault(now),
            "migration": self._migration(),
            "rewards": self._rewards(),
            "escrow": self._escrow(head, now),
            "attesters": self._attesters(),
        }
        with self._lock:
            self._snapshot = snapshot
        return snapshot

    # --- serving ------------------------------------------------------------------

    def snapshot(self) -> dict[str, Any] | None:
        with self._lock:
            return self._snapshot

    def metrics(self) -> Iterable[Metric]:
        """Prometheus families from the last reading (nothing before the first one)."""
        snap = self.snapshot()
        if snap is None:
            return
        workers = GaugeMetricFamily(
            "veil_network_workers",
            "Registered workers by model and status",
            labels=["model", "status"],
        )
        for entry in snap["workers"]["by_model"]:
            workers.add_metric([entry["model"], "active"], entry["active"])
            workers.add_metric([entry["model"], "inactive"], entry["total"] - entry["active"])
        yield workers
        gpus = GaugeMetricFamily("veil_network_gpus", "GPUs on active workers", labels=["model"])
        for entry in snap["workers"]["by_model"]:
            gpus.add_metric([entry["model"]], entry["gpus"])
        yield gpus
        yield GaugeMetricFamily(
            "veil_network_providers", "Providers with a registered worker",
            value=snap["workers"]["providers"],
        )  # fmt: skip
        yield GaugeMetricFamily(
            "veil_network_block", "Block of the last reading", value=snap["block"]
        )
        yield GaugeMetricFamily(
            "veil_network_read_timestamp_seconds", "When the chain was last read",
            value=snap["read_at"],
        )  # fmt: skip
        vault = snap["vault"]
        if vault is not None:
            yield GaugeMetricFamily(
                "veil_vault_total_assets_pha", "PHA staked in the vault",
                value=int(vault["total_assets"]) / 10**18,
            )  # fmt: skip
            yield GaugeMetricFamily(
                "veil_vault_share_price_pha", "PHA per vPHA", value=vault["share_price"]
            )
            if vault["apr_bps"] is not None:
                yield GaugeMetricFamily(
                    "veil_vault_apr_ratio", "Observed staking APR (0.05 = 5%)",
                    value=vault["apr_bps"] / 10_000,
                )  # fmt: skip
        migration = snap["migration"]
        if migration is not None:
            yield GaugeMetricFamily(
                "veil_migration_committed_pha", "Balances committed by the migration root",
                value=int(migration["committed"]) / 10**18,
            )  # fmt: skip
            yield GaugeMetricFamily(
                "veil_migration_claimed_pha", "Balances claimed so far",
                value=int(migration["claimed"]) / 10**18,
            )  # fmt: skip
        rewards = snap["rewards"]
        if rewards is not None:
            yield GaugeMetricFamily(
                "veil_rewards_current_epoch", "Current reward epoch", value=rewards["current_epoch"]
            )
            budget = GaugeMetricFamily(
                "veil_rewards_epoch_budget_pha", "Reward budget per epoch", labels=["epoch", "part"]
            )
            for epoch in rewards["epochs"]:
                for part in ("budget", "stakers", "providers"):
                    budget.add_metric([str(epoch["epoch"]), part], int(epoch[part]) / 10**18)
            yield budget
        escrow = snap.get("escrow")
        if escrow is not None:
            yield from _escrow_families(escrow)
        attesters = snap.get("attesters")
        if attesters:
            yield from _attester_families(attesters)

    # --- the background thread ----------------------------------------------------

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.refresh()
            except Exception as error:  # RPC down or slow: keep the last reading
                log.warning("network metrics: %s", error)
            self._stop.wait(self.refresh_seconds)

    def start(self) -> NetworkWatcher:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="veil-network", daemon=True)
            self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None


def _escrow_families(escrow: dict[str, Any]) -> Iterable[Metric]:
    leases = GaugeMetricFamily(
        "veil_escrow_leases", "Market leases by state (closed: all since the Market was deployed)",
        labels=["state"],
    )  # fmt: skip
    for name in ("running", "paused", "closed"):
        leases.add_metric([name], escrow["leases"].get(name, 0))
    yield leases
    yield GaugeMetricFamily(
        "veil_escrow_held_pha", "PHA held in open leases after billing to the last block",
        value=int(escrow["held"]) / 10**18,
    )  # fmt: skip
    yield GaugeMetricFamily(
        "veil_escrow_burn_pha_per_second", "PHA per second billed by running leases",
        value=int(escrow["burn_per_second"]) / 10**18,
    )  # fmt: skip
    running = escrow["leases"].get("running", 0)
    yield HistogramMetricFamily(
        "veil_escrow_runway_seconds",
        "Seconds until each running lease pauses (one observation per lease)",
        buckets=[(str(float(b)), n) for b, n in escrow["runway_buckets"]] + [("+Inf", running)],
        sum_value=escrow["runway_sum"],
    )


def read_attester(url: str, timeout: float = ATTESTER_TIMEOUT) -> dict[str, Any]:
    """One attester's uptime figures from its /metrics: `up` False (with the error) when it
    does not answer or answers something else, so one bad attester costs one line."""
    entry: dict[str, Any] = {"url": url, "up": False}
    try:
        with urllib.request.urlopen(url.rstrip("/") + "/metrics", timeout=timeout) as answer:
            text = answer.read(4 << 20).decode()
        values: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                values[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
        age = "veil_attester_last_heartbeat_age_seconds"
        refused = sum(
            v for (n, _), v in values.items() if n == "veil_attester_heartbeats_refused_total"
        )
        entry.update(
            up=True,
            epoch=int(values[("veil_attester_epoch", ())]),
            workers_seen=int(values[("veil_attester_workers_seen", ())]),
            workers_known=int(values[(age + "_count", ())]),
            heard_10m=int(values[(age + "_bucket", (("le", "600.0"),))]),
            accepted_total=int(values[("veil_attester_heartbeats_accepted_total", ())]),
            refused_total=int(refused),
        )
    except Exception as error:  # down, slow, not an attester, or before its genesis
        entry["error"] = str(error) or type(error).__name__
    return entry


def _attester_families(attesters: list[dict[str, Any]]) -> Iterable[Metric]:
    up = GaugeMetricFamily(
        "veil_network_attester_up", "1 when the attester's /metrics answered at the last reading",
        labels=["attester"],
    )  # fmt: skip
    seen = GaugeMetricFamily(
        "veil_network_attester_workers_seen",
        "Workers the attester heard in its current epoch", labels=["attester"],
    )  # fmt: skip
    recent = GaugeMetricFamily(
        "veil_network_attester_workers_heard_recently",
        "Workers the attester heard in the last 10 minutes", labels=["attester"],
    )  # fmt: skip
    for entry in attesters:
        up.add_metric([entry["url"]], 1 if entry["up"] else 0)
        if entry["up"]:
            seen.add_metric([entry["url"]], entry["workers_seen"])
            recent.add_metric([entry["url"]], entry["heard_10m"])
    yield from (up, seen, recent)
