"""The worker sync's long-poll: held while nothing changes, answered as soon as it does.

Runs on SQLite and PostgreSQL (the wait re-reads the database, so replicas see the change
another replica wrote). The held request runs in a thread while the customer acts.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from cloud_kit import CloudKit, account


def _held(cloud: CloudKit, worker: Any, **params: Any) -> tuple[threading.Thread, dict]:
    out: dict[str, Any] = {}

    def call() -> None:
        began = time.monotonic()
        answer = cloud.sync(worker, params=params)
        out["status"], out["body"] = answer.status_code, answer.json()
        out["seconds"] = time.monotonic() - began

    thread = threading.Thread(target=call)
    thread.start()
    return thread, out


def test_a_held_sync_answers_when_an_app_is_placed_then_deleted(cloud: CloudKit) -> None:
    worker = account("w1")
    first = cloud.sync(worker).json()
    assert first["deployments"] == [] and len(first["version"]) == 64

    thread, out = _held(cloud, worker, wait=20, known=first["version"])
    time.sleep(0.5)
    assert thread.is_alive()  # nothing changed: still held
    app = cloud.deploy("alice")
    thread.join(timeout=10)
    assert not thread.is_alive() and out["status"] == 200
    assert 0.5 <= out["seconds"] < 5  # early, not at the end of the 20 s wait
    [listed] = out["body"]["deployments"]
    assert listed["app_id"] == app["app_id"] and out["body"]["version"] != first["version"]

    thread, out = _held(cloud, worker, wait=20, known=out["body"]["version"])
    time.sleep(0.3)
    assert thread.is_alive()
    deleted = cloud.client.delete(f"/v1/apps/{app['app_id']}", headers=cloud.key("alice"))
    assert deleted.status_code == 200, deleted.text
    thread.join(timeout=10)
    assert out["status"] == 200 and out["body"]["deployments"] == [] and out["seconds"] < 5


def test_a_stop_and_an_update_end_the_wait_too(cloud: CloudKit) -> None:
    worker = account("w1")
    cloud.sync(worker)
    app = cloud.deploy("alice")
    version = cloud.sync(worker).json()["version"]
    thread, out = _held(cloud, worker, wait=20, known=version)
    time.sleep(0.3)
    stopped = cloud.client.post(f"/v1/apps/{app['app_id']}/stop", headers=cloud.key("alice"))
    assert stopped.status_code == 200, stopped.text
    thread.join(timeout=10)
    assert [d["desired"] for d in out["body"]["deployments"]] == ["stopped"]
    assert out["seconds"] < 5


def test_nothing_new_holds_for_the_wait_and_answers_the_same(cloud: CloudKit) -> None:
    worker = account("w1")
    version = cloud.sync(worker).json()["version"]
    began = time.monotonic()
    held = cloud.sync(worker, params={"wait": 0.6, "known": version})
    assert held.status_code == 200 and held.json()["version"] == version
    assert time.monotonic() - began >= 0.6


def test_a_stale_known_version_or_no_wait_answers_at_once(cloud: CloudKit) -> None:
    worker = account("w1")
    for params in ({"wait": 20, "known": "0" * 64}, {"known": "x"}, None):
        began = time.monotonic()
        answer = cloud.sync(worker, params=params)
        assert answer.status_code == 200, answer.text
        assert time.monotonic() - began < 3


def test_a_wait_beyond_the_cap_is_refused_with_a_code(cloud: CloudKit) -> None:
    worker = account("w1")
    for bad in ({"wait": 31}, {"wait": -1}, {"wait": "soon"}, {"known": "f" * 65}):
        refused = cloud.sync(worker, params=bad)
        assert refused.status_code == 422 and refused.json()["code"] == "invalid_request", bad


def test_an_unsigned_sync_is_refused_before_any_wait(cloud: CloudKit) -> None:
    began = time.monotonic()
    forged = cloud.sync(account("w1"), signer=account("mallory"), params={"wait": 20, "known": "a"})
    assert forged.status_code == 401 and time.monotonic() - began < 3
