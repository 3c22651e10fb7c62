"""A minimal Substrate JSON-RPC client: just the calls a snapshot needs.

It speaks ws:// (what nodes expose by default) and http:// (what archive gateways often
expose), one request at a time, so a snapshot never depends on a heavyweight client.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Sequence
from types import TracebackType
from typing import Any

from veil.errors import ChainError, InputError
from veil.substrate.trie import ProofError, verify_read_proof


class SubstrateRpc:
    """One connection to a node; use as a context manager."""

    def __init__(self, url: str, *, timeout: float = 60.0) -> None:
        if not url.startswith(("ws://", "wss://", "http://", "https://")):
            raise InputError(f"rpc url {url!r}: expected ws://, wss://, http:// or https://")
        self.url = url
        self.timeout = timeout
        self._ids = itertools.count(1)
        self._ws: Any = None

    def __enter__(self) -> SubstrateRpc:
        if self.url.startswith("ws"):
            from websockets.sync.client import connect

            try:
                self._ws = connect(self.url, open_timeout=self.timeout, max_size=None)
            except (OSError, TimeoutError) as error:
                raise ChainError(f"rpc {self.url}: cannot connect ({error})") from None
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._ws is not None:
            self._ws.close()
            self._ws = None

    def call(self, method: str, params: list[Any]) -> Any:
        request = {"jsonrpc": "2.0", "id": next(self._ids), "method": method, "params": params}
        import urllib.error  # urllib.request takes ~0.05 s to import; offline commands skip it
        import urllib.request

        try:
            if self._ws is not None:
                self._ws.send(json.dumps(request))
                answer = json.loads(self._ws.recv(timeout=self.timeout))
            else:
                body = json.dumps(request).encode()
                http = urllib.request.Request(
                    self.url, data=body, headers={"Content-Type": "application/json"}
                )
                with urllib.request.urlopen(http, timeout=self.timeout) as reply:
                    answer = json.loads(reply.read())
        except (OSError, TimeoutError, urllib.error.URLError) as error:
            raise ChainError(f"rpc {self.url}: {method} failed ({error})") from None
        except Exception as error:  # websockets' ConnectionClosed and friends
            if type(error).__module__.startswith("websockets"):
                raise ChainError(f"rpc {self.url}: {method} failed ({error})") from None
            raise
        if "error" in answer:
            raise ChainError(f"rpc {self.url}: {method} returned error {answer['error']}")
        return answer.get("result")

    def genesis_hash(self) -> str:
        return str(self.call("chain_getBlockHash", [0]))

    def keys_paged(self, prefix: str, count: int, start_key: str | None, at: str) -> list[str]:
        return list(self.call("state_getKeysPaged", [prefix, count, start_key or prefix, at]))

    def query_storage_at(self, keys: list[str], at: str) -> dict[str, str | None]:
        """Values of `keys` at block `at` (absent keys map to None)."""
        result = self.call("state_queryStorageAt", [keys, at])
        values: dict[str, str | None] = {}
        for change_set in result or []:
            for key, value in change_set.get("changes", []):
                values[key] = value
        return values

    def storage_page(
        self, prefix: str, count: int, start_key: str | None, at: str, *, outside: str
    ) -> list[tuple[str, str]]:
        """Up to `count` (key, value) pairs under `prefix` after `start_key`, in key order.

        A key the node lists outside the prefix (`outside` says what was asked for) or
        without a value is refused: paging and resume rely on both. Values still have to be
        checked against a read proof (`check_proven`)."""
        keys = self.keys_paged(prefix, count, start_key, at)
        for key in keys:
            if not key.lower().startswith(prefix):
                raise InputError(f"storage key {key}: {outside}")
        values = self.query_storage_at(keys, at) if keys else {}
        pairs: list[tuple[str, str]] = []
        for key in keys:
            value = values.get(key)
            if value is None:
                raise InputError(f"storage key {key}: listed by the node but has no value")
            pairs.append((key, value))
        return pairs

    def metadata(self, at: str) -> str:
        """`state_getMetadata` at block `at`, as the node returns it (0x-hex SCALE)."""
        result = self.call("state_getMetadata", [at])
        if not isinstance(result, str):
            raise ChainError(f"rpc {self.url}: state_getMetadata returned no metadata for {at}")
        return result

    def header(self, at: str) -> dict[str, Any]:
        header = self.call("chain_getHeader", [at])
        if not isinstance(header, dict):
            raise ChainError(f"rpc {self.url}: block {at} is unknown to the node (no header)")
        return header

    def read_proof(self, keys: list[str], at: str) -> list[str]:
        """`state_getReadProof`: the trie nodes proving `keys` at block `at`."""
        result = self.call("state_getReadProof", [keys, at])
        proof = result.get("proof") if isinstance(result, dict) else None
        if not isinstance(proof, list) or not all(isinstance(node, str) for node in proof):
            raise ChainError(f"rpc {self.url}: state_getReadProof returned no proof for {at}")
        return proof

    def storage(self, key: str, at: str) -> str | None:
        value = self.call("state_getStorage", [key, at])
        return None if value is None else str(value)


def check_proven(
    root: bytes, proof: list[str], pairs: Sequence[tuple[str, str | None]], at: str
) -> None:
    """Each value a node served must be the one its read proof shows under the block's
    state root (None: the proof must show the key absent), so a node cannot alter or hide
    storage unnoticed."""
    try:
        nodes = [bytes.fromhex(node.removeprefix("0x")) for node in proof]
        keys = [bytes.fromhex(key[2:]) for key, _ in pairs]
    except ValueError:
        raise ChainError(f"block {at}: read proof is not hex") from None
    try:
        proven = verify_read_proof(root, nodes, keys)
    except ProofError as error:
        raise ChainError(f"block {at}: {error}") from None
    for (key, value), raw_key in zip(pairs, keys, strict=True):
        shown = proven[raw_key]
        shown_hex = None if shown is None else "0x" + shown.hex()
        if shown_hex != (None if value is None else value.lower()):
            raise ChainError(
                f"storage key {key}: the node's value differs from what its read proof shows "
                f"under the state root of block {at}"
            )
