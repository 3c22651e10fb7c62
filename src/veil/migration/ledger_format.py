"""The ledger file: `veil-ledger-v1` JSON, written fast and read back twice as carefully.

A ledger has a million leaves, so both directions have a column-wide fast path: rows
rendered with one `%` format each, and read back column by column (`leaves_fast`).
The fast reader refuses anything unusual and then the checked reader
(`leaves_checked`), which goes record by record, names the first bad leaf; on valid
input the two give the same leaves (tests/migration/test_file_formats.py).
"""

from __future__ import annotations

import hashlib
import os
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
from veil.migration.ledger import Backing, Excluded, Leaf, Ledger, LedgerRefused
from veil.migration.positions import BACKING_REASON
from veil.migration.snapshot import DEFAULT_DECIMALS

FORMAT = "veil-ledger-v1"
COLUMNS = ("index", "account", "free_wei", "staked_wei")


@collector_paused
def ledger_document(ledger: Ledger) -> dict[str, Any]:
    """The ledger as the JSON value its file holds (what `ledger_text` renders)."""
    return {
        **_head(ledger),
        "leaves": [
            [leaf.index, "0x" + leaf.account.hex(), str(leaf.free_wei), str(leaf.staked_wei)]
            for leaf in ledger.leaves
        ],
    }


def _head(ledger: Ledger) -> dict[str, Any]:
    return {
        "format": FORMAT,
        "snapshot": ledger.snapshot,
        "total_issuance_planck": str(ledger.total_issuance_planck),
        "total_issuance_wei": str(ledger.total_issuance_wei),
        "totals": {
            "free_wei": str(ledger.free_wei),
            "staked_wei": str(ledger.staked_wei),
            "excluded_wei": str(ledger.excluded_wei),
            "leaf_count": len(ledger.leaves),
        },
        "dust_limit_planck": ledger.dust_limit_planck,
        "token_decimals": ledger.token_decimals,
        **({"phala": ledger.phala} if ledger.phala is not None else {}),
        "backing": [
            {
                "account": "0x" + b.account.hex(),
                "reason": BACKING_REASON,
                "pools": list(b.pools),
                "balance_wei": str(b.balance_wei),
                "positions_wei": str(b.positions_wei),
                "dust_wei": str(b.dust_wei),
            }
            for b in ledger.backing
        ],
        "excluded": [
            {
                "account": "0x" + e.account.hex(),
                "reason": e.reason,
                "kind": e.kind,
                "amount_wei": str(e.amount_wei),
            }
            for e in ledger.excluded
        ],
        "columns": list(COLUMNS),
    }


@collector_paused
def ledger_text(ledger: Ledger) -> str:
    """The same document as `ledger_document`, rendered fast (a million leaves)."""
    row = '[%d,"0x%s","%d","%d"]'
    leaves = [row % (leaf[0], leaf[1].hex(), leaf[2], leaf[3]) for leaf in ledger.leaves]
    return json_document(_head(ledger), {}, {"leaves": leaves})


def write_ledger(ledger: Ledger, out: str | os.PathLike[str]) -> Path:
    """Write the ledger atomically (re-checked first: a refused ledger is never written)."""
    ledger.check()
    return write_text(out, ledger_text(ledger))


def file_sha256(path: str | os.PathLike[str]) -> str:
    """0x + sha256 of a file, read in blocks: what a ledger records of its snapshot file."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return "0x" + digest.hexdigest()


def _int(value: Any, where: str) -> int:
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise InputError(f"{where}: {value!r:.40} is not an integer") from None
    if number < 0:
        raise InputError(f"{where}: {number} is negative")
    return number


def _account(value: Any, where: str) -> bytes:
    if not isinstance(value, str) or not value.startswith("0x") or len(value) != 66:
        raise InputError(f"{where}: account {value!r:.70} is not 0x + 32 bytes of hex")
    try:
        return bytes.fromhex(value[2:])
    except ValueError:
        raise InputError(f"{where}: account {value!r:.70} is not valid hex") from None


def leaves_fast(records: list[Any]) -> list[Leaf] | None:
    """All leaves in column-wide bulk operations, or None if anything is off.

    Stricter than `leaves_checked` (which then names the first bad leaf): indices must
    be JSON integers and amounts strings, so whatever this accepts reads identically.
    """
    if not records:
        return []
    if set(map(type, records)) != {list} or set(map(len, records)) != {len(COLUMNS)}:
        return None
    index, account, free, staked = zip(*records, strict=True)
    if set(map(type, index)) != {int}:
        return None
    blob = hex_records(account, 32)
    if blob is None:
        return None
    accounts = split_records(blob, 33, 1, 32)
    del blob
    amounts = []
    for column in (free, staked):
        numbers = amount_column(column)
        if numbers is None:
            return None
        amounts.append(numbers)
    return named_rows(Leaf, index, accounts, *amounts)


def leaves_checked(records: list[Any], source: Path) -> list[Leaf]:
    """The slow path: find and name the first malformed leaf."""
    leaves: list[Leaf] = []
    for number, record in enumerate(records):
        where = f"{source}: leaf {number}"
        if not isinstance(record, list) or len(record) != len(COLUMNS):
            raise InputError(f"{where}: expected [index, account, free_wei, staked_wei]")
        leaves.append(
            Leaf(
                count_cell(record[0], f"{where} index"),
                hex_cell(record[1], 32, f"{where} account"),
                decimal_cell(record[2], f"{where} free_wei"),
                decimal_cell(record[3], f"{where} staked_wei"),
            )
        )
    return leaves


@collector_paused
def load_ledger(path: str | os.PathLike[str]) -> Ledger:
    """Read a ledger back and re-check its reconciliation (a hand-edited file is refused)."""
    source = Path(path)
    document = read_document(source, FORMAT, COLUMNS, "ledger", "leaves")
    issuance = _int(document.get("total_issuance_planck"), f"{source}: total_issuance_planck")
    records = document.get("leaves")
    if not isinstance(records, list):
        raise InputError(f"{source}: leaves must be a list")
    leaves = leaves_fast(records)
    if leaves is None:  # read again as `json` does (exact big integers) to name the problem
        records = json_exact(source.read_bytes())["leaves"]
        leaves = leaves_checked(records, source)
    del records
    backing = []
    for number, item in enumerate(document.get("backing") or []):
        where = f"{source}: backing {number}"
        if not isinstance(item, dict):
            raise InputError(f"{where}: expected an object")
        backing.append(
            Backing(
                _account(item.get("account"), where),
                tuple(item.get("pools") or ()),
                _int(item.get("balance_wei"), f"{where} balance_wei"),
                _int(item.get("positions_wei"), f"{where} positions_wei"),
            )
        )
    excluded = []
    for number, item in enumerate(document.get("excluded") or []):
        where = f"{source}: excluded {number}"
        if not isinstance(item, dict) or not item.get("reason"):
            raise InputError(f"{where}: expected an object with a reason")
        excluded.append(
            Excluded(
                _account(item.get("account"), where),
                str(item["reason"]),
                str(item.get("kind") or "other"),
                _int(item.get("amount_wei"), f"{where} amount_wei"),
            )
        )
    ledger = Ledger(
        issuance,
        leaves,
        backing,
        excluded,
        snapshot=document.get("snapshot") or {},
        dust_limit_planck=int(document.get("dust_limit_planck") or 0),
        token_decimals=int(document.get("token_decimals") or DEFAULT_DECIMALS),
        phala=document.get("phala"),
    )
    try:
        ledger.check()
    except LedgerRefused as refused:
        raise InputError(f"{source}: {refused.problems[0]}") from None
    return ledger
