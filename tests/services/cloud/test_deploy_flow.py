"""The deploy path end to end through the API: provision, commit, placement, worker
reports, the state stream, the attestation, lifecycle and delete."""

from __future__ import annotations

from cloud_kit import COMPOSE, CloudKit, account

from veil.cloud.compose_spec import app_compose, app_compose_hash
from veil.services.cloud.apps import app_id_of


def test_provision_answers_the_dstack_identity(cloud: CloudKit) -> None:
    cloud.sync(account("w1"))
    answer = cloud.provision("alice")
    assert answer.status_code == 200, answer.text
    body = answer.json()
    owner = account("alice").address
    assert body["app_id"] == app_id_of(owner, "web")
    document = app_compose("web", COMPOSE, ["GREETING"])
    assert body["app_compose"] == document
    assert body["compose_hash"] == app_compose_hash(document)
    assert body["updates"] is False
    assert len(bytes.fromhex(body["env_public_key"])) == 32
    assert body["expires_at"] > int(cloud.clock())


def test_deploy_runs_reports_and_streams(cloud: CloudKit) -> None:
    worker = account("w1")
    cloud.sync(worker)
    app = cloud.deploy("alice")
    assert app["status"] == "scheduled"
    assert app["worker"] == worker.address
    assert app["answer"] if False else True
    sync = cloud.sync(worker).json()["deployments"]
    assert [d["app_id"] for d in sync] == [app["app_id"]]
    d = sync[0]
    assert d["desired"] == "running" and d["compose_hash"] == app["compose_hash"]
    assert d["kms_url"] == "http://kms" and d["encrypted_env"]
    assert d["app_compose"]["allowed_envs"] == ["GREETING"]
    cloud.sync(worker, apps=[cloud.report(d, "pulling", boot_progress=10)])
    cloud.sync(worker, apps=[cloud.report(d, "starting", boot_progress=60)])
    evidence = {
        "quote": "ab" * 10,
        "event_log": [],
        "vm_config": {},
        "simulated": True,
        "compose_hash": app["compose_hash"],
        "os_image_hash": "11" * 32,
    }
    cloud.sync(
        worker,
        apps=[
            cloud.report(
                d,
                "running",
                boot_progress=100,
                ports={"8080": "127.0.0.1:40001"},
                attestation=evidence,
            )
        ],
    )
    status = cloud.client.get(f"/v1/apps/{app['app_id']}", headers=cloud.key("alice")).json()
    assert status["status"] == "running"
    assert status["ports"] == {"8080": "127.0.0.1:40001"}
    assert status["simulated"] is True
    states = [e["state"] for e in cloud.events("alice", app["app_id"])]
    assert states == ["provisioning", "pending", "scheduled", "pulling", "starting", "running"]
    progress = [e.get("boot_progress") for e in cloud.events("alice", app["app_id"])]
    assert progress[3:] == [10, 60, 100]
    attestation = cloud.client.get(
        f"/v1/apps/{app['app_id']}/attestation", headers=cloud.key("alice")
    ).json()
    assert attestation["worker"] == worker.address
    assert attestation["quote"] == evidence["quote"]
    assert attestation["compose_hash"] == app["compose_hash"]
    assert attestation["simulated"] is True
    route = cloud.client.get(
        f"/v1/internal/routes/{app['app_id']}/8080",
        headers={"Authorization": "Bearer gateway-secret-token"},
    )
    assert route.json() == {"url": "http://127.0.0.1:40001"}


def test_events_resume_after_last_event_id(cloud: CloudKit) -> None:
    cloud.sync(account("w1"))
    app = cloud.deploy("alice")
    everything = cloud.events("alice", app["app_id"])
    assert len(everything) >= 3
    ids = [e["id"] for e in everything]
    assert ids == sorted(ids)
    rest = cloud.events("alice", app["app_id"], last=ids[0])
    assert [e["id"] for e in rest] == ids[1:]


def test_boot_error_reaches_status_and_stream(cloud: CloudKit) -> None:
    worker = account("w1")
    cloud.sync(worker)
    app = cloud.deploy("alice")
    d = cloud.sync(worker).json()["deployments"][0]
    error = "service web exited with code 1: ModuleNotFoundError: No module named 'flask'"
    cloud.sync(worker, apps=[cloud.report(d, "failed", boot_progress=60, error=error)])
    status = cloud.client.get(f"/v1/apps/{app['app_id']}", headers=cloud.key("alice")).json()
    assert status["status"] == "failed"
    assert status["error"] == error
    last = cloud.events("alice", app["app_id"])[-1]
    assert last["state"] == "failed" and last["error"] == error


def test_update_says_so_and_replaces_the_deployment(cloud: CloudKit) -> None:
    worker = account("w1")
    cloud.sync(worker)
    first = cloud.deploy("alice")
    again = cloud.provision("alice", compose=COMPOSE.replace("8080", "8081"))
    assert again.json()["updates"] is True
    assert again.json()["app_id"] == first["app_id"]
    updated = cloud.commit("alice", again.json()).json()
    assert updated["version"] == 2
    assert updated["compose_hash"] != first["compose_hash"]
    assert updated["deployment_id"] != first["deployment_id"]
    listed = cloud.sync(worker).json()["deployments"]
    assert [d["deployment_id"] for d in listed] == [updated["deployment_id"]]


def test_stop_start_restart_delete(cloud: CloudKit) -> None:
    worker = account("w1")
    cloud.sync(worker)
    app = cloud.deploy("alice")
    base = f"/v1/apps/{app['app_id']}"
    headers = cloud.key("alice")
    stopped = cloud.client.post(f"{base}/stop", headers=headers).json()
    assert stopped["desired"] == "stopped"
    assert cloud.sync(worker).json()["deployments"][0]["desired"] == "stopped"
    started = cloud.client.post(f"{base}/start", headers=headers).json()
    assert started["desired"] == "running"
    assert cloud.sync(worker).json()["deployments"][0]["desired"] == "running"
    restarted = cloud.client.post(f"{base}/restart", headers=headers).json()
    assert restarted["deployment_id"] != app["deployment_id"]
    assert restarted["worker"] == worker.address
    deleted = cloud.client.delete(base, headers=headers)
    assert deleted.status_code == 200 and deleted.json()["status"] == "deleted"
    assert cloud.sync(worker).json()["deployments"] == []
    assert cloud.client.get(base, headers=headers).status_code == 404
    assert cloud.client.get("/v1/apps", headers=headers).json() == []
    assert cloud.events("alice", app["app_id"])[-1]["state"] == "deleted"


def test_deleted_name_deploys_fresh(cloud: CloudKit) -> None:
    cloud.sync(account("w1"))
    app = cloud.deploy("alice")
    cloud.client.delete(f"/v1/apps/{app['app_id']}", headers=cloud.key("alice"))
    again = cloud.provision("alice")
    assert again.json()["updates"] is False
    assert cloud.commit("alice", again.json()).json()["version"] == 1
