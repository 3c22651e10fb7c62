"""Usage records and statements from market events: exact month cuts, settlements that
ended when funds ran out, unsettled seconds, money flows, JSON and CSV."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from veil.errors import InputError
from veil.market import usage
from veil.market.runway import STATUS_BILLING, Lease
from veil.market.usage import MarketEvent

RATE = 555_555_555_555_555
ALICE = "0x" + "a1" * 20
BOB = "0x" + "b0" * 20
PROVIDER = "0x" + "9f" * 20
LEASE = 0xABC
OTHER = 0xDEF


def ts(text: str) -> int:
    return int(datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp())


def ev(name: str, block: int, when: str, **args: object) -> MarketEvent:
    return MarketEvent(name, block, 0, ts(when), args)


def opened(block: int, when: str, lease: int, customer: str, amount: int) -> MarketEvent:
    return ev(
        "LeaseOpened", block, when, lease=lease, customer=customer, provider=PROVIDER,
        deployment=lease.to_bytes(32, "big"), instanceType=b"\x11" * 32, rate=RATE, amount=amount,
    )  # fmt: skip


def settled(block: int, when: str, lease: int, seconds: int) -> MarketEvent:
    return ev("Settled", block, when, lease=lease, seconds=seconds, amount=seconds * RATE)


EVENTS = [
    ev("Deposited", 1, "2026-11-30T22:00:00", customer=ALICE, amount=100 * RATE * 3_600),
    opened(2, "2026-11-30T23:00:00", LEASE, ALICE, 10_000 * RATE),
    opened(3, "2026-11-30T23:00:00", OTHER, BOB, 5_000 * RATE),
    # 2 h at 01:00 on Dec 1: one hour in November, one in December
    settled(4, "2026-12-01T01:00:00", LEASE, 7_200),
    # ran dry: billing ended at 01:30 although settled at 05:00
    MarketEvent("Settled", 5, 0, ts("2026-12-01T05:00:00"),
                {"lease": LEASE, "seconds": 1_800, "amount": 1_800 * RATE}),
    MarketEvent("BillingStopped", 5, 1, ts("2026-12-01T05:00:00"),
                {"lease": LEASE, "at": ts("2026-12-01T01:30:00")}),
    ev("ToppedUp", 6, "2026-12-02T00:00:00", lease=LEASE, amount=3_000 * RATE, resumed=True),
    settled(7, "2026-12-02T00:10:00", OTHER, 600),
    ev("Withdrawn", 8, "2026-12-03T00:00:00", customer=ALICE, amount=RATE),
    ev("LeaseClosed", 9, "2026-12-04T00:00:00", lease=OTHER, refund=7, closer=BOB),
]  # fmt: skip


def test_records_from_settlements() -> None:
    book = usage.ledger(reversed(EVENTS))  # order comes from (block, log index)
    mine = [r for r in book.records if r.lease == LEASE]
    assert [(r.start, r.end, r.amount) for r in mine] == [
        (ts("2026-11-30T23:00:00"), ts("2026-12-01T01:00:00"), 7_200 * RATE),
        (ts("2026-12-01T01:00:00"), ts("2026-12-01T01:30:00"), 1_800 * RATE),
    ]
    assert book.leases[LEASE].customer == ALICE


def test_statement_cuts_at_month_boundaries_exactly() -> None:
    book = usage.ledger(EVENTS)
    nov = usage.statement(book, ALICE, "2026-11", chain_id=1, market="0xm")
    dec = usage.statement(book, ALICE, "2026-12", chain_id=1, market="0xm")
    assert nov["totals"]["seconds"] == 3_600
    assert dec["totals"]["seconds"] == 3_600 + 1_800
    total = int(nov["totals"]["amount_wei"]) + int(dec["totals"]["amount_wei"])
    assert total == 9_000 * RATE
    assert nov["period"]["start_utc"] == "2026-11-01T00:00:00Z"
    assert nov["funding"]["deposit_wei"] == str(100 * RATE * 3_600)
    assert nov["funding"]["lease_funding_wei"] == str(10_000 * RATE)
    assert dec["funding"]["top_up_wei"] == str(3_000 * RATE)
    assert dec["funding"]["withdrawal_wei"] == str(RATE)
    assert [row["lease"] for row in dec["leases"]] == ["0x" + LEASE.to_bytes(32, "big").hex()]
    bob = usage.statement(book, BOB.upper().replace("0X", "0x"), "2026-12", chain_id=1, market="m")
    assert bob["totals"]["amount_wei"] == str(600 * RATE)
    assert bob["funding"]["refund_wei"] == "7"


def test_unsettled_seconds_come_from_the_current_lease() -> None:
    book = usage.ledger(EVENTS)
    now = ts("2026-12-02T01:00:00")
    # topped up at 00:00 Dec 2, billing restarted then; nothing settled since
    current = Lease(ALICE, PROVIDER, RATE, 0, 9_000 * RATE, ts("2026-12-02T00:00:00"), 300,
                    STATUS_BILLING)  # fmt: skip
    doc = usage.statement(book, ALICE, "2026-12", chain_id=1, market="m",
                          current={LEASE: current}, now=now)  # fmt: skip
    assert doc["totals"]["unsettled_amount_wei"] == str(3_600 * RATE)
    assert doc["records"][-1]["settled"] is False
    assert doc["totals"]["seconds"] == 3_600 + 1_800 + 3_600


def test_csv_and_atomic_files(tmp_path: Path) -> None:
    doc = usage.statement(usage.ledger(EVENTS), ALICE, "2026-12", chain_id=1, market="m")
    rows = list(csv.DictReader(io.StringIO(usage.statement_csv(doc))))
    assert list(rows[0]) == usage.CSV_COLUMNS
    assert [int(r["amount_wei"]) for r in rows] == [3_600 * RATE, 1_800 * RATE]
    assert rows[0]["start_utc"] == "2026-12-01T00:00:00Z"
    assert rows[1]["end_utc"] == "2026-12-01T01:30:00Z"
    written = usage.write_statement(doc, tmp_path / "dec.csv")
    assert written.read_text() == usage.statement_csv(doc)
    as_json = usage.write_statement(doc, tmp_path / "dec.json")
    assert json.loads(as_json.read_text()) == doc
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dec.csv", "dec.json"]


def test_bad_input_is_one_clear_error() -> None:
    with pytest.raises(InputError, match="expected YYYY-MM"):
        usage.month_bounds("2026-13")
    assert usage.month_bounds("2026-12")[1] == ts("2027-01-01T00:00:00")
    with pytest.raises(InputError, match="before its LeaseOpened"):
        usage.ledger([settled(1, "2026-12-01T00:00:00", LEASE, 5)])
    bad = [opened(1, "2026-12-01T00:00:00", LEASE, ALICE, RATE * 999)]
    bad.append(ev("Settled", 2, "2026-12-01T00:01:00", lease=LEASE, seconds=60, amount=1))
    with pytest.raises(InputError, match="not seconds x rate"):
        usage.ledger(bad)


@settings(max_examples=60, deadline=None)
@given(
    spans=st.lists(
        st.tuples(st.integers(0, 90 * 86_400), st.integers(1, 40 * 86_400)), min_size=1, max_size=8
    )
)
def test_months_partition_usage_exactly(spans) -> None:
    """However settlements fall, the monthly statements of consecutive months add up to
    every settled second and wei: nothing lost or counted twice at a month boundary."""
    base = ts("2026-10-20T00:00:00")
    events = [opened(1, "2026-10-01T00:00:00", LEASE, ALICE, 10**30)]
    block, end = 2, base
    for gap, seconds in spans:
        end += gap + seconds
        args = {"lease": LEASE, "seconds": seconds, "amount": seconds * RATE}
        events.append(MarketEvent("Settled", block, 0, end, args))
        block += 1
    book = usage.ledger(events)
    last = datetime.fromtimestamp(end, UTC)
    months = [
        f"{2026 + (9 + i) // 12}-{(9 + i) % 12 + 1:02d}"
        for i in range((last.year - 2026) * 12 + last.month - 10 + 1)
    ]
    assert months[0] == "2026-10" and months[-1] == last.strftime("%Y-%m")
    docs = [usage.statement(book, ALICE, m, chain_id=1, market="m") for m in months]
    assert sum(d["totals"]["seconds"] for d in docs) == sum(s for _g, s in spans)
    assert sum(int(d["totals"]["amount_wei"]) for d in docs) == RATE * sum(s for _g, s in spans)


def test_token_charges_are_listed_beside_the_seconds() -> None:
    events = [
        *EVENTS,
        ev("UsageCharged", 10, "2026-12-05T00:00:00", leaseId=LEASE, provider=PROVIDER,
           tokens=1_000, amount=2 * 10**15, fee=5 * 10**13),
        ev("UsageCharged", 11, "2027-01-01T00:00:00", leaseId=LEASE, provider=PROVIDER,
           tokens=7, amount=14 * 10**12, fee=0),
        ev("UsageCharged", 12, "2026-12-06T00:00:00", leaseId=OTHER, provider=PROVIDER,
           tokens=3, amount=9, fee=0),
    ]  # fmt: skip
    book = usage.ledger(events)
    dec = usage.statement(book, ALICE, "2026-12", chain_id=1, market="m")
    lease_hex = "0x" + LEASE.to_bytes(32, "big").hex()
    assert dec["token_charges"] == [
        {
            "lease": lease_hex,
            "time": ts("2026-12-05T00:00:00"),
            "time_utc": "2026-12-05T00:00:00Z",
            "tokens": 1_000,
            "amount_wei": str(2 * 10**15),
        }
    ]
    assert (dec["totals"]["tokens"], dec["totals"]["token_amount_wei"]) == (1_000, str(2 * 10**15))
    assert dec["totals"]["amount_wei"] == str(5_400 * RATE)  # seconds alone, as before
    [row] = dec["leases"]
    assert (row["tokens"], row["token_amount_wei"]) == (1_000, str(2 * 10**15))
    jan = usage.statement(book, ALICE, "2027-01", chain_id=1, market="m")
    # A month with token charges and no seconds still lists the lease.
    assert [(r["lease"], r["seconds"], r["tokens"]) for r in jan["leases"]] == [(lease_hex, 0, 7)]
    rows = list(csv.DictReader(io.StringIO(usage.statement_csv(dec))))
    assert [(r["seconds"], r["amount_wei"], r["tokens"]) for r in rows] == [
        ("3600", str(3_600 * RATE), "0"),
        ("1800", str(1_800 * RATE), "0"),
        ("0", str(2 * 10**15), "1000"),
    ]
    with pytest.raises(InputError, match="UsageCharged for lease 0x5 before its LeaseOpened"):
        usage.ledger([ev("UsageCharged", 1, "2026-12-01T00:00:00", leaseId=5, provider=PROVIDER,
                         tokens=1, amount=1, fee=0)])  # fmt: skip
