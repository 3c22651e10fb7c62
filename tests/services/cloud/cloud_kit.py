"""What the control-plane tests share: a fake KMS, a movable clock, signed worker syncs,
SIWE login, and a deploy in the two phases a real client goes through."""

from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import dataclass, field
from typing import Any

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from eth_account import Account
from eth_account.messages import encode_defunct
from eth_keys import keys as eth_keys
from eth_utils import keccak
from fastapi import FastAPI
from fastapi.testclient import TestClient

from veil.cloud.worker_auth import sync_message
from veil.services.cloud.app import create_app
from veil.services.cloud.service import CloudConfig
from veil.services.cloud.siwe import SiweMessage, rfc3339

KMS_KEY = eth_keys.PrivateKey(keccak(b"veil test kms"))
GATEWAY_TOKEN = "gateway-secret-token"
COMPOSE = """services:
  web:
    image: python:3.12-slim
    command: ["python", "-m", "http.server", "8080"]
    environment:
      GREETING: ${GREETING}
      MODE: ${MODE:-dev}
    ports:
      - "8080:8080"
"""
SMALL = {"vcpu": 4, "memory_mb": 8192, "disk_gb": 100, "gpu_model": 0, "gpu_count": 0}


def account(label: str) -> Any:
    return Account.from_key(keccak(text=f"veil cloud test {label}"))


def fake_kms() -> FastAPI:
    """layout2's KMS HTTP shape: a per-app X25519 key, signed as dstack's KMS signs it."""
    kms = FastAPI()

    @kms.get("/v1/kms/info")
    def info() -> dict[str, Any]:
        return {
            "signer": KMS_KEY.public_key.to_checksum_address(),
            "simulated": True,
            "policy": "test",
        }

    @kms.get("/v1/apps/{app_id}/env-pubkey")
    def env_pubkey(app_id: str) -> dict[str, str]:
        secret = X25519PrivateKey.from_private_bytes(keccak(b"env" + bytes.fromhex(app_id[2:])))
        public = secret.public_key().public_bytes_raw()
        digest = keccak(b"dstack-env-encrypt-pubkey:" + bytes.fromhex(app_id[2:]) + public)
        signature = KMS_KEY.sign_msg_hash(digest).to_bytes()
        return {
            "public_key": public.hex(),
            "signature": signature.hex(),
            "signer": KMS_KEY.public_key.to_checksum_address(),
        }

    return kms


@dataclass
class Clock:
    offset: float = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset

    def advance(self, seconds: float) -> None:
        self.offset += seconds


@dataclass
class CloudKit:
    client: TestClient
    config: CloudConfig
    clock: Clock
    keys: dict[str, str] = field(default_factory=dict)

    @property
    def state(self) -> Any:
        return self.client.app.state.cloud  # type: ignore[attr-defined]

    def tick(self) -> int:
        return int(self.state.scheduler.tick())

    def siwe_message(self, who: Any, nonce: str, **changes: Any) -> str:
        now = int(self.clock())
        fields: dict[str, Any] = {
            "domain": "testserver",
            "address": who.address,
            "statement": "Sign in to veil cloud",
            "uri": "http://testserver",
            "version": "1",
            "chain_id": self.config.chain_id,
            "nonce": nonce,
            "issued_at": rfc3339(now),
            "expiration_time": rfc3339(now + 300),
        }
        fields.update(changes)
        return SiweMessage(**fields).text()

    def login(self, who: Any, scopes: list[str] | None = None) -> str:
        nonce = self.client.post("/v1/auth/siwe/nonce").json()["nonce"]
        message = self.siwe_message(who, nonce)
        signature = who.sign_message(encode_defunct(text=message)).signature.hex()
        body: dict[str, Any] = {"message": message, "signature": signature}
        if scopes is not None:
            body["scopes"] = scopes
        answer = self.client.post("/v1/auth/siwe/verify", json=body)
        assert answer.status_code == 200, answer.text
        return str(answer.json()["api_key"])

    def key(self, label: str) -> dict[str, str]:
        """Authorization headers for the account `label` (logged in once)."""
        if label not in self.keys:
            self.keys[label] = self.login(account(label))
        return {"Authorization": f"Bearer {self.keys[label]}"}

    def sync(
        self,
        worker: Any,
        *,
        provider: str | None = None,
        capacity: dict[str, int] | None = None,
        apps: list[dict[str, Any]] | None = None,
        address: str | None = "127.0.0.1:9000",
        timestamp: int | None = None,
        signer: Any = None,
        params: dict[str, Any] | None = None,
    ) -> Any:
        body = {
            "worker": worker.address,
            "provider": provider or account("provider").address,
            "runtime": "process",
            "simulated": True,
            "capacity": capacity or SMALL,
            "address": address,
            "apps": apps or [],
        }
        raw = json.dumps(body).encode()
        stamp = int(self.clock()) if timestamp is None else timestamp
        signature = (
            (signer or worker)
            .sign_message(encode_defunct(text=sync_message(stamp, raw)))
            .signature.hex()
        )
        return self.client.post(
            "/v1/workers/sync",
            params=params,
            content=raw,
            headers={
                "Content-Type": "application/json",
                "X-Veil-Worker": worker.address,
                "X-Veil-Timestamp": str(stamp),
                "X-Veil-Signature": signature,
            },
        )

    def provision(self, who: str, name: str = "web", **changes: Any) -> Any:
        body = {
            "name": name,
            "compose": COMPOSE,
            "instance_type": "tdx.small",
            "allowed_envs": ["GREETING"],
            **changes,
        }
        return self.client.post("/v1/apps/provision", json=body, headers=self.key(who))

    def commit(
        self, who: str, provision: dict[str, Any], env_keys: list[str] | None = None, **changes: Any
    ) -> Any:
        keys = ["GREETING"] if env_keys is None else env_keys
        body = {
            "provision_id": provision["provision_id"],
            "encrypted_env": os.urandom(80).hex() if keys else "",
            "env_keys": keys,
            **changes,
        }
        return self.client.post(
            f"/v1/apps/{provision['app_id']}/commit", json=body, headers=self.key(who)
        )

    def deploy(self, who: str, name: str = "web", **changes: Any) -> dict[str, Any]:
        provisioned = self.provision(who, name, **changes)
        assert provisioned.status_code == 200, provisioned.text
        committed = self.commit(who, provisioned.json())
        assert committed.status_code == 200, committed.text
        return dict(committed.json())

    def report(self, deployment: dict[str, Any], state: str, **extra: Any) -> dict[str, Any]:
        return {
            "deployment_id": deployment["deployment_id"],
            "app_id": deployment["app_id"],
            "state": state,
            **extra,
        }

    def events(self, who: str, app_id: str, last: int | None = None) -> list[dict[str, Any]]:
        headers = dict(self.key(who))
        if last is not None:
            headers["Last-Event-ID"] = str(last)
        answer = self.client.get(f"/v1/apps/{app_id}/events?follow=0", headers=headers)
        assert answer.status_code == 200, answer.text
        return parse_sse(answer.text)


def parse_sse(text: str) -> list[dict[str, Any]]:
    out = []
    for block in text.replace("\r\n", "\n").split("\n\n"):
        item: dict[str, Any] = {}
        for line in block.split("\n"):
            name, _, value = line.partition(": ")
            if name == "id":
                item["id"] = int(value)
            elif name == "data":
                item.update(json.loads(value))
        if "id" in item:
            out.append(item)
    return out


def make_kit(db_url: str, **config: Any) -> CloudKit:
    clock = Clock()
    settings = CloudConfig(
        db_url=db_url,
        kms_url="http://kms",
        gateway_token=GATEWAY_TOKEN,
        clock=clock,
        kms_client=TestClient(fake_kms()),
        **{"run_scheduler": False, **config},
    )
    client = TestClient(create_app(settings), raise_server_exceptions=False)
    return CloudKit(client, settings, clock)


def quote_sha(quote: bytes) -> str:
    return hashlib.sha256(quote).hexdigest()
