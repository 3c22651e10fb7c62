"""NVIDIA GPU claims, their binding to the CVM, the NRAS request path, and the simulator."""

from __future__ import annotations

import base64
import dataclasses
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from veil.errors import InputError
from veil.tee import Policy, verify_evidence
from veil.tee.eventlog import parse_event_log, replay
from veil.tee.evidence import evidence_from_bytes
from veil.tee.gpu import (
    gpu_evidence_hash,
    gpu_problems,
    nras_request,
    parse_claim_set,
    parse_nras_response,
    submit_to_nras,
)
from veil.tee.policy import GpuPolicy
from veil.tee.simulator import (
    dev_public_key,
    generate_key_file,
    load_key_file,
    parse_simulated_quote,
    simulate,
)

SIM_OK = Policy(allow_simulated=True)


@pytest.fixture
def gpu_bytes(tee):
    return (tee / "gpu_attestation_h100.json").read_bytes()


def _evidence(doc):
    return evidence_from_bytes(json.dumps(doc).encode())


def test_h100_claims_parse(gpu_bytes):
    (claims,) = parse_claim_set(gpu_bytes)
    assert claims.hwmodel == "GH100 A01 GSP BROM"
    assert claims.measres == "success" and claims.secboot and claims.dbgstat == "disabled"
    assert claims.eat_nonce == "11" * 32
    assert claims.driver_version == "580.159.03"
    assert claims.report_signature_verified and claims.cert_chain_status == "valid"


def test_h100_passes_a_matching_gpu_policy(gpu_bytes):
    claims = parse_claim_set(gpu_bytes)
    policy = GpuPolicy(allowed_hwmodels=("GH100 A01 GSP BROM",), nonce="11" * 32)
    assert gpu_problems(claims, policy) == []


@pytest.mark.parametrize(
    "change, policy, reason",
    [
        ({"measres": "fail"}, GpuPolicy(), "measurement result is 'fail'"),
        ({"secboot": False}, GpuPolicy(), "secure boot is off"),
        ({"dbgstat": "enabled"}, GpuPolicy(), "debug is 'enabled'"),
        ({}, GpuPolicy(allowed_hwmodels=("GB100",)), "hardware model not allowed"),
        ({}, GpuPolicy(nonce="22" * 32), "is not the expected"),
        (
            {"x-nvidia-gpu-attestation-report-signature-verified": False},
            GpuPolicy(),
            "did not verify the report signature",
        ),
    ],
)
def test_each_gpu_policy_failure_has_its_reason(gpu_bytes, change, policy, reason):
    doc = json.loads(gpu_bytes)
    doc["claims"][0].update(change)
    problems = gpu_problems(parse_claim_set(json.dumps(doc)), policy)
    assert len(problems) == 1 and reason in problems[0]
    assert problems[0].startswith("gpu 0 (")


def test_debug_allowed_only_by_policy(gpu_bytes):
    doc = json.loads(gpu_bytes)
    doc["claims"][0]["dbgstat"] = "enabled"
    assert gpu_problems(parse_claim_set(json.dumps(doc)), GpuPolicy(allow_debug=True)) == []


@pytest.mark.parametrize(
    "text",
    [
        "[]",
        "{}",
        '{"claims": []}',
        '{"claims": [{"hwmodel": "x"}]}',
        "nope",
        '{"claims": [{}], "result_code": 5}',
    ],
)
def test_bad_claim_sets_are_one_line(text):
    with pytest.raises(InputError) as caught:
        parse_claim_set(text)
    assert "\n" not in str(caught.value)


def test_gpu_bound_to_simulated_cvm_through_rtmr3(gpu_bytes):
    evidence = _evidence(simulate(b"\x01", gpu_evidence=gpu_bytes))
    verdict = verify_evidence(evidence, None, SIM_OK, 0, gpu_evidence=gpu_bytes)
    assert verdict.accepted, verdict.reasons
    assert verdict.gpu["bound"] is True
    assert verdict.app.gpu_evidence_hash == gpu_evidence_hash(gpu_bytes)


def test_gpu_evidence_from_another_machine_is_not_bound(gpu_bytes):
    evidence = _evidence(simulate(b"\x01", gpu_evidence=gpu_bytes + b" "))
    verdict = verify_evidence(evidence, None, SIM_OK, 0, gpu_evidence=gpu_bytes)
    assert len(verdict.reasons) == 1
    assert verdict.reasons[0].startswith("gpu binding: RTMR3 gpu-evidence-hash is")


def test_gpu_binding_needs_the_event_and_real_dstack_quote_lacks_it(tee, gpu_bytes):
    from veil.tee import load_collateral, load_evidence

    verdict = verify_evidence(
        load_evidence(tee / "dstack-quote-report.json"),
        load_collateral(tee / "tdx_quote_outdated_collateral.json"),
        Policy(),
        1771415931,
        gpu_evidence=gpu_bytes,
    )
    assert verdict.reasons == ["gpu binding: the CVM's event log has no gpu-evidence-hash event"]


def test_gpu_required_by_policy():
    evidence = _evidence(simulate(b"\x01"))
    policy = dataclasses.replace(SIM_OK, gpu=GpuPolicy(required=True))
    verdict = verify_evidence(evidence, None, policy, 0)
    assert verdict.reasons == ["gpu: policy requires GPU evidence, none given"]


def test_nras_request_shape():
    body = nras_request("AB" * 32, [{"evidence": b"\x01\x02", "certificate": b"pem"}])
    assert body == {
        "nonce": "ab" * 32,
        "arch": "HOPPER",
        "evidence_list": [{"evidence": "AQI=", "certificate": base64.b64encode(b"pem").decode()}],
    }
    with pytest.raises(InputError):
        nras_request("ab", [])


def test_detached_eat_parses_as_nras_response_and_matches_the_claims(gpu_bytes):
    doc = json.loads(gpu_bytes)
    overall, per_gpu = parse_nras_response(doc["detached_eat"])
    assert overall["x-nvidia-overall-att-result"] is True
    assert overall["eat_nonce"] == "11" * 32
    token_claims = per_gpu["GPU-0"]
    for key, value in doc["claims"][0].items():
        assert token_claims[key] == value


def test_submit_to_a_local_nras_stub(gpu_bytes):
    doc = json.loads(gpu_bytes)
    received = []

    class Stub(BaseHTTPRequestHandler):
        def log_message(self, *args):
            return

        def do_POST(self):
            received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            body = json.dumps(doc["detached_eat"]).encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Stub)
    threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/v3/attest/gpu"
        request = nras_request("11" * 32, [{"evidence": b"e", "certificate": b"c"}])
        overall, per_gpu = submit_to_nras(request, url=url, timeout=5)
    finally:
        server.shutdown()
        server.server_close()
    assert received == [request]
    assert per_gpu["GPU-0"]["hwmodel"] == "GH100 A01 GSP BROM"
    assert overall["iss"] == "NVAT-LOCAL-VERIFIER"


# --- simulator ----------------------------------------------------------------------------


def test_simulated_evidence_replays_and_is_marked_everywhere():
    doc = simulate(b"\xaa" * 64)
    assert doc["simulated"] is True and "SIMULATED" in doc["warning"]
    assert json.loads(doc["vm_config"])["simulated"] is True
    parsed = parse_simulated_quote(bytes.fromhex(doc["quote"]))
    events = parse_event_log(doc["event_log"])
    assert [r.hex() for r in replay(events).rtmrs] == [
        parsed.measurements.rtmr0,
        parsed.measurements.rtmr1,
        parsed.measurements.rtmr2,
        parsed.measurements.rtmr3,
    ]
    assert parsed.public_key == dev_public_key()
    verdict = verify_evidence(_evidence(doc), None, SIM_OK, 0)
    assert verdict.accepted and verdict.simulated
    assert verdict.tcb_status == "SIMULATED"
    assert verdict.headline() == "ACCEPTED (SIMULATED)"
    assert "SIMULATED" in verdict.render().splitlines()[0]
    assert verdict.to_json()["simulated"] is True and "SIMULATED" in verdict.to_json()["warning"]


def test_tampered_simulated_quote_is_refused():
    doc = simulate(b"\x01")
    raw = bytearray(bytes.fromhex(doc["quote"]))
    raw[600] ^= 1  # inside the report data
    doc["quote"] = raw.hex()
    verdict = verify_evidence(_evidence(doc), None, SIM_OK, 0)
    assert verdict.reasons == ["simulator signature invalid: the simulated quote was altered"]


def test_simulated_marker_cannot_be_stripped_to_pass_as_real(tee):
    doc = simulate(b"\x01")
    doc["simulated"] = False
    verdict = verify_evidence(_evidence(doc), None, Policy(), 0)
    assert verdict.simulated and not verdict.accepted
    assert verdict.reasons[0].startswith("simulated TEE: SIMULATED evidence is refused")


def test_real_quote_marked_simulated_is_refused(tee):
    doc = {"quote": (tee / "tdx_quote").read_bytes().hex(), "simulated": True}
    verdict = verify_evidence(_evidence(doc), None, SIM_OK, 0)
    assert not verdict.accepted
    assert "not a veil simulator quote" in verdict.reasons[0]


def test_own_simulator_key_needs_the_policy_to_trust_it(tmp_path):
    public = generate_key_file(tmp_path / "sim.key")
    doc = simulate(b"\x01", key=load_key_file(tmp_path / "sim.key"))
    refused = verify_evidence(_evidence(doc), None, SIM_OK, 0)
    assert refused.reasons[0].startswith("simulator signature: key")
    trusted = dataclasses.replace(SIM_OK, simulator_keys=(public,))
    assert verify_evidence(_evidence(doc), None, trusted, 0).accepted


def test_simulated_event_log_tamper_is_refused():
    doc = simulate(b"\x01")
    events = json.loads(doc["event_log"])
    events[0]["digest"] = "00" * 48
    doc["event_log"] = json.dumps(events)
    verdict = verify_evidence(_evidence(doc), None, SIM_OK, 0)
    assert verdict.reasons == ["event log does not replay: RTMR0 differ from the quote"]


def test_bad_simulator_key_file(tmp_path):
    (tmp_path / "k").write_text("abcd")
    with pytest.raises(InputError, match="32-byte"):
        load_key_file(tmp_path / "k")
    with pytest.raises(InputError, match="at most 64 bytes"):
        simulate(b"\x00" * 65)
