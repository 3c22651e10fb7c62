"""Closing an epoch against a live network: the pool's numbers, the registry's state over
the epoch, the attesters' logs, and the previous report, turned into the epoch report.

Everything the report depends on is read here and handed to `build_report` as plain
values, so the arithmetic stays testable without a chain and the audit can feed the same
function from the same public sources.
"""

from __future__ import annotations

import pickle
import tempfile
from array import array
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from veil.attestation.typed_data import checksum
from veil.bulkwork import PARALLEL_MIN_ROWS, can_fork, forked
from veil.errors import InputError
from veil.rewards.activity import WorkerActivity, read_activity
from veil.rewards.budget import Split
from veil.rewards.epochs import EpochClock
from veil.rewards.report import (
    DEFAULT_HEARTBEAT_INTERVAL,
    EpochInputs,
    EpochReport,
    build_report,
    load_report,
    report_path,
)
from veil.rewards.uptime import AttesterHeartbeats

LOG_PATH = "/v1/compute/heartbeats"


@dataclass(frozen=True)
class PoolState:
    """What the report reads from RewardPool (and the registry it is bound to)."""

    chain_id: int
    pool: str
    registry: str
    clock: EpochClock
    min_uptime_bps: int
    threshold: int
    attesters: tuple[str, ...]
    next_epoch: int


def pool_state(pool: Any) -> PoolState:
    f = pool.functions
    return PoolState(
        chain_id=int(pool.w3.eth.chain_id),
        pool=checksum(pool.address, "pool"),
        registry=checksum(f.REGISTRY().call(), "registry"),
        clock=EpochClock(int(f.genesisTime().call()), int(f.epochLength().call())),
        min_uptime_bps=int(f.minUptimeBps().call()),
        threshold=int(f.threshold().call()),
        attesters=tuple(sorted(checksum(a, "attester") for a in f.attesters().call())),
        next_epoch=int(f.nextEpoch().call()),
    )


def epoch_budget(pool: Any, epoch: int) -> tuple[int, Split]:
    """The budget a post would fix now (or the posted one) and its split, from the pool."""
    budget = int(pool.functions.epochBudget(epoch).call())
    treasury, stakers, providers = (int(x) for x in pool.functions.split(budget).call())
    return budget, Split(treasury, stakers, providers)


def check_header(header: Any, state: PoolState, epoch: int) -> str:
    """The log belongs to this network, epoch and attester set, and is complete."""
    where = f"heartbeat log of {header.attester}"
    if header.epoch != epoch:
        raise InputError(f"{where}: covers epoch {header.epoch}, not {epoch}")
    if header.chain_id != state.chain_id:
        raise InputError(f"{where}: chain {header.chain_id}, this network is {state.chain_id}")
    if header.registry.lower() != state.registry.lower():
        raise InputError(f"{where}: registry {header.registry}, the pool's is {state.registry}")
    if header.attester.lower() not in {a.lower() for a in state.attesters}:
        raise InputError(f"{where}: {header.attester} is not one of the pool's attesters")
    if not header.complete:
        raise InputError(f"{where}: not complete yet (the epoch's skew window is still open)")
    return checksum(header.attester, "attester")


def _by_worker(refusals: dict[tuple[str, str], int]) -> dict[str, dict[str, int]]:
    refused: dict[str, dict[str, int]] = {}
    for (worker, reason), count in refusals.items():
        refused.setdefault(worker, {})[reason] = count
    return refused


def log_heartbeats(log: Any, state: PoolState, epoch: int) -> AttesterHeartbeats:
    """One attester's verified log (`veil.compute.heartbeat_log.HeartbeatLog`), reduced to
    sequences per worker, after checking it belongs to this network, epoch and attester set.
    """
    attester = check_header(log.header, state, epoch)
    grouped = [array("Q") for _ in log.workers]
    appenders = [g.append for g in grouped]
    for index, sequence in zip(log.worker_index, log.sequence, strict=True):
        appenders[index](sequence)
    return AttesterHeartbeats(
        attester,
        {w: seqs for w, seqs in zip(log.workers, grouped, strict=True) if seqs},
        _by_worker(log.refusals),
        log.header.complete,
        log.sha256,
    )


def scanned_heartbeats(log: Any, state: PoolState, epoch: int) -> AttesterHeartbeats:
    """The same reduction from `veil.rewards.log_scan.ScannedLog` (already per worker)."""
    attester = check_header(log.header, state, epoch)
    return AttesterHeartbeats(
        attester, log.sequences, _by_worker(log.refusals), log.header.complete, log.sha256
    )


def fetch_log(source: str, epoch: int, into: Path) -> Path:
    """A log from an attester URL (`GET /v1/compute/heartbeats?epoch=N`, streamed to a file
    in `into`: an epoch's log is hundreds of MB) or a saved log file."""
    if not source.startswith(("http://", "https://")):
        path = Path(source)
        if not path.is_file():
            raise InputError(f"heartbeat log {source}: no such file")
        return path
    from veil.attestation.client import AttesterClient

    name = source.split("://", 1)[1].rstrip("/").replace("/", "_").replace(":", "-")
    return AttesterClient(source).download_heartbeat_log(epoch, into / f"{name}-{epoch}.ndjson")


def read_logs(
    sources: Sequence[str], state: PoolState, epoch: int, *, keep_signatures: bool = False
) -> list[tuple[Any, AttesterHeartbeats]]:
    """Every source's log, read, verified and reduced (the log itself is kept only with
    `keep_signatures`, for the audit; otherwise None stands in for it)."""
    from veil.compute.heartbeat_log import read_log
    from veil.rewards.log_scan import scan_log

    with tempfile.TemporaryDirectory(prefix="veil-heartbeat-logs-") as scratch:

        def one(source: str) -> tuple[Any, AttesterHeartbeats]:
            path = fetch_log(source, epoch, Path(scratch))
            if not keep_signatures:  # close: the fast path, or the full reader to decide
                scanned = scan_log(path)
                if scanned is not None:
                    return None, scanned_heartbeats(scanned, state, epoch)
            log = read_log(path, keep_signatures=keep_signatures)
            return (log if keep_signatures else None), log_heartbeats(log, state, epoch)

        return _read_all(sources, one, parallel=not keep_signatures)


def _read_all(
    sources: Sequence[str], one: Any, *, parallel: bool
) -> list[tuple[Any, AttesterHeartbeats]]:
    if not parallel or len(sources) < 2 or not can_fork(PARALLEL_MIN_ROWS):
        return [one(source) for source in sources]
    # A log of 1.7 M heartbeats takes seconds to read: every log but the first is read by
    # its own forked child (three logs on two cores keep both busy to the end, where one
    # child with two logs would finish alone); only the reduced counts cross back.

    def child(source: str) -> Callable[[], bytes]:
        return lambda: pickle.dumps(one(source)[1])

    waits = [forked(child(source)) for source in sources[1:]]
    out = [one(sources[0])]
    for source, wait in zip(sources[1:], waits, strict=True):
        rest = wait()
        # the child failed: do its part here, raising its error by name
        out.append(one(source) if rest is None else (None, pickle.loads(rest)))  # our bytes
    return out


def previous_cumulative(epoch: int, directory: Path | None, first_epoch: int = 0) -> dict[str, int]:
    """The providers' cumulative totals after epoch - 1 (nothing before the first epoch)."""
    if epoch <= first_epoch:
        return {}
    path = report_path(epoch - 1, directory)
    if not path.exists():
        raise InputError(
            f"epoch {epoch}: the previous report {path} is missing (close epoch {epoch - 1} first,"
            " or copy its published report there)"
        )
    previous = load_report(path)
    if previous.epoch != epoch - 1:
        raise InputError(f"report {path}: is for epoch {previous.epoch}")
    return previous.cumulative()


def close_epoch(
    pool: Any,
    registry: Any,
    epoch: int,
    log_sources: Sequence[str],
    *,
    directory: Path | None = None,
    registry_block: int = 0,
    heartbeat_interval: int = DEFAULT_HEARTBEAT_INTERVAL,
    activity: Sequence[WorkerActivity] | None = None,
) -> EpochReport:
    """The epoch's report from the chain and the logs (written by the caller)."""
    state = pool_state(pool)
    if epoch < state.next_epoch:
        raise InputError(f"epoch {epoch}: its root is already posted (next is {state.next_epoch})")
    if epoch > state.next_epoch:
        raise InputError(
            f"epoch {epoch}: epoch {state.next_epoch} must be closed and posted first "
            "(the budget depends on it)"
        )
    if not log_sources:
        raise InputError("close: no heartbeat logs (give --log URL-or-file for each attester)")
    logs = [beats for _, beats in read_logs(log_sources, state, epoch)]
    budget, split = epoch_budget(pool, epoch)
    if activity is None:
        activity = read_activity(registry, state.clock, epoch, registry_block)
    return build_report(
        EpochInputs(
            chain_id=state.chain_id,
            pool=state.pool,
            registry=state.registry,
            clock=state.clock,
            epoch=epoch,
            budget=budget,
            split=split,
            min_uptime_bps=state.min_uptime_bps,
            threshold=state.threshold,
            activity=activity,
            logs=logs,
            previous=previous_cumulative(epoch, directory),
            heartbeat_interval=heartbeat_interval,
        )
    )
