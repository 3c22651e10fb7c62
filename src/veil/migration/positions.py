"""Staked positions and exclusions: the two operator inputs a ledger needs besides state.

Stake on the parachain sits in module accounts (stake pools, vaults, wrapped balances),
while delegators hold positions in them. A position file says who owns which part; the
exclusions file names every account that must not migrate as free PHA, with a reason an
auditor can read.
"""

from __future__ import annotations

import csv
import io
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from veil.errors import InputError
from veil.substrate.ss58 import parse_account

MODULE_PREFIX = b"modl"
BACKING_KINDS = frozenset({"stake-pool", "vault", "wrapped-balance"})
BACKING_REASON = "backs staked positions"
DUST_REASON = "rounding dust"


@dataclass(frozen=True, slots=True)
class Position:
    """`staked` planck owned by `account` inside pool or vault `source`."""

    account: bytes
    staked: int
    source: str


@dataclass(frozen=True, slots=True)
class Exclusion:
    """An account kept out of the free migration, and why."""

    account: bytes
    reason: str
    kind: str = "other"
    pools: tuple[str, ...] = field(default=())

    @property
    def backs_stake(self) -> bool:
        return self.kind in BACKING_KINDS


def module_account(pallet_id: bytes, sub: int | None = None) -> bytes:
    """Substrate `PalletId::into_account_truncating` / `into_sub_account_truncating(u64)`.

    SCALE of (b"modl", pallet_id, sub) zero-padded to 32 bytes: how stake pools, vaults
    and the treasury get accounts nobody has a key for.
    """
    if len(pallet_id) != 8:
        raise InputError(f"pallet id {pallet_id!r}: expected 8 bytes")
    body = MODULE_PREFIX + pallet_id + (b"" if sub is None else sub.to_bytes(8, "little"))
    return body.ljust(32, b"\0")


def source_account(source: str) -> bytes | None:
    """Module account a position source names by derivation, `modl:<pallet id>:<n>`.

    Returns None for a plain pool name, which the exclusions file must map.
    """
    if source.startswith("modl:"):
        parts = source.split(":")
        if len(parts) not in (2, 3) or len(parts[1].encode()) != 8:
            raise InputError(f"source {source!r}: expected modl:<8-char pallet id>[:<number>]")
        try:
            sub = int(parts[2]) if len(parts) == 3 else None
        except ValueError:
            raise InputError(f"source {source!r}: sub-account must be a number") from None
        return module_account(parts[1].encode(), sub)
    if source.startswith("0x") and len(source) == 66:
        return parse_account(source)
    return None


def _amount(value: Any, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise InputError(f"{where}: staked must be an integer number of planck")
    try:
        amount = int(value)
    except ValueError:
        raise InputError(f"{where}: staked {value!r} is not an integer number of planck") from None
    if amount < 0:
        raise InputError(f"{where}: staked {amount} is negative")
    return amount


def _position(record: Any, where: str) -> Position:
    if not isinstance(record, dict):
        raise InputError(f"{where}: expected an object with account, staked, source")
    missing = [name for name in ("account", "staked", "source") if record.get(name) in (None, "")]
    if missing:
        raise InputError(f"{where}: missing {', '.join(missing)}")
    try:
        account = parse_account(str(record["account"]))
    except InputError as error:
        raise InputError(f"{where}: {error}") from None
    return Position(account, _amount(record["staked"], where), str(record["source"]).strip())


def load_positions(path: str | os.PathLike[str]) -> list[Position]:
    """Positions from CSV (header account,staked,source) or JSON (a list of objects)."""
    source = Path(path)
    try:
        text = source.read_text()
    except (OSError, UnicodeDecodeError) as error:
        raise InputError(f"{source}: cannot read ({error})") from None
    if source.suffix.lower() == ".json" or text.lstrip().startswith("["):
        try:
            records = json.loads(text)
        except json.JSONDecodeError as error:
            raise InputError(f"{source}: not valid JSON ({error})") from None
        if not isinstance(records, list):
            raise InputError(f"{source}: expected a JSON list of positions")
        return [_position(r, f"{source}: position {i}") for i, r in enumerate(records)]
    reader = csv.DictReader(io.StringIO(text))
    if reader.fieldnames is None or not {"account", "staked", "source"} <= set(reader.fieldnames):
        raise InputError(f"{source}: CSV header must name account, staked, source")
    return [_position(r, f"{source}: line {n}") for n, r in enumerate(reader, start=2)]


def load_exclusions(path: str | os.PathLike[str]) -> list[Exclusion]:
    """Exclusions: a JSON list of {account, reason, kind?, pools?}."""
    source = Path(path)
    try:
        records = json.loads(source.read_text())
    except (OSError, UnicodeDecodeError) as error:
        raise InputError(f"{source}: cannot read ({error})") from None
    except json.JSONDecodeError as error:
        raise InputError(f"{source}: not valid JSON ({error})") from None
    if not isinstance(records, list):
        raise InputError(f"{source}: expected a JSON list of exclusions")
    exclusions: list[Exclusion] = []
    for number, record in enumerate(records):
        where = f"{source}: exclusion {number}"
        if not isinstance(record, dict) or not record.get("account"):
            raise InputError(f"{where}: expected an object with account and reason")
        reason = record.get("reason")
        if not isinstance(reason, str) or not reason.strip():
            raise InputError(f"{where}: a written reason is required")
        pools = record.get("pools", [])
        if not isinstance(pools, list) or not all(isinstance(p, str) for p in pools):
            raise InputError(f"{where}: pools must be a list of pool ids")
        try:
            account = parse_account(str(record["account"]))
        except InputError as error:
            raise InputError(f"{where}: {error}") from None
        kind = str(record.get("kind") or "other")
        exclusions.append(Exclusion(account, reason.strip(), kind, tuple(pools)))
    return exclusions


def positions_to_json(positions: list[Position]) -> list[dict[str, str]]:
    return [
        {"account": "0x" + p.account.hex(), "staked": str(p.staked), "source": p.source}
        for p in positions
    ]


def exclusions_to_json(exclusions: list[Exclusion]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for e in exclusions:
        item: dict[str, Any] = {
            "account": "0x" + e.account.hex(),
            "reason": e.reason,
            "kind": e.kind,
        }
        if e.pools:
            item["pools"] = list(e.pools)
        out.append(item)
    return out
