"""Evidence naming (report data, measurement hash, bundle) and re-verification."""

from __future__ import annotations

import hashlib
import json
import tomllib

import pytest
from eth_account import Account
from eth_utils import to_canonical_address

from veil.compute.attestation import GpuModel, RegistryDomain
from veil.compute.evidence import (
    EvidenceBundle,
    measurement_hash,
    parse_gpu_model,
    worker_report_data,
)
from veil.compute.registry import WorkerRecord
from veil.compute.reverify import reverify
from veil.errors import InputError
from veil.network.genesis import devnet_allowlist, devnet_policy
from veil.tee.evidence import evidence_from_bytes
from veil.tee.policy import policy_from_dict
from veil.tee.simulator import parse_simulated_quote, simulate

WORKER = Account.from_key(b"\x41" * 32)
DOMAIN = RegistryDomain(73217, "0x" + "12" * 20)
POLICY = policy_from_dict(tomllib.loads(devnet_policy()))


def test_report_data_is_sha512_of_tag_and_address() -> None:
    expected = hashlib.sha512(b"veil-worker:" + to_canonical_address(WORKER.address)).digest()
    assert worker_report_data(WORKER.address) == expected
    assert worker_report_data(WORKER.address.lower()) == expected
    with pytest.raises(InputError):
        worker_report_data("0x1234")


def test_measurement_hash_covers_mrtd_and_all_rtmrs() -> None:
    quote = bytes.fromhex(simulate(b"\x00" * 64)["quote"])
    m = parse_simulated_quote(quote).measurements
    raw = b"".join(bytes.fromhex(v) for v in (m.mr_td, m.rtmr0, m.rtmr1, m.rtmr2, m.rtmr3))
    assert measurement_hash(m) == hashlib.sha256(raw).digest()


def test_gpu_model_names_and_ids() -> None:
    assert parse_gpu_model("h100") == GpuModel.H100
    assert parse_gpu_model("cpu") == GpuModel.CPU_TDX
    assert parse_gpu_model(3) == GpuModel.B200
    for bad in ("TPU", 9, True, None):
        with pytest.raises(InputError):
            parse_gpu_model(bad)


def test_bundle_is_canonical_and_round_trips() -> None:
    bundle = EvidenceBundle('{"quote": "00"}', None, "{}")
    raw = bundle.encode()
    assert EvidenceBundle.decode(raw) == bundle
    assert bundle.hash() == hashlib.sha256(raw).digest()
    loose = json.dumps(json.loads(raw), indent=1).encode()
    with pytest.raises(InputError, match="canonical"):
        EvidenceBundle.decode(loose)
    with pytest.raises(InputError):
        EvidenceBundle.decode(b'{"version": 2}')


def _record(bundle: EvidenceBundle, **change: object) -> WorkerRecord:
    evidence = evidence_from_bytes(bundle.evidence.encode())
    m = parse_simulated_quote(evidence.quote).measurements
    images, composes = devnet_allowlist()
    fields: dict[str, object] = {
        "worker": WORKER.address, "provider": "0x" + "ab" * 20, "gpu_model": 0, "gpu_count": 0,
        "expiry": 2_000_000_000, "evidence_hash": bundle.hash(),
        "quote_hash": hashlib.sha256(evidence.quote).digest(),
        "measurement_hash": measurement_hash(m), "status": 1, "os_image_hash": images[0],
        "compose_hash": composes[0], "collateral": 1, "active": True,
    }  # fmt: skip
    fields.update(change)
    return WorkerRecord(**fields)  # type: ignore[arg-type]


def test_reverify_accepts_the_real_thing_and_names_every_mismatch() -> None:
    bundle = EvidenceBundle(json.dumps(simulate(worker_report_data(WORKER.address))))
    assert reverify(bundle.encode(), _record(bundle), POLICY, 0).ok

    lying = _record(bundle, os_image_hash=b"\x01" * 32, measurement_hash=b"\x02" * 32)
    result = reverify(bundle.encode(), lying, POLICY, 0)
    assert not result.ok and result.verdict.accepted
    assert [m.split(":")[0] for m in result.mismatches] == ["measurement hash", "os image hash"]

    other = Account.from_key(b"\x42" * 32)
    stolen = reverify(bundle.encode(), _record(bundle, worker=other.address), POLICY, 0)
    assert not stolen.ok and any("report data" in r for r in stolen.verdict.reasons)

    with pytest.raises(InputError, match="on-chain evidence hash"):
        reverify(bundle.encode() + b" ", _record(bundle), POLICY, 0)
