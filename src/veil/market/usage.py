"""Usage records and monthly statements, rebuilt from the market's events alone.

The chain is the bill: every settled second is a `Settled` event, so anyone (customer,
provider, auditor) can recompute a statement from public logs and get the same bytes; the
control plane's database is not needed and cannot disagree. A settlement covers the
seconds since the previous one, so each `Settled` becomes one record [end - seconds, end)
at the lease's fixed rate; records are cut at month boundaries (UTC) exactly, since an
amount is seconds × rate. Seconds used but not yet settled are added from the lease's
current state (`runway.project`) and marked unsettled. Per-token charges (`UsageCharged`:
a lease's meter's vouchers) are listed beside the seconds, each at the block it was
charged in, with their own totals; the CSV gives them one row each (seconds 0).
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from veil import atomic
from veil.errors import InputError
from veil.market.runway import Lease, project

STATEMENT_FORMAT = "veil-market-statement-v1"
CSV_COLUMNS = [
    "lease",
    "deployment",
    "instance_type",
    "provider",
    "start",
    "end",
    "start_utc",
    "end_utc",
    "seconds",
    "rate_wei_per_second",
    "amount_wei",
    "settled",
    "tokens",
]


@dataclass(frozen=True)
class MarketEvent:
    """One decoded market log with its block's timestamp, in chain order."""

    name: str
    block: int
    log_index: int
    timestamp: int
    args: Mapping[str, Any]


@dataclass(frozen=True)
class LeaseInfo:
    """What `LeaseOpened` says of a lease and never changes."""

    lease: int
    customer: str
    provider: str
    deployment: bytes
    instance_type: bytes
    rate: int
    opened_at: int


@dataclass(frozen=True)
class UsageRecord:
    """Seconds [start, end) billed at `rate`: `amount` = seconds × rate, exactly."""

    lease: int
    start: int
    end: int
    rate: int
    settled: bool = True

    @property
    def seconds(self) -> int:
        return self.end - self.start

    @property
    def amount(self) -> int:
        return self.seconds * self.rate

    def clip(self, start: int, end: int) -> UsageRecord | None:
        lo, hi = max(self.start, start), min(self.end, end)
        if lo >= hi:
            return None
        return UsageRecord(self.lease, lo, hi, self.rate, self.settled)


@dataclass(frozen=True)
class TokenCharge:
    """Wei charged to a lease for `tokens` metered tokens at `time` (one `UsageCharged`)."""

    lease: int
    time: int
    tokens: int
    amount: int
    fee: int


@dataclass
class Ledger:
    """Leases, usage records and customer money flows, from a run of events."""

    leases: dict[int, LeaseInfo] = field(default_factory=dict)
    records: list[UsageRecord] = field(default_factory=list)
    token_charges: list[TokenCharge] = field(default_factory=list)
    # (timestamp, kind, customer, lease or None, amount)
    flows: list[tuple[int, str, str, int | None, int]] = field(default_factory=list)


def _lease_int(value: Any) -> int:
    return int.from_bytes(value, "big") if isinstance(value, bytes | bytearray) else int(value)


def ledger(events: Iterable[MarketEvent]) -> Ledger:
    """Fold the market's events (in chain order) into leases, records and flows."""
    out = Ledger()
    ordered = sorted(events, key=lambda e: (e.block, e.log_index))
    stopped_at: dict[tuple[int, int], int] = {}
    for event in ordered:  # BillingStopped follows its Settled in the same block
        if event.name == "BillingStopped":
            stopped_at[(event.block, _lease_int(event.args["lease"]))] = int(event.args["at"])
    for event in ordered:
        args = event.args
        if event.name == "LeaseOpened":
            lease = _lease_int(args["lease"])
            out.leases[lease] = LeaseInfo(
                lease,
                str(args["customer"]),
                str(args["provider"]),
                bytes(args["deployment"]),
                bytes(args["instanceType"]),
                int(args["rate"]),
                event.timestamp,
            )
            out.flows.append((event.timestamp, "lease_funding", str(args["customer"]), lease,
                              int(args["amount"])))  # fmt: skip
        elif event.name == "Settled":
            lease = _lease_int(args["lease"])
            info = out.leases.get(lease)
            seconds = int(args["seconds"])
            if info is None:
                raise InputError(f"Settled for lease {lease:#x} before its LeaseOpened")
            if int(args["amount"]) != seconds * info.rate:
                raise InputError(f"Settled for lease {lease:#x}: amount is not seconds x rate")
            end = stopped_at.get((event.block, lease), event.timestamp)
            if seconds:
                out.records.append(UsageRecord(lease, end - seconds, end, info.rate))
        elif event.name == "UsageCharged":
            lease = _lease_int(args["leaseId"])
            if lease not in out.leases:
                raise InputError(f"UsageCharged for lease {lease:#x} before its LeaseOpened")
            out.token_charges.append(
                TokenCharge(lease, event.timestamp, int(args["tokens"]), int(args["amount"]),
                            int(args["fee"]))
            )  # fmt: skip
        elif event.name in ("ToppedUp", "LeaseClosed"):
            lease = _lease_int(args["lease"])
            info = out.leases.get(lease)
            if info is None:
                raise InputError(f"{event.name} for lease {lease:#x} before its LeaseOpened")
            kind, amount = (
                ("top_up", int(args["amount"]))
                if event.name == "ToppedUp"
                else ("refund", int(args["refund"]))
            )
            out.flows.append((event.timestamp, kind, info.customer, lease, amount))
        elif event.name in ("Deposited", "Withdrawn"):
            kind = "deposit" if event.name == "Deposited" else "withdrawal"
            out.flows.append((event.timestamp, kind, str(args["customer"]), None,
                              int(args["amount"])))  # fmt: skip
    return out


def unsettled(lease_id: int, lease: Lease, now: int) -> UsageRecord | None:
    """The seconds a settlement at `now` would bill, as an unsettled record."""
    p = project(lease, now)
    if p.billed == 0:
        return None
    return UsageRecord(lease_id, p.last - p.billed, p.last, lease.rate, settled=False)


def month_bounds(month: str) -> tuple[int, int]:
    """`YYYY-MM` as [first second, first second of the next month) in UTC."""
    try:
        start = datetime.strptime(month, "%Y-%m").replace(tzinfo=UTC)
    except ValueError:
        raise InputError(f"month {month!r}: expected YYYY-MM") from None
    nxt = (
        start.replace(year=start.year + 1, month=1)
        if start.month == 12
        else start.replace(month=start.month + 1)
    )
    return int(start.timestamp()), int(nxt.timestamp())


def _iso(ts: int) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def statement(
    book: Ledger,
    customer: str,
    month: str,
    *,
    chain_id: int,
    market: str,
    current: Mapping[int, Lease] | None = None,
    now: int | None = None,
) -> dict[str, Any]:
    """The customer's statement for `month` (JSON-ready; amounts as decimal strings).
    `current` (lease id -> lease as stored now) and `now` add the unsettled seconds."""
    start, end = month_bounds(month)
    who = customer.lower()
    mine = {i: info for i, info in book.leases.items() if info.customer.lower() == who}
    records = [r for r in book.records if r.lease in mine]
    if current is not None and now is not None:
        for lease_id, lease in current.items():
            if lease_id in mine:
                pending = unsettled(lease_id, lease, now)
                if pending is not None:
                    records.append(pending)
    clipped = [c for r in records if (c := r.clip(start, end)) is not None]
    clipped.sort(key=lambda r: (r.start, r.lease))
    per_lease: dict[int, list[UsageRecord]] = {}
    for record in clipped:
        per_lease.setdefault(record.lease, []).append(record)
    charges = [c for c in book.token_charges if c.lease in mine and start <= c.time < end]
    for charge in charges:
        per_lease.setdefault(charge.lease, [])
    funding = {"deposit": 0, "withdrawal": 0, "lease_funding": 0, "top_up": 0, "refund": 0}
    for ts, kind, who_, _lease, amount in book.flows:
        if who_.lower() == who and start <= ts < end:
            funding[kind] += amount

    def hex32(value: int | bytes) -> str:
        raw = value if isinstance(value, bytes) else value.to_bytes(32, "big")
        return "0x" + raw.hex()

    return {
        "format": STATEMENT_FORMAT,
        "customer": customer,
        "month": month,
        "period": {"start": start, "end": end, "start_utc": _iso(start), "end_utc": _iso(end)},
        "chainId": chain_id,
        "market": market,
        "currency": "PHA",
        "decimals": 18,
        "leases": [
            {
                "lease": hex32(lease_id),
                "deployment": hex32(mine[lease_id].deployment),
                "instanceType": hex32(mine[lease_id].instance_type),
                "provider": mine[lease_id].provider,
                "rate_wei_per_second": str(mine[lease_id].rate),
                "seconds": sum(r.seconds for r in rows),
                "amount_wei": str(sum(r.amount for r in rows)),
                "tokens": sum(c.tokens for c in charges if c.lease == lease_id),
                "token_amount_wei": str(sum(c.amount for c in charges if c.lease == lease_id)),
            }
            for lease_id, rows in sorted(per_lease.items())
        ],
        "token_charges": [
            {
                "lease": hex32(c.lease),
                "time": c.time,
                "time_utc": _iso(c.time),
                "tokens": c.tokens,
                "amount_wei": str(c.amount),
            }
            for c in charges
        ],
        "records": [
            {
                "lease": hex32(r.lease),
                "start": r.start,
                "end": r.end,
                "seconds": r.seconds,
                "rate_wei_per_second": str(r.rate),
                "amount_wei": str(r.amount),
                "settled": r.settled,
            }
            for r in clipped
        ],
        "funding": {f"{k}_wei": str(v) for k, v in funding.items()},
        "totals": {
            "seconds": sum(r.seconds for r in clipped),
            "amount_wei": str(sum(r.amount for r in clipped)),
            "settled_amount_wei": str(sum(r.amount for r in clipped if r.settled)),
            "unsettled_amount_wei": str(sum(r.amount for r in clipped if not r.settled)),
            "tokens": sum(c.tokens for c in charges),
            "token_amount_wei": str(sum(c.amount for c in charges)),
        },
    }


def statement_csv(doc: Mapping[str, Any]) -> str:
    """The statement's usage records as CSV (one row per record, header first)."""
    leases = {row["lease"]: row for row in doc["leases"]}
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for r in doc["records"]:
        lease = leases[r["lease"]]
        writer.writerow(
            [
                r["lease"],
                lease["deployment"],
                lease["instanceType"],
                lease["provider"],
                r["start"],
                r["end"],
                _iso(r["start"]),
                _iso(r["end"]),
                r["seconds"],
                r["rate_wei_per_second"],
                r["amount_wei"],
                "true" if r["settled"] else "false",
                0,
            ]
        )
    for c in doc.get("token_charges", []):
        lease = leases[c["lease"]]
        writer.writerow(
            [
                c["lease"],
                lease["deployment"],
                lease["instanceType"],
                lease["provider"],
                c["time"],
                c["time"],
                c["time_utc"],
                c["time_utc"],
                0,
                "",
                c["amount_wei"],
                "true",
                c["tokens"],
            ]
        )
    return buffer.getvalue()


def write_statement(doc: Mapping[str, Any], path: Path) -> Path:
    """Write the statement atomically: `.csv` as CSV, anything else as JSON."""
    if path.suffix.lower() == ".csv":
        return atomic.write_text(path, statement_csv(doc))
    return atomic.write_text(path, json.dumps(doc, indent=2, sort_keys=False) + "\n")
