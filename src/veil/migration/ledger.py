"""Ledger: what every account receives on the L2, reconciled to the planck.

Each account's free + reserved planck becomes free PHA (x 10^6 wei, never rounded).
Module accounts that back staked positions do not migrate their balance; the delegators'
positions do, as staked PHA, and must add up to exactly that balance. Everything else
that does not migrate carries a written reason. The ledger is refused unless

    TotalIssuance x 10^6 == sum(free) + sum(staked) + sum(excluded)

holds exactly.
"""

from __future__ import annotations

import hashlib
import os
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from itertools import compress, islice, repeat
from operator import add, itemgetter, lt, methodcaller, mul, not_, or_
from pathlib import Path
from typing import Any, NamedTuple

from veil.atomic import write_text
from veil.errors import InputError
from veil.migration.bulk import (
    amount_column,
    bulk,
    hex_records,
    json_document,
    json_exact,
    read_document,
    split_records,
)
from veil.migration.phala_staking import derive, dust_problems
from veil.migration.positions import (
    BACKING_REASON,
    DUST_REASON,
    MODULE_PREFIX,
    Exclusion,
    Position,
    source_account,
)
from veil.migration.snapshot import DEFAULT_DECIMALS, Snapshot

FORMAT = "veil-ledger-v1"
WEI_PER_PLANCK = 10**6
COLUMNS = ("index", "account", "free_wei", "staked_wei")


class LedgerRefused(InputError):
    """The inputs do not reconcile; `problems` lists every one, by pool or account."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        super().__init__(f"ledger refused: {problems[0]}{more}")


class Leaf(NamedTuple):
    """One claimable entry: its index is its position in the ledger (sorted by account).

    A tuple in exactly the Merkle leaf's field order, so a million of them feed the tree
    without conversion.
    """

    index: int  # type: ignore[assignment]  # the leaf's own name for it; shadows tuple.index
    account: bytes
    free_wei: int
    staked_wei: int


@dataclass(frozen=True, slots=True)
class Backing:
    """A module account whose balance becomes delegators' staked positions."""

    account: bytes
    pools: tuple[str, ...]
    balance_wei: int
    positions_wei: int

    @property
    def dust_wei(self) -> int:
        return self.balance_wei - self.positions_wei


@dataclass(frozen=True, slots=True)
class Excluded:
    """Wei that does not migrate at all, with the reason an auditor reads."""

    account: bytes
    reason: str
    kind: str
    amount_wei: int


@dataclass
class Ledger:
    total_issuance_planck: int
    leaves: list[Leaf]
    backing: list[Backing]
    excluded: list[Excluded]
    snapshot: dict[str, Any] = field(default_factory=dict)
    dust_limit_planck: int = 0
    token_decimals: int = DEFAULT_DECIMALS
    # Derived from Phala's staking storage: per-pool report and the W-PHA reconciliation.
    phala: dict[str, Any] | None = None

    @property
    def wei_per_planck(self) -> int:
        return wei_factor(self.token_decimals)

    @property
    def total_issuance_wei(self) -> int:
        return self.total_issuance_planck * self.wei_per_planck

    @property
    def free_wei(self) -> int:
        return sum(map(itemgetter(2), self.leaves))

    @property
    def staked_wei(self) -> int:
        return sum(map(itemgetter(3), self.leaves))

    @property
    def excluded_wei(self) -> int:
        return sum(item.amount_wei for item in self.excluded)

    def reconciliation(self) -> list[tuple[str, int]]:
        """Rows of the reconciliation table, in wei; the last is the difference (must be 0)."""
        by_reason: dict[str, int] = defaultdict(int)
        for item in self.excluded:
            by_reason[item.reason] += item.amount_wei
        free, staked = self.free_wei, self.staked_wei
        rows = [
            ("TotalIssuance x 10^6", self.total_issuance_wei),
            (f"migrated free ({len(self.leaves)} leaves)", free),
            (f"migrated staked (backed by {len(self.backing)} module accounts)", staked),
        ]
        rows += [(f"excluded: {reason}", amount) for reason, amount in sorted(by_reason.items())]
        rows.append(("difference", self.total_issuance_wei - free - staked - self.excluded_wei))
        return rows

    def check(self) -> None:
        """Refuse a ledger that creates or loses a single wei, or whose leaves are out of order."""
        difference = self.reconciliation()[-1][1]
        if difference != 0:
            raise LedgerRefused(
                [
                    f"TotalIssuance x 10^6 = {self.total_issuance_wei} but free + staked + "
                    f"excluded differ from it by {difference} wei"
                ]
            )
        leaves = self.leaves
        accounts = list(map(itemgetter(1), leaves))
        if list(map(itemgetter(0), leaves)) == list(range(len(leaves))) and all(
            map(lt, accounts, islice(accounts, 1, None))
        ):
            return  # the common case, checked in bulk; otherwise find the first bad leaf
        for position, leaf in enumerate(self.leaves):
            if leaf.index != position:
                raise LedgerRefused([f"leaf {position}: index {leaf.index} is out of place"])
            if position and leaf.account <= self.leaves[position - 1].account:
                raise LedgerRefused([f"leaf {position}: accounts not sorted or duplicated"])

    @bulk
    def to_json(self) -> dict[str, Any]:
        return {
            **self._head(),
            "leaves": [
                [leaf.index, "0x" + leaf.account.hex(), str(leaf.free_wei), str(leaf.staked_wei)]
                for leaf in self.leaves
            ],
        }

    def _head(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "snapshot": self.snapshot,
            "total_issuance_planck": str(self.total_issuance_planck),
            "total_issuance_wei": str(self.total_issuance_wei),
            "totals": {
                "free_wei": str(self.free_wei),
                "staked_wei": str(self.staked_wei),
                "excluded_wei": str(self.excluded_wei),
                "leaf_count": len(self.leaves),
            },
            "dust_limit_planck": self.dust_limit_planck,
            "token_decimals": self.token_decimals,
            **({"phala": self.phala} if self.phala is not None else {}),
            "backing": [
                {
                    "account": "0x" + b.account.hex(),
                    "reason": BACKING_REASON,
                    "pools": list(b.pools),
                    "balance_wei": str(b.balance_wei),
                    "positions_wei": str(b.positions_wei),
                    "dust_wei": str(b.dust_wei),
                }
                for b in self.backing
            ],
            "excluded": [
                {
                    "account": "0x" + e.account.hex(),
                    "reason": e.reason,
                    "kind": e.kind,
                    "amount_wei": str(e.amount_wei),
                }
                for e in self.excluded
            ],
            "columns": list(COLUMNS),
        }

    @bulk
    def to_json_text(self) -> str:
        """The same document as `to_json`, rendered fast (a ledger has a million leaves)."""
        head = self._head()
        row = '[%d,"0x%s","%d","%d"]'
        leaves = [row % (leaf[0], leaf[1].hex(), leaf[2], leaf[3]) for leaf in self.leaves]
        return json_document(head, {}, {"leaves": leaves})


def _hex(account: bytes) -> str:
    return "0x" + account.hex()


def wei_factor(decimals: int) -> int:
    """Wei per planck: 10^(18 - decimals), exact (PHA has 12 decimals: 10^6)."""
    if not isinstance(decimals, int) or not 0 <= decimals <= 18:
        raise InputError(f"token decimals {decimals!r}: must be an integer from 0 to 18")
    factor: int = 10 ** (18 - decimals)
    return factor


def _module_hint(account: bytes) -> str:
    pallet_id = account[4:12].decode("latin-1")
    printable = "".join(c if 32 <= ord(c) < 127 else "?" for c in pallet_id)
    return f"module account {_hex(account)} (modl{printable}: pallet id {printable!r})"


@bulk
def build_ledger(
    snapshot: Snapshot,
    positions: Iterable[Position] = (),
    exclusions: Iterable[Exclusion] = (),
    *,
    accept_dust: int | None = None,
) -> Ledger:
    """Convert a snapshot into a reconciled ledger, or raise `LedgerRefused` naming why.

    `accept_dust` is the most planck a module account may hold beyond its positions; that
    remainder is excluded as "rounding dust". Positions exceeding their backing are never
    accepted: they would mint PHA that does not exist. None means 0, except on a Phala
    snapshot, where it bounds each pool's gap to the runtime value (`dust_problems`) and
    None leaves those gaps reported only.
    """
    if accept_dust is not None and accept_dust < 0:
        raise InputError(f"--accept-dust {accept_dust}: must not be negative")
    positions = list(positions)
    exclusions = list(exclusions)
    if snapshot.staking is not None:
        if positions:
            raise InputError(
                "--positions: this snapshot holds Phala's staking storage; positions are "
                "derived from it, a positions file would count them twice"
            )
        return _build_phala_ledger(snapshot, exclusions, accept_dust)
    if accept_dust is None:  # the built-in path's default: positions must match exactly
        accept_dust = 0
    factor = wei_factor(snapshot.token_decimals)
    problems: list[str] = []

    # Which module account backs each pool: the exclusions file first, then derivation.
    pool_backer: dict[str, bytes] = {}
    backers: dict[bytes, Exclusion | None] = {}
    excluded_other: dict[bytes, Exclusion] = {}
    for item in exclusions:
        if item.account in backers or item.account in excluded_other:
            problems.append(f"exclusion for {_hex(item.account)}: listed twice")
            continue
        if item.backs_stake:
            backers[item.account] = item
            for pool in item.pools:
                if pool in pool_backer and pool_backer[pool] != item.account:
                    problems.append(f"pool {pool}: backed by two accounts in the exclusions file")
                pool_backer[pool] = item.account
        else:
            excluded_other[item.account] = item

    staked_by_account: dict[bytes, int] = defaultdict(int)
    positions_by_backer: dict[bytes, int] = defaultdict(int)
    pools_by_backer: dict[bytes, set[str]] = defaultdict(set)
    unbacked: dict[str, int] = defaultdict(int)
    for number, position in enumerate(positions):
        backer = pool_backer.get(position.source)
        if backer is None:
            try:
                backer = source_account(position.source)
            except InputError as error:
                problems.append(f"position {number}: {error}")
                continue
        if backer is None:
            unbacked[position.source] += 1
            continue
        if position.account in backers or position.account in excluded_other:
            problems.append(
                f"position {number}: holder {_hex(position.account)} is itself an excluded account"
            )
            continue
        if backer in excluded_other:
            problems.append(
                f"position {number}: pool {position.source!r} is backed by "
                f"{_hex(backer)}, which is excluded as {excluded_other[backer].reason!r}"
            )
            continue
        backers.setdefault(backer, None)
        staked_by_account[position.account] += position.staked
        positions_by_backer[backer] += position.staked
        pools_by_backer[backer].add(position.source)

    for account in staked_by_account.keys() & backers.keys():
        problems.append(f"holder {_hex(account)}: a module account backing stake holds positions")
    for pool, count in sorted(unbacked.items()):
        problems.append(
            f"pool {pool!r}: {count} positions but no backing account (name it in --exclusions "
            f"with kind stake-pool, vault or wrapped-balance and pools [{pool!r}], or write the "
            f"source as modl:<pallet id>:<n>)"
        )
    # One pass over the (sorted) accounts: holders become leaf entries, module and excluded
    # accounts are set aside with their balances.
    named = backers.keys() | excluded_other.keys()
    balances: dict[bytes, int] = {}
    stake_left = dict(staked_by_account)
    # Column-wide over the million rows (row order kept): module and named accounts are
    # set aside, every other account with a balance or a stake becomes a leaf.
    rows = snapshot.accounts
    accounts = list(map(itemgetter(0), rows))
    aside = list(
        map(or_, map(methodcaller("startswith", MODULE_PREFIX), accounts),
            map(named.__contains__, accounts))
    )  # fmt: skip
    for row_number in compress(range(len(rows)), aside):
        row = rows[row_number]
        balances[row[0]] = row[1] + row[2]
    keep = list(map(not_, aside))
    del aside
    holders = list(compress(accounts, keep))
    del accounts
    held = list(map(add, compress(map(itemgetter(1), rows), keep),
                    compress(map(itemgetter(2), rows), keep)))  # fmt: skip
    del keep
    staked = list(map(stake_left.pop, holders, repeat(0)))
    present = list(map(or_, held, staked))
    wei = repeat(factor)
    columns: tuple[list[Any], ...] = (
        list(compress(holders, present)),
        list(map(mul, compress(held, present), wei)),
        list(map(mul, compress(staked, present), wei)),
    )
    del holders, held, staked, present
    if stake_left:  # delegators without a System.Account entry still get their stake
        entries = list(zip(*columns, strict=True))
        entries += [(a, 0, s * factor) for a, s in stake_left.items() if s]
        entries.sort()
        columns = tuple(map(list, zip(*entries, strict=True))) if entries else ([], [], [])
        del entries

    backing: list[Backing] = []
    excluded: list[Excluded] = []
    for account in sorted(backers):
        balance = balances.get(account, 0)
        backed = positions_by_backer.get(account, 0)
        pools = tuple(sorted(pools_by_backer.get(account, ())))
        where = f"pool {', '.join(pools) or '(none)'} ({_hex(account)})"
        difference = balance - backed
        if difference < 0:
            problems.append(
                f"{where}: positions {backed} planck exceed its balance {balance} by "
                f"{-difference} planck"
            )
        elif difference > accept_dust:
            problems.append(
                f"{where}: balance {balance} planck exceeds its positions {backed} by "
                f"{difference} planck (more than --accept-dust {accept_dust})"
            )
        backing.append(Backing(account, pools, balance * factor, backed * factor))
        if difference > 0:
            excluded.append(Excluded(account, DUST_REASON, "dust", difference * factor))
    for account in sorted(excluded_other):
        item = excluded_other[account]
        excluded.append(
            Excluded(account, item.reason, item.kind, balances.get(account, 0) * factor)
        )

    for account, balance in balances.items():
        if balance and account not in named:
            problems.append(
                f"{_module_hint(account)} holds {balance} planck but no position or exclusion "
                "names it; name it in --exclusions with a reason (or give its delegators' "
                "positions)"
            )
    if problems:
        raise LedgerRefused(problems)

    indices = range(len(columns[0]))
    leaves = list(map(tuple.__new__, repeat(Leaf), zip(indices, *columns, strict=True)))
    del columns
    ledger = Ledger(
        total_issuance_planck=snapshot.total_issuance,
        leaves=leaves,
        backing=backing,
        excluded=excluded,
        snapshot=_snapshot_record(snapshot),
        dust_limit_planck=accept_dust,
        token_decimals=snapshot.token_decimals,
    )
    ledger.check()
    return ledger


def _snapshot_record(snapshot: Snapshot) -> dict[str, Any]:
    """What a ledger records of the snapshot it was built from (the audit compares it)."""
    record: dict[str, Any] = {
        "state_sha256": snapshot.state_sha256,
        "block": snapshot.block,
        "genesis_hash": snapshot.genesis_hash,
    }
    if snapshot.staking is not None:
        record["staking_sha256"] = snapshot.staking.entries_sha256
    return record


def _build_phala_ledger(
    snapshot: Snapshot, exclusions: list[Exclusion], accept_dust: int | None
) -> Ledger:
    """The ledger of a Phala state: positions derived from its own staking storage."""
    assert snapshot.staking is not None
    factor = wei_factor(snapshot.token_decimals)
    problems: list[str] = []
    named: dict[bytes, tuple[str, str]] = {}
    for item in exclusions:
        if item.account in named:
            problems.append(f"exclusion for {_hex(item.account)}: listed twice")
        named[item.account] = (item.reason, item.kind)
    rows = snapshot.accounts
    balances = {row[0]: row[1] + row[2] for row in rows}
    derived = derive(balances, snapshot.staking, named)
    problems += derived.problems + dust_problems(derived.pools, accept_dust)
    if problems:
        raise LedgerRefused(problems)
    aside = derived.set_aside
    extra, staked = derived.free_extra, derived.staked
    # Rows are sorted by account: walk them once; holders with W-PHA, stake or rewards but
    # no System.Account entry are few, and merged in after.
    leaves_rows: list[tuple[bytes, int, int]] = []
    append = leaves_rows.append
    extra_get, staked_get = extra.get, staked.get
    for row in rows:
        account = row[0]
        if account in aside:
            continue
        free = row[1] + row[2] + extra_get(account, 0)
        stake = staked_get(account, 0)
        if free or stake:
            append((account, free, stake))
    missing = [
        (a, extra_get(a, 0), staked_get(a, 0))
        for a in (extra.keys() | staked.keys()) - balances.keys()
    ]
    if missing:
        leaves_rows += [entry for entry in missing if entry[1] or entry[2]]
        leaves_rows.sort()
    leaves = [
        Leaf(index, account, free * factor, stake * factor)
        for index, (account, free, stake) in enumerate(leaves_rows)
    ]
    del leaves_rows
    backing = [
        Backing(r.account, (f"{r.kind} {r.pid}",), r.assets * factor, r.assets * factor)
        for r in derived.pools
        if r.kind == "stake-pool" or r.assets
    ]
    excluded = [
        Excluded(account, reason, kind, amount * factor)
        for account, reason, kind, amount in derived.excluded
    ]
    ledger = Ledger(
        total_issuance_planck=snapshot.total_issuance,
        leaves=leaves,
        backing=backing,
        excluded=excluded,
        snapshot=_snapshot_record(snapshot),
        dust_limit_planck=accept_dust or 0,
        token_decimals=snapshot.token_decimals,
        phala={
            "pools": [r.to_json() for r in derived.pools],
            "wpha": [[label, str(amount)] for label, amount in derived.wpha_rows],
            "dust_limit_planck": accept_dust,
        },
    )
    ledger.check()
    return ledger


def write_ledger(ledger: Ledger, out: str | os.PathLike[str]) -> Path:
    """Write the ledger atomically (re-checked first: a refused ledger is never written)."""
    ledger.check()
    return write_text(out, ledger.to_json_text())


def pool_report(ledger: Ledger) -> list[tuple[str, str, int, int, int]]:
    """(pools, module account, balance, positions, dust) in wei, for the operator's table."""
    return [
        (", ".join(b.pools), _hex(b.account), b.balance_wei, b.positions_wei, b.dust_wei)
        for b in ledger.backing
    ]


def file_sha256(path: str | os.PathLike[str]) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return "0x" + digest.hexdigest()


def _int(value: Any, where: str) -> int:
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise InputError(f"{where}: {value!r:.40} is not an integer") from None
    if number < 0:
        raise InputError(f"{where}: {number} is negative")
    return number


def _account(value: Any, where: str) -> bytes:
    if not isinstance(value, str) or not value.startswith("0x") or len(value) != 66:
        raise InputError(f"{where}: account {value!r:.70} is not 0x + 32 bytes of hex")
    try:
        return bytes.fromhex(value[2:])
    except ValueError:
        raise InputError(f"{where}: account {value!r:.70} is not valid hex") from None


def _leaves_fast(records: list[Any]) -> list[Leaf] | None:
    """All leaves in column-wide bulk operations, or None if anything is off.

    Stricter than `_leaves_checked` (which then names the first bad leaf): indices must
    be JSON integers and amounts strings, so whatever this accepts reads identically.
    """
    if not records:
        return []
    if set(map(type, records)) != {list} or set(map(len, records)) != {len(COLUMNS)}:
        return None
    index, account, free, staked = zip(*records, strict=True)
    if set(map(type, index)) != {int}:
        return None
    blob = hex_records(account, 32)
    if blob is None:
        return None
    accounts = split_records(blob, 33, 1, 32)
    del blob
    amounts = []
    for column in (free, staked):
        numbers = amount_column(column)
        if numbers is None:
            return None
        amounts.append(numbers)
    return list(map(tuple.__new__, repeat(Leaf), zip(index, accounts, *amounts, strict=True)))


def _leaves_checked(records: list[Any], source: Path) -> list[Leaf]:
    """The slow path: find and name the first malformed leaf."""
    leaves: list[Leaf] = []
    for number, record in enumerate(records):
        where = f"{source}: leaf {number}"
        if not isinstance(record, list) or len(record) != 4:
            raise InputError(f"{where}: expected [index, account, free_wei, staked_wei]")
        try:
            account = bytes.fromhex(record[1][2:]) if record[1][:2] == "0x" else b""
            leaf = Leaf(int(record[0]), account, int(record[2]), int(record[3]))
        except (TypeError, ValueError):
            leaf = Leaf(-1, b"", -1, -1)
        if len(leaf.account) != 32 or leaf.free_wei < 0 or leaf.staked_wei < 0:
            _account(record[1], where)
            _int(record[2], f"{where} free_wei")
            _int(record[3], f"{where} staked_wei")
            raise InputError(f"{where}: index {record[0]!r:.20} is not an integer")
        leaves.append(leaf)
    return leaves


@bulk
def load_ledger(path: str | os.PathLike[str]) -> Ledger:
    """Read a ledger back and re-check its reconciliation (a hand-edited file is refused)."""
    source = Path(path)
    document = read_document(source, FORMAT, COLUMNS, "ledger", "leaves")
    issuance = _int(document.get("total_issuance_planck"), f"{source}: total_issuance_planck")
    records = document.get("leaves")
    if not isinstance(records, list):
        raise InputError(f"{source}: leaves must be a list")
    leaves = _leaves_fast(records)
    if leaves is None:  # read again as `json` does (exact big integers) to name the problem
        records = json_exact(source.read_bytes())["leaves"]
        leaves = _leaves_checked(records, source)
    del records
    backing = []
    for number, item in enumerate(document.get("backing") or []):
        where = f"{source}: backing {number}"
        if not isinstance(item, dict):
            raise InputError(f"{where}: expected an object")
        backing.append(
            Backing(
                _account(item.get("account"), where),
                tuple(item.get("pools") or ()),
                _int(item.get("balance_wei"), f"{where} balance_wei"),
                _int(item.get("positions_wei"), f"{where} positions_wei"),
            )
        )
    excluded = []
    for number, item in enumerate(document.get("excluded") or []):
        where = f"{source}: excluded {number}"
        if not isinstance(item, dict) or not item.get("reason"):
            raise InputError(f"{where}: expected an object with a reason")
        excluded.append(
            Excluded(
                _account(item.get("account"), where),
                str(item["reason"]),
                str(item.get("kind") or "other"),
                _int(item.get("amount_wei"), f"{where} amount_wei"),
            )
        )
    ledger = Ledger(
        issuance,
        leaves,
        backing,
        excluded,
        snapshot=document.get("snapshot") or {},
        dust_limit_planck=int(document.get("dust_limit_planck") or 0),
        token_decimals=int(document.get("token_decimals") or DEFAULT_DECIMALS),
        phala=document.get("phala"),
    )
    try:
        ledger.check()
    except LedgerRefused as refused:
        raise InputError(f"{source}: {refused.problems[0]}") from None
    return ledger
