"""The KMS over HTTP (FastAPI TestClient), with real simulated quotes and in-memory lookups.

What the chain would answer is a dict here so each refusal is cheap to set up; the devnet
test (test_kms_devnet.py) runs the same routes against AppAuth and the registry on anvil.
"""

from __future__ import annotations

import hashlib
import json
import tomllib

import httpx
import pytest
from eth_account import Account
from fastapi.testclient import TestClient

from veil.cloud.app_keys import RootSecret
from veil.cloud.envcrypt import decrypt_env, encrypt_env
from veil.cloud.kms import (
    KmsError,
    devnet_kms_policy,
    fetch_env_pubkey,
    prepare_key_request,
    request_app_keys,
    verify_env_pubkey,
)
from veil.compute.quote_source import Simulator
from veil.errors import ChainError
from veil.services.kms.server import create_app
from veil.services.kms.service import KmsState
from veil.tee.policy import Policy, policy_from_dict
from veil.tee.simulator import AppSpec

ROOT = RootSecret(hashlib.sha256(b"kms server test root").digest())
WORKER = Account.from_key(b"\x05" * 32)
OWNER = Account.from_key(b"\x06" * 32).address
APP = "0x" + "3c" * 20
V1 = hashlib.sha256(b"compose v1").digest()
V2 = hashlib.sha256(b"compose v2").digest()
DEVNET = policy_from_dict(tomllib.loads(devnet_kms_policy()))


class World:
    """AppAuth and the registry as the KMS sees them, changeable by the test."""

    def __init__(self) -> None:
        self.owners = {APP: OWNER}
        self.allowed = {(APP, V1.hex())}
        self.active = {WORKER.address}
        self.down = False

    def owner(self, app_id: str) -> str | None:
        if self.down:
            raise ChainError("AppAuth.appOwner: the chain did not answer (ConnectionError)")
        return self.owners.get(app_id)

    def compose_allowed(self, app_id: str, compose_hash: str) -> bool:
        return (app_id, compose_hash) in self.allowed

    def worker_active(self, worker: str) -> bool:
        return worker in self.active


def _kms(world: World, policy: Policy = DEVNET) -> TestClient:
    state = KmsState(ROOT, policy, world.owner, world.compose_allowed, world.worker_active)
    return TestClient(create_app(state))


def _source(compose: bytes = V1, app: str = APP) -> Simulator:
    return Simulator(AppSpec(compose_hash=compose, app_id=bytes.fromhex(app[2:])))


class _Through(httpx.BaseTransport):
    """Sends the client library's requests through the TestClient (no socket)."""

    def __init__(self, client: TestClient) -> None:
        self.client = client

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        answer = self.client.request(
            request.method, request.url.raw_path.decode(), content=request.read(),
            headers=dict(request.headers),
        )  # fmt: skip
        return httpx.Response(answer.status_code, headers=answer.headers, content=answer.content)


def _transport(client: TestClient) -> httpx.BaseTransport:
    return _Through(client)


def test_info_says_simulated_and_names_the_signer():
    with _kms(World()) as client:
        info = client.get("/v1/kms/info").json()
    assert info["signer"] == ROOT.signer().address
    assert info["simulated"] is True and "SIMULATED" in info["warning"]
    assert info["policy"]["allow_simulated"] is True and info["policy"]["production"] is False


def test_env_pubkey_is_signed_and_checkable_by_the_client():
    with _kms(World()) as client:
        answer = client.get(f"/v1/apps/{APP.upper().replace('0X', '0x')}/env-pubkey").json()
        key = fetch_env_pubkey("http://kms", APP, ROOT.signer().address,
                               transport=_transport(client))  # fmt: skip
    assert answer["public_key"] == ROOT.env_public_key(APP).hex() == key.hex()
    assert answer["app_id"] == APP and answer["signer"] == ROOT.signer().address
    assert verify_env_pubkey(APP, answer["public_key"], answer["signature"], answer["signer"])


def test_env_pubkey_from_another_kms_is_refused_by_the_client():
    with _kms(World()) as client, pytest.raises(KmsError, match="bad_env_pubkey_signature"):
        fetch_env_pubkey("http://kms", APP, WORKER.address, transport=_transport(client))


def test_secret_encrypted_by_customer_opens_only_with_released_keys():
    world = World()
    with _kms(world) as client:
        public = fetch_env_pubkey("http://kms", APP, ROOT.signer().address,
                                  transport=_transport(client))  # fmt: skip
        sealed = encrypt_env({"DB_PASSWORD": "hunter2"}, public)
        keys = request_app_keys("http://kms", APP, WORKER, _source(),
                                transport=_transport(client))  # fmt: skip
    assert decrypt_env(sealed, keys.env_crypt_key) == {"DB_PASSWORD": "hunter2"}
    assert keys == ROOT.app_keys(APP)


def _refused(client: TestClient, body: dict, app: str = APP) -> tuple[int, dict]:
    answer = client.post(f"/v1/apps/{app}/keys", json=body, headers={"X-Request-Id": "rid-1"})
    payload = answer.json()
    assert set(payload) == {"code", "message", "request_id"}
    assert payload["request_id"] == "rid-1" == answer.headers["x-request-id"]
    return answer.status_code, payload


@pytest.mark.parametrize(
    ("setup", "source", "status", "code"),
    [
        ("none", _source(compose=V2), 403, "compose_not_allowed"),
        ("remove_v1", _source(), 403, "compose_not_allowed"),
        ("unregister", _source(), 404, "app_not_registered"),
        ("deactivate", _source(), 403, "worker_not_active"),
        ("none", _source(app="0x" + "99" * 20), 403, "app_id_mismatch"),
        ("chain_down", _source(), 503, "chain_unavailable"),
    ],
)
def test_refusals_over_http(setup, source, status, code):
    world = World()
    if setup == "remove_v1":
        world.allowed.clear()
    elif setup == "unregister":
        world.owners.clear()
    elif setup == "deactivate":
        world.active.clear()
    elif setup == "chain_down":
        world.down = True
    body, _ = prepare_key_request(APP, WORKER, source)
    with _kms(world) as client:
        got = _refused(client, body)
    assert got[0] == status and got[1]["code"] == code, got


def test_simulated_quote_under_production_policy_is_refused_over_http():
    body, _ = prepare_key_request(APP, WORKER, _source())
    with _kms(World(), policy=Policy()) as client:
        status, payload = _refused(client, body)
        info = client.get("/v1/kms/info").json()
    assert (status, payload["code"]) == (403, "simulated_refused")
    assert info["policy"]["production"] is True


def test_bad_signature_and_unbound_key_over_http():
    body, _ = prepare_key_request(APP, WORKER, _source())
    forged = {**body, "worker": Account.from_key(b"\x07" * 32).address}
    other_key = {**body, "ephemeral_public_key": "11" * 32}
    with _kms(World()) as client:
        assert _refused(client, forged)[1]["code"] == "bad_signature"
        assert _refused(client, other_key)[1]["code"] == "bad_signature"


def test_replayed_request_is_refused_over_http():
    body, _ = prepare_key_request(APP, WORKER, _source())
    with _kms(World()) as client:
        assert client.post(f"/v1/apps/{APP}/keys", json=body).status_code == 200
        status, payload = _refused(client, body)
    assert (status, payload["code"]) == (409, "replayed")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"quote": "zz"}, "not hex"),
        ({"worker_signature": None}, "worker_signature"),
        ({"ephemeral_public_key": "00" * 31}, "32 bytes"),
        ({"event_log": "{not json"}, "event_log"),
    ],
)
def test_malformed_body_is_400_with_one_line(change, message):
    body, _ = prepare_key_request(APP, WORKER, _source())
    with _kms(World()) as client:
        status, payload = _refused(client, {**body, **change})
    assert status == 400 and payload["code"] == "bad_request" and message in payload["message"]


def test_bad_app_id_and_oversized_body():
    with _kms(World()) as client:
        bad = client.get("/v1/apps/0x1234/env-pubkey")
        big = client.post(f"/v1/apps/{APP}/keys", content=b"{" + b" " * (1024 * 1024 + 1) + b"}",
                          headers={"Content-Type": "application/json"})  # fmt: skip
        unknown = client.get("/v1/nope")
    assert bad.status_code == 400 and bad.json()["code"] == "bad_app_id"
    assert big.status_code == 413 and big.json()["code"] == "too_large"
    assert unknown.status_code == 404 and unknown.json()["code"] == "not_found"


def test_client_reports_refusal_code_and_request_id():
    world = World()
    world.active.clear()
    with _kms(world) as client, pytest.raises(KmsError) as caught:
        request_app_keys("http://kms", APP, WORKER, _source(), transport=_transport(client))
    assert caught.value.code == "worker_not_active" and caught.value.status == 403
    assert caught.value.request_id and caught.value.request_id in str(caught.value)


def test_openapi_describes_the_routes():
    with _kms(World()) as client:
        paths = client.get("/openapi.json").json()["paths"]
    assert {"/v1/kms/info", "/v1/apps/{app_id}/env-pubkey", "/v1/apps/{app_id}/keys"} <= set(paths)
    assert json.dumps(paths["/v1/apps/{app_id}/keys"]).count("ErrorOut") >= 1
