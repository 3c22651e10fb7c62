"""The AI gateway's cost: latency it adds over the backend, concurrent streams, embeddings.

Three figures, each one JSON line with the machine it ran on:

1. `gateway_overhead`: the same chat completion sent alternately to the backend directly
   and through `veil ai serve` (which hashes the answer and queues its receipt: signed three
   ways and committed in batches after the answer is sent, before its signature is
   served); overhead = gateway latency - direct latency at p50 and p99. Targets: p50 under
   3 ms, p99 under 10 ms. The backend is tests/services/ai/fake_backend.py, so the
   figure is the gateway's own cost, not a model's. The gateway's CPU time per request is
   reported too: on a machine shared with other jobs, p99 mostly measures the scheduler.
2. `concurrent_streams`: 200 streamed chat completions open at once through the gateway
   (the backend paces 30 tokens 20 ms apart), every one checked by AsyncVerifyingTransport:
   running hash per chunk, signature and EIP-712 receipt at the end. Target: no errors.
3. `embeddings`: all-MiniLM-L6-v2 sentences per second, in process (numpy) and over HTTP.
   sentence-transformers' own figure comes from `--reference-python PYTHON` (a venv with
   sentence-transformers and torch, which are too heavy for the project's), on the same
   texts and weights in the same run, with the smallest cosine between the two sides'
   vectors (they must agree to >= 0.9999); without the option it says it was not run.

Run: .venv/bin/python bench/inference.py [--requests 400] [--streams 200]
     [--reference-python /work/st-venv/bin/python]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

# one BLAS thread per call: the gateway runs requests side by side in its thread pool, and
# OpenBLAS's own threads only fight them (and each other) on a small machine
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import httpx
import numpy as np

from veil.inference.embedding import MODEL_NAME, EmbeddingModel, model_archive
from veil.inference.transport import AsyncVerifyingTransport
from veil.tee.policy import OsImage, Policy
from veil.tee.simulator import AppSpec

REPO_ROOT = Path(__file__).resolve().parents[1]
FAKE_BACKEND = REPO_ROOT / "tests" / "services" / "ai" / "fake_backend.py"
REFERENCE = Path(__file__).resolve().parent / "inference_reference.py"
VEIL = Path(sys.executable).parent / "veil"
SENTENCES = [
    "Confidential inference keeps prompts away from the host.",
    "The quote binds the signing key to the measured virtual machine.",
    "A man is eating a piece of bread.",
    "Streaming answers carry a running hash on every chunk.",
    "Receipts tie each answer to the attestation that was live.",
    "The girl is carrying a baby.",
    "Workers earn rewards for uptime proven by signed heartbeats.",
    "Embeddings turn sentences into vectors of 384 numbers.",
]


def machine() -> dict[str, Any]:
    return {
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "load_average": [round(x, 2) for x in os.getloadavg()],
    }


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def start_backend(tmp: Path, *extra: str) -> tuple[subprocess.Popen[bytes], str]:
    port_file = tmp / f"backend-{time.monotonic_ns()}.port"
    process = subprocess.Popen([sys.executable, str(FAKE_BACKEND), str(port_file), *extra])
    while not port_file.exists():
        if process.poll() is not None:
            raise SystemExit("fake backend did not start")
        time.sleep(0.05)
    return process, f"http://127.0.0.1:{port_file.read_text()}"


def start_gateway(tmp: Path, backend: str, embeddings: bool) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    args = [str(VEIL), "ai", "serve", "--backend", backend, "--port", str(port),
            "--state-dir", str(tmp / f"gw-{port}"), "--tee", "sim"]  # fmt: skip
    if not embeddings:
        args.append("--no-embeddings")
    process = subprocess.Popen(args, stdout=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while True:
        try:
            httpx.get(url + "/v1/models", timeout=5)
            return process, url
        except httpx.TransportError:
            if process.poll() is not None or time.monotonic() > deadline:
                raise SystemExit("gateway did not start") from None
            time.sleep(0.2)


def cpu_seconds(pid: int) -> float:
    """User + system CPU a process has used (Linux /proc), immune to other jobs' load."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def overhead(backend: str, gateway: str, requests: int, gateway_pid: int) -> dict[str, Any]:
    body = {"model": "fake-llm", "messages": [{"role": "user", "content": "measure this path"}]}
    direct: list[float] = []
    through: list[float] = []
    with httpx.Client(timeout=30) as client:
        for _ in range(20):  # warm up connections, JIT-free but caches and pools
            client.post(backend + "/v1/chat/completions", json=body)
            client.post(gateway + "/v1/chat/completions", json=body)
        cpu_before = cpu_seconds(gateway_pid)
        for _ in range(requests):
            for url, sink in ((backend, direct), (gateway, through)):
                t0 = time.perf_counter()
                answer = client.post(url + "/v1/chat/completions", json=body)
                sink.append((time.perf_counter() - t0) * 1000)
                if answer.status_code != 200:
                    raise SystemExit(f"chat through {url}: HTTP {answer.status_code}")
        cpu_ms = (cpu_seconds(gateway_pid) - cpu_before) * 1000 / requests
    p50 = percentile(through, 0.5) - percentile(direct, 0.5)
    p99 = percentile(through, 0.99) - percentile(direct, 0.99)
    return {
        "figure": "gateway_overhead",
        "requests": requests,
        "direct_ms": {"p50": round(percentile(direct, 0.5), 3),
                      "p99": round(percentile(direct, 0.99), 3)},
        "gateway_ms": {"p50": round(percentile(through, 0.5), 3),
                       "p99": round(percentile(through, 0.99), 3)},
        "overhead_ms": {"p50": round(p50, 3), "p99": round(p99, 3)},
        # the gateway's own CPU per answer (sign x3, store, proxy): the overhead on an idle
        # machine; p99 above also carries the scheduling delays of a loaded one
        "gateway_cpu_ms_per_request": round(cpu_ms, 3),
        "target_ms": {"p50": 3, "p99": 10},
        "meets_target": p50 < 3 and p99 < 10,
    }  # fmt: skip


async def streams(gateway: str, count: int) -> dict[str, Any]:
    app = AppSpec()
    policy = Policy(
        allow_simulated=True,
        allowed_compose_hashes=(app.compose_hash.hex(),),
        os_images=(OsImage(name="sim", os_image_hash=app.os_image_hash.hex()),),
    )
    transport = AsyncVerifyingTransport(
        gateway,
        policy,
        inner=httpx.AsyncHTTPTransport(limits=httpx.Limits(max_connections=count + 10)),
    )
    words = " ".join(f"w{i}" for i in range(29))
    errors: list[str] = []
    async with httpx.AsyncClient(transport=transport, timeout=120) as client:
        await transport.attest()

        async def one(index: int) -> float:
            body = {"model": "fake-llm", "stream": True,
                    "messages": [{"role": "user", "content": f"{index} {words}"}]}  # fmt: skip
            t0 = time.perf_counter()
            try:
                async with client.stream("POST", "/v1/chat/completions", json=body) as answer:
                    async for _ in answer.aiter_bytes():
                        pass
                    if answer.status_code != 200:
                        errors.append(f"HTTP {answer.status_code}")
            except Exception as error:  # every failure is counted, whatever it is
                errors.append(f"{type(error).__name__}: {error}")
            return time.perf_counter() - t0

        client.base_url = httpx.URL(gateway)
        started = time.perf_counter()
        durations = await asyncio.gather(*(one(i) for i in range(count)))
        wall = time.perf_counter() - started
    return {
        "figure": "concurrent_streams",
        "streams": count,
        "tokens_per_stream": 31,
        "errors": len(errors),
        "first_errors": errors[:3],
        "verified": len(transport.checked),
        "wall_s": round(wall, 3),
        "stream_s": {"p50": round(statistics.median(durations), 3),
                     "max": round(max(durations), 3)},
        "meets_target": not errors and len(transport.checked) == count,
    }  # fmt: skip


def sentence_transformers_reference(
    python: str | None, texts: list[str], model: EmbeddingModel, batch: int
) -> dict[str, Any]:
    """sentence-transformers' rate on the same texts and weights, and how close its vectors are.

    Why a subprocess: torch is far too heavy for the project's venv, so the reference runs in
    an interpreter of its own (bench/inference_reference.py), reading the same model.zip.
    Agreement is the smallest cosine between the two sides' vector for each text.
    """
    if python is None:
        return {
            "measured": False,
            "why": "not run: pass --reference-python PYTHON, an "
            "interpreter with sentence-transformers and torch (too heavy for this venv)",
        }
    request = json.dumps({"archive": str(model_archive()), "texts": texts, "batch": batch})
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    try:
        done = subprocess.run(
            [python, str(REFERENCE)], input=request.encode(), capture_output=True,
            timeout=1800, check=False, env=env,
        )  # fmt: skip
    except (OSError, subprocess.TimeoutExpired) as error:
        return {"measured": False, "why": f"{python}: {error}"}
    if done.returncode != 0:
        last = done.stderr.decode(errors="replace").strip().splitlines()[-1:] or [""]
        return {"measured": False, "why": f"{python} exited {done.returncode}: {last[0]}"}
    answer = json.loads(done.stdout)
    theirs = np.frombuffer(base64.b64decode(answer["vectors_f32_b64"]), dtype="<f4")
    theirs = theirs.reshape(len(texts), answer["dimensions"]).astype(np.float64)
    ours, _ = model.embed(texts, batch_size=batch)
    ours = np.asarray(ours, dtype=np.float64)
    cosine = (ours * theirs).sum(axis=1) / (
        np.linalg.norm(ours, axis=1) * np.linalg.norm(theirs, axis=1)
    )
    return {
        "measured": True,
        "sentences_per_s": answer["sentences_per_s"],
        "torch_threads_default": answer["torch_threads_default"],
        "versions": answer["versions"],
        "min_cosine_vs_builtin": round(float(cosine.min()), 7),
        "same_vectors": bool(cosine.min() >= 0.9999),
    }


def embeddings(gateway: str, sentences: int, reference_python: str | None) -> dict[str, Any]:
    model = EmbeddingModel()
    texts = [SENTENCES[i % len(SENTENCES)] + f" ({i})" for i in range(sentences)]
    model.embed(texts[:32])
    t0 = time.perf_counter()
    model.embed(texts, batch_size=32)
    in_process = sentences / (time.perf_counter() - t0)
    with httpx.Client(timeout=120) as client:
        t0 = time.perf_counter()
        for start in range(0, sentences, 32):
            answer = client.post(
                gateway + "/v1/embeddings",
                json={"model": MODEL_NAME, "input": texts[start : start + 32]},
            )
            answer.raise_for_status()
        over_http = sentences / (time.perf_counter() - t0)  # fmt: skip
    reference = sentence_transformers_reference(reference_python, texts, model, 32)
    return {
        "figure": "embeddings",
        "model": MODEL_NAME,
        "sentences": sentences,
        "batch": 32,
        "in_process_sentences_per_s": round(in_process, 1),
        "http_sentences_per_s": round(over_http, 1),
        "sentence_transformers": reference,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=400)
    parser.add_argument("--streams", type=int, default=200)
    parser.add_argument("--sentences", type=int, default=256)
    parser.add_argument(
        "--reference-python",
        help="an interpreter with sentence-transformers (and torch) installed: runs "
        "bench/inference_reference.py for the reference embeddings figure",
    )
    args = parser.parse_args()
    host = machine()
    processes: list[subprocess.Popen[bytes]] = []
    try:
        with tempfile.TemporaryDirectory() as tmp_name:
            tmp = Path(tmp_name)
            backend, backend_url = start_backend(tmp)
            processes.append(backend)
            gateway, gateway_url = start_gateway(tmp, backend_url, embeddings=True)
            processes.append(gateway)
            paced, paced_url = start_backend(tmp, "--token-delay", "0.02")
            processes.append(paced)
            paced_gateway, paced_gateway_url = start_gateway(tmp, paced_url, embeddings=False)
            processes.append(paced_gateway)
            figures = [
                overhead(backend_url, gateway_url, args.requests, gateway.pid),
                asyncio.run(streams(paced_gateway_url, args.streams)),
                embeddings(gateway_url, args.sentences, args.reference_python),
            ]
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            process.wait(20)
    for figure in figures:
        print(json.dumps({**figure, "machine": host}), flush=True)


if __name__ == "__main__":
    main()
