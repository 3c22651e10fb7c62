"""How a step over a million records runs: without the cyclic collector, on two cores.

Snapshots, ledgers and trees allocate millions of small acyclic objects (bytes, ints,
tuples). CPython's cyclic collector then runs over and over, scanning all of them, for
nothing: reference counting frees them. Pausing it for the duration of one bulk step
roughly halves the time of each; it is re-enabled (and the state restored) afterwards.
Where a step splits in two independent halves, a forked child takes one of them.
"""

from __future__ import annotations

import gc
import multiprocessing
import os
import signal
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import wraps
from typing import ParamSpec, TypeVar

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


def collector_paused(function: Callable[P, R]) -> Callable[P, R]:
    """Run `function` with the cyclic collector paused."""

    @wraps(function)
    def run(*args: P.args, **kwargs: P.kwargs) -> R:
        with gc_paused():
            return function(*args, **kwargs)

    return run


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
        try:
            payload = job()
        except Exception:  # the parent does the work again and reports the problem once
            os._exit(1)
        send.send_bytes(payload)
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
