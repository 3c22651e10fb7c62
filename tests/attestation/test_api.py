"""veil.attestation.api and the client's reading of answers: the one definition of the
attester's HTTP API round-trips, and a malformed answer is one clear InputError or
AttesterUnavailable, never a KeyError deep in a caller."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any

import pytest

from veil.attestation import api
from veil.attestation.client import AttesterClient, AttesterRefused, AttesterUnavailable, Backoff
from veil.attestation.typed_data import Signature
from veil.errors import InputError

SIGNED = api.SignedBy(
    "0x70997970C51812dc3A010C7d01b50e0d17dc79C8", Signature(27, b"\x01" * 32, b"\x02" * 32)
)
BINDING = api.BindingAnswer(
    account="0x" + "11" * 32, ss58="4x", receiver="0x" + "22" * 20, leaf=["0", "0x11", "5", "6"],
    index=0, free=5, staked=6, scheme="sr25519", signature="0x" + "33" * 64,
    signature_hash="0x" + "44" * 32, digest="0x" + "55" * 32, attestation=SIGNED,
)  # fmt: skip
REGISTRATION = api.RegistrationAnswer(
    attestation={"worker": "0x" + "66" * 20}, signature=b"\x07" * 65, signer=SIGNED.signer,
    digest="0x" + "88" * 32, chain_id=31337, registry="0x" + "99" * 20,
    evidence_hash="0x" + "aa" * 32, simulated=True, verdict={"accepted": True},
)  # fmt: skip


def test_answers_round_trip_through_json() -> None:
    assert api.BindingAnswer.from_json(json.loads(json.dumps(BINDING.to_json()))) == BINDING
    wire = json.loads(json.dumps(REGISTRATION.to_json()))
    assert wire["evidence_url"] == api.EVIDENCE_PREFIX + "0x" + "aa" * 32
    assert api.RegistrationAnswer.from_json(wire) == REGISTRATION
    beat = api.HeartbeatAnswer("0x" + "66" * 20, 7, 3, 1_700_000_000, stored=True)
    assert api.HeartbeatAnswer.from_json(beat.to_json()) == beat


@pytest.mark.parametrize(
    ("reader", "data", "problem"),
    [
        (api.BindingAnswer, [], "binding answer: expected a JSON object"),
        (api.BindingAnswer, {**BINDING.to_json(), "leaf": None}, "binding answer:"),
        (api.BindingAnswer, {k: v for k, v in BINDING.to_json().items() if k != "index"},
         "binding answer: missing field 'index'"),
        (api.BindingAnswer, {**BINDING.to_json(), "attestation": {**SIGNED.to_json(), "r": "zz"}},
         "answer field r: expected 0x-hex, got 'zz'"),
        (api.BindingAnswer, {**BINDING.to_json(), "attestation": {**SIGNED.to_json(), "v": "27"}},
         "answer field v: expected an integer"),
        (api.RegistrationAnswer, {**REGISTRATION.to_json(), "domain": None},
         "registration answer domain: expected a JSON object"),
        (api.RegistrationAnswer, {**REGISTRATION.to_json(), "signature": 5},
         "answer field signature: expected 0x-hex"),
        (api.HeartbeatAnswer, {"worker": "0x", "epoch": 1, "sequence": "x", "timestamp": 1,
                               "stored": True},
         "heartbeat answer:"),
    ],
)  # fmt: skip
def test_malformed_answers_are_one_input_error(reader: Any, data: Any, problem: str) -> None:
    with pytest.raises(InputError, match=problem.replace("(", r"\(")):
        reader.from_json(data)


def test_requests_leave_out_what_is_not_given() -> None:
    request = api.BindingRequest("0x" + "11" * 32, "0x" + "22" * 20, "0x" + "33" * 64)
    assert set(request.to_json()) == api.BINDING_FIELDS.required
    full = api.BindingRequest("a", "r", "s", scheme="ecdsa", pubkey="0x02")
    assert set(full.to_json()) == api.BINDING_FIELDS.allowed
    registration = api.RegistrationRequest("{}", "0xw", "0xp", 0, 0)
    assert set(registration.to_json()) == api.REGISTRATION_FIELDS.required
    beat = api.HeartbeatRequest("0xw", 1, 2, 3, "0x" + "00" * 32, "0x" + "00" * 65)
    assert set(beat.to_json()) == api.HEARTBEAT_FIELDS.allowed


def test_error_answers_have_one_shape() -> None:
    answer = api.ErrorAnswer("binding_limit", "too many", "abc")
    wire = answer.to_json()
    assert wire == {"error": "too many", "code": "binding_limit", "message": "too many",
                    "request_id": "abc"}  # fmt: skip
    assert api.ErrorAnswer.from_json(wire, 409, "Conflict") == answer
    assert api.ErrorAnswer.from_json({"error": "old"}, 404, "x") == api.ErrorAnswer(
        "not_found", "old"
    )
    assert api.ErrorAnswer.from_json("<html>", 502, "Bad Gateway") == api.ErrorAnswer(
        "bad_gateway", "Bad Gateway"
    )
    assert api.error_code(503) == "service_unavailable"


class Canned:
    """An HTTP server that answers every request with one fixed status and body."""

    def __init__(self, status: int, body: bytes) -> None:
        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _answer(self) -> None:
                self.send_response(status)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self) -> None:
                self._answer()

            def do_POST(self) -> None:
                self.rfile.read(int(self.headers["Content-Length"]))
                self._answer()

        self.server = HTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"


@pytest.fixture
def canned() -> Iterator[Any]:
    servers: list[Canned] = []

    def make(status: int, body: bytes) -> Canned:
        servers.append(Canned(status, body))
        return servers[-1]

    yield make
    for server in servers:
        server.server.shutdown()
        server.server.server_close()


def test_client_reads_typed_answers_and_refuses_garbage(canned: Any) -> None:
    good = canned(200, json.dumps(BINDING.to_json()).encode())
    request = api.BindingRequest("0x" + "11" * 32, "0x" + "22" * 20, "0x" + "33" * 64)
    assert AttesterClient(good.url).bind(request) == BINDING
    with pytest.raises(InputError, match="registration answer: missing field"):
        AttesterClient(good.url).register(api.RegistrationRequest("{}", "0xw", "0xp", 0, 0))
    with pytest.raises(AttesterUnavailable, match="not a JSON object"):
        AttesterClient(canned(200, b"<html>").url).health()
    with pytest.raises(AttesterUnavailable, match="not a JSON object"):
        AttesterClient(canned(200, b"[1]").url).worker("0x" + "22" * 20)
    refusal = api.ErrorAnswer("binding_limit", "already 4 bindings", "id1").to_json()
    with pytest.raises(AttesterRefused, match=r"refused \(409\) already 4 bindings") as refused:
        AttesterClient(canned(409, json.dumps(refusal).encode()).url).bind(request)
    assert (refused.value.status, refused.value.code) == (409, "binding_limit")
    raw = b"\x00evidence bytes, not JSON"
    assert AttesterClient(canned(200, raw).url).evidence("0x" + "aa" * 32) == raw


def test_client_says_when_nobody_answers() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    client = AttesterClient(f"http://127.0.0.1:{port}", timeout=2, backoff=Backoff(attempts=1))
    with pytest.raises(AttesterUnavailable, match="unreachable"):
        client.health()
