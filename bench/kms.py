"""The KMS's costs: AppAuth gas from real receipts on a throwaway anvil, and the time of a
key release (simulated quote verified, decision, keys derived and sealed) and of the
customer-side env encryption, in process.

Prints one JSON line per measurement and a summary line with the machine.

Run: .venv/bin/python bench/kms.py [--releases 200] [--out bench/results/kms.jsonl]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from eth_account import Account

sys.path.insert(0, str(Path(__file__).resolve().parent))
from chainbench import emit, machine, scratch_chain
from veil import atomic
from veil.chain.compile import compile_contract
from veil.cloud.app_auth import app_salt
from veil.cloud.app_keys import RootSecret
from veil.cloud.envcrypt import decrypt_env, encrypt_env
from veil.cloud.kms import prepare_key_request
from veil.compute.quote_source import Simulator
from veil.devnet.accounts import devnet_account
from veil.services.kms.service import KmsState
from veil.tee.policy import Policy
from veil.tee.simulator import AppSpec


def app_auth_gas() -> list[dict[str, Any]]:
    owner, heir = devnet_account("alice"), devnet_account("bob")
    rows: list[dict[str, Any]] = []
    with scratch_chain() as chain:
        artifact = compile_contract("AppAuth")
        address, _ = chain.deploy(devnet_account("deployer"), artifact)
        auth = chain.at(address, artifact.abi)
        app_id = auth.functions.appIdOf(owner.address, app_salt("bench")).call()
        v1, v2 = hashlib.sha256(b"v1").digest(), hashlib.sha256(b"v2").digest()
        calls = [
            (owner, auth.functions.registerApp(app_salt("bench"), v1), "registerApp"),
            (owner, auth.functions.addComposeHash(app_id, v2), "addComposeHash"),
            (owner, auth.functions.removeComposeHash(app_id, v1), "removeComposeHash"),
            (owner, auth.functions.transferAppOwnership(app_id, heir.address),
             "transferAppOwnership"),
        ]  # fmt: skip
        for signer, call, op in calls:
            used = int(chain.send(signer, call, op)["gasUsed"])
            rows.append({"bench": "kms", "op": f"AppAuth.{op}", "gas": used})
    return rows


def _percentiles(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {
        "p50_ms": round(statistics.median(ordered) * 1000, 3),
        "p99_ms": round(ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1000, 3),
    }


def release_times(count: int) -> list[dict[str, Any]]:
    root = RootSecret(hashlib.sha256(b"bench root").digest())
    worker = Account.from_key(hashlib.sha256(b"bench worker").digest())
    app = "0x" + "5e" * 20
    compose = hashlib.sha256(b"bench compose").digest()
    state = KmsState(
        root,
        Policy(allow_simulated=True, require_event_log=True),
        lambda _app: worker.address,
        lambda a, h: a == app and h == compose.hex(),
        lambda w: w == worker.address,
    )
    source = Simulator(AppSpec(compose_hash=compose, app_id=bytes.fromhex(app[2:])))
    bodies = [prepare_key_request(app, worker, source)[0] for _ in range(count)]
    releases = []
    for body in bodies:
        start = time.perf_counter()
        state.release(app, body)
        releases.append(time.perf_counter() - start)
    env = {f"SECRET_{i}": "x" * 64 for i in range(20)}
    public = root.env_public_key(app)
    encrypts, decrypts = [], []
    private = root.env_crypt_key(app)
    for _ in range(count):
        start = time.perf_counter()
        sealed = encrypt_env(env, public)
        encrypts.append(time.perf_counter() - start)
        start = time.perf_counter()
        decrypt_env(sealed, private)
        decrypts.append(time.perf_counter() - start)
    return [
        {"bench": "kms", "op": "key_release_simulated", "n": count, **_percentiles(releases)},
        {"bench": "kms", "op": "encrypt_env_20_vars", "n": count, **_percentiles(encrypts)},
        {"bench": "kms", "op": "decrypt_env_20_vars", "n": count, **_percentiles(decrypts)},
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--releases", type=int, default=200)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    rows = app_auth_gas() + release_times(args.releases)
    rows.append({"bench": "kms", "summary": True, "machine": machine()})
    for row in rows:
        emit(row)
    if args.out is not None:
        atomic.write_text(args.out, "".join(json.dumps(r) + "\n" for r in rows))


if __name__ == "__main__":
    main()
