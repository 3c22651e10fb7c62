"""Control-plane API reads under load: requests per second and p99 latency, SQLite and
PostgreSQL, each with uvicorn at 1 and 2 worker processes.

`veil cloud serve` runs as its own process tree (the real CLI); the load comes from a
second process: asyncio clients on keep-alive HTTP/1.1 connections, each sending
authenticated `GET /v1/apps/{id}` (an API-key check and an app read with its current
deployment, the most common customer call) back to back. The database is seeded directly
(one account, its API key, 50 apps with deployments). PostgreSQL is a throwaway server
(initdb + pg_ctl, `tests/pg.py`) unless `VEIL_TEST_PG_URL` names one.

Target (issue 12): at least 1,000 requests/s with p99 under 50 ms on 2 cores. Latency and
throughput depend on what else the machine runs, so each line also records the CPU the
server and the load generator spent per request (from /proc, robust to other load) and the
1-minute load average.

Run: .venv/bin/python bench/cloud.py [--seconds 5] [--connections 32] [--backends sqlite,postgresql]
Prints one JSON line per (backend, workers).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import platform
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from contextlib import ExitStack
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

APPS = 50


def machine() -> dict[str, Any]:
    return {
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def seed(db_url: str) -> tuple[str, list[str]]:
    """One account, its API key, APPS apps each with a running deployment."""
    from veil.services.cloud.auth import issue_key
    from veil.services.cloud.database import open_engine, session_factory, upgrade
    from veil.services.cloud.models import App, Deployment, Worker

    engine = open_engine(db_url)
    upgrade(engine)
    sessions = session_factory(engine)
    from eth_utils import to_checksum_address

    owner = to_checksum_address("0x" + "ab" * 20)
    now = int(time.time())
    ids = []
    with sessions() as session, session.begin():
        _, secret = issue_key(session, owner, ["apps:read"], "bench", now)
        session.add(
            Worker(
                address="0x" + "cd" * 20,
                provider="0x" + "ef" * 20,
                runtime="process",
                simulated=True,
                vcpu=512,
                memory_mb=1 << 20,
                disk_gb=1 << 14,
                gpu_model=0,
                gpu_count=0,
                url=None,
                last_seen=now,
                online=True,
            )
        )
        for i in range(APPS):
            app_id = to_checksum_address("0x" + f"{i + 0xABCDEF:040x}")
            ids.append(app_id)
            session.add(
                App(
                    app_id=app_id,
                    owner=owner,
                    name=f"app{i}",
                    instance_type="tdx.small",
                    compose="services: {}",
                    app_compose={"name": f"app{i}"},
                    compose_hash="00" * 32,
                    allowed_envs=["A"],
                    env_keys=["A"],
                    encrypted_env="00" * 80,
                    desired="running",
                    status="running",
                    status_reason="",
                    version=1,
                    created_at=now,
                    updated_at=now,
                )
            )
            session.add(
                Deployment(
                    id=f"dep_{i}",
                    app_id=app_id,
                    worker="0x" + "cd" * 20,
                    instance_type="tdx.small",
                    state="running",
                    boot_progress=100,
                    error="",
                    ports={"8080": f"127.0.0.1:{20000 + i}"},
                    attestation={"simulated": True},
                    created_at=now,
                    updated_at=now,
                )
            )
    engine.dispose()
    return secret, ids


async def _client(
    host: str,
    port: int,
    key: str,
    ids: list[str],
    stop_at: float,
    record_after: float,
    latencies: list[float],
    errors: list[int],
) -> None:
    reader, writer = await asyncio.open_connection(host, port)
    i = 0
    try:
        while True:
            start = time.perf_counter()
            if start >= stop_at:
                return
            path = f"/v1/apps/{ids[i % len(ids)]}"
            i += 1
            writer.write(
                f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\n"
                f"Authorization: Bearer {key}\r\n\r\n".encode()
            )
            head = await reader.readuntil(b"\r\n\r\n")
            status = int(head.split(b" ", 2)[1])
            length = 0
            for line in head.split(b"\r\n"):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":", 1)[1])
            await reader.readexactly(length)
            if start >= record_after:
                latencies.append(time.perf_counter() - start)
                if status != 200:
                    errors.append(status)
    finally:
        writer.close()


def load(port: int, key: str, ids: list[str], seconds: float, connections: int, out: Any) -> None:
    """The load process: `connections` keep-alive clients; sends back its latencies."""
    latencies: list[float] = []
    errors: list[int] = []

    async def main() -> float:
        began = time.perf_counter()
        record_after = began + 1.0  # one second of warm-up is not counted
        stop_at = record_after + seconds
        await asyncio.gather(
            *(
                _client("127.0.0.1", port, key, ids, stop_at, record_after, latencies, errors)
                for _ in range(connections)
            )
        )
        return seconds

    elapsed = asyncio.run(main())
    out.send((latencies, errors, elapsed))


def tree_cpu(root: int) -> float:
    """CPU seconds (user + system) used so far by `root` and all its descendants."""
    parents: dict[int, int] = {}
    times: dict[int, float] = {}
    tick = os.sysconf("SC_CLK_TCK")
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parents[int(entry)] = int(fields[1])
        times[int(entry)] = (int(fields[11]) + int(fields[12])) / tick
    tree, frontier = {root}, [root]
    while frontier:
        current = frontier.pop()
        for pid, parent in parents.items():
            if parent == current and pid not in tree:
                tree.add(pid)
                frontier.append(pid)
    return sum(times.get(pid, 0.0) for pid in tree)


def postmaster(db_url: str) -> int | None:
    """The PostgreSQL server's main pid (a backend's parent), to count the database's own
    CPU per request: None for SQLite or a server on another machine."""
    if not db_url.startswith("postgresql"):
        return None
    import psycopg

    with psycopg.connect(db_url.replace("postgresql+psycopg://", "postgresql://", 1)) as conn:
        row = conn.execute("SELECT pg_backend_pid()").fetchone()
    try:
        status = Path(f"/proc/{row[0]}/status").read_text() if row else ""
    except OSError:
        return None
    ppid = [line.split()[1] for line in status.splitlines() if line.startswith("PPid:")]
    return int(ppid[0]) if ppid else None


def serve(db_url: str, port: int, workers: int, home: Path) -> subprocess.Popen[bytes]:
    veil = str(Path(sys.executable).parent / "veil")
    process = subprocess.Popen(
        [veil, "cloud", "serve", "--db", db_url, "--port", str(port), "--workers", str(workers)],
        env={**os.environ, "VEIL_HOME": str(home)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    deadline = time.time() + 60
    while time.time() < deadline:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1).read()
            return process
        except OSError:
            if process.poll() is not None:
                detail = process.stderr.read().decode() if process.stderr else ""
                raise RuntimeError(detail) from None
            time.sleep(0.2)
    raise RuntimeError("control plane did not start")


def measure(
    backend: str, db_url: str, workers: int, seconds: float, connections: int, home: Path
) -> dict[str, Any]:
    key, ids = seed(db_url)
    port = free_port()
    server = serve(db_url, port, workers, home)
    database = postmaster(db_url)
    try:
        parent, child = multiprocessing.get_context("spawn").Pipe()
        loader = multiprocessing.get_context("spawn").Process(
            target=load, args=(port, key, ids, seconds, connections, child)
        )
        loader.start()
        time.sleep(1.0)  # the loader's warm-up
        server_before, loader_before = tree_cpu(server.pid), tree_cpu(loader.pid or 0)
        database_before = tree_cpu(database) if database else 0.0
        latencies, errors, elapsed = parent.recv()
        server_cpu = tree_cpu(server.pid) - server_before
        database_cpu = tree_cpu(database) - database_before if database else None
        loader_cpu = tree_cpu(loader.pid or 0) - loader_before
        loader.join()
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)
    latencies.sort()

    def pct(p: float) -> float:
        return round(1000 * latencies[min(len(latencies) - 1, int(p * len(latencies)))], 2)

    rps = len(latencies) / elapsed
    server_ms = 1000 * server_cpu / max(1, len(latencies))
    loader_ms = 1000 * loader_cpu / max(1, len(latencies))
    return {
        "bench": "cloud_api_reads",
        "backend": backend,
        "uvicorn_workers": workers,
        "connections": connections,
        "seconds": elapsed,
        "requests": len(latencies),
        "errors": len(errors),
        "rps": round(rps, 1),
        "p50_ms": pct(0.50),
        "p99_ms": pct(0.99),
        "max_ms": pct(1.0),
        "server_cpu_ms_per_request": round(server_ms, 3),
        "loader_cpu_ms_per_request": round(loader_ms, 3),
        # the database server's own CPU (PostgreSQL on this machine; None for SQLite, whose
        # work is inside the server's)
        "database_cpu_ms_per_request": (
            round(1000 * database_cpu / max(1, len(latencies)), 3)
            if database_cpu is not None
            else None
        ),
        "load_average_1m": os.getloadavg()[0],
        "target_met": rps >= 1000 and pct(0.99) < 50 and not errors,
        "machine": machine(),
    }


def scheduler_pass(db_url: str, workers: int, apps: int) -> dict[str, Any]:
    """A scheduler pass placing one app on a network of `workers` with `apps` running: the
    pass rebuilds the capacity index from the database, so it is linear in both."""
    from sqlalchemy import insert

    from veil.services.cloud.database import open_engine, session_factory, upgrade
    from veil.services.cloud.models import App, Deployment, Worker
    from veil.services.cloud.scheduler import Scheduler

    engine = open_engine(db_url)
    upgrade(engine)
    sessions = session_factory(engine)
    now = int(time.time())
    rows = [
        {
            "address": f"0x{i + 1:040x}",
            "provider": f"0x{i // 10 + 1:040x}",
            "runtime": "process",
            "simulated": True,
            "vcpu": 16,
            "memory_mb": 65536,
            "disk_gb": 1000,
            "gpu_model": 0,
            "gpu_count": 0,
            "url": None,
            "last_seen": now + 10**6,
            "online": True,
        }
        for i in range(workers)
    ]
    app = {
        "instance_type": "tdx.small",
        "compose": "",
        "app_compose": {},
        "compose_hash": "00",
        "allowed_envs": [],
        "env_keys": [],
        "encrypted_env": "",
        "desired": "running",
        "status": "running",
        "status_reason": "",
        "version": 1,
        "created_at": now,
        "updated_at": now,
    }
    with sessions() as session, session.begin():
        session.execute(insert(Worker), rows)
        session.execute(
            insert(App),
            [
                {
                    **app,
                    "app_id": f"0x{10**9 + j:040x}",
                    "owner": f"0x{j % 5000 + 7:040x}",
                    "name": f"a{j}",
                }
                for j in range(apps)
            ],
        )
        session.execute(
            insert(Deployment),
            [
                {
                    "id": f"d{j}",
                    "app_id": f"0x{10**9 + j:040x}",
                    "worker": rows[j % workers]["address"],
                    "instance_type": "tdx.small",
                    "state": "running",
                    "boot_progress": 100,
                    "error": "",
                    "ports": {},
                    "attestation": None,
                    "created_at": now,
                    "updated_at": now,
                }
                for j in range(apps)
            ],
        )
    scheduler = Scheduler(sessions, 30, lambda: now)
    timings = []
    for k in range(3):
        with sessions() as session, session.begin():
            session.add(
                App(
                    **{
                        **app,
                        "status": "pending",
                        "app_id": f"0x{2 * 10**9 + k:040x}",
                        "owner": "0x" + "11" * 20,
                        "name": f"p{k}",
                        "instance_type": "tdx.medium",
                    }
                )
            )
        started = time.perf_counter()
        assert scheduler.tick() == 1
        timings.append(time.perf_counter() - started)
    engine.dispose()
    return {
        "bench": "cloud_scheduler_pass",
        "backend": db_url.split(":", 1)[0],
        "workers": workers,
        "running_apps": apps,
        "pass_ms_median": round(1000 * sorted(timings)[1], 1),
        "load_average_1m": os.getloadavg()[0],
        "machine": machine(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=5)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--workers", default="1,2", help="uvicorn worker counts to try")
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument(
        "--scale", default="29000,100000", help="workers,apps for the scheduler pass ('' skips it)"
    )
    args = parser.parse_args()
    import pg

    with ExitStack() as stack, tempfile.TemporaryDirectory(prefix="veil-cloud-bench-") as tmp:
        pg_base = None
        for backend in args.backends.split(","):
            for workers in [int(w) for w in args.workers.split(",")]:
                name = f"bench_{backend}_{workers}"
                if backend == "sqlite":
                    url = f"sqlite:///{tmp}/{name}.sqlite"
                else:
                    if pg_base is None:
                        pg_base = stack.enter_context(pg.server())
                    url = pg.fresh_database(pg_base, name)
                result = measure(backend, url, workers, args.seconds, args.connections, Path(tmp))
                print(json.dumps(result), flush=True)
        if args.scale:
            workers, apps = (int(n) for n in args.scale.split(","))
            result = scheduler_pass(f"sqlite:///{tmp}/scale.sqlite", workers, apps)
            print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
