"""How long `veil` takes to start: help and offline commands, each run many times.

A user feels startup on every command, and most commands never touch a chain, so heavy
libraries (web3, eth_account, vyper, substrate-interface, titanoboa) must be imported only
where used. Target: at most 0.3 s (median wall time) for `veil --help`, `veil migrate
--help`, `veil migrate tree --help` and `veil attest verify --help`.

Each command runs as its own process, as a user starts it (the venv's `veil` script);
wall time is what the user waits, CPU time (user + system of the child) is less disturbed
by other load on the machine, so both are reported, with the load average. Prints one
JSON line; `--out FILE` also writes it atomically.

`--baseline SRC` also times another checkout's `src/` (e.g. `git archive main src | tar -x
-C /tmp/base`), interleaved run by run with this one, so a before/after comparison sees
the same machine load; a command the baseline lacks is reported as null there.

Run: .venv/bin/python bench/startup.py [--runs 21] [--baseline DIR] [--out FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from migration import machine

TARGET_SECONDS = 0.3
COMMANDS = (
    ("--help",),
    ("--version",),
    ("migrate", "--help"),
    ("migrate", "tree", "--help"),
    ("attest", "verify", "--help"),
)
TARGETED = {"--help", "migrate --help", "migrate tree --help", "attest verify --help"}


def veil_executable() -> Path:
    """The `veil` script beside this interpreter: the venv's, as `make setup` installs it."""
    return Path(sys.executable).with_name("veil")


def time_once(args: tuple[str, ...], src: Path | None = None) -> tuple[float, float] | None:
    """(wall seconds, child CPU seconds) of one `veil ARGS` run; None if it failed."""
    env = dict(os.environ)
    if src is not None:  # put that checkout's package ahead of the installed one
        env["PYTHONPATH"] = str(src)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    done = subprocess.run(
        [str(veil_executable()), *args],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env=env,
        timeout=60,
        check=False,
    )
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        if src is None:
            raise SystemExit(f"veil {' '.join(args)} exited {done.returncode}: {done.stderr!r}")
        return None
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def _figures(walls: dict[str, list[float]], cpus: dict[str, list[float]]) -> dict[str, Any]:
    return {
        name: {
            "median_s": round(statistics.median(walls[name]), 4),
            "min_s": round(min(walls[name]), 4),
            "cpu_median_s": round(statistics.median(cpus[name]), 4),
        }
        if walls[name]
        else None
        for name in walls
    }


def measure(runs: int, baseline: Path | None = None) -> dict[str, Any]:
    """Interleave commands (and variants) run by run, so slow moments hit all alike."""
    variants: list[Path | None] = [None] if baseline is None else [None, baseline]
    for args in COMMANDS:
        for src in variants:
            time_once(args, src)  # warm the page cache and the .pyc files
    walls: dict[Path | None, dict[str, list[float]]] = {
        src: {" ".join(a): [] for a in COMMANDS} for src in variants
    }
    cpus: dict[Path | None, dict[str, list[float]]] = {
        src: {" ".join(a): [] for a in COMMANDS} for src in variants
    }
    for _ in range(runs):
        for args in COMMANDS:
            for src in variants:
                timed = time_once(args, src)
                if timed is not None:
                    walls[src][" ".join(args)].append(timed[0])
                    cpus[src][" ".join(args)].append(timed[1])
    figures = _figures(walls[None], cpus[None])
    worst = max(figures[name]["median_s"] for name in TARGETED)
    result: dict[str, Any] = {
        "bench": "startup",
        "runs": runs,
        "commands": figures,
        "target_s": TARGET_SECONDS,
        "meets_target": worst <= TARGET_SECONDS,
    }
    if baseline is not None:
        result["baseline"] = {
            "src": str(baseline),
            "commands": _figures(walls[baseline], cpus[baseline]),
        }
    result["load_average"] = [round(x, 2) for x in os.getloadavg()]
    result["machine"] = machine()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=21, help="Runs per command (median).")
    parser.add_argument("--out", type=Path, help="Also write the JSON line to this file.")
    parser.add_argument("--baseline", type=Path, help="Another checkout's src/ to compare.")
    options = parser.parse_args()
    line = json.dumps(measure(options.runs, options.baseline))
    print(line)
    if options.out is not None:
        from veil.atomic import write_text

        write_text(options.out, line + "\n")


if __name__ == "__main__":
    main()
