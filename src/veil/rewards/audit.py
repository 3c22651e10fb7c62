"""`veil rewards audit EPOCH`: recompute an epoch from public data alone and compare.

Public data: the chain (the pool's posted record and `RootPosted` event, its parameters,
the registry's events and views) and the attesters' signed heartbeat logs. The audit
re-verifies every heartbeat's EIP-712 worker signature (an attester that put a heartbeat
the worker never signed in its log is caught here, by name), rebuilds the report exactly
as `close` does, and compares its root, total and hash with what the chain holds. Each
difference is one line; any line means a non-zero exit.

The previous epoch's cumulative totals come from its published report, which is itself
checked against the root the chain recorded for that epoch, so auditing epoch n trusts
nothing but epoch n - 1's root (which its own audit covers).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from veil.attestation.typed_data import Domain, recover_digest
from veil.compute.heartbeat import struct_hash
from veil.errors import InputError
from veil.rewards.activity import WorkerActivity, read_activity
from veil.rewards.budget import Split
from veil.rewards.closing import PoolState, pool_state, read_logs
from veil.rewards.report import (
    DEFAULT_HEARTBEAT_INTERVAL,
    EpochInputs,
    EpochReport,
    build_report,
    load_report,
)

REGISTRY_DOMAIN = ("veil ComputeRegistry", "1")


@dataclass
class AuditResult:
    epoch: int
    report: EpochReport | None = None
    heartbeats_checked: int = 0
    differences: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.differences

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "epoch": self.epoch,
            "ok": self.ok,
            "heartbeatsChecked": self.heartbeats_checked,
            "differences": self.differences,
        }
        if self.report is not None:
            out |= {
                "root": "0x" + self.report.root.hex(),
                "total": str(self.report.total),
                "reportHash": "0x" + self.report.report_hash.hex(),
            }
        return out


def bad_heartbeat_signatures(
    log: Any, chain_id: int, registry: str, verified: set[bytes] | None = None, limit: int = 20
) -> list[str]:
    """Every heartbeat in `log` whose signature does not recover its worker (named).

    The same heartbeat sits in every attester's log with the same bytes; `verified`
    remembers the (worker, sequence, timestamp, block, signature) already checked, so each
    is recovered once however many logs hold it.
    """
    domain = Domain(*REGISTRY_DOMAIN, chain_id, registry)
    epoch = log.header.epoch
    raw_workers = [bytes.fromhex(w[2:]) for w in log.workers]
    seen = verified if verified is not None else set()
    bad: list[str] = []
    for i in range(len(log)):
        worker_raw = raw_workers[log.worker_index[i]]
        block = log.block_hashes[log.block_index[i]]
        signature = log.signature(i)
        key = b"".join(
            (worker_raw, log.sequence[i].to_bytes(8, "big"), log.timestamp[i].to_bytes(8, "big"),
             block, signature)
        )  # fmt: skip
        if key in seen:
            continue
        struct = struct_hash(worker_raw, epoch, log.sequence[i], log.timestamp[i], block)
        try:
            signer = recover_digest(domain.digest(struct), signature)
        except InputError:
            signer = "nobody"
        worker = log.workers[log.worker_index[i]]
        if signer.lower() == worker.lower():
            seen.add(key)
            continue
        bad.append(
            f"attester {log.header.attester}: heartbeat {worker} sequence {log.sequence[i]}"
            f" is not signed by the worker (recovers {signer})"
        )
        if len(bad) >= limit:
            break
    return bad


def posted_record(pool: Any, epoch: int) -> tuple[int, bytes, int, int, bytes | None]:
    """(status, root, total, budget, reportHash) the chain holds for `epoch`."""
    status, root, total, budget, _ = pool.functions.pending(epoch).call()
    report_hash = None
    for log in pool.events.RootPosted().get_logs(from_block=0, argument_filters={"epoch": epoch}):
        if log["args"]["root"] == root and int(log["args"]["total"]) == int(total):
            report_hash = bytes(log["args"]["reportHash"])
    return int(status), bytes(root), int(total), int(budget), report_hash


def audit_epoch(
    pool: Any,
    registry: Any,
    epoch: int,
    log_sources: Sequence[str],
    *,
    previous_report: Path | None = None,
    published_report: Path | None = None,
    registry_block: int = 0,
    heartbeat_interval: int = DEFAULT_HEARTBEAT_INTERVAL,
    activity: Sequence[WorkerActivity] | None = None,
) -> AuditResult:
    result = AuditResult(epoch)
    diff = result.differences.append
    state: PoolState = pool_state(pool)
    status, root, total, budget, report_hash = posted_record(pool, epoch)
    if status == 0:
        raise InputError(f"epoch {epoch}: no root posted on chain (nothing to audit)")
    previous: dict[str, int] = {}
    if epoch > 0:
        if previous_report is None:
            raise InputError(f"epoch {epoch}: give the published report of epoch {epoch - 1}")
        before = load_report(previous_report)
        _, prev_root, prev_total, _, _ = posted_record(pool, epoch - 1)
        if before.epoch != epoch - 1:
            diff(f"previous report: is for epoch {before.epoch}, not {epoch - 1}")
        if before.root != prev_root or before.total != prev_total:
            diff(
                f"previous report: root 0x{before.root.hex()} / total {before.total} differ "
                f"from epoch {epoch - 1} on chain (0x{prev_root.hex()} / {prev_total})"
            )
        previous = before.cumulative()
    logs = read_logs(log_sources, state, epoch, keep_signatures=True)
    verified: set[bytes] = set()
    for log, _ in logs:
        result.heartbeats_checked += len(log)
        result.differences += bad_heartbeat_signatures(
            log, state.chain_id, state.registry, verified
        )
    treasury, stakers, providers = (int(x) for x in pool.functions.split(budget).call())
    if activity is None:
        activity = read_activity(registry, state.clock, epoch, registry_block)
    report = build_report(
        EpochInputs(
            chain_id=state.chain_id,
            pool=state.pool,
            registry=state.registry,
            clock=state.clock,
            epoch=epoch,
            budget=budget,
            split=Split(treasury, stakers, providers),
            min_uptime_bps=state.min_uptime_bps,
            threshold=state.threshold,
            activity=activity,
            logs=[beats for _, beats in logs],
            previous=previous,
            heartbeat_interval=heartbeat_interval,
        )
    )
    result.report = report
    if report.root != root:
        diff(f"root: recomputed 0x{report.root.hex()}, chain has 0x{root.hex()}")
    if report.total != total:
        diff(f"total: recomputed {report.total}, chain has {total}")
    if report_hash is not None and report.report_hash != report_hash:
        diff(f"reportHash: recomputed 0x{report.report_hash.hex()}, "
             f"chain has 0x{report_hash.hex()}")  # fmt: skip
    if published_report is not None:
        try:
            published = Path(published_report).read_bytes()
        except OSError as error:
            raise InputError(f"report {published_report}: {error.strerror}") from None
        if hashlib.sha256(published).digest() != report.report_hash:
            diff(f"published report {published_report}: differs from the recomputed one")
    return result
