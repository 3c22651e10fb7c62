"""Event-log replay, the RTMR3 app identity, and dstack's compose hash."""

from __future__ import annotations

import hashlib
import json
import math
import struct

import dcap_qvl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from veil.errors import InputError
from veil.tee.compose import canonical_app_compose, compose_hash, raw_compose_hash
from veil.tee.eventlog import parse_event_log, replay, runtime_digest, runtime_event
from veil.tee.identity import app_identity


@pytest.fixture
def report(tee):
    return json.loads((tee / "dstack-quote-report.json").read_text())


def test_replay_reproduces_every_rtmr_of_the_dstack_quote(report):
    events = parse_event_log(report["event_log"])
    quoted = dcap_qvl.parse_quote(bytes.fromhex(report["quote"])).report
    result = replay(events)
    assert result.bad_digests == ()
    assert list(result.rtmrs) == [quoted.rt_mr0, quoted.rt_mr1, quoted.rt_mr2, quoted.rt_mr3]


def test_runtime_digest_is_sha384_of_type_name_payload():
    expected = hashlib.sha384(struct.pack("<I", 0x08000001) + b":app-id:" + b"\x01\x02").digest()
    assert runtime_digest("app-id", b"\x01\x02") == expected
    assert runtime_event("app-id", b"\x01\x02").digest == expected


def test_every_runtime_event_digest_in_the_fixture_matches_its_payload(report):
    for entry in json.loads(report["event_log"]):
        if entry["event_type"] == 0x08000001:
            payload = bytes.fromhex(entry["event_payload"])
            assert runtime_digest(entry["event"], payload).hex() == entry["digest"]


def test_compose_hash_event_is_consistent_with_the_app_id(report):
    """dstack derives the default app id from the compose hash (its first 20 bytes)."""
    app = app_identity(parse_event_log(report["event_log"]))
    assert app.compose_hash is not None and len(bytes.fromhex(app.compose_hash)) == 32
    assert app.app_id == app.compose_hash[:40]
    assert app.os_image_hash is None  # this dstack version does not log it in RTMR3
    assert "LIUM_MINER_HOTKEY" in app.other_events
    # The fixture carries no app-compose.json, so the hash itself cannot be recomputed here;
    # test_compose_hash_matches_rtmr3_event_of_simulated_cvm covers that path end to end.
    assert "app_compose" not in report


def test_replay_starts_from_zero_and_is_order_sensitive():
    a, b = runtime_event("a", b"1"), runtime_event("b", b"2")
    assert replay([]).rtmrs == (bytes(48),) * 4
    assert replay([a, b]).rtmrs[3] != replay([b, a]).rtmrs[3]
    expected = hashlib.sha384(hashlib.sha384(bytes(48) + a.digest).digest() + b.digest).digest()
    assert replay([a, b]).rtmrs[3] == expected


@pytest.mark.parametrize(
    "text",
    [
        "{}",
        "not json",
        '[{"imr": 4, "event_type": 1, "digest": ""}]',
        '[{"imr": 0, "event_type": 1, "digest": "00"}]',
        '[{"imr": 0, "event_type": -1, "digest": ""}]',
        '[{"imr": 0, "event_type": 1, "digest": "zz"}]',
        '["x"]',
    ],
)
def test_bad_event_logs_are_one_line_errors(text):
    with pytest.raises(InputError) as caught:
        parse_event_log(text)
    assert "\n" not in str(caught.value)


# dstack SDK reference values (its test_get_compose_hash.py, matching the JS implementation).
def test_compose_hash_matches_dstack_reference_vectors():
    nested = {
        "runner": "docker-compose",
        "requirements": {"os_version": ">=0.6.0", "gpu_policy": {"rego": "package x"}},
    }
    assert compose_hash(nested) == (
        "0eb176e27fed3e305de09e5e83fec2dacc87485eaa612b0164a2d4d0b289ccb3"
    )
    extra = {
        "runner": "docker-compose",
        "docker_config": {"registry": "docker.io", "future_key": 1},
    }
    assert compose_hash(extra) == (
        "37cd67d88435bdb727b3e240a9a0ff57b7bebbc17eacd573c3d4746aacd104f6"
    )


def test_canonical_form_drops_top_level_nulls_sorts_and_keeps_utf8():
    doc = {"runner": "bash", "name": "测试", "z": None, "a": {"y": 1, "b": None}, "n": math.nan}
    assert canonical_app_compose(doc) == '{"a":{"b":null,"y":1},"name":"测试","runner":"bash"}'
    assert compose_hash(doc) == raw_compose_hash(canonical_app_compose(doc).encode())


def test_compose_without_runner_is_refused():
    with pytest.raises(InputError, match="runner"):
        compose_hash({"name": "x"})


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(10**6), 10**6) | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=10,
)


@settings(max_examples=60, deadline=None)
@given(st.dictionaries(st.text(min_size=1, max_size=6), json_values, max_size=6), st.randoms())
def test_compose_hash_ignores_key_order(doc, rng):
    doc = {**doc, "runner": "docker-compose"}
    items = list(doc.items())
    rng.shuffle(items)
    assert compose_hash(dict(items)) == compose_hash(doc)
    # and the canonical text round-trips to the same document minus top-level nulls
    reparsed = json.loads(canonical_app_compose(doc))
    assert reparsed == {k: v for k, v in doc.items() if v is not None}


def test_compose_hash_matches_rtmr3_event_of_simulated_cvm(tmp_path):
    """A CVM booted with canonical app-compose bytes measures exactly our compose hash."""
    from veil.tee.simulator import AppSpec, simulate

    doc = {"runner": "docker-compose", "docker_compose_file": "services: {}", "name": "demo"}
    canonical = canonical_app_compose(doc).encode()
    spec = AppSpec(compose_hash=hashlib.sha256(canonical).digest())
    evidence = simulate(b"", app=spec)
    app = app_identity(parse_event_log(evidence["event_log"]))
    assert app.compose_hash == compose_hash(doc)
