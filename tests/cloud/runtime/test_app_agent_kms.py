"""The app loop with the real KMS service over HTTP: keys reach only the app's compose.

The customer encrypts a secret to the KMS-signed env key; the worker's loop asks the KMS
with a simulated quote that claims the deployment's compose hash, decrypts, and the secret
arrives in the app's process. A compose hash AppAuth does not allow gets nothing.
"""

from __future__ import annotations

import hashlib
import tomllib
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from eth_account import Account
from runtime_kit import APP_ID, ServerThread, deployment, deployment_json, echo_compose
from starlette.applications import Starlette
from starlette.routing import Route
from test_app_agent import CAPACITY, PROVIDER, WORKER, FakeControlPlane, _until

from veil.cloud.agent import AppLoop, SyncClient
from veil.cloud.app_keys import RootSecret
from veil.cloud.envcrypt import encrypt_env
from veil.cloud.kms import devnet_kms_policy, fetch_env_pubkey
from veil.cloud.runtime.process import ProcessRuntime
from veil.compute.quote_source import Simulator
from veil.services.kms.server import create_app
from veil.services.kms.service import KmsState
from veil.tee.policy import policy_from_dict

ROOT = RootSecret(hashlib.sha256(b"agent kms test root").digest())
OWNER = Account.from_key(b"\x07" * 32).address


@pytest.fixture
def world(tmp_path: Path) -> Iterator[tuple]:
    allowed: set[tuple[str, str]] = set()
    state = KmsState(
        ROOT,
        policy_from_dict(tomllib.loads(devnet_kms_policy())),
        lambda app_id: OWNER if app_id == APP_ID else None,
        lambda app_id, compose_hash: (app_id, compose_hash) in allowed,
        lambda worker: worker == WORKER.address,
    )
    kms = ServerThread(create_app(state))
    fake = FakeControlPlane()
    control_plane = ServerThread(
        Starlette(routes=[Route("/v1/workers/sync", fake.sync, methods=["POST"])])
    )
    runtime = ProcessRuntime(tmp_path / "state", stop_grace=2)
    loop = AppLoop(
        client=SyncClient(control_plane.url, WORKER),
        runtime=runtime,
        source=Simulator(),
        provider=PROVIDER,
        capacity=CAPACITY,
        interval=0.1,
    )  # the real opener: veil.cloud.kms.request_app_keys + envcrypt.decrypt_env
    yield allowed, kms, fake, loop, runtime
    for deployment_id in runtime.deployments():
        runtime.remove(deployment_id)
    control_plane.close()
    kms.close()


def _sealed(kms: ServerThread, env: dict[str, str]) -> str:
    public = fetch_env_pubkey(kms.url, APP_ID, ROOT.signer().address)
    return encrypt_env(env, public)


def test_the_secret_reaches_only_the_allowed_compose(world):
    allowed, kms, fake, loop, _runtime = world
    sealed = _sealed(kms, {"SECRET": "kms-released", "NOT_ALLOWED": "dropped"})
    item = deployment(encrypted_env=sealed)
    item = item.__class__(**{**item.__dict__, "kms_url": kms.url})
    allowed.add((APP_ID, item.compose_hash))
    fake.deployments = [deployment_json(item)]
    app = _until(loop, fake, "dep-1", "running")
    base = f"http://{app['ports']['8080']}"
    assert httpx.get(base + "/env/SECRET", timeout=5).text == "kms-released"
    # only the compose's allowed_envs pass (SECRET, NAME): the host cannot add variables
    assert httpx.get(base + "/env/NOT_ALLOWED", timeout=5).status_code == 404

    # an update to a compose hash AppAuth does not allow: the KMS refuses, nothing starts
    other = deployment(echo_compose({"EXTRA": "1"}), encrypted_env=sealed)
    other = other.__class__(**{**other.__dict__, "kms_url": kms.url})
    assert other.compose_hash != item.compose_hash
    fake.deployments = [deployment_json(other)]
    outcome = loop.round(2)
    assert outcome.started == [] and "compose_not_allowed" in outcome.errors[0]
    loop.round(3)
    reported = fake.last_app("dep-1")
    assert reported["state"] == "running"  # the old revision keeps serving meanwhile...
    assert reported["error"].startswith("update not applied: KMS refused: compose_not_allowed")
    assert httpx.get(base + "/env/SECRET", timeout=5).text == "kms-released"
