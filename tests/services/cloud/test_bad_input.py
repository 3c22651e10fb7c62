"""Issue 12's bad inputs that reach the control plane: each a code, a clear message, a
request id, and nothing half-done (no app, no placement, provision still usable or not)."""

from __future__ import annotations

import pytest
from cloud_kit import COMPOSE, CloudKit, account


def _error(answer, status: int, code: str) -> dict:  # type: ignore[no-untyped-def]
    assert answer.status_code == status, answer.text
    body = answer.json()
    assert body["code"] == code, body
    assert body["message"]
    assert body["request_id"] == answer.headers["x-request-id"]
    return dict(body)


def _no_apps(cloud: CloudKit, who: str = "alice") -> None:
    assert cloud.client.get("/v1/apps", headers=cloud.key(who)).json() == []


@pytest.mark.parametrize(
    ("compose", "needle"),
    [
        ("services: [unclosed", "line 1"),
        ("services: {}", "services"),
        ("services:\n  web:\n    command: x\n", "image"),
        ("services:\n  web:\n    image: x\n    ports: ['99999:80']\n", "outside"),
        ("just text", "mapping"),
    ],
)
def test_invalid_compose(cloud: CloudKit, compose: str, needle: str) -> None:
    cloud.sync(account("w1"))
    body = _error(cloud.provision("alice", compose=compose), 400, "invalid_compose")
    assert needle in body["message"]
    _no_apps(cloud)


def test_unknown_instance_type(cloud: CloudKit) -> None:
    cloud.sync(account("w1"))
    body = _error(cloud.provision("alice", instance_type="tdx.huge"), 400, "unknown_instance_type")
    assert "tdx.huge" in body["message"] and "tdx.small" in body["message"]


def test_no_capacity_names_what_is_missing(cloud: CloudKit) -> None:
    cloud.sync(account("w1"))
    body = _error(cloud.provision("alice", instance_type="h200x2"), 409, "no_capacity")
    assert body["message"] == "h200x2: no H200 worker online"
    _no_apps(cloud)


def test_capacity_full_leaves_the_app_pending_with_the_reason(cloud: CloudKit) -> None:
    worker = account("w1")
    one_slot = {"vcpu": 1, "memory_mb": 2048, "disk_gb": 20, "gpu_model": 0, "gpu_count": 0}
    cloud.sync(worker, capacity=one_slot)
    first = cloud.deploy("alice", name="one")
    assert first["status"] == "scheduled"
    second = cloud.deploy("alice", name="two")
    assert second["status"] == "pending"
    assert "no worker with 1 vCPU" in second["status_reason"]
    cloud.client.delete(f"/v1/apps/{first['app_id']}", headers=cloud.key("alice"))
    assert cloud.tick() == 1
    moved = cloud.client.get(f"/v1/apps/{second['app_id']}", headers=cloud.key("alice")).json()
    assert moved["status"] == "scheduled" and moved["worker"] == worker.address


def test_compose_references_need_allowed_envs(cloud: CloudKit) -> None:
    cloud.sync(account("w1"))
    body = _error(cloud.provision("alice", allowed_envs=[]), 400, "env_not_allowed")
    assert "GREETING" in body["message"] and body["details"]["missing"] == ["GREETING"]
    _error(cloud.provision("alice", allowed_envs=["GREETING", "1BAD"]), 400, "invalid_env_key")


def test_env_key_not_allowed_at_commit(cloud: CloudKit) -> None:
    cloud.sync(account("w1"))
    provision = cloud.provision("alice").json()
    body = _error(
        cloud.commit("alice", provision, ["GREETING", "AWS_SECRET"]), 400, "env_key_not_allowed"
    )
    assert "AWS_SECRET" in body["message"]
    _no_apps(cloud)
    assert cloud.commit("alice", provision).status_code == 200  # the provision is still good


def test_update_with_drifted_env_keys_gets_409_and_the_diff(cloud: CloudKit) -> None:
    cloud.sync(account("w1"))
    cloud.deploy("alice", allowed_envs=["GREETING", "TOKEN"])
    again = cloud.provision("alice", allowed_envs=["GREETING", "TOKEN"]).json()
    assert again["updates"] is True
    body = _error(cloud.commit("alice", again, ["GREETING"]), 409, "env_keys_drift")
    assert body["details"] == {"unexpected": [], "missing": ["TOKEN"]}
    body = _error(
        cloud.commit("alice", again, ["GREETING", "TOKEN", "EXTRA"]), 409, "env_keys_drift"
    )
    assert body["details"]["unexpected"] == ["EXTRA"]
    app = cloud.client.get(f"/v1/apps/{again['app_id']}", headers=cloud.key("alice")).json()
    assert app["version"] == 1  # nothing half-done: the running version is untouched


def test_replayed_commit(cloud: CloudKit) -> None:
    cloud.sync(account("w1"))
    provision = cloud.provision("alice").json()
    assert cloud.commit("alice", provision).status_code == 200
    _error(cloud.commit("alice", provision), 409, "provision_used")


def test_expired_provision(cloud: CloudKit) -> None:
    cloud.sync(account("w1"))
    provision = cloud.provision("alice").json()
    cloud.clock.advance(cloud.config.provision_ttl + 1)
    cloud.sync(account("w1"))
    _error(cloud.commit("alice", provision), 410, "provision_expired")
    _no_apps(cloud)


def test_unknown_or_foreign_provision(cloud: CloudKit) -> None:
    cloud.sync(account("w1"))
    provision = cloud.provision("alice").json()
    _error(
        cloud.commit("alice", {**provision, "provision_id": "prov_x"}), 404, "provision_not_found"
    )
    _error(cloud.commit("bob", provision), 404, "provision_not_found")


def test_env_without_keys_is_refused(cloud: CloudKit) -> None:
    cloud.sync(account("w1"))
    provision = cloud.provision("alice").json()
    _error(cloud.commit("alice", provision, [], encrypted_env="abcd"), 400, "invalid_env")


def test_another_customers_app_is_not_there(cloud: CloudKit) -> None:
    cloud.sync(account("w1"))
    app = cloud.deploy("alice")
    base = f"/v1/apps/{app['app_id']}"
    bob = cloud.key("bob")
    for method, path in [
        ("GET", base),
        ("DELETE", base),
        ("POST", f"{base}/stop"),
        ("POST", f"{base}/start"),
        ("POST", f"{base}/restart"),
        ("GET", f"{base}/attestation"),
        ("GET", f"{base}/events?follow=0"),
    ]:
        answer = cloud.client.request(method, path, headers=bob)
        body = _error(answer, 404, "app_not_found")
        assert "web" not in body["message"]
    assert cloud.client.get("/v1/apps", headers=bob).json() == []
    missing = cloud.client.get("/v1/apps/0x" + "00" * 20, headers=bob)
    assert missing.json()["message"].replace("0x" + "00" * 20, "") == body["message"].replace(
        app["app_id"], ""
    )
    assert cloud.client.get(base, headers=cloud.key("alice")).status_code == 200


def test_validation_errors_use_the_one_shape(cloud: CloudKit) -> None:
    answer = cloud.client.post(
        "/v1/apps/provision",
        json={"name": "Bad Name!", "compose": COMPOSE},
        headers=cloud.key("alice"),
    )
    body = _error(answer, 422, "invalid_request")
    assert "name" in body["message"]
    _error(cloud.client.get("/v1/nowhere"), 404, "not_found")
    own = cloud.client.get("/v1/nowhere", headers={"X-Request-Id": "trace-123"})
    assert own.headers["x-request-id"] == "trace-123" and own.json()["request_id"] == "trace-123"


def test_attestation_before_running(cloud: CloudKit) -> None:
    cloud.sync(account("w1"))
    app = cloud.deploy("alice")
    answer = cloud.client.get(f"/v1/apps/{app['app_id']}/attestation", headers=cloud.key("alice"))
    _error(answer, 409, "no_attestation")


def test_kms_down_is_a_clear_502(db_url: str) -> None:
    import httpx
    from cloud_kit import make_kit

    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    kit = make_kit(db_url)
    kit.state.kms = httpx.Client(transport=httpx.MockTransport(refuse))
    try:
        kit.sync(account("w1"))
        _error(kit.provision("alice"), 502, "kms_unavailable")
    finally:
        kit.client.close()
        kit.state.engine.dispose()
