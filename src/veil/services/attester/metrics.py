"""`GET /metrics` at the attester: heartbeats and uptime in the Prometheus format.

The attester is the only party that sees heartbeats arrive, so uptime is its fact to
export: the control plane reads the chain, and the chain holds only each epoch's totals
once they are finalized. Everything here is read at scrape time from state the heartbeat
path keeps anyway (two counters, each worker's latest heartbeat, the journal's sizes), so
serving it costs the hot path nothing beyond an integer increment.

Cardinality stays bounded however many workers heartbeat: per-worker ages go into one
histogram, refusals are labelled by reason only (a fixed set), and nothing is labelled by
worker address.
"""

from __future__ import annotations

from collections.abc import Iterable

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector, CollectorRegistry

from veil.attestation import api
from veil.services.attester.heartbeats import HeartbeatService
from veil.services.attester.requests import Refused
from veil.services.attester.server import Reader

PATH = "/metrics"
#: Upper bounds (seconds) of the heartbeat-age histogram: a worker heartbeats every
#: minute or so, so the interesting range is a minute to a day.
AGE_BUCKETS = (30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0, 21600.0, 86400.0)


class HeartbeatCollector(Collector):
    """Families read from a HeartbeatService when Prometheus scrapes."""

    def __init__(self, beats: HeartbeatService) -> None:
        self.beats = beats

    def collect(self) -> Iterable[Metric]:
        beats = self.beats
        now = beats.clock()
        epoch = beats._epoch_now()
        yield CounterMetricFamily(
            "veil_attester_heartbeats_accepted",
            "Heartbeats that passed every check since the attester started",
            value=beats.accepted_total,
        )
        refused = CounterMetricFamily(
            "veil_attester_heartbeats_refused",
            "Heartbeats refused since the attester started, by reason",
            labels=["reason"],
        )
        totals = dict(beats.journal.refused_total)
        for reason in api.HEARTBEAT_REFUSALS:
            refused.add_metric([reason], totals.get(reason, 0))
        yield refused
        if epoch is None:  # before genesis: no epoch, no uptime yet
            return
        yield GaugeMetricFamily("veil_attester_epoch", "Current heartbeat epoch", value=epoch)
        last = beats.last_heard()
        yield GaugeMetricFamily(
            "veil_attester_workers_seen",
            "Workers with an accepted heartbeat in the current epoch",
            value=sum(1 for seen_epoch, _ in last if seen_epoch == epoch),
        )
        yield _age_histogram(now - received for _, received in last)
        yield GaugeMetricFamily(
            "veil_attester_heartbeat_log_bytes",
            "Bytes of the current epoch's heartbeat log on disk (fsynced whole lines)",
            value=beats.journal.committed(epoch),
        )
        epoch_refusals = GaugeMetricFamily(
            "veil_attester_epoch_refusals",
            "Refusals tallied in the current epoch's log, by reason (survive restarts)",
            labels=["reason"],
        )
        by_reason: dict[str, int] = {}
        for (_worker, reason), count in beats.journal.tallies_of(epoch).items():
            by_reason[reason] = by_reason.get(reason, 0) + count
        for reason in api.HEARTBEAT_REFUSALS:
            epoch_refusals.add_metric([reason], by_reason.get(reason, 0))
        yield epoch_refusals


def _age_histogram(ages: Iterable[int]) -> HistogramMetricFamily:
    counts = [0] * len(AGE_BUCKETS)
    total, total_age = 0, 0.0
    for age in ages:
        age = max(0, age)
        total += 1
        total_age += age
        for i, bound in enumerate(AGE_BUCKETS):
            if age <= bound:
                counts[i] += 1
    buckets = [(str(bound), count) for bound, count in zip(AGE_BUCKETS, counts, strict=True)]
    buckets.append(("+Inf", total))
    return HistogramMetricFamily(
        "veil_attester_last_heartbeat_age_seconds",
        "Seconds since each known worker's latest accepted heartbeat (one per worker)",
        buckets=buckets,
        sum_value=total_age,
    )


def reader(beats: HeartbeatService) -> Reader:
    """The `/metrics` read route: the exposition of a registry holding only our families."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(HeartbeatCollector(beats))

    def read(suffix: str) -> tuple[str, bytes]:
        if suffix and not suffix.startswith("?"):
            raise Refused(404, f"no route GET {PATH}{suffix}")
        return CONTENT_TYPE_LATEST, generate_latest(registry)

    return read
