"""Collateral freshness, the PCS fetch (against a real HTTP server on 127.0.0.1) and the cache."""

from __future__ import annotations

import json
import os

import pytest
from tee_fixtures import OUTDATED_NOW, TDX_NOW

from veil.tee import Policy, load_evidence, verify_evidence
from veil.tee.collateral import (
    CollateralCache,
    CollateralError,
    crl_next_update,
    fetch_collateral,
    freshness_problems,
    from_json_text,
    load_collateral,
)

TDX_FMSPC = "B0C06F000000"


def test_dates_read_from_tcb_info_qe_identity_and_crls(tee):
    collateral = load_collateral(tee / "tdx_quote_collateral.json")
    assert collateral.fmspc == TDX_FMSPC and collateral.tee == "tdx"
    assert collateral.issued == 1750328163  # tcb_info issueDate 2025-06-19T10:16:03Z, earliest
    # dcap-qvl reports this same pck CRL nextUpdate (1752919235) when it refuses it
    assert collateral.crl_next_update == 1752919235
    assert collateral.expires == 1752919235


def test_crl_next_update_of_garbage_is_none():
    assert crl_next_update(b"") is None
    assert crl_next_update(b"\x30\x03\x02\x01\x01") is None


def test_freshness_window(tee):
    collateral = load_collateral(tee / "tdx_quote_collateral.json")
    assert freshness_problems(collateral, TDX_NOW, None) == []
    assert freshness_problems(collateral, collateral.expires, None)[0].startswith(
        "collateral stale: expired at"
    )
    assert freshness_problems(collateral, collateral.issued - 1, None)[0].startswith(
        "collateral not yet valid"
    )
    assert freshness_problems(collateral, TDX_NOW, 60)[0].startswith("collateral too old")


def test_fetch_from_local_pccs_verifies_the_quote(tee, pccs):
    pccs.serve(tee / "tdx_quote_collateral.json")
    text = fetch_collateral(pccs.url, TDX_FMSPC)
    fetched = from_json_text(text)
    original = json.loads((tee / "tdx_quote_collateral.json").read_text())
    assert json.loads(text) == original
    verdict = verify_evidence(load_evidence(tee / "tdx_quote"), fetched, Policy(), TDX_NOW)
    assert verdict.accepted, verdict.reasons
    assert any(f"tcb?fmspc={TDX_FMSPC}" in path for path in pccs.requests)
    assert any(path.startswith("/tdx/") for path in pccs.requests)


def test_cache_is_reused_until_expiry_then_refetched(tee, pccs, tmp_path):
    pccs.serve(tee / "tdx_quote_collateral.json")
    cache = CollateralCache(tmp_path / "cache", pccs.url)
    first = cache.get(TDX_FMSPC, TDX_NOW)
    fetches = len(pccs.requests)
    assert fetches == 4 and cache.path("tdx", TDX_FMSPC, "platform").exists()
    second = cache.get(TDX_FMSPC, TDX_NOW + 3600)
    assert len(pccs.requests) == fetches  # served from the cache, no network
    assert second.expires == first.expires
    # past expiry the cache refetches; the PCCS still serves the same (now stale) collateral,
    # which must be refused, never silently used
    with pytest.raises(CollateralError, match="stale"):
        cache.get(TDX_FMSPC, first.expires + 1)
    assert len(pccs.requests) == 2 * fetches


def test_fresh_cache_entry_is_used_and_a_corrupt_one_refetched(tee, pccs, tmp_path):
    cache = CollateralCache(tmp_path, pccs.url)
    # an entry for this FMSPC already sits in the cache, fresh at OUTDATED_NOW
    old = json.loads((tee / "tdx_quote_outdated_collateral.json").read_text())
    target = cache.path("tdx", "90C06F000000", "platform")
    pccs.serve(tee / "tdx_quote_outdated_collateral.json")
    target.write_text(json.dumps(old))
    got = cache.get("90C06F000000", OUTDATED_NOW)
    assert len(pccs.requests) == 0  # fresh at OUTDATED_NOW: used as is
    assert got.fmspc == "90C06F000000"
    # corrupt entry: refetched, not trusted
    target.write_text("{broken")
    cache.get("90C06F000000", OUTDATED_NOW)
    assert len(pccs.requests) == 4
    assert json.loads(target.read_text()) == old


def test_pccs_answer_for_another_fmspc_is_refused(tee, pccs, tmp_path):
    pccs.serve(tee / "near_quote_collateral.json")
    cache = CollateralCache(tmp_path, pccs.url)
    with pytest.raises(CollateralError, match="FMSPC 20A06F000000, not B0C06F000000"):
        cache.get(TDX_FMSPC, TDX_NOW)
    assert not cache.path("tdx", TDX_FMSPC, "platform").exists()


def test_unreachable_pccs_is_one_line(tmp_path):
    cache = CollateralCache(tmp_path, "http://127.0.0.1:9", timeout=2)
    with pytest.raises(CollateralError) as caught:
        cache.get(TDX_FMSPC, TDX_NOW)
    assert "unreachable" in str(caught.value) and "\n" not in str(caught.value)


def test_pccs_404_is_reported(pccs, tmp_path):
    with pytest.raises(CollateralError, match="HTTP 404"):
        fetch_collateral(pccs.url, TDX_FMSPC)


def test_default_cache_dir_honours_xdg(monkeypatch, tmp_path):
    from veil.tee.collateral import default_cache_dir

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert default_cache_dir() == tmp_path / "veil" / "collateral"
    assert os.fspath(default_cache_dir()).endswith("veil/collateral")
