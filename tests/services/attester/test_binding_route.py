"""The bindings route over real HTTP: it signs only what it verified, and says why not."""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account

from veil.attestation.api import BINDINGS as BINDINGS_PATH
from veil.merkle import build_tree
from veil.migration import attestation
from veil.migration.binding import BindingContext, binding_message
from veil.migration.synthetic import Keypair, keypair
from veil.services.attester.service import AttesterConfig, build_server
from veil.services.attester.store import Store
from veil.substrate.signature import wrap_bytes

CONTEXT = BindingContext(b"\x11" * 32, 73217, "0x" + "ab" * 20)
RECEIVER = "0x" + "cd" * 20
ATTESTER = Account.from_key(b"\x07" * 32)


@pytest.fixture(scope="module")
def holders() -> list[Keypair]:
    return [keypair(s, bytes([i + 1]) * 32) for i, s in enumerate(("sr25519", "ed25519", "ecdsa"))]


@pytest.fixture
def served(tmp_path: Path, holders: list[Keypair]) -> Iterator[tuple[str, dict[int, bool], Path]]:
    values = sorted(
        [(0, h.account, 10**18 * (i + 1), 10**17 * i) for i, h in enumerate(holders)],
        key=lambda v: v[1],
    )
    values = [(i, v[1], v[2], v[3]) for i, v in enumerate(values)]
    claimed: dict[int, bool] = {}
    db = tmp_path / "attester.sqlite"
    config = AttesterConfig(
        signer=ATTESTER,
        db=db,
        port=0,
        tree=build_tree(values),
        context=CONTEXT,
        is_claimed=lambda index: claimed.get(index, False),
    )
    server = build_server(config)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.url, claimed, db
    finally:
        server.shutdown()
        server.server_close()


def post(url: str, body: Any, raw: bytes | None = None) -> tuple[int, dict[str, Any]]:
    data = raw if raw is not None else json.dumps(body).encode()
    request = urllib.request.Request(
        url + BINDINGS_PATH, data=data, headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def body_for(holder: Keypair, receiver: str = RECEIVER, wrap: bool = True) -> dict[str, Any]:
    message = binding_message(holder.account, receiver, CONTEXT).encode()
    signed = holder.sign(wrap_bytes(message) if wrap else message)
    body = {
        "account": "0x" + holder.account.hex(),
        "receiver": receiver,
        "scheme": holder.scheme,
        "signature": "0x" + signed.hex(),
    }
    if holder.scheme == "ecdsa":
        body["pubkey"] = "0x" + holder.public_key.hex()
    return body


@pytest.mark.parametrize("scheme_index", [0, 1, 2])
@pytest.mark.parametrize("wrap", [True, False])
def test_valid_binding_is_signed_and_recorded(
    served: tuple[str, dict[int, bool], Path], holders: list[Keypair], scheme_index: int, wrap: bool
) -> None:
    url, _, db = served
    holder = holders[scheme_index]
    body = body_for(holder, wrap=wrap)
    status, answer = post(url, body)
    assert status == 200, answer
    a = answer["attestation"]
    bound = attestation.signature_hash(bytes.fromhex(body["signature"][2:]), holder.scheme)
    assert answer["signatureHash"] == "0x" + bound.hex()
    assert answer["signature"] == body["signature"]  # already bare: published as sent
    vrs = (a["v"], bytes.fromhex(a["r"][2:]), bytes.fromhex(a["s"][2:]))
    signer = attestation.recover_signer(
        vrs, holder.account, RECEIVER, bound, CONTEXT.chain_id, CONTEXT.migrator
    )
    assert signer == ATTESTER.address
    # the attestation covers this signature only: any other one recovers someone else
    other = attestation.signature_hash(b"\x01" * len(bytes.fromhex(body["signature"][2:])),
                                       holder.scheme)  # fmt: skip
    assert (
        attestation.recover_signer(
            vrs, holder.account, RECEIVER, other, CONTEXT.chain_id, CONTEXT.migrator
        )
        != ATTESTER.address
    )
    assert answer["scheme"] == holder.scheme
    rows = Store(db).bindings_for("0x" + holder.account.hex())
    assert [r["receiver"].lower() for r in rows] == [RECEIVER]
    assert rows[0]["digest"] == answer["digest"]


def test_multisignature_form_binds_the_same_bare_signature(
    served: tuple[str, dict[int, bool], Path], holders: list[Keypair]
) -> None:
    """A wallet's SCALE MultiSignature (scheme byte first) is attested as the bare signature
    the claim will publish, under the same signatureHash."""
    url, _, _ = served
    holder = holders[0]  # sr25519
    body = body_for(holder)
    bare = bytes.fromhex(body["signature"][2:])
    tagged = dict(body, signature="0x01" + bare.hex())
    status, answer = post(url, tagged)
    assert status == 200, answer
    assert answer["signature"] == "0x" + bare.hex()
    assert answer["signatureHash"] == "0x" + attestation.signature_hash(bare, "sr25519").hex()


def test_signature_for_another_receiver_is_refused(
    served: tuple[str, dict[int, bool], Path], holders: list[Keypair]
) -> None:
    url, _, db = served
    body = body_for(holders[0])
    body["receiver"] = "0x" + "ee" * 20
    status, answer = post(url, body)
    assert status == 422
    assert "not a valid" in answer["error"]
    assert Store(db).bindings_for(body["account"]) == []


def test_signature_for_another_chain_is_refused(
    served: tuple[str, dict[int, bool], Path], holders: list[Keypair]
) -> None:
    url, _, _ = served
    other = BindingContext(CONTEXT.genesis_hash, 1, CONTEXT.migrator)
    holder = holders[1]
    message = wrap_bytes(binding_message(holder.account, RECEIVER, other).encode())
    body = body_for(holder)
    body["signature"] = "0x" + holder.sign(message).hex()
    assert post(url, body)[0] == 422


def test_claimed_leaf_is_refused(
    served: tuple[str, dict[int, bool], Path], holders: list[Keypair]
) -> None:
    url, claimed, _ = served
    for index in range(3):
        claimed[index] = True
    status, answer = post(url, body_for(holders[0]))
    assert status == 409 and "already claimed" in answer["error"]


def test_unknown_account_is_404(served: tuple[str, dict[int, bool], Path]) -> None:
    stranger = keypair("sr25519", b"\x99" * 32)
    status, answer = post(served[0], body_for(stranger))
    assert status == 404 and "not in the migration tree" in answer["error"]


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        ([], "JSON object"),
        ({"account": "x"}, "missing field"),
        ({"account": "x", "receiver": RECEIVER, "signature": "0x00", "extra": 1}, "unknown field"),
        ({"account": "0x" + "01" * 32, "receiver": "nope", "signature": "0x" + "00" * 64},
         "receiver"),
        ({"account": "0x" + "01" * 32, "receiver": RECEIVER, "signature": "0x1234"}, "bytes"),
        ({"account": "0x" + "01" * 32, "receiver": RECEIVER, "signature": "0x" + "00" * 64,
          "scheme": "rsa"}, "scheme"),
    ],
)  # fmt: skip
def test_malformed_bodies_get_400(
    served: tuple[str, dict[int, bool], Path], body: Any, problem: str
) -> None:
    status, answer = post(served[0], body)
    assert status == 400
    assert problem in answer["error"]


def test_not_json_and_oversized(served: tuple[str, dict[int, bool], Path]) -> None:
    assert post(served[0], None, raw=b"{not json")[0] == 400
    status, answer = post(served[0], None, raw=b"x" * (64 * 1024))
    assert status == 413 and "exceeds" in answer["error"]


def test_fast_signer_matches_the_reference_signing() -> None:
    account, receiver = b"\x05" * 32, "0x" + "cd" * 20
    bound = attestation.signature_hash(b"\x09" * 64, "ed25519")
    fast = attestation.BindingSigner(ATTESTER.key, CONTEXT.chain_id, CONTEXT.migrator)
    signed, digest = fast.sign(account, attestation._address(receiver, "receiver"), bound)
    reference = attestation.sign_binding(
        ATTESTER.key, account, receiver, bound, CONTEXT.chain_id, CONTEXT.migrator
    )
    assert digest == attestation.binding_digest(
        account, receiver, bound, CONTEXT.chain_id, CONTEXT.migrator
    )
    assert signed == reference
