"""Which workers were active during an epoch, with which weight, for how long.

The registry's `rewardWeight(worker)` is the weight *now*: weight(model) x max(count, 1)
while the worker is active (registered, unexpired, on an allowlisted OS image and compose
hash, provider without collateral shortfall) and 0 otherwise. Over an epoch it can change:
a worker registers or deregisters, its attestation expires, governance revokes an image or
changes a model's weight, a slash opens a shortfall or a deposit fills it. The report pays
the time integral, `weight_seconds`, so that an hour at 1.5 and an hour at 0 count as half
an epoch at 1.5, and a worker that was never active earns nothing.

Reading from the chain: the state at the epoch's start is read with views at the last
block not after the start; every registry event inside the epoch marks a change point,
after which the workers it can affect are read again at that block (a worker event: that
worker; a provider's collateral event: its workers; an allowlist or accelerator change:
every worker). Between change points only expiry can change activity, and the record's
`expiry` says when.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from veil.attestation.typed_data import checksum
from veil.errors import InputError
from veil.rewards.epochs import EpochClock

MODEL_NAMES = {0: "cpu", 1: "h100", 2: "h200", 3: "b200"}


@dataclass(frozen=True)
class Segment:
    """From `start` (inclusive) the worker's weight is `weight` bps, while before `expiry`."""

    start: int
    weight: int
    expiry: int


@dataclass(frozen=True)
class WorkerActivity:
    worker: str
    provider: str
    gpu_model: int
    gpu_count: int
    weight_seconds: int  # integral of rewardWeight (bps) over the epoch, in bps x seconds
    active_seconds: int  # seconds with a non-zero weight

    @property
    def model(self) -> str:
        return MODEL_NAMES.get(self.gpu_model, f"model-{self.gpu_model}")


def integrate(segments: Sequence[Segment], start: int, end: int) -> tuple[int, int]:
    """(weight x seconds, active seconds) over [start, end) of a step function.

    Each segment lasts until the next one starts (the last until `end`); within it the
    weight drops to 0 at its expiry. Segments must be in time order.
    """
    weight_seconds = 0
    active = 0
    for i, seg in enumerate(segments):
        lo = max(seg.start, start)
        hi = min(segments[i + 1].start if i + 1 < len(segments) else end, end, seg.expiry)
        if hi > lo and seg.weight > 0:
            weight_seconds += seg.weight * (hi - lo)
            active += hi - lo
    return weight_seconds, active


def activity_from_segments(
    clock: EpochClock,
    epoch: int,
    workers: Iterable[tuple[str, str, int, int, Sequence[Segment]]],
) -> list[WorkerActivity]:
    """One WorkerActivity per (worker, provider, model, count, segments), in worker order."""
    start, end = clock.start(epoch), clock.end(epoch)
    out = []
    for worker, provider, model, count, segments in workers:
        ws, active = integrate(sorted(segments, key=lambda s: s.start), start, end)
        out.append(
            WorkerActivity(
                checksum(worker, "worker"), checksum(provider, "provider"), model, count, ws, active
            )
        )
    out.sort(key=lambda a: a.worker.lower())
    return out


WORKER_EVENTS = ("WorkerRegistered", "WorkerReattested", "WorkerDeregistered")
PROVIDER_EVENTS = ("Slashed", "CollateralDeposited", "CollateralWithdrawn", "CollateralReleased")
GLOBAL_EVENTS = ("AllowlistChanged", "AcceleratorTypeChanged")


def _block_at_or_before(w3: Any, timestamp: int, low: int, high: int) -> int:
    """The last block in [low, high] whose timestamp is <= `timestamp` (low - 1 if none)."""
    answer = low - 1
    while low <= high:
        mid = (low + high) // 2
        if int(w3.eth.get_block(mid)["timestamp"]) <= timestamp:
            answer, low = mid, mid + 1
        else:
            high = mid - 1
    return answer


BATCH = 500  # eth_calls per JSON-RPC batch: 29,000 workers are 116 round trips, not 58,000


@dataclass(frozen=True)
class WorkerView:
    """What the report needs of `worker(w)` and `rewardWeight(w)` at one block."""

    gpu_model: int
    gpu_count: int
    expiry: int
    weight: int


def worker_views(registry: Any, workers: Sequence[str], block: int) -> dict[str, WorkerView]:
    """`worker(w)` and `rewardWeight(w)` of every worker at `block`, in JSON-RPC batches
    where the provider supports them (one call each otherwise).

    Both views take one address, so a call is the selector and the address as a word, and
    the answer's words 1-3 (model, count, expiry: static fields) are read in place: web3's
    general encoder and decoder cost milliseconds a call, the whole read at 29,000 workers.
    """
    from eth_utils import function_abi_to_4byte_selector, to_checksum_address

    w3 = registry.w3
    workers = [to_checksum_address(w) for w in workers]
    out: dict[str, WorkerView] = {}
    batch = getattr(w3.provider, "make_batch_request", None)
    abi = {f["name"]: f for f in registry.abi if f.get("type") == "function"}
    selectors = {fn: "0x" + function_abi_to_4byte_selector(abi[fn]).hex() + "00" * 12
                 for fn in ("worker", "rewardWeight")}  # fmt: skip
    for start in range(0, len(workers), BATCH):
        chunk = workers[start : start + BATCH]
        answers = None
        if batch is not None:
            requests = [
                ("eth_call", [{"to": registry.address, "data": selectors[fn] + w[2:].lower()},
                              hex(block)])
                for w in chunk
                for fn in ("worker", "rewardWeight")
            ]  # fmt: skip
            try:
                answers = batch(requests)
            except Exception:  # a provider without batches: fall back to single calls
                answers = None
            if not _answered(answers, len(requests)):
                answers = None
        if answers is None:
            for w in chunk:
                record = registry.functions.worker(w).call(block_identifier=block)
                weight = registry.functions.rewardWeight(w).call(block_identifier=block)
                out[w] = WorkerView(int(record[1]), int(record[2]), int(record[3]), int(weight))
            continue
        for i, w in enumerate(chunk):
            record = bytes.fromhex(answers[2 * i]["result"][2:])
            weight = int(answers[2 * i + 1]["result"], 16)
            words = [int.from_bytes(record[32 * k : 32 * k + 32], "big") for k in (1, 2, 3)]
            out[w] = WorkerView(words[0], words[1], words[2], weight)
    return out


def _answered(answers: Any, count: int) -> bool:
    """A batch answer to use: one result per request (an error anywhere: call one by one)."""
    return (
        isinstance(answers, list)
        and len(answers) == count
        and all(isinstance(a, dict) and "result" in a for a in answers)
    )


def _registered_workers(registry: Any, from_block: int, to_block: int) -> dict[str, str]:
    """worker -> provider of every WorkerRegistered up to `to_block`, from the raw logs:
    both are indexed topics, and web3's event decoding costs ~1 ms a log at 29,000."""
    from eth_utils import event_abi_to_log_topic, to_checksum_address

    event = next(f for f in registry.abi if f.get("type") == "event"
                 and f["name"] == "WorkerRegistered")  # fmt: skip
    topic = "0x" + event_abi_to_log_topic(event).hex()
    logs = registry.w3.eth.get_logs(
        {"address": registry.address, "fromBlock": from_block, "toBlock": to_block,
         "topics": [topic]}
    )  # fmt: skip
    out: dict[str, str] = {}
    for log in logs:
        worker = to_checksum_address(bytes(log["topics"][1])[12:])
        out.setdefault(worker, to_checksum_address(bytes(log["topics"][2])[12:]))
    return out


def read_activity(
    registry: Any, clock: EpochClock, epoch: int, from_block: int = 0
) -> list[WorkerActivity]:
    """The registry's workers over `epoch`, from its events and views (see module doc).

    `registry` is the web3 ComputeRegistry contract; `from_block` its deployment block.
    Refuses an epoch that has not ended on chain (its last state is not final yet).
    """
    w3 = registry.w3
    head = int(w3.eth.block_number)
    now = int(w3.eth.get_block(head)["timestamp"])
    start, end = clock.start(epoch), clock.end(epoch)
    if not clock.is_over(epoch, now):
        raise InputError(f"epoch {epoch}: not over on chain (ends at {end}, chain time {now})")
    first = _block_at_or_before(w3, start, from_block, head)
    last = _block_at_or_before(w3, end - 1, max(first, from_block), head)
    registered = _registered_workers(registry, from_block, last)
    if not registered:
        return []
    by_provider: dict[str, set[str]] = defaultdict(set)
    for worker, provider in registered.items():
        by_provider[provider].add(worker)
    changes: dict[int, set[str]] = defaultdict(set)
    if last > max(first, from_block - 1):
        lo = max(first + 1, from_block)
        for name in WORKER_EVENTS + PROVIDER_EVENTS + GLOBAL_EVENTS:
            for log in getattr(registry.events, name)().get_logs(from_block=lo, to_block=last):
                args = log["args"]
                if name in WORKER_EVENTS:
                    hit = {args["worker"]}
                    by_provider[args["provider"]].add(args["worker"])
                    registered.setdefault(args["worker"], args["provider"])
                elif name in PROVIDER_EVENTS:
                    hit = set(by_provider.get(args["provider"], ()))
                else:
                    hit = set(registered)
                changes[int(log["blockNumber"])] |= hit
    segments: dict[str, list[Segment]] = {w: [] for w in registered}
    records: dict[str, WorkerView] = {}

    def sample(block: int, workers: Iterable[str], at: int) -> None:
        workers = list(workers)
        if block < from_block:
            for worker in workers:
                segments[worker].append(Segment(at, 0, at))
            return
        for worker, view in worker_views(registry, workers, block).items():
            records[worker] = view
            segments[worker].append(Segment(at, view.weight, view.expiry))

    sample(first, registered, start)
    for block in sorted(changes):
        at = int(w3.eth.get_block(block)["timestamp"])
        sample(block, sorted(changes[block]), at)
    rows = []
    for worker, segs in segments.items():
        view = records.get(worker)
        model, count = (view.gpu_model, view.gpu_count) if view else (0, 0)
        rows.append((worker, registered[worker], model, count, segs))
    return activity_from_segments(clock, epoch, rows)
