"""Runtime metadata (V14+): the chain's own description of its storage types.

A runtime upgrade can change how an account is stored (a u64 nonce, no `sufficients`,
the old `misc_frozen`/`fee_frozen` pair). Reading storage with a layout guessed from
another chain moves the wrong numbers; reading it with the metadata the runtime itself
publishes (`state_getMetadata`) moves the right ones, whatever the layout.

Decoding the metadata is scalecodec's job (it is how substrate-interface reads it); what
is here turns a storage item's type into a fixed byte layout, so that a million values
are then cut with slices instead of being walked by a generic decoder.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from veil.errors import InputError

_PRIMITIVE_SIZES = {
    "bool": 1, "u8": 1, "i8": 1, "u16": 2, "i16": 2, "u32": 4, "i32": 4,
    "u64": 8, "i64": 8, "u128": 16, "i128": 16, "u256": 32, "i256": 32,
}  # fmt: skip
_METADATA_MAGIC = b"meta"


@dataclass(frozen=True)
class Field:
    """One fixed-width integer inside a storage value."""

    path: str  # dotted field names, e.g. "data.free"
    offset: int
    size: int
    type_name: str


@dataclass(frozen=True)
class FixedLayout:
    """A storage value type made only of fixed-width integers, flattened to byte ranges."""

    type_path: str
    fields: tuple[Field, ...]
    size: int

    def field(self, path: str) -> Field | None:
        return next((f for f in self.fields if f.path == path), None)

    def describe(self) -> str:
        parts = ", ".join(f"{f.path}: {f.type_name}" for f in self.fields)
        return f"{self.type_path} {{{parts}}} ({self.size} bytes)"


class Metadata:
    """The type registry and storage entries of one runtime version."""

    def __init__(self, decoded: dict[str, Any], source: str) -> None:
        self.source = source
        registry = decoded.get("types") or decoded.get("lookup") or {}
        types = registry.get("types", registry) if isinstance(registry, dict) else registry
        self.types: dict[int, dict[str, Any]] = {entry["id"]: entry["type"] for entry in types}
        self.pallets: dict[str, dict[str, Any]] = {p["name"]: p for p in decoded["pallets"]}

    def storage_value_type(self, pallet: str, item: str) -> int:
        module = self.pallets.get(pallet)
        storage = (module or {}).get("storage") or {}
        for entry in storage.get("entries", []):
            if entry["name"] == item:
                kind = entry["type"]
                if "Plain" in kind:
                    return int(kind["Plain"])
                return int(kind["Map"]["value"])
        raise InputError(f"metadata {self.source}: no storage item {pallet}.{item}")

    def fixed_layout(self, type_id: int) -> FixedLayout:
        """The value type as byte ranges; refuses types with a variable width."""
        fields: list[Field] = []
        size = self._flatten(type_id, "", 0, fields)
        entry = self.types[type_id]
        return FixedLayout(
            "::".join(entry.get("path", [])) or f"type {type_id}", tuple(fields), size
        )

    def _flatten(self, type_id: int, prefix: str, offset: int, out: list[Field]) -> int:
        definition = self.types[type_id]["def"]
        if "primitive" in definition:
            name = definition["primitive"]
            if name not in _PRIMITIVE_SIZES:
                raise InputError(f"metadata {self.source}: {prefix or 'value'} is a {name}")
            out.append(Field(prefix, offset, _PRIMITIVE_SIZES[name], name))
            return offset + _PRIMITIVE_SIZES[name]
        if "composite" in definition:
            for index, field in enumerate(definition["composite"]["fields"]):
                name = field.get("name")
                # Newtypes (ExtraFlags(u128)) take their wrapper's name, not a position.
                path = (
                    prefix
                    if name is None and len(definition["composite"]["fields"]) == 1
                    else (f"{prefix}.{name if name is not None else index}".lstrip("."))
                )
                offset = self._flatten(field["type"], path, offset, out)
            return offset
        if "array" in definition:
            for index in range(definition["array"]["len"]):
                offset = self._flatten(
                    definition["array"]["type"], f"{prefix}[{index}]", offset, out
                )
            return offset
        kind = next(iter(definition))
        raise InputError(
            f"metadata {self.source}: {prefix or 'value'} is a {kind}, not a fixed-width field"
        )


def _decode_bytes(raw: bytes, source: str) -> Metadata:
    from scalecodec.base import RuntimeConfiguration, ScaleBytes
    from scalecodec.type_registry import load_type_registry_preset

    if not raw.startswith(_METADATA_MAGIC):
        raise InputError(f"metadata {source}: does not start with the 'meta' magic")
    config = RuntimeConfiguration()
    config.update_type_registry(load_type_registry_preset("core"))
    try:
        versioned = config.create_scale_object("MetadataVersioned", data=ScaleBytes(raw))
        versioned.decode()
    except Exception as error:  # scalecodec raises bare Exceptions of many kinds
        raise InputError(f"metadata {source}: cannot decode ({error})") from None
    body = versioned.value[1]
    version = next(iter(body))
    if version not in ("V14", "V15"):
        raise InputError(f"metadata {source}: {version} has no type registry (need V14 or later)")
    return Metadata(body[version], source)


def parse_metadata(data: bytes | str, source: str) -> Metadata:
    """Metadata from raw SCALE bytes, 0x-hex text, or a `state_getMetadata` JSON-RPC answer."""
    raw = data if isinstance(data, bytes) else data.encode()
    if raw.startswith(_METADATA_MAGIC):
        return _decode_bytes(raw, source)
    text = raw.strip()
    if text.startswith(b"{"):
        try:
            answer = orjson.loads(text)
        except orjson.JSONDecodeError as error:
            raise InputError(f"metadata {source}: not JSON ({error})") from None
        if not isinstance(answer, dict) or not isinstance(answer.get("result"), str):
            raise InputError(f"metadata {source}: JSON without a hex `result` (state_getMetadata)")
        text = answer["result"].encode()
    if text.startswith((b"0x", b'"0x')):
        try:
            return _decode_bytes(bytes.fromhex(text.strip(b'"')[2:].decode()), source)
        except ValueError:
            raise InputError(f"metadata {source}: 0x text that is not hex") from None
    raise InputError(
        f"metadata {source}: expected raw SCALE bytes, 0x-hex text or a state_getMetadata answer"
    )


def load_metadata(path: str | Path) -> Metadata:
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as error:
        raise InputError(f"metadata {path}: cannot read ({error.strerror})") from None
    return parse_metadata(data, str(path))
