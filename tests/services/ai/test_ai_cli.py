"""`veil ai verify` and `veil ai serve` as a user runs them: one line on bad input, no traceback."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import httpx
from ai_kit import SIM_APP, RunningGateway, serve_once, serving

from veil.devnet.demo import veil_executable


def veil(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(veil_executable()), *args], capture_output=True, text=True, timeout=120
    )


def _policy_file(tmp_path: Path, compose_hash: str) -> Path:
    path = tmp_path / "policy.toml"
    path.write_text(
        "allow_simulated = true\n"
        f'allowed_compose_hashes = ["{compose_hash}"]\n'
        "[[os_images]]\n"
        f'name = "sim"\nos_image_hash = "{SIM_APP.os_image_hash.hex()}"\n'
    )
    return path


def test_verify_accepts_the_gateway_and_probes_a_signed_answer(
    gateway: RunningGateway, tmp_path: Path
) -> None:
    policy = _policy_file(tmp_path, SIM_APP.compose_hash.hex())
    result = veil("ai", "verify", gateway.url, "--policy", str(policy), "--json")
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    assert doc["verified"] and doc["simulated"]
    assert doc["signing_address"] == gateway.gateway.keys.ecdsa_address
    assert doc["compose_hash"] == SIM_APP.compose_hash.hex()
    assert doc["probe_receipt"].startswith("emb-")


def test_verify_refuses_with_one_line(gateway: RunningGateway, tmp_path: Path) -> None:
    policy = _policy_file(tmp_path, "ab" * 32)
    result = veil("ai", "verify", gateway.url, "--policy", str(policy))
    assert result.returncode == 1 and len(result.stderr.strip().splitlines()) == 1
    assert "refused (quote_refused)" in result.stderr and "compose" in result.stderr
    production = veil("ai", "verify", gateway.url)
    assert production.returncode == 1 and "SIMULATED" in production.stderr


def test_verify_bad_url_is_one_line() -> None:
    result = veil("ai", "verify", "gw.example")
    assert result.returncode == 2 and "expected http(s)" in result.stderr
    assert "Traceback" not in result.stderr


def test_serve_refuses_bad_options_and_starts_for_real(tmp_path: Path) -> None:
    bad = veil("ai", "serve", "--compose-hash", "xyz", "--no-embeddings")
    assert bad.returncode == 2 and "--compose-hash: not hex" in bad.stderr + bad.stdout
    assert "Traceback" not in bad.stderr
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    argv = [str(veil_executable()), "ai", "serve", "--no-embeddings", "--port", str(port),
            "--state-dir", str(tmp_path)]  # fmt: skip
    with serving(argv, port) as printed:
        answer = httpx.get(f"http://127.0.0.1:{port}/v1/models")
        assert answer.json() == {"object": "list", "data": []}
        no_backend = httpx.post(f"http://127.0.0.1:{port}/v1/chat/completions", json={})
        assert no_backend.status_code == 503 and no_backend.json()["code"] == "no_backend"
    assert "SIMULATED" in printed[0] and "signing address (ecdsa): 0x" in printed[0]


def test_receipt_rebuilds_the_hashes_and_checks_both_signatures(
    gateway: RunningGateway, tmp_path: Path
) -> None:
    request = json.dumps(
        {"model": "fake-llm", "messages": [{"role": "user", "content": "keep the receipt"}]}
    ).encode()
    answer = httpx.post(
        gateway.url + "/v1/chat/completions",
        content=request,
        headers={"Content-Type": "application/json"},
    )
    (tmp_path / "req.json").write_bytes(request)
    (tmp_path / "resp.json").write_bytes(answer.content)
    receipt_id = answer.headers["x-receipt-id"]
    files = ["--request", str(tmp_path / "req.json"), "--response", str(tmp_path / "resp.json")]
    done = veil("ai", "receipt", gateway.url, receipt_id, *files, "--json")
    assert done.returncode == 0, done.stderr
    doc = json.loads(done.stdout)
    assert doc["verified"] and doc["receipt"]["completionTokens"] == 4
    assert doc["receipt"]["attestationDigest"] == "0x" + gateway.gateway.attestation_digest
    ed = veil("ai", "receipt", gateway.url, receipt_id, *files, "--signing-algo", "ed25519")
    assert ed.returncode == 0 and "VERIFIED" in ed.stdout
    (tmp_path / "resp.json").write_bytes(answer.content.replace(b"keep", b"kept"))
    tampered = veil("ai", "receipt", gateway.url, receipt_id, *files)
    assert tampered.returncode == 1 and "refused (response_tampered)" in tampered.stderr
    missing = veil("ai", "receipt", gateway.url, "chatcmpl-none", *files)
    assert missing.returncode == 2 and "HTTP 404" in missing.stderr
    assert "Traceback" not in tampered.stderr + missing.stderr


def test_serve_without_a_tee_says_so_in_one_line(tmp_path: Path) -> None:
    done = veil("ai", "serve", "--tee", "dstack", "--no-embeddings", "--state-dir", str(tmp_path))
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert "dstack" in done.stderr and len(done.stderr.strip().splitlines()) == 1


def test_serve_takes_its_port_from_PORT_as_a_cloud_runtime_sets_it(tmp_path: Path) -> None:
    import os
    import socket

    base = [str(veil_executable()), "ai", "serve", "--no-embeddings", "--state-dir", str(tmp_path)]
    for bad in ("http", "0", "70000"):
        done = subprocess.run(base, capture_output=True, text=True, timeout=120,
                              env={**os.environ, "PORT": bad})  # fmt: skip
        assert done.returncode == 2 and f"$PORT {bad!r}" in done.stderr, done.stderr
        assert "Traceback" not in done.stderr and len(done.stderr.strip().splitlines()) == 1
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    output = serve_once(base, port, {**os.environ, "PORT": str(port)})
    assert f"listening on http://127.0.0.1:{port}" in output
