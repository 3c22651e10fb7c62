"""The KMS's state and its three answers (info, env public key, key release).

It gathers what `veil.cloud.kms.decide` judges: the verified evidence (under the KMS
policy), AppAuth's record for the app and the registry's view of the worker, both read
from the chain at request time, never cached, so a compose hash the owner removes or a
worker the registry deactivates stops getting keys at the next request.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any, TypeVar

from veil.cloud.app_auth import AppAuthClient
from veil.cloud.app_keys import RootSecret
from veil.cloud.envcrypt import seal
from veil.cloud.kms import (
    KeyRequest,
    Refusal,
    ReplayWindow,
    decide,
    normalise_app_id,
    parse_key_request,
    sign_env_pubkey,
)
from veil.errors import ChainError, InputError, VeilError
from veil.tee.collateral import Collateral, CollateralError, from_json_text
from veil.tee.evidence import evidence_from_json
from veil.tee.policy import Policy, ReportDataRule
from veil.tee.simulator import is_simulated_quote
from veil.tee.tdx import parse_measurements
from veil.tee.verification import verify_evidence

log = logging.getLogger("veil.kms")
T = TypeVar("T")

#: (fmspc, now, tee) -> Intel collateral for a real quote the worker sent none with.
CollateralSource = Callable[[str, int, str], Collateral]

SIMULATED_KMS = (
    "SIMULATED KMS: the root secret is a file on this host, not sealed in a TEE; "
    "whoever can read it can derive every app's keys"
)


class KmsRefused(Exception):
    """An answer other than 200: HTTP status, stable code, one line."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


@dataclass
class ChainLookups:
    """AppAuth and the registry on the chain of a deployment."""

    app_auth: AppAuthClient
    is_active: Callable[[str], bool]
    chain_id: int
    registry: str


@dataclass
class KmsState:
    root: RootSecret
    policy: Policy
    owner: Callable[[str], str | None]
    compose_allowed: Callable[[str, str], bool]
    worker_active: Callable[[str], bool]
    collateral_source: CollateralSource | None = None
    replays: ReplayWindow = field(default_factory=ReplayWindow)
    clock: Callable[[], float] = time.time
    chain: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # The binding is checked by `decide` against this request's key; a report-data rule
        # from the policy file would only add a second, unbindable check.
        self.verify_policy = replace(self.policy, report_data=ReportDataRule())
        self.signer = self.root.signer()

    def info(self) -> dict[str, Any]:
        p = self.policy
        return {
            "signer": self.signer.address,
            "simulated": True,
            "warning": SIMULATED_KMS,
            "policy": {
                "production": not p.allow_simulated,
                "allow_simulated": p.allow_simulated,
                "allowed_tee": list(p.allowed_tee),
                "accepted_tcb_statuses": list(p.accepted_tcb_statuses),
                "os_images": [
                    {"name": i.name, "os_image_hash": i.os_image_hash} for i in p.os_images
                ],
                "allow_debug": p.allow_debug,
            },
            **self.chain,
        }

    def env_pubkey(self, app_id: str) -> dict[str, Any]:
        try:
            app = normalise_app_id(app_id)
        except InputError as error:
            raise KmsRefused(400, "bad_app_id", str(error)) from None
        key = self.root.env_public_key(app)
        stamp = int(self.clock())
        return {
            "app_id": app,
            "public_key": key.hex(),
            "signature": sign_env_pubkey(self.signer, app, key).hex(),
            "signer": self.signer.address,
            "timestamp": stamp,
            "signature_v1": sign_env_pubkey(self.signer, app, key, stamp).hex(),
        }

    def _collateral(self, request: KeyRequest, body: dict[str, Any]) -> Collateral | None:
        """The worker's collateral (Intel-signed, so safe to take), else the PCCS source."""
        text = body.get("collateral")
        if isinstance(text, str) and text:
            try:
                return from_json_text(text, "collateral")
            except InputError as error:
                raise KmsRefused(400, "bad_request", str(error)) from None
        if is_simulated_quote(request.quote) or self.collateral_source is None:
            return None
        try:
            m = parse_measurements(request.quote)
        except (InputError, ValueError) as error:
            raise KmsRefused(400, "bad_request", f"quote: {error}") from None
        if m.fmspc is None:
            return None
        try:
            return self.collateral_source(m.fmspc, int(self.clock()), m.tee)
        except CollateralError as error:
            raise KmsRefused(503, "collateral_unavailable", str(error)) from None

    def release(self, app_id: str, body: Any) -> tuple[dict[str, Any], KeyRequest]:
        """The app's keys sealed to the request's ephemeral key, or KmsRefused."""
        try:
            request = parse_key_request(app_id, body)
            evidence = evidence_from_json(request.evidence_json(), "evidence")
        except InputError as error:
            raise KmsRefused(400, "bad_request", str(error)) from None
        collateral = self._collateral(request, body)
        try:
            verdict = verify_evidence(evidence, collateral, self.verify_policy, int(self.clock()))
        except (InputError, ValueError) as error:
            raise KmsRefused(400, "bad_request", f"evidence: {error}") from None
        try:
            refusal: Refusal | None = decide(
                request,
                verdict,
                self.policy,
                app_owner=self.owner,
                compose_allowed=self.compose_allowed,
                worker_active=self.worker_active,
                seen_before=self.replays.seen,
            )
        except VeilError as error:
            raise KmsRefused(503, "chain_unavailable", str(error)) from None
        if refusal is not None:
            raise KmsRefused(refusal.status, refusal.code, refusal.message)
        self.replays.remember(request.replay_key())
        keys = self.root.app_keys(request.app_id)
        plaintext = json.dumps(keys.to_json(), separators=(",", ":")).encode()
        answer = {
            "encrypted_keys": seal(plaintext, request.ephemeral_public_key),
            "app_id": request.app_id,
            "compose_hash": "0x" + (verdict.app.compose_hash or "") if verdict.app else None,
            "simulated": verdict.simulated,
        }
        return answer, request


def _on_chain(what: str, read: Callable[[], T]) -> T:
    """A chain read; an unreachable or failing node becomes one ChainError line (503)."""
    try:
        return read()
    except VeilError:
        raise
    except Exception as error:  # web3 raises many transport and RPC error types
        raise ChainError(f"{what}: the chain did not answer ({type(error).__name__})") from None


def chain_state(
    root: RootSecret,
    policy: Policy,
    lookups: ChainLookups,
    collateral_source: CollateralSource | None = None,
) -> KmsState:
    """A KMS whose AppAuth and registry answers come from the chain."""
    auth = lookups.app_auth

    def owner(app_id: str) -> str | None:
        return _on_chain("AppAuth.appOwner", lambda: auth.owner(app_id))

    def compose_allowed(app_id: str, compose_hash: str) -> bool:
        return _on_chain(
            "AppAuth.isComposeAllowed", lambda: auth.is_compose_allowed(app_id, compose_hash)
        )

    def worker_active(worker: str) -> bool:
        return _on_chain("ComputeRegistry.isActive", lambda: lookups.is_active(worker))

    return KmsState(
        root,
        policy,
        owner,
        compose_allowed,
        worker_active,
        collateral_source,
        chain={
            "chain_id": lookups.chain_id,
            "app_auth": auth.address,
            "registry": lookups.registry,
        },
    )
