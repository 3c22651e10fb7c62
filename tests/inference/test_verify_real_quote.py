"""verify_report on a real dstack TDX quote (Intel chain, TCB, replayed event log).

The fixture's report data is 0x1234 followed by zeros, which is exactly the vllm-proxy
layout for signing address 0x1234000…0 and an all-zero nonce: so the same code path that
judges a production gateway runs here on real hardware evidence, offline.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from veil.inference.verify import VerificationRefused, verify_report
from veil.tee import DEFAULT_POLICY, load_collateral

FIXTURES = Path(__file__).resolve().parents[3] / "shared" / "fixtures" / "tee"
NOW = 1771415931  # inside the collateral's validity (fixtures README)
ADDRESS = "0x1234" + "00" * 18
NONCE = bytes(32)


def _report() -> dict[str, object]:
    doc = json.loads((FIXTURES / "dstack-quote-report.json").read_text())
    return {
        "signing_address": ADDRESS,
        "signing_algo": "ecdsa",
        "request_nonce": NONCE.hex(),
        "intel_quote": doc["quote"],
        "event_log": doc["event_log"],
        "vm_config": doc.get("vm_config"),
        "nvidia_payload": None,
    }


def _compose_hash() -> str:
    events = json.loads((FIXTURES / "dstack-quote-report.json").read_text())["event_log"]
    events = json.loads(events) if isinstance(events, str) else events
    return next(e["event_payload"] for e in events if e.get("event") == "compose-hash")


@pytest.fixture(scope="module")
def collateral():  # type: ignore[no-untyped-def]
    return load_collateral(FIXTURES / "tdx_quote_outdated_collateral.json")


def test_real_quote_passes_the_production_policy(collateral) -> None:  # type: ignore[no-untyped-def]
    policy = replace(DEFAULT_POLICY, allowed_compose_hashes=(_compose_hash(),))
    gateway = verify_report(_report(), NONCE, policy, collateral, now=NOW)
    assert not gateway.simulated and gateway.verdict.tcb_status == "UpToDate"
    assert gateway.verdict.app is not None
    assert gateway.verdict.app.compose_hash == _compose_hash()
    assert len(gateway.attestation_digest) == 64


def test_real_quote_with_another_compose_hash_is_refused(collateral) -> None:  # type: ignore[no-untyped-def]
    policy = replace(DEFAULT_POLICY, allowed_compose_hashes=("ab" * 32,))
    with pytest.raises(VerificationRefused) as caught:
        verify_report(_report(), NONCE, policy, collateral, now=NOW)
    assert caught.value.reason == "quote_refused" and "compose" in str(caught.value)


def test_real_quote_without_collateral_is_refused() -> None:
    with pytest.raises(VerificationRefused, match="collateral"):
        verify_report(_report(), NONCE, DEFAULT_POLICY, None, now=NOW)


def test_real_quote_for_another_nonce_or_key_is_refused(collateral) -> None:  # type: ignore[no-untyped-def]
    other = bytes([1]) * 32
    with pytest.raises(VerificationRefused) as caught:
        verify_report(dict(_report(), request_nonce=other.hex()), other, DEFAULT_POLICY,
                      collateral, now=NOW)  # fmt: skip
    assert caught.value.reason == "nonce_mismatch"
    with pytest.raises(VerificationRefused) as caught:
        verify_report(dict(_report(), signing_address="0x" + "55" * 20), NONCE,
                      DEFAULT_POLICY, collateral, now=NOW)  # fmt: skip
    assert caught.value.reason == "key_not_bound"


def test_collateral_from_a_pccs_cache(tmp_path: Path) -> None:
    from veil.tee.collateral import CollateralCache
    from veil.tee.tdx import parse_measurements

    quote = bytes.fromhex(str(_report()["intel_quote"]))
    fmspc = parse_measurements(quote).fmspc
    assert fmspc is not None
    cache = CollateralCache(tmp_path, "http://127.0.0.1:9/unreachable")
    policy = replace(DEFAULT_POLICY, allowed_compose_hashes=(_compose_hash(),))
    with pytest.raises(VerificationRefused) as caught:  # nothing cached, PCCS unreachable
        verify_report(_report(), NONCE, policy, cache, now=NOW)
    assert caught.value.reason == "collateral_unavailable"
    source = FIXTURES / "tdx_quote_outdated_collateral.json"
    cache.path("tdx", fmspc, "platform").write_text(source.read_text())
    gateway = verify_report(_report(), NONCE, policy, cache, now=NOW)
    assert gateway.verdict.accepted and gateway.verdict.tcb_status == "UpToDate"
