"""Ledger: what every account receives on the L2, reconciled to the planck.

Each account's free + reserved planck becomes free PHA (x 10^6 wei, never rounded).
Module accounts that back staked positions do not migrate their balance; the delegators'
positions do, as staked PHA, and must add up to exactly that balance. Everything else
that does not migrate carries a written reason. The ledger is refused unless

    TotalIssuance x 10^6 == sum(free) + sum(staked) + sum(excluded)

holds exactly.

This module holds the rules and the types. The file format is `ledger_format`; the
column-wide passes that apply the rules to a million accounts are `ledger_columns`.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from itertools import islice
from operator import itemgetter, lt
from typing import Any, NamedTuple

from veil.bulkwork import collector_paused
from veil.columns import named_rows
from veil.errors import InputError
from veil.merkle import MerkleTree, build_tree
from veil.migration.ledger_columns import (
    holder_columns,
    in_wei,
    merge_missing,
    phala_holder_columns,
)
from veil.migration.phala_staking import derive, dust_problems
from veil.migration.positions import (
    DUST_REASON,
    MODULE_PREFIX,
    Exclusion,
    Position,
    source_account,
)
from veil.migration.snapshot import DEFAULT_DECIMALS, Snapshot

WEI_PER_PLANCK = 10**6


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


@collector_paused
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
    named = _NamedAccounts.of(exclusions)
    stakes = _Stakes.of(positions, named)
    problems = named.problems + stakes.problems
    # Holders become leaves; module and named accounts are set aside with their balance.
    accounts, free, staked, balances, unlisted = holder_columns(
        snapshot.accounts, named.accounts, MODULE_PREFIX, stakes.by_holder
    )
    backing, excluded, unbalanced = _module_balances(balances, named, stakes, accept_dust, factor)
    problems += unbalanced
    if problems:
        raise LedgerRefused(problems)
    # Delegators without a System.Account entry still get their stake.
    missing = [(account, 0, stake) for account, stake in unlisted.items()]
    accounts, free, staked = merge_missing(accounts, free, staked, missing)
    ledger = Ledger(
        total_issuance_planck=snapshot.total_issuance,
        leaves=named_rows(
            Leaf, range(len(accounts)), accounts, in_wei(free, factor), in_wei(staked, factor)
        ),
        backing=backing,
        excluded=excluded,
        snapshot=_snapshot_record(snapshot),
        dust_limit_planck=accept_dust,
        token_decimals=snapshot.token_decimals,
    )
    ledger.check()
    return ledger


@dataclass
class _NamedAccounts:
    """The exclusions file read as rules: which account backs which pool, which is excluded."""

    backers: dict[bytes, Exclusion | None]
    excluded: dict[bytes, Exclusion]
    pool_backer: dict[str, bytes]
    problems: list[str]

    @classmethod
    def of(cls, exclusions: list[Exclusion]) -> _NamedAccounts:
        named = cls({}, {}, {}, [])
        for item in exclusions:
            if item.account in named.backers or item.account in named.excluded:
                named.problems.append(f"exclusion for {_hex(item.account)}: listed twice")
                continue
            if not item.backs_stake:
                named.excluded[item.account] = item
                continue
            named.backers[item.account] = item
            for pool in item.pools:
                if named.pool_backer.get(pool, item.account) != item.account:
                    named.problems.append(
                        f"pool {pool}: backed by two accounts in the exclusions file"
                    )
                named.pool_backer[pool] = item.account
        return named

    @property
    def accounts(self) -> set[bytes]:
        """Every account the file names (their own balance never becomes a leaf)."""
        return self.backers.keys() | self.excluded.keys()


@dataclass
class _Stakes:
    """Positions summed per holder and per backing account (planck)."""

    by_holder: dict[bytes, int]
    by_backer: dict[bytes, int]
    pools: dict[bytes, set[str]]
    problems: list[str]

    @classmethod
    def of(cls, positions: list[Position], named: _NamedAccounts) -> _Stakes:
        stakes = cls(defaultdict(int), defaultdict(int), defaultdict(set), [])
        unbacked: dict[str, int] = defaultdict(int)
        for number, position in enumerate(positions):
            backer = named.pool_backer.get(position.source)
            if backer is None:
                try:
                    backer = source_account(position.source)
                except InputError as error:
                    stakes.problems.append(f"position {number}: {error}")
                    continue
            if backer is None:
                unbacked[position.source] += 1
                continue
            problem = _position_problem(position, backer, named)
            if problem:
                stakes.problems.append(f"position {number}: {problem}")
                continue
            named.backers.setdefault(backer, None)
            stakes.by_holder[position.account] += position.staked
            stakes.by_backer[backer] += position.staked
            stakes.pools[backer].add(position.source)
        for account in stakes.by_holder.keys() & named.backers.keys():
            stakes.problems.append(
                f"holder {_hex(account)}: a module account backing stake holds positions"
            )
        for pool, count in sorted(unbacked.items()):
            stakes.problems.append(
                f"pool {pool!r}: {count} positions but no backing account (name it in "
                f"--exclusions with kind stake-pool, vault or wrapped-balance and pools "
                f"[{pool!r}], or write the source as modl:<pallet id>:<n>)"
            )
        stakes.by_holder = dict(stakes.by_holder)
        return stakes


def _position_problem(position: Position, backer: bytes, named: _NamedAccounts) -> str | None:
    """Why a position cannot migrate as stake, if it cannot."""
    if position.account in named.backers or position.account in named.excluded:
        return f"holder {_hex(position.account)} is itself an excluded account"
    if backer in named.excluded:
        return (
            f"pool {position.source!r} is backed by {_hex(backer)}, which is excluded as "
            f"{named.excluded[backer].reason!r}"
        )
    return None


def _module_balances(
    balances: dict[bytes, int],
    named: _NamedAccounts,
    stakes: _Stakes,
    accept_dust: int,
    factor: int,
) -> tuple[list[Backing], list[Excluded], list[str]]:
    """Each set-aside account against what it must cover (compared in planck, kept in wei).

    A backing account must hold exactly its positions, up to `accept_dust` more (excluded
    as dust); a named exclusion goes out whole with its reason; any other module account
    with a balance is an error, since nothing says where its PHA goes.
    """
    backing: list[Backing] = []
    excluded: list[Excluded] = []
    problems: list[str] = []
    for account in sorted(named.backers):
        balance = balances.get(account, 0)
        backed = stakes.by_backer.get(account, 0)
        pools = tuple(sorted(stakes.pools.get(account, ())))
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
    for account in sorted(named.excluded):
        item = named.excluded[account]
        excluded.append(
            Excluded(account, item.reason, item.kind, balances.get(account, 0) * factor)
        )
    for account, balance in balances.items():
        if balance and account not in named.backers and account not in named.excluded:
            problems.append(
                f"{_module_hint(account)} holds {balance} planck but no position or exclusion "
                "names it; name it in --exclusions with a reason (or give its delegators' "
                "positions)"
            )
    return backing, excluded, problems


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
    extra, staked = derived.free_extra, derived.staked
    accounts, free, stake = phala_holder_columns(rows, derived.set_aside, extra, staked)
    # Holders with W-PHA, stake or rewards but no System.Account entry are few.
    missing = [
        (a, extra.get(a, 0), staked.get(a, 0))
        for a in (extra.keys() | staked.keys()) - balances.keys()
    ]
    accounts, free, stake = merge_missing(accounts, free, stake, missing)
    leaves = named_rows(
        Leaf, range(len(accounts)), accounts, in_wei(free, factor), in_wei(stake, factor)
    )
    del accounts, free, stake
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


def pool_report(ledger: Ledger) -> list[tuple[str, str, int, int, int]]:
    """(pools, module account, balance, positions, dust) in wei, for the operator's table."""
    return [
        (", ".join(b.pools), _hex(b.account), b.balance_wei, b.positions_wei, b.dust_wei)
        for b in ledger.backing
    ]


def tree_from_ledger(ledger: Ledger) -> MerkleTree:
    """The claim tree: the ledger's leaves, with what the ledger committed to beside them."""
    return build_tree(
        ledger.leaves,
        {
            "ledger": {
                "snapshot": ledger.snapshot,
                "total_issuance_wei": str(ledger.total_issuance_wei),
                "excluded_wei": str(ledger.excluded_wei),
            }
        },
    )
