"""Compute routes: attest a worker's TEE evidence for ComputeRegistry, collect heartbeats.

`POST /v1/compute/registrations` verifies the full evidence (TDX quote with its event
log, optional NVIDIA GPU evidence, Intel collateral) against the network policy, with
the report data required to bind the worker's address (see veil.compute.evidence). Only
an accepted verdict is signed: an EIP-712 WorkerAttestation naming, by hash, everything
that was checked. The evidence bundle is stored before the answer leaves, and served at
`GET /v1/compute/evidence/<sha256>`, so anyone can re-run the verification later.

Heartbeats (`POST /v1/compute/heartbeats`, and the signed per-epoch logs) are
`veil.services.attester.heartbeats`'s; `GET /v1/compute/workers/<address>` shows the
latest registration and the latest heartbeats.

The record is bounded. A registration is answered from the record, without verifying
anything again, when the same request (same body after canonical JSON) comes for the
same expiry: always when the body names its expiry (as every attester after the first
is asked to), and within the same second otherwise, since a request without an expiry
means "attest me as of now" and a later one must get a later expiry (a worker
re-attesting near expiry may resend identical, e.g. simulated, evidence). Registrations
that expired more than `retention` ago are pruned, except each worker's latest: the
registry refuses them anyway, and the evidence they name stays in the archive.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from eth_account.signers.local import LocalAccount
from eth_utils import to_canonical_address

from veil.attestation import api
from veil.attestation.typed_data import checksum
from veil.compute import attestation
from veil.compute.attestation import GpuModel, RegistryDomain, WorkerAttestation
from veil.compute.evidence import (
    HWMODEL_PREFIXES,
    WORKER_TAG,
    EvidenceBundle,
    measurement_hash,
    parse_gpu_model,
)
from veil.errors import InputError
from veil.services.attester.requests import Refused, int_field, require_object, text_field
from veil.services.attester.store import Store
from veil.tee import Policy, verify_evidence
from veil.tee.collateral import Collateral, CollateralError, from_json_text
from veil.tee.evidence import Evidence, evidence_from_bytes
from veil.tee.gpu import parse_claim_set
from veil.tee.policy import ReportDataRule
from veil.tee.simulator import is_simulated_quote
from veil.tee.tdx import parse_measurements

DAY = 86_400

CollateralSource = Callable[[str, int, str], Collateral]  # (fmspc, now, tee)


class EvidenceArchive:
    """Evidence bundles by sha256, in the attester's SQLite file (its own table)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._local = threading.local()
        self._db().execute(
            "CREATE TABLE IF NOT EXISTS compute_evidence (hash TEXT PRIMARY KEY,"
            " bundle BLOB NOT NULL, stored_at REAL NOT NULL)"
        )

    def _db(self) -> sqlite3.Connection:
        db = getattr(self._local, "db", None)
        if db is None:
            db = sqlite3.connect(self.path, timeout=30, isolation_level=None)
            db.execute("PRAGMA synchronous=FULL")  # as the Store: answered means on disk
            self._local.db = db
        return db

    def put(self, digest: bytes, bundle: bytes) -> None:
        self._db().execute(
            "INSERT OR IGNORE INTO compute_evidence (hash, bundle, stored_at) VALUES (?, ?, ?)",
            ("0x" + digest.hex(), bundle, time.time()),
        )

    def get(self, digest_hex: str) -> bytes | None:
        row = (
            self._db()
            .execute("SELECT bundle FROM compute_evidence WHERE hash = ?", (digest_hex.lower(),))
            .fetchone()
        )
        return bytes(row[0]) if row else None


def _address(body: dict[str, Any], name: str) -> str:
    try:
        return checksum(text_field(body, name, 42), name)
    except InputError as error:
        raise Refused(400, str(error)) from None


def _optional_text(body: dict[str, Any], name: str) -> str | None:
    if body.get(name) is None:
        return None
    return text_field(body, name, api.MAX_EVIDENCE_CHARS)


@dataclass
class ComputeService:
    """Attests workers for one ComputeRegistry (the EIP-712 domain) under one policy."""

    policy: Policy
    domain: RegistryDomain
    signer: LocalAccount
    store: Store
    validity: int = DAY
    max_skew: int = 300
    clock: Callable[[], int] = field(default=lambda: int(time.time()))
    # Expiries are compared with block.timestamp on chain; collateral and heartbeats with
    # real time. The two agree on a live network, not on a devnet that has time-travelled.
    chain_clock: Callable[[], int] | None = None
    collateral_source: CollateralSource | None = None
    retention: int | None = None  # seconds; None keeps every registration
    # told of every registration signed here (the heartbeat checks keep expiries in memory)
    on_registered: Callable[[str, int], None] | None = None
    recent_heartbeats: Callable[[str], list[dict[str, Any]]] = lambda _worker: []
    archive: EvidenceArchive = field(init=False)

    def __post_init__(self) -> None:
        self.archive = EvidenceArchive(self.store.path)
        self.prune()

    def prune(self) -> int:
        """Apply the retention now; returns how many rows went."""
        if self.retention is None:
            return 0
        return self.store.prune_registrations(self.clock() - self.retention)

    # --- registrations -------------------------------------------------------------

    def register(self, body: Any) -> dict[str, Any]:
        body = require_object(body, api.REGISTRATION_FIELDS)
        request_hash = (
            "0x"
            + hashlib.sha256(
                json.dumps(body, sort_keys=True, separators=(",", ":")).encode()
            ).hexdigest()
        )
        worker = _address(body, "worker")
        provider = _address(body, "provider")
        try:
            model = parse_gpu_model(body["gpu_model"])
        except InputError as error:
            raise Refused(400, str(error)) from None
        count = int_field(body, "gpu_count", 0, 2**16 - 1)
        bundle = EvidenceBundle(
            text_field(body, "evidence", api.MAX_EVIDENCE_CHARS),
            _optional_text(body, "gpu_evidence"),
            _optional_text(body, "collateral"),
        )
        now = self.clock()
        expiry = self._expiry(body, self._chain_now(now))
        seen = self.store.find_registration(request_hash, expiry)
        if seen is not None:
            return dict(json.loads(seen["answer"]))
        try:
            evidence = evidence_from_bytes(bundle.evidence.encode(), "evidence")
            collateral = self._collateral(evidence, bundle.collateral, now)
            gpu_bytes = bundle.gpu_evidence.encode() if bundle.gpu_evidence else None
            self._check_gpu_request(model, count, gpu_bytes)
            binding = to_canonical_address(worker)
            rule = ReportDataRule(mode="sha512", tag=WORKER_TAG, content=binding)
            policy = replace(self.policy, report_data=rule)
            verdict = verify_evidence(evidence, collateral, policy, now, gpu_evidence=gpu_bytes)
        except InputError as error:
            raise Refused(400, str(error)) from None
        if not verdict.accepted:
            raise Refused(422, "evidence refused: " + "; ".join(verdict.reasons))
        app = verdict.app
        if app is None or not app.os_image_hash or not app.compose_hash:
            raise Refused(422, "evidence refused: the replayed event log names no os-image-hash"
                               " and compose-hash, which the registry needs")  # fmt: skip
        if (
            gpu_bytes is not None
            and app.gpu_evidence_hash != attestation.evidence_hash(gpu_bytes).hex()
        ):
            raise Refused(422, "evidence refused: the GPU evidence is not bound to this TD"
                               " (no matching gpu-evidence-hash event in RTMR3)")  # fmt: skip
        assert verdict.measurements is not None
        try:
            measured = measurement_hash(verdict.measurements)
        except InputError as error:
            raise Refused(422, f"evidence refused: {error}") from None

        signed = WorkerAttestation(
            worker=worker,
            provider=provider,
            quote_hash=bytes.fromhex(verdict.quote_hash),
            measurement_hash=measured,
            os_image_hash=bytes.fromhex(app.os_image_hash),
            compose_hash=bytes.fromhex(app.compose_hash),
            gpu_model=model,
            gpu_count=count,
            expiry=expiry,
            evidence_hash=bundle.hash(),
        )
        signature = attestation.sign(signed, self.domain, self.signer.key)
        digest = attestation.digest(signed, self.domain)
        evidence_hex = "0x" + signed.evidence_hash.hex()
        answer = api.RegistrationAnswer(
            attestation=signed.to_json(),
            signature=signature,
            signer=self.signer.address,
            digest="0x" + digest.hex(),
            chain_id=self.domain.chain_id,
            registry=self.domain.registry,
            evidence_hash=evidence_hex,
            simulated=verdict.simulated,
            verdict=verdict.to_json(),
        ).to_json()
        record = {**signed.to_json(), "signature": answer["signature"], "digest": answer["digest"]}
        self.archive.put(signed.evidence_hash, bundle.encode())
        stored = self.store.record_registration(
            {
                "worker": worker,
                "provider": provider,
                "evidence_hash": evidence_hex,
                "quote_hash": "0x" + verdict.quote_hash,
                "verdict": json.dumps(verdict.to_json()),
                "attestation": json.dumps(record),
                "expiry": expiry,
                "answer": json.dumps(answer),
                "request_hash": request_hash,
            }
        )
        if self.on_registered is not None:
            self.on_registered(worker, int(stored["expiry"]))
        return dict(json.loads(stored["answer"]))  # the first answer, if a twin raced us

    def _chain_now(self, now: int) -> int:
        return self.chain_clock() if self.chain_clock is not None else now

    def _expiry(self, body: dict[str, Any], now: int) -> int:
        """The worker may ask for an expiry (so M attesters sign one identical struct)."""
        if "expiry" not in body:
            return now + self.validity
        expiry = int_field(body, "expiry", 0, 2**64 - 1)
        if not now < expiry <= now + self.validity:
            limit = f"at most {self.validity} s later"
            raise Refused(422, f"expiry {expiry}: must be after now ({now}) and {limit}")
        return expiry

    def _collateral(self, evidence: Evidence, text: str | None, now: int) -> Collateral | None:
        """The worker's collateral (Intel-signed, so safe to take), else our PCCS cache."""
        if text is not None:
            return from_json_text(text, "collateral")
        if is_simulated_quote(evidence.quote) or self.collateral_source is None:
            return None
        measurements = parse_measurements(evidence.quote)
        if measurements.fmspc is None:
            return None
        try:
            return self.collateral_source(measurements.fmspc, now, measurements.tee)
        except CollateralError as error:
            raise Refused(503, f"collateral unavailable: {error}") from None

    @staticmethod
    def _check_gpu_request(model: int, count: int, gpu: bytes | None) -> None:
        if model == GpuModel.CPU_TDX:
            if count != 0 or gpu is not None:
                raise Refused(422, "gpu: model CPU_TDX takes gpu_count 0 and no GPU evidence")
            return
        name = GpuModel(model).name
        if gpu is None:
            raise Refused(422, f"gpu: model {name} needs GPU evidence")
        claims = parse_claim_set(gpu)
        if len(claims) != count:
            raise Refused(422, f"gpu: gpu_count {count}, but the evidence has {len(claims)} GPU(s)")
        prefixes = HWMODEL_PREFIXES.get(model, ())
        for claim in claims:
            if not claim.hwmodel.upper().startswith(prefixes):
                raise Refused(422, f"gpu: hwmodel {claim.hwmodel!r} is not a {name}")

    # --- reads ---------------------------------------------------------------------

    def worker_view(self, address: str) -> dict[str, Any]:
        try:
            worker = checksum(address, "worker")
        except InputError as error:
            raise Refused(400, str(error)) from None
        registration = self.store.latest_registration(worker)
        if registration is None:
            raise Refused(404, f"worker {worker}: never attested here")
        return {
            "worker": worker,
            "registration": {
                "provider": registration["provider"],
                "evidence_hash": registration["evidence_hash"],
                "quote_hash": registration["quote_hash"],
                "expiry": registration["expiry"],
                "signed_at": registration["signed_at"],
                "attestation": json.loads(registration["attestation"]),
            },
            "heartbeats": self.recent_heartbeats(worker),
        }

    def evidence(self, digest_hex: str) -> bytes:
        text = digest_hex.lower()
        if len(text) != 66 or not text.startswith("0x"):
            raise Refused(400, "evidence hash: expected 0x + 64 hex digits")
        bundle = self.archive.get(text)
        if bundle is None:
            raise Refused(404, f"evidence {text}: not stored here")
        return bundle
