"""Storage values and keys decoded with the runtime's own portable type registry.

Phala's staking state (pools, delegation NFTs, W-PHA balances) is stored in types that
change between runtime versions; decoding them with the registry the runtime publishes in
its metadata reads whatever layout that block has, instead of one guessed from a release.
These maps hold thousands of entries (W-PHA balances: hundreds of thousands), so the
decoder is a small recursive walk over the registry with per-type closures, not scalecodec's
object-per-value machinery.

Values come out as plain Python: integers, bytes (for `[u8; N]` and `Vec<u8>`), dicts of
named fields, lists, `None`/inner value for `Option`, and `(variant name, value)` for
other enums (a fieldless variant is just its name).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any

import xxhash

from veil.errors import InputError
from veil.substrate.metadata import Metadata
from veil.substrate.scale import decode_compact
from veil.substrate.storage import twox128

Decoder = Callable[[bytes, int], tuple[Any, int]]

_INT_SIZES = {"u8": 1, "u16": 2, "u32": 4, "u64": 8, "u128": 16, "u256": 32}
_SIGNED_SIZES = {"i8": 1, "i16": 2, "i32": 4, "i64": 8, "i128": 16, "i256": 32}
# Key hashers: how many hash bytes precede the key's own encoding ("concat" hashers keep
# the key readable after the hash; the others cannot be decoded back).
_HASH_PREFIX = {"Blake2_128Concat": 16, "Twox64Concat": 8, "Identity": 0}


class ScaleError(InputError):
    """A value that does not decode as the type the metadata declares."""


def _compact(data: bytes, at: int) -> tuple[int, int]:
    try:
        return decode_compact(data, at)
    except ValueError as error:
        raise ScaleError(str(error)) from None


class TypeRegistry:
    """Decoders for the types of one runtime's metadata, built once per type id."""

    def __init__(self, metadata: Metadata) -> None:
        self.metadata = metadata
        self._decoders: dict[int, Decoder] = {}

    def decoder(self, type_id: int) -> Decoder:
        found = self._decoders.get(type_id)
        if found is None:
            # A forward reference first, so recursive types (a tree of calls) terminate.
            self._decoders[type_id] = lambda data, at: self._decoders[type_id](data, at)
            found = self._build(type_id)
            self._decoders[type_id] = found
        return found

    def decode(self, type_id: int, data: bytes, what: str) -> Any:
        """The whole of `data` as one value of `type_id`; trailing bytes are an error."""
        try:
            value, end = self.decoder(type_id)(data, 0)
        except (IndexError, ValueError, KeyError) as error:
            raise ScaleError(
                f"{what}: does not decode as type {self.name(type_id)} ({error})"
            ) from None
        except ScaleError as error:
            raise ScaleError(f"{what}: {error}") from None
        if end != len(data):
            raise ScaleError(
                f"{what}: {len(data) - end} bytes left after decoding {self.name(type_id)}"
            )
        return value

    def name(self, type_id: int) -> str:
        entry = self.metadata.types[type_id]
        return "::".join(entry.get("path", [])) or next(iter(entry["def"]))

    def _build(self, type_id: int) -> Decoder:
        definition = self.metadata.types[type_id]["def"]
        kind = next(iter(definition))
        body = definition[kind]
        if kind == "primitive":
            return _primitive(body)
        if kind == "compact":
            return _compact
        if kind == "composite":
            fields = body["fields"]
            decoders = [self.decoder(f["type"]) for f in fields]
            if len(fields) == 1 and fields[0].get("name") is None:
                return decoders[0]  # a newtype (AccountId32, BoundedVec) reads as its inside
            if fields and all(f.get("name") for f in fields):
                names = [f["name"] for f in fields]
                return _record(names, decoders)
            return _sequence_of(decoders)
        if kind == "array":
            length, inner = body["len"], body["type"]
            if self._is_u8(inner):
                return lambda data, at: (_slice(data, at, length), at + length)
            decoder = self.decoder(inner)
            return _sequence_of([decoder] * length)
        if kind == "sequence":
            inner = body["type"]
            if self._is_u8(inner):
                return _byte_vec
            return _vec(self.decoder(inner))
        if kind == "tuple":
            return _sequence_of([self.decoder(t) for t in body])
        if kind == "variant":
            return self._variant(type_id, body["variants"])
        raise ScaleError(f"type {self.name(type_id)}: {kind} values are not supported")

    def _is_u8(self, type_id: int) -> bool:
        return bool(self.metadata.types[type_id]["def"] == {"primitive": "u8"})

    def _variant(self, type_id: int, variants: list[dict[str, Any]]) -> Decoder:
        is_option = self.metadata.types[type_id].get("path") == ["Option"]
        table: dict[int, tuple[str, Decoder | None]] = {}
        for variant in variants:
            fields = variant["fields"]
            if not fields:
                inner: Decoder | None = None
            elif len(fields) == 1 and (is_option or fields[0].get("name") is None):
                inner = self.decoder(fields[0]["type"])
            elif all(f.get("name") for f in fields):
                inner = _record(
                    [f["name"] for f in fields], [self.decoder(f["type"]) for f in fields]
                )
            else:
                inner = _sequence_of([self.decoder(f["type"]) for f in fields])
            table[variant["index"]] = (variant["name"], inner)
        name = self.name(type_id)

        def decode(data: bytes, at: int) -> tuple[Any, int]:
            found = table.get(data[at])
            if found is None:
                raise ScaleError(f"{name}: no variant with index {data[at]}")
            label, inner = found
            if inner is None:
                return (None if is_option else label), at + 1
            value, end = inner(data, at + 1)
            return (value if is_option else (label, value)), end

        return decode


def _slice(data: bytes, at: int, length: int) -> bytes:
    if at + length > len(data):
        raise ScaleError("value runs past its end")
    return data[at : at + length]


def _primitive(name: str) -> Decoder:
    if name in _INT_SIZES:
        size = _INT_SIZES[name]
        return lambda data, at: (int.from_bytes(_slice(data, at, size), "little"), at + size)
    if name in _SIGNED_SIZES:
        size = _SIGNED_SIZES[name]
        return lambda data, at: (
            int.from_bytes(_slice(data, at, size), "little", signed=True),
            at + size,
        )
    if name == "bool":

        def boolean(data: bytes, at: int) -> tuple[bool, int]:
            if data[at] > 1:
                raise ScaleError(f"bool byte {data[at]}")
            return data[at] == 1, at + 1

        return boolean
    if name == "str":

        def text(data: bytes, at: int) -> tuple[str, int]:
            length, at = _compact(data, at)
            return _slice(data, at, length).decode("utf-8"), at + length

        return text
    raise ScaleError(f"primitive {name} is not supported")


def _byte_vec(data: bytes, at: int) -> tuple[bytes, int]:
    length, at = _compact(data, at)
    return _slice(data, at, length), at + length


def _vec(inner: Decoder) -> Decoder:
    def decode(data: bytes, at: int) -> tuple[list[Any], int]:
        length, at = _compact(data, at)
        out = []
        for _ in range(length):
            value, at = inner(data, at)
            out.append(value)
        return out, at

    return decode


def _sequence_of(decoders: list[Decoder]) -> Decoder:
    def decode(data: bytes, at: int) -> tuple[list[Any], int]:
        out = []
        for inner in decoders:
            value, at = inner(data, at)
            out.append(value)
        return out, at

    return decode


def _record(names: list[str], decoders: list[Decoder]) -> Decoder:
    pairs = list(zip(names, decoders, strict=True))

    def decode(data: bytes, at: int) -> tuple[dict[str, Any], int]:
        out = {}
        for name, inner in pairs:
            out[name], at = inner(data, at)
        return out, at

    return decode


def twox64(data: bytes) -> bytes:
    return xxhash.xxh64_digest(data, seed=0)[::-1]


_HASHERS: dict[str, Callable[[bytes], bytes]] = {
    "Blake2_128Concat": lambda b: hashlib.blake2b(b, digest_size=16).digest(),
    "Twox64Concat": twox64,
    "Identity": lambda b: b"",
}


class StorageMap:
    """One storage item of the metadata: its key prefix, key hashers and types."""

    def __init__(self, registry: TypeRegistry, pallet: str, item: str) -> None:
        metadata = registry.metadata
        module = metadata.pallets.get(pallet)
        storage = (module or {}).get("storage") or {}
        entry = next((e for e in storage.get("entries", []) if e["name"] == item), None)
        if entry is None:
            raise InputError(f"metadata {metadata.source}: no storage item {pallet}.{item}")
        self.registry = registry
        self.name = f"{pallet}.{item}"
        self.prefix = twox128(storage["prefix"].encode()) + twox128(item.encode())
        kind = entry["type"]
        if "Plain" in kind:
            self.hashers: list[str] = []
            self.key_types: list[int] = []
            self.value_type = int(kind["Plain"])
        else:
            self.hashers = list(kind["Map"]["hashers"])
            key = int(kind["Map"]["key"])
            self.value_type = int(kind["Map"]["value"])
            definition = metadata.types[key]["def"]
            if len(self.hashers) > 1 and "tuple" in definition:
                self.key_types = list(definition["tuple"])
            else:
                self.key_types = [key]
            if len(self.key_types) != len(self.hashers):
                raise InputError(f"{self.name}: {len(self.hashers)} hashers for its key parts")
        # Byte widths of fixed-size key parts (u32, u64, AccountId32): such keys are cut
        # with slices instead of walking the decoder, which matters for W-PHA's balances.
        self.fixed_parts: list[int] | None = []
        for type_id in self.key_types:
            try:
                width = metadata.fixed_layout(type_id).size
            except InputError:
                self.fixed_parts = None
                break
            self.fixed_parts.append(width)
        for hasher in self.hashers:
            if hasher not in _HASH_PREFIX:
                raise InputError(
                    f"{self.name}: key hasher {hasher} cannot be read back; only "
                    f"{', '.join(_HASH_PREFIX)} keys can be listed"
                )

    def decode_key(self, key: bytes) -> list[Any]:
        """The key parts, each checked against the hash in front of it."""
        at = len(self.prefix)
        if self.fixed_parts is not None:
            return self._decode_fixed_key(key, at)
        parts = []
        for hasher, type_id in zip(self.hashers, self.key_types, strict=True):
            skip = _HASH_PREFIX[hasher]
            start = at + skip
            try:
                value, end = self.registry.decoder(type_id)(key, start)
            except (IndexError, ValueError, ScaleError):
                raise ScaleError(f"storage key 0x{key.hex()}: not a {self.name} key") from None
            if _HASHERS[hasher](key[start:end]) != key[at:start]:
                raise ScaleError(
                    f"storage key 0x{key.hex()}: {hasher} hash does not match its {self.name} key"
                )
            parts.append(value)
            at = end
        if at != len(key):
            raise ScaleError(f"storage key 0x{key.hex()}: {len(key) - at} bytes after its key")
        return parts

    def _decode_fixed_key(self, key: bytes, at: int) -> list[Any]:
        assert self.fixed_parts is not None
        parts = []
        for hasher, type_id, width in zip(
            self.hashers, self.key_types, self.fixed_parts, strict=True
        ):
            start = at + _HASH_PREFIX[hasher]
            end = start + width
            part = key[start:end]
            if len(part) != width:
                raise ScaleError(f"storage key 0x{key.hex()}: not a {self.name} key")
            if _HASHERS[hasher](part) != key[at:start]:
                raise ScaleError(
                    f"storage key 0x{key.hex()}: {hasher} hash does not match its {self.name} key"
                )
            parts.append(self.registry.decoder(type_id)(part, 0)[0])
            at = end
        if at != len(key):
            raise ScaleError(f"storage key 0x{key.hex()}: {len(key) - at} bytes after its key")
        return parts

    def decode_value(self, value: bytes, key: bytes) -> Any:
        return self.registry.decode(self.value_type, value, f"{self.name} at 0x{key.hex()}")

    def entries(self, storage: dict[bytes, bytes]) -> list[tuple[list[Any], Any]]:
        """Every (key parts, value) of this item in `storage` (bytes keys and values)."""
        prefix = self.prefix
        return [
            (self.decode_key(key), self.decode_value(value, key))
            for key, value in storage.items()
            if key.startswith(prefix)
        ]
