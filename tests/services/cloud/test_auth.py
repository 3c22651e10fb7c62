"""API keys and Sign-In with Ethereum: every way in that must fail does, with a code."""

from __future__ import annotations

import pytest
from cloud_kit import CloudKit, account
from eth_account.messages import encode_defunct

from veil.services.cloud import siwe


def _verify(cloud: CloudKit, who, message: str, signer=None):  # type: ignore[no-untyped-def]
    signature = (signer or who).sign_message(encode_defunct(text=message)).signature.hex()
    return cloud.client.post(
        "/v1/auth/siwe/verify", json={"message": message, "signature": signature}
    )


def _nonce(cloud: CloudKit) -> str:
    return str(cloud.client.post("/v1/auth/siwe/nonce").json()["nonce"])


def test_siwe_login_gives_a_working_key_stored_hashed(cloud: CloudKit) -> None:
    alice = account("alice")
    key = cloud.login(alice)
    assert key.startswith("veil_")
    keys = cloud.client.get("/v1/auth/keys", headers={"Authorization": f"Bearer {key}"})
    assert keys.status_code == 200
    [entry] = keys.json()
    assert entry["address"] == alice.address
    assert set(entry["scopes"]) == {"apps:read", "apps:write", "keys:write"}
    with cloud.state.sessions() as session:
        from veil.services.cloud.models import ApiKey

        stored = session.query(ApiKey).one()
        assert key not in (stored.secret_hash, stored.id)


def test_nonce_is_single_use(cloud: CloudKit) -> None:
    alice = account("alice")
    message = cloud.siwe_message(alice, _nonce(cloud))
    assert _verify(cloud, alice, message).status_code == 200
    again = _verify(cloud, alice, message)
    assert again.status_code == 401
    assert again.json()["code"] == "siwe_nonce_invalid"


@pytest.mark.parametrize(
    ("change", "needle"),
    [
        ({"domain": "evil.example"}, "domain"),
        ({"chain_id": 1}, "Chain ID"),
        ({"nonce": "neverissued123"}, "Nonce"),
        ({"expiration_time": "2020-01-01T00:00:00Z"}, "expired"),
        ({"not_before": "2999-01-01T00:00:00Z"}, "Not Before"),
        ({"issued_at": "2999-01-01T00:00:00Z"}, "future"),
    ],
)
def test_siwe_refusals(cloud: CloudKit, change: dict, needle: str) -> None:
    alice = account("alice")
    change = dict(change)
    nonce = change.pop("nonce", None) or _nonce(cloud)
    message = cloud.siwe_message(alice, nonce, **change)
    answer = _verify(cloud, alice, message)
    assert answer.status_code == 401
    body = answer.json()
    assert body["code"] in ("siwe_invalid", "siwe_nonce_invalid")
    assert needle in body["message"]
    assert body["request_id"] == answer.headers["x-request-id"]


def test_siwe_signature_by_someone_else_is_refused(cloud: CloudKit) -> None:
    alice, mallory = account("alice"), account("mallory")
    message = cloud.siwe_message(alice, _nonce(cloud))
    answer = _verify(cloud, alice, message, signer=mallory)
    assert answer.status_code == 401
    assert "signature" in answer.json()["message"]


def test_expired_nonce_is_refused(cloud: CloudKit) -> None:
    alice = account("alice")
    nonce = _nonce(cloud)
    cloud.clock.advance(cloud.config.nonce_ttl + 1)
    answer = _verify(cloud, alice, cloud.siwe_message(alice, nonce))
    assert answer.json()["code"] == "siwe_nonce_invalid"


def test_siwe_parser_round_trips_and_refuses_garbage() -> None:
    message = siwe.SiweMessage(
        domain="example.com",
        address=account("alice").address,
        statement=None,
        uri="https://example.com",
        version="1",
        chain_id=10,
        nonce="abcdefgh12",
        issued_at="2026-01-01T00:00:00Z",
        resources=("ipfs://x", "https://example.com/y"),
    )
    assert siwe.parse(message.text()) == message
    for bad in ("", "hello", message.text().replace("Version: 1", "Version: 2")):
        with pytest.raises(siwe.SiweError):
            siwe.parse(bad)
    lower = message.text().replace(message.address, message.address.lower())
    with pytest.raises(siwe.SiweError, match="EIP-55"):
        siwe.parse(lower)


def test_missing_wrong_and_revoked_keys(cloud: CloudKit) -> None:
    assert cloud.client.get("/v1/apps").json()["code"] == "unauthorized"
    wrong = cloud.client.get("/v1/apps", headers={"Authorization": "Bearer veil_nope"})
    assert wrong.status_code == 401 and wrong.json()["code"] == "invalid_api_key"
    headers = cloud.key("alice")
    key_id = cloud.client.get("/v1/auth/keys", headers=headers).json()[0]["key_id"]
    revoked = cloud.client.delete(f"/v1/auth/keys/{key_id}", headers=headers)
    assert revoked.status_code == 200 and revoked.json()["revoked_at"] is not None
    after = cloud.client.get("/v1/apps", headers=headers)
    assert after.status_code == 401 and after.json()["code"] == "api_key_revoked"


def test_scopes_limit_what_a_key_does(cloud: CloudKit) -> None:
    headers = cloud.key("alice")
    narrow = cloud.client.post(
        "/v1/auth/keys", json={"scopes": ["apps:read"], "label": "ci"}, headers=headers
    ).json()
    reader = {"Authorization": f"Bearer {narrow['api_key']}"}
    assert cloud.client.get("/v1/apps", headers=reader).status_code == 200
    refused = cloud.client.post(
        "/v1/apps/provision", json={"name": "x", "compose": ""}, headers=reader
    )
    assert refused.status_code == 403 and refused.json()["code"] == "insufficient_scope"
    mint = cloud.client.post("/v1/auth/keys", json={"scopes": ["apps:read"]}, headers=reader)
    assert mint.json()["code"] == "insufficient_scope"
    unknown = cloud.client.post("/v1/auth/keys", json={"scopes": ["root"]}, headers=headers)
    assert unknown.status_code == 400 and unknown.json()["code"] == "unknown_scope"


def test_a_key_cannot_revoke_another_accounts_key(cloud: CloudKit) -> None:
    bob_key = cloud.client.get("/v1/auth/keys", headers=cloud.key("bob")).json()[0]["key_id"]
    answer = cloud.client.delete(f"/v1/auth/keys/{bob_key}", headers=cloud.key("alice"))
    assert answer.status_code == 404
    assert cloud.client.get("/v1/apps", headers=cloud.key("bob")).status_code == 200


def test_siwe_requests_are_rate_limited_per_client(db_url: str) -> None:
    from cloud_kit import make_kit

    kit = make_kit(db_url, auth_rate=3)
    try:
        kit.clock.advance(60 - int(kit.clock()) % 60)  # start at a window boundary
        for _ in range(3):
            assert kit.client.post("/v1/auth/siwe/nonce").status_code == 200
        refused = kit.client.post("/v1/auth/siwe/nonce")
        assert refused.status_code == 429 and refused.json()["code"] == "rate_limited"
        assert 0 < int(refused.headers["retry-after"]) <= 60
        verify = kit.client.post("/v1/auth/siwe/verify", json={"message": "x", "signature": "00"})
        assert verify.status_code == 429
        kit.clock.advance(60)
        assert kit.client.post("/v1/auth/siwe/nonce").status_code == 200
    finally:
        kit.client.close()
        kit.state.engine.dispose()
