"""Replicas place safely: on PostgreSQL a pass needs the advisory lock, and on any backend
two passes racing for one pending app place it once."""

from __future__ import annotations

import threading

import pytest
from cloud_kit import CloudKit, account
from sqlalchemy import func, select, text

from veil.services.cloud.database import SCHEDULER_LOCK
from veil.services.cloud.models import App, Deployment


def _pending_app(cloud: CloudKit) -> str:
    """An app committed while no worker had room, so it waits as pending."""
    full = {"vcpu": 1, "memory_mb": 2048, "disk_gb": 20, "gpu_model": 0, "gpu_count": 0}
    cloud.sync(account("w1"), capacity=full)
    cloud.deploy("alice", name="first")
    app = cloud.deploy("alice", name="second")
    assert app["status"] == "pending"
    cloud.sync(account("w2"), capacity=full)
    return str(app["app_id"])


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
def test_pass_waits_for_the_lock_on_postgres(cloud: CloudKit) -> None:
    assert cloud.state.engine.dialect.name == "postgresql"
    app_id = _pending_app(cloud)
    with cloud.state.engine.connect() as holder:
        assert holder.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": SCHEDULER_LOCK})
        assert cloud.tick() == 0  # another replica holds it: this pass does nothing
        holder.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": SCHEDULER_LOCK})
    assert cloud.tick() == 1
    status = cloud.client.get(f"/v1/apps/{app_id}", headers=cloud.key("alice")).json()
    assert status["worker"] == account("w2").address


def test_racing_passes_place_once(cloud: CloudKit) -> None:
    app_id = _pending_app(cloud)
    results: list[int] = []
    start = threading.Barrier(4)

    def run() -> None:
        start.wait()
        results.append(cloud.tick())

    threads = [threading.Thread(target=run) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum(results) == 1
    with cloud.state.sessions() as session:
        live = session.scalar(
            select(func.count())
            .select_from(Deployment)
            .where(Deployment.app_id == app_id, Deployment.ended_at.is_(None))
        )
        assert live == 1
        assert session.get(App, app_id).status == "scheduled"


def test_gpu_apps_go_to_the_right_gpus_and_wait_with_the_reason(cloud: CloudKit) -> None:
    h100s = {"vcpu": 96, "memory_mb": 1 << 20, "disk_gb": 4000, "gpu_model": 1, "gpu_count": 8}
    h200s = {"vcpu": 24, "memory_mb": 1 << 19, "disk_gb": 1000, "gpu_model": 2, "gpu_count": 2}
    cloud.sync(account("h100-box"), capacity=h100s)
    cloud.sync(account("h200-box"), capacity=h200s)
    first = cloud.deploy("alice", name="train", instance_type="h200x2")
    assert first["worker"] == account("h200-box").address
    second = cloud.deploy("alice", name="train2", instance_type="h200x2")
    assert second["status"] == "pending"
    assert second["status_reason"] == "no H200 with 2 GPUs free"


def test_commit_wakes_the_replicas_loop(db_url: str) -> None:
    """With the scheduler loop running, commit answers without running a pass itself and
    the loop places the app at once (its interval here is far longer than the wait)."""
    import time

    from cloud_kit import make_kit

    kit = make_kit(db_url, run_scheduler=True, scheduler_interval=60)
    with kit.client:  # runs the lifespan: the loop thread starts
        kit.sync(account("w1"))
        app = kit.deploy("alice")
        deadline = time.monotonic() + 10
        status = app["status"]
        while status != "scheduled" and time.monotonic() < deadline:
            time.sleep(0.05)
            status = kit.client.get(f"/v1/apps/{app['app_id']}", headers=kit.key("alice")).json()[
                "status"
            ]
        assert status == "scheduled"
        assert kit.state.scheduler.looping
    assert not kit.state.scheduler.looping
    kit.state.engine.dispose()
