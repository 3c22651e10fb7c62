"""Alert webhooks: registered per account, signed like billing's, sent when an app goes down
or comes back, restarts, or a provider's worker goes offline; retried until delivered."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from typing import Any

import httpx
from cloud_kit import CloudKit, account
from monitor_kit import app_entry, ship

from veil.market.webhooks import verify
from veil.services.cloud.alerts import Alerts


class Receiver:
    def __init__(self, fail_first: int = 0) -> None:
        self.got: list[httpx.Request] = []
        self.fail_first = fail_first
        self.lock = threading.Lock()

    def __call__(self, request: httpx.Request) -> httpx.Response:
        with self.lock:
            self.got.append(request)
            if len(self.got) <= self.fail_first:
                return httpx.Response(500)
        return httpx.Response(200)

    def wait(self, count: int) -> list[httpx.Request]:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with self.lock:
                if len(self.got) >= count:
                    return list(self.got)
            time.sleep(0.02)
        raise AssertionError(f"{len(self.got)} deliveries, expected {count}")


def _check_signature(request: httpx.Request, secret: str) -> dict[str, Any]:
    parts = dict(p.split("=", 1) for p in request.headers["Veil-Signature"].split(","))
    mac = hmac.new(secret.encode(), f"{parts['t']}.".encode() + request.content, hashlib.sha256)
    assert hmac.compare_digest(mac.hexdigest(), parts["v1"])
    # and billing's receiver-side check accepts it as one of its own
    assert verify(secret.encode(), request.content, request.headers["Veil-Signature"]) > 0
    body: dict[str, Any] = json.loads(request.content)
    assert request.headers["Veil-Event"] == body["type"]
    assert request.headers["Veil-Delivery"] == body["id"]
    return body


def _hook(cloud: CloudKit, who: str, url: str) -> dict[str, Any]:
    answer = cloud.client.post("/v1/alerts/webhooks", json={"url": url}, headers=cloud.key(who))
    assert answer.status_code == 200, answer.text
    return dict(answer.json())


def test_webhooks_are_per_account(cloud: CloudKit) -> None:
    hook = _hook(cloud, "alice", "https://alice.example/hooks")
    assert len(hook["secret"]) == 64
    listed = cloud.client.get("/v1/alerts/webhooks", headers=cloud.key("alice")).json()
    assert listed == [{"id": hook["id"], "url": hook["url"], "created_at": hook["created_at"]}]
    assert cloud.client.get("/v1/alerts/webhooks", headers=cloud.key("bob")).json() == []
    stolen = cloud.client.delete(f"/v1/alerts/webhooks/{hook['id']}", headers=cloud.key("bob"))
    assert stolen.status_code == 404 and stolen.json()["code"] == "webhook_not_found"
    bad = cloud.client.post(
        "/v1/alerts/webhooks", json={"url": "ftp://x"}, headers=cloud.key("alice")
    )
    assert bad.status_code == 422
    gone = cloud.client.delete(f"/v1/alerts/webhooks/{hook['id']}", headers=cloud.key("alice"))
    assert gone.status_code == 200
    assert cloud.client.get("/v1/alerts/webhooks", headers=cloud.key("alice")).json() == []


def test_app_down_restarts_recovery_and_worker_offline(cloud: CloudKit) -> None:
    receiver = Receiver()
    alerts = Alerts(transport=httpx.MockTransport(receiver), backoff=0.01)
    customer = _hook(cloud, "alice", "https://alice.example/hooks")
    provider = _hook(cloud, "p1", "https://provider.example/hooks")
    worker = account("w1")
    cloud.sync(worker, provider=account("p1").address)
    app = cloud.deploy("alice")
    running = cloud.report(app, "running", boot_progress=100, ports={})
    cloud.sync(worker, provider=account("p1").address, apps=[running])
    ship(cloud, worker, [app_entry(app, restarts=0)])
    assert alerts.tick(cloud.state) == []  # the first look only learns

    failed = cloud.report(app, "failed", boot_progress=0, ports={}, error="exit 1")
    cloud.sync(worker, provider=account("p1").address, apps=[failed])
    fired = alerts.tick(cloud.state)
    assert [a.kind for a in fired] == ["app.down"]
    body = _check_signature(receiver.wait(1)[0], customer["secret"])
    assert body["type"] == "app.down" and body["data"]["app_id"] == app["app_id"]
    assert body["data"]["status"] == "failed" and "exit 1" in body["data"]["reason"]
    assert str(receiver.got[0].url) == "https://alice.example/hooks"

    cloud.sync(worker, provider=account("p1").address, apps=[running])
    ship(cloud, worker, [app_entry(app, restarts=2)])
    assert sorted(a.kind for a in alerts.tick(cloud.state)) == ["app.recovered", "app.restarted"]
    bodies = [_check_signature(r, customer["secret"]) for r in receiver.wait(3)[1:]]
    restarted = next(b for b in bodies if b["type"] == "app.restarted")
    assert restarted["data"] == {"app_id": app["app_id"], "restarts": 2, "new": 2}
    assert alerts.tick(cloud.state) == []  # nothing changed, nothing sent

    cloud.clock.advance(cloud.config.worker_timeout + 5)
    cloud.tick()  # the scheduler marks the silent worker offline
    kinds = [a.kind for a in alerts.tick(cloud.state)]
    assert "worker.offline" in kinds
    offline = [r for r in receiver.wait(4) if r.headers["Veil-Event"] == "worker.offline"]
    assert len(offline) == 1 and str(offline[0].url) == "https://provider.example/hooks"
    assert _check_signature(offline[0], provider["secret"])["data"]["worker"] == worker.address


def test_a_failing_receiver_is_retried_then_given_up() -> None:
    receiver = Receiver(fail_first=2)
    alerts = Alerts(transport=httpx.MockTransport(receiver), backoff=0.01, attempts=4)
    assert alerts.deliver("https://x.example/h", "s" * 64, "app.down", "evt_1", b"{}")
    assert len(receiver.got) == 3
    assert len({r.headers["Veil-Delivery"] for r in receiver.got}) == 1  # same delivery id
    stubborn = Receiver(fail_first=99)
    alerts = Alerts(transport=httpx.MockTransport(stubborn), backoff=0.01, attempts=3)
    assert not alerts.deliver("https://x.example/h", "s" * 64, "app.down", "evt_2", b"{}")
    assert len(stubborn.got) == 3
