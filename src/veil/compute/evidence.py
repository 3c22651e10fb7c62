"""What a worker proves and how the pieces are named by hash.

A worker's key is bound into its quote the way dstack binds keys: the 64-byte report
data is `sha512(b"veil-worker:" + worker_address_20_bytes)`. Only a TD that knew the
address when the quote was made can have produced it, so an attestation for that address
cannot be lifted from another machine's quote.

The evidence bundle is the exact byte string the attester hashes (`evidenceHash`) and
publishes: canonical JSON (sorted keys, no spaces) holding the dstack-shaped evidence
text, the GPU evidence text and the Intel collateral text, each exactly as the worker
sent it. Keeping the inner documents as strings keeps their bytes, which matters because
the GPU evidence is bound to the TD by sha256 of its exact bytes (RTMR3).

The measurement hash condenses the TD's five measurement registers into one bytes32 for
the registry: `sha256(MRTD || RTMR0 || RTMR1 || RTMR2 || RTMR3)`, each 48 raw bytes.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from eth_utils import is_address, to_canonical_address

from veil.compute.attestation import GpuModel
from veil.errors import InputError
from veil.tee.policy import bound_report_data
from veil.tee.tdx import Measurements

WORKER_TAG = "veil-worker"
BUNDLE_VERSION = 1

#: NVIDIA claim `hwmodel` prefixes per registry model. H100 and H200 share the GH100
#: die, so the claim alone cannot tell them apart; the attester accepts either prefix.
HWMODEL_PREFIXES: dict[int, tuple[str, ...]] = {
    GpuModel.H100: ("GH100",),
    GpuModel.H200: ("GH100",),
    GpuModel.B200: ("GB100", "GB102", "GB200", "GB202"),
}


def worker_report_data(worker: str) -> bytes:
    """The 64 bytes a worker's quote must carry as report data."""
    if not isinstance(worker, str) or not is_address(worker):
        raise InputError(f"worker {worker!r}: not an address")
    return bound_report_data(WORKER_TAG, to_canonical_address(worker))


def measurement_hash(m: Measurements) -> bytes:
    """sha256(MRTD || RTMR0..3); refuses a quote without TD measurements (SGX)."""
    parts = (m.mr_td, m.rtmr0, m.rtmr1, m.rtmr2, m.rtmr3)
    if any(p is None for p in parts):
        raise InputError("measurements: not a TDX quote (no MRTD/RTMRs)")
    raw = b"".join(bytes.fromhex(p) for p in parts)  # type: ignore[arg-type]
    if len(raw) != 5 * 48:
        raise InputError("measurements: MRTD and RTMRs must be 48 bytes each")
    return hashlib.sha256(raw).digest()


def parse_gpu_model(value: Any) -> int:
    """A registry model id from an int or a name (H100, h200, CPU_TDX...)."""
    if isinstance(value, bool):
        raise InputError(f"gpu model {value!r}: expected a name or id")
    if isinstance(value, int):
        try:
            return int(GpuModel(value))
        except ValueError:
            raise InputError(f"gpu model {value}: unknown id") from None
    if isinstance(value, str):
        name = value.strip().upper().replace("-", "_")
        if name in ("CPU", "NONE", "TDX"):
            name = "CPU_TDX"
        if name in GpuModel.__members__:
            return int(GpuModel[name])
        if name.isdigit():
            return parse_gpu_model(int(name))
    names = ", ".join(GpuModel.__members__)
    raise InputError(f"gpu model {value!r}: expected one of {names}")


@dataclass(frozen=True)
class EvidenceBundle:
    """Everything an attester judged, as the worker sent it (texts, not parsed forms)."""

    evidence: str
    gpu_evidence: str | None = None
    collateral: str | None = None

    def encode(self) -> bytes:
        doc = {
            "version": BUNDLE_VERSION,
            "evidence": self.evidence,
            "gpu_evidence": self.gpu_evidence,
            "collateral": self.collateral,
        }
        return json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()

    def hash(self) -> bytes:
        return hashlib.sha256(self.encode()).digest()

    @classmethod
    def decode(cls, raw: bytes) -> EvidenceBundle:
        """Read a published bundle; refuses anything `encode` would not have produced."""
        try:
            doc = json.loads(raw)
        except (ValueError, UnicodeDecodeError) as error:
            raise InputError(f"evidence bundle: not JSON ({error})") from None
        if not isinstance(doc, dict) or doc.get("version") != BUNDLE_VERSION:
            raise InputError(f"evidence bundle: expected a version {BUNDLE_VERSION} object")
        if set(doc) != {"version", "evidence", "gpu_evidence", "collateral"}:
            raise InputError("evidence bundle: unexpected fields")
        if not isinstance(doc["evidence"], str):
            raise InputError("evidence bundle: 'evidence' must be a string")
        for key in ("gpu_evidence", "collateral"):
            if doc[key] is not None and not isinstance(doc[key], str):
                raise InputError(f"evidence bundle: '{key}' must be a string or null")
        bundle = cls(doc["evidence"], doc["gpu_evidence"], doc["collateral"])
        if bundle.encode() != raw:
            raise InputError("evidence bundle: not in canonical form")
        return bundle
