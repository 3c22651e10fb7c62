"""A tiny Substrate JSON-RPC node on 127.0.0.1 serving a fixed state, for snapshot tests.

It answers the calls a snapshot makes, over websocket or HTTP, with real trie read proofs
under a state root that its block header commits to. It can be told to drop the
connection after a number of pages (to test resumption), to slip a foreign key into a
page, or to lie: a value that differs from its proof, or a header of another block.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from websockets.sync.server import ServerConnection, serve

from veil.substrate.header import header_hash
from veil.substrate.trie import EMPTY_TRIE_ROOT, StateVersion, read_proof, trie_root

METADATA = (
    Path(__file__).resolve().parents[2].parent
    / "shared" / "fixtures" / "substrate" / "metadata" / "phala-1291.scale"
)  # fmt: skip


class FakeNode:
    def __init__(self, storage: dict[str, str], genesis: str) -> None:
        self.storage = {k.lower(): v for k, v in storage.items()}
        self.keys = sorted(self.storage)
        self.genesis = genesis
        self.trie: dict[bytes, bytes] = {}
        entries = {bytes.fromhex(k[2:]): bytes.fromhex(v[2:]) for k, v in self.storage.items()}
        self.state_root = trie_root(entries, StateVersion.V1, nodes=self.trie)
        self.header: dict[str, Any] = {
            "parentHash": "0x" + "5e" * 32,
            "number": "0x1234",
            "stateRoot": "0x" + self.state_root.hex(),
            "extrinsicsRoot": "0x" + EMPTY_TRIE_ROOT.hex(),
            "digest": {"logs": ["0x0642414245b50103000000009ddecc0f00000000"]},
        }
        self.block = "0x" + header_hash(self.header).hex()
        self.fail_after_pages: int | None = None
        self.rogue_key: str | None = None
        self.lie_about: str | None = None  # a key whose value the node alters (proof stays true)
        self.pages_served = 0
        self.calls: list[str] = []

    def answer(self, request: dict[str, Any]) -> dict[str, Any] | None:
        """The JSON-RPC reply, or None to simulate the connection dropping."""
        method, params = request["method"], request["params"]
        self.calls.append(method)
        result: Any
        if method == "chain_getBlockHash":
            result = self.genesis
        elif method == "state_getKeysPaged":
            prefix, count, start, at = params
            if at != self.block:
                return {"jsonrpc": "2.0", "id": request["id"], "error": {"code": 4003,
                        "message": f"unknown block {at}"}}  # fmt: skip
            if self.fail_after_pages is not None and self.pages_served >= self.fail_after_pages:
                return None
            self.pages_served += 1
            result = [k for k in self.keys if k.startswith(prefix) and k > start][:count]
            if self.rogue_key and result:
                result[-1] = self.rogue_key
        elif method == "state_queryStorageAt":
            keys, at = params
            changes = [[k, self.storage.get(k, "0x00")] for k in keys]
            for change in changes:
                if change[0] == self.lie_about:
                    change[1] = change[1][:-2] + ("00" if change[1][-2:] != "00" else "01")
            result = [{"block": at, "changes": changes}]
        elif method == "state_getMetadata":
            result = "0x" + METADATA.read_bytes().hex()
        elif method == "chain_getHeader":
            result = self.header if params[0] == self.block else None
        elif method == "state_getReadProof":
            keys, at = params
            proof = read_proof(self.state_root, self.trie, [bytes.fromhex(k[2:]) for k in keys])
            result = {"at": at, "proof": ["0x" + node.hex() for node in proof]}
        elif method == "state_getStorage":
            key, _at = params
            result = self.storage.get(key)
        else:
            return {"jsonrpc": "2.0", "id": request["id"], "error": {"code": -32601,
                    "message": "method not found"}}  # fmt: skip
        return {"jsonrpc": "2.0", "id": request["id"], "result": result}


@contextmanager
def websocket_node(node: FakeNode) -> Iterator[str]:
    def handler(connection: ServerConnection) -> None:
        for message in connection:
            reply = node.answer(json.loads(message))
            if reply is None:
                connection.close()
                return
            connection.send(json.dumps(reply))

    with serve(handler, "127.0.0.1", 0) as server:
        port = server.socket.getsockname()[1]
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            yield f"ws://127.0.0.1:{port}"
        finally:
            server.shutdown()
            thread.join(timeout=5)


@contextmanager
def http_node(node: FakeNode) -> Iterator[str]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            reply = node.answer(json.loads(body))
            if reply is None:
                self.send_error(503, "node went away")
                return
            data = json.dumps(reply).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
