"""Attestation verification: Intel TDX quotes (dcap-qvl), event-log replay, app identity,
policy, NVIDIA GPU claims and a development simulator. Start at `verify_evidence`."""

from veil.tee.collateral import Collateral, CollateralCache, load_collateral
from veil.tee.evidence import Evidence, load_evidence
from veil.tee.policy import DEFAULT_POLICY, Policy, load_policy
from veil.tee.verdict import Verdict
from veil.tee.verification import verify_evidence

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
