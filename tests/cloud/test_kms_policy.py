"""The KMS key-release decision: every refusal, each with its code, on real simulated quotes."""

from __future__ import annotations

import hashlib
import json
from dataclasses import replace

import pytest
from eth_account import Account
from eth_account.messages import encode_defunct

from veil.cloud.app_keys import RootSecret
from veil.cloud.kms import (
    KeyRequest,
    ReplayWindow,
    decide,
    env_pubkey_signer,
    key_request_message,
    open_app_keys,
    parse_key_request,
    prepare_key_request,
    sign_env_pubkey,
    verify_env_pubkey,
)
from veil.compute.quote_source import Simulator
from veil.errors import InputError
from veil.tee.evidence import evidence_from_json
from veil.tee.policy import DEFAULT_POLICY, Policy
from veil.tee.simulator import AppSpec
from veil.tee.verification import verify_evidence

WORKER = Account.from_key(b"\x01" * 32)
OTHER = Account.from_key(b"\x02" * 32)
APP = "0x" + "ab" * 20
OTHER_APP = "0x" + "cd" * 20
ALLOWED = hashlib.sha256(b"app-compose v1").digest()
REMOVED = hashlib.sha256(b"app-compose v0").digest()
DEV = Policy(allow_simulated=True)


def _source(compose: bytes = ALLOWED, app: str = APP) -> Simulator:
    return Simulator(AppSpec(compose_hash=compose, app_id=bytes.fromhex(app[2:])))


def _request(source: Simulator | None = None, worker=WORKER, app: str = APP) -> KeyRequest:
    body, _ = prepare_key_request(app, worker, source or _source())
    return parse_key_request(app, json.loads(json.dumps(body)))


def _verdict(request: KeyRequest, policy: Policy = DEV):
    evidence = evidence_from_json(request.evidence_json())
    return verify_evidence(evidence, None, policy)


def _decide(request: KeyRequest, policy: Policy = DEV, verdict=None, **overrides):
    lookups = {
        "app_owner": lambda app: WORKER.address if app == APP else None,
        "compose_allowed": lambda app, h: app == APP and h == ALLOWED.hex(),
        "worker_active": lambda worker: worker == WORKER.address,
    }
    lookups.update(overrides)
    return decide(request, verdict or _verdict(request, policy), policy, **lookups)


def test_attested_active_worker_with_allowed_compose_gets_the_keys():
    assert _decide(_request()) is None


def test_quote_for_another_compose_hash_is_refused():
    refusal = _decide(_request(_source(compose=hashlib.sha256(b"evil").digest())))
    assert refusal.code == "compose_not_allowed" and refusal.status == 403
    assert "addComposeHash" in refusal.message


def test_compose_hash_removed_from_app_auth_is_refused():
    refusal = _decide(_request(_source(compose=REMOVED)))
    assert refusal.code == "compose_not_allowed"


def test_app_not_in_app_auth_is_refused():
    request = _request(_source(app=OTHER_APP), app=OTHER_APP)
    assert _decide(request).code == "app_not_registered"


def test_inactive_worker_is_refused():
    request = _request(worker=OTHER)
    refusal = _decide(request)
    assert refusal.code == "worker_not_active" and OTHER.address in refusal.message


def test_simulated_quote_under_production_policy_is_refused():
    refusal = _decide(_request(), policy=DEFAULT_POLICY)
    assert refusal.code == "simulated_refused" and refusal.status == 403


def test_altered_quote_is_refused_by_attestation():
    request = _request()
    quote = bytearray(request.quote)
    quote[-50] ^= 0xFF  # inside the simulator's ed25519 signature
    tampered = replace(request, quote=bytes(quote))
    message = key_request_message(APP, tampered.ephemeral_public_key, tampered.quote)
    signature = WORKER.sign_message(encode_defunct(text=message)).signature
    tampered = replace(tampered, worker_signature=bytes(signature))
    refusal = _decide(tampered)
    assert refusal.code == "attestation_refused" and "simulator signature" in refusal.message


def test_signature_by_another_key_is_refused():
    request = _request()
    message = key_request_message(APP, request.ephemeral_public_key, request.quote)
    forged = OTHER.sign_message(encode_defunct(text=message)).signature
    refusal = _decide(replace(request, worker_signature=bytes(forged)))
    assert refusal.code == "bad_signature" and refusal.status == 401


def test_signature_over_another_ephemeral_key_is_refused():
    request = _request()
    swapped = replace(request, ephemeral_public_key=b"\x07" * 32)
    assert _decide(swapped).code == "bad_signature"


def test_report_data_not_bound_to_the_ephemeral_key_is_refused():
    """A host that replays a CVM's quote with an ephemeral key of its own (and signs that
    properly with the worker key) fails: the quote binds the CVM's key, not the host's."""
    request = _request()
    hosts_key = b"\x09" * 32
    message = key_request_message(APP, hosts_key, request.quote)
    signature = WORKER.sign_message(encode_defunct(text=message)).signature
    hijacked = replace(request, ephemeral_public_key=hosts_key, worker_signature=bytes(signature))
    refusal = _decide(hijacked)
    assert refusal.code == "report_data_unbound"


def test_quote_of_another_app_is_refused():
    """Another app's CVM running the same compose must not get this app's keys."""
    quote_for_other = _source(app=OTHER_APP)
    request = _request(quote_for_other)  # bound and signed for APP, measures OTHER_APP
    assert _decide(request).code == "app_id_mismatch"


def test_event_log_without_compose_hash_is_refused():
    request = _request()
    verdict = _verdict(request)
    blind = replace(verdict, app=replace(verdict.app, compose_hash=None))
    assert _decide(request, verdict=blind).code == "compose_hash_missing"


def test_replayed_request_is_refused_within_the_window():
    now = [1000.0]
    window = ReplayWindow(ttl=60, clock=lambda: now[0])
    request = _request()
    assert _decide(request, seen_before=window.seen) is None
    window.remember(request.replay_key())
    assert _decide(request, seen_before=window.seen).code == "replayed"
    assert _decide(_request(), seen_before=window.seen) is None  # a fresh key is fine
    now[0] += 61
    assert not window.seen(request.replay_key())


def test_replay_window_is_bounded():
    window = ReplayWindow(ttl=3600, size=3)
    for i in range(5):
        window.remember(bytes([i]))
    assert not window.seen(b"\x00") and window.seen(b"\x04")


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"worker": "0x1234"}, "worker"),
        ({"ephemeral_public_key": "ab" * 31}, "32 bytes"),
        ({"quote": "not hex"}, "not hex"),
        ({"worker_signature": ""}, "worker_signature"),
    ],
)
def test_malformed_request_is_one_line(change, reason):
    body, _ = prepare_key_request(APP, WORKER, _source())
    with pytest.raises(InputError, match=reason):
        parse_key_request(APP, {**body, **change})


def test_released_keys_open_with_the_ephemeral_key():
    from veil.cloud.envcrypt import seal

    root = RootSecret(b"\x42" * 32)
    body, ephemeral = prepare_key_request(APP, WORKER, _source())
    sealed = seal(
        json.dumps(root.app_keys(APP).to_json()).encode(),
        bytes.fromhex(body["ephemeral_public_key"]),
    )
    assert open_app_keys(APP, sealed, ephemeral) == root.app_keys(APP)


# dstack's legacy fixture (sdk/python/tests/test_verify_env_encrypt_public_key.py): a key
# signed by the KMS whose compressed public key is 0x0217610d...c38f, for app id 00 * 20.
LEGACY_PUBLIC_KEY = bytes.fromhex(
    "e33a1832c6562067ff8f844a61e51ad051f1180b66ec2551fb0251735f3ee90a"
)
LEGACY_SIGNATURE = bytes.fromhex(
    "8542c49081fbf4e03f62034f13fbf70630bdf256a53032e38465a27c36fd6bed"
    "7a5e7111652004aef37f7fd92fbfc1285212c4ae6a6154203a48f5e16cad2cef00"
)
LEGACY_SIGNER_PUBKEY = "0217610d74cbd39b6143842c6d8bc310d79da1d82cc9d17f8876376221eda0c38f"


def test_env_pubkey_signature_matches_dstack_fixture():
    from eth_keys import keys

    signer = keys.PublicKey.from_compressed_bytes(bytes.fromhex(LEGACY_SIGNER_PUBKEY))
    address = signer.to_checksum_address()
    assert env_pubkey_signer("00" * 20, LEGACY_PUBLIC_KEY, LEGACY_SIGNATURE) == address
    assert verify_env_pubkey("0x" + "00" * 20, LEGACY_PUBLIC_KEY.hex(), LEGACY_SIGNATURE, address)
    assert not verify_env_pubkey("0x" + "01" * 20, LEGACY_PUBLIC_KEY, LEGACY_SIGNATURE, address)


def test_env_pubkey_signature_round_trip_and_refusals():
    root = RootSecret(b"\x42" * 32)
    kms = root.signer()
    key = root.env_public_key(APP)
    signature = sign_env_pubkey(kms, APP, key)
    assert verify_env_pubkey(APP, key, signature, kms.address)
    assert verify_env_pubkey(APP, key.hex(), "0x" + signature.hex(), kms.address.lower())
    assert not verify_env_pubkey(APP, key, signature, WORKER.address)  # another signer
    assert not verify_env_pubkey(OTHER_APP, key, signature, kms.address)  # another app
    assert not verify_env_pubkey(APP, b"\x00" * 32, signature, kms.address)  # swapped key
    assert not verify_env_pubkey(APP, key, signature[:64], kms.address)
    assert not verify_env_pubkey(APP, "zz", signature, kms.address)
    v1 = sign_env_pubkey(kms, APP, key, timestamp=1_700_000_000)
    assert env_pubkey_signer(APP, key, v1, 1_700_000_000) == kms.address
    assert env_pubkey_signer(APP, key, v1) != kms.address
