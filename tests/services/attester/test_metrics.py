"""The attester's /metrics over real HTTP, parsed with prometheus_client's own parser:
accepted and refused heartbeats count, workers seen this epoch and their heartbeat ages
move with the clock, the epoch's log bytes match the log on disk, and refusals tallied in
the epoch survive a restart while the process counters start again."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families
from test_heartbeat_routes import EPOCHS, NOW, OTHER, Attester, beat_body

from veil.attestation.api import HEARTBEAT_REFUSALS
from veil.network.metrics import NetworkWatcher, read_attester


@pytest.fixture
def attester(tmp_path: Path) -> Iterator[Callable[..., Attester]]:
    made: list[Attester] = []

    def make(**extra: Any) -> Attester:
        made.append(Attester(tmp_path, **extra))
        return made[-1]

    yield make
    for one in made:
        one.stop()


def scrape(a: Attester) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    status, body, kind = a.get("/metrics")
    assert status == 200 and kind.startswith("text/plain"), body
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(body.decode())
        for s in family.samples
    }


def value(samples: dict[Any, float], name: str, **labels: str) -> float:
    return samples[(name, tuple(sorted(labels.items())))]


def test_counts_ages_and_log_bytes(attester: Callable[..., Attester]) -> None:
    a = attester()
    first = scrape(a)
    assert value(first, "veil_attester_heartbeats_accepted_total") == 0
    assert value(first, "veil_attester_epoch") == 2
    assert value(first, "veil_attester_workers_seen") == 0
    assert value(first, "veil_attester_heartbeat_log_bytes") == 0
    assert value(first, "veil_attester_last_heartbeat_age_seconds_count") == 0
    for reason in HEARTBEAT_REFUSALS:  # every reason is exported, zero or not
        assert value(first, "veil_attester_heartbeats_refused_total", reason=reason) == 0

    a.register()
    a.register(OTHER)
    assert a.beat(1)[0] == 200
    assert a.beat(2, NOW + 1)[0] == 200
    assert a.post("/v1/compute/heartbeats", beat_body(2, NOW + 1))[1]["code"] == "duplicate"
    assert a.post("/v1/compute/heartbeats", beat_body(5, NOW + 400))[1]["code"] == "future"
    got = scrape(a)
    accepted = value(got, "veil_attester_heartbeats_accepted_total")
    assert accepted == 2  # sequences 1 and 2 of WORKER
    assert value(got, "veil_attester_heartbeats_refused_total", reason="duplicate") == 1
    assert value(got, "veil_attester_heartbeats_refused_total", reason="future") == 1
    assert value(got, "veil_attester_epoch_refusals", reason="future") == 1
    assert value(got, "veil_attester_workers_seen") == 1  # OTHER registered, never beat
    assert value(got, "veil_attester_last_heartbeat_age_seconds_count") == 1
    log_bytes = value(got, "veil_attester_heartbeat_log_bytes")
    assert log_bytes > 0
    assert (
        log_bytes == (a.tmp_path / "attester.heartbeats" / "epoch-00000002.ndjson").stat().st_size
    )

    # OTHER beats 100 s later; WORKER's heartbeat is then 100 s old
    a.clock["now"] = NOW + 100
    assert a.beat(1, NOW + 100, key=OTHER)[0] == 200
    got = scrape(a)
    assert value(got, "veil_attester_workers_seen") == 2
    assert value(got, "veil_attester_last_heartbeat_age_seconds_bucket", le="60.0") == 1
    assert value(got, "veil_attester_last_heartbeat_age_seconds_bucket", le="120.0") == 2
    assert value(got, "veil_attester_last_heartbeat_age_seconds_bucket", le="+Inf") == 2
    assert value(got, "veil_attester_last_heartbeat_age_seconds_sum") == 100 + 0

    # the next epoch: nobody seen yet, the ages keep growing
    a.clock["now"] = EPOCHS.end(2) + 10
    got = scrape(a)
    assert value(got, "veil_attester_epoch") == 3
    assert value(got, "veil_attester_workers_seen") == 0
    assert value(got, "veil_attester_heartbeat_log_bytes") == 0
    assert value(got, "veil_attester_last_heartbeat_age_seconds_bucket", le="3600.0") == 2

    # a restart: process counters start again, the epoch's tallies come back from disk
    a.clock["now"] = NOW + 100
    a.stop()
    a.start()
    got = scrape(a)
    assert value(got, "veil_attester_heartbeats_accepted_total") == 0
    assert value(got, "veil_attester_heartbeats_refused_total", reason="future") == 0
    assert value(got, "veil_attester_epoch_refusals", reason="future") == 1
    assert value(got, "veil_attester_workers_seen") == 2  # recovered from the epoch's file


def test_unknown_metrics_paths_are_404(attester: Callable[..., Attester]) -> None:
    a = attester()
    assert a.get("/metricsx")[0] == 404
    assert a.get("/metrics?")[0] == 200


def test_the_network_watcher_reads_uptime_from_attesters(
    attester: Callable[..., Attester],
) -> None:
    """The control plane's chain watcher scrapes the attester's /metrics over HTTP; an
    attester that does not answer is shown down without spoiling the reading."""
    a = attester()
    a.register()
    a.register(OTHER)
    assert a.beat(1)[0] == 200
    a.clock["now"] = NOW + 900
    assert a.beat(1, NOW + 900, key=OTHER)[0] == 200
    assert a.post("/v1/compute/heartbeats", beat_body(1, NOW + 900))[1]["code"] == "duplicate"
    heard = read_attester(a.url)
    assert heard == {
        "url": a.url, "up": True, "epoch": 2, "workers_seen": 2, "workers_known": 2,
        "heard_10m": 1, "accepted_total": 2, "refused_total": 1,
    }  # fmt: skip
    down = read_attester("http://127.0.0.1:9", timeout=2)
    assert down["up"] is False and down["error"]

    chain = SimpleNamespace(deployment=SimpleNamespace(parameters={"attester_urls": [a.url]}))
    watcher = NetworkWatcher(chain)  # type: ignore[arg-type]
    assert watcher._attesters() == [heard]
    watcher.attester_urls = [a.url, "http://127.0.0.1:9"]
    watcher._snapshot = {"workers": {"by_model": [], "providers": 0}, "block": 1, "read_at": 1,
                         "vault": None, "migration": None, "rewards": None, "escrow": None,
                         "attesters": watcher._attesters()}  # fmt: skip
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in watcher.metrics()
        for s in family.samples
    }
    assert samples[("veil_network_attester_up", (("attester", a.url),))] == 1
    assert samples[("veil_network_attester_up", (("attester", "http://127.0.0.1:9"),))] == 0
    assert samples[("veil_network_attester_workers_seen", (("attester", a.url),))] == 2
    assert samples[("veil_network_attester_workers_heard_recently", (("attester", a.url),))] == 1
