"""Placement: fit, spread across providers, reasons, determinism, and the index kept in step
with reservations (never over-commits, places whenever some worker fits)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from veil.cloud.instance_types import CPU_TYPES, GPU_MODELS, instance_type
from veil.cloud.placement import (
    CapacityIndex,
    OverCommitError,
    Placement,
    WorkerCapacity,
    build_index,
    place,
)

SMALL = instance_type("tdx.small")
LARGE = instance_type("tdx.large")
H100 = instance_type("h100")
H200X2 = instance_type("h200x2")


def cpu_worker(name: str, vcpu: int = 8, memory_mb: int = 16_384, disk_gb: int = 200):
    return WorkerCapacity(name, vcpu, memory_mb, disk_gb)


def gpu_worker(name: str, model: str, gpus: int):
    return WorkerCapacity(name, 12 * gpus, 131_072 * gpus, 400 * gpus, GPU_MODELS[model], gpus)


def test_places_on_the_worker_with_most_free_and_reports_its_provider() -> None:
    workers = [cpu_worker("0xa"), cpu_worker("0xb")]
    running = {"0xa": [SMALL, SMALL]}
    got = place(SMALL, workers, running, {"0xa": "p1", "0xb": "p2"})
    assert got == Placement("0xb", "p2", "")


def test_spreads_an_app_across_providers_before_most_free() -> None:
    workers = [cpu_worker("0xa", vcpu=64), cpu_worker("0xb", vcpu=8), cpu_worker("0xc", vcpu=8)]
    providers = {"0xa": "p1", "0xb": "p1", "0xc": "p2"}
    # The app already runs once on p1: the emptier p1 worker loses to p2's.
    got = place(SMALL, workers, {}, providers, spread={"p1": 1})
    assert got.worker == "0xc"
    assert place(SMALL, workers, {}, providers).worker == "0xa"


def test_ties_break_on_the_lowest_address_whatever_the_order() -> None:
    workers = [cpu_worker("0xc"), cpu_worker("0xa"), cpu_worker("0xb")]
    for order in (workers, workers[::-1], workers[1:] + workers[:1]):
        assert place(SMALL, order, {}, {}).worker == "0xa"


def test_gpu_request_needs_the_model_and_enough_gpus() -> None:
    workers = [gpu_worker("0xa", "h100", 8), gpu_worker("0xb", "h200", 1)]
    assert place(H100, workers, {}, {}).worker == "0xa"
    got = place(H200X2, workers, {}, {})
    assert got.worker is None and got.reason == "no H200 with 2 GPUs free"
    assert place(instance_type("b200"), workers, {}, {}).reason == "no B200 worker online"


def test_gpus_in_use_count() -> None:
    workers = [gpu_worker("0xa", "h200", 2)]
    assert place(H200X2, workers, {}, {}).worker == "0xa"
    busy = {"0xa": [instance_type("h200")]}
    assert place(H200X2, workers, busy, {}).reason == "no H200 with 2 GPUs free"
    assert place(instance_type("h200"), workers, busy, {}).worker == "0xa"


def test_reasons_name_the_missing_resource() -> None:
    assert place(SMALL, [], {}, {}).reason == "no worker online"
    small = [cpu_worker("0xa", vcpu=2, memory_mb=64_000, disk_gb=500)]
    assert place(LARGE, small, {}, {}).reason == "no worker with 4 vCPU free"
    low_mem = [cpu_worker("0xa", vcpu=16, memory_mb=4_096, disk_gb=500)]
    assert place(LARGE, low_mem, {}, {}).reason == "no worker with 8192 MB memory free"
    split = [
        cpu_worker("0xa", vcpu=16, memory_mb=1_024, disk_gb=500),
        cpu_worker("0xb", vcpu=1, memory_mb=64_000, disk_gb=500),
    ]
    reason = place(LARGE, split, {}, {}).reason
    assert reason == "no worker with 4 vCPU, 8192 MB memory, 80 GB disk free at once"


def test_cpu_request_prefers_cpu_workers_and_falls_back_to_gpu_hosts() -> None:
    workers = [gpu_worker("0x1", "h100", 1), cpu_worker("0xf", vcpu=1, memory_mb=2_048, disk_gb=20)]
    assert place(SMALL, workers, {}, {}).worker == "0xf"
    assert place(SMALL, workers, {"0xf": [SMALL]}, {}).worker == "0x1"


def test_reserve_refuses_over_commit_and_release_gives_back() -> None:
    index = build_index([cpu_worker("0xa", vcpu=4, memory_mb=8_192, disk_gb=80)], {}, {})
    index.reserve("0xa", LARGE)
    with pytest.raises(OverCommitError, match="does not fit"):
        index.reserve("0xa", SMALL)
    assert index.place(SMALL).worker is None
    index.release("0xa", LARGE)
    assert index.free("0xa") == cpu_worker("0xa", vcpu=4, memory_mb=8_192, disk_gb=80)
    assert index.place(SMALL).worker == "0xa"


def test_offline_worker_is_not_chosen_and_unknown_worker_is_refused() -> None:
    index = build_index([cpu_worker("0xa"), cpu_worker("0xb", vcpu=2)], {}, {})
    index.remove_worker("0xa")
    assert "0xa" not in index and len(index) == 1
    assert index.place(SMALL).worker == "0xb"
    with pytest.raises(KeyError, match="not online"):
        index.reserve("0xa", SMALL)
    index.release("0xa", SMALL)  # the worker left first: nothing to give back


def test_a_worker_that_shrank_below_its_load_takes_nothing_until_it_frees() -> None:
    index = CapacityIndex()
    index.add_worker(cpu_worker("0xa", vcpu=1, memory_mb=2_048, disk_gb=20), "p", [SMALL, SMALL])
    assert index.free("0xa").vcpu == -1
    assert index.place(SMALL).worker is None
    index.release("0xa", SMALL)
    assert index.place(SMALL).worker is None
    index.release("0xa", SMALL)
    assert index.place(SMALL).worker == "0xa"


# --- properties --------------------------------------------------------------------

TYPES = [*CPU_TYPES.values(), H100, instance_type("h100x2"), instance_type("h200"), H200X2]


@st.composite
def fleets(draw: st.DrawFn) -> list[tuple[WorkerCapacity, str]]:
    n = draw(st.integers(1, 12))
    fleet = []
    for i in range(n):
        gpus = draw(st.sampled_from([0, 0, 1, 2, 4]))
        model = draw(st.sampled_from([1, 2])) if gpus else 0
        capacity = WorkerCapacity(
            f"0x{i:02x}",
            vcpu=draw(st.integers(0, 16)) + 12 * gpus,
            memory_mb=draw(st.integers(0, 16_384)) + 131_072 * gpus,
            disk_gb=draw(st.integers(0, 200)) + 400 * gpus,
            gpu_model=model,
            gpu_count=gpus,
        )
        fleet.append((capacity, f"p{draw(st.integers(0, 3))}"))
    return fleet


def fits(free: WorkerCapacity, need) -> bool:
    if need.gpu_count and (free.gpu_model != need.gpu_model or free.gpu_count < need.gpu_count):
        return False
    return (
        free.vcpu >= need.vcpu and free.memory_mb >= need.memory_mb and free.disk_gb >= need.disk_gb
    )


@settings(max_examples=150, deadline=None)
@given(
    fleet=fleets(),
    actions=st.lists(
        st.tuples(st.booleans(), st.sampled_from(TYPES), st.integers(0, 3)), max_size=40
    ),
)
def test_never_over_commits_and_places_whenever_some_worker_fits(fleet, actions) -> None:
    index = CapacityIndex()
    totals = {}
    for capacity, provider in fleet:
        index.add_worker(capacity, provider)
        totals[capacity.worker] = capacity
    placed: list[tuple[str, object]] = []
    for is_place, itype, pick in actions:
        if not is_place and placed:
            worker, old = placed.pop(pick % len(placed))
            index.release(worker, old)
            continue
        frees = {w: index.free(w) for w in totals}
        fitting = sorted(w for w, f in frees.items() if fits(f, itype))
        cpu_hosts = [w for w in fitting if totals[w].gpu_count == 0]
        if itype.gpu_count == 0 and cpu_hosts:
            fitting = cpu_hosts  # CPU apps use GPU hosts only when no CPU host fits
        spread = {f"p{pick}": 1}
        got = index.place(itype, spread)
        if not fitting:
            assert got.worker is None and got.reason.startswith("no ")
            continue
        assert got.worker in fitting
        # Spread first: no fitting worker on a provider hosting fewer of this app.
        best_spread = min(spread.get(index.provider_of(w), 0) for w in fitting)
        assert spread.get(got.provider, 0) == best_spread, (fleet, frees, itype, spread, got)
        index.reserve(got.worker, itype)
        placed.append((got.worker, itype))
        # Never over-committed: reserved instances stay within each worker's totals.
        for worker, total in totals.items():
            used = [t for w, t in placed if w == worker]
            assert sum(t.vcpu for t in used) <= total.vcpu
            assert sum(t.memory_mb for t in used) <= total.memory_mb
            assert sum(t.disk_gb for t in used) <= total.disk_gb
            assert sum(t.gpu_count for t in used) <= total.gpu_count


@settings(max_examples=60, deadline=None)
@given(fleet=fleets(), itype=st.sampled_from(TYPES))
def test_the_decision_does_not_depend_on_worker_order(fleet, itype) -> None:
    workers = [c for c, _p in fleet]
    providers = {c.worker: p for c, p in fleet}
    forward = place(itype, workers, {}, providers, {"p1": 1})
    backward = place(itype, workers[::-1], {}, providers, {"p1": 1})
    assert forward == backward
