"""Verify an AI gateway before trusting it, then every answer it gives: fail closed.

Order of trust: a fresh random nonce goes out; the report that comes back must carry that
nonce and the signing key in its quote's report data (vllm-proxy layout: address padded to
32 bytes ‖ nonce), and the quote must pass veil's attestation policy (signature chain or
trusted simulator key, TCB, allowed compose hash and OS image). Only then is the signing
address believed, and each response must carry a signature by it over the exact request and
response bytes, with an EIP-712 receipt whose attestation digest matches the verified quote.

Every refusal is a `VerificationRefused` with a short `reason` code and a message, so a
program (or a test) can tell a tampered byte from a replayed nonce.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from dataclasses import dataclass, replace
from typing import Any

from veil.errors import VeilError
from veil.inference.receipt import (
    ECDSA,
    ED25519,
    SIGNING_ALGOS,
    STREAM_HASH_PREFIX,
    Receipt,
    SignatureProblem,
    address_bytes,
    attestation_digest,
    signature_text,
    verify_receipt_signature,
    verify_text_signature,
)
from veil.tee.collateral import Collateral, CollateralCache
from veil.tee.evidence import evidence_from_json
from veil.tee.identity import AppIdentity
from veil.tee.policy import DEFAULT_POLICY, Policy
from veil.tee.simulator import is_simulated_quote, parse_simulated_quote
from veil.tee.tdx import Measurements, parse_measurements
from veil.tee.verdict import Verdict
from veil.tee.verification import verify_evidence


class VerificationRefused(VeilError):
    """The gateway or one of its answers failed verification; nothing from it is trusted."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(f"refused ({reason}): {message}")
        self.reason = reason


def quote_measurements(quote: bytes) -> Measurements:
    """The quote's measurements, from a simulator quote or a real DCAP quote."""
    if is_simulated_quote(quote):
        return parse_simulated_quote(quote).measurements
    return parse_measurements(quote)


def attested_identity(measurements: Measurements, app: AppIdentity | None) -> dict[str, str | None]:
    """What the attestation digest covers: boot measurements and the RTMR3 app identity."""
    return {
        "mr_td": measurements.mr_td,
        "rtmr0": measurements.rtmr0,
        "rtmr1": measurements.rtmr1,
        "rtmr2": measurements.rtmr2,
        "app_id": app.app_id if app else None,
        "compose_hash": app.compose_hash if app else None,
        "os_image_hash": app.os_image_hash if app else None,
    }


def fresh_nonce() -> bytes:
    return secrets.token_bytes(32)


@dataclass(frozen=True)
class AttestedGateway:
    """A gateway whose report verified: its keys are now trusted to sign answers.

    `verdict` is None only for `check_stored_receipt`, which checks signatures alone.
    """

    signing_algo: str
    signing_address: str
    ecdsa_address: str
    attestation_digest: str
    verdict: Verdict | None
    nonce: str

    @property
    def simulated(self) -> bool:
        return self.verdict is not None and self.verdict.simulated


def verify_report(
    report: Any,
    nonce: bytes,
    policy: Policy = DEFAULT_POLICY,
    collateral: Collateral | CollateralCache | None = None,
    *,
    signing_algo: str = ECDSA,
    now: int | None = None,
) -> AttestedGateway:
    """Check one `/v1/attestation/report` answer against the nonce we sent and a policy."""
    if not isinstance(report, dict):
        raise VerificationRefused("bad_report", "the report is not a JSON object")
    algo = report.get("signing_algo")
    address = report.get("signing_address")
    quote_hex = report.get("intel_quote")
    if algo != signing_algo or not isinstance(address, str) or not isinstance(quote_hex, str):
        raise VerificationRefused(
            "bad_report", f"expected signing_algo {signing_algo}, signing_address, intel_quote"
        )
    if report.get("request_nonce") != nonce.hex():
        raise VerificationRefused(
            "nonce_mismatch", "the report answers another nonce than the one sent (replayed?)"
        )
    try:
        quote = bytes.fromhex(quote_hex.removeprefix("0x"))
        evidence = evidence_from_json(
            {
                "quote": quote_hex,
                "event_log": report.get("event_log"),
                "vm_config": report.get("vm_config"),
                "simulated": bool(report.get("simulated", False)),
            },
            "attestation report",
        )
        measurements = quote_measurements(quote)
        bound_key = address_bytes(address)
    except (VeilError, ValueError) as error:
        raise VerificationRefused("bad_report", str(error)) from None
    data = bytes.fromhex(measurements.report_data)
    if data[32:] != nonce:
        raise VerificationRefused(
            "nonce_mismatch", "the quote's report data carries another nonce (replayed quote)"
        )
    if data[:32] != bound_key.ljust(32, b"\0"):
        raise VerificationRefused(
            "key_not_bound",
            f"the quote binds another signing key than {address} (report for another key)",
        )
    bound = policy.binding(nonce=data)
    gpu_payload = report.get("nvidia_payload")
    gpu_evidence = None
    if gpu_payload is not None:
        if not isinstance(gpu_payload, str):
            raise VerificationRefused("bad_report", "nvidia_payload must be JSON text")
        gpu_evidence = gpu_payload.encode()
        # the GPU's own report must carry our nonce too, not one replayed from earlier
        bound = replace(bound, gpu=replace(bound.gpu, nonce=nonce.hex()))
    try:
        found = collateral if isinstance(collateral, Collateral) else None
        if isinstance(collateral, CollateralCache) and not is_simulated_quote(quote):
            # fetched for this quote's platform, or reused from disk while still fresh
            if measurements.fmspc is None:
                raise VerificationRefused("bad_report", "the quote names no FMSPC")
            moment = now if now is not None else int(time.time())
            try:
                found = collateral.get(measurements.fmspc, moment, tee=measurements.tee)
            except VeilError as error:
                raise VerificationRefused("collateral_unavailable", str(error)) from None
        verdict = verify_evidence(evidence, found, bound, now, gpu_evidence=gpu_evidence)
    except VerificationRefused:
        raise
    except VeilError as error:
        raise VerificationRefused("bad_report", str(error)) from None
    if not verdict.accepted:
        raise VerificationRefused("quote_refused", "; ".join(verdict.reasons))
    ecdsa_address = address if algo == ECDSA else str(report.get("ecdsa_signing_address", ""))
    digest = (
        attestation_digest(attested_identity(measurements, verdict.app), ecdsa_address)
        if ecdsa_address
        else ""
    )
    return AttestedGateway(algo, address, ecdsa_address, digest, verdict, nonce.hex())


@dataclass(frozen=True)
class CheckedResponse:
    receipt_id: str
    text: str
    receipt: Receipt


def check_signature(
    gateway: AttestedGateway,
    answer: Any,
    request_body: bytes,
    response_body: bytes | None = None,
    *,
    response_hash: str | None = None,
) -> CheckedResponse:
    """Check a `/v1/signature/{id}` answer against the bytes sent and received."""
    if not isinstance(answer, dict):
        raise VerificationRefused("bad_signature", "the signature answer is not a JSON object")
    request_hash = hashlib.sha256(request_body).hexdigest()
    if response_hash is None:
        response_hash = hashlib.sha256(response_body or b"").hexdigest()
    expected = signature_text(request_hash, response_hash)
    text = answer.get("text")
    if text != expected:
        raise VerificationRefused(
            "response_tampered",
            "the signed hashes differ from the bytes exchanged (a byte was changed in transit)",
        )
    if (
        answer.get("signing_algo") != gateway.signing_algo
        or str(answer.get("signing_address", "")).lower() != gateway.signing_address.lower()
    ):
        raise VerificationRefused(
            "signer_not_attested",
            f"signed by {answer.get('signing_address')},"
            f" not the attested {gateway.signing_address}",
        )
    try:
        verify_text_signature(
            expected,
            str(answer.get("signature", "")),
            gateway.signing_address,
            gateway.signing_algo,
        )
    except (SignatureProblem, ValueError) as error:
        raise VerificationRefused("bad_signature", str(error)) from None
    block = answer.get("receipt")
    if not isinstance(block, dict) or not isinstance(block.get("message"), dict):
        raise VerificationRefused("bad_receipt", "no EIP-712 receipt in the signature answer")
    try:
        receipt = Receipt.from_message(block["message"])
        verify_receipt_signature(receipt, str(block.get("signature", "")), gateway.ecdsa_address)
    except (SignatureProblem, ValueError) as error:
        raise VerificationRefused("bad_receipt", str(error)) from None
    if (receipt.request_hash, receipt.response_hash) != (request_hash, response_hash):
        raise VerificationRefused("bad_receipt", "the receipt covers other bytes")
    if receipt.attestation_digest != gateway.attestation_digest:
        raise VerificationRefused(
            "bad_receipt", "the receipt names another attestation than the verified one"
        )
    return CheckedResponse(str(answer.get("id", receipt.id)), expected, receipt)


class StreamCheck:
    """Follows a streamed answer line by line and checks each running-hash comment."""

    def __init__(self) -> None:
        self.running = hashlib.sha256()
        self.pending = b""
        self.hashes = 0
        self.saw_done = False
        self.finished = False

    def feed(self, chunk: bytes) -> bytes:
        """Consume bytes; return the complete lines now checked (what may go to the reader)."""
        self.pending += chunk
        out = []
        while (end := self.pending.find(b"\n")) >= 0:
            line, self.pending = self.pending[: end + 1], self.pending[end + 1 :]
            if line.startswith(STREAM_HASH_PREFIX):
                claimed = line[len(STREAM_HASH_PREFIX) :].strip().decode(errors="replace")
                if claimed != self.running.hexdigest():
                    raise VerificationRefused(
                        "response_tampered", "a streamed chunk's running hash does not match"
                    )
                self.hashes += 1
            elif line.rstrip() == b"data: [DONE]":
                self.saw_done = True
            self.running.update(line)
            out.append(line)
        return b"".join(out)

    def finish(self) -> str:
        self.finished = True
        if self.pending:
            self.running.update(self.pending)
        if self.hashes == 0:
            raise VerificationRefused("unsigned_response", "the stream carries no running hash")
        return self.running.hexdigest()


def check_stored_receipt(answer: Any, request_body: bytes, response_body: bytes) -> CheckedResponse:
    """Check a saved exchange against its `/v1/signature/{id}` answer, without attesting.

    For answers from before a gateway restart (its key is gone, no report can bind it any
    more): both signatures must be by the receipt's own signing address and cover exactly
    these bytes. Whether that address was attested is what the receipt's attestation digest
    and a report kept from that time tell.
    """
    if not isinstance(answer, dict) or not isinstance(answer.get("receipt"), dict):
        raise VerificationRefused("bad_receipt", "not a signature answer with a receipt")
    block = answer["receipt"]
    address = str(block.get("signing_address", ""))
    algo = str(answer.get("signing_algo", ""))
    signer = address if algo == ECDSA else str(answer.get("signing_address", ""))
    try:
        receipt = Receipt.from_message(block.get("message") or {})
    except SignatureProblem as error:
        raise VerificationRefused("bad_receipt", str(error)) from None
    gateway = AttestedGateway(
        signing_algo=algo,
        signing_address=signer,
        ecdsa_address=address,
        attestation_digest=receipt.attestation_digest,
        verdict=None,  # not attested: see the docstring
        nonce="",
    )
    return check_signature(gateway, answer, request_body, response_body)


def check_algo(signing_algo: str) -> str:
    if signing_algo not in SIGNING_ALGOS:
        raise VerificationRefused("bad_request", f"signing algo {signing_algo!r}: ecdsa|ed25519")
    return signing_algo


def with_simulator(policy: Policy) -> Policy:
    """The policy with simulated TEEs allowed: for laptops and CI only, and it says so."""
    return replace(policy, allow_simulated=True)


__all__ = [
    "ECDSA",
    "ED25519",
    "AttestedGateway",
    "CheckedResponse",
    "VerificationRefused",
    "check_signature",
    "fresh_nonce",
    "verify_report",
]
