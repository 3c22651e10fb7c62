"""Attestation verification: Intel TDX quotes (dcap-qvl), event-log replay, app identity,
policy, NVIDIA GPU claims and a development simulator. Start at `verify_evidence`."""

from veil.attest.collateral import Collateral, CollateralCache, load_collateral
from veil.attest.evidence import Evidence, load_evidence
from veil.attest.policy import DEFAULT_POLICY, Policy, load_policy
from veil.attest.verdict import Verdict
from veil.attest.verification import verify_evidence

__all__ = [
    "DEFAULT_POLICY",
    "Collateral",
    "CollateralCache",
    "Evidence",
    "Policy",
    "Verdict",
    "load_collateral",
    "load_evidence",
    "load_policy",
    "verify_evidence",
]
