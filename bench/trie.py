"""Benchmark: `veil substrate genesis-hash` of a raw spec with N storage keys.

    .venv/bin/python bench/trie.py [--keys 1000000] [--seed 0]

Writes a raw chain spec holding the real Khala genesis storage plus N generated
`System.Account` entries, then times the CLI end to end in a child process (read the
JSON, decode the hex, decompress the runtime for its trie version, build the trie, hash
the header) and records its peak memory. Prints one JSON line. Target: 1,000,000 keys
under 20 s on 2 cores.
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from migration import machine
from veil.substrate.storage import account_key

ROOT = Path(__file__).resolve().parents[1]
KHALA = ROOT.parent / "shared" / "fixtures" / "substrate" / "specs" / "khala.json"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keys", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    spec = json.loads(KHALA.read_text())
    top = spec["genesis"]["raw"]["top"]
    for _ in range(args.keys):
        key = account_key(rng.randbytes(32))
        top["0x" + key.hex()] = "0x" + rng.randbytes(80).hex()
    with tempfile.TemporaryDirectory() as scratch:
        path = Path(scratch) / "spec.json"
        path.write_text(json.dumps(spec))
        veil = Path(sys.executable).with_name("veil")
        started = time.perf_counter()
        result = subprocess.run(
            [str(veil), "substrate", "genesis-hash", str(path), "--json"],
            check=True,
            capture_output=True,
            text=True,
        )
        wall = time.perf_counter() - started
        peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024
        size = path.stat().st_size
    record = json.loads(result.stdout)
    print(
        json.dumps(
            {
                "bench": "trie",
                "figure": "genesis_hash_cli",
                "keys": record["keys"],
                "spec_bytes": size,
                "wall_s": round(wall, 2),
                "peak_rss_mib": round(peak / 2**20),
                "target_s": 20,
                "meets_target": wall < 20,
                "genesis_hash": record["genesis_hash"],
                "machine": machine(),
            }
        )
    )


if __name__ == "__main__":
    main()
