"""Telemetry in, logs and metrics out, /metrics: against the real control plane app."""

from __future__ import annotations

import asyncio
import time

from cloud_kit import CloudKit, account, parse_sse
from monitor_kit import app_entry, ship
from prometheus_client.parser import text_string_to_metric_families

from veil.services.cloud.monitoring import Hub


def now_ms() -> int:
    return int(time.time() * 1000)


def _running_app(cloud: CloudKit, who: str = "alice", name: str = "web") -> dict:
    worker = account("w1")
    cloud.sync(worker)
    app = cloud.deploy(who, name=name)
    assert app["worker"] == worker.address
    return app


def _log_batches(cloud: CloudKit, app_id: str, who: str = "alice", **params) -> list[dict]:
    headers = dict(cloud.key(who))
    if "last" in params:
        headers["Last-Event-ID"] = str(params.pop("last"))
    answer = cloud.client.get(f"/v1/apps/{app_id}/logs", params=params, headers=headers)
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("text/event-stream")
    return parse_sse(answer.text)


def _lines(batches: list[dict]) -> list[str]:
    return [line["line"] for batch in batches for line in batch["lines"]]


def test_telemetry_needs_the_workers_fresh_signature(cloud: CloudKit) -> None:
    app = _running_app(cloud)
    worker = account("w1")
    entry = app_entry(app, logs=[("web", now_ms(), "hello")])
    forged = ship(cloud, worker, [entry], signer=account("mallory"))
    assert forged.status_code == 401 and forged.json()["code"] == "bad_signature"
    stale = ship(cloud, worker, [entry], timestamp=int(cloud.clock()) - 61)
    assert stale.status_code == 401 and stale.json()["code"] == "stale_timestamp"
    assert _lines(_log_batches(cloud, app["app_id"])) == []
    assert ship(cloud, worker, [entry]).json() == {"accepted_lines": 1, "apps": 1}
    assert _lines(_log_batches(cloud, app["app_id"])) == ["hello"]


def test_a_worker_cannot_write_into_an_app_it_does_not_run(cloud: CloudKit) -> None:
    app = _running_app(cloud)
    intruder = account("w2")
    cloud.sync(intruder)
    answer = ship(cloud, intruder, [app_entry(app, logs=[("web", now_ms(), "forged line")])])
    assert answer.status_code == 200 and answer.json() == {"accepted_lines": 0, "apps": 0}
    assert _lines(_log_batches(cloud, app["app_id"])) == []
    metrics = cloud.client.get(f"/v1/apps/{app['app_id']}/metrics", headers=cloud.key("alice"))
    assert metrics.json()["points"] == []


def test_logs_are_the_owners_only(cloud: CloudKit) -> None:
    app = _running_app(cloud)
    ship(cloud, account("w1"), [app_entry(app, logs=[("web", now_ms(), "secret")])])
    other = cloud.client.get(f"/v1/apps/{app['app_id']}/logs", headers=cloud.key("bob"))
    assert other.status_code == 404 and other.json()["code"] == "app_not_found"
    anonymous = cloud.client.get(f"/v1/apps/{app['app_id']}/logs")
    assert anonymous.status_code == 401
    metrics = cloud.client.get(f"/v1/apps/{app['app_id']}/metrics", headers=cloud.key("bob"))
    assert metrics.status_code == 404


def test_logs_filter_by_service_since_and_tail_and_resume(cloud: CloudKit) -> None:
    app = _running_app(cloud)
    base = int(time.time() * 1000)
    lines = [("web", base + i, f"web {i}") for i in range(5)]
    lines += [("db", base + 10 + i, f"db {i}") for i in range(3)]
    ship(cloud, account("w1"), [app_entry(app, logs=lines)])
    everything = _log_batches(cloud, app["app_id"])
    assert _lines(everything) == [f"web {i}" for i in range(5)] + [f"db {i}" for i in range(3)]
    assert _lines(_log_batches(cloud, app["app_id"], service="db")) == ["db 0", "db 1", "db 2"]
    assert _lines(_log_batches(cloud, app["app_id"], tail=2)) == ["db 1", "db 2"]
    since = _log_batches(cloud, app["app_id"], since=str((base + 3) / 1000))
    assert _lines(since)[0] == "web 3"
    # Last-Event-ID: only what came after
    last = everything[-1]["id"]
    assert _lines(_log_batches(cloud, app["app_id"], last=last)) == []
    ship(cloud, account("w1"), [app_entry(app, logs=[("web", base + 99, "after")])])
    assert _lines(_log_batches(cloud, app["app_id"], last=last)) == ["after"]
    bad = cloud.client.get(
        f"/v1/apps/{app['app_id']}/logs", params={"since": "yesterday"}, headers=cloud.key("alice")
    )
    assert bad.status_code == 400 and bad.json()["code"] == "bad_since"


def test_log_retention_keeps_the_newest_lines(cloud: CloudKit) -> None:
    app = _running_app(cloud)
    cloud.client.app.state.monitoring.log_keep = 300  # type: ignore[attr-defined]
    for round_ in range(4):
        batch = [("web", now_ms() + round_ * 1000 + i, f"{round_}-{i}") for i in range(200)]
        ship(cloud, account("w1"), [app_entry(app, logs=batch)])
    kept = _lines(_log_batches(cloud, app["app_id"]))
    assert len(kept) <= 500 and kept[-1] == "3-199"  # bounded; newest kept
    assert "0-0" not in kept


def test_metrics_time_series_buckets_by_step(cloud: CloudKit) -> None:
    app = _running_app(cloud)
    start = int(cloud.clock())
    for i, cpu in enumerate([10.0, 30.0, 50.0, 70.0]):
        ship(cloud, account("w1"), [app_entry(app, cpu=cpu, memory=(i + 1) << 20, restarts=i)])
        cloud.clock.advance(5)
    answer = cloud.client.get(
        f"/v1/apps/{app['app_id']}/metrics",
        params={"since": start - 1, "step": 10},
        headers=cloud.key("alice"),
    ).json()
    points = answer["points"]
    assert sum(p["samples"] for p in points) == 4
    assert [p["t"] % 10 for p in points] == [0] * len(points)
    # every sample lands in one bucket and the averages come from them
    assert sum(p["cpu_pct"] * p["samples"] for p in points) == 160.0
    assert answer["latest"]["cpu_pct"] == 70.0 and answer["latest"]["restarts"] == 3
    assert answer["latest"]["services"]["web"]["memory_bytes"] == 4 << 20
    fine = cloud.client.get(
        f"/v1/apps/{app['app_id']}/metrics",
        params={"since": start - 1, "step": 1},
        headers=cloud.key("alice"),
    ).json()
    assert [p["cpu_pct"] for p in fine["points"]] == [10.0, 30.0, 50.0, 70.0]
    bad = cloud.client.get(
        f"/v1/apps/{app['app_id']}/metrics", params={"step": 0}, headers=cloud.key("alice")
    )
    assert bad.status_code == 422


def test_gpu_samples_show_in_metrics(cloud: CloudKit) -> None:
    app = _running_app(cloud)
    gpu = {"index": 0, "name": "NVIDIA H100", "util_pct": 80.0,
           "memory_used_bytes": 40 << 30, "memory_total_bytes": 80 << 30}  # fmt: skip
    from monitor_kit import MACHINE

    ship(cloud, account("w1"), [app_entry(app)], machine={**MACHINE, "gpus": [gpu]})
    latest = cloud.client.get(
        f"/v1/apps/{app['app_id']}/metrics", headers=cloud.key("alice")
    ).json()["latest"]
    assert latest["gpu_util_pct"] == 80.0 and latest["gpu_memory_bytes"] == 40 << 30


def test_prometheus_exposition_per_app_and_worker(cloud: CloudKit) -> None:
    app = _running_app(cloud)
    cloud.sync(account("w1"), apps=[cloud.report(app, "running", boot_progress=100, ports={})])
    ship(cloud, account("w1"), [app_entry(app, cpu=42.0, restarts=2)])
    answer = cloud.client.get("/metrics")
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/plain; version=")
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(answer.text)
        for s in family.samples
    }
    app_id = app["app_id"]
    assert samples[("veil_app_up", (("app_id", app_id), ("name", "web")))] == 1.0
    assert samples[("veil_app_cpu_percent", (("app_id", app_id),))] == 42.0
    assert samples[("veil_app_restarts", (("app_id", app_id),))] == 2.0
    assert samples[("veil_apps", (("status", "running"),))] == 1.0
    worker = account("w1").address
    up = [v for (n, labels), v in samples.items() if n == "veil_worker_up" and
          ("worker", worker) in labels]  # fmt: skip
    assert up == [1.0]
    assert samples[("veil_worker_cpu_percent", (("worker", worker),))] == 12.5
    assert samples[("veil_cloud_workers", (("gpu_model", "0"), ("status", "online")))] == 1.0


def test_network_overview_is_public(cloud: CloudKit) -> None:
    cloud.sync(account("w1"), provider=account("p1").address)
    cloud.sync(account("w2"), provider=account("p2").address)
    view = cloud.client.get("/v1/network").json()
    assert view["workers"]["online"] == 2 and view["workers"]["providers"] == 2
    assert view["workers"]["by_model"] == [
        {"gpu_model": 0, "online": 2, "offline": 0, "vcpu": 8, "gpus": 0}
    ]
    assert view["chain"] is None


def test_attestation_badge_is_pending_then_judged(cloud: CloudKit) -> None:
    app = _running_app(cloud)
    verdict = cloud.client.get(
        f"/v1/apps/{app['app_id']}/attestation/verdict", headers=cloud.key("alice")
    ).json()
    assert verdict["state"] == "pending" and verdict["compose_hash"] == app["compose_hash"]
    other = cloud.client.get(
        f"/v1/apps/{app['app_id']}/attestation/verdict", headers=cloud.key("bob")
    )
    assert other.status_code == 404


def test_console_is_served() -> None:
    from cloud_kit import make_kit

    kit = make_kit("sqlite:///:memory:")
    try:
        page = kit.client.get("/console/")
        assert page.status_code == 200 and "<title>veil" in page.text
        assert kit.client.get("/console", follow_redirects=False).status_code == 307
        assert kit.client.get("/console/console.js").status_code == 200
    finally:
        kit.client.close()


def test_hub_vouches_only_for_what_it_holds() -> None:
    async def scenario() -> None:
        hub = Hub(keep=3)
        assert hub.after("t", 0) is None  # never published: the database answers
        hub.publish("t", [{"id": 5}, {"id": 7}])
        assert hub.after("t", 4) == [{"id": 5}, {"id": 7}]
        assert hub.after("t", 3) is None  # below what the hub saw first
        hub.publish("t", [{"id": 9}, {"id": 11}])  # 5 evicted
        assert hub.after("t", 4) is None
        assert hub.after("t", 5) == [{"id": 7}, {"id": 9}, {"id": 11}]
        waiter = asyncio.create_task(hub.wait("t", 5))
        await asyncio.sleep(0)
        hub.publish("t", [{"id": 12}])
        await asyncio.wait_for(waiter, 1)

    asyncio.run(scenario())


class _LeaseWatcher:
    """The chain watcher's lease side, as NetworkWatcher exposes it to /metrics."""

    def __init__(self, runways: dict[int, tuple[str, int]]) -> None:
        self.runways = runways

    def snapshot(self) -> None:
        return None

    def metrics(self) -> list:
        return []

    def lease_runway(self, lease_id: int) -> tuple[str, int] | None:
        return self.runways.get(lease_id)


def _lease_row(app_id: str, lease_id: int, last_runway: int | None, closed: int | None = None):
    from veil.services.cloud.models import Lease

    return Lease(
        lease_id=f"0x{lease_id:064x}", app_id=app_id, owner=account("alice").address,
        provider=account("p1").address, deployment_key="k", instance_type="cpu", rate="1",
        amount="1", tx="0x" + "00" * 32, opened_at=1, closed_at=closed, last_state=1,
        last_runway=last_runway,
    )  # fmt: skip


def test_prometheus_app_runway_from_the_watcher_or_the_billing_row(cloud: CloudKit) -> None:
    from sqlalchemy.orm import Session

    web = _running_app(cloud)
    api = cloud.deploy("alice", name="api")
    idle = cloud.deploy("alice", name="idle")
    with Session(cloud.state.engine) as session:
        session.add_all([
            _lease_row(web["app_id"], 1, last_runway=50),  # the watcher knows better
            _lease_row(web["app_id"], 2, last_runway=10, closed=5),  # closed: ignored
            _lease_row(api["app_id"], 3, last_runway=7_200),  # the watcher has not read it
        ])  # fmt: skip
        session.commit()
    monitoring = cloud.client.app.state.monitoring
    monitoring.network = _LeaseWatcher({1: ("running", 86_000), 2: ("running", 9)})
    monitoring.metrics_refresh_seconds = 0
    monitoring._scrape = None
    answer = cloud.client.get("/metrics")
    assert answer.status_code == 200
    runways = {
        s.labels["app_id"]: s.value
        for family in text_string_to_metric_families(answer.text)
        for s in family.samples
        if s.name == "veil_app_runway_seconds"
    }
    assert runways == {web["app_id"]: 86_000, api["app_id"]: 7_200}
    assert idle["app_id"] not in runways
