"""`veil gateway serve` as a process: TLS through to an app, and bad input as one line."""

from __future__ import annotations

import datetime
import ipaddress
import os
import signal
import socket
import ssl
import subprocess
import time
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from gateway_kit import TOKEN, FakeRoutes, ServerThread, upstream_app

from veil.devnet.demo import veil_executable

VEIL = str(veil_executable())
APP = "0x" + "ef" * 20


def _self_signed(directory: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = directory / "cert.pem", directory / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_file, key_file


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_serve_with_tls_reaches_the_app(tmp_path: Path):
    upstream = ServerThread(upstream_app())
    routes = FakeRoutes({(APP, 3000): upstream.url})
    control_plane = ServerThread(routes.app())
    cert, key = _self_signed(tmp_path)
    port = _free_port()
    process = subprocess.Popen(
        [VEIL, "gateway", "serve", "--control-plane", control_plane.url, "--port", str(port),
         "--domain", "apps.test", "--tls-cert", str(cert), "--tls-key", str(key)],
        env={**os.environ, "VEIL_GATEWAY_TOKEN": TOKEN},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    trust = ssl.create_default_context(cafile=str(cert))
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                reply = httpx.get(
                    f"https://127.0.0.1:{port}/apps/{APP}/3000/tls", verify=trust, timeout=5
                )
                break
            except httpx.ConnectError:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise
                time.sleep(0.2)
        assert reply.status_code == 200
        assert reply.json()["path"] == "/tls"
        assert reply.json()["headers"]["x-forwarded-proto"] == "https"
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        control_plane.close()
        upstream.close()
    assert "gateway on https://127.0.0.1" in process.stdout.read()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--control-plane", "ftp://x", "--token", "t"], "expected an http(s) URL"),
        (["--control-plane", "http://x"], "--token: the control plane's gateway token"),
        (["--control-plane", "http://x", "--token", "t", "--tls-cert", "c.pem"],
         "--tls-cert and --tls-key go together"),
        (["--control-plane", "http://x", "--token", "t", "--tls-cert", "nope.pem",
          "--tls-key", "nope.key"], "--tls-cert nope.pem: no such file"),
    ],
)  # fmt: skip
def test_bad_input_is_one_line(args: list[str], message: str, tmp_path: Path):
    env = {k: v for k, v in os.environ.items() if k != "VEIL_GATEWAY_TOKEN"}
    done = subprocess.run(
        [VEIL, "gateway", "serve", *args], capture_output=True, text=True, timeout=60,
        cwd=tmp_path, env=env,
    )  # fmt: skip
    assert done.returncode == 2
    assert message in done.stderr
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr
