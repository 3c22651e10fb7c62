"""Bulk work over a million records without the cyclic garbage collector in the way.

Snapshots, ledgers and trees allocate millions of small acyclic objects (bytes, ints,
tuples). CPython's cyclic collector then runs over and over, scanning all of them, for
nothing: reference counting frees them. Pausing it for the duration of one bulk step
roughly halves the time of each; it is re-enabled (and the state restored) afterwards.
"""

from __future__ import annotations

import binascii
import gc
import json
import multiprocessing
import os
import signal
import struct
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from functools import wraps
from operator import itemgetter
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

import orjson

from veil.errors import InputError

P = ParamSpec("P")
R = TypeVar("R")


@contextmanager
def gc_paused() -> Iterator[None]:
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def bulk(function: Callable[P, R]) -> Callable[P, R]:
    """Run `function` with the cyclic collector paused."""

    @wraps(function)
    def run(*args: P.args, **kwargs: P.kwargs) -> R:
        with gc_paused():
            return function(*args, **kwargs)

    return run


def json_document(head: dict[str, Any], tail: dict[str, Any], lists: dict[str, list[str]]) -> str:
    """JSON text of `head`, then each big list from pre-rendered item texts, then `tail`.

    Rendering a million rows with one `%` format each is about three times faster than
    building dicts and lists for `json.dumps`; the small parts still go through `json`.
    """
    parts = [json.dumps(head)[:-1]]
    for key, items in lists.items():
        parts.append(f", {json.dumps(key)}: [")
        parts.append(",".join(items))
        parts.append("]")
    rest = json.dumps(tail)
    parts.append(", " + rest[1:] if len(tail) else "}")
    return "".join(parts) + "\n"


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
    try:
        numbers = list(map(int, column))
    except ValueError:
        return None
    if numbers and min(numbers) < 0:
        return None
    return numbers


def has_float(value: Any) -> bool:
    """Whether a (small) parsed JSON value holds a float anywhere, maybe a big integer."""
    if isinstance(value, float):
        return True
    if isinstance(value, dict):
        return any(map(has_float, value.values()))
    if isinstance(value, list):
        return any(map(has_float, value))
    return False


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


PARALLEL_MIN_ROWS = 50_000


def can_fork(rows: int) -> bool:
    """Whether `rows` records are worth a forked helper here (two cores, `fork` exists)."""
    return (
        rows >= PARALLEL_MIN_ROWS
        and (os.cpu_count() or 1) >= 2
        and "fork" in multiprocessing.get_all_start_methods()
    )


def forked(job: Callable[[], bytes]) -> Callable[[], bytes | None]:
    """Run `job` in a forked child (which shares our memory copy-on-write), now.

    Returns a function that waits for the child's bytes, or None if it failed, in which
    case the caller does the work itself: parallelism here is only ever an optimisation.
    """
    context = multiprocessing.get_context("fork")
    receive, send = context.Pipe(duplex=False)

    def run() -> None:
        # Ctrl-C reaches the whole process group: the child just dies (the parent, which
        # got the same signal, reports it once) instead of printing its own traceback.
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        send.send_bytes(job())
        send.close()

    process = context.Process(target=run, daemon=True)
    process.start()
    send.close()

    def result() -> bytes | None:
        try:
            data = receive.recv_bytes()
        except (EOFError, OSError):
            data = None
        process.join()
        receive.close()
        return data if process.exitcode == 0 else None

    return result
