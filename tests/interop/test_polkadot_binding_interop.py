"""Bindings signed by @polkadot/keyring (what wallets run) checked by our verify_binding."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from veil.migration.binding import (
    BindingContext,
    BindingRefused,
    binding_message,
    verify_binding,
)
from veil.migration.synthetic import keypair
from veil.substrate import ss58

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "tests" / "interop" / "js" / "polkadot_sign.js"
SEEDS = {"sr25519": "11" * 32, "ed25519": "22" * 32, "ecdsa": "33" * 32}
RECEIVER = "0x" + "5a" * 20
CONTEXT = BindingContext(bytes.fromhex("e6" * 32), 8453, "0x" + "77" * 20)


def _polkadot(payload: dict, tmp_path: Path) -> dict:
    source = tmp_path / "input.json"
    source.write_text(json.dumps(payload))
    done = subprocess.run(
        ["node", str(SCRIPT), str(source)], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


@pytest.fixture(scope="module")
def signed(tmp_path_factory: pytest.TempPathFactory) -> dict:
    accounts = {scheme: keypair(scheme, bytes.fromhex(seed)) for scheme, seed in SEEDS.items()}  # type: ignore[arg-type]
    messages = {s: binding_message(k.account, RECEIVER, CONTEXT) for s, k in accounts.items()}
    out = {}
    for scheme, seed in SEEDS.items():
        answer = _polkadot(
            {"message": messages[scheme], "seeds": {scheme: "0x" + seed}},
            tmp_path_factory.mktemp(scheme),
        )
        out[scheme] = (accounts[scheme], answer["keys"][scheme])
    return out


@pytest.mark.parametrize("scheme", ["sr25519", "ed25519", "ecdsa"])
def test_same_keys_as_polkadot_keyring(signed: dict, scheme: str) -> None:
    ours, theirs = signed[scheme]
    assert theirs["address"] == ss58.encode(ours.account)
    assert theirs["publicKey"] == "0x" + ours.public_key.hex()


@pytest.mark.parametrize("scheme", ["sr25519", "ed25519", "ecdsa"])
@pytest.mark.parametrize("form", ["bare", "wrapped"])
def test_polkadot_signatures_verify(signed: dict, scheme: str, form: str) -> None:
    ours, theirs = signed[scheme]
    signature = bytes.fromhex(theirs[form][2:])
    verified = verify_binding(ours.account, RECEIVER, signature, CONTEXT)
    assert verified.scheme == scheme
    assert verified.wrapped == (form == "wrapped")
    verify_binding(ours.account, RECEIVER, signature, CONTEXT, scheme=scheme)  # type: ignore[arg-type]


@pytest.mark.parametrize("scheme", ["sr25519", "ed25519", "ecdsa"])
def test_polkadot_signatures_do_not_transfer(signed: dict, scheme: str) -> None:
    ours, theirs = signed[scheme]
    signature = bytes.fromhex(theirs["wrapped"][2:])
    elsewhere = [
        (RECEIVER.replace("5a", "5b", 1), CONTEXT),
        (RECEIVER, BindingContext(CONTEXT.genesis_hash, 10, CONTEXT.migrator)),
        (RECEIVER, BindingContext(CONTEXT.genesis_hash, CONTEXT.chain_id, "0x" + "78" * 20)),
        (RECEIVER, BindingContext(bytes(32), CONTEXT.chain_id, CONTEXT.migrator)),
    ]
    for receiver, context in elsewhere:
        with pytest.raises(BindingRefused, match=r"not a valid"):
            verify_binding(ours.account, receiver, signature, context)
    other = keypair(scheme, bytes([0x44]) * 32)  # type: ignore[arg-type]
    with pytest.raises(BindingRefused):
        verify_binding(other.account, RECEIVER, signature, CONTEXT)
    tampered = bytes([signature[0] ^ 0x80]) + signature[1:]
    with pytest.raises(BindingRefused):
        verify_binding(ours.account, RECEIVER, tampered, CONTEXT)


def test_polkadot_accepts_signatures_veil_makes(tmp_path: Path) -> None:
    items = []
    for scheme, seed in SEEDS.items():
        key = keypair(scheme, bytes.fromhex(seed))  # type: ignore[arg-type]
        message = binding_message(key.account, RECEIVER, CONTEXT)
        signature = key.sign(("<Bytes>" + message + "</Bytes>").encode())
        items.append(
            {"message": message, "signature": "0x" + signature.hex(),
             "address": ss58.encode(key.account)}
        )  # fmt: skip
        items.append(dict(items[-1], message=message + " (tampered)"))
    answer = _polkadot({"message": "", "seeds": {}, "verify": items}, tmp_path)
    assert [v["isValid"] for v in answer["verified"]] == [True, False] * 3
    assert [v["crypto"] for v in answer["verified"][::2]] == ["sr25519", "ed25519", "ecdsa"]
