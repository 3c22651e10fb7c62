"""The attester's errors (issue 8, defect 5): a chain outage is a 503 naming the chain, with a
code, a message and a request id, and no traceback in the attester's log."""

from __future__ import annotations

import json
import logging
import socket
import threading
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account
from web3 import Web3

from veil.attestation.api import BINDINGS as BINDINGS_PATH
from veil.chain.client import Chain
from veil.chain.deployment import ContractRecord, Deployment
from veil.merkle import build_tree
from veil.migration.binding import BindingContext, binding_message
from veil.migration.synthetic import keypair
from veil.services.attester.service import AttesterConfig, build_server
from veil.substrate.signature import wrap_bytes

MIGRATOR = "0x" + "ab" * 20
CONTEXT = BindingContext(b"\x11" * 32, 73217, Web3.to_checksum_address(MIGRATOR))
RECEIVER = "0x" + "cd" * 20
IS_CLAIMED_ABI = [{"type": "function", "name": "isClaimed", "stateMutability": "view",
                   "inputs": [{"name": "index", "type": "uint256"}],
                   "outputs": [{"name": "", "type": "bool"}]}]  # fmt: skip


def dead_rpc() -> str:
    """An address where nothing listens: the chain is down."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{probe.getsockname()[1]}"


def post(url: str, body: Any) -> tuple[int, dict[str, Any]]:
    request = urllib.request.Request(url + BINDINGS_PATH, data=json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"})  # fmt: skip
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def test_binding_while_the_chain_is_down_is_a_503_naming_the_chain(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    holder = keypair("sr25519", b"\x01" * 32)
    rpc = dead_rpc()
    deployment = Deployment(
        "t", 73217, rpc, {"Migrator": ContractRecord(MIGRATOR, 1, "", IS_CLAIMED_ABI)}
    )
    chain = Chain(Web3(Web3.HTTPProvider(rpc, request_kwargs={"timeout": 5})), deployment)
    config = AttesterConfig(signer=Account.from_key(b"\x07" * 32), db=tmp_path / "a.sqlite",
                            port=0, tree=build_tree([(0, holder.account, 10**18, 0)]),
                            context=CONTEXT, chain=chain)  # fmt: skip
    server = build_server(config)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    message = binding_message(holder.account, RECEIVER, CONTEXT).encode()
    body = {"account": "0x" + holder.account.hex(), "receiver": RECEIVER, "scheme": "sr25519",
            "signature": "0x" + holder.sign(wrap_bytes(message)).hex()}  # fmt: skip
    try:
        with caplog.at_level(logging.DEBUG, logger="veil.attester"):
            status, answer = post(server.url, body)
    finally:
        server.shutdown()
        server.server_close()
    assert status == 503, answer
    assert answer["code"] == "chain_unavailable"
    assert rpc in answer["message"] and answer["error"] == answer["message"]
    assert len(answer["request_id"]) == 32
    assert not [r for r in caplog.records if r.exc_info], "traceback in the attester log"
    assert any(answer["request_id"] in r.getMessage() for r in caplog.records)


def test_every_error_answer_has_code_message_and_request_id(tmp_path: Path) -> None:
    config = AttesterConfig(signer=Account.from_key(b"\x07" * 32), db=tmp_path / "a.sqlite",
                            port=0, tree=build_tree([(0, b"\x02" * 32, 1, 0)]), context=CONTEXT,
                            is_claimed=lambda _index: False)  # fmt: skip
    server = build_server(config)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        answers = [post(server.url, {"account": "nope"}), post(server.url, [])]
        try:
            urllib.request.urlopen(server.url + "/nowhere", timeout=10)
        except urllib.error.HTTPError as error:
            answers.append((error.code, json.loads(error.read())))
    finally:
        server.shutdown()
        server.server_close()
    assert [status for status, _ in answers] == [400, 400, 404]
    for _, answer in answers:
        assert {"code", "message", "request_id", "error"} <= set(answer), answer
    assert answers[2][1]["code"] == "not_found"


def test_attester_refuses_a_mistyped_or_zero_receiver(tmp_path: Path) -> None:
    """Issue 8, defect 3: the attester re-checksummed a mixed-case typo and signed for it."""
    holder = keypair("sr25519", b"\x01" * 32)
    config = AttesterConfig(signer=Account.from_key(b"\x07" * 32), db=tmp_path / "a.sqlite",
                            port=0, tree=build_tree([(0, holder.account, 10**18, 0)]),
                            context=CONTEXT, is_claimed=lambda _index: False)  # fmt: skip
    server = build_server(config)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    good = Web3.to_checksum_address("0x" + "cd" * 20)
    typo = good[:-1] + (good[-1].lower() if good[-1].isupper() else good[-1].upper())
    assert typo != good and typo.lower() == good.lower()
    try:
        answers = {}
        for receiver in (typo, "0x" + "00" * 20):
            # the receiver is checked before the signature: any signature shows it
            body = {"account": "0x" + holder.account.hex(), "receiver": receiver,
                    "scheme": "sr25519", "signature": "0x" + "00" * 64}  # fmt: skip
            answers[receiver] = post(server.url, body)
    finally:
        server.shutdown()
        server.server_close()
    assert answers[typo][0] == 400 and "wrong EIP-55 checksum" in answers[typo][1]["message"]
    assert "zero address" in answers["0x" + "00" * 20][1]["message"]
