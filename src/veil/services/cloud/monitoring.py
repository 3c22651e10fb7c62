"""Real-time monitoring: telemetry in from workers, logs and metrics out to owners, /metrics.

Routes:

- `POST /v1/workers/telemetry` (worker-signed like the sync, tag `veil-worker-telemetry`):
  metric samples and new log lines of the deployments the worker holds. Entries for a
  deployment that is not the worker's active one are dropped, so a worker can never write
  into another customer's app.
- `GET /v1/apps/{id}/logs?service=&since=&tail=&follow=1`: server-sent events, owner only.
  Each event (`event: log`) carries a batch of lines in arrival order and its `id` is the
  row id of the batch's last line, so `Last-Event-ID` resumes exactly after it (batching
  keeps 500 followers of a chatty app cheap; a single line is a batch of one). Keepalive
  comment every 15 s, so proxies never close a quiet stream.
- `GET /v1/apps/{id}/metrics?since=&step=&follow=`: JSON time series bucketed by `step`; with
  `follow=1` an SSE stream of each new sample.
- `GET /v1/apps/{id}/attestation/verdict`: the console's badge, verified on the server with
  the strict policy and the deployed compose hash.
- `GET /v1/network`: the public network overview the console's Network page shows.
- `GET /metrics`: Prometheus exposition (per app, per worker, the network).

Delivery: new lines are committed, then published to an in-process hub that wakes every
follower of that app at once (no polling on the hot path); a follower that fell behind the
hub's ring (or joined late) reads the database instead. Lines that reached another replica
are found by a database read after `DB_CATCHUP` quiet seconds, or every `DB_CATCHUP_BUSY`
seconds while this replica's hub is busy with the app: behind a load balancer every line
still arrives, late by at most that. A batch is serialized once for all its followers.

Retention is bounded: per app the newest `log_keep` lines; samples and lines older than
`retention_seconds` are deleted (checked at most once a minute, on ingestion).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import threading
import time
from collections import deque
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Depends, FastAPI, Header, Query, Request
from fastapi.responses import RedirectResponse, Response, StreamingResponse
from fastapi.staticfiles import StaticFiles
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.registry import CollectorRegistry
from pydantic import BaseModel, Field
from sqlalchemy import delete, func, insert, select, text
from sse_starlette.sse import EventSourceResponse
from starlette.concurrency import run_in_threadpool

from veil.cloud.worker_auth import TELEMETRY
from veil.services.cloud.alerts import router as alerts_router
from veil.services.cloud.api_errors import ApiError
from veil.services.cloud.apps import READ, owned_app
from veil.services.cloud.auth import Principal, authenticated_worker, state_of
from veil.services.cloud.models import AppLog, AppMetric, Deployment, WorkerMetric
from veil.services.cloud.scheduler import active_deployment
from veil.services.cloud.service import CloudState

log = logging.getLogger("veil.services.cloud.monitoring")
router = APIRouter(tags=["monitoring"])
KEEPALIVE = 15
#: A follower whose app was quiet this long reads the database (lines that reached another
#: replica); one whose app is busy on this replica does so every DB_CATCHUP_BUSY seconds.
DB_CATCHUP = 2.0
DB_CATCHUP_BUSY = 10.0
#: A worker's machine sample is stored at most this often (its apps' samples every time).
WORKER_SAMPLE_EVERY = 30
#: Lines a log stream reads from the database in one go.
PAGE = 1000
#: Seconds between two network overviews on /v1/network/stream.
NETWORK_PUSH = 3.0
CONSOLE_DIR = Path(__file__).parent / "console"


# --- the in-process hub -------------------------------------------------------------


@dataclass
class _Topic:
    ring: deque[dict[str, Any]]
    #: Every item with an id above `floor` that was published here is still in the ring.
    floor: int | None = None
    event: asyncio.Event = field(default_factory=asyncio.Event)
    encoded: tuple[tuple[int, int, int], bytes] | None = None


class Hub:
    """Wakes the followers of one app when its lines (or samples) arrive on this replica."""

    def __init__(self, keep: int = 5000) -> None:
        self.keep = keep
        self._topics: dict[str, _Topic] = {}

    def _topic(self, name: str) -> _Topic:
        topic = self._topics.get(name)
        if topic is None:
            topic = self._topics[name] = _Topic(deque(maxlen=self.keep))
        return topic

    def publish(self, name: str, items: list[dict[str, Any]]) -> None:
        """Called on the event loop with items in id order."""
        if not items:
            return
        topic = self._topic(name)
        if topic.floor is None:
            topic.floor = items[0]["id"] - 1
        overflow = len(topic.ring) + len(items) - self.keep
        if overflow > 0:
            topic.floor = [*topic.ring, *items][overflow - 1]["id"]
        topic.ring.extend(items)
        event, topic.event = topic.event, asyncio.Event()
        event.set()

    def after(self, name: str, last: int) -> list[dict[str, Any]] | None:
        """Items past `last`, or None when the ring cannot vouch it has all of them."""
        topic = self._topics.get(name)
        if topic is None or topic.floor is None or last < topic.floor:
            return None
        newer: list[dict[str, Any]] = []
        for item in reversed(topic.ring):  # O(new items): followers are usually caught up
            if item["id"] <= last:
                break
            newer.append(item)
        newer.reverse()
        return newer

    def encoded(self, name: str, batch: list[dict[str, Any]]) -> bytes:
        """The SSE frame of `batch`, serialized once for every follower that sends it."""
        topic = self._topic(name)
        key = (batch[0]["id"], batch[-1]["id"], len(batch))
        if topic.encoded is None or topic.encoded[0] != key:
            topic.encoded = (key, log_frame(batch))
        return topic.encoded[1]

    async def wait(self, name: str, timeout: float) -> None:
        event = self._topic(name).event
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(event.wait(), timeout)


def log_frame(batch: list[dict[str, Any]]) -> bytes:
    """One `event: log` frame; its id is the last line's, so Last-Event-ID resumes after it."""
    data = json.dumps({"lines": batch}, separators=(",", ":"))
    return f"id: {batch[-1]['id']}\nevent: log\ndata: {data}\n\n".encode()


@dataclass
class Monitoring:
    """What the monitoring routes share on one replica (hangs off `app.state.monitoring`)."""

    hub: Hub = field(default_factory=Hub)
    log_keep: int = 20_000
    retention_seconds: int = 7 * 86400
    #: veil.network.metrics.NetworkWatcher (or anything with `.snapshot() -> dict|None`).
    network: Any = None
    #: veil.services.cloud.alerts.Alerts, looked at every `alert_interval` seconds.
    alerts: Any = None
    alert_interval: float = 5.0
    #: /metrics is re-rendered in the background this often while it is scraped; 0: on
    #: every scrape.
    metrics_refresh_seconds: float = 10.0
    _last_prune: float = 0.0
    _scrape: tuple[float, bytes] | None = None
    _last_scrape: float = 0.0
    _refresher: threading.Thread | None = None
    _worker_stored: dict[str, int] = field(default_factory=dict)


def monitoring_of(request: Request) -> Monitoring:
    found: Monitoring = request.app.state.monitoring
    return found


def install(app: FastAPI, monitoring: Monitoring | None = None) -> Monitoring:
    """Mount the routes and the console on the control plane's app."""
    monitoring = monitoring or Monitoring()
    network = app.state.cloud.config.network
    if network is not None and monitoring.network is None:
        monitoring.network = network.start()  # reads the chain in its own thread
    app.state.monitoring = monitoring
    if monitoring.alerts is None:
        from veil.services.cloud.alerts import Alerts

        monitoring.alerts = Alerts()
    app.include_router(router)
    app.include_router(alerts_router)
    _run_alerts_with(app, monitoring)
    app.mount("/console", StaticFiles(directory=CONSOLE_DIR, html=True), name="console")

    @app.get("/console", include_in_schema=False)
    def console_root() -> RedirectResponse:
        return RedirectResponse("/console/")

    return monitoring


def _run_alerts_with(app: FastAPI, monitoring: Monitoring) -> None:
    """Look for alerts every `alert_interval` s for as long as the app serves (its lifespan)."""
    inner = app.router.lifespan_context

    @contextlib.asynccontextmanager
    async def lifespan(served: Any) -> AsyncIterator[Any]:
        async def loop() -> None:
            state = served.state.cloud
            while True:
                await asyncio.sleep(monitoring.alert_interval)
                try:
                    await run_in_threadpool(monitoring.alerts.tick, state)
                except Exception as error:  # the database went away for a moment
                    log.warning("alerts: %s", error)

        async with inner(served) as value:
            task = asyncio.create_task(loop())
            try:
                yield value
            finally:
                task.cancel()

    app.router.lifespan_context = lifespan


# --- telemetry in -------------------------------------------------------------------


class ServiceSample(BaseModel):
    up: bool = False
    cpu_pct: float = Field(0.0, ge=0)
    memory_bytes: int = Field(0, ge=0)
    read_bytes: int = Field(0, ge=0)
    write_bytes: int = Field(0, ge=0)
    processes: int = Field(0, ge=0)


class GpuSample(BaseModel):
    index: int = Field(ge=0)
    name: str = Field("", max_length=100)
    util_pct: float = Field(0.0, ge=0, le=100)
    memory_used_bytes: int = Field(0, ge=0)
    memory_total_bytes: int = Field(0, ge=0)
    temperature_c: int | None = None
    power_w: float | None = None


class LogLineIn(BaseModel):
    service: str = Field(min_length=1, max_length=63)
    at: int = Field(ge=0, description="unix milliseconds")
    line: str = Field(max_length=4000)


class AppTelemetryIn(BaseModel):
    deployment_id: str = Field(max_length=40)
    app_id: str = Field(max_length=42)
    state: str = Field("unknown", max_length=16)
    restarts: int = Field(0, ge=0)
    services: dict[str, ServiceSample] = Field(default_factory=dict, max_length=64)
    logs: list[LogLineIn] = Field(default_factory=list, max_length=20_000)


class MachineIn(BaseModel):
    cpu_pct: float = Field(0.0, ge=0)
    cpu_count: int = Field(1, ge=1)
    memory_used_bytes: int = Field(0, ge=0)
    memory_total_bytes: int = Field(0, ge=0)
    disk_used_bytes: int = Field(0, ge=0)
    disk_total_bytes: int = Field(0, ge=0)
    net_rx_bytes: int = Field(0, ge=0)
    net_tx_bytes: int = Field(0, ge=0)
    gpus: list[GpuSample] = Field(default_factory=list, max_length=64)


class TelemetryIn(BaseModel):
    worker: str = Field(max_length=42)
    at: int = Field(ge=0)
    machine: MachineIn
    apps: list[AppTelemetryIn] = Field(default_factory=list, max_length=1000)


def _store(
    state: CloudState, monitoring: Monitoring, worker: str, body: TelemetryIn
) -> tuple[dict[str, list[dict[str, Any]]], dict[str, dict[str, Any]]]:
    """Write what belongs to the worker's active deployments; answer what to publish."""
    now = state.now()
    lines_by_app: dict[str, list[dict[str, Any]]] = {}
    samples: dict[str, dict[str, Any]] = {}
    machine = body.machine
    with state.sessions() as session, session.begin():
        mine = {
            d.id: d.app_id
            for d in session.scalars(
                select(Deployment).where(Deployment.worker == worker, Deployment.ended_at.is_(None))
            ).all()
        }
        stored = monitoring._worker_stored.get(worker, 0)
        if now - stored >= WORKER_SAMPLE_EVERY:
            monitoring._worker_stored[worker] = now
            session.add(
                WorkerMetric(
                    worker=worker,
                    at=now,
                    cpu_pct=machine.cpu_pct,
                    memory_used_bytes=machine.memory_used_bytes,
                    memory_total_bytes=machine.memory_total_bytes,
                    disk_used_bytes=machine.disk_used_bytes,
                    disk_total_bytes=machine.disk_total_bytes,
                    net_rx_bytes=machine.net_rx_bytes,
                    net_tx_bytes=machine.net_tx_bytes,
                    gpus=[gpu.model_dump() for gpu in machine.gpus],
                )
            )
        for entry in body.apps:
            app_id = mine.get(entry.deployment_id)
            if app_id is None or app_id.lower() != entry.app_id.lower():
                continue  # not this worker's (any more): ignored, never attributed
            services = {name: sample.model_dump() for name, sample in entry.services.items()}
            sample = {
                "app_id": app_id,
                "worker": worker,
                "at": now,
                "cpu_pct": round(sum(s.cpu_pct for s in entry.services.values()), 2),
                "memory_bytes": sum(s.memory_bytes for s in entry.services.values()),
                "read_bytes": sum(s.read_bytes for s in entry.services.values()),
                "write_bytes": sum(s.write_bytes for s in entry.services.values()),
                "restarts": entry.restarts,
                "services": services,
                "gpus": [gpu.model_dump() for gpu in machine.gpus],
            }
            row = session.scalars(insert(AppMetric).returning(AppMetric.id), [sample]).one()
            samples[app_id] = {"id": row, **sample}
            if entry.logs:
                rows = [
                    {"app_id": app_id, "service": line.service, "at": line.at, "line": line.line}
                    for line in entry.logs
                ]
                ids = session.scalars(
                    insert(AppLog).returning(AppLog.id, sort_by_parameter_order=True), rows
                ).all()
                lines_by_app.setdefault(app_id, []).extend(
                    {"id": ident, "service": r["service"], "at": r["at"], "line": r["line"]}
                    for ident, r in zip(ids, rows, strict=True)
                )
    _prune(state, monitoring, lines_by_app)
    return lines_by_app, samples


def _prune(
    state: CloudState, monitoring: Monitoring, lines_by_app: dict[str, list[dict[str, Any]]]
) -> None:
    """Keep the newest `log_keep` lines per app written to now; age out the rest each minute."""
    with state.sessions() as session, session.begin():
        for app_id, lines in lines_by_app.items():
            newest = lines[-1]["id"]
            if newest % 200 >= len(lines) and len(lines) < 200:
                continue  # checked about every 200 lines, not on every shipment
            cutoff = session.scalar(
                select(AppLog.id)
                .where(AppLog.app_id == app_id)
                .order_by(AppLog.id.desc())
                .offset(monitoring.log_keep)
                .limit(1)
            )
            if cutoff is not None:
                session.execute(delete(AppLog).where(AppLog.app_id == app_id, AppLog.id <= cutoff))
        if time.monotonic() - monitoring._last_prune < 60:
            return
        monitoring._last_prune = time.monotonic()
        oldest = state.now() - monitoring.retention_seconds
        session.execute(delete(AppMetric).where(AppMetric.at < oldest))
        session.execute(delete(WorkerMetric).where(WorkerMetric.at < oldest))
        session.execute(delete(AppLog).where(AppLog.at < oldest * 1000))


@router.post("/v1/workers/telemetry")
async def telemetry(
    body: TelemetryIn,
    request: Request,
    x_veil_worker: str = Header(..., max_length=42),
    x_veil_timestamp: str = Header(..., max_length=20),
    x_veil_signature: str = Header(..., max_length=140),
) -> dict[str, Any]:
    """A worker's samples and new log lines for the apps it runs."""
    state = state_of(request)
    monitoring = monitoring_of(request)
    signer = await authenticated_worker(
        request, TELEMETRY, body.worker, x_veil_worker, x_veil_timestamp, x_veil_signature
    )
    lines, samples = await run_in_threadpool(_store, state, monitoring, signer, body)
    for app_id, batch in lines.items():
        monitoring.hub.publish("logs:" + app_id, batch)
    for app_id, sample in samples.items():
        monitoring.hub.publish("metrics:" + app_id, [sample])
    return {"accepted_lines": sum(len(b) for b in lines.values()), "apps": len(samples)}


# --- logs out -----------------------------------------------------------------------


def _owned(state: CloudState, who: Principal, app_id: str) -> str:
    with state.sessions() as session:
        return owned_app(session, who, app_id).app_id


def _read_lines(
    state: CloudState,
    app_id: str,
    after: int,
    service: str | None,
    since_ms: int | None,
    tail: int | None = None,
) -> list[dict[str, Any]]:
    query = select(AppLog.id, AppLog.service, AppLog.at, AppLog.line).where(
        AppLog.app_id == app_id, AppLog.id > after
    )
    if service:
        query = query.where(AppLog.service == service)
    if since_ms is not None:
        query = query.where(AppLog.at >= since_ms)
    if tail is not None:
        query = query.order_by(AppLog.id.desc()).limit(tail)
    else:
        query = query.order_by(AppLog.id).limit(PAGE)
    with state.engine.connect() as connection:
        rows = [dict(row._mapping) for row in connection.execute(query)]
    return rows[::-1] if tail is not None else rows


def _newest_id(state: CloudState, app_id: str) -> int:
    with state.engine.connect() as connection:
        found = connection.execute(
            select(func.max(AppLog.id)).where(AppLog.app_id == app_id)
        ).scalar()
    return int(found or 0)


def _since(value: str | None) -> int | None:
    """`since` in unix ms from unix seconds or a duration back from now (`90s`, `5m`, `2h`)."""
    if value is None or value == "":
        return None
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    try:
        if value[-1] in units:
            return int((time.time() - float(value[:-1]) * units[value[-1]]) * 1000)
        return int(float(value) * 1000)
    except ValueError:
        raise ApiError(
            400, "bad_since", f"since={value!r}: expected unix seconds or a duration like 5m"
        ) from None


@router.get(
    "/v1/apps/{app_id}/logs",
    responses={200: {"content": {"text/event-stream": {}}, "description": "server-sent events"}},
)
async def logs(
    app_id: str,
    request: Request,
    who: Principal = Depends(READ),
    service: str | None = Query(None, max_length=63, description="Only this service's lines."),
    since: str | None = Query(None, description="Unix seconds, or a duration back: 30s, 5m, 2h."),
    tail: int | None = Query(None, ge=1, le=10_000, description="Start with the last N lines."),
    follow: bool = Query(False, description="Keep the stream open for new lines."),
    last_event_id: str | None = Header(None, alias="Last-Event-ID"),
) -> StreamingResponse:
    """The app's log lines as server-sent events (owner only); resume with Last-Event-ID."""
    state = state_of(request)
    hub = monitoring_of(request).hub
    real_id = await run_in_threadpool(_owned, state, who, app_id)
    since_ms = _since(since)
    resume = last_event_id is not None and last_event_id.isdigit()
    after = int(last_event_id) if resume and last_event_id else 0
    topic = "logs:" + real_id

    def wanted(item: dict[str, Any]) -> bool:
        return (service is None or item["service"] == service) and (
            since_ms is None or item["at"] >= since_ms
        )

    async def stream() -> AsyncIterator[bytes]:
        # Frames are written directly (a StreamingResponse, not an event-object pipeline):
        # one shared bytes object per batch for all of an app's followers keeps 500 of them
        # cheap (bench/console.py).
        nonlocal after
        yield b"retry: 2000\n\n"
        if tail is not None and not resume:
            batch = await run_in_threadpool(_read_lines, state, real_id, 0, service, since_ms, tail)
            if batch:
                after = batch[-1]["id"]
                yield log_frame(batch)
            else:
                after = await run_in_threadpool(_newest_id, state, real_id)
        while True:  # the backlog, a page at a time
            batch = await run_in_threadpool(_read_lines, state, real_id, after, service, since_ms)
            if batch:
                after = batch[-1]["id"]
                yield log_frame(batch)
            if len(batch) < PAGE:
                break
        if not follow:
            return
        caught_up = last_sent = time.monotonic()
        while True:
            before = time.monotonic()
            await hub.wait(topic, DB_CATCHUP)
            now = time.monotonic()
            quiet = now - before >= DB_CATCHUP
            fresh = hub.after(topic, after)
            if fresh is None or quiet or now - caught_up >= DB_CATCHUP_BUSY:
                fresh = await run_in_threadpool(
                    _read_lines, state, real_id, after, service, since_ms
                )
                caught_up = time.monotonic()
            if fresh:
                after = fresh[-1]["id"]
                batch = [item for item in fresh if wanted(item)]
                if batch:
                    last_sent = time.monotonic()
                    yield (
                        hub.encoded(topic, batch) if len(batch) == len(fresh) else log_frame(batch)
                    )
            if time.monotonic() - last_sent >= KEEPALIVE:
                last_sent = time.monotonic()
                yield b": keepalive\n\n"

    return StreamingResponse(
        stream(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


# --- metrics out --------------------------------------------------------------------


def _samples(state: CloudState, app_id: str, since: int) -> list[dict[str, Any]]:
    query = (
        select(
            AppMetric.id,
            AppMetric.at,
            AppMetric.cpu_pct,
            AppMetric.memory_bytes,
            AppMetric.read_bytes,
            AppMetric.write_bytes,
            AppMetric.restarts,
            AppMetric.services,
            AppMetric.gpus,
        )
        .where(AppMetric.app_id == app_id, AppMetric.at >= since)
        .order_by(AppMetric.at, AppMetric.id)
    )
    with state.sessions() as session:
        return [dict(row._mapping) for row in session.execute(query)]


def _gpu_util(gpus: list[dict[str, Any]]) -> float | None:
    if not gpus:
        return None
    return sum(float(g.get("util_pct", 0)) for g in gpus) / len(gpus)


def _gpu_memory(gpus: list[dict[str, Any]]) -> int | None:
    if not gpus:
        return None
    return sum(int(g.get("memory_used_bytes", 0)) for g in gpus)


def bucketed(samples: Iterable[dict[str, Any]], step: int) -> list[dict[str, Any]]:
    """Samples averaged per `step`-second bucket (restarts: the highest count seen)."""
    buckets: dict[int, list[dict[str, Any]]] = {}
    for sample in samples:
        buckets.setdefault(sample["at"] // step * step, []).append(sample)
    points = []
    for start in sorted(buckets):
        group = buckets[start]
        gpu = [u for u in (_gpu_util(s["gpus"]) for s in group) if u is not None]
        gpu_mem = [m for m in (_gpu_memory(s["gpus"]) for s in group) if m is not None]
        points.append(
            {
                "t": start,
                "cpu_pct": round(sum(s["cpu_pct"] for s in group) / len(group), 2),
                "memory_bytes": sum(s["memory_bytes"] for s in group) // len(group),
                "read_bytes": max(s["read_bytes"] for s in group),
                "write_bytes": max(s["write_bytes"] for s in group),
                "restarts": max(s["restarts"] for s in group),
                "gpu_util_pct": round(sum(gpu) / len(gpu), 2) if gpu else None,
                "gpu_memory_bytes": sum(gpu_mem) // len(gpu_mem) if gpu_mem else None,
                "samples": len(group),
            }
        )
    return points


@router.get("/v1/apps/{app_id}/metrics", response_model=None)
async def metrics(
    app_id: str,
    request: Request,
    who: Principal = Depends(READ),
    since: int | None = Query(None, ge=0, description="Unix seconds (default: an hour ago)."),
    step: int = Query(10, ge=1, le=86_400, description="Bucket width in seconds."),
    follow: bool = Query(False, description="Then stream each new sample as SSE."),
) -> Response | EventSourceResponse:
    """CPU, memory, disk I/O, restarts and GPU of the app as a time series (owner only)."""
    state = state_of(request)
    hub = monitoring_of(request).hub
    real_id = await run_in_threadpool(_owned, state, who, app_id)
    start = state.now() - 3600 if since is None else since
    samples = await run_in_threadpool(_samples, state, real_id, start)
    latest = samples[-1] if samples else None
    body = {
        "app_id": real_id,
        "since": start,
        "step": step,
        "points": bucketed(samples, step),
        "latest": _public_sample(latest) if latest else None,
    }
    if not follow:
        return Response(json.dumps(body), media_type="application/json")
    topic = "metrics:" + real_id

    async def stream() -> AsyncIterator[dict[str, str]]:
        after = latest["id"] if latest else 0
        yield {"event": "series", "data": json.dumps(body)}
        while True:
            await hub.wait(topic, DB_CATCHUP)
            fresh = hub.after(topic, after)
            if fresh is None:
                rows = await run_in_threadpool(_samples, state, real_id, state.now() - 120)
                fresh = [row for row in rows if row["id"] > after]
            for sample in fresh:
                after = sample["id"]
                yield {"id": str(sample["id"]), "event": "sample",
                       "data": json.dumps(_public_sample(sample))}  # fmt: skip

    return EventSourceResponse(stream(), ping=KEEPALIVE)


def _public_sample(sample: dict[str, Any]) -> dict[str, Any]:
    return {
        "t": sample["at"],
        "cpu_pct": sample["cpu_pct"],
        "memory_bytes": sample["memory_bytes"],
        "read_bytes": sample["read_bytes"],
        "write_bytes": sample["write_bytes"],
        "restarts": sample["restarts"],
        "gpu_util_pct": _gpu_util(sample["gpus"]),
        "gpu_memory_bytes": _gpu_memory(sample["gpus"]),
        "services": sample["services"],
        "gpus": sample["gpus"],
    }


# --- attestation badge --------------------------------------------------------------


def _verdict(state: CloudState, who: Principal, app_id: str) -> dict[str, Any]:
    from veil.tee.evidence import evidence_from_json
    from veil.tee.policy import DEFAULT_POLICY, ReportDataRule
    from veil.tee.verification import verify_evidence

    with state.sessions() as session:
        app = owned_app(session, who, app_id)
        deployment = active_deployment(session, app.app_id)
        evidence_doc = deployment.attestation if deployment is not None else None
        compose_hash = app.compose_hash
        worker = deployment.worker if deployment is not None else None
    if not evidence_doc:
        return {"state": "pending", "compose_hash": compose_hash, "worker": worker}
    try:
        evidence = evidence_from_json(evidence_doc, f"app {app_id} attestation")
    except Exception as error:
        return {
            "state": "unverified",
            "reasons": [str(error)],
            "compose_hash": compose_hash,
            "worker": worker,
        }
    rules = replace(
        DEFAULT_POLICY,
        allowed_compose_hashes=(compose_hash,),
        report_data=ReportDataRule(),
        require_event_log=True,
    )
    verdict = verify_evidence(evidence, None, rules)
    measured = verdict.app
    return {
        "state": "verified" if verdict.accepted else "unverified",
        "simulated": verdict.simulated,
        "tcb_status": verdict.tcb_status,
        "tee": verdict.tee,
        "reasons": list(verdict.reasons),
        "compose_hash": compose_hash,
        "measured_compose_hash": getattr(measured, "compose_hash", None),
        "os_image_hash": evidence_doc.get("os_image_hash"),
        "quote_hash": verdict.quote_hash,
        "worker": worker,
    }


@router.get("/v1/apps/{app_id}/attestation/verdict")
async def attestation_verdict(
    app_id: str, request: Request, who: Principal = Depends(READ)
) -> dict[str, Any]:
    """The running instance's evidence judged under the strict policy with the deployed
    compose hash: what the console's badge shows (`pending`, `verified`, `unverified`)."""
    return await run_in_threadpool(_verdict, state_of(request), who, app_id)


# --- the network --------------------------------------------------------------------

_WORKER_COUNTS = text(
    "SELECT gpu_model, online, COUNT(*) AS n, SUM(vcpu) AS vcpu, SUM(gpu_count) AS gpus "
    "FROM workers GROUP BY gpu_model, online"
)
_PROVIDER_COUNTS = text(
    "SELECT provider, online, COUNT(*) AS n FROM workers GROUP BY provider, online"
)
_APP_COUNTS = text(
    "SELECT status, COUNT(*) AS n FROM apps WHERE deleted_at IS NULL GROUP BY status"
)


def network_view(state: CloudState, monitoring: Monitoring) -> dict[str, Any]:
    """Workers by model, provider and status as this control plane sees them, and what
    the chain watcher last read (None when none is configured)."""
    with state.engine.connect() as connection:
        models: dict[int, dict[str, int]] = {}
        for row in connection.execute(_WORKER_COUNTS):
            entry = models.setdefault(
                int(row.gpu_model), {"online": 0, "offline": 0, "vcpu": 0, "gpus": 0}
            )
            entry["online" if row.online else "offline"] += int(row.n)
            entry["vcpu"] += int(row.vcpu or 0)
            entry["gpus"] += int(row.gpus or 0)
        providers: dict[str, dict[str, int]] = {}
        for row in connection.execute(_PROVIDER_COUNTS):
            entry = providers.setdefault(row.provider, {"online": 0, "offline": 0})
            entry["online" if row.online else "offline"] += int(row.n)
        apps = {row.status: int(row.n) for row in connection.execute(_APP_COUNTS)}
    snapshot = monitoring.network.snapshot() if monitoring.network is not None else None
    return {
        "workers": {
            "online": sum(m["online"] for m in models.values()),
            "offline": sum(m["offline"] for m in models.values()),
            "by_model": [{"gpu_model": k, **v} for k, v in sorted(models.items())],
            "by_provider": [
                {"provider": name, **counts}
                for name, counts in sorted(
                    providers.items(), key=lambda item: (-item[1]["online"], item[0])
                )[:50]
            ],
            "providers": len(providers),
        },
        "apps": apps,
        "chain": snapshot,
    }


@router.get("/v1/network")
async def network(request: Request) -> dict[str, Any]:
    """The public overview the console's Network page shows (no key needed)."""
    return await run_in_threadpool(network_view, state_of(request), monitoring_of(request))


@router.get(
    "/v1/network/stream",
    responses={200: {"content": {"text/event-stream": {}}, "description": "server-sent events"}},
)
async def network_stream(request: Request) -> EventSourceResponse:
    """The overview as server-sent events (`event: network`), one every NETWORK_PUSH s."""
    state = state_of(request)
    monitoring = monitoring_of(request)

    async def stream() -> AsyncIterator[dict[str, str]]:
        while True:
            view = await run_in_threadpool(network_view, state, monitoring)
            yield {"event": "network", "data": json.dumps(view)}
            await asyncio.sleep(NETWORK_PUSH)

    return EventSourceResponse(stream(), ping=KEEPALIVE)


# --- Prometheus ---------------------------------------------------------------------

_APP_ROWS = text("SELECT a.app_id, a.name, a.status FROM apps a WHERE a.deleted_at IS NULL")
_RECENT_APP_METRICS = text(
    "SELECT app_id, at, id, cpu_pct, memory_bytes, read_bytes, write_bytes, restarts "
    "FROM app_metrics WHERE at >= :since"
)
_OPEN_LEASES = text("SELECT app_id, lease_id, last_runway FROM leases WHERE closed_at IS NULL")
_WORKER_ROWS = text("SELECT address, provider, gpu_model, online, last_seen FROM workers")
_RECENT_WORKER_METRICS = text(
    "SELECT worker, at, id, cpu_pct, memory_used_bytes, disk_used_bytes "
    "FROM worker_metrics WHERE at >= :since"
)
APP_STATES = ("pulling", "starting", "running", "stopped", "failed", "pending", "deleted")
#: How far back /metrics looks for a latest sample (a worker ships every few seconds and
#: its machine sample is stored at most every WORKER_SAMPLE_EVERY seconds).
SAMPLE_WINDOW = 90


def _newest(rows: Iterable[Any], key: str) -> dict[str, Any]:
    latest: dict[str, Any] = {}
    for row in rows:
        name = getattr(row, key)
        held = latest.get(name)
        if held is None or (row.at, row.id) > (held.at, held.id):
            latest[name] = row
    return latest


def _family(out: list[str], name: str, help_text: str, lines: Iterable[str]) -> None:
    out.append(f"# HELP {name} {help_text}\n# TYPE {name} gauge\n")
    out.extend(lines)


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _per_item_block(
    state: CloudState, network: Any = None
) -> tuple[str, dict[str, int], dict[tuple[str, str], int]]:
    """The high-cardinality families (one series per app and per worker), written directly
    in the exposition format: at 29,000 workers prometheus-client's per-sample objects cost
    seconds, this costs a few hundred milliseconds. Label values are checksummed addresses,
    ints and escaped app names."""
    since = state.now() - SAMPLE_WINDOW
    with state.engine.connect() as connection:
        apps = connection.execute(_APP_ROWS).all()
        app_samples = _newest(connection.execute(_RECENT_APP_METRICS, {"since": since}), "app_id")
        workers = connection.execute(_WORKER_ROWS).all()
        leases = connection.execute(_OPEN_LEASES).all()
        machine = _newest(connection.execute(_RECENT_WORKER_METRICS, {"since": since}), "worker")
    out: list[str] = []
    counts: dict[str, int] = {}
    for row in apps:
        counts[row.status] = counts.get(row.status, 0) + 1
    up = {"running": 1}
    _family(
        out,
        "veil_app_up",
        "1 when the app is running",
        (
            f'veil_app_up{{app_id="{r.app_id}",name="{_label(r.name)}"}} {up.get(r.status, 0)}\n'
            for r in apps
        ),
    )
    for name, column, help_text in (
        ("veil_app_cpu_percent", "cpu_pct", "App CPU, 100 = one core"),
        ("veil_app_memory_bytes", "memory_bytes", "App resident memory"),
        ("veil_app_read_bytes", "read_bytes", "App bytes read from disk"),
        ("veil_app_write_bytes", "write_bytes", "App bytes written to disk"),
        ("veil_app_restarts", "restarts", "App service restarts"),
    ):
        lines = (f'{name}{{app_id="{a}"}} {getattr(m, column)}\n' for a, m in app_samples.items())
        _family(out, name, help_text, lines)
    _family(
        out,
        "veil_app_runway_seconds",
        "Seconds until the app's lease pauses (apps with an open lease)",
        (f'veil_app_runway_seconds{{app_id="{app}"}} {left}\n'
         for app, left in _app_runways(leases, network).items()),
    )  # fmt: skip
    by_model: dict[tuple[str, str], int] = {}
    for row in workers:
        key = (str(row.gpu_model), "online" if row.online else "offline")
        by_model[key] = by_model.get(key, 0) + 1
    _family(
        out,
        "veil_worker_up",
        "1 when the worker synced within the timeout",
        (
            f'veil_worker_up{{worker="{r.address}",provider="{r.provider}",'
            f'gpu_model="{r.gpu_model}"}} {1 if r.online else 0}\n'
            for r in workers
        ),
    )
    _family(
        out,
        "veil_worker_last_sync_timestamp_seconds",
        "The worker's last sync",
        (
            f'veil_worker_last_sync_timestamp_seconds{{worker="{r.address}"}} {r.last_seen}\n'
            for r in workers
        ),
    )
    for name, column, help_text in (
        ("veil_worker_cpu_percent", "cpu_pct", "Machine CPU %"),
        ("veil_worker_memory_used_bytes", "memory_used_bytes", "Machine memory in use"),
        ("veil_worker_disk_used_bytes", "disk_used_bytes", "Disk in use under the apps"),
    ):
        lines = (f'{name}{{worker="{w}"}} {getattr(m, column)}\n' for w, m in machine.items())
        _family(out, name, help_text, lines)
    return "".join(out), counts, by_model


def _app_runways(leases: Iterable[Any], network: Any) -> dict[str, int]:
    """Each app's runway: projected by the chain watcher at its last reading when it has
    one, else what the billing watcher stored at its last pass. An app with two open
    leases (a version moving) shows the longer one: that is when it actually stops."""
    runways: dict[str, int] = {}
    lookup = getattr(network, "lease_runway", None)  # a stand-in watcher may not have it
    for row in leases:
        reading = lookup(int(row.lease_id, 16)) if lookup is not None else None
        left = reading[1] if reading is not None else row.last_runway
        if left is not None:
            runways[row.app_id] = max(runways.get(row.app_id, 0), int(left))
    return runways


class _Aggregates:
    """The low-cardinality families, through prometheus-client (and the chain watcher's)."""

    def __init__(
        self, counts: dict[str, int], by_model: dict[tuple[str, str], int], network: Any
    ) -> None:
        self.counts = counts
        self.by_model = by_model
        self.network = network

    def collect(self) -> Iterable[Metric]:
        status = GaugeMetricFamily("veil_apps", "Apps by status", labels=["status"])
        for name in sorted(set(APP_STATES) | set(self.counts)):
            status.add_metric([name], float(self.counts.get(name, 0)))
        synced = GaugeMetricFamily(
            "veil_cloud_workers",
            "Workers synced with this control plane, by GPU model and status",
            labels=["gpu_model", "status"],
        )
        for (model, state_name), count in sorted(self.by_model.items()):
            synced.add_metric([model, state_name], float(count))
        yield from (status, synced)
        if self.network is not None:
            yield from self.network.metrics()


def render_metrics(state: CloudState, monitoring: Monitoring) -> bytes:
    block, counts, by_model = _per_item_block(state, monitoring.network)
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Aggregates(counts, by_model, monitoring.network))
    return bytes(generate_latest(registry)) + block.encode()


def _refresh_metrics(state: CloudState, monitoring: Monitoring) -> None:
    """Re-render /metrics every `metrics_refresh_seconds` while someone scrapes; stop after
    three idle periods (so an unscraped replica spends nothing)."""
    try:
        while time.monotonic() - monitoring._last_scrape < 3 * monitoring.metrics_refresh_seconds:
            time.sleep(monitoring.metrics_refresh_seconds)
            try:
                monitoring._scrape = (time.monotonic(), render_metrics(state, monitoring))
            except Exception as error:  # a database hiccup: keep serving the last render
                log.warning("/metrics refresh: %s", error)
    finally:
        monitoring._refresher = None


@router.get("/metrics", include_in_schema=False)
async def prometheus(request: Request) -> Response:
    """Prometheus exposition: apps, workers, and the network as the chain watcher last read it.
    Rendered in the background every `metrics_refresh_seconds` (the first scrape renders),
    so a scrape never waits on a 29,000-worker render."""
    state = state_of(request)
    monitoring = monitoring_of(request)
    monitoring._last_scrape = time.monotonic()
    cached = monitoring._scrape
    fresh_enough = monitoring.metrics_refresh_seconds * 2
    if cached is None or time.monotonic() - cached[0] > fresh_enough:
        body = await run_in_threadpool(render_metrics, state, monitoring)
        monitoring._scrape = (time.monotonic(), body)
    else:
        body = cached[1]
    if monitoring.metrics_refresh_seconds > 0 and monitoring._refresher is None:
        monitoring._refresher = threading.Thread(
            target=_refresh_metrics, args=(state, monitoring), name="veil-metrics", daemon=True
        )
        monitoring._refresher.start()
    age = time.monotonic() - (monitoring._scrape or (time.monotonic(), b""))[0]
    return Response(
        body, media_type=CONTENT_TYPE_LATEST, headers={"X-Veil-Metrics-Age": f"{age:.1f}"}
    )
