"""Attester heartbeat ingest: heartbeats verified AND durably stored per second, over HTTP.

The attester runs as its own process, as `veil attester serve` does, with the CLI's
defaults where they matter (16 requests worked on at once, one heartbeat per worker per
10 s kept, fsync before answering); a second process posts heartbeat v2 bodies from
several keep-alive connections. The bodies are signed beforehand by thousands of
distinct worker keys (signing is the workers' cost, not the attester's), with
timestamps inside the clock skew, each worker's 10 s apart, so every one is accepted.
Both processes share the machine's cores, as they would on a small host.

Every 200 is counted only if, after the run, the heartbeat is in the attester's epoch
journal (read back with `veil.compute.heartbeat_log.read_entries`): durably stored means
on disk before the answer, and the run checks the count. Workers' registrations are
written into the attester's store directly (their verification is bench/attest.py's
subject), and the recent block hashes are a fixed set of 256 (on a live chain they are
refreshed only when a heartbeat names a new block, not per heartbeat).

Target: 2,000/s on 2 cores (29,000 workers at one heartbeat a minute need 483/s).
"""

from __future__ import annotations

import http.client
import json
import multiprocessing
import os
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from chainbench import emit, machine
from veil.attestation.api import HEARTBEATS
from veil.attestation.typed_data import DigestSigner, keccak256
from veil.compute import heartbeat
from veil.compute.attestation import RegistryDomain
from veil.compute.heartbeat import DEFAULT_SCHEDULE
from veil.compute.heartbeat_log import read_entries
from veil.devnet.accounts import devnet_account
from veil.network.genesis import devnet_policy
from veil.services.attester.server import Limits
from veil.services.attester.service import AttesterConfig, build_server
from veil.services.attester.store import Store
from veil.tee.policy import policy_from_dict

DOMAIN = RegistryDomain(73217, "0x" + "ab" * 20)
BLOCKS = [keccak256(b"block %d" % n) for n in range(256)]
MIN_INTERVAL = 10  # the CLI's default --min-heartbeat-interval
REPO = Path(__file__).resolve().parents[1]


def _workers(count: int) -> list[DigestSigner]:
    return [DigestSigner(keccak256(b"bench worker %d" % i)) for i in range(count)]


def _bodies(workers: list[DigestSigner], beats: int, now: int) -> list[bytes]:
    """Each worker's `beats` heartbeats, `MIN_INTERVAL` apart, ending at `now`, interleaved
    round by round (as a fleet's arrive)."""
    bodies = []
    for round_ in range(beats):
        timestamp = now - (beats - 1 - round_) * (MIN_INTERVAL + 1)
        for n, key in enumerate(workers):
            beat = heartbeat.Heartbeat(
                key.address,
                DEFAULT_SCHEDULE.epoch(timestamp),
                round_ + 1,
                timestamp,
                BLOCKS[(n + round_) % 256],
            )
            signature = key.sign(heartbeat.digest(beat, DOMAIN)).to_bytes()
            bodies.append(json.dumps(heartbeat.to_json(beat, signature)).encode())
    return bodies


def _register(db: Path, workers: list[str], expiry: int) -> None:
    store = Store(db)
    for worker in workers:
        store.record_registration(
            {"worker": worker, "provider": "0x" + "cd" * 20, "evidence_hash": "0x",
             "quote_hash": "0x", "verdict": "{}", "attestation": "{}", "expiry": expiry}
        )  # fmt: skip


def _serve(db: str, ready: Any, stop: Any, port_out: Any, commits: Any, cpu: Any) -> None:
    config = AttesterConfig(
        signer=devnet_account("attester"), db=Path(db), port=0,
        policy=policy_from_dict(__import__("tomllib").loads(devnet_policy())),
        registry=DOMAIN, blocks=set(BLOCKS), epochs=DEFAULT_SCHEDULE,
        min_heartbeat_interval=MIN_INTERVAL, limits=Limits(),
    )  # fmt: skip
    server = build_server(config)
    port_out.value = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    before = time.process_time()
    ready.set()
    stop.wait()
    cpu.value = time.process_time() - before
    journal = server.closers[0].__self__
    server.shutdown()
    server.server_close()
    commits.value = journal.commits


def _load(
    port: int, bodies: list[bytes], workers: int, connections: int
) -> tuple[float, list[float], int]:
    latencies: list[float] = []
    failures = [0]
    lock = threading.Lock()
    headers = {"Content-Type": "application/json"}

    def worker(chunk: list[bytes]) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        mine, bad = [], 0
        for body in chunk:
            start = time.perf_counter()
            conn.request("POST", HEARTBEATS, body, headers)
            response = conn.getresponse()
            answer = response.read()
            mine.append(time.perf_counter() - start)
            if response.status != 200:
                bad += 1
                if bad == 1:
                    print(f"refused: {response.status} {answer[:200]!r}", file=sys.stderr)
        with lock:
            latencies.extend(mine)
            failures[0] += bad

    # a worker's heartbeats stay on one connection, in order (as one agent sends them)
    chunks: list[list[bytes]] = [[] for _ in range(connections)]
    for i, body in enumerate(bodies):
        chunks[(i % workers) % connections].append(body)
    threads = [threading.Thread(target=worker, args=(c,)) for c in chunks]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return time.perf_counter() - start, latencies, failures[0]


def ingest_figures(
    workers: int = 2_000, beats: int = 10, connections: int = 32
) -> list[dict[str, Any]]:
    load = os.getloadavg()[0]  # other work on the machine, before ours starts
    keys = _workers(workers)
    now = int(time.time()) + 20  # signing takes a while; stay inside the skew either way
    bodies = _bodies(keys, beats, now)
    wait = now - int(time.time())
    if wait > 0:
        time.sleep(wait)  # the newest heartbeat must not be ahead of the attester's clock
    ctx = multiprocessing.get_context("spawn")
    ready, stop, port = ctx.Event(), ctx.Event(), ctx.Value("i", 0)
    commits, cpu = ctx.Value("q", 0), ctx.Value("d", 0.0)
    (REPO / "build").mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory(dir=REPO / "build") as tmp:  # the real disk, not tmpfs
        db = Path(tmp) / "attester.sqlite"
        _register(db, [k.address for k in keys], now + 86_400)
        server = ctx.Process(target=_serve, args=(str(db), ready, stop, port, commits, cpu))
        server.start()
        try:
            if not ready.wait(120):
                raise SystemExit("attester did not start")
            seconds, latencies, failures = _load(port.value, bodies, workers, connections)
        finally:
            stop.set()
            server.join(60)
            if server.is_alive():
                server.terminate()
        journal = db.with_suffix(".heartbeats")
        stored = sum(
            len(read_entries(p, int(p.stem.split("-")[1]))) for p in journal.glob("epoch-*.ndjson")
        )
        size = sum(p.stat().st_size for p in journal.glob("epoch-*.ndjson"))
    accepted = len(bodies) - failures
    latencies.sort()
    rate = accepted / seconds
    durable = stored == accepted
    return [{
        "figure": "attester_heartbeats_per_second", "value": round(rate, 1), "unit": "1/s",
        "heartbeats": len(bodies), "accepted": accepted, "stored": stored, "workers": workers,
        "connections": connections, "max_inflight": Limits().max_inflight,
        "fsyncs": commits.value,
        "heartbeats_per_fsync": round(stored / commits.value, 1) if commits.value else None,
        "bytes_per_heartbeat": round(size / stored, 1) if stored else None,
        "attester_cpu_us_per_heartbeat": round(cpu.value / len(bodies) * 1e6, 1),
        "p50_ms": round(latencies[len(latencies) // 2] * 1000, 2),
        "p99_ms": round(latencies[int(len(latencies) * 0.99)] * 1000, 2),
        "target": 2000, "within_target": rate >= 2000 and failures == 0 and durable,
        "cpus": os.cpu_count(), "load_average_1m_before": round(load, 2),
        "machine": machine(),
        "note": "signature recovered and every check run per heartbeat; fdatasync before"
                " each answer (group commit); client and attester share the cores",
    }]  # fmt: skip


if __name__ == "__main__":
    for fig in ingest_figures():
        emit({"bench": "rewards_ingest", **fig})
