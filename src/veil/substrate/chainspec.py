"""Raw chain specs: their storage, their runtime's trie version, their genesis hash.

A raw spec is the genesis state itself; its genesis hash is what every wallet, indexer and
node of the chain calls the chain. Recomputing it from the spec's storage ties a snapshot
of that storage to the published chain without trusting whoever handed over the file.

The trie version is the genesis runtime's, read from the `runtime_version` custom section
of the Wasm in `:code` (zstd-compressed behind Substrate's 8-byte magic): the spec does not
say it anywhere else, and guessing it gives a different root.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from veil.errors import InputError
from veil.substrate.scale import decode_compact
from veil.substrate.trie import (
    CHILD_STORAGE_PREFIX,
    StateVersion,
    genesis_hash,
    trie_root,
)

CODE_KEY = b":code"
_ZSTD_MAGIC = bytes.fromhex("52bc537646db8e05")
_WASM_MAGIC = b"\x00asm"
_CODE_SIZE_LIMIT = 50 * 1024 * 1024  # Substrate's CODE_BLOB_BOMB_LIMIT


@dataclass(frozen=True)
class RuntimeVersion:
    """The fields of `sp_version::RuntimeVersion` the Wasm custom section carries."""

    spec_name: str
    spec_version: int
    state_version: StateVersion
    state_version_declared: bool


@dataclass(frozen=True)
class ChainSpec:
    """A raw spec's identity and storage (top trie, and default child tries by key)."""

    path: Path
    name: str
    chain_id: str
    properties: dict[str, Any]
    top: dict[bytes, bytes]
    children: dict[bytes, dict[bytes, bytes]]
    legacy_format: bool

    @property
    def token_decimals(self) -> int | None:
        decimals = self.properties.get("tokenDecimals")
        if isinstance(decimals, list):
            decimals = decimals[0] if decimals else None
        return decimals if isinstance(decimals, int) else None


@dataclass(frozen=True)
class GenesisState:
    """What `veil substrate genesis-hash` reports for a spec."""

    state_root: bytes
    genesis_hash: bytes
    state_version: StateVersion
    state_version_source: str
    keys: int


def _hex_map(mapping: Any, where: str) -> dict[bytes, bytes]:
    if not isinstance(mapping, dict):
        raise InputError(f"{where} is not an object of hex keys and values")
    out: dict[bytes, bytes] = {}
    for key, value in mapping.items():
        if not (isinstance(key, str) and isinstance(value, str)):
            raise InputError(f"{where}: key {key!r:.80} and its value must be hex strings")
        if not (key.startswith("0x") and value.startswith("0x")):
            raise InputError(f"{where}: key {key:.80} or its value is not 0x-prefixed hex")
        try:
            out[bytes.fromhex(key[2:])] = bytes.fromhex(value[2:])
        except ValueError:
            raise InputError(f"{where}: key {key:.80} or its value is not valid hex") from None
    return out


def load_chain_spec(path: str | Path) -> ChainSpec:
    """Read a raw chain spec; refuses plain (non-raw) specs and malformed files in one line."""
    path = Path(path)
    try:
        document = orjson.loads(path.read_bytes())
    except OSError as exc:
        raise InputError(f"{path}: cannot read ({exc.strerror})") from None
    except orjson.JSONDecodeError as exc:
        raise InputError(f"{path}: not JSON ({exc})") from None
    return chain_spec_from_document(document, path)


def chain_spec_from_document(document: Any, path: Path) -> ChainSpec:
    """The same, from a document already parsed (a snapshot reads the file only once)."""
    if not isinstance(document, dict) or not isinstance(document.get("genesis"), dict):
        raise InputError(f"{path}: not a chain spec (no genesis object)")
    genesis = document["genesis"]
    if "raw" not in genesis:
        raise InputError(
            f"{path}: not a raw chain spec (genesis has {sorted(genesis)!r}, no raw); "
            "build one with `<node> build-spec --raw`"
        )
    raw = genesis["raw"]
    legacy = isinstance(raw, list)
    if legacy:
        # Specs written before mid-2019 hold genesis.raw as [top, children].
        if len(raw) not in (1, 2):
            raise InputError(
                f"{path}: 2019-format raw spec (genesis.raw is a list) with {len(raw)} items; "
                "expected [top] or [top, children]"
            )
        top_raw, children_raw = raw[0], (raw[1] if len(raw) == 2 else {})
    elif isinstance(raw, dict):
        if "top" not in raw:
            raise InputError(f"{path}: genesis.raw has no top storage")
        top_raw, children_raw = raw["top"], raw.get("childrenDefault", {})
    else:
        raise InputError(f"{path}: genesis.raw is neither an object nor a 2019-format list")
    top = _hex_map(top_raw, f"{path}: genesis.raw.top")
    if not isinstance(children_raw, dict):
        raise InputError(f"{path}: genesis.raw.childrenDefault is not an object")
    children = {}
    for child_key, child in children_raw.items():
        where = f"{path}: child trie {child_key:.80}"
        if not isinstance(child_key, str) or not child_key.startswith("0x"):
            raise InputError(f"{where}: key is not 0x-prefixed hex")
        try:
            key = bytes.fromhex(child_key[2:])
        except ValueError:
            raise InputError(f"{where}: key is not valid hex") from None
        children[key] = _hex_map(child, where)
    properties = document.get("properties") or {}
    return ChainSpec(
        path=path,
        name=str(document.get("name", "")),
        chain_id=str(document.get("id", "")),
        properties=properties if isinstance(properties, dict) else {},
        top=top,
        children=children,
        legacy_format=legacy,
    )


def _leb128(data: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        shift += 7
        if byte < 0x80:
            return result, pos


def _scale_str(data: bytes, pos: int) -> tuple[str, int]:
    length, pos = decode_compact(data, pos)
    return data[pos : pos + length].decode("utf-8", "replace"), pos + length


def _wasm(code: bytes) -> bytes:
    if code.startswith(_ZSTD_MAGIC):
        try:
            import zstandard
        except ImportError:  # pragma: no cover - declared dependency
            raise InputError("reading a compressed runtime needs the zstandard package") from None
        try:
            inflater = zstandard.ZstdDecompressor().decompressobj()
            code = inflater.decompress(code[len(_ZSTD_MAGIC) :])
        except zstandard.ZstdError as exc:
            raise InputError(f":code is not a valid zstd-compressed runtime ({exc})") from None
        if len(code) > _CODE_SIZE_LIMIT:
            raise InputError(":code decompresses past Substrate's 50 MiB limit")
    if not code.startswith(_WASM_MAGIC):
        raise InputError(":code is not a Wasm runtime")
    return code


def runtime_version(code: bytes) -> RuntimeVersion:
    """The runtime version embedded in a runtime's Wasm (`runtime_version` custom section)."""
    wasm = _wasm(code)
    pos = 8
    try:
        while pos < len(wasm):
            section, pos = wasm[pos], pos + 1
            size, pos = _leb128(wasm, pos)
            end = pos + size
            if section == 0:
                name_len, name_at = _leb128(wasm, pos)
                if wasm[name_at : name_at + name_len] == b"runtime_version":
                    return _decode_runtime_version(wasm[name_at + name_len : end])
            pos = end
    except IndexError:
        raise InputError(":code is a truncated Wasm module") from None
    raise InputError(":code has no runtime_version section (not a Substrate runtime)")


def _decode_runtime_version(payload: bytes) -> RuntimeVersion:
    spec_name, pos = _scale_str(payload, 0)
    _impl_name, pos = _scale_str(payload, pos)
    spec_version = int.from_bytes(payload[pos + 4 : pos + 8], "little")
    pos += 12  # authoring_version, spec_version, impl_version
    apis, pos = decode_compact(payload, pos)
    pos += 12 * apis + 4  # (api id, version) pairs, transaction_version
    declared = pos < len(payload)
    version = StateVersion(payload[pos]) if declared else StateVersion.V0
    return RuntimeVersion(spec_name, spec_version, version, declared)


def genesis_state(spec: ChainSpec, state_version: StateVersion | None = None) -> GenesisState:
    """State root and genesis hash of a raw spec, in its runtime's trie version."""
    if state_version is None:
        code = spec.top.get(CODE_KEY)
        if code is None:
            raise InputError(
                f"{spec.path}: no :code in genesis storage to read the trie version from; "
                "pass --state-version"
            )
        version = runtime_version(code)
        state_version = version.state_version
        source = f"runtime {version.spec_name} {version.spec_version}" + (
            "" if version.state_version_declared else " (predates state versions: V0)"
        )
    else:
        source = "given"
    top = dict(spec.top)
    for child_key, child in spec.children.items():
        prefixed = (
            child_key
            if child_key.startswith(CHILD_STORAGE_PREFIX)
            else (CHILD_STORAGE_PREFIX + child_key)
        )
        top[prefixed] = trie_root(child, state_version)
    root = trie_root(top, state_version)
    return GenesisState(root, genesis_hash(root), state_version, source, len(top))
