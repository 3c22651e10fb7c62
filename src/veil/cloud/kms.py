"""The KMS's key-release rule, the request a worker sends, and the client side of both.

An app's keys go to a worker only when all of this holds (checked in this order, the first
failure is the refusal, each with its own code):

1. `bad_signature`: the request is signed (EIP-191) by the worker key it names, over
   `veil-kms-key-request:{app_id}:{ephemeral_public_key}:{sha256(quote) hex}`;
2. `simulated_refused` / `attestation_refused`: the evidence verifies under the KMS
   policy (a production policy refuses simulator quotes; allowed OS images, TCB);
3. `report_data_unbound`: the quote's report data is
   `sha512("veil-kms-keys:" + app_id (20 bytes) + ephemeral_public_key (32 bytes))`, so
   the keys, encrypted to that ephemeral key, can only be opened inside the CVM that made
   the quote (a host replaying the quote with its own key fails here);
4. `app_id_mismatch`: the CVM's measured `app-id` event is the app asked for, as dstack's
   KMS derives keys for the measured app id, so one app's CVM never gets another's keys
   even when both allow the same compose;
5. `compose_hash_missing` / `app_not_registered` / `compose_not_allowed`: the measured
   `compose-hash` event is a hash AppAuth allows for the app now;
6. `worker_not_active`: the registry says the worker is active (attested, collateral);
7. `replayed`: the same quote and ephemeral key were not already answered while the KMS
   remembers them. Replays are harmless (the answer is encrypted to a key only the
   CVM holds) and the agent makes a fresh key per request, so refusing them costs
   nothing and keeps a log of each release meaningful. See `ReplayWindow`.

`decide` is a pure function of the request, the verdict and two lookups, so each refusal
is tested without a chain or a server; the service only gathers those inputs.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from eth_account import Account
from eth_account.messages import encode_defunct
from eth_account.signers.local import LocalAccount
from eth_keys import keys as eth_keys
from eth_utils import keccak, to_checksum_address

from veil.cloud.app_keys import AppKeys, app_id_bytes
from veil.cloud.envcrypt import EnvDecryptError, open_env
from veil.compute.quote_source import QuoteSource
from veil.errors import InputError, VeilError
from veil.tee.policy import Policy, bound_report_data
from veil.tee.verdict import Verdict

KEY_REQUEST_TAG = "veil-kms-keys"
ENV_PUBKEY_PREFIX = b"dstack-env-encrypt-pubkey"


class KmsError(VeilError):
    """The KMS refused or could not be reached; `code` is its machine-readable reason."""

    def __init__(self, code: str, message: str, status: int = 0, request_id: str = "") -> None:
        suffix = f" (request {request_id})" if request_id else ""
        super().__init__(f"KMS refused: {code}: {message}{suffix}")
        self.code = code
        self.status = status
        self.request_id = request_id


# --- the request --------------------------------------------------------------------------


def normalise_app_id(app_id: str | bytes) -> str:
    """The one spelling of an app id in signed text and URLs: 0x + 40 lower-case hex."""
    return "0x" + app_id_bytes(app_id).hex()


def key_request_message(app_id: str, ephemeral_public_key: bytes, quote: bytes) -> str:
    """What the worker signs: app id (0x, lower case), ephemeral key hex, sha256(quote)."""
    digest = hashlib.sha256(quote).hexdigest()
    return f"veil-kms-key-request:{normalise_app_id(app_id)}:{ephemeral_public_key.hex()}:{digest}"


def key_request_report_data(app_id: str | bytes, ephemeral_public_key: bytes) -> bytes:
    """The report data a CVM's quote must carry to ask for `app_id`'s keys."""
    return bound_report_data(KEY_REQUEST_TAG, app_id_bytes(app_id) + ephemeral_public_key)


@dataclass(frozen=True)
class KeyRequest:
    """`POST /v1/apps/{app_id}/keys` as the KMS reads it (parsed, not yet judged)."""

    app_id: str
    worker: str
    ephemeral_public_key: bytes
    quote: bytes
    event_log: Any
    vm_config: Any
    worker_signature: bytes

    def evidence_json(self) -> dict[str, Any]:
        doc: dict[str, Any] = {"quote": self.quote.hex()}
        if self.event_log not in (None, "", []):
            doc["event_log"] = self.event_log
        if self.vm_config not in (None, ""):
            doc["vm_config"] = self.vm_config
        return doc

    def replay_key(self) -> bytes:
        return hashlib.sha256(self.quote).digest() + self.ephemeral_public_key


def _hex_field(body: dict[str, Any], name: str, size: int | None = None) -> bytes:
    value = body.get(name)
    if not isinstance(value, str) or not value:
        raise InputError(f"key request: '{name}' must be a hex string")
    try:
        raw = bytes.fromhex(value.strip().removeprefix("0x"))
    except ValueError:
        raise InputError(f"key request: '{name}' is not hex") from None
    if size is not None and len(raw) != size:
        raise InputError(f"key request: '{name}' must be {size} bytes, got {len(raw)}")
    return raw


def parse_key_request(app_id: str, body: Any) -> KeyRequest:
    """Read a key request body; InputError (one line) for anything malformed."""
    if not isinstance(body, dict):
        raise InputError("key request: expected a JSON object")
    if len(_hex_field(body, "worker")) != 20:
        raise InputError("key request: 'worker' must be a 0x address")
    return KeyRequest(
        app_id=normalise_app_id(app_id),
        worker=to_checksum_address(_hex_field(body, "worker")),
        ephemeral_public_key=_hex_field(body, "ephemeral_public_key", 32),
        quote=_hex_field(body, "quote"),
        event_log=body.get("event_log"),
        vm_config=body.get("vm_config"),
        worker_signature=_hex_field(body, "worker_signature", 65),
    )


# --- the decision -------------------------------------------------------------------------


@dataclass(frozen=True)
class Refusal:
    code: str
    status: int
    message: str


def signer_of(message: str, signature: bytes) -> str | None:
    """The address that EIP-191-signed `message`, or None for an unusable signature."""
    try:
        return str(Account.recover_message(encode_defunct(text=message), signature=signature))
    except Exception:  # eth-account raises several types for malformed signatures
        return None


def decide(
    request: KeyRequest,
    verdict: Verdict,
    policy: Policy,
    *,
    app_owner: Callable[[str], str | None],
    compose_allowed: Callable[[str, str], bool],
    worker_active: Callable[[str], bool],
    seen_before: Callable[[bytes], bool] = lambda _key: False,
) -> Refusal | None:
    """None when the keys may be released; otherwise the first refusal (module docstring)."""
    message = key_request_message(request.app_id, request.ephemeral_public_key, request.quote)
    signer = signer_of(message, request.worker_signature)
    if signer is None or signer.lower() != request.worker.lower():
        return Refusal(
            "bad_signature", 401, f"worker_signature is not {request.worker}'s over {message!r}"
        )
    if verdict.simulated and not policy.allow_simulated:
        return Refusal(
            "simulated_refused",
            403,
            "SIMULATED evidence: this KMS runs a production policy (allow_simulated = false)",
        )
    if not verdict.accepted:
        return Refusal("attestation_refused", 403, "; ".join(verdict.reasons))
    expected = key_request_report_data(request.app_id, request.ephemeral_public_key)
    if bytes.fromhex(verdict.report_data) != expected:
        return Refusal(
            "report_data_unbound",
            403,
            f"the quote's report data is not sha512({KEY_REQUEST_TAG!r}:app_id||ephemeral key):"
            " the quote was not made for this request",
        )
    app = verdict.app
    measured_app = app.app_id if app is not None else None
    if measured_app is None or "0x" + measured_app != request.app_id:
        return Refusal(
            "app_id_mismatch",
            403,
            f"the CVM measures app-id {('0x' + measured_app) if measured_app else 'none'},"
            f" not {request.app_id}",
        )
    measured = app.compose_hash if app is not None else None
    if measured is None:
        return Refusal("compose_hash_missing", 403, "the event log has no compose-hash event")
    if app_owner(request.app_id) is None:
        return Refusal(
            "app_not_registered", 404, f"app {request.app_id} is not registered in AppAuth"
        )
    if not compose_allowed(request.app_id, measured):
        return Refusal(
            "compose_not_allowed",
            403,
            f"compose hash 0x{measured} is not allowed for app {request.app_id} in AppAuth"
            " (the app owner adds it with addComposeHash before deploying this version)",
        )
    if not worker_active(request.worker):
        return Refusal(
            "worker_not_active", 403, f"worker {request.worker} is not active in the registry"
        )
    if seen_before(request.replay_key()):
        return Refusal(
            "replayed", 409, "this quote and ephemeral key were already answered; make a new key"
        )
    return None


class ReplayWindow:
    """The (quote, ephemeral key) pairs answered recently: at most `size`, for `ttl` seconds.

    In memory, per KMS process: replicas behind one address do not share it, which is
    acceptable because a replay only ever yields ciphertext for a key the replayer lacks.
    """

    def __init__(
        self, ttl: float = 3600.0, size: int = 100_000, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.ttl = ttl
        self.size = size
        self.clock = clock
        self._seen: OrderedDict[bytes, float] = OrderedDict()
        self._lock = threading.Lock()

    def seen(self, key: bytes) -> bool:
        now = self.clock()
        with self._lock:
            while self._seen and next(iter(self._seen.values())) <= now - self.ttl:
                self._seen.popitem(last=False)
            return key in self._seen

    def remember(self, key: bytes) -> None:
        with self._lock:
            self._seen[key] = self.clock()
            self._seen.move_to_end(key)
            while len(self._seen) > self.size:
                self._seen.popitem(last=False)


# --- the env public key signature (dstack's message) ---------------------------------------


def env_pubkey_digest(
    app_id: str | bytes, public_key: bytes, timestamp: int | None = None
) -> bytes:
    """dstack's signed digest: keccak256("dstack-env-encrypt-pubkey:" + app_id [+ ts] + key).

    Without `timestamp` it is dstack's legacy `signature`; with it, `signature_v1`
    (timestamp as 8 big-endian bytes).
    """
    stamp = b"" if timestamp is None else timestamp.to_bytes(8, "big")
    return keccak(ENV_PUBKEY_PREFIX + b":" + app_id_bytes(app_id) + stamp + public_key)


def sign_env_pubkey(
    signer: LocalAccount, app_id: str | bytes, public_key: bytes, timestamp: int | None = None
) -> bytes:
    """A 65-byte r||s||v(0/1) signature over dstack's digest, as dstack's KMS writes it."""
    key = eth_keys.PrivateKey(bytes(signer.key))
    return key.sign_msg_hash(env_pubkey_digest(app_id, public_key, timestamp)).to_bytes()


def env_pubkey_signer(
    app_id: str | bytes, public_key: bytes, signature: bytes, timestamp: int | None = None
) -> str | None:
    """The address that signed an env public key, or None for an unusable signature."""
    if len(signature) != 65:
        return None
    raw = bytearray(signature)
    if raw[64] >= 27:  # accept Ethereum-style v as well as dstack's 0/1 recovery id
        raw[64] -= 27
    try:
        recovered = eth_keys.Signature(bytes(raw)).recover_public_key_from_msg_hash(
            env_pubkey_digest(app_id, public_key, timestamp)
        )
    except Exception:  # eth-keys raises BadSignature or ValidationError
        return None
    return str(recovered.to_checksum_address())


def verify_env_pubkey(
    app_id: str | bytes,
    public_key: bytes | str,
    signature: bytes | str,
    expected_signer: str,
    timestamp: int | None = None,
) -> bool:
    """True when `expected_signer` (the KMS address the client pins) signed this env key.

    A customer's CLI checks this before encrypting secrets, so a control plane that swapped
    the key for one it holds is caught.
    """
    try:
        key = (
            public_key
            if isinstance(public_key, bytes)
            else bytes.fromhex(public_key.removeprefix("0x"))
        )
        sig = (
            signature
            if isinstance(signature, bytes)
            else bytes.fromhex(signature.removeprefix("0x"))
        )
        signer = env_pubkey_signer(app_id, key, sig, timestamp)
    except (ValueError, InputError):
        return False
    return signer is not None and signer.lower() == expected_signer.lower()


# --- the client ----------------------------------------------------------------------------


def _error_of(response: httpx.Response) -> KmsError:
    try:
        body = response.json()
    except ValueError:
        body = {}
    if not isinstance(body, dict):
        body = {}
    return KmsError(
        str(body.get("code") or f"http_{response.status_code}"),
        str(body.get("message") or response.text[:200]),
        response.status_code,
        str(body.get("request_id") or response.headers.get("x-request-id", "")),
    )


def prepare_key_request(
    app_id: str, worker: LocalAccount, quote_source: QuoteSource
) -> tuple[dict[str, Any], X25519PrivateKey]:
    """The request body for `app_id`'s keys, and the ephemeral key the answer is sealed to.

    A fresh X25519 key per call is bound into the quote's report data; the KMS encrypts
    the keys to it, so they exist in clear only in this process (inside the CVM).
    """
    app = normalise_app_id(app_id)
    ephemeral = X25519PrivateKey.generate()
    ephemeral_public = ephemeral.public_key().public_bytes_raw()
    evidence = json.loads(quote_source.evidence(key_request_report_data(app, ephemeral_public)))
    quote = bytes.fromhex(str(evidence["quote"]).removeprefix("0x"))
    message = key_request_message(app, ephemeral_public, quote)
    signature = worker.sign_message(encode_defunct(text=message)).signature
    body = {
        "worker": worker.address,
        "ephemeral_public_key": ephemeral_public.hex(),
        "quote": quote.hex(),
        "event_log": evidence.get("event_log"),
        "vm_config": evidence.get("vm_config"),
        "worker_signature": "0x" + bytes(signature).hex(),
    }
    return body, ephemeral


def open_app_keys(app_id: str, encrypted_keys: str, ephemeral: X25519PrivateKey) -> AppKeys:
    """Decrypt the KMS's answer (dstack env format over `{"env_crypt_key", "app_key"}`)."""
    plain = json.loads(open_env(encrypted_keys, ephemeral.private_bytes_raw()))
    return AppKeys(
        app_id_bytes(app_id),
        bytes.fromhex(plain["env_crypt_key"]),
        bytes.fromhex(plain["app_key"]),
    )


def request_app_keys(
    kms_url: str,
    app_id: str,
    worker: LocalAccount,
    quote_source: QuoteSource,
    *,
    timeout: float = 30.0,
    transport: httpx.BaseTransport | None = None,
) -> AppKeys:
    """Ask the KMS for `app_id`'s keys with a fresh quote; the keys, decrypted here."""
    app = normalise_app_id(app_id)
    body, ephemeral = prepare_key_request(app, worker, quote_source)
    target = f"{kms_url.rstrip('/')}/v1/apps/{app}/keys"
    try:
        with httpx.Client(timeout=timeout, transport=transport) as client:
            response = client.post(target, json=body)
    except httpx.HTTPError as error:
        raise KmsError("kms_unreachable", f"{kms_url}: {error}") from None
    if response.status_code != 200:
        raise _error_of(response)
    try:
        keys = open_app_keys(app, response.json()["encrypted_keys"], ephemeral)
    except (ValueError, KeyError, TypeError, EnvDecryptError) as error:
        raise KmsError("bad_kms_answer", f"{kms_url}: unusable key answer ({error})") from None
    return keys


def fetch_env_pubkey(
    kms_url: str,
    app_id: str,
    expected_signer: str,
    *,
    timeout: float = 10.0,
    transport: httpx.BaseTransport | None = None,
) -> bytes:
    """The app's env public key from the KMS, refused unless `expected_signer` signed it."""
    app = normalise_app_id(app_id)
    target = f"{kms_url.rstrip('/')}/v1/apps/{app}/env-pubkey"
    try:
        with httpx.Client(timeout=timeout, transport=transport) as client:
            response = client.get(target)
    except httpx.HTTPError as error:
        raise KmsError("kms_unreachable", f"{kms_url}: {error}") from None
    if response.status_code != 200:
        raise _error_of(response)
    body = response.json()
    if not verify_env_pubkey(app, body["public_key"], body["signature"], expected_signer):
        raise KmsError(
            "bad_env_pubkey_signature",
            f"the env public key for {app} is not signed by the pinned KMS {expected_signer}",
        )
    return bytes.fromhex(body["public_key"])


def devnet_kms_policy() -> str:
    """The devnet KMS's policy TOML: SIMULATED TEEs accepted, the simulator's OS image.

    Unlike the attester's devnet policy it allows no fixed compose hash: which compose an
    app may run is AppAuth's answer, per app. Never use it on a real network.
    """
    from veil.tee.simulator import AppSpec

    return f"""\
# veil devnet KMS policy: SIMULATED TEEs are accepted (the devnet has no TDX).
# Never use this policy on a real network: the default policy (an empty file) refuses them.
allow_simulated = true
require_event_log = true

[[os_images]]
name = "veil simulated os image"
os_image_hash = "{AppSpec().os_image_hash.hex()}"
"""
