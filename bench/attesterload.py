"""Attester throughput: bindings verified and signed per second, over real HTTP.

The attester runs as its own process (as `veil attester serve` does); a second process
posts valid bindings (real sr25519/ed25519/ECDSA signatures made beforehand, so signing
holders costs nothing during the run) from several keep-alive connections. Both share
the machine's cores, as they would on a small host. Imported by bench/migration.py.
"""

from __future__ import annotations

import http.client
import json
import multiprocessing
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
from veil.services.attester.service import AttesterConfig, build_server
from veil.substrate.signature import wrap_bytes

CONTEXT = BindingContext(b"\x42" * 32, 73217, "0x" + "ab" * 20)
SCHEMES = ("sr25519", "ed25519", "ecdsa")


def _bodies(count: int) -> tuple[list[tuple[int, bytes, int, int]], list[bytes]]:
    holders = [keypair(SCHEMES[i % 3], (i + 1).to_bytes(32, "big")) for i in range(count)]
    values = sorted(((0, h.account, 10**18, 0) for h in holders), key=lambda v: v[1])
    values = [(i, v[1], v[2], v[3]) for i, v in enumerate(values)]
    bodies = []
    receiver = "0x" + "cd" * 20
    for h in holders:
        signature = h.sign(wrap_bytes(binding_message(h.account, receiver, CONTEXT).encode()))
        body: dict[str, Any] = {
            "account": "0x" + h.account.hex(),
            "receiver": receiver,
            "scheme": h.scheme,
            "signature": "0x" + signature.hex(),
        }
        if h.scheme == "ecdsa":
            body["pubkey"] = "0x" + h.public_key.hex()
        bodies.append(json.dumps(body).encode())
    return values, bodies


def _serve(values: list[Any], db: str, ready: Any, port_out: Any) -> None:
    config = AttesterConfig(signer=devnet_account("attester"), db=Path(db), port=0,
                            tree=build_tree(values), context=CONTEXT)  # fmt: skip
    server = build_server(config)
    port_out.value = server.server_address[1]
    ready.set()
    server.serve_forever()


def _load(port: int, bodies: list[bytes], connections: int) -> tuple[float, list[float], int]:
    latencies: list[float] = []
    failures = [0]
    lock = threading.Lock()

    def worker(chunk: list[bytes]) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        mine = []
        for body in chunk:
            start = time.perf_counter()
            conn.request("POST", BINDINGS_PATH, body, {"Content-Type": "application/json"})
            response = conn.getresponse()
            response.read()
            mine.append(time.perf_counter() - start)
            if response.status != 200:
                with lock:
                    failures[0] += 1
        with lock:
            latencies.extend(mine)

    chunks = [bodies[i::connections] for i in range(connections)]
    threads = [threading.Thread(target=worker, args=(c,)) for c in chunks]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return time.perf_counter() - start, latencies, failures[0]


def attester_figures(count: int = 3000, connections: int = 8) -> list[dict[str, Any]]:
    values, bodies = _bodies(count)
    ctx = multiprocessing.get_context("spawn")
    ready, port = ctx.Event(), ctx.Value("i", 0)
    with tempfile.TemporaryDirectory() as tmp:
        server = ctx.Process(target=_serve, args=(values, f"{tmp}/a.sqlite", ready, port))
        server.start()
        try:
            if not ready.wait(60):
                raise SystemExit("attester did not start")
            seconds, latencies, failures = _load(port.value, bodies, connections)
        finally:
            server.terminate()
            server.join()
    latencies.sort()
    rate = count / seconds
    return [{
        "figure": "attester_bindings_per_second", "value": round(rate, 1), "unit": "1/s",
        "bindings": count, "connections": connections, "failures": failures,
        "p50_ms": round(latencies[len(latencies) // 2] * 1000, 2),
        "p99_ms": round(latencies[int(len(latencies) * 0.99)] * 1000, 2),
        "target": 500, "within_target": rate >= 500 and failures == 0,
        "note": "sr25519/ed25519/ECDSA mix; on-chain claimed check not included",
    }]  # fmt: skip


if __name__ == "__main__":
    for fig in attester_figures():
        emit({"bench": "migration", **fig})
