"""How every command shows things: dates, tables and JSON, the same way everywhere.

Times are ISO 8601 in UTC, with a relative hint ("in 3 days") where the reader is waiting
for something. Tables are cut to fit only on a terminal: piped into a file or another
program, a shortened id or amount is a wrong one, so every cell is printed whole.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from rich.console import Console
from rich.table import Table


def iso(unix: int) -> str:
    """2026-02-18T12:00:00Z."""
    return datetime.fromtimestamp(unix, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def relative(seconds: int) -> str:
    """'in 3 days' / '2 hours ago' / 'now': the largest unit that is at least one."""
    size = abs(seconds)
    for unit, length in (("day", 86_400), ("hour", 3_600), ("minute", 60), ("second", 1)):
        if size >= length:
            count = size // length
            text = f"{count} {unit}{'s' if count != 1 else ''}"
            return f"in {text}" if seconds > 0 else f"{text} ago"
    return "now"


def when(unix: int, now: int | None = None) -> str:
    """ISO 8601, plus how far from `now` (chain time) when it is given."""
    return iso(unix) if now is None else f"{iso(unix)} ({relative(unix - now)})"


def print_table(console: Console, table: Table) -> None:
    """On a terminal, fit the table to the window; elsewhere, never cut or fold a cell."""
    if console.is_terminal:
        console.print(table)
        return
    for column in table.columns:
        column.no_wrap = True
    width = console.width
    console.width = 1_000_000  # a table only takes the width its cells need
    try:
        console.print(table, crop=False)
    finally:
        console.width = width


def print_json(payload: Any) -> None:
    """One JSON document on stdout; big integers are strings already (see amount_json)."""
    print(json.dumps(payload, indent=2))
