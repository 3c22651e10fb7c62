"""Each file format's fast (column-wide) reader and checked (record-by-record) reader agree.

For every format the pipeline reads in bulk (raw `System.Account` storage, the snapshot
file's account rows, the ledger file's leaves), hypothesis draws valid tables and tables
with one record spoiled. On valid input both readers give the same result. On spoiled
input the fast reader either gives exactly what the checked one gives, or steps aside
(None); and whatever the checked reader refuses, the fast one refuses too. A spoiling
that breaks the format is refused by both.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from veil.errors import InputError
from veil.migration.account_storage import decode_account_pairs, decode_account_storage
from veil.migration.ledger_format import leaves_checked, leaves_fast
from veil.migration.snapshot_format import rows_checked, rows_fast
from veil.substrate.storage import TOTAL_ISSUANCE_KEY, AccountInfo, account_key

SOURCE = Path("file.json")
U128 = 2**128 - 1
U32 = 2**32 - 1
SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])

accounts = st.lists(st.binary(min_size=32, max_size=32), min_size=1, max_size=6, unique=True)


def _checked(read: Any, *args: Any) -> Any:
    """The checked reader's answer, or the InputError it raises (a refusal)."""
    try:
        return read(*args)
    except InputError as error:
        return error


def _agree(fast: Any, checked: Any) -> None:
    """Fast either equals checked or steps aside; it never accepts what checked refuses."""
    if isinstance(checked, InputError):
        assert fast is None, f"fast reader accepted what the checked one refuses: {checked}"
    elif fast is not None:
        assert fast == checked


# --- snapshot file: account rows -------------------------------------------------------


@st.composite
def snapshot_records(draw: st.DrawFn) -> list[list[Any]]:
    ids = sorted(draw(accounts))
    amount = st.integers(0, U128).map(str)
    counter = st.integers(0, U32)
    return [
        ["0x" + account.hex(), *draw(st.tuples(amount, amount, amount, amount)),
         *draw(st.tuples(counter, counter, counter, counter))]
        for account in ids
    ]  # fmt: skip


# Spoilings that break the format: both readers must refuse the file.
SNAPSHOT_INVALID = {
    "negative amount": lambda r: r.__setitem__(2, "-1"),
    "negative counter": lambda r: r.__setitem__(6, -1),
    "amount not decimal": lambda r: r.__setitem__(1, "1e3"),
    "amount with spaces": lambda r: r.__setitem__(1, " 12"),
    "amount with underscore": lambda r: r.__setitem__(3, "1_000"),
    "amount a float": lambda r: r.__setitem__(1, 1.5),
    "amount a bool": lambda r: r.__setitem__(4, True),
    "counter a string": lambda r: r.__setitem__(5, "7"),
    "counter a float": lambda r: r.__setitem__(7, 2.0),
    "short account": lambda r: r.__setitem__(0, r[0][:-2]),
    "account without 0x": lambda r: r.__setitem__(0, "00" + r[0][2:]),
    "account with a space": lambda r: r.__setitem__(0, r[0][:10] + " " + r[0][10:]),
    "account not hex": lambda r: r.__setitem__(0, r[0][:-1] + "g"),
    "missing column": lambda r: r.pop(),
    "extra column": lambda r: r.append(0),
    "not a list": lambda r: r.clear(),
}
# Spoilings that keep the format (hex is case-insensitive): readers must read them alike.
SNAPSHOT_VALID = {
    "upper-case account": lambda r: r.__setitem__(0, "0x" + r[0][2:].upper()),
}


@SETTINGS
@given(records=snapshot_records())
def test_snapshot_readers_agree_on_valid_rows(records: list[list[Any]]) -> None:
    fast = rows_fast(records)
    assert fast is not None
    assert fast == rows_checked(records, SOURCE)


@SETTINGS
@given(
    records=snapshot_records(),
    how=st.sampled_from(sorted(SNAPSHOT_INVALID) + sorted(SNAPSHOT_VALID)),
    data=st.data(),
)
def test_snapshot_readers_agree_on_spoiled_rows(
    records: list[list[Any]], how: str, data: st.DataObject
) -> None:
    target = data.draw(st.integers(0, len(records) - 1))
    (SNAPSHOT_INVALID | SNAPSHOT_VALID)[how](records[target])
    fast = rows_fast(records)
    checked = _checked(rows_checked, records, SOURCE)
    _agree(fast, checked)
    if how in SNAPSHOT_INVALID:
        assert fast is None and isinstance(checked, InputError), how
    else:
        assert fast is not None and fast == checked


@SETTINGS
@given(records=snapshot_records())
def test_snapshot_readers_refuse_unsorted_or_repeated_accounts(records: list[list[Any]]) -> None:
    records = [*records, list(records[0])]  # the first account again, last
    assert rows_fast(records) is None
    assert isinstance(_checked(rows_checked, records, SOURCE), InputError)


# --- ledger file: leaves ---------------------------------------------------------------


@st.composite
def ledger_records(draw: st.DrawFn) -> list[list[Any]]:
    ids = sorted(draw(accounts))
    wei = st.integers(0, U128 * 10**6).map(str)
    return [
        [index, "0x" + account.hex(), draw(wei), draw(wei)] for index, account in enumerate(ids)
    ]


LEDGER_INVALID = {
    "negative free": lambda r: r.__setitem__(2, "-5"),
    "free a number": lambda r: r.__setitem__(2, 5),
    "staked not decimal": lambda r: r.__setitem__(3, "0x10"),
    "staked with spaces": lambda r: r.__setitem__(3, "10 "),
    "staked with underscore": lambda r: r.__setitem__(3, "1_0"),
    "index a string": lambda r: r.__setitem__(0, str(r[0])),
    "index a float": lambda r: r.__setitem__(0, float(r[0])),
    "index a bool": lambda r: r.__setitem__(0, True),
    "short account": lambda r: r.__setitem__(1, r[1][:-2]),
    "account with a space": lambda r: r.__setitem__(1, r[1][:8] + " " + r[1][8:]),
    "account without 0x": lambda r: r.__setitem__(1, r[1][2:]),
    "missing column": lambda r: r.pop(),
    "not a list": lambda r: r.clear(),
}
LEDGER_VALID = {
    "upper-case account": lambda r: r.__setitem__(1, "0x" + r[1][2:].upper()),
}


@SETTINGS
@given(records=ledger_records())
def test_ledger_readers_agree_on_valid_leaves(records: list[list[Any]]) -> None:
    fast = leaves_fast(records)
    assert fast is not None
    assert fast == leaves_checked(records, SOURCE)


@SETTINGS
@given(
    records=ledger_records(),
    how=st.sampled_from(sorted(LEDGER_INVALID) + sorted(LEDGER_VALID)),
    data=st.data(),
)
def test_ledger_readers_agree_on_spoiled_leaves(
    records: list[list[Any]], how: str, data: st.DataObject
) -> None:
    target = data.draw(st.integers(0, len(records) - 1))
    (LEDGER_INVALID | LEDGER_VALID)[how](records[target])
    fast = leaves_fast(records)
    checked = _checked(leaves_checked, records, SOURCE)
    _agree(fast, checked)
    if how in LEDGER_INVALID:
        assert fast is None and isinstance(checked, InputError), how
    else:
        assert fast is not None and fast == checked


# --- raw state: System.Account entries -------------------------------------------------


@st.composite
def raw_states(draw: st.DrawFn) -> dict[str, Any]:
    amount = st.integers(0, U128)
    counter = st.integers(0, U32)
    storage: dict[str, Any] = {}
    for account in draw(accounts):
        info = AccountInfo(*draw(st.tuples(counter, counter, counter, counter)),
                           *draw(st.tuples(amount, amount, amount, amount)))  # fmt: skip
        storage["0x" + account_key(account).hex()] = "0x" + info.encode().hex()
    other = draw(st.dictionaries(st.binary(min_size=1, max_size=40), st.binary(max_size=40)))
    for key, value in other.items():  # other pallets' storage: ignored by both readers
        storage["0x" + hashlib.sha256(key).hexdigest()] = "0x" + value.hex()
    issuance = draw(st.integers(0, U128))
    storage["0x" + TOTAL_ISSUANCE_KEY.hex()] = "0x" + issuance.to_bytes(16, "little").hex()
    return storage


def _pairs_read(storage: dict[str, Any]) -> Any:
    try:
        return decode_account_pairs(storage.items(), strict_prefix=False)
    except InputError as error:
        return error


def _account_entry(storage: dict[str, Any], pick: int) -> str:
    keys = sorted(k for k in storage if len(k) == 2 + 2 * 80)
    return keys[pick % len(keys)]


def _respell(storage: dict[str, Any], key: str, new_key: str) -> None:
    storage[new_key] = storage.pop(key)


STATE_INVALID = {
    "short value": lambda s, k: s.__setitem__(k, s[k][:-2]),
    "long value": lambda s, k: s.__setitem__(k, s[k] + "00"),
    "value with a space": lambda s, k: s.__setitem__(k, s[k][:20] + " " + s[k][20:]),
    "value not hex": lambda s, k: s.__setitem__(k, s[k][:-1] + "z"),
    "value without 0x": lambda s, k: s.__setitem__(k, "00" + s[k][2:]),
    "value a number": lambda s, k: s.__setitem__(k, 5),
    "wrong id hash": lambda s, k: _respell(s, k, k[:66] + "00" * 16 + k[98:]),
    "short key": lambda s, k: _respell(s, k, k[:-2]),
    "the same account twice": lambda s, k: s.__setitem__("0x" + k[2:].upper(), s[k]),
    "no total issuance": lambda s, k: s.pop("0x" + TOTAL_ISSUANCE_KEY.hex()),
    "total issuance with a space": lambda s, k: s.__setitem__(
        "0x" + TOTAL_ISSUANCE_KEY.hex(), "0x " + s["0x" + TOTAL_ISSUANCE_KEY.hex()][2:]
    ),
    "short total issuance": lambda s, k: s.__setitem__("0x" + TOTAL_ISSUANCE_KEY.hex(), "0x00"),
    "total issuance twice": lambda s, k: s.__setitem__(
        "0x" + TOTAL_ISSUANCE_KEY.hex().upper(), s["0x" + TOTAL_ISSUANCE_KEY.hex()]
    ),
}
STATE_VALID = {
    "upper-case id": lambda s, k: _respell(s, k, k[:98] + k[98:].upper()),
    "upper-case value": lambda s, k: s.__setitem__(k, "0x" + s[k][2:].upper()),
}


@SETTINGS
@given(storage=raw_states())
def test_state_readers_agree_on_valid_storage(storage: dict[str, Any]) -> None:
    fast = decode_account_storage(storage)
    assert fast is not None
    assert fast == decode_account_pairs(storage.items(), strict_prefix=False)


@SETTINGS
@given(
    storage=raw_states(),
    how=st.sampled_from(sorted(STATE_INVALID) + sorted(STATE_VALID)),
    pick=st.integers(0, 100),
)
def test_state_readers_agree_on_spoiled_storage(
    storage: dict[str, Any], how: str, pick: int
) -> None:
    (STATE_INVALID | STATE_VALID)[how](storage, _account_entry(storage, pick))
    fast = decode_account_storage(storage)
    checked = _pairs_read(storage)
    _agree(fast, checked)
    if how in STATE_INVALID:
        assert fast is None and isinstance(checked, InputError), how
    else:
        assert fast is not None and fast == checked


@pytest.mark.parametrize("reader", [rows_fast, leaves_fast])
def test_fast_readers_take_an_empty_table(reader: Any) -> None:
    assert reader([]) == []
