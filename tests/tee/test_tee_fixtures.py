"""Every real fixture gets the verdict the fixtures' README table gives it."""

from __future__ import annotations

import json

from tee_fixtures import NEAR_NOW, OUTDATED_NOW, SGX_NOW, TDX_NOW

from veil.tee import Policy, load_collateral, load_evidence, verify_evidence
from veil.tee.tdx import quote_hash


def test_tdx_quote_up_to_date_and_rtmr3_zero(tee):
    verdict = verify_evidence(
        load_evidence(tee / "tdx_quote"),
        load_collateral(tee / "tdx_quote_collateral.json"),
        Policy(),
        TDX_NOW,
    )
    assert verdict.accepted, verdict.reasons
    assert verdict.tcb_status == "UpToDate"
    assert verdict.advisory_ids == []
    assert verdict.tee == "tdx"
    assert verdict.measurements is not None
    assert verdict.measurements.rtmr3 == "00" * 48
    assert verdict.quote_hash == quote_hash((tee / "tdx_quote").read_bytes())
    assert not verdict.simulated
    assert any("no event log" in check for check in verdict.checks)


def test_near_hex_quote_up_to_date_rtmr3_nonzero(tee):
    evidence = load_evidence(tee / "near_quote_hex.txt")
    assert evidence.quote == bytes.fromhex((tee / "near_quote_hex.txt").read_text().strip())
    verdict = verify_evidence(
        evidence, load_collateral(tee / "near_quote_collateral.json"), Policy(), NEAR_NOW
    )
    assert verdict.accepted, verdict.reasons
    assert verdict.tcb_status == "UpToDate"
    assert verdict.measurements is not None
    assert verdict.measurements.rtmr3 != "00" * 48


def test_dstack_report_up_to_date_replays_and_names_the_app(tee):
    evidence = load_evidence(tee / "dstack-quote-report.json")
    assert evidence.event_log is not None and evidence.vm_config is not None
    verdict = verify_evidence(
        evidence,
        load_collateral(tee / "tdx_quote_outdated_collateral.json"),
        Policy(),
        OUTDATED_NOW,
    )
    assert verdict.accepted, verdict.reasons
    assert verdict.tcb_status == "UpToDate"
    assert "event log replays to RTMR0-3" in verdict.checks
    app = verdict.app
    assert app is not None
    assert app.app_id == "3763bc34552cf3a27ff71ad5f7a90471562a1a2d"
    assert app.compose_hash is not None and len(app.compose_hash) == 64
    assert app.instance_id == "c3714eb66990eace777b4e664c16e09375dec4c9"
    assert app.key_provider is not None and '"local-sgx"' in app.key_provider
    report = json.loads((tee / "dstack-quote-report.json").read_text())
    assert verdict.report_data == report["report_data"]


def test_sgx_quote_status_and_advisories(tee):
    verdict = verify_evidence(
        load_evidence(tee / "sgx_quote"),
        load_collateral(tee / "sgx_quote_collateral.json"),
        Policy(),
        SGX_NOW,
    )
    assert verdict.tcb_status == "ConfigurationAndSWHardeningNeeded"
    assert verdict.advisory_ids == ["INTEL-SA-00289", "INTEL-SA-00615"]
    assert not verdict.accepted
    assert verdict.tee == "sgx"


def test_sgx_quote_accepted_only_when_policy_allows_sgx_status_and_advisories(tee):
    policy = Policy(
        allowed_tee=("sgx",),
        accepted_tcb_statuses=("ConfigurationAndSWHardeningNeeded",),
        accepted_advisories=("INTEL-SA-00289", "INTEL-SA-00615"),
    )
    verdict = verify_evidence(
        load_evidence(tee / "sgx_quote"),
        load_collateral(tee / "sgx_quote_collateral.json"),
        policy,
        SGX_NOW,
    )
    assert verdict.accepted, verdict.reasons
    one_advisory_short = Policy(
        allowed_tee=("sgx",),
        accepted_tcb_statuses=("ConfigurationAndSWHardeningNeeded",),
        accepted_advisories=("INTEL-SA-00289",),
    )
    verdict = verify_evidence(
        load_evidence(tee / "sgx_quote"),
        load_collateral(tee / "sgx_quote_collateral.json"),
        one_advisory_short,
        SGX_NOW,
    )
    assert verdict.reasons == ["TCB advisories not accepted by policy: INTEL-SA-00615"]


def test_verdict_json_mirrors_the_dataclass(tee):
    verdict = verify_evidence(
        load_evidence(tee / "dstack-quote-report.json"),
        load_collateral(tee / "tdx_quote_outdated_collateral.json"),
        Policy(),
        OUTDATED_NOW,
    )
    data = json.loads(json.dumps(verdict.to_json()))
    assert data["accepted"] is True
    assert data["simulated"] is False
    assert data["tcb_status"] == "UpToDate"
    assert data["quote_hash"] == verdict.quote_hash
    assert data["app"]["compose_hash"] == verdict.app.compose_hash
    assert data["measurements"]["rtmr3"] == verdict.measurements.rtmr3
    assert data["reasons"] == [] and data["checks"] == verdict.checks
