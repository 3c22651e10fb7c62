"""Column kernels: a million records decoded and rendered a whole column at a time.

Snapshots, ledgers and trees are tables of a million rows. Decoding them record by
record costs seconds per step; joining a column's texts and decoding them in one call
(hex, decimal amounts, fixed-width records) costs a fraction. Every kernel here either
returns exactly what the record-by-record reading would, or None when anything is
unusual, so that the caller's checked path can name the bad record.
"""

from __future__ import annotations

import binascii
import json
import os
import struct
from collections.abc import Iterable, Sequence
from itertools import repeat
from operator import itemgetter
from pathlib import Path
from typing import Any, TypeVar

import orjson

from veil.errors import InputError

T = TypeVar("T", bound=tuple[Any, ...])


def json_document(head: dict[str, Any], tail: dict[str, Any], lists: dict[str, list[str]]) -> str:
    """JSON text of `head`, then each big list from pre-rendered item texts, then `tail`.

    Rendering a million rows with one `%` format each is about three times faster than
    building dicts and lists for `json.dumps`; the other parts (a Phala snapshot's staking
    section holds half a million balances) go through orjson.
    """
    parts = [dumps(head)[:-1]]
    for key, items in lists.items():
        parts.append(f", {dumps(key)}: [")
        parts.append(",".join(items))
        parts.append("]")
    rest = dumps(tail)
    parts.append(", " + rest[1:] if len(tail) else "}")
    return "".join(parts) + "\n"


def dumps(value: Any) -> str:
    """JSON text of `value`: orjson (over ten times faster on big sections), or `json`
    for what orjson does not write (integers beyond 64 bits, non-text keys, NaN)."""
    if not has_float(value):
        try:
            return orjson.dumps(value).decode()
        except TypeError:  # orjson.JSONEncodeError
            pass
    return json.dumps(value)


def load_json(data: bytes) -> Any:
    """Parse JSON with orjson (about four times faster on a million records than `json`).

    Text orjson refuses goes through `json` instead, so errors read as before and what
    `json` accepts beyond the standard (NaN, Infinity) still loads. orjson turns integers
    beyond 64 bits into floats: bulk fast paths accept only exact types, and their slow
    paths re-parse with `json_exact`.
    """
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError:
        return json.loads(data)


def json_exact(data: bytes) -> Any:
    """The standard library's reading of `data` (integers of any size stay exact)."""
    return json.loads(data)


def read_document(
    path: str | os.PathLike[str], fmt: str, columns: Sequence[str], what: str, bulk_key: str
) -> dict[str, Any]:
    """Read one of veil's column files (snapshot, ledger): JSON, `format` and `columns`
    checked, each problem one line. Integers beyond 64 bits stay exact everywhere but in
    the `bulk_key` list, whose fast paths check types themselves."""
    source = Path(path)
    try:
        data = source.read_bytes()
        document = load_json(data)
    except OSError as error:
        raise InputError(f"{source}: cannot read ({error.strerror})") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise InputError(f"{source}: not valid JSON ({error})") from None
    if isinstance(document, dict) and has_float({**document, bulk_key: None}):
        document = json_exact(data)  # orjson reads integers beyond 64 bits as floats
    if not isinstance(document, dict) or document.get("format") != fmt:
        raise InputError(f"{source}: not a veil {what} (format must be {fmt!r})")
    if document.get("columns") != list(columns):
        raise InputError(f"{source}: columns must be {list(columns)}")
    return document


def amount_column(column: Sequence[Any]) -> list[int] | None:
    """A column of decimal strings as non-negative ints, or None if any value is not one
    (the caller's record-by-record path then names the bad record)."""
    if set(map(type, column)) != {str}:
        return None
    joined = "".join(column)
    # `int` also takes " 7", "+7", "1_000" and non-ASCII digits: the format does not.
    if not (joined.isascii() and joined.isdigit()):
        return None
    try:
        return list(map(int, column))
    except ValueError:  # an empty string
        return None


def has_float(value: Any) -> bool:
    """Whether a parsed JSON value holds a float anywhere, maybe a big integer.

    One `set(map(type, ...))` per container rather than a call per value: a snapshot's
    staking section holds half a million W-PHA balances."""
    if isinstance(value, float):
        return True
    if isinstance(value, dict):
        items: Any = value.values()
    elif isinstance(value, list):
        items = value
    else:
        return False
    types = set(map(type, items))
    if float in types:
        return True
    if dict in types or list in types:
        return any(has_float(item) for item in items if type(item) in _CONTAINERS)
    return False


_CONTAINERS = (dict, list)


_X_TO_ZERO = {ord("x"): ord("0")}


def hex_records(texts: Sequence[Any], size: int) -> bytes | None:
    """Decode n "0x" + hex strings of exactly `size` bytes each in one go, or None.

    Returns n records of 1 + `size` bytes, each starting with a zero byte where its "0x"
    was (turning that "x" into "0" makes the whole text plain hex). Anything unusual (not
    a string, another length, upper-case "0X", an "x" elsewhere, not hex) gives None, so
    the caller's record-by-record path can name the problem.
    """
    count = len(texts)
    width = 2 + 2 * size
    if not count:
        return b""
    if set(map(type, texts)) != {str} or set(map(len, texts)) != {width}:
        return None
    joined = "".join(texts)
    if joined.count("x") != count or joined[1::width] != "x" * count:
        return None
    if joined[::width] != "0" * count:
        return None
    try:
        return binascii.a2b_hex(joined.translate(_X_TO_ZERO))
    except ValueError:
        return None


def split_records(blob: bytes, width: int, start: int, size: int) -> list[bytes]:
    """Bytes `start` to `start + size` of each `width`-byte record in `blob`."""
    layout = f"{start}x{size}s{width - start - size}x"
    return list(map(itemgetter(0), struct.iter_unpack(layout, blob)))


def named_rows(kind: type[T], *columns: Iterable[Any]) -> list[T]:
    """One `kind` (a NamedTuple) per row of `columns`, without a Python call per row.

    `tuple.__new__` builds each row straight from its fields; the NamedTuple's own
    `__new__` is a Python function, and a million calls of it cost about a second.
    """
    return list(map(tuple.__new__, repeat(kind), zip(*columns, strict=True)))


# The checked twins of the kernels above: one cell at a time, each problem named.


def decimal_cell(value: Any, where: str) -> int:
    """A non-negative amount written as a string of ASCII digits (JSON numbers lose
    precision beyond 2^53 in most readers, so amounts are never numbers)."""
    if not isinstance(value, str) or not value.isascii() or not value.isdigit():
        if isinstance(value, str) and value[:1] == "-" and value[1:].isdigit():
            raise InputError(f"{where}: {value} is negative")
        raise InputError(f"{where}: {value!r:.40} is not a decimal string of digits")
    return int(value)


def count_cell(value: Any, where: str) -> int:
    """A non-negative JSON integer (not a string, a float or a boolean)."""
    if type(value) is not int or value < 0:
        raise InputError(f"{where}: {value!r:.40} is not a non-negative integer")
    return value


def hex_cell(value: Any, size: int, where: str) -> bytes:
    """ "0x" + exactly `size` bytes of hex (either case; no spaces, unlike bytes.fromhex)."""
    if not isinstance(value, str) or len(value) != 2 + 2 * size or value[:2] != "0x":
        raise InputError(f"{where}: {value!r:.70} is not 0x + {size} bytes of hex")
    try:
        return binascii.a2b_hex(value[2:])
    except ValueError:
        raise InputError(f"{where}: {value!r:.70} is not valid hex") from None
