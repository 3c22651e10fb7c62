"""The snapshot file: `veil-snapshot-v1` JSON (one table of account rows), and the
read proof an RPC snapshot keeps beside it.

Like the ledger file, it is written with one `%` format per row and read back column
by column (`rows_fast`); anything unusual falls to `rows_checked`, which names the
first bad record. On valid input the two give the same rows
(tests/migration/test_file_formats.py).
"""

from __future__ import annotations

import hashlib
import json
import os
from itertools import islice
from operator import lt
from pathlib import Path
from typing import Any

from veil.atomic import write_text
from veil.bulkwork import collector_paused
from veil.columns import (
    amount_column,
    count_cell,
    decimal_cell,
    hex_cell,
    hex_records,
    json_document,
    json_exact,
    named_rows,
    read_document,
    split_records,
)
from veil.errors import InputError
from veil.migration.account_storage import AccountRow
from veil.migration.phala_staking import StakingState
from veil.migration.snapshot import Snapshot

FORMAT = "veil-snapshot-v1"
PROOF_FORMAT = "veil-read-proof-v1"
COLUMNS = (
    "account", "free", "reserved", "frozen", "flags",
    "nonce", "consumers", "providers", "sufficients",
)  # fmt: skip


@collector_paused
def snapshot_document(snapshot: Snapshot) -> dict[str, Any]:
    """The snapshot as the JSON value its file holds (what `snapshot_text` renders)."""
    return {
        **snapshot_head(snapshot),
        "accounts": [
            [
                "0x" + a.account.hex(),
                str(a.free),
                str(a.reserved),
                str(a.frozen),
                str(a.flags),
                a.nonce,
                a.consumers,
                a.providers,
                a.sufficients,
            ]
            for a in snapshot.accounts
        ],
        **_tail(snapshot),
    }


@collector_paused
def snapshot_text(snapshot: Snapshot) -> str:
    """The same document as `snapshot_document`, rendered fast (a million rows)."""
    row = '["0x%s","%d","%d","%d","%d",%d,%d,%d,%d]'
    rows = [row % (a[0].hex(), *a[1:]) for a in snapshot.accounts]
    return json_document(snapshot_head(snapshot), _tail(snapshot), {"accounts": rows})


def _tail(snapshot: Snapshot) -> dict[str, Any]:
    return {} if snapshot.staking is None else {"phala_staking": snapshot.staking.to_json()}


def snapshot_head(snapshot: Snapshot) -> dict[str, Any]:
    """Everything in the file but the account rows (and the staking state after them)."""
    return {
        "format": FORMAT,
        "block": snapshot.block,
        "genesis_hash": snapshot.genesis_hash,
        "state_sha256": snapshot.state_sha256,
        "source": snapshot.source,
        "total_issuance": str(snapshot.total_issuance),
        "account_count": len(snapshot.accounts),
        "columns": list(COLUMNS),
    }


def proof_path(out: str | os.PathLike[str]) -> Path:
    """Where an RPC snapshot's read proof lies: beside the snapshot, named after it."""
    target = Path(out)
    return target.with_name(target.name + ".proof.json")


@collector_paused
def write_snapshot(snapshot: Snapshot, out: str | os.PathLike[str]) -> Path:
    """Write the snapshot (and its read proof beside it, first, with its hash recorded)."""
    if snapshot.proof_nodes is not None:
        proof_text = json.dumps(
            {
                "format": PROOF_FORMAT,
                "block": snapshot.block,
                "state_root": snapshot.source.get("state_root"),
                "nodes": snapshot.proof_nodes,
            }
        )
        snapshot.source["read_proof"] = {
            "file": proof_path(out).name,
            "sha256": "0x" + hashlib.sha256(proof_text.encode()).hexdigest(),
            "nodes": len(snapshot.proof_nodes),
        }
        write_text(proof_path(out), proof_text)
    path = write_text(out, snapshot_text(snapshot))
    progress_path(out).unlink(missing_ok=True)
    staking_progress_path(out).unlink(missing_ok=True)
    return path


def progress_path(out: str | os.PathLike[str]) -> Path:
    """Where an RPC snapshot keeps its pages until the snapshot file is written."""
    target = Path(out)
    return target.with_name(target.name + ".partial")


def staking_progress_path(out: str | os.PathLike[str]) -> Path:
    """Where the staking pages of a snapshot to `out` are kept until it is written."""
    target = Path(out)
    return target.with_name(target.name + ".staking.partial")


@collector_paused
def load_snapshot(path: str | os.PathLike[str]) -> Snapshot:
    """Read a snapshot file back; every malformed record is named by its position."""
    source = Path(path)
    document = read_document(source, FORMAT, COLUMNS, "snapshot", "accounts")
    try:
        issuance = int(document["total_issuance"])
    except (KeyError, TypeError, ValueError):
        raise InputError(f"{source}: total_issuance missing or not an integer") from None
    records = document.get("accounts")
    if not isinstance(records, list):
        raise InputError(f"{source}: accounts must be a list")
    rows = rows_fast(records)
    if rows is None:  # read again as `json` does (exact big integers) to name the problem
        document = json_exact(source.read_bytes())
        rows = rows_checked(document["accounts"], source)
    if document.get("account_count") not in (None, len(rows)):
        raise InputError(
            f"{source}: account_count {document.get('account_count')} but {len(rows)} records"
        )
    staking = document.get("phala_staking")
    return Snapshot(
        total_issuance=issuance,
        accounts=rows,
        state_sha256=str(document.get("state_sha256")),
        block=document.get("block"),
        genesis_hash=document.get("genesis_hash"),
        source=document.get("source") or {},
        staking=None if staking is None else StakingState.from_json(staking, str(source)),
    )


def rows_fast(records: list[Any]) -> list[AccountRow] | None:
    """All rows in column-wide bulk operations, or None if anything is off.

    Holds to the same rules as `rows_checked` (which then names the first bad record),
    only stricter: amounts must be strings and counters plain JSON integers, so whatever
    this accepts `rows_checked` reads identically.
    """
    if not records:
        return []
    if set(map(type, records)) != {list} or set(map(len, records)) != {len(COLUMNS)}:
        return None
    columns = list(zip(*records, strict=True))
    blob = hex_records(columns[0], 32)
    if blob is None:
        return None
    accounts = split_records(blob, 33, 1, 32)
    del blob
    if not all(map(lt, accounts, islice(accounts, 1, None))):
        return None
    amounts = []
    for column in columns[1:5]:
        numbers = amount_column(column)
        if numbers is None:
            return None
        amounts.append(numbers)
    for column in columns[5:]:
        if set(map(type, column)) != {int} or min(column) < 0:
            return None
    del records
    return named_rows(AccountRow, accounts, *amounts, *columns[5:])


def rows_checked(records: list[Any], source: Path) -> list[AccountRow]:
    """The slow path: find and name the first malformed account record."""
    rows: list[AccountRow] = []
    append = rows.append
    previous = b""
    for number, record in enumerate(records):
        where = f"{source}: account record {number}"
        if not isinstance(record, list) or len(record) != len(COLUMNS):
            raise InputError(f"{where} ({str(record)[:80]}): expected [{', '.join(COLUMNS)}]")
        account = hex_cell(record[0], 32, where)
        amounts = [decimal_cell(record[i], f"{where} {COLUMNS[i]}") for i in range(1, 5)]
        counters = [count_cell(record[i], f"{where} {COLUMNS[i]}") for i in range(5, 9)]
        if account <= previous:
            raise InputError(f"{where} ({record[0]}): not sorted or duplicated")
        previous = account
        append(AccountRow(account, *amounts, *counters))
    return rows
