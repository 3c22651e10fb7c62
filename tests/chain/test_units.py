"""Human PHA amounts convert to wei exactly or not at all."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from veil.chain.units import format_amount, format_with_wei, parse_amount
from veil.errors import InputError


@pytest.mark.parametrize(
    ("text", "wei"),
    [("12.5", 12_500_000_000_000_000_000), ("0", 0), ("1_000", 10**21), ("1e-18", 1),
     ("1,000,000,000", 10**27)],
)  # fmt: skip
def test_parse(text: str, wei: int) -> None:
    assert parse_amount(text) == wei


@pytest.mark.parametrize(
    ("text", "problem"),
    [("abc", "not a number"), ("-1", "non-negative"), ("1e-19", "more than 18 decimals"),
     ("inf", "non-negative")],
)  # fmt: skip
def test_parse_refuses(text: str, problem: str) -> None:
    with pytest.raises(InputError, match=problem):
        parse_amount(text)


@settings(deadline=None)  # a loaded CI machine must not turn slowness into a failure
@given(st.integers(min_value=0, max_value=10**40))
def test_format_then_parse_round_trips(wei: int) -> None:
    shown = format_amount(wei)
    assert shown.endswith(" PHA")
    assert parse_amount(shown.removesuffix(" PHA")) == wei


def test_with_wei_shows_exact_integer() -> None:
    assert format_with_wei(1) == "0.000000000000000001 PHA (1 wei)"
