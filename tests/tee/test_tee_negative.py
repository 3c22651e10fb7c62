"""Each way evidence can be wrong is refused, and with its own reason."""

from __future__ import annotations

import dataclasses
import hashlib
import json

import pytest
from tee_fixtures import OUTDATED_NOW, SGX_NOW, TDX_NOW, TDX_STALE_NOW

from veil.errors import InputError
from veil.tee import Policy, load_collateral, load_evidence, verify_evidence
from veil.tee.collateral import from_json_text
from veil.tee.eventlog import runtime_event
from veil.tee.evidence import Evidence, evidence_from_bytes
from veil.tee.policy import OsImage, ReportDataRule, bound_report_data
from veil.tee.simulator import simulate


@pytest.fixture
def dstack(tee):
    return (
        load_evidence(tee / "dstack-quote-report.json"),
        load_collateral(tee / "tdx_quote_outdated_collateral.json"),
    )


def test_flipped_byte_at_600_is_a_bad_signature(tee):
    raw = bytearray((tee / "tdx_quote").read_bytes())
    raw[600] ^= 0x01
    verdict = verify_evidence(
        Evidence(bytes(raw)), load_collateral(tee / "tdx_quote_collateral.json"), Policy(), TDX_NOW
    )
    assert not verdict.accepted
    assert len(verdict.reasons) == 1
    assert verdict.reasons[0].startswith("signature invalid: the quote's report signature")


def test_stale_now_is_refused_for_expired_crl(tee):
    verdict = verify_evidence(
        load_evidence(tee / "tdx_quote"),
        load_collateral(tee / "tdx_quote_collateral.json"),
        Policy(),
        TDX_STALE_NOW,
    )
    assert not verdict.accepted
    assert any(r.startswith("collateral stale: CRL expired") for r in verdict.reasons)
    assert any(r.startswith("collateral stale: expired at 2025-07-19") for r in verdict.reasons)
    assert not any("signature" in r for r in verdict.reasons)


def test_collateral_older_than_policy_max_age(tee):
    policy = Policy(max_collateral_age=600)  # fixture collateral is an hour old at TDX_NOW
    verdict = verify_evidence(
        load_evidence(tee / "tdx_quote"),
        load_collateral(tee / "tdx_quote_collateral.json"),
        policy,
        TDX_NOW,
    )
    assert verdict.reasons == [verdict.reasons[0]]
    assert verdict.reasons[0].startswith("collateral too old: issued 2025-06-19T10:16:03Z")


def test_event_log_with_an_altered_boot_digest_no_longer_replays(dstack):
    evidence, collateral = dstack
    events = list(evidence.event_log)
    events[0] = dataclasses.replace(events[0], digest=hashlib.sha384(b"other").digest())
    verdict = verify_evidence(
        dataclasses.replace(evidence, event_log=tuple(events)), collateral, Policy(), OUTDATED_NOW
    )
    assert verdict.reasons == ["event log does not replay: RTMR0 differ from the quote"]
    assert verdict.app is None


def test_event_log_with_a_forged_runtime_payload_is_refused(dstack):
    evidence, collateral = dstack
    events = list(evidence.event_log)
    index = next(i for i, e in enumerate(events) if e.event == "compose-hash")
    events[index] = dataclasses.replace(events[index], payload=b"\x11" * 32)  # digest kept
    verdict = verify_evidence(
        dataclasses.replace(evidence, event_log=tuple(events)), collateral, Policy(), OUTDATED_NOW
    )
    assert "event log: runtime event 'compose-hash' digest does not match its payload" in (
        verdict.reasons
    )
    assert "event log does not replay: RTMR3 differ from the quote" in verdict.reasons
    assert not verdict.accepted


def test_event_log_with_an_extra_event_no_longer_replays(dstack):
    evidence, collateral = dstack
    extra = runtime_event("late", b"")
    tampered = dataclasses.replace(evidence, event_log=(*evidence.event_log, extra))
    verdict = verify_evidence(tampered, collateral, Policy(), OUTDATED_NOW)
    assert verdict.reasons == ["event log does not replay: RTMR3 differ from the quote"]


def test_compose_hash_outside_policy(dstack):
    evidence, collateral = dstack
    policy = Policy(allowed_compose_hashes=("ab" * 32,))
    verdict = verify_evidence(evidence, collateral, policy, OUTDATED_NOW)
    assert len(verdict.reasons) == 1
    assert verdict.reasons[0].startswith("compose hash 3763bc34")
    assert verdict.reasons[0].endswith("is not allowed by policy")
    allowed = Policy(allowed_compose_hashes=(verdict.app.compose_hash,))
    assert verify_evidence(evidence, collateral, allowed, OUTDATED_NOW).accepted


def test_os_image_outside_policy(dstack):
    evidence, collateral = dstack
    m = verify_evidence(evidence, collateral, Policy(), OUTDATED_NOW).measurements
    wrong = OsImage(name="other", mrtd="00" * 48, rtmr0=m.rtmr0, rtmr1=m.rtmr1, rtmr2=m.rtmr2)
    verdict = verify_evidence(evidence, collateral, Policy(os_images=(wrong,)), OUTDATED_NOW)
    assert len(verdict.reasons) == 1
    assert verdict.reasons[0].startswith("OS image not allowed by policy")
    # vm_config's os_image_hash is a claim, not a measurement: it never admits an image.
    claimed = evidence.vm_config["os_image_hash"]
    by_claim = Policy(os_images=(OsImage(name="claimed", os_image_hash=claimed),))
    verdict = verify_evidence(evidence, collateral, by_claim, OUTDATED_NOW)
    assert verdict.reasons[0].startswith("OS image not allowed by policy")
    assert "not measured, not trusted" in verdict.reasons[0]
    right = OsImage(name="dstack", mrtd=m.mr_td, rtmr0=m.rtmr0, rtmr1=m.rtmr1, rtmr2=m.rtmr2)
    assert verify_evidence(evidence, collateral, Policy(os_images=(right,)), OUTDATED_NOW).accepted


def test_report_data_that_does_not_bind_the_key(dstack):
    evidence, collateral = dstack
    rule = ReportDataRule(mode="sha512", tag="veil-worker", content=b"\x02" * 33)
    verdict = verify_evidence(evidence, collateral, Policy(report_data=rule), OUTDATED_NOW)
    assert verdict.reasons == [
        "report data does not bind the expected value: it is not sha512('veil-worker':key)"
    ]


def test_report_data_nonce_exact_match(dstack):
    evidence, collateral = dstack  # its report data is 0x1234 followed by zeros
    good = Policy(report_data=ReportDataRule(mode="nonce", nonce=bytes.fromhex("1234")))
    assert verify_evidence(evidence, collateral, good, OUTDATED_NOW).accepted
    bad = Policy(report_data=ReportDataRule(mode="nonce", nonce=bytes.fromhex("1235")))
    verdict = verify_evidence(evidence, collateral, bad, OUTDATED_NOW)
    assert verdict.reasons == ["report data does not bind the expected value: it is not the nonce"]


def test_report_data_binding_accepts_the_right_key():
    key = bytes.fromhex("02" + "ab" * 32)
    evidence_json = json.dumps(simulate(bound_report_data("veil-worker", key)))
    evidence = evidence_from_bytes(evidence_json.encode())
    policy = Policy(allow_simulated=True, report_data=ReportDataRule("sha512", "veil-worker"))
    assert verify_evidence(evidence, None, policy.binding(content=key), 0).accepted
    other = verify_evidence(evidence, None, policy.binding(content=b"\x03" + key[1:]), 0)
    assert other.reasons[0].startswith("report data does not bind")
    missing = verify_evidence(evidence, None, policy, 0)
    assert missing.reasons[0].startswith("report data: policy mode sha512 needs")


def test_sgx_quote_where_tdx_is_required(tee):
    policy = Policy(
        accepted_tcb_statuses=("ConfigurationAndSWHardeningNeeded",),
        accepted_advisories=("INTEL-SA-00289", "INTEL-SA-00615"),
    )
    verdict = verify_evidence(
        load_evidence(tee / "sgx_quote"),
        load_collateral(tee / "sgx_quote_collateral.json"),
        policy,
        SGX_NOW,
    )
    assert verdict.reasons == ["TEE type: SGX quote, policy requires TDX"]


def test_simulated_quote_under_default_policy():
    evidence = evidence_from_bytes(json.dumps(simulate(b"\x01")).encode())
    verdict = verify_evidence(evidence, None, Policy(), 0)
    assert verdict.simulated
    assert verdict.reasons == [
        "simulated TEE: SIMULATED evidence is refused by policy (allow_simulated = false)"
    ]


def test_outdated_quote_has_no_matching_tcb_level(tee):
    verdict = verify_evidence(
        load_evidence(tee / "tdx_quote_outdated"),
        load_collateral(tee / "tdx_quote_outdated_collateral.json"),
        Policy(),
        OUTDATED_NOW,
    )
    assert verdict.reasons == [
        "TCB: no matching TCB level in Intel's TCB info (platform outdated or unknown)"
    ]
    assert verdict.tcb_status is None


def test_collateral_for_another_platform_is_refused(tee):
    verdict = verify_evidence(
        load_evidence(tee / "tdx_quote"),
        load_collateral(tee / "near_quote_collateral.json"),
        Policy(),
        1756802519,
    )
    assert not verdict.accepted
    assert verdict.tcb_status is None


def test_missing_collateral_is_a_reason_not_a_crash(tee):
    verdict = verify_evidence(load_evidence(tee / "tdx_quote"), None, Policy(), TDX_NOW)
    assert verdict.reasons == ["collateral: none given (pass a collateral file or a PCCS URL)"]


@pytest.mark.parametrize(
    "content",
    [b"", b"\x00" * 20, b"hello, not a quote", b"04" * 10, b'{"quote": 5}', b'{"nope": "00"}'],
)
def test_malformed_quote_is_one_clear_line(tmp_path, content):
    path = tmp_path / "quote.bin"
    path.write_bytes(content)
    with pytest.raises(InputError) as caught:
        load_evidence(path)
    message = str(caught.value)
    assert "\n" not in message and str(path) in message


@pytest.mark.parametrize(
    "text",
    [
        "not json",
        "[]",
        '{"tcb_info": "{}"}',
        json.dumps(
            {
                k: "zz"
                for k in (
                    "pck_crl_issuer_chain",
                    "root_ca_crl",
                    "pck_crl",
                    "tcb_info_issuer_chain",
                    "tcb_info",
                    "tcb_info_signature",
                    "qe_identity_issuer_chain",
                    "qe_identity",
                    "qe_identity_signature",
                )
            }
        ),
    ],
)
def test_malformed_collateral_is_one_clear_line(text):
    with pytest.raises(InputError) as caught:
        from_json_text(text, "collateral c.json")
    assert "\n" not in str(caught.value) and str(caught.value).startswith("collateral c.json: ")


def test_collateral_with_corrupt_crl_is_refused_by_dcap(tee):
    data = json.loads((tee / "tdx_quote_collateral.json").read_text())
    data["pck_crl"] = "30" + data["pck_crl"][2:-8] + "00000000"
    try:
        collateral = from_json_text(json.dumps(data))
    except InputError as error:
        assert "\n" not in str(error)
        return
    verdict = verify_evidence(load_evidence(tee / "tdx_quote"), collateral, Policy(), TDX_NOW)
    assert not verdict.accepted
