"""Attester soak: hours of abuse compressed into minutes, on loopback only.

The attester runs as its own process with a per-client rate limit; a second process is
the internet: well-behaved clients posting valid bindings at a steady total rate (a mix
of new bindings and re-posts of ones already answered), 50 slow clients that dribble
their headers one byte a second, and a flood from one address. Well-behaved clients
spread over loopback addresses (all of 127/8 is loopback on Linux) so the rate limit
sees them as the distinct clients they stand for, each under its share.

Measured: the well-behaved clients' errors and latency (p50/p99/max, from the scheduled
send time, so a stalled server shows as latency), the attester's resident memory over
time, the database's growth against the number of distinct bindings, and what the slow
clients and the flood got. Not part of `make test`; bounded: at most 15 minutes and
2,000 requests/s, and every process it starts is stopped at the end.

    .venv/bin/python bench/attestersoak.py --seconds 600 --rate 500
"""

from __future__ import annotations

import argparse
import http.client
import json
import multiprocessing
import os
import random
import socket
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from chainbench import emit
from veil.attestation.api import BINDINGS as BINDINGS_PATH
from veil.devnet.accounts import devnet_account
from veil.merkle import build_tree
from veil.migration.binding import BindingContext, binding_message
from veil.migration.synthetic import keypair
from veil.services.attester.server import Limits
from veil.services.attester.service import AttesterConfig, build_server
from veil.substrate.signature import wrap_bytes

CONTEXT = BindingContext(b"\x42" * 32, 73217, "0x" + "ab" * 20)
SCHEMES = ("sr25519", "ed25519", "ecdsa")
GOOD_ADDRESSES = [f"127.0.0.{n}" for n in range(2, 12)]  # 10 well-behaved clients
FLOOD_ADDRESS = "127.0.0.200"
SLOW_CLIENTS = 50
MAX_SECONDS = 900
MAX_RATE = 2_000


def _bodies(count: int) -> tuple[list[str], list[bytes]]:
    """Signed binding bodies for `count` holders, and their accounts (the tree's leaves)."""
    accounts, bodies = [], []
    receiver = "0x" + "cd" * 20
    for i in range(count):
        holder = keypair(SCHEMES[i % 3], (i + 1).to_bytes(32, "big"))  # type: ignore[arg-type]
        message = wrap_bytes(binding_message(holder.account, receiver, CONTEXT).encode())
        body: dict[str, Any] = {
            "account": "0x" + holder.account.hex(),
            "receiver": receiver,
            "scheme": holder.scheme,
            "signature": "0x" + holder.sign(message).hex(),
        }
        if holder.scheme == "ecdsa":
            body["pubkey"] = "0x" + holder.public_key.hex()
        accounts.append(body["account"])
        bodies.append(json.dumps(body).encode())
    return accounts, bodies


def _serve(accounts_file: str, db: str, rate: float, ready: Any, port_out: Any) -> None:
    accounts = json.loads(Path(accounts_file).read_text())
    values = sorted((0, bytes.fromhex(a[2:]), 10**18, 0) for a in accounts)
    tree = build_tree([(i, v[1], v[2], v[3]) for i, v in enumerate(values)])
    limits = Limits(rate=rate, burst=int(2 * rate))
    config = AttesterConfig(signer=devnet_account("attester"), db=Path(db), port=0, tree=tree,
                            context=CONTEXT, limits=limits)  # fmt: skip
    server = build_server(config)
    port_out.value = server.server_address[1]
    ready.set()
    server.serve_forever()


def _good_client(
    port: int, source: str, bodies: list[bytes], plan: list[tuple[float, int]], out: list
) -> None:
    """Send each planned (time, body index) at its time; record (latency, status)."""
    conn: http.client.HTTPConnection | None = None
    for due, index in plan:
        pause = due - time.monotonic()
        if pause > 0:
            time.sleep(pause)
        status = 0
        for _ in range(2):  # one reconnect if the server closed a keep-alive connection
            try:
                if conn is None:
                    conn = http.client.HTTPConnection(
                        "127.0.0.1", port, timeout=30, source_address=(source, 0)
                    )
                conn.request("POST", BINDINGS_PATH, bodies[index],
                             {"Content-Type": "application/json"})  # fmt: skip
                response = conn.getresponse()
                response.read()
                status = response.status
                break
            except (OSError, http.client.HTTPException):
                if conn is not None:
                    conn.close()
                conn = None
        out.append((time.monotonic() - due, status))
    if conn is not None:
        conn.close()


def _slow_client(port: int, until: float, out: dict[str, int], lock: threading.Lock) -> None:
    """Dribble a request line one byte a second; whatever the server answers, start over."""
    request = b"POST " + BINDINGS_PATH.encode() + b" HTTP/1.1\r\nHost: attester\r\n"
    while time.monotonic() < until:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
                answer = b""
                for byte in request:
                    if time.monotonic() >= until:
                        break
                    sock.sendall(bytes([byte]))
                    sock.settimeout(1.0)
                    try:
                        answer = sock.recv(4096)
                    except TimeoutError:
                        continue
                    break
                key = answer.split(b" ", 2)[1].decode() if answer.count(b" ") >= 2 else "closed"
        except OSError:
            key = "error"
        with lock:
            out[key] = out.get(key, 0) + 1


def _flood(port: int, body: bytes, until: float, out: dict[str, int], lock: threading.Lock) -> None:
    """One address, as fast as one connection goes."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30,
                                      source_address=(FLOOD_ADDRESS, 0))  # fmt: skip
    counts: dict[str, int] = {}
    while time.monotonic() < until:
        try:
            conn.request("POST", BINDINGS_PATH, body, {"Content-Type": "application/json"})
            response = conn.getresponse()
            response.read()
            key = str(response.status)
        except (OSError, http.client.HTTPException):
            conn.close()
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30,
                                              source_address=(FLOOD_ADDRESS, 0))  # fmt: skip
            key = "error"
        counts[key] = counts.get(key, 0) + 1
    with lock:
        for key, n in counts.items():
            out[key] = out.get(key, 0) + n


def _load(port: int, bodies: list[bytes], seconds: float, rate: float, new_share: float,
          result: Any) -> None:  # fmt: skip
    """The internet, in one process: plans the well-behaved traffic, then runs all three."""
    rng = random.Random(7)
    start = time.monotonic() + 1.0
    interval = 1.0 / rate
    sent_new, plans = 0, [[] for _ in GOOD_ADDRESSES]
    for n in range(int(seconds * rate)):
        if sent_new == 0 or (rng.random() < new_share and sent_new < len(bodies)):
            index, sent_new = sent_new, sent_new + 1
        else:
            index = rng.randrange(sent_new)
        plans[n % len(GOOD_ADDRESSES)].append((start + n * interval, index))
    until = start + seconds
    lock = threading.Lock()
    slow: dict[str, int] = {}
    flood: dict[str, int] = {}
    outs: list[list] = [[] for _ in GOOD_ADDRESSES]
    threads = [
        threading.Thread(target=_good_client, args=(port, a, bodies, p, o))
        for a, p, o in zip(GOOD_ADDRESSES, plans, outs, strict=True)
    ]
    threads += [threading.Thread(target=_slow_client, args=(port, until, slow, lock))
                for _ in range(SLOW_CLIENTS)]  # fmt: skip
    threads += [threading.Thread(target=_flood, args=(port, bodies[0], until, flood, lock))]
    for t in threads:
        t.daemon = True
        t.start()
    for t in threads:
        t.join(seconds + 120)
    samples = [s for out in outs for s in out]
    result.put({"samples": samples, "slow": slow, "flood": flood, "distinct": sent_new})


def _rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def _db_bytes(db: Path) -> int:
    """The main file only: the WAL beside it is recycled at each checkpoint (its size is
    reported apart, at the end)."""
    return db.stat().st_size if db.exists() else 0


def soak(seconds: float, rate: float, new_share: float, client_rate: float) -> dict[str, Any]:
    seconds, rate = min(seconds, MAX_SECONDS), min(rate, MAX_RATE)
    distinct = max(1, int(seconds * rate * new_share * 1.05) + 10)
    t0 = time.monotonic()
    accounts, bodies = _bodies(distinct)
    prepared = time.monotonic() - t0
    ctx = multiprocessing.get_context("spawn")
    with tempfile.TemporaryDirectory() as tmp:
        accounts_file, db = Path(tmp) / "accounts.json", Path(tmp) / "attester.sqlite"
        accounts_file.write_text(json.dumps(accounts))
        ready, port = ctx.Event(), ctx.Value("i", 0)
        serve_args = (str(accounts_file), str(db), client_rate, ready, port)
        server = ctx.Process(target=_serve, args=serve_args)
        server.start()
        results = ctx.Queue()
        loader = None
        try:
            if not ready.wait(120):
                raise SystemExit("attester did not start")
            load_args = (port.value, bodies, seconds, rate, new_share, results)
            loader = ctx.Process(target=_load, args=load_args)
            loader.start()
            memory: list[tuple[float, float, int]] = []
            began = time.monotonic()
            while loader.is_alive() and time.monotonic() - began < seconds + 180:
                memory.append((round(time.monotonic() - began, 1), _rss_mib(server.pid),
                               _db_bytes(db)))  # fmt: skip
                try:
                    outcome = results.get(timeout=5)
                    break
                except Exception:
                    continue
            else:
                outcome = results.get(timeout=60)
            memory.append((round(time.monotonic() - began, 1), _rss_mib(server.pid), _db_bytes(db)))
        finally:
            if loader is not None:
                loader.join(30)
                if loader.is_alive():
                    loader.terminate()
            server.terminate()
            server.join(30)
        import sqlite3

        wal = Path(str(db) + "-wal")
        wal_bytes = wal.stat().st_size if wal.exists() else 0
        with sqlite3.connect(db) as check:
            rows = check.execute("SELECT COUNT(*) FROM bindings").fetchone()[0]
    samples = outcome["samples"]
    latencies = sorted(s[0] for s in samples)
    errors = sum(1 for s in samples if s[1] != 200)
    statuses: dict[str, int] = {}
    for _, status in samples:
        statuses[str(status)] = statuses.get(str(status), 0) + 1
    steady = [m for m in memory if m[0] >= min(60.0, seconds / 4)]
    pct = lambda q: round(latencies[min(len(latencies) - 1, int(len(latencies) * q))] * 1000, 2)  # noqa: E731
    return {
        "bench": "attester_soak",
        "seconds": seconds,
        "target_rate": rate,
        "requests": len(samples),
        "achieved_rate": round(len(samples) / seconds, 1),
        "distinct_bindings": outcome["distinct"],
        "repeat_share": round(1 - outcome["distinct"] / max(1, len(samples)), 3),
        "errors": errors,
        "statuses": statuses,
        "p50_ms": pct(0.50),
        "p99_ms": pct(0.99),
        "max_ms": round(latencies[-1] * 1000, 2),
        "rss_mib_first": memory[0][1] if memory else None,
        "rss_mib_steady_min": min(m[1] for m in steady) if steady else None,
        "rss_mib_steady_max": max(m[1] for m in steady) if steady else None,
        "rss_mib_last": memory[-1][1],
        "db_bytes": memory[-1][2],
        "wal_bytes": wal_bytes,
        "binding_rows": rows,
        "db_bytes_per_distinct_binding": round(memory[-1][2] / max(1, rows)),
        "slow_clients": SLOW_CLIENTS,
        "slow_client_outcomes": outcome["slow"],
        "flood_outcomes": outcome["flood"],
        "per_client_rate_limit": client_rate,
        "presign_seconds": round(prepared, 1),
        "load_average_1m": os.getloadavg()[0],
        "memory_samples": memory[:: max(1, len(memory) // 20)],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=600)
    parser.add_argument("--rate", type=float, default=500, help="well-behaved requests/s, total")
    parser.add_argument("--new-share", type=float, default=0.2, help="share of new bindings")
    parser.add_argument("--client-rate", type=float, default=100, help="rate limit per address")
    args = parser.parse_args()
    if not 0 < args.seconds <= MAX_SECONDS or not 0 < args.rate <= MAX_RATE:
        raise SystemExit(f"error: --seconds in (0, {MAX_SECONDS}], --rate in (0, {MAX_RATE}]")
    if not 0 < args.new_share <= 1:
        raise SystemExit("error: --new-share in (0, 1]")
    emit(soak(args.seconds, args.rate, args.new_share, args.client_rate))


if __name__ == "__main__":
    main()
