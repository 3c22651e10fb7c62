"""Benchmark: `rewards close` of one epoch, 29,000 workers and 1,740,000 heartbeats.

    .venv/bin/python bench/rewards.py [--workers 29000] [--beats 60] [--attesters 3]
                                      [--threshold 2]

Generates, once, the attesters' signed heartbeat logs with the real writer
(`veil.compute.heartbeat_log`) and real EIP-712 worker signatures, cached under
$VEIL_CACHE_DIR/bench-rewards/; every attester's log holds the epoch's heartbeats except a
different 2% each (so the threshold matters). Then, in a fresh child process, it times
what `veil rewards close` does after its chain reads: read and verify every log (hash and
attester signature), count per worker at the threshold, compute weight x uptime rewards,
the cumulative claim tree and the canonical report, and write both files atomically. The
registry's state over the epoch is given (29,000 workers of four accelerator models, some
active part of the epoch), because the chain read costs one view call per worker and
change and is measured by nothing here. Prints one JSON line. Target: under 15 s and 1 GiB.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from migration import machine
from veil.attestation.typed_data import DigestSigner, Domain
from veil.chain.home import cache_dir
from veil.merkle import keccak256

CHAIN_ID = 31337
REGISTRY = "0x5e5E5e5e5E5e5E5E5e5E5E5e5e5E5E5E5e5E5E5e"
POOL = "0x9A9A9A9a9A9A9A9a9A9a9a9A9A9a9A9a9A9A9a9a"
GENESIS = 1_700_000_000
EPOCH = 7
LENGTH = 3600


def _key(i: int, kind: bytes) -> bytes:
    return keccak256(kind + i.to_bytes(8, "big"))


def _provider(i: int) -> str:
    return "0x" + keccak256(b"provider" + (i % 700).to_bytes(4, "big"))[-20:].hex()


def generate(directory: Path, workers: int, beats: int, attesters: int) -> None:
    """The logs, with real signatures (the slow part, done once per parameter set)."""
    from veil.compute.heartbeat import struct_hash
    from veil.compute.heartbeat_log import LogHeader, entry_line, write_log

    domain = Domain("veil ComputeRegistry", "1", CHAIN_ID, REGISTRY)
    start = GENESIS + EPOCH * LENGTH
    interval = LENGTH // beats
    signers = [DigestSigner(_key(i, b"worker")) for i in range(workers)]
    raw = [bytes.fromhex(s.address[2:]) for s in signers]
    blocks = [keccak256(b"block" + k.to_bytes(4, "big")) for k in range(beats)]
    everything = directory / "entries.ndjson.tmp"
    with open(everything, "wb") as out:  # minute by minute, every worker's line
        for k in range(beats):
            minute = []
            for w, signer in enumerate(signers):
                ts = start + k * interval + w % interval
                digest = domain.digest(struct_hash(raw[w], EPOCH, k + 1, ts, blocks[k]))
                sig = signer.sign(digest).to_bytes()
                minute.append(entry_line(signer.address, EPOCH, k + 1, ts, blocks[k], sig, ts + 1))
            out.write(b"".join(minute))
    for a in range(attesters):
        key = DigestSigner(_key(a, b"attester"))
        header = LogHeader(EPOCH, key.address, CHAIN_ID, REGISTRY, True)

        def entries(a: int = a):
            with open(everything, "rb") as source:
                for k in range(beats):
                    minute = [source.readline() for _ in range(workers)]
                    kept = [line for w, line in enumerate(minute) if (w + k) % 50 != a]
                    yield b"".join(kept), len(kept)

        tallies = {(signers[a].address, "replayed"): 1, (signers[a + 1].address, "future"): 2}
        tmp = directory / f"attester-{a}.ndjson.tmp"
        with open(tmp, "wb") as out:
            for chunk in write_log(header, key, entries(), tallies):
                out.write(chunk)
        tmp.replace(directory / f"attester-{a}.ndjson")
    everything.unlink()
    (directory / "workers.json").write_text(json.dumps([s.address for s in signers]))
    (directory / "attesters.json").write_text(
        json.dumps([DigestSigner(_key(a, b"attester")).address for a in range(attesters)])
    )


def measure(directory: Path, threshold: int, beats: int) -> dict:
    """What close does after its chain reads; run in a fresh process."""
    from veil.rewards.activity import WorkerActivity
    from veil.rewards.budget import split_budget
    from veil.rewards.closing import PoolState, read_logs
    from veil.rewards.epochs import EpochClock
    from veil.rewards.report import EpochInputs, build_report, write_report

    workers = json.loads((directory / "workers.json").read_text())
    attesters = json.loads((directory / "attesters.json").read_text())
    clock = EpochClock(GENESIS, LENGTH)
    state = PoolState(CHAIN_ID, POOL, REGISTRY, clock, 8000, threshold, tuple(attesters), EPOCH)
    weights = (10_000, 10_000, 15_000, 18_000)
    activity = []
    for i, worker in enumerate(workers):
        active = LENGTH if i % 10 else LENGTH // 2  # one in ten registered half-way
        weight = weights[i % 4] * (1 + i % 8 // 7)
        activity.append(WorkerActivity(worker, _provider(i), i % 4, 1 + i % 8 // 7,
                                       weight * active, active))  # fmt: skip
    started = time.perf_counter()
    sources = [str(p) for p in sorted(directory.glob("attester-*.ndjson"))]
    logs = [beats for _, beats in read_logs(sources, state, EPOCH)]
    read_s = time.perf_counter() - started
    budget = 10_000 * 10**18
    report = build_report(
        EpochInputs(
            chain_id=CHAIN_ID, pool=POOL, registry=REGISTRY, clock=clock, epoch=EPOCH,
            budget=budget, split=split_budget(budget, 4000, 4000), min_uptime_bps=8000,
            threshold=threshold, activity=activity, logs=logs,
            previous={_provider(i): 10**18 + i for i in range(0, 700, 3)},
        )
    )  # fmt: skip
    with tempfile.TemporaryDirectory() as out:
        path = write_report(report, Path(out))
        size = path.stat().st_size
    seconds = time.perf_counter() - started
    return {
        "seconds": round(seconds, 2),
        "read_logs_seconds": round(read_s, 2),
        "report_bytes": size,
        "root": report.doc["root"],
        "allocated_wei": report.doc["allocated"],
        "eligible_workers": sum(1 for w in report.doc["workers"] if w["eligible"]),
        "cpu_seconds": round(
            sum(
                getattr(resource.getrusage(who), field)
                for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)
                for field in ("ru_utime", "ru_stime")
            ),
            2,
        ),
        # the forked log reader's peak counts too: it holds its half of the logs
        "peak_rss_bytes": 1024
        * (
            resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
            + resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        ),
    }


def chain_read(workers: int) -> dict:
    """The part close reads from the chain: `workers` registered on a devnet, then the
    registry's state over an epoch (events, batched views) timed."""
    from veil.chain.client import connect
    from veil.compute.attestation import RegistryDomain, WorkerAttestation, sign
    from veil.compute.registry import RegistryClient
    from veil.devnet.accounts import devnet_account
    from veil.devnet.anvil import Devnet, free_port
    from veil.devnet.client import DevnetChain
    from veil.devnet.network import devnet_parameters, fund_accounts
    from veil.network.deploy import deploy_network
    from veil.network.genesis import devnet_allowlist
    from veil.rewards.activity import read_activity
    from veil.rewards.epochs import EpochClock
    from veil.staking.vault import deposit

    with tempfile.TemporaryDirectory() as scratch:
        devnet = Devnet(Path(scratch) / "devnet")
        process = devnet.start(port=free_port())
        try:
            base = DevnetChain(connect(process.rpc_url))
            params = devnet_parameters([devnet_account("attester").address])
            params.os_images, params.compose_hashes = devnet_allowlist()
            provider = devnet_account("provider")
            deployed = deploy_network(
                base, devnet_account("deployer"), "devnet", process.rpc_url, params,
                genesis_mints=fund_accounts({"provider": provider.address}, 10**8),
            )  # fmt: skip
            chain = DevnetChain(base.w3, deployed)
            registry = RegistryClient.from_chain(chain)
            registry.register_provider(provider)
            registry.deposit_collateral(provider, deposit(chain, provider, 10**7 * 10**18))
            images, composes = devnet_allowlist()
            domain = RegistryDomain(chain.w3.eth.chain_id, registry.contract.address)
            attester = devnet_account("attester").key
            for i in range(workers):
                worker = DigestSigner(_key(i, b"chain-worker")).address
                attestation = WorkerAttestation(
                    worker, provider.address, bytes(32), bytes(32), images[0], composes[0],
                    i % 4, 1, 2**40, bytes(32),
                )  # fmt: skip
                registry.register_worker(
                    provider, attestation, [sign(attestation, domain, attester)]
                )
            now = int(chain.w3.eth.get_block("latest")["timestamp"])
            clock = EpochClock(now + 1, 3600)  # the workers registered before the epoch
            chain.advance_time(clock.end(0) + 1 - now)
            block = deployed.contracts["ComputeRegistry"].block
            started = time.perf_counter()
            rows = read_activity(registry.contract, clock, 0, block)
            seconds = time.perf_counter() - started
        finally:
            devnet.stop()
    return {
        "bench": "rewards_close_chain_read",
        "workers": workers,
        "seconds": round(seconds, 2),
        "active_workers": sum(1 for r in rows if r.weight_seconds),
        "seconds_per_29000_workers": round(seconds * 29_000 / workers, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=29_000)
    parser.add_argument("--beats", type=int, default=60, help="Heartbeats per worker.")
    parser.add_argument("--attesters", type=int, default=3)
    parser.add_argument("--threshold", type=int, default=2)
    parser.add_argument(
        "--chain-workers", type=int, default=1000,
        help="Workers registered on a devnet to time the chain read (0: skip).",
    )  # fmt: skip
    parser.add_argument("--measure", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        print(json.dumps(measure(args.measure, args.threshold, args.beats)))
        return
    name = f"w{args.workers}-b{args.beats}-a{args.attesters}-v1"
    directory = cache_dir() / "bench-rewards" / name
    generated = None
    if not (directory / "attesters.json").exists():
        directory.mkdir(parents=True, exist_ok=True)
        began = time.perf_counter()
        generate(directory, args.workers, args.beats, args.attesters)
        generated = round(time.perf_counter() - began, 1)
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).parent))
    run = subprocess.run(
        [sys.executable, __file__, "--measure", str(directory), "--threshold",
         str(args.threshold), "--beats", str(args.beats)],
        check=True, capture_output=True, text=True, env=env,
    )  # fmt: skip
    result = json.loads(run.stdout)
    log_bytes = sum(p.stat().st_size for p in directory.glob("attester-*.ndjson"))
    print(
        json.dumps(
            {
                "bench": "rewards_close",
                "workers": args.workers,
                "heartbeats": args.workers * args.beats,
                "attesters": args.attesters,
                "threshold": args.threshold,
                "log_bytes": log_bytes,
                **result,
                "target_seconds": 15,
                "target_peak_rss_bytes": 2**30,
                "pass": result["seconds"] < 15 and result["peak_rss_bytes"] < 2**30,
                "generated_seconds": generated,
                "machine": machine(),
            }
        )
    )
    if args.chain_workers:
        print(json.dumps({**chain_read(args.chain_workers), "machine": machine()}))


if __name__ == "__main__":
    main()
