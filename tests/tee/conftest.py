"""Shared test data for attestation: the real TEE fixtures and a local PCS/PCCS server."""

from __future__ import annotations

import json
import threading
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
FIXTURES = REPO_ROOT.parent / "shared" / "fixtures" / "tee"


@pytest.fixture(scope="session")
def tee() -> Path:
    if not FIXTURES.is_dir():
        pytest.skip(f"TEE fixtures folder {FIXTURES} is absent")
    return FIXTURES


@dataclass
class FakePccs:
    """A PCS v4-compatible server on 127.0.0.1 serving one fixture collateral file."""

    url: str
    requests: list[str] = field(default_factory=list)
    collateral: dict[str, str] = field(default_factory=dict)

    def serve(self, collateral_file: Path) -> None:
        self.collateral = json.loads(collateral_file.read_text())


def _handler(state: FakePccs) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:  # keep test output quiet
            return

        def _send(self, body: bytes, headers: dict[str, str]) -> None:
            self.send_response(200)
            for key, value in headers.items():
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:
            state.requests.append(self.path)
            c = state.collateral
            path = urllib.parse.urlparse(self.path).path
            quote = urllib.parse.quote
            if not c:
                self.send_error(404)
            elif path == "/sgx/certification/v4/pckcrl":
                chain = quote(c["pck_crl_issuer_chain"])
                self._send(bytes.fromhex(c["pck_crl"]), {"SGX-PCK-CRL-Issuer-Chain": chain})
            elif path.endswith("/certification/v4/tcb"):
                body = '{"tcbInfo":' + c["tcb_info"] + ',"signature":"'
                body += c["tcb_info_signature"] + '"}'
                chain = quote(c["tcb_info_issuer_chain"])
                self._send(body.encode(), {"TCB-Info-Issuer-Chain": chain})
            elif path.endswith("/certification/v4/qe/identity"):
                body = '{"enclaveIdentity":' + c["qe_identity"] + ',"signature":"'
                body += c["qe_identity_signature"] + '"}'
                chain = quote(c["qe_identity_issuer_chain"])
                self._send(body.encode(), {"SGX-Enclave-Identity-Issuer-Chain": chain})
            elif path == "/sgx/certification/v4/rootcacrl":
                self._send(c["root_ca_crl"].encode(), {})  # PCCS style: hex text
            else:
                self.send_error(404)

    return Handler


@pytest.fixture
def pccs() -> Iterator[FakePccs]:
    state = FakePccs(url="")
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
