"""Benchmark: snapshot -> ledger -> tree for N generated accounts, and OpenZeppelin's `of`.

    .venv/bin/python bench/migration.py [--accounts 1000000] [--seed 0] [--keep DIR]
    .venv/bin/python bench/migration.py --phala   # Phala-shaped: W-PHA, pools, NFTs

Prints one JSON line per figure (wall seconds per step, peak memory of the pipeline,
OpenZeppelin StandardMerkleTree.of on the same leaves, the ratio), each recording the
machine. Targets: pipeline < 30 s and < 2 GiB on 2 cores; veil tree / OZ `of` <= 0.1.
The pipeline runs in a child process so its peak memory excludes state generation.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
PHALA_METADATA = ROOT.parent / "shared" / "fixtures" / "substrate" / "metadata" / "phala-1291.scale"
# The Phala-shaped state of issue 10: half the accounts hold W-PHA, 3,000 pools (a third
# of them vaults), 100,000 delegation NFTs; positions come from storage, not a file.
PHALA_SHAPE = {"wpha_share": 2, "pools": 3000, "nfts": 100_000}
OZ_SCRIPT = ROOT / "tests" / "interop" / "js" / "oz_tree.js"


def machine() -> dict[str, Any]:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory = None
    try:
        pages = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        memory = round(pages / 2**30, 1)
    except (ValueError, OSError):
        pass
    return {
        "load_average_1m": round(os.getloadavg()[0], 2),
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gib": memory,
        "python": platform.python_version(),
        "os": platform.platform(),
    }


def emit(figure: str, value: Any, unit: str, **extra: Any) -> None:
    print(
        json.dumps(
            {
                "bench": "migration",
                "figure": figure,
                "value": value,
                "unit": unit,
                **extra,
                "machine": MACHINE,
            }
        ),
        flush=True,
    )


MACHINE = machine()


def generate_phala(folder: Path, accounts: int, seed: int) -> dict[str, int]:
    from veil.atomic import write_json
    from veil.migration.synthetic import generate_phala_state, raw_document

    state = generate_phala_state(
        accounts,
        wpha_holders=accounts // PHALA_SHAPE["wpha_share"],
        pools=PHALA_SHAPE["pools"],
        nfts=PHALA_SHAPE["nfts"],
        seed=seed,
    )
    write_json(folder / "raw.json", raw_document(state), indent=None)
    (folder / "phala").write_text("phala-1291\n")
    return state.notes


def generate(folder: Path, accounts: int, seed: int) -> None:
    from veil.atomic import write_json
    from veil.migration.positions import exclusions_to_json, positions_to_json
    from veil.migration.synthetic import generate_state, raw_document

    state = generate_state(accounts, seed=seed)
    write_json(folder / "raw.json", raw_document(state), indent=None)
    write_json(folder / "pos.json", positions_to_json(state.positions), indent=None)
    write_json(folder / "exc.json", exclusions_to_json(state.exclusions), indent=None)


def pipeline(folder: Path) -> dict[str, float]:
    """The three CLI steps as the CLI runs them (file in, file out), timed one by one."""
    import gc

    from veil.merkle import build_tree, write_tree
    from veil.migration.ledger import build_ledger, tree_from_ledger
    from veil.migration.ledger_format import load_ledger, write_ledger
    from veil.migration.positions import load_exclusions, load_positions
    from veil.migration.snapshot import snapshot_from_raw
    from veil.migration.snapshot_format import load_snapshot, write_snapshot

    def cpu() -> float:
        """user+sys of this process and its (waited-for) forked helpers so far."""
        me, helpers = (
            resource.getrusage(resource.RUSAGE_SELF),
            resource.getrusage(resource.RUSAGE_CHILDREN),
        )
        return me.ru_utime + me.ru_stime + helpers.ru_utime + helpers.ru_stime

    gc.disable()  # as each `veil migrate` step runs (see veil.cli.migrate)
    phala = (folder / "phala").exists()
    times: dict[str, float] = {}
    start = time.perf_counter()
    cpu_mark = cpu()
    # as `veil migrate snapshot --metadata` does: the file is decoded beside the state
    metadata = PHALA_METADATA if phala else None
    write_snapshot(snapshot_from_raw(folder / "raw.json", metadata), folder / "snap.json")
    times["snapshot"] = time.perf_counter() - start
    times["snapshot_cpu"], cpu_mark = cpu() - cpu_mark, cpu()

    start = time.perf_counter()
    ledger = build_ledger(
        load_snapshot(folder / "snap.json"),
        [] if phala else load_positions(folder / "pos.json"),
        [] if phala else load_exclusions(folder / "exc.json"),
    )
    write_ledger(ledger, folder / "ledger.json")
    del ledger
    times["ledger"] = time.perf_counter() - start
    times["ledger_cpu"], cpu_mark = cpu() - cpu_mark, cpu()

    start = time.perf_counter()
    ledger = load_ledger(folder / "ledger.json")
    loaded = time.perf_counter()
    tree = tree_from_ledger(ledger)
    built = time.perf_counter()
    write_tree(tree, folder / "tree.json")
    times["tree"] = time.perf_counter() - start
    times["tree_build_only"] = built - loaded
    times["tree_cpu"] = cpu() - cpu_mark
    me, helpers = (
        resource.getrusage(resource.RUSAGE_SELF),
        resource.getrusage(resource.RUSAGE_CHILDREN),
    )
    times["cpu"] = me.ru_utime + me.ru_stime + helpers.ru_utime + helpers.ru_stime
    times["peak_kib"] = max(me.ru_maxrss, helpers.ru_maxrss)
    values = [[str(v[0]), "0x" + v[1].hex(), str(v[2]), str(v[3])] for v in tree.values]
    (folder / "values.json").write_text(json.dumps(values))
    times["root"] = tree.root.hex()  # type: ignore[assignment]
    times["leaves"] = len(tree.values)
    # Same leaves, in memory, a second time: the figure compared with OpenZeppelin's `of`.
    raw_values = list(tree.values)
    del tree, ledger
    start = time.perf_counter()
    build_tree(raw_values)
    times["tree_build_again"] = time.perf_counter() - start
    return times


def gas_figures(folder: Path) -> list[dict[str, Any]]:
    """On-chain figures: claim gas beside the reference distributor, attester throughput.

    Both run on their own small inputs (a 64-leaf tree, 3,000 signed bindings), so they
    do not depend on the million-account files in `folder`.
    """
    del folder
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from attesterload import attester_figures
    from claimgas import claim_gas_figures

    return [*claim_gas_figures(), *attester_figures()]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--accounts", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--keep", type=Path, default=None, help="Keep the files in this folder.")
    parser.add_argument("--child", type=Path, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--skip-oz", action="store_true", help="Do not run OpenZeppelin's of.")
    parser.add_argument(
        "--phala",
        action="store_true",
        help="Phala-shaped state (W-PHA, 3,000 pools, 100,000 NFTs); pipeline figures only.",
    )
    args = parser.parse_args()
    if args.child is not None:
        print(json.dumps(pipeline(args.child)))
        return

    if args.keep is not None:
        args.keep.mkdir(parents=True, exist_ok=True)
        measure(args, args.keep)
        return
    # 1.2 GB of state, ledger and tree per run: gone afterwards (a worker's free disk is
    # its capacity, so runs that left their files behind once starved `make demo`)
    with tempfile.TemporaryDirectory(prefix="veil-bench-") as scratch:
        measure(args, Path(scratch))


def measure(args: argparse.Namespace, folder: Path) -> None:
    """Generate the state in `folder`, run the pipeline on it, print the figures."""
    start = time.perf_counter()
    shape: dict[str, Any] = {"accounts": args.accounts}
    if args.phala:
        shape.update(state="phala", **generate_phala(folder, args.accounts, args.seed))
    else:
        generate(folder, args.accounts, args.seed)
    emit("generate_state_seconds", round(time.perf_counter() - start, 2), "s", **shape)

    start = time.perf_counter()
    child = subprocess.run(
        [sys.executable, __file__, "--child", str(folder)], capture_output=True, text=True
    )
    wall = time.perf_counter() - start
    if child.returncode != 0:
        sys.exit(child.stderr)
    times = json.loads(child.stdout)
    peak_kib = times["peak_kib"]  # measured in the child right after the tree step
    cpu_seconds = times["cpu"]
    for step in ("snapshot", "ledger", "tree"):
        emit(f"{step}_seconds", round(times[step], 2), "s", **shape)
        # CPU per step: what to compare before/after a change when other work shares the
        # machine (wall seconds then measure the load as much as the code).
        emit(f"{step}_cpu_seconds", round(times[f"{step}_cpu"], 2), "s", **shape)
    pipeline_seconds = times["snapshot"] + times["ledger"] + times["tree"]
    emit(
        "pipeline_seconds",
        round(pipeline_seconds, 2),
        "s",
        **shape,
        target_seconds=30,
        within_target=pipeline_seconds < 30,
        process_wall_seconds=round(wall, 2),
    )
    emit(
        "pipeline_cpu_seconds",
        round(cpu_seconds, 2),
        "s",
        **shape,
        note="user+sys of the pipeline process and its forked helper; less sensitive than "
        "wall time to other load on the machine (see load_average_1m)",
    )
    emit(
        "pipeline_peak_memory",
        round(peak_kib / 2**20, 2),
        "GiB",
        **shape,
        target_gib=2,
        within_target=peak_kib < 2 * 2**20,
    )
    emit(
        "tree_build_seconds",
        round(times["tree_build_again"], 2),
        "s",
        leaves=times["leaves"],
        note="in-memory build of the same leaves, no file I/O",
    )

    if args.phala:
        return  # tree and on-chain figures are the same as the default run's
    if not args.skip_oz:
        oz = subprocess.run(
            [
                "node",
                "--max-old-space-size=12000",
                str(OZ_SCRIPT),
                "of",
                str(folder / "values.json"),
            ],
            cwd=ROOT,
            capture_output=True,
            text=True,
        )
        if oz.returncode != 0:
            sys.exit(oz.stderr)
        answer = json.loads(oz.stdout)
        same_root = answer["root"] == "0x" + times["root"]
        emit(
            "openzeppelin_of_seconds",
            round(answer["seconds"], 2),
            "s",
            leaves=answer["length"],
            same_root=same_root,
        )
        ratio = times["tree_build_again"] / answer["seconds"]
        emit(
            "tree_ratio_veil_over_openzeppelin",
            round(ratio, 3),
            "ratio",
            target=0.1,
            within_target=ratio <= 0.1,
            same_root=same_root,
            with_file_io=round(times["tree"] / answer["seconds"], 3),
        )
        if not same_root:
            sys.exit("roots differ between veil and OpenZeppelin")
    for figure in gas_figures(folder):
        emit(**figure)


if __name__ == "__main__":
    main()
