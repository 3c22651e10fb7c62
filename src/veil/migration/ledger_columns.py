"""The ledger's rules applied a column at a time, over a million accounts.

`ledger.build_ledger` says what happens to each account; these passes do the same to
every row at once (`map`, `compress`, no per-row Python frame), which is what keeps a
million-account ledger within seconds. Row order is kept: snapshot rows are sorted by
account, and so are the leaves.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from itertools import compress, repeat
from operator import add, itemgetter, methodcaller, mul, not_, or_
from typing import Any


def holder_columns(
    rows: Sequence[tuple[Any, ...]],
    named: Collection[bytes],
    module_prefix: bytes,
    stake: dict[bytes, int],
) -> tuple[list[bytes], list[int], list[int], dict[bytes, int], dict[bytes, int]]:
    """Split (account, free, reserved, ...) rows into holders and set-aside accounts.

    Returns the holders that have a balance or a stake as three columns (account,
    free + reserved, stake; planck), the native balance of every module or `named`
    account (their PHA does not become a leaf), and the stakes of holders without a row.
    """
    accounts = list(map(itemgetter(0), rows))
    aside = list(
        map(or_, map(methodcaller("startswith", module_prefix), accounts),
            map(named.__contains__, accounts))
    )  # fmt: skip
    balances = {row[0]: row[1] + row[2] for row in compress(rows, aside)}
    holders, held = _kept(rows, accounts, list(map(not_, aside)))
    del aside, accounts
    unlisted = dict(stake)
    staked = list(map(unlisted.pop, holders, repeat(0)))
    return (*_present(holders, held, staked), balances, unlisted)


def phala_holder_columns(
    rows: Sequence[tuple[Any, ...]],
    aside: Collection[bytes],
    extra: dict[bytes, int],
    stake: dict[bytes, int],
) -> tuple[list[bytes], list[int], list[int]]:
    """The holders of a Phala state as three columns (account, free, staked; planck).

    free = native free + reserved + `extra` (idle W-PHA, owner rewards, what the budget
    owes); accounts in `aside` (Phala's own and excluded ones) get no leaf; rows with
    neither free nor stake are dropped.
    """
    accounts = list(map(itemgetter(0), rows))
    holders, native = _kept(rows, accounts, list(map(not_, map(aside.__contains__, accounts))))
    del accounts
    free = list(map(add, native, map(extra.get, holders, repeat(0))))
    del native
    staked = list(map(stake.get, holders, repeat(0)))
    return _present(holders, free, staked)


def _kept(
    rows: Sequence[tuple[Any, ...]], accounts: list[bytes], keep: list[bool]
) -> tuple[list[bytes], list[int]]:
    """The kept rows' accounts and native balances (free + reserved)."""
    native = map(add, compress(map(itemgetter(1), rows), keep),
                 compress(map(itemgetter(2), rows), keep))  # fmt: skip
    return list(compress(accounts, keep)), list(native)


def _present(
    accounts: list[bytes], free: list[int], staked: list[int]
) -> tuple[list[bytes], list[int], list[int]]:
    """The three columns without the rows that hold nothing (no leaf for zero)."""
    present = list(map(or_, free, staked))
    return (
        list(compress(accounts, present)),
        list(compress(free, present)),
        list(compress(staked, present)),
    )


def merge_missing(
    accounts: list[bytes],
    free: list[int],
    staked: list[int],
    missing: Iterable[tuple[bytes, int, int]],
) -> tuple[list[bytes], list[int], list[int]]:
    """The columns with the `missing` (account, free, staked) entries inserted in account
    order: holders without a System.Account row, who are few. Empty entries are dropped."""
    entries = [entry for entry in missing if entry[1] or entry[2]]
    if not entries:
        return accounts, free, staked
    entries += zip(accounts, free, staked, strict=True)
    entries.sort()
    account_column, free_column, staked_column = map(list, zip(*entries, strict=True))
    return account_column, free_column, staked_column


def in_wei(planck: list[int], factor: int) -> list[int]:
    """A planck column in wei: an exact multiplication, never a rounding."""
    return list(map(mul, planck, repeat(factor)))
