"""NVIDIA GPU attestation: read claim sets, apply a GPU policy, bind the GPU to its CVM.

An H100/H200/B200 in confidential-computing mode signs an attestation report; NVIDIA's
verifier (the local `nv-attestation-sdk` verifier, or the remote NRAS service) checks
the report's certificate chain, OCSP status and reference measurements (RIMs), and emits
a claim set: `claims[]` with `hwmodel`, `measres`, `secboot`, `dbgstat`, `eat_nonce` and
`x-nvidia-*` results. Checking that chain needs NVIDIA's online services (OCSP, RIM
service, NRAS), so it cannot run offline; here we judge the claim set and its binding.

Binding to the CVM: the CVM extends RTMR3 with a runtime event named
`gpu-evidence-hash` whose payload is sha256 of the GPU evidence file exactly as handed
to the verifier. Because RTMR3 is signed inside the TDX quote, a GPU claim set whose hash
appears there was attested by that very CVM, not copied from another machine.
"""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import asdict, dataclass
from typing import Any

from veil.errors import InputError, VeilError
from veil.tee.document import json_document
from veil.tee.identity import GPU_EVIDENCE_EVENT
from veil.tee.policy import GpuPolicy

NRAS_GPU_URL = "https://nras.attestation.nvidia.com/v3/attest/gpu"

__all__ = ["GPU_EVIDENCE_EVENT", "GpuClaims", "gpu_evidence_hash", "parse_claim_set"]


@dataclass(frozen=True)
class GpuClaims:
    """One GPU's claims, the fields a policy judges plus the verifier's own check results."""

    hwmodel: str
    measres: str
    secboot: bool
    dbgstat: str
    eat_nonce: str | None
    ueid: str | None
    driver_version: str | None
    vbios_version: str | None
    report_signature_verified: bool
    report_nonce_match: bool
    cert_chain_status: str | None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def _claims(item: Any, where: str) -> GpuClaims:
    if not isinstance(item, dict):
        raise InputError(f"{where}: expected an object of claims")
    for key in ("hwmodel", "measres", "secboot", "dbgstat"):
        if key not in item:
            raise InputError(f"{where}: missing claim {key!r}")
    chain = item.get("x-nvidia-gpu-attestation-report-cert-chain")
    return GpuClaims(
        hwmodel=str(item["hwmodel"]),
        measres=str(item["measres"]),
        secboot=item["secboot"] is True,
        dbgstat=str(item["dbgstat"]),
        eat_nonce=item.get("eat_nonce"),
        ueid=item.get("ueid"),
        driver_version=item.get("x-nvidia-gpu-driver-version"),
        vbios_version=item.get("x-nvidia-gpu-vbios-version"),
        report_signature_verified=item.get("x-nvidia-gpu-attestation-report-signature-verified")
        is True,
        report_nonce_match=item.get("x-nvidia-gpu-attestation-report-nonce-match") is True,
        cert_chain_status=chain.get("x-nvidia-cert-status") if isinstance(chain, dict) else None,
    )


def parse_claim_set(
    data: bytes | str | dict[str, Any], name: str = "gpu evidence"
) -> list[GpuClaims]:
    """Read a claim set (`{"claims": [...], ...}`) into one GpuClaims per GPU."""
    parsed = json_document(data, name)
    if not isinstance(parsed, dict) or not isinstance(parsed.get("claims"), list):
        raise InputError(f"{name}: expected an object with a 'claims' list")
    if not parsed["claims"]:
        raise InputError(f"{name}: the claims list is empty")
    result_code = parsed.get("result_code", 0)
    if result_code != 0:
        raise InputError(f"{name}: NVIDIA verifier reported result_code {result_code}")
    return [_claims(item, f"{name} claims[{i}]") for i, item in enumerate(parsed["claims"])]


def gpu_evidence_hash(data: bytes) -> str:
    """What the CVM puts in its `gpu-evidence-hash` RTMR3 event: sha256 of the file bytes."""
    return hashlib.sha256(data).hexdigest()


def gpu_problems(claims: list[GpuClaims], policy: GpuPolicy) -> list[str]:
    """Refusal reasons, one line each, naming the GPU index and the failed claim."""
    problems: list[str] = []
    for index, gpu in enumerate(claims):
        label = f"gpu {index} ({gpu.hwmodel})"
        if gpu.measres != "success":
            problems.append(f"{label}: measurement result is {gpu.measres!r}, not 'success'")
        if policy.require_secure_boot and not gpu.secboot:
            problems.append(f"{label}: secure boot is off")
        if not policy.allow_debug and gpu.dbgstat != "disabled":
            problems.append(f"{label}: debug is {gpu.dbgstat!r}, must be 'disabled'")
        if policy.allowed_hwmodels and gpu.hwmodel not in policy.allowed_hwmodels:
            problems.append(f"{label}: hardware model not allowed by policy")
        if not gpu.report_signature_verified:
            problems.append(f"{label}: NVIDIA verifier did not verify the report signature")
        if policy.nonce is not None and (gpu.eat_nonce or "").lower() != policy.nonce.lower():
            problems.append(f"{label}: nonce {gpu.eat_nonce} is not the expected {policy.nonce}")
    return problems


def binding_problem(evidence: bytes, measured_hash: str | None) -> str | None:
    """None when the CVM's replayed RTMR3 carries this evidence's hash, else why not."""
    expected = gpu_evidence_hash(evidence)
    if measured_hash is None:
        return f"gpu binding: the CVM's event log has no {GPU_EVIDENCE_EVENT} event"
    if measured_hash.lower() != expected:
        return (
            f"gpu binding: RTMR3 {GPU_EVIDENCE_EVENT} is {measured_hash[:16]}..., "
            f"the GPU evidence hashes to {expected[:16]}... (evidence from another machine?)"
        )
    return None


# --- NVIDIA Remote Attestation Service (NRAS): needs network, never used offline -------------


def nras_request(
    nonce: str, evidence_list: list[dict[str, bytes]], arch: str = "HOPPER"
) -> dict[str, Any]:
    """The JSON body NRAS v3 expects: nonce, GPU architecture, and base64 evidence+cert pairs."""
    bytes.fromhex(nonce)  # raises ValueError on a bad nonce before anything is sent
    if len(nonce) != 64:
        raise InputError("nras request: nonce must be 32 bytes (64 hex characters)")
    return {
        "nonce": nonce.lower(),
        "arch": arch,
        "evidence_list": [
            {
                "evidence": base64.b64encode(item["evidence"]).decode(),
                "certificate": base64.b64encode(item["certificate"]).decode(),
            }
            for item in evidence_list
        ],
    }


def _jwt_payload(token: str, where: str) -> dict[str, Any]:
    parts = token.split(".")
    if len(parts) != 3:
        raise InputError(f"{where}: not a JWT")
    padded = parts[1] + "=" * (-len(parts[1]) % 4)
    try:
        payload = json.loads(base64.urlsafe_b64decode(padded))
    except (ValueError, json.JSONDecodeError):
        raise InputError(f"{where}: JWT payload is not base64url JSON") from None
    if not isinstance(payload, dict):
        raise InputError(f"{where}: JWT payload is not an object")
    return payload


def parse_nras_response(body: Any) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    """Split an NRAS (or local verifier `detached_eat`) response into overall and per-GPU claims.

    The shape is `[["JWT", overall_token], {"GPU-0": token, ...}]`. Token signatures
    (ES384 by NVIDIA, keys at NRAS's JWKS endpoint) are NOT verified here: that needs
    NVIDIA's online key set. The claims are decoded so that a policy can judge them.
    """
    if (
        not isinstance(body, list)
        or len(body) != 2
        or not isinstance(body[0], list)
        or len(body[0]) != 2
        or not isinstance(body[1], dict)
    ):
        raise InputError('nras response: expected [["JWT", token], {"GPU-0": token, ...}]')
    overall = _jwt_payload(str(body[0][1]), "nras response overall token")
    per_gpu = {
        str(name): _jwt_payload(str(token), f"nras response {name}")
        for name, token in body[1].items()
    }
    return overall, per_gpu


class NrasError(VeilError):
    """NRAS could not be reached or refused the request."""


def submit_to_nras(
    body: dict[str, Any], url: str = NRAS_GPU_URL, timeout: float = 30.0
) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    """POST the request to NRAS and parse its answer (online only)."""
    import urllib.error  # urllib.request takes ~0.05 s to import; offline checks skip it
    import urllib.request

    request = urllib.request.Request(
        url,
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json", "Accept": "application/json"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            answer = json.loads(response.read())
    except urllib.error.HTTPError as error:
        raise NrasError(f"NRAS {url}: HTTP {error.code}") from None
    except (urllib.error.URLError, OSError) as error:
        raise NrasError(f"NRAS {url}: unreachable ({getattr(error, 'reason', error)})") from None
    except json.JSONDecodeError:
        raise NrasError(f"NRAS {url}: answer is not JSON") from None
    return parse_nras_response(answer)
