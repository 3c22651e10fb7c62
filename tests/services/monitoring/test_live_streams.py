"""Live log streams over real HTTP: a worker's line reaches a follower quickly, a follower
resumes exactly after Last-Event-ID, and a quiet stream carries keepalives."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "browser"))
from console_stack import ConsoleStack, chatty_compose
from prometheus_client.parser import text_string_to_metric_families

from veil.services.cloud import monitoring


def _events(response: httpx.Response) -> Iterator[dict]:
    item: dict = {}
    for line in response.iter_lines():
        if line.startswith(":"):
            yield {"comment": line}
        elif line == "":
            if "data" in item:
                yield item
            item = {}
        else:
            name, _, value = line.partition(": ")
            item[name] = value


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[ConsoleStack]:
    running = ConsoleStack(tmp_path)
    try:
        yield running
    finally:
        running.close()


def _wait_for(response: httpx.Response, text: str, timeout: float) -> tuple[dict, float]:
    deadline = time.monotonic() + timeout
    for event in _events(response):
        if "data" in event and text in event["data"]:
            return event, time.monotonic()
        if time.monotonic() > deadline:
            break
    raise AssertionError(f"{text!r} not streamed within {timeout} s")


def test_follower_gets_new_lines_live_and_resumes_after_last_event_id(
    stack: ConsoleStack,
) -> None:
    app = stack.deploy("api", chatty_compose(boot_seconds=0.5))
    running = stack.wait_state(app["app_id"], "running")
    port = running["ports"]["8080"]
    url = f"/v1/apps/{app['app_id']}/logs"
    with stack.http.stream("GET", url, params={"follow": 1, "tail": 5}) as response:
        assert response.status_code == 200
        first = f"first-{time.time_ns()}"
        sent = time.monotonic()
        httpx.get(f"http://{port}/say", params={"text": first}, timeout=5)
        event, got = _wait_for(response, first, 5)
        assert got - sent < 2.0  # the worker ships every 0.3 s here; the hub wakes at once
        assert event["event"] == "log"
        lines = json.loads(event["data"])["lines"]
        assert int(event["id"]) == lines[-1]["id"]
        resume_at = event["id"]
    second = f"second-{time.time_ns()}"
    httpx.get(f"http://{port}/say", params={"text": second}, timeout=5)
    headers = {"Last-Event-ID": resume_at}
    with stack.http.stream("GET", url, params={"follow": 1}, headers=headers) as response:
        event, _ = _wait_for(response, second, 5)
    replayed = [x["line"] for x in json.loads(event["data"])["lines"]]
    assert first not in replayed  # nothing at or before the resume point comes again
    assert all(x["id"] > int(resume_at) for x in json.loads(event["data"])["lines"])

    # the same telemetry shows in Prometheus
    scrape = stack.http.get("/metrics").text
    names = {s.name for f in text_string_to_metric_families(scrape) for s in f.samples}
    assert {"veil_app_cpu_percent", "veil_app_memory_bytes", "veil_worker_up"} <= names


def test_quiet_stream_sends_keepalives(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(monitoring, "KEEPALIVE", 1)
    stack = ConsoleStack(tmp_path)
    silent = {"image": "python:3.12-slim",
              "command": [sys.executable, "-c", "import time; time.sleep(60)"]}  # fmt: skip
    try:
        app = stack.deploy("quiet", json.dumps({"services": {"idle": silent}}))
        url = f"/v1/apps/{app['app_id']}/logs"
        comments = []
        started = time.monotonic()
        with stack.http.stream("GET", url, params={"follow": 1}) as response:
            for event in _events(response):
                comments.append(event)
                if len(comments) >= 2 or time.monotonic() - started > 10:
                    break
        assert len(comments) == 2 and all("comment" in c for c in comments)
    finally:
        stack.close()
