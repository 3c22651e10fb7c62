"""Per-token charges are exact integers and add up however the rows are grouped."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from veil.errors import InputError
from veil.inference.metering import TokenPrice, charges

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
