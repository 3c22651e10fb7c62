"""Where the scheduler puts an instance: a worker with the capacity free, spread across
providers, or a reason a customer can act on when nothing fits.

The control plane decides placements in a loop while workers sync and apps come and go,
on a network of about 29,000 workers with ~100,000 apps. Recomputing every worker's free
capacity from the running apps
for each decision would cost a scan of all apps, so `CapacityIndex` keeps free capacity
per worker, updated as instances are reserved and released, and files workers in buckets
by capacity class (GPU model) and free amounts. A decision walks the buckets from the most
free downward and stops as soon as nothing lower can win.

Policy, in order: a worker fits when each of vCPU, memory, disk and GPUs (of the requested
model) is free; among fitting workers prefer the provider hosting the fewest instances of
the same app or customer (`spread`), then the worker with most free of the scarce
resource, then of memory and disk, then the lowest address, so the same state always
gives the same answer. CPU-only requests go to CPU workers and fall back to GPU workers'
spare CPU only when no CPU worker fits, so GPUs are not blocked by CPU apps while CPU
capacity exists.
"""

from __future__ import annotations

from bisect import bisect_left, insort
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from veil.cloud.instance_types import GPU_MODELS, InstanceType

_GPU_NAMES = {model: name.upper() for name, model in GPU_MODELS.items()}


@dataclass(frozen=True)
class WorkerCapacity:
    """What a worker offers in total, as its last sync reported it."""

    worker: str
    vcpu: int
    memory_mb: int
    disk_gb: int
    gpu_model: int = 0
    gpu_count: int = 0


@dataclass(frozen=True)
class Placement:
    """A decision: `worker` (and its provider) or None, with `reason` saying why not."""

    worker: str | None
    provider: str | None = None
    reason: str = ""


@dataclass
class _Free:
    """A worker's capacity not reserved by any instance (negative when it shrank below
    what already runs on it, until enough stops)."""

    worker: str
    provider: str
    model: int
    vcpu: int
    memory_mb: int
    disk_gb: int
    gpus: int

    def key(self) -> tuple[int, int, int, int]:
        return (self.gpus, self.vcpu, self.memory_mb, self.disk_gb)

    def fits(self, need: InstanceType) -> bool:
        gpus_ok = need.gpu_count == 0 or (
            self.model == need.gpu_model and self.gpus >= need.gpu_count
        )
        return (
            gpus_ok
            and self.vcpu >= need.vcpu
            and self.memory_mb >= need.memory_mb
            and self.disk_gb >= need.disk_gb
        )


class OverCommitError(ValueError):
    """A reservation that the worker's free capacity cannot hold."""


class CapacityIndex:
    """Free capacity per worker, filed by capacity class and free amounts, for fast and
    deterministic placement decisions. Not thread-safe: one scheduler loop owns it.

    Workers with the same class and the same free (GPUs, vCPU, memory, disk) share a
    bucket, kept sorted by address: every worker in a bucket fits a request or none
    does, so a decision tests buckets (a few hundred), not workers (tens of thousands),
    and within the first fitting bucket usually takes its first worker."""

    def __init__(self) -> None:
        self._free: dict[str, _Free] = {}
        # model -> (gpus, vcpu, memory, disk) free -> worker addresses, sorted
        self._buckets: dict[int, dict[tuple[int, int, int, int], list[str]]] = {}
        self._order: dict[int, list[tuple[int, int, int, int]]] = {}  # keys, most free first

    # --- bookkeeping -------------------------------------------------------------

    def add_worker(
        self, capacity: WorkerCapacity, provider: str, running: Iterable[InstanceType] = ()
    ) -> None:
        """Add or replace a worker with its total capacity and what already runs on it."""
        self.remove_worker(capacity.worker)
        free = _Free(
            worker=capacity.worker,
            provider=provider,
            model=capacity.gpu_model if capacity.gpu_count else 0,
            vcpu=capacity.vcpu,
            memory_mb=capacity.memory_mb,
            disk_gb=capacity.disk_gb,
            gpus=capacity.gpu_count,
        )
        for instance in running:
            _take(free, instance, 1)
        self._free[capacity.worker] = free
        self._file(free)

    def remove_worker(self, worker: str) -> None:
        """Forget a worker (offline): its instances are to be placed elsewhere."""
        free = self._free.pop(worker, None)
        if free is not None:
            self._unfile(free)

    def reserve(self, worker: str, instance: InstanceType) -> None:
        """Hold `instance`'s capacity on `worker`; refuses what would over-commit it."""
        free = self._worker(worker)
        if not free.fits(instance):
            raise OverCommitError(
                f"worker {worker}: {instance.name} does not fit its free capacity"
            )
        self._unfile(free)
        _take(free, instance, 1)
        self._file(free)

    def release(self, worker: str, instance: InstanceType) -> None:
        """Give back what `instance` held on `worker` (it stopped or moved)."""
        free = self._free.get(worker)
        if free is None:  # the worker went offline first: nothing to give back
            return
        self._unfile(free)
        _take(free, instance, -1)
        self._file(free)

    def free(self, worker: str) -> WorkerCapacity:
        """The worker's capacity not reserved now."""
        f = self._worker(worker)
        return WorkerCapacity(f.worker, f.vcpu, f.memory_mb, f.disk_gb, f.model, f.gpus)

    def provider_of(self, worker: str) -> str:
        return self._worker(worker).provider

    def __len__(self) -> int:
        return len(self._free)

    def __contains__(self, worker: object) -> bool:
        return worker in self._free

    # --- decisions ---------------------------------------------------------------

    def place(self, request: InstanceType, spread: Mapping[str, int] | None = None) -> Placement:
        """The best worker for `request`, without reserving it (call `reserve` once the
        deployment is assigned). `spread` counts, per provider, the instances of the same
        app or customer already placed there."""
        spread = spread or {}
        if request.gpu_count:
            tiers = [[request.gpu_model]]
        else:
            tiers = [[0], sorted(m for m in self._buckets if m)]
        for models in tiers:
            found = [self._best_in_class(m, request, spread) for m in models]
            candidates = [c for c in found if c is not None]
            if candidates:
                _rank, chosen = min(candidates, key=lambda c: c[0])
                return Placement(chosen.worker, chosen.provider)
        return Placement(None, None, self._why_not(request))

    def _best_in_class(
        self, model: int, request: InstanceType, spread: Mapping[str, int]
    ) -> tuple[tuple[int, tuple[int, int, int, int], str], _Free] | None:
        buckets = self._buckets.get(model)
        if not buckets:
            return None
        order = self._order.get(model)
        if order is None:
            order = self._order[model] = sorted(buckets, reverse=True)
        need = (request.gpu_count, request.vcpu, request.memory_mb, request.disk_gb)
        best: tuple[tuple[int, tuple[int, int, int, int], str], str] | None = None
        for key in order:
            if key[0] < need[0]:
                break  # sorted by free GPUs first: no lower bucket has enough
            if key[1] < need[1] or key[2] < need[2] or key[3] < need[3]:
                continue
            rank_key = (-key[0], -key[1], -key[2], -key[3])
            for worker in buckets[key]:
                count = spread.get(self._free[worker].provider, 0) if spread else 0
                rank = (count, rank_key, worker)
                if best is None or rank < best[0]:
                    best = (rank, worker)
                if count == 0:
                    break  # the rest of this bucket has higher addresses
            if best is not None and best[0][0] == 0:
                break  # nothing in a less free bucket can beat it
        if best is None:
            return None
        rank, worker = best
        return (rank[0], rank[1], rank[2]), self._free[worker]

    def _why_not(self, request: InstanceType) -> str:
        if not self._free:
            return "no worker online"
        if request.gpu_count:
            gpu = _GPU_NAMES.get(request.gpu_model, f"GPU model {request.gpu_model}")
            keys = list(self._buckets.get(request.gpu_model, {}))
            if not keys:
                return f"no {gpu} worker online"
            if max(k[0] for k in keys) < request.gpu_count:
                plural = "GPU" if request.gpu_count == 1 else "GPUs"
                return f"no {gpu} with {request.gpu_count} {plural} free"
            keys = [k for k in keys if k[0] >= request.gpu_count]
            where = f"{gpu} worker with {request.gpu_count} GPUs free"
        else:
            keys = [k for by_key in self._buckets.values() for k in by_key]
            where = "worker"
        wants = [
            (1, request.vcpu, f"{request.vcpu} vCPU"),
            (2, request.memory_mb, f"{request.memory_mb} MB memory"),
            (3, request.disk_gb, f"{request.disk_gb} GB disk"),
        ]
        for position, amount, text in wants:
            if max(k[position] for k in keys) < amount:
                return f"no {where} with {text} free"
        together = ", ".join(text for _position, _amount, text in wants)
        return f"no {where} with {together} free at once"

    # --- internals ---------------------------------------------------------------

    def _worker(self, worker: str) -> _Free:
        free = self._free.get(worker)
        if free is None:
            raise KeyError(f"worker {worker} is not online")
        return free

    def _file(self, free: _Free) -> None:
        by_key = self._buckets.setdefault(free.model, {})
        key = free.key()
        bucket = by_key.get(key)
        if bucket is None:
            by_key[key] = [free.worker]
            self._order.pop(free.model, None)
        else:
            insort(bucket, free.worker)

    def _unfile(self, free: _Free) -> None:
        by_key = self._buckets[free.model]
        key = free.key()
        bucket = by_key[key]
        del bucket[bisect_left(bucket, free.worker)]
        if not bucket:
            del by_key[key]
            self._order.pop(free.model, None)
            if not by_key:
                del self._buckets[free.model]


def _take(free: _Free, instance: InstanceType, sign: int) -> None:
    free.vcpu -= sign * instance.vcpu
    free.memory_mb -= sign * instance.memory_mb
    free.disk_gb -= sign * instance.disk_gb
    free.gpus -= sign * instance.gpu_count


def build_index(
    workers: Sequence[WorkerCapacity],
    running: Mapping[str, Sequence[InstanceType]],
    providers: Mapping[str, str],
) -> CapacityIndex:
    """An index over `workers` with `running[worker]` already reserved on each."""
    index = CapacityIndex()
    for capacity in workers:
        provider = providers.get(capacity.worker, capacity.worker)
        index.add_worker(capacity, provider, running.get(capacity.worker, ()))
    return index


def place(
    request: InstanceType,
    workers: Sequence[WorkerCapacity],
    running: Mapping[str, Sequence[InstanceType]],
    providers: Mapping[str, str],
    spread: Mapping[str, int] | None = None,
) -> Placement:
    """One decision from scratch (builds an index: linear in workers and apps). A
    scheduler loop keeps a `CapacityIndex` instead and calls its `place`."""
    return build_index(workers, running, providers).place(request, spread)
