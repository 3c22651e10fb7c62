"""Per-token charges are exact integers and add up however the rows are grouped."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from veil.errors import InputError
from veil.inference.metering import (
    ANY_MODEL,
    TokenPrice,
    charges,
    metered,
    parse_price,
    parse_prices,
    price_of,
)

PRICES = {"m1": TokenPrice(prompt=10**12, completion=3 * 10**12), "m2": TokenPrice(1, 7)}

rows = st.lists(
    st.fixed_dictionaries(
        {
            "receipt_id": st.uuids().map(str),
            "model": st.sampled_from(["m1", "m2"]),
            "customer": st.sampled_from(["alice", "bob", "carol"]),
            "prompt_tokens": st.integers(0, 10**6),
            "completion_tokens": st.integers(0, 10**6),
        }
    ),
    max_size=40,
)


@settings(max_examples=80, deadline=None)
@given(rows)
def test_total_is_the_sum_of_rows_exactly(items: list[dict[str, object]]) -> None:
    result = charges(items, PRICES)
    expected = sum(
        int(r["prompt_tokens"]) * PRICES[str(r["model"])].prompt  # type: ignore[call-overload]
        + int(r["completion_tokens"]) * PRICES[str(r["model"])].completion  # type: ignore[call-overload]
        for r in items
    )
    assert sum(c.amount for c in result.values()) == expected
    assert sum(len(c.receipts) for c in result.values()) == len(items)
    halves = charges(items[: len(items) // 2], PRICES), charges(items[len(items) // 2 :], PRICES)
    for customer, charge in result.items():
        assert charge.amount == sum(h[customer].amount for h in halves if customer in h)


def test_unpriced_model_and_bad_price_are_refused() -> None:
    row = {"receipt_id": "r1", "model": "free?", "customer": "a", "prompt_tokens": 1,
           "completion_tokens": 1}  # fmt: skip
    with pytest.raises(InputError, match="r1: no price for model 'free\\?'"):
        charges([row], PRICES)
    with pytest.raises(InputError, match="non-negative"):
        TokenPrice(prompt=-1, completion=0)


@settings(max_examples=60, deadline=None)
@given(rows)
def test_metered_is_tokens_and_wei_over_every_customer(items: list[dict[str, object]]) -> None:
    tokens, amount = metered(items, PRICES)
    assert tokens == sum(int(r["prompt_tokens"]) + int(r["completion_tokens"]) for r in items)  # type: ignore[call-overload]
    assert amount == sum(c.amount for c in charges(items, PRICES).values())
    # cumulative: metering the rows in two runs adds up to metering them at once
    first, second = metered(items[:3], PRICES), metered(items[3:], PRICES)
    assert (first[0] + second[0], first[1] + second[1]) == (tokens, amount)


def test_price_table_from_options() -> None:
    table = parse_prices(["qwen2.5-7b=1000:3000", "*=7:9"])
    assert table == {"qwen2.5-7b": TokenPrice(1000, 3000), ANY_MODEL: TokenPrice(7, 9)}
    assert price_of(table, "qwen2.5-7b") == TokenPrice(1000, 3000)
    assert price_of(table, "other") == TokenPrice(7, 9)  # the `*` entry prices the rest
    assert price_of({"m": TokenPrice(1, 1)}, "other") is None
    # a model name may itself hold '=': the price is what follows the last one
    assert parse_price("org/m=v2=5:6") == ("org/m=v2", TokenPrice(5, 6))
    row = {"receipt_id": "r", "model": "x", "customer": "c", "prompt_tokens": 2,
           "completion_tokens": 3}  # fmt: skip
    assert metered([row], table) == (5, 2 * 7 + 3 * 9)


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("qwen", "expected MODEL=PROMPT_WEI:COMPLETION_WEI"),
        ("=1:2", "expected MODEL=PROMPT_WEI:COMPLETION_WEI"),
        ("qwen=12", "expected MODEL=PROMPT_WEI:COMPLETION_WEI"),
        ("qwen=1.5:2", "non-negative integers"),
        ("qwen=-1:2", "non-negative integers"),
        ("qwen=1:0x10", "non-negative integers"),
    ],
)
def test_bad_prices_are_refused_in_one_line(text: str, problem: str) -> None:
    with pytest.raises(InputError, match=problem):
        parse_price(text)


def test_a_model_priced_twice_is_refused() -> None:
    with pytest.raises(InputError, match="'m' given twice"):
        parse_prices(["m=1:1", "m=2:2"])
