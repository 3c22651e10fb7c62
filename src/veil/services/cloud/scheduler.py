"""Placement and rescheduling: pending apps onto online workers, offline workers' apps off.

One pass (`tick`) marks workers that stopped syncing offline (their apps go back to
pending), then places every pending app. Several replicas may run the loop: on
PostgreSQL a pass runs only while holding a transaction-level advisory lock, and on any
backend an app moves from pending to scheduled with a conditional UPDATE, so two passes
can never place one app twice.

`place` is `veil.cloud.placement.place` (helper `market`) once that module exists; until
then the first-fit below stands behind the same call and shapes.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from sqlalchemy import select, text, update
from sqlalchemy.orm import Session, sessionmaker

from veil.cloud.instance_types import GPU_MODELS, InstanceType, instance_type
from veil.services.cloud.database import SCHEDULER_LOCK, is_postgres
from veil.services.cloud.models import App, AppEvent, Deployment, Worker

log = logging.getLogger("veil.cloud.scheduler")
_GPU_NAMES = {number: name.upper() for name, number in GPU_MODELS.items()}


@dataclass(frozen=True)
class WorkerCapacity:
    """What a worker offers in total (its sync's `capacity`)."""

    worker: str
    vcpu: int
    memory_mb: int
    disk_gb: int
    gpu_model: int = 0
    gpu_count: int = 0


@dataclass(frozen=True)
class Placement:
    worker: str | None
    reason: str = ""


def _shortage(request: InstanceType) -> str:
    if request.gpu_count:
        gpu = _GPU_NAMES.get(request.gpu_model, f"GPU model {request.gpu_model}")
        plural = "GPU" if request.gpu_count == 1 else "GPUs"
        return f"no {gpu} with {request.gpu_count} {plural} free"
    return (
        f"no worker with {request.vcpu} vCPU, {request.memory_mb} MB memory and "
        f"{request.disk_gb} GB disk free"
    )


def first_fit(
    request: InstanceType,
    workers: Sequence[WorkerCapacity],
    running: Mapping[str, list[InstanceType]],
    providers: Mapping[str, str],
) -> Placement:
    """The provider running fewest instances first, then the worker with most vCPU free."""
    per_provider: dict[str, int] = defaultdict(int)
    for worker, instances in running.items():
        per_provider[providers.get(worker, worker)] += len(instances)
    best: tuple[int, int, str] | None = None
    for capacity in workers:
        used = running.get(capacity.worker, [])
        free_vcpu = capacity.vcpu - sum(i.vcpu for i in used)
        free_memory = capacity.memory_mb - sum(i.memory_mb for i in used)
        free_disk = capacity.disk_gb - sum(i.disk_gb for i in used)
        free_gpu = capacity.gpu_count - sum(i.gpu_count for i in used)
        if request.gpu_count and capacity.gpu_model != request.gpu_model:
            continue
        if (
            free_vcpu < request.vcpu
            or free_memory < request.memory_mb
            or free_disk < request.disk_gb
            or free_gpu < request.gpu_count
        ):
            continue
        key = (
            per_provider[providers.get(capacity.worker, capacity.worker)],
            -free_vcpu,
            capacity.worker,
        )
        if best is None or key < best:
            best = key
    if best is None:
        return Placement(None, _shortage(request))
    return Placement(best[2])


PlaceFn = Callable[
    [InstanceType, Sequence[WorkerCapacity], Mapping[str, list[InstanceType]], Mapping[str, str]],
    Placement,
]
place: PlaceFn = first_fit


def emit(session: Session, app_id: str, state: str, now: int, **data: object) -> None:
    """Append one step to the app's history (the SSE stream reads it)."""
    session.add(AppEvent(app_id=app_id, at=now, state=state, data={"state": state, **data}))


def set_status(session: Session, app: App, status: str, now: int, reason: str = "") -> None:
    if app.status == status and app.status_reason == reason:
        return
    app.status = status
    app.status_reason = reason
    app.updated_at = now
    emit(session, app.app_id, status, now, reason=reason) if reason else emit(
        session, app.app_id, status, now
    )


def active_deployment(session: Session, app_id: str) -> Deployment | None:
    return session.scalars(
        select(Deployment).where(Deployment.app_id == app_id, Deployment.ended_at.is_(None))
    ).first()


def end_deployments(session: Session, app_id: str, now: int) -> None:
    session.execute(
        update(Deployment)
        .where(Deployment.app_id == app_id, Deployment.ended_at.is_(None))
        .values(ended_at=now)
    )


@dataclass
class Scheduler:
    sessions: sessionmaker[Session]
    worker_timeout: int
    clock: Callable[[], float]

    def tick(self) -> int:
        """One pass; returns how many apps were placed (0 when another replica holds it)."""
        now = int(self.clock())
        with self.sessions() as session, session.begin():
            if (
                is_postgres(session.connection())
                and not session.execute(
                    text("SELECT pg_try_advisory_xact_lock(:k)"), {"k": SCHEDULER_LOCK}
                ).scalar()
            ):
                return 0
            self._expire_workers(session, now)
            return self._place_pending(session, now)

    def _expire_workers(self, session: Session, now: int) -> None:
        stale = session.scalars(
            select(Worker).where(
                Worker.online.is_(True), Worker.last_seen < now - self.worker_timeout
            )
        ).all()
        for worker in stale:
            worker.online = False
            lost = session.scalars(
                select(Deployment).where(
                    Deployment.worker == worker.address, Deployment.ended_at.is_(None)
                )
            ).all()
            for deployment in lost:
                deployment.ended_at = now
                app = session.get(App, deployment.app_id)
                if app is not None and app.deleted_at is None:
                    reason = f"worker {worker.address} went offline; rescheduling"
                    set_status(session, app, "pending", now, reason)
            log.info("worker %s offline (%d apps to reschedule)", worker.address, len(lost))

    def _place_pending(self, session: Session, now: int) -> int:
        pending = session.scalars(
            select(App)
            .where(App.status == "pending", App.deleted_at.is_(None))
            .order_by(App.updated_at)
        ).all()
        if not pending:
            return 0
        workers = session.scalars(select(Worker).where(Worker.online.is_(True))).all()
        capacities = [
            WorkerCapacity(w.address, w.vcpu, w.memory_mb, w.disk_gb, w.gpu_model, w.gpu_count)
            for w in workers
        ]
        providers = {w.address: w.provider for w in workers}
        running: dict[str, list[InstanceType]] = defaultdict(list)
        for worker, kind in session.execute(
            select(Deployment.worker, Deployment.instance_type).where(Deployment.ended_at.is_(None))
        ):
            running[worker].append(instance_type(kind))
        placed = 0
        for app in pending:
            request = instance_type(app.instance_type)
            decision = place(request, capacities, running, providers)
            if decision.worker is None:
                set_status(session, app, "pending", now, decision.reason)
                continue
            moved = session.execute(
                update(App)
                .where(App.app_id == app.app_id, App.status == "pending")
                .values(status="scheduled", status_reason="", updated_at=now)
            )
            if moved.rowcount != 1:  # type: ignore[attr-defined]
                continue  # another pass placed it first
            session.add(
                Deployment(
                    id=f"dep_{uuid.uuid4().hex}",
                    app_id=app.app_id,
                    worker=decision.worker,
                    instance_type=app.instance_type,
                    state="scheduled",
                    boot_progress=0,
                    error="",
                    ports={},
                    attestation=None,
                    created_at=now,
                    updated_at=now,
                )
            )
            emit(session, app.app_id, "scheduled", now, worker=decision.worker)
            running[decision.worker].append(request)
            placed += 1
        return placed

    def can_ever_fit(self, session: Session, request: InstanceType) -> Placement:
        """Whether some online worker could hold `request` if it ran nothing else."""
        workers = session.scalars(select(Worker).where(Worker.online.is_(True))).all()
        capacities = [
            WorkerCapacity(w.address, w.vcpu, w.memory_mb, w.disk_gb, w.gpu_model, w.gpu_count)
            for w in workers
        ]
        return place(request, capacities, {}, {w.address: w.provider for w in workers})

    def run(self, stop: threading.Event, interval: float) -> None:
        """The loop a replica runs in a thread until `stop` is set."""
        while not stop.wait(interval):
            try:
                self.tick()
            except Exception:  # a database hiccup must not end the loop
                log.exception("scheduler pass failed")
