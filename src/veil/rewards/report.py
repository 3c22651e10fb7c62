"""The epoch report: deterministic JSON from the registry state and the attesters' logs.

Given the same inputs, anyone computes the same bytes, hence the same `reportHash` the
attesters sign; that is what makes `veil rewards audit` possible. The rules:

- a worker's score is `weight_seconds x uptime_bps`, and 0 when its uptime is below the
  pool's `minUptimeBps` or it was never active;
- uptime_bps = min(accepted, expected) x 10,000 // expected, where expected =
  active_seconds // heartbeat_interval: a worker is only asked to heartbeat while it was
  active, so one registered half-way through is paid for half the epoch, not a quarter;
- reward = providers' part x score // sum of scores (floor); what the floors leave, and
  the whole part when nobody scores, stays unallocated and the pool sends it to the
  treasury at finalization;
- a provider's cumulative = its cumulative in the previous epoch's report + this epoch's
  rewards of its workers; the claim tree commits to every provider's cumulative, so one
  claim covers every epoch so far, and re-registering a worker loses nothing.

The heartbeat interval is a report parameter (default 60 s, recorded in the report and
checked by the audit), not a contract one: the pool never needs it, only the count does.
The file's bytes are the canonical JSON itself (sorted keys, no spaces, no trailing
newline), so `sha256sum epoch-N.json` is the `reportHash`.
"""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from veil.atomic import write_bytes, write_text
from veil.attestation.typed_data import checksum
from veil.chain.home import veil_home
from veil.errors import InputError
from veil.rewards.activity import WorkerActivity
from veil.rewards.budget import BPS, Split
from veil.rewards.epochs import EpochClock
from veil.rewards.tree import ClaimTree, build_claim_tree
from veil.rewards.uptime import AttesterHeartbeats, WorkerHeartbeats, count_heartbeats

FORMAT = "veil-rewards-report-v1"
DEFAULT_HEARTBEAT_INTERVAL = 60


@dataclass(frozen=True)
class EpochInputs:
    """Everything an epoch's report depends on; nothing else may change it."""

    chain_id: int
    pool: str
    registry: str
    clock: EpochClock
    epoch: int
    budget: int
    split: Split
    min_uptime_bps: int
    threshold: int
    activity: Sequence[WorkerActivity]
    logs: Sequence[AttesterHeartbeats]
    previous: Mapping[str, int] = field(default_factory=dict)  # provider -> cumulative
    heartbeat_interval: int = DEFAULT_HEARTBEAT_INTERVAL


@dataclass(frozen=True)
class EpochReport:
    doc: dict[str, Any]
    tree: ClaimTree

    @property
    def epoch(self) -> int:
        return int(self.doc["epoch"])

    @property
    def root(self) -> bytes:
        return self.tree.root

    @property
    def total(self) -> int:
        return int(self.doc["total"])

    def canonical(self) -> bytes:
        return canonical_json(self.doc)

    @property
    def report_hash(self) -> bytes:
        return hashlib.sha256(self.canonical()).digest()

    def cumulative(self) -> dict[str, int]:
        return {p["provider"]: int(p["cumulative"]) for p in self.doc["providers"]}


def canonical_json(doc: Any) -> bytes:
    return json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


def uptime_bps(accepted: int, expected: int) -> int:
    if expected <= 0:
        return 0
    return min(accepted, expected) * BPS // expected


def build_report(inputs: EpochInputs) -> EpochReport:
    if inputs.heartbeat_interval <= 0:
        raise InputError(f"heartbeat interval {inputs.heartbeat_interval}: must be positive")
    if not 0 <= inputs.min_uptime_bps <= BPS:
        raise InputError(f"min uptime {inputs.min_uptime_bps} bps: must be 0..{BPS}")
    if inputs.split.total != inputs.budget:
        raise InputError(f"split {inputs.split} does not add up to the budget {inputs.budget}")
    clock, epoch = inputs.clock, inputs.epoch
    counts = count_heartbeats(inputs.logs, inputs.threshold)
    none = WorkerHeartbeats({}, 0, {})
    seen: set[str] = set()
    rows = []
    scores = []
    for act in sorted(inputs.activity, key=lambda a: a.worker.lower()):
        if act.worker in seen:
            raise InputError(f"worker {act.worker}: listed twice in the registry state")
        seen.add(act.worker)
        beats = counts.get(act.worker, none)
        expected = act.active_seconds // inputs.heartbeat_interval
        uptime = uptime_bps(beats.accepted, expected)
        eligible = act.weight_seconds > 0 and uptime >= inputs.min_uptime_bps and uptime > 0
        scores.append(act.weight_seconds * uptime if eligible else 0)
        rows.append((act, beats, expected, uptime, eligible))
    total_score = sum(scores)
    providers_part = inputs.split.providers
    epoch_rewards: dict[str, int] = defaultdict(int)
    workers = []
    for (act, beats, expected, uptime, eligible), score in zip(rows, scores, strict=True):
        reward = providers_part * score // total_score if total_score else 0
        epoch_rewards[checksum(act.provider, "provider")] += reward
        workers.append(
            {
                "worker": act.worker,
                "provider": act.provider,
                "model": act.model,
                "gpuCount": act.gpu_count,
                "weightSeconds": str(act.weight_seconds),
                "weightBps": act.weight_seconds // clock.epoch_length,
                "activeSeconds": act.active_seconds,
                "heartbeats": {
                    "expected": expected,
                    "counted": beats.counted,
                    "accepted": beats.accepted,
                    "refused": beats.refused,
                },
                "uptimeBps": uptime,
                "eligible": eligible,
                "reward": str(reward),
            }
        )
    allocated = sum(epoch_rewards.values())
    cumulative: dict[str, int] = {}
    for provider, amount in inputs.previous.items():
        key = checksum(provider, "previous report provider")
        if key in cumulative:
            raise InputError(f"previous report: provider {key} listed twice")
        cumulative[key] = int(amount)
    for provider, amount in epoch_rewards.items():
        cumulative[provider] = cumulative.get(provider, 0) + amount
    cumulative = {p: v for p, v in cumulative.items() if v > 0}
    tree = build_claim_tree(cumulative)
    previous_total = sum(int(v) for v in inputs.previous.values())
    unknown = {w: c.accepted for w, c in counts.items() if w not in seen and c.accepted}
    doc = {
        "format": FORMAT,
        "chainId": inputs.chain_id,
        "pool": inputs.pool,
        "registry": inputs.registry,
        "epoch": epoch,
        "start": clock.start(epoch),
        "end": clock.end(epoch),
        "epochLength": clock.epoch_length,
        "budget": str(inputs.budget),
        "split": inputs.split.to_json(),
        "parameters": {
            "minUptimeBps": inputs.min_uptime_bps,
            "heartbeatInterval": inputs.heartbeat_interval,
            "threshold": inputs.threshold,
        },
        "logs": [
            {
                "attester": log.attester,
                "complete": log.complete,
                "sha256": log.sha256,
                "accepted": sum(len(s) for s in log.accepted.values()),
                "refused": sum(sum(r.values()) for r in log.refused.values()),
            }
            for log in sorted(inputs.logs, key=lambda g: g.attester.lower())
        ],
        "workers": workers,
        "unregisteredWorkers": dict(sorted(unknown.items())),
        "providers": [
            {
                "provider": provider,
                "reward": str(epoch_rewards.get(provider, 0)),
                "cumulative": str(amount),
            }
            for provider, amount in tree.values
        ],
        "allocated": str(allocated),
        "unallocated": str(providers_part - allocated),
        "previousTotal": str(previous_total),
        "total": str(tree.total),
        "root": "0x" + tree.root.hex(),
    }
    return EpochReport(doc, tree)


def rewards_dir(home: Path | None = None) -> Path:
    return (home or veil_home()) / "rewards"


def report_path(epoch: int, directory: Path | None = None) -> Path:
    return (directory or rewards_dir()) / f"epoch-{epoch}.json"


def tree_path(epoch: int, directory: Path | None = None) -> Path:
    return (directory or rewards_dir()) / f"epoch-{epoch}.tree.json"


def write_report(report: EpochReport, directory: Path | None = None) -> Path:
    """The report (canonical bytes) and its claim tree beside it, each written atomically."""
    path = report_path(report.epoch, directory)
    write_text(tree_path(report.epoch, directory), json.dumps(report.tree.dump(), indent=1))
    write_bytes(path, report.canonical())
    return path


def load_report(path: Path) -> EpochReport:
    """Read a report back; its tree is rebuilt from its providers and must match its root."""
    try:
        raw = Path(path).read_bytes()
    except OSError as error:
        raise InputError(f"report {path}: {error.strerror}") from None
    try:
        doc = json.loads(raw)
        cumulative = {p["provider"]: int(p["cumulative"]) for p in doc["providers"]}
        root = doc["root"]
        doc["epoch"], doc["total"]
    except (ValueError, KeyError, TypeError):
        raise InputError(f"report {path}: not a {FORMAT} document") from None
    if doc.get("format") != FORMAT:
        raise InputError(f"report {path}: format {doc.get('format')!r}, expected {FORMAT}")
    tree = build_claim_tree(cumulative)
    if "0x" + tree.root.hex() != root:
        raise InputError(f"report {path}: its providers' cumulative totals do not give its root")
    return EpochReport(doc, tree)
