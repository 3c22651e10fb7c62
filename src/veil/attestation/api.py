"""The attester's HTTP API, defined once: the server serves it and the one client calls it.

An attester is a service anyone may run and anyone may call (holders binding receivers,
worker agents, auditors re-fetching evidence), so the contract between them is written in
one place: the paths, which fields each request may and must carry, the body limits, the
shape of every answer, and the shape of every error (`code`, `message`, `request_id`, and
`error` for older clients). `veil.services.attester` checks requests against these
definitions and builds its answers with them; `veil.attestation.client` builds requests
and reads answers with them. A path or field changed here changes both sides.

Answers carry statements as JSON (the binding's signature, the worker attestation's
fields); what a statement means is its domain's (`veil.migration.attestation`,
`veil.compute.attestation`), which reads them back and checks every signature itself.
"""

from __future__ import annotations

import dataclasses
from dataclasses import asdict, dataclass
from http import HTTPStatus
from typing import Any

from veil.attestation.typed_data import Signature
from veil.errors import InputError

HEALTH = "/v1/health"
BINDINGS = "/v1/migration/bindings"
REGISTRATIONS = "/v1/compute/registrations"
HEARTBEATS = "/v1/compute/heartbeats"
#: GET `HEARTBEATS?epoch=N`: the attester's signed log of epoch N (NDJSON, see
#: `veil.compute.heartbeat_log`).
HEARTBEAT_LOG_TYPE = "application/x-ndjson"
#: Why a heartbeat was refused: the `code` of its error answer, and the reason its
#: refusal is tallied under in the epoch's log.
HEARTBEAT_REFUSALS = (
    "bad_signature",
    "unregistered",
    "replayed",
    "duplicate",
    "future",
    "stale",
    "wrong_epoch",
    "unknown_block",
    "too_frequent",
)
#: GET prefixes: the rest of the path is the evidence hash (0x + 64 hex) or the address.
EVIDENCE_PREFIX = "/v1/compute/evidence/"
WORKERS_PREFIX = "/v1/compute/workers/"

MAX_BODY = 16 * 1024  # every POST route but registrations
MAX_REGISTRATION_BODY = 512 * 1024  # TDX quote, event log, GPU evidence and collateral
MAX_EVIDENCE_CHARS = 128 * 1024  # each evidence text inside a registration

#: Statuses that mean "the same request, later": the attester did no work for it.
RETRY_STATUSES = frozenset({HTTPStatus.TOO_MANY_REQUESTS, HTTPStatus.SERVICE_UNAVAILABLE})


def _drop_none(fields: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in fields.items() if value is not None}


# --- errors ----------------------------------------------------------------------------


def error_code(status: int) -> str:
    """The machine-readable code an error gets when its handler names none."""
    return HTTPStatus(status).phrase.lower().replace(" ", "_").replace("-", "_")


@dataclass(frozen=True)
class ErrorAnswer:
    """Every error answer: a code to act on, a message to show, the id in the server log."""

    code: str
    message: str
    request_id: str = ""

    def to_json(self) -> dict[str, Any]:
        return {"error": self.message, "code": self.code, "message": self.message,
                "request_id": self.request_id}  # fmt: skip

    @classmethod
    def from_json(cls, data: Any, status: int, fallback: str) -> ErrorAnswer:
        """Read an error body; anything else (a proxy's HTML page) keeps `fallback`."""
        if not isinstance(data, dict):
            return cls(error_code(status), fallback)
        message = data.get("message", data.get("error", fallback))
        return cls(str(data.get("code") or error_code(status)), str(message),
                   str(data.get("request_id", "")))  # fmt: skip


# --- requests --------------------------------------------------------------------------


@dataclass(frozen=True)
class BindingRequest:
    """A holder's binding: `signature` (0x-hex) by `account`'s key over the binding
    message naming `receiver`; `scheme` and `pubkey` when the account alone cannot say."""

    account: str
    receiver: str
    signature: str
    scheme: str | None = None
    pubkey: str | None = None

    def to_json(self) -> dict[str, Any]:
        return _drop_none(asdict(self))


@dataclass(frozen=True)
class RegistrationRequest:
    """A worker's evidence for attestation. `expiry` is set when asking the second and
    later attesters, so that all of them sign one identical struct."""

    evidence: str
    worker: str
    provider: str
    gpu_model: int
    gpu_count: int
    gpu_evidence: str | None = None
    collateral: str | None = None
    expiry: int | None = None

    def to_json(self) -> dict[str, Any]:
        return _drop_none(asdict(self))


@dataclass(frozen=True)
class HeartbeatRequest:
    """A worker-signed heartbeat v2 (`veil.compute.heartbeat`): the block hash and the
    signature (65 bytes) are 0x-hex. Unsigned is a well-formed request that the attester
    refuses as `bad_signature` (401), not as malformed (400)."""

    worker: str
    epoch: int
    sequence: int
    timestamp: int
    block_hash: str
    signature: str | None = None

    def to_json(self) -> dict[str, Any]:
        return _drop_none(asdict(self))


@dataclass(frozen=True)
class Fields:
    """The fields a request body may carry, and those it must: read off the request type,
    so the server checks exactly what the client sends."""

    allowed: frozenset[str]
    required: frozenset[str]

    @classmethod
    def of(cls, request: type) -> Fields:
        declared = dataclasses.fields(request)
        return cls(
            frozenset(f.name for f in declared),
            frozenset(f.name for f in declared if f.default is dataclasses.MISSING),
        )


BINDING_FIELDS = Fields.of(BindingRequest)
REGISTRATION_FIELDS = Fields.of(RegistrationRequest)
HEARTBEAT_FIELDS = Fields.of(HeartbeatRequest)


# --- answers ---------------------------------------------------------------------------


def _hex(data: dict[str, Any], name: str) -> bytes:
    value: Any = data.get(name)
    try:
        return bytes.fromhex(value.removeprefix("0x"))
    except (AttributeError, ValueError):  # not a string, or not hex
        raise InputError(f"answer field {name}: expected 0x-hex, got {value!r:.40}") from None


def _object(data: Any, name: str) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise InputError(f"{name}: expected a JSON object")
    return data


@dataclass(frozen=True)
class SignedBy:
    """An attester's signature with the address it says it is (the caller recovers the
    signer itself before believing it)."""

    signer: str
    signature: Signature

    def to_json(self) -> dict[str, Any]:
        sig = self.signature
        return {"signer": self.signer, "v": sig.v, "r": "0x" + sig.r.hex(), "s": "0x" + sig.s.hex()}

    @classmethod
    def from_json(cls, data: Any) -> SignedBy:
        data = _object(data, "answer field attestation")
        v = data.get("v")
        if isinstance(v, bool) or not isinstance(v, int):
            raise InputError(f"answer field v: expected an integer, got {v!r:.40}")
        return cls(str(data.get("signer")), Signature(v, _hex(data, "r"), _hex(data, "s")))


@dataclass(frozen=True)
class BindingAnswer:
    """`POST /v1/migration/bindings`: the attester's signature over
    `Binding(account, receiver, signatureHash)`, with the leaf it checked the account
    against and the bare signature the claim must publish."""

    account: str
    ss58: str
    receiver: str
    leaf: list[Any]
    index: int
    free: int
    staked: int
    scheme: str
    signature: str
    signature_hash: str
    digest: str
    attestation: SignedBy
    rebinding: bool = False

    def to_json(self) -> dict[str, Any]:
        return {
            "account": self.account,
            "ss58": self.ss58,
            "receiver": self.receiver,
            "leaf": self.leaf,
            "index": self.index,
            "free": str(self.free),
            "staked": str(self.staked),
            "scheme": self.scheme,
            "signature": self.signature,
            "signatureHash": self.signature_hash,
            "digest": self.digest,
            "attestation": self.attestation.to_json(),
            "rebinding": self.rebinding,
        }

    @classmethod
    def from_json(cls, data: Any) -> BindingAnswer:
        data = _object(data, "binding answer")
        try:
            return cls(
                account=data["account"],
                ss58=data["ss58"],
                receiver=data["receiver"],
                leaf=list(data["leaf"]),
                index=int(data["index"]),
                free=int(data["free"]),
                staked=int(data["staked"]),
                scheme=data["scheme"],
                signature=data["signature"],
                signature_hash=data["signatureHash"],
                digest=data["digest"],
                attestation=SignedBy.from_json(data["attestation"]),
                rebinding=bool(data.get("rebinding", False)),
            )
        except KeyError as missing:
            raise InputError(f"binding answer: missing field {missing}") from None
        except (TypeError, ValueError) as error:
            raise InputError(f"binding answer: {error}") from None


@dataclass(frozen=True)
class RegistrationAnswer:
    """`POST /v1/compute/registrations`: a signed WorkerAttestation (its fields as JSON,
    read by `veil.compute.attestation.WorkerAttestation.from_json`), where to fetch the
    evidence it names, and the verdict that was signed."""

    attestation: dict[str, Any]
    signature: bytes
    signer: str
    digest: str
    chain_id: int
    registry: str
    evidence_hash: str
    simulated: bool
    verdict: dict[str, Any]

    @property
    def evidence_url(self) -> str:
        return EVIDENCE_PREFIX + self.evidence_hash

    def to_json(self) -> dict[str, Any]:
        return {
            "attestation": self.attestation,
            "signature": "0x" + self.signature.hex(),
            "signer": self.signer,
            "digest": self.digest,
            "domain": {"chain_id": self.chain_id, "registry": self.registry},
            "evidence_hash": self.evidence_hash,
            "evidence_url": self.evidence_url,
            "simulated": self.simulated,
            "verdict": self.verdict,
        }

    @classmethod
    def from_json(cls, data: Any) -> RegistrationAnswer:
        data = _object(data, "registration answer")
        try:
            domain = _object(data["domain"], "registration answer domain")
            return cls(
                attestation=_object(data["attestation"], "registration answer attestation"),
                signature=_hex(data, "signature"),
                signer=str(data["signer"]),
                digest=data["digest"],
                chain_id=int(domain["chain_id"]),
                registry=str(domain["registry"]),
                evidence_hash=data["evidence_hash"],
                simulated=bool(data["simulated"]),
                verdict=_object(data["verdict"], "registration answer verdict"),
            )
        except KeyError as missing:
            raise InputError(f"registration answer: missing field {missing}") from None
        except (TypeError, ValueError) as error:
            raise InputError(f"registration answer: {error}") from None


@dataclass(frozen=True)
class HeartbeatAnswer:
    """`POST /v1/compute/heartbeats`: accepted, and on disk (`stored`) in the epoch's
    log before this answer left; a heartbeat that is not kept is refused instead
    (`too_frequent`), so every accepted one is uptime evidence in the log."""

    worker: str
    epoch: int
    sequence: int
    timestamp: int
    stored: bool = True

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: Any) -> HeartbeatAnswer:
        data = _object(data, "heartbeat answer")
        try:
            return cls(str(data["worker"]), int(data["epoch"]), int(data["sequence"]),
                       int(data["timestamp"]), bool(data["stored"]))  # fmt: skip
        except KeyError as missing:
            raise InputError(f"heartbeat answer: missing field {missing}") from None
        except (TypeError, ValueError) as error:
            raise InputError(f"heartbeat answer: {error}") from None
