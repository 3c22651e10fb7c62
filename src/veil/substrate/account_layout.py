"""How a runtime stores `System.Account`, read from its metadata, mapped to veil's row.

veil's snapshot keeps one canonical row per account (the 80-byte layout Phala uses
today). A runtime with another layout is read through its metadata and each value is
re-encoded canonically before the snapshot's fast path sees it; the layout it came in is
recorded by name, so the old `misc_frozen`/`fee_frozen` pair is never passed off as
`frozen`/`flags` silently.
"""

from __future__ import annotations

from dataclasses import dataclass

from veil.errors import InputError
from veil.substrate.metadata import FixedLayout, Metadata
from veil.substrate.storage import ACCOUNT_INFO_SIZE, AccountInfo

BUILTIN_FIELDS = (
    ("nonce", 0, 4), ("consumers", 4, 4), ("providers", 8, 4), ("sufficients", 12, 4),
    ("data.free", 16, 16), ("data.reserved", 32, 16), ("data.frozen", 48, 16),
    ("data.flags", 64, 16),
)  # fmt: skip
BUILTIN_DESCRIPTION = (
    "AccountInfo {nonce: u32, consumers: u32, providers: u32, sufficients: u32, "
    "data: {free, reserved, frozen, flags: u128}} (80 bytes)"
)
_U32_MAX = 2**32 - 1


@dataclass(frozen=True)
class AccountLayout:
    layout: FixedLayout

    @property
    def builtin(self) -> bool:
        return (
            tuple((f.path, f.offset, f.size) for f in self.layout.fields) == BUILTIN_FIELDS
            and self.layout.size == ACCOUNT_INFO_SIZE
        )

    @property
    def frozen_rule(self) -> str:
        if self.layout.field("data.frozen"):
            return "frozen"
        return "max(misc_frozen, fee_frozen)"

    def _read(self, value: bytes, path: str) -> int:
        field = self.layout.field(path)
        if field is None:
            return 0
        return int.from_bytes(value[field.offset : field.offset + field.size], "little")

    def canonical(self, value: bytes, where: str) -> bytes:
        """The same account re-encoded in the built-in 80-byte layout."""
        if len(value) != self.layout.size:
            raise InputError(
                f"{where}: AccountInfo of {len(value)} bytes, but the metadata's "
                f"{self.layout.describe()} takes {self.layout.size}"
            )
        read = self._read
        nonce = read(value, "nonce")
        if nonce > _U32_MAX:
            raise InputError(f"{where}: nonce {nonce} does not fit veil's u32 nonce column")
        if self.layout.field("data.frozen"):
            frozen = read(value, "data.frozen")
        else:  # pallet_balances before 2023: the new `frozen` is the larger of the two
            frozen = max(read(value, "data.misc_frozen"), read(value, "data.fee_frozen"))
        return AccountInfo(
            nonce,
            read(value, "consumers"),
            read(value, "providers"),
            read(value, "sufficients"),
            read(value, "data.free"),
            read(value, "data.reserved"),
            frozen,
            read(value, "data.flags"),
        ).encode()


def account_layout(metadata: Metadata) -> AccountLayout:
    """`System.Account`'s value layout; refuses one without free and reserved balances."""
    layout = metadata.fixed_layout(metadata.storage_value_type("System", "Account"))
    paths = {field.path for field in layout.fields}
    missing = {"nonce", "data.free", "data.reserved"} - paths
    if missing:
        raise InputError(
            f"metadata {metadata.source}: System.Account is {layout.describe()}, "
            f"without {', '.join(sorted(missing))}"
        )
    return AccountLayout(layout)
