"""Policy TOML: defaults are strict, every field parses, typos and bad values are refused."""

from __future__ import annotations

import hashlib

import pytest

from veil.errors import InputError
from veil.tee.policy import DEFAULT_POLICY, Policy, bound_report_data, load_policy

EXAMPLE = """
allowed_tee = ["tdx"]
accepted_tcb_statuses = ["UpToDate", "SWHardeningNeeded"]
accepted_advisories = ["INTEL-SA-00615"]
max_collateral_age = 86400
allow_simulated = false
require_event_log = true
allowed_compose_hashes = ["3763bc34552cf3a27ff71ad5f7a90471562a1a2df552dfc1998cba2d60da27e7"]
allowed_app_ids = ["3763bc34552cf3a27ff71ad5f7a90471562a1a2d"]

[[os_images]]
name = "dstack-0.5"
os_image_hash = "14ad42d0270b444eaeb53918a5a94d9b17eec7a817cd336173b17c5327541c67"

[[os_images]]
name = "by-measurement"
mrtd = "{m}"
rtmr0 = "{m}"
rtmr1 = "{m}"
rtmr2 = "{m}"

[report_data]
mode = "sha512"
tag = "veil-worker"

[gpu]
required = true
allowed_hwmodels = ["GH100 A01 GSP BROM"]
nonce = "1111111111111111111111111111111111111111111111111111111111111111"
""".format(m="ab" * 48)


def test_defaults_are_strict():
    assert DEFAULT_POLICY.allowed_tee == ("tdx",)
    assert DEFAULT_POLICY.accepted_tcb_statuses == ("UpToDate",)
    assert DEFAULT_POLICY.accepted_advisories == ()
    assert DEFAULT_POLICY.allow_simulated is False
    assert DEFAULT_POLICY.allow_debug is False
    assert DEFAULT_POLICY.max_collateral_age == 30 * 24 * 3600
    assert not DEFAULT_POLICY.needs_event_log()


def test_full_example_parses(tmp_path):
    path = tmp_path / "policy.toml"
    path.write_text(EXAMPLE)
    policy = load_policy(path)
    assert policy.accepted_tcb_statuses == ("UpToDate", "SWHardeningNeeded")
    assert policy.max_collateral_age == 86400
    assert len(policy.os_images) == 2 and policy.os_images[1].rtmr2 == "ab" * 48
    assert policy.report_data.mode == "sha512" and policy.report_data.tag == "veil-worker"
    assert policy.gpu.required and policy.gpu.allowed_hwmodels == ("GH100 A01 GSP BROM",)
    assert policy.needs_event_log()


def test_docs_example_policy_parses(tmp_path):
    """The policy shown in docs/provider.md must stay valid."""
    from pathlib import Path

    doc = (Path(__file__).resolve().parents[2] / "docs" / "provider.md").read_text()
    block = doc.split("```toml\n", 1)[1].split("```", 1)[0]
    path = tmp_path / "doc.toml"
    path.write_text(block)
    assert isinstance(load_policy(path), Policy)


@pytest.mark.parametrize(
    "text, needle",
    [
        ("allow_simulatd = true", "unknown key(s) allow_simulatd"),
        ("allowed_tee = ['sev']", "allowed_tee"),
        ("max_collateral_age = -1", "max_collateral_age"),
        ("allow_simulated = 'yes'", "allow_simulated"),
        ("allowed_compose_hashes = ['abcd']", "expected 32 bytes"),
        ("allowed_compose_hashes = ['zz']", "not hex"),
        ("[[os_images]]\nname = 'x'", "give os_image_hash, or all of"),
        ("[[os_images]]\nmrtd = '00'", "expected 48 bytes"),
        ("[report_data]\nmode = 'sha256'", "mode"),
        ("[report_data]\nmode = 'sha512'", "needs a tag"),
        ("[gpu]\nallow = true", "unknown key(s) allow"),
        ("this is = not toml =", "not TOML"),
    ],
)
def test_bad_policies_are_one_line_errors(tmp_path, text, needle):
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(InputError) as caught:
        load_policy(path)
    message = str(caught.value)
    assert needle in message and str(path) in message and "\n" not in message


def test_missing_policy_file(tmp_path):
    with pytest.raises(InputError, match="cannot read"):
        load_policy(tmp_path / "absent.toml")


def test_bound_report_data_is_dstack_style_sha512():
    key = b"\x02" * 33
    assert bound_report_data("app-key", key) == hashlib.sha512(b"app-key:" + key).digest()


def test_binding_fills_in_key_or_nonce():
    policy = Policy().binding(content=b"k")
    assert policy.report_data.mode == "sha512" and policy.report_data.content == b"k"
    nonce = Policy().binding(nonce=b"\x01\x02")
    assert nonce.report_data.expected() == b"\x01\x02" + bytes(62)
