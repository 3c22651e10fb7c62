"""The verdict: accepted or not, with every reason, in a form services and people can read.

The attester service signs only accepted verdicts, and publishes them so anyone can
re-run `veil attest verify` on the same evidence. `reasons` holds the refusals (empty
when accepted); `checks` holds what passed and notes about what was not checked, so a
reader sees exactly how far the verification went.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from veil.tee.identity import AppIdentity
from veil.tee.tdx import Measurements

SIMULATED_BANNER = "SIMULATED TEE: development evidence, not hardware-backed"


@dataclass(frozen=True)
class Verdict:
    """The outcome of `verify_evidence`; `accepted` is True only with no refusal reason."""

    accepted: bool
    reasons: list[str]
    checks: list[str]
    tcb_status: str | None
    advisory_ids: list[str]
    measurements: Measurements | None
    app: AppIdentity | None
    simulated: bool
    quote_hash: str
    report_data: str
    tee: str | None = None
    gpu: dict[str, Any] | None = field(default=None)

    def to_json(self) -> dict[str, Any]:
        return {
            "accepted": self.accepted,
            "verdict": self.headline(),
            "simulated": self.simulated,
            **({"warning": SIMULATED_BANNER} if self.simulated else {}),
            "reasons": list(self.reasons),
            "checks": list(self.checks),
            "tee": self.tee,
            "tcb_status": self.tcb_status,
            "advisory_ids": list(self.advisory_ids),
            "quote_hash": self.quote_hash,
            "report_data": self.report_data,
            "measurements": self.measurements.to_json() if self.measurements else None,
            "app": self.app.to_json() if self.app else None,
            "gpu": self.gpu,
        }

    def headline(self) -> str:
        word = "ACCEPTED" if self.accepted else "REFUSED"
        return f"{word} (SIMULATED)" if self.simulated else word

    def render(self) -> str:
        """Human-readable text: headline, reasons, checks, TCB, identity, measurements."""
        lines = [f"verdict: {self.headline()}"]
        if self.simulated:
            lines.append(f"warning: {SIMULATED_BANNER}")
        lines += [f"refused: {reason}" for reason in self.reasons]
        lines += [check if check.startswith("note:") else f"ok: {check}" for check in self.checks]
        advisories = ", ".join(self.advisory_ids) if self.advisory_ids else "none"
        lines.append(f"tcb status: {self.tcb_status or 'unknown'} (advisories: {advisories})")
        lines.append(f"quote sha256: {self.quote_hash}")
        lines.append(f"report data: {self.report_data}")
        if self.app is not None:
            for name in ("app_id", "compose_hash", "instance_id", "os_image_hash", "key_provider"):
                lines.append(f"{name.replace('_', '-')}: {getattr(self.app, name) or '-'}")
            if self.app.gpu_evidence_hash:
                lines.append(f"gpu-evidence-hash: {self.app.gpu_evidence_hash}")
        if self.measurements is not None:
            m = self.measurements
            for name in ("mr_td", "rtmr0", "rtmr1", "rtmr2", "rtmr3", "mr_enclave"):
                value = getattr(m, name)
                if value is not None:
                    lines.append(f"{name}: {value}")
        return "\n".join(lines)
