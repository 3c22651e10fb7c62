"""The worker side: signed syncs only, registry check, offline workers' apps moved, and the
gateway's route lookup."""

from __future__ import annotations

from cloud_kit import GATEWAY_TOKEN, CloudKit, account, make_kit


def test_sync_needs_the_workers_own_fresh_signature(cloud: CloudKit) -> None:
    worker = account("w1")
    assert cloud.sync(worker).status_code == 200
    forged = cloud.sync(worker, signer=account("mallory"))
    assert forged.status_code == 401 and forged.json()["code"] == "bad_signature"
    old = cloud.sync(worker, timestamp=int(cloud.clock()) - 61)
    assert old.status_code == 401 and old.json()["code"] == "stale_timestamp"
    missing = cloud.client.post("/v1/workers/sync", json={})
    assert missing.status_code == 422 and missing.json()["code"] == "invalid_request"


def test_registry_inactive_worker_is_refused(db_url: str) -> None:
    active = {account("w1").address}
    kit = make_kit(db_url, is_active=lambda worker: worker in active)
    try:
        assert kit.sync(account("w1")).status_code == 200
        refused = kit.sync(account("w2"))
        assert refused.status_code == 403 and refused.json()["code"] == "worker_not_active"
    finally:
        kit.client.close()
        kit.state.engine.dispose()


def test_offline_worker_apps_move_to_another_provider(cloud: CloudKit) -> None:
    w1, w2 = account("w1"), account("w2")
    cloud.sync(w1, provider=account("p1").address)
    app = cloud.deploy("alice")
    assert app["worker"] == w1.address
    cloud.sync(w2, provider=account("p2").address)
    cloud.clock.advance(cloud.config.worker_timeout - 5)
    cloud.sync(w2, provider=account("p2").address)
    assert cloud.tick() == 0  # w1 not yet late
    cloud.clock.advance(10)
    cloud.sync(w2, provider=account("p2").address)
    assert cloud.tick() == 1
    moved = cloud.client.get(f"/v1/apps/{app['app_id']}", headers=cloud.key("alice")).json()
    assert moved["worker"] == w2.address and moved["deployment_id"] != app["deployment_id"]
    states = [e["state"] for e in cloud.events("alice", app["app_id"])]
    assert states[-2:] == ["pending", "scheduled"]
    reason = [e for e in cloud.events("alice", app["app_id"]) if e.get("reason")][-1]["reason"]
    assert "offline" in reason and w1.address in reason
    # w1 comes back: its old deployment is not listed, so it removes it.
    assert cloud.sync(w1, provider=account("p1").address).json()["deployments"] == []
    assert len(cloud.sync(w2, provider=account("p2").address).json()["deployments"]) == 1


def test_placement_spreads_across_providers(cloud: CloudKit) -> None:
    p1, p2 = account("p1").address, account("p2").address
    cloud.sync(account("w1"), provider=p1)
    cloud.sync(account("w2"), provider=p1)
    cloud.sync(account("w3"), provider=p2)
    provider_of = {account("w1").address: p1, account("w2").address: p1, account("w3").address: p2}
    placed = [cloud.deploy("alice", name=f"app{i}")["worker"] for i in range(2)]
    assert {provider_of[worker] for worker in placed} == {p1, p2}


def test_reports_for_unknown_deployments_are_ignored(cloud: CloudKit) -> None:
    worker = account("w1")
    cloud.sync(worker)
    app = cloud.deploy("alice")
    stray = {"deployment_id": "dep_stray", "app_id": app["app_id"], "state": "running"}
    assert cloud.sync(worker, apps=[stray]).status_code == 200
    status = cloud.client.get(f"/v1/apps/{app['app_id']}", headers=cloud.key("alice")).json()
    assert status["status"] == "scheduled"
    other = account("w2")
    cloud.sync(other)
    d = {"deployment_id": app["deployment_id"], "app_id": app["app_id"], "state": "running"}
    cloud.sync(other, apps=[d])  # another worker cannot report on w1's deployment
    status = cloud.client.get(f"/v1/apps/{app['app_id']}", headers=cloud.key("alice")).json()
    assert status["status"] == "scheduled"


def test_gateway_routes(cloud: CloudKit) -> None:
    worker = account("w1")
    cloud.sync(worker)
    app = cloud.deploy("alice")
    gateway = {"Authorization": f"Bearer {GATEWAY_TOKEN}"}
    path = f"/v1/internal/routes/{app['app_id']}/8080"
    assert cloud.client.get(path).status_code == 401
    wrong = cloud.client.get(path, headers={"Authorization": "Bearer guess"})
    assert wrong.status_code == 401
    not_running = cloud.client.get(path, headers=gateway)
    assert not_running.status_code == 503 and not_running.json()["code"] == "app_not_running"
    d = cloud.sync(worker).json()["deployments"][0]
    report = cloud.report(d, "running", boot_progress=100, ports={"8080": "10.0.0.5:31000"})
    cloud.sync(worker, apps=[report])
    assert cloud.client.get(path, headers=gateway).json() == {"url": "http://10.0.0.5:31000"}
    other_port = cloud.client.get(path.replace("8080", "9999"), headers=gateway)
    assert other_port.status_code == 404 and other_port.json()["code"] == "port_not_found"
    unknown = cloud.client.get(f"/v1/internal/routes/0x{'00' * 20}/80", headers=gateway)
    assert unknown.status_code == 404 and unknown.json()["code"] == "app_not_found"
    cloud.client.post(f"/v1/apps/{app['app_id']}/stop", headers=cloud.key("alice"))
    assert cloud.client.get(path, headers=gateway).status_code == 503
