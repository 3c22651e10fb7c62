"""Signatures checked by independent code, and every refusal of the verifier with its reason."""

from __future__ import annotations

import hashlib
import json
import secrets
from collections.abc import Callable
from dataclasses import replace

import httpx
import nacl.signing
import openai
import pytest
from ai_kit import SIM_APP, Meddler, RunningGateway, replace_body, sim_policy
from eth_account import Account
from eth_account.messages import encode_defunct, encode_typed_data

from veil.inference.transport import VerifyingTransport
from veil.inference.verify import VerificationRefused
from veil.tee import DEFAULT_POLICY
from veil.tee.policy import Policy


def _exchange(gateway: RunningGateway, stream: bool = False) -> tuple[bytes, bytes, str]:
    body = json.dumps(
        {
            "model": "fake-llm",
            "messages": [{"role": "user", "content": "sign this exactly"}],
            "stream": stream,
        }
    ).encode()
    with httpx.Client() as client:
        response = client.post(
            gateway.url + "/v1/chat/completions",
            content=body,
            headers={"Content-Type": "application/json"},
        )
    return body, response.content, response.headers["x-receipt-id"]


@pytest.mark.parametrize("stream", [False, True])
def test_ecdsa_and_eip712_check_out_with_eth_account(gateway: RunningGateway, stream: bool) -> None:
    request, response, receipt_id = _exchange(gateway, stream)
    answer = httpx.get(gateway.url + f"/v1/signature/{receipt_id}").json()
    text = f"{hashlib.sha256(request).hexdigest()}:{hashlib.sha256(response).hexdigest()}"
    assert answer["text"] == text
    assert answer["signing_algo"] == "ecdsa"
    signer = Account.recover_message(encode_defunct(text=text), signature=answer["signature"])
    assert signer == answer["signing_address"] == gateway.gateway.keys.ecdsa_address
    receipt = answer["receipt"]
    typed = {k: receipt[k] for k in ("types", "primaryType", "domain", "message")}
    signer712 = Account.recover_message(
        encode_typed_data(full_message=typed), signature=receipt["signature"]
    )
    assert signer712 == gateway.gateway.keys.ecdsa_address
    message = receipt["message"]
    assert message["requestHash"] == "0x" + hashlib.sha256(request).hexdigest()
    assert message["responseHash"] == "0x" + hashlib.sha256(response).hexdigest()
    assert message["attestationDigest"] == "0x" + gateway.gateway.attestation_digest
    assert message["model"] == "fake-llm" and message["completionTokens"] == 4
    if stream:
        # each event carries the running hash of every byte sent before its comment line
        lines = response.split(b"\n")
        running = hashlib.sha256()
        seen = 0
        for line in lines[:-1]:
            if line.startswith(b": veil-sha256 "):
                assert line[14:].decode() == running.hexdigest()
                seen += 1
            running.update(line + b"\n")
        assert seen >= 6


def test_ed25519_checks_out_with_pynacl(gateway: RunningGateway) -> None:
    request, response, receipt_id = _exchange(gateway)
    answer = httpx.get(
        gateway.url + f"/v1/signature/{receipt_id}", params={"signing_algo": "ed25519"}
    ).json()
    text = f"{hashlib.sha256(request).hexdigest()}:{hashlib.sha256(response).hexdigest()}"
    assert answer["text"] == text and answer["signing_algo"] == "ed25519"
    key = nacl.signing.VerifyKey(bytes.fromhex(answer["signing_address"]))
    key.verify(text.encode(), bytes.fromhex(answer["signature"]))  # raises if wrong


def test_report_binds_address_and_nonce_in_vllm_proxy_layout(gateway: RunningGateway) -> None:
    nonce = secrets.token_bytes(32)
    report = httpx.get(gateway.url + "/v1/attestation/report", params={"nonce": nonce.hex()}).json()
    quote = bytes.fromhex(report["intel_quote"])
    report_data = quote[48 + 520 : 48 + 584]  # TD report's last field
    address = bytes.fromhex(gateway.gateway.keys.ecdsa_address[2:])
    assert report_data == address.ljust(32, b"\0") + nonce
    assert report["request_nonce"] == nonce.hex() and report["simulated"] is True
    assert report["nvidia_payload"] is None and report["gpu"].startswith("none")


def test_report_needs_a_fresh_client_nonce(gateway: RunningGateway) -> None:
    url = gateway.url + "/v1/attestation/report"
    missing = httpx.get(url)
    assert missing.status_code == 400 and missing.json()["code"] == "nonce_required"
    assert missing.headers["x-request-id"] == missing.json()["request_id"]
    bad = httpx.get(url, params={"nonce": "abcd"})
    assert bad.status_code == 400 and bad.json()["code"] == "bad_nonce"
    algo = httpx.get(url, params={"nonce": "00" * 32, "signing_algo": "rsa"})
    assert algo.json()["code"] == "bad_signing_algo"
    nonce = secrets.token_hex(32)
    assert httpx.get(url, params={"nonce": nonce}).status_code == 200
    again = httpx.get(url, params={"nonce": nonce})
    assert again.status_code == 400 and again.json()["code"] == "nonce_reused"


def test_unknown_receipt_is_404(gateway: RunningGateway) -> None:
    answer = httpx.get(gateway.url + "/v1/signature/chatcmpl-nope")
    assert answer.status_code == 404 and answer.json()["code"] == "receipt_not_found"


def _refusal(
    gateway: RunningGateway,
    policy: Policy,
    rewrite: Callable[[httpx.Request, httpx.Response], httpx.Response] | None = None,
    stream: bool = False,
) -> VerificationRefused:
    inner = Meddler(rewrite) if rewrite else None
    transport = VerifyingTransport(gateway.url, policy, inner=inner)
    client = openai.OpenAI(
        base_url=gateway.url + "/v1",
        api_key="k",
        http_client=httpx.Client(transport=transport),
        max_retries=0,
    )
    with pytest.raises((VerificationRefused, openai.APIConnectionError)) as caught:
        result = client.chat.completions.create(
            model="fake-llm", messages=[{"role": "user", "content": "hi there"}], stream=stream
        )
        if stream:
            for _ in result:  # type: ignore[union-attr]
                pass
    error = caught.value
    refusal = error if isinstance(error, VerificationRefused) else error.__cause__
    assert isinstance(refusal, VerificationRefused), repr(error)
    return refusal


def _flip_one_byte(request: httpx.Request, response: httpx.Response) -> httpx.Response:
    if not request.url.path.endswith("/chat/completions"):
        return response
    return replace_body(response, response.content.replace(b"echo:", b"echo;", 1))


def test_tampered_response_byte_is_refused(gateway: RunningGateway) -> None:
    assert _refusal(gateway, sim_policy(), _flip_one_byte).reason == "response_tampered"


def test_tampered_stream_byte_is_refused(gateway: RunningGateway) -> None:
    refusal = _refusal(gateway, sim_policy(), _flip_one_byte, stream=True)
    assert refusal.reason == "response_tampered"


def test_replayed_nonce_is_refused(gateway: RunningGateway) -> None:
    recorded: dict[str, bytes] = {}

    def replay(request: httpx.Request, response: httpx.Response) -> httpx.Response:
        if request.url.path.endswith("/attestation/report"):
            recorded.setdefault("report", response.content)
            return replace_body(response, recorded["report"])
        return response

    VerifyingTransport(gateway.url, sim_policy(), inner=Meddler(replay)).attest()  # recorded
    assert _refusal(gateway, sim_policy(), replay).reason == "nonce_mismatch"


def test_replayed_quote_under_a_fresh_nonce_field_is_refused(gateway: RunningGateway) -> None:
    """The attacker also rewrites request_nonce: the quote's own report data still differs."""
    old = httpx.get(
        gateway.url + "/v1/attestation/report", params={"nonce": secrets.token_hex(32)}
    ).json()

    def replay(request: httpx.Request, response: httpx.Response) -> httpx.Response:
        if request.url.path.endswith("/attestation/report"):
            forged = dict(old, request_nonce=request.url.params["nonce"])
            return replace_body(response, json.dumps(forged).encode())
        return response

    assert _refusal(gateway, sim_policy(), replay).reason == "nonce_mismatch"


def test_report_for_another_signing_key_is_refused(gateway: RunningGateway) -> None:
    def swap_key(request: httpx.Request, response: httpx.Response) -> httpx.Response:
        if request.url.path.endswith("/attestation/report"):
            report = dict(response.json(), signing_address=Account.create().address)
            return replace_body(response, json.dumps(report).encode())
        return response

    assert _refusal(gateway, sim_policy(), swap_key).reason == "key_not_bound"


def test_answer_signed_by_an_unattested_key_is_refused(gateway: RunningGateway) -> None:
    impostor = Account.create()

    def resign(request: httpx.Request, response: httpx.Response) -> httpx.Response:
        if "/v1/signature/" in request.url.path:
            answer = response.json()
            signed = impostor.sign_message(encode_defunct(text=answer["text"]))
            answer.update(signature="0x" + signed.signature.hex(), signing_address=impostor.address)
            return replace_body(response, json.dumps(answer).encode())
        return response

    assert _refusal(gateway, sim_policy(), resign).reason == "signer_not_attested"


def test_compose_hash_outside_the_policy_is_refused(gateway: RunningGateway) -> None:
    other = replace(sim_policy(), allowed_compose_hashes=(hashlib.sha256(b"other").hexdigest(),))
    refusal = _refusal(gateway, other)
    assert refusal.reason == "quote_refused"
    assert "compose" in str(refusal) and SIM_APP.compose_hash.hex()[:12] in str(refusal)


def test_simulated_quote_under_production_policy_is_refused(gateway: RunningGateway) -> None:
    refusal = _refusal(gateway, DEFAULT_POLICY)
    assert refusal.reason == "quote_refused" and "SIMULATED" in str(refusal)


def test_refusal_is_sticky_and_nothing_is_sent(gateway: RunningGateway) -> None:
    sent: list[str] = []

    def count(request: httpx.Request, response: httpx.Response) -> httpx.Response:
        sent.append(request.url.path)
        return response

    transport = VerifyingTransport(gateway.url, DEFAULT_POLICY, inner=Meddler(count))
    client = httpx.Client(transport=transport, base_url=gateway.url)
    for _ in range(2):
        with pytest.raises(VerificationRefused):
            client.post("/v1/chat/completions", json={"model": "fake-llm", "messages": []})
    assert sent == ["/v1/attestation/report"]  # attested once, refused, never sent the prompt


def test_signed_requests_ask_for_uncompressed_answers(gateway: RunningGateway) -> None:
    seen: list[str] = []

    def record(request: httpx.Request, response: httpx.Response) -> httpx.Response:
        if request.url.path.endswith("/chat/completions"):
            seen.append(request.headers.get("accept-encoding", ""))
        return response

    transport = VerifyingTransport(gateway.url, sim_policy(), inner=Meddler(record))
    with httpx.Client(transport=transport, base_url=gateway.url) as client:
        client.post(
            "/v1/chat/completions",
            json={"model": "fake-llm", "messages": [{"role": "user", "content": "z"}]},
        )
    assert seen == ["identity"] and len(transport.checked) == 1  # fmt: skip
