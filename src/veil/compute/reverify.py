"""Re-verify a registered worker without trusting its attesters.

The registry stores, per worker, the evidence hash and the hashes the attesters vouched
for (quote, measurements, OS image, compose). Anyone can fetch the evidence bundle from
an attester (or any mirror: it is addressed by its sha256), check it hashes to the
on-chain evidence hash, run the same verification under their own policy, and check
that every on-chain hash is what that evidence really yields.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, replace

from eth_utils import to_canonical_address

from veil.compute.evidence import WORKER_TAG, EvidenceBundle, measurement_hash
from veil.compute.registry import WorkerRecord
from veil.errors import InputError
from veil.tee import Policy, verify_evidence
from veil.tee.collateral import from_json_text
from veil.tee.evidence import evidence_from_bytes
from veil.tee.policy import ReportDataRule
from veil.tee.verdict import Verdict


@dataclass(frozen=True)
class Reverification:
    verdict: Verdict
    mismatches: list[str]

    @property
    def ok(self) -> bool:
        return self.verdict.accepted and not self.mismatches


def reverify(bundle_bytes: bytes, record: WorkerRecord, policy: Policy, now: int) -> Reverification:
    """Judge the published evidence of `record` at time `now` under `policy`."""
    if hashlib.sha256(bundle_bytes).digest() != record.evidence_hash:
        raise InputError(
            f"evidence: sha256 is not the on-chain evidence hash 0x{record.evidence_hash.hex()}"
        )
    bundle = EvidenceBundle.decode(bundle_bytes)
    evidence = evidence_from_bytes(bundle.evidence.encode(), "evidence")
    collateral = from_json_text(bundle.collateral) if bundle.collateral else None
    rule = ReportDataRule(
        mode="sha512", tag=WORKER_TAG, content=to_canonical_address(record.worker)
    )
    verdict = verify_evidence(
        evidence,
        collateral,
        replace(policy, report_data=rule),
        now,
        gpu_evidence=bundle.gpu_evidence.encode() if bundle.gpu_evidence else None,
    )
    mismatches: list[str] = []

    def compare(name: str, on_chain: bytes, derived: bytes | None) -> None:
        if derived != on_chain:
            shown = "0x" + derived.hex() if derived is not None else "nothing"
            mismatches.append(f"{name}: chain has 0x{on_chain.hex()}, evidence gives {shown}")

    compare("quote hash", record.quote_hash, hashlib.sha256(evidence.quote).digest())
    if verdict.measurements is not None and verdict.measurements.mr_td is not None:
        compare("measurement hash", record.measurement_hash, measurement_hash(verdict.measurements))
    app = verdict.app
    compare("os image hash", record.os_image_hash,
            bytes.fromhex(app.os_image_hash) if app and app.os_image_hash else None)  # fmt: skip
    compare("compose hash", record.compose_hash,
            bytes.fromhex(app.compose_hash) if app and app.compose_hash else None)  # fmt: skip
    return Reverification(verdict, mismatches)
