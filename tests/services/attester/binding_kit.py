"""Shared pieces of the attester abuse tests: holders, their bindings, a served attester."""

from __future__ import annotations

import http.client
import json
import select
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from eth_account import Account

from veil.attestation.api import BINDINGS as BINDINGS_PATH
from veil.merkle import MerkleTree, build_tree
from veil.migration.binding import BindingContext, binding_message
from veil.migration.synthetic import Keypair, keypair
from veil.services.attester.server import AttesterServer, Limits
from veil.services.attester.service import AttesterConfig, build_server
from veil.substrate.signature import wrap_bytes

CONTEXT = BindingContext(b"\x11" * 32, 73217, "0x" + "ab" * 20)
RECEIVER = "0x" + "cd" * 20
ATTESTER = Account.from_key(b"\x07" * 32)
SCHEMES = ("sr25519", "ed25519", "ecdsa")


def make_holders(count: int, schemes: tuple[str, ...] = SCHEMES) -> list[Keypair]:
    return [keypair(schemes[i % len(schemes)], (i + 1).to_bytes(32, "big")) for i in range(count)]  # type: ignore[arg-type]


def tree_for(holders: list[Keypair]) -> MerkleTree:
    values = sorted(((0, h.account, 10**18, 0) for h in holders), key=lambda v: v[1])
    return build_tree([(i, v[1], v[2], v[3]) for i, v in enumerate(values)])


def body_for(holder: Keypair, receiver: str = RECEIVER) -> dict[str, Any]:
    signature = holder.sign(wrap_bytes(binding_message(holder.account, receiver, CONTEXT).encode()))
    body: dict[str, Any] = {
        "account": "0x" + holder.account.hex(),
        "receiver": receiver,
        "scheme": holder.scheme,
        "signature": "0x" + signature.hex(),
    }
    if holder.scheme == "ecdsa":
        body["pubkey"] = "0x" + holder.public_key.hex()
    return body


@dataclass
class Served:
    server: AttesterServer
    db: Path
    claimed_checks: list[int] = field(default_factory=list)

    @property
    def port(self) -> int:
        return int(self.server.server_address[1])

    @property
    def url(self) -> str:
        return self.server.url


@contextmanager
def serving(
    db: Path, holders: list[Keypair], limits: Limits | None = None, **extra: Any
) -> Iterator[Served]:
    checks: list[int] = []

    def is_claimed(index: int) -> bool:
        checks.append(index)
        return False

    config = AttesterConfig(
        signer=ATTESTER, db=db, port=0, tree=tree_for(holders), context=CONTEXT,
        is_claimed=is_claimed, limits=limits or Limits(), **extra,
    )  # fmt: skip
    server = build_server(config)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield Served(server, db, checks)
    finally:
        server.shutdown()
        server.server_close()


def post(
    port: int, body: Any, path: str = BINDINGS_PATH, headers: dict[str, str] | None = None
) -> tuple[int, dict[str, Any], dict[str, str]]:
    """One POST on a fresh connection: (status, JSON answer, headers)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=20)
    try:
        conn.request("POST", path, json.dumps(body).encode(),
                     {"Content-Type": "application/json", **(headers or {})})  # fmt: skip
        response = conn.getresponse()
        return response.status, json.loads(response.read()), dict(response.getheaders())
    finally:
        conn.close()


def raw_exchange(port: int, chunks: list[bytes], pause: float = 0.0, wait: float = 10.0) -> bytes:
    """Send `chunks` (pausing between them) until the server answers, then read until it
    closes (stopping early, so our sending does not turn its close into a reset)."""
    with socket.create_connection(("127.0.0.1", port), timeout=wait) as sock:
        try:
            for chunk in chunks:
                if select.select([sock], [], [], 0)[0]:
                    break
                sock.sendall(chunk)
                time.sleep(pause)
        except OSError:
            pass  # the server may hang up mid-send: what it answered is what we check
        received = b""
        try:
            while True:
                part = sock.recv(65536)
                if not part:
                    break
                received += part
        except (ConnectionResetError, TimeoutError):
            pass
        return received


def parse_answer(raw: bytes) -> tuple[int, dict[str, str], dict[str, Any]]:
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    status = int(lines[0].split()[1])
    headers = {k.strip().lower(): v.strip() for k, v in (ln.split(":", 1) for ln in lines[1:])}
    length = int(headers.get("content-length", len(body)))
    return status, headers, json.loads(body[:length])
