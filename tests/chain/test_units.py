"""Human PHA and vPHA amounts convert to integers exactly, by one strict grammar, or not at all."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from veil.chain.units import (
    VPHA_DECIMALS,
    amount_json,
    format_amount,
    format_vpha,
    format_with_wei,
    parse_amount,
)
from veil.errors import InputError


@pytest.mark.parametrize(
    ("text", "wei"),
    [("12.5", 12_500_000_000_000_000_000), ("0", 0), ("1000", 10**21), ("0.000000000000000001", 1),
     ("1000000000", 10**27), ("007.50", 75 * 10**17), ("1.000000000000000000000", 10**18)],
)  # fmt: skip
def test_parse(text: str, wei: int) -> None:
    assert parse_amount(text) == wei


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        # issue 8, defect 2: a decimal comma and a thousands separator were both "removed"
        ("1,5", "',' is neither a decimal point"),
        ("1.000,5", "',' is neither a decimal point"),
        ("1,000,000", "',' is neither"),
        ("1_000", "not an amount"),
        ("1e3", "not an amount"),
        ("1e-18", "not an amount"),
        ("abc", "not an amount"),
        ("-1", "must not be negative"),
        ("+1", "not an amount"),
        (" 1", "not an amount"),
        ("1.", "not an amount"),
        (".5", "not an amount"),
        ("1.2.3", "more than one '.'"),
        ("", "empty"),
        ("inf", "not an amount"),
        ("NaN", "not an amount"),
        ("١٢", "not an amount"),  # Arabic-Indic digits: int() would take them
        ("0.0000000000000000001", "more than 18 decimals"),
    ],
)
def test_parse_refuses_and_quotes_the_input(text: str, problem: str) -> None:
    with pytest.raises(InputError, match=problem) as refused:
        parse_amount(text)
    assert repr(text) in str(refused.value)


def test_vpha_takes_24_decimals() -> None:
    assert parse_amount("0.000000000000000000000001", VPHA_DECIMALS) == 1
    with pytest.raises(InputError, match="more than 24 decimals"):
        parse_amount("0.0000000000000000000000001", VPHA_DECIMALS)


@settings(deadline=None)  # a loaded CI machine must not turn slowness into a failure
@given(st.integers(min_value=0, max_value=10**40), st.sampled_from([18, 24]))
def test_format_then_parse_round_trips(wei: int, decimals: int) -> None:
    shown = format_amount(wei, decimals)
    assert shown.endswith(" PHA")
    assert parse_amount(shown.removesuffix(" PHA").replace(",", ""), decimals) == wei
    assert parse_amount(amount_json(wei, decimals)["amount"], decimals) == wei


def test_with_wei_shows_exact_integer() -> None:
    assert format_with_wei(1) == "0.000000000000000001 PHA (1 wei)"
    assert format_vpha(1250 * 10**24) == "1,250 vPHA"
    assert amount_json(5 * 10**17) == {"raw": str(5 * 10**17), "amount": "0.5"}
