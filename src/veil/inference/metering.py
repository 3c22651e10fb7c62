"""Per-token charges from the gateway's usage rows: exact integers, in PHA's smallest unit.

Why here and not in the market: the escrow bills leases per second; inference is sold per
token. This turns the gateway's metered rows (one per signed answer, each with a receipt a
customer can check) into per-customer amounts with integer prices per token, so a billing
run can settle them through the escrow without any rounding: amount = prompt tokens x
prompt price + completion tokens x completion price, summed.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from veil.errors import InputError

#: The price-table entry that prices every model without an entry of its own.
ANY_MODEL = "*"
_WEI = re.compile(r"[0-9]+")


@dataclass(frozen=True)
class TokenPrice:
    """Wei (PHA, 18 decimals) per prompt token and per completion token."""

    prompt: int
    completion: int

    def __post_init__(self) -> None:
        for name in ("prompt", "completion"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise InputError(f"token price {name}: expected a non-negative integer (wei)")


@dataclass
class CustomerCharge:
    customer: str
    prompt_tokens: int = 0
    completion_tokens: int = 0
    amount: int = 0
    receipts: list[str] = field(default_factory=list)


def parse_price(text: str) -> tuple[str, TokenPrice]:
    """`MODEL=PROMPT_WEI:COMPLETION_WEI` (`*` as MODEL prices every model not listed).

    Why integers of wei only: a price in PHA with decimals would need rounding per token,
    and the escrow checks the meter's amounts against a cap in wei per token.
    """
    model, sep, prices = text.rpartition("=")
    prompt, colon, completion = prices.partition(":")
    if not sep or not model or not colon:
        raise InputError(f"price {text!r}: expected MODEL=PROMPT_WEI:COMPLETION_WEI")
    if not (_WEI.fullmatch(prompt) and _WEI.fullmatch(completion)):
        raise InputError(f"price {text!r}: wei per token must be non-negative integers")
    return model, TokenPrice(int(prompt), int(completion))


def parse_prices(items: Iterable[str]) -> dict[str, TokenPrice]:
    """A price table from `--price` values; a model priced twice is refused, not overwritten."""
    table: dict[str, TokenPrice] = {}
    for item in items:
        model, price = parse_price(item)
        if model in table:
            raise InputError(f"price for model {model!r} given twice")
        table[model] = price
    return table


def price_of(prices: Mapping[str, TokenPrice], model: str) -> TokenPrice | None:
    """The model's own price, else the `*` entry's, else None (not priced)."""
    return prices.get(model) or prices.get(ANY_MODEL)


def _field(row: Any, name: str) -> Any:
    return row[name] if isinstance(row, Mapping) else getattr(row, name)


def charges(rows: Iterable[Any], prices: Mapping[str, TokenPrice]) -> dict[str, CustomerCharge]:
    """Amounts per customer; a row for a model without a price is refused, never free."""
    result: dict[str, CustomerCharge] = {}
    for row in rows:
        model = str(_field(row, "model"))
        price = price_of(prices, model)
        if price is None:
            raise InputError(f"usage {_field(row, 'receipt_id')}: no price for model {model!r}")
        prompt = int(_field(row, "prompt_tokens"))
        completion = int(_field(row, "completion_tokens"))
        customer = str(_field(row, "customer"))
        charge = result.setdefault(customer, CustomerCharge(customer))
        charge.prompt_tokens += prompt
        charge.completion_tokens += completion
        charge.amount += prompt * price.prompt + completion * price.completion
        charge.receipts.append(str(_field(row, "receipt_id")))
    return result


def metered(rows: Iterable[Any], prices: Mapping[str, TokenPrice]) -> tuple[int, int]:
    """(tokens, wei) over all rows, whoever the customer: what one usage voucher covers.

    Tokens are prompt plus completion tokens, the unit of the escrow's per-token cap; the
    wei are exactly the sum of `charges` over the same rows.
    """
    found = charges(rows, prices)
    tokens = sum(c.prompt_tokens + c.completion_tokens for c in found.values())
    return tokens, sum(c.amount for c in found.values())
