"""`veil attest ...` as a user runs it: exit codes, one-line errors, text and JSON output."""

from __future__ import annotations

import json
import sys

import pytest
from tee_fixtures import OUTDATED_NOW, TDX_NOW, TDX_STALE_NOW

from veil.cli.main import main
from veil.tee.compose import canonical_app_compose, compose_hash


@pytest.fixture
def veil(monkeypatch, capsys):
    def run(*args: str) -> tuple[int, str, str]:
        monkeypatch.setattr(sys, "argv", ["veil", *map(str, args)])
        try:
            main()
            code = 0
        except SystemExit as done:
            code = int(done.code or 0)
        captured = capsys.readouterr()
        return code, captured.out, captured.err

    return run


def test_verify_dstack_report_accepted(veil, tee):
    code, out, _ = veil(
        "attest",
        "verify",
        "--quote",
        tee / "dstack-quote-report.json",
        "--collateral",
        tee / "tdx_quote_outdated_collateral.json",
        "--at",
        OUTDATED_NOW,
    )
    assert code == 0
    assert out.splitlines()[0] == "verdict: ACCEPTED"
    assert "tcb status: UpToDate (advisories: none)" in out
    assert "app-id: 3763bc34552cf3a27ff71ad5f7a90471562a1a2d" in out
    assert "ok: event log replays to RTMR0-3" in out


def test_verify_json_mirrors_verdict_and_exit_1_when_refused(veil, tee):
    code, out, _ = veil(
        "attest",
        "verify",
        "--quote",
        tee / "tdx_quote",
        "--collateral",
        tee / "tdx_quote_collateral.json",
        "--at",
        TDX_STALE_NOW,
        "--json",
    )
    assert code == 1
    data = json.loads(out)
    assert data["accepted"] is False and data["verdict"] == "REFUSED"
    assert any("CRL expired" in reason for reason in data["reasons"])


def test_separate_event_log_file_is_replayed(veil, tee, tmp_path):
    report = json.loads((tee / "dstack-quote-report.json").read_text())
    (tmp_path / "quote.hex").write_text(report["quote"])
    events = json.loads(report["event_log"])
    (tmp_path / "events.json").write_text(json.dumps(events))
    events[-1]["event_payload"] = "00"
    (tmp_path / "bad.json").write_text(json.dumps(events))
    base = [
        "attest",
        "verify",
        "--quote",
        tmp_path / "quote.hex",
        "--collateral",
        tee / "tdx_quote_outdated_collateral.json",
        "--at",
        OUTDATED_NOW,
    ]
    code, out, _ = veil(*base, "--event-log", tmp_path / "events.json")
    assert code == 0 and "ok: event log replays to RTMR0-3" in out
    code, out, _ = veil(*base, "--event-log", tmp_path / "bad.json")
    assert code == 1 and "refused: event log does not replay: RTMR3 differ from the quote" in out


def test_policy_file_and_nonce_option(veil, tee, tmp_path):
    policy = tmp_path / "p.toml"
    policy.write_text('allowed_compose_hashes = ["' + "ab" * 32 + '"]\n')
    base = [
        "attest",
        "verify",
        "--quote",
        tee / "dstack-quote-report.json",
        "--collateral",
        tee / "tdx_quote_outdated_collateral.json",
        "--at",
        OUTDATED_NOW,
    ]
    code, out, _ = veil(*base, "--policy", policy)
    assert code == 1 and "is not allowed by policy" in out
    assert veil(*base, "--nonce", "1234")[0] == 0
    code, out, _ = veil(*base, "--nonce", "9999")
    assert code == 1 and "report data does not bind" in out
    code, _, err = veil(*base, "--bind-key", "0202")
    assert code == 2 and err.strip() == (
        "error: --bind-key: give --bind-tag or a [report_data] tag in the policy"
    )


def test_verify_fetches_collateral_from_pccs_and_caches_it(veil, tee, pccs, tmp_path):
    pccs.serve(tee / "tdx_quote_collateral.json")
    args = [
        "attest",
        "verify",
        "--quote",
        tee / "tdx_quote",
        "--pccs",
        pccs.url,
        "--cache-dir",
        tmp_path,
        "--at",
        TDX_NOW,
    ]
    assert veil(*args)[0] == 0
    assert veil(*args)[0] == 0
    assert len(pccs.requests) == 4  # second run came from the cache
    assert (tmp_path / "tdx-B0C06F000000-platform.json").exists()


@pytest.mark.parametrize("what", ["quote", "collateral", "policy"])
def test_malformed_input_is_one_line_exit_2(veil, tee, tmp_path, what):
    bad = tmp_path / "bad"
    bad.write_bytes(b"\x00garbage")
    files = {"quote": tee / "tdx_quote", "collateral": tee / "tdx_quote_collateral.json"}
    files[what] = bad
    args = [
        "attest",
        "verify",
        "--quote",
        files["quote"],
        "--collateral",
        files["collateral"],
        "--at",
        TDX_NOW,
    ]
    if what == "policy":
        args += ["--policy", bad]
    code, out, err = veil(*args)
    assert code == 2 and out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: {what} {bad}")


def test_compose_hash_command(veil, tmp_path):
    doc = {"runner": "docker-compose", "name": "demo", "docker_compose_file": "services: {}"}
    pretty = tmp_path / "pretty.json"
    pretty.write_text(json.dumps(doc, indent=4))
    code, out, err = veil("attest", "compose-hash", pretty)
    assert code == 0 and out.strip() == compose_hash(doc)
    assert "not in dstack's canonical form" in err
    canonical = tmp_path / "canonical.json"
    canonical.write_text(canonical_app_compose(doc))
    code, out, err = veil("attest", "compose-hash", canonical)
    assert out.strip() == compose_hash(doc) and err == ""
    code, out, _ = veil("attest", "compose-hash", "--raw", pretty)
    assert out.strip() != compose_hash(doc) and len(out.strip()) == 64


def test_simulate_then_verify_says_simulated(veil, tee, tmp_path):
    out_file = tmp_path / "sim.json"
    compose = tmp_path / "app-compose.json"
    compose.write_text(canonical_app_compose({"runner": "docker-compose", "name": "x"}))
    code, out, _ = veil(
        "attest", "simulate", "--report-data", "ab" * 64, "--out", out_file, "--compose", compose
    )
    assert code == 0 and "SIMULATED" in out
    code, out, _ = veil("attest", "verify", "--quote", out_file)
    assert code == 1
    assert out.splitlines()[0] == "verdict: REFUSED (SIMULATED)"
    assert "allow_simulated = false" in out
    policy = tmp_path / "dev.toml"
    policy.write_text("allow_simulated = true\n")
    code, out, _ = veil("attest", "verify", "--quote", out_file, "--policy", policy, "--json")
    data = json.loads(out)
    assert code == 0 and data["simulated"] is True and data["verdict"] == "ACCEPTED (SIMULATED)"
    expected = compose_hash({"runner": "docker-compose", "name": "x"})
    assert data["app"]["compose_hash"] == expected


def test_gpu_command(veil, tee):
    gpu = tee / "gpu_attestation_h100.json"
    code, out, _ = veil("attest", "gpu", gpu, "--nonce", "11" * 32)
    assert code == 0 and out.startswith("verdict: ACCEPTED")
    code, out, _ = veil("attest", "gpu", gpu, "--nonce", "22" * 32, "--json")
    assert code == 1 and "is not the expected" in json.loads(out)["reasons"][0]


def test_simulated_evidence_never_fetches_collateral(veil, tmp_path):
    sim = tmp_path / "sim.json"
    assert veil("attest", "simulate", "--report-data", "01", "--out", sim)[0] == 0
    policy = tmp_path / "dev.toml"
    policy.write_text("allow_simulated = true\n")
    # an unreachable PCCS must not matter: simulated evidence has no Intel collateral
    code, out, err = veil(
        "attest",
        "verify",
        "--quote",
        sim,
        "--policy",
        policy,
        "--pccs",
        "http://127.0.0.1:9",
        "--cache-dir",
        tmp_path / "c",
    )
    assert code == 0 and err == "" and out.startswith("verdict: ACCEPTED (SIMULATED)")
    assert not (tmp_path / "c").exists()
