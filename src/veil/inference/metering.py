"""Per-token charges from the gateway's usage rows: exact integers, in PHA's smallest unit.

Why here and not in the market: the escrow bills leases per second; inference is sold per
token. This turns the gateway's metered rows (one per signed answer, each with a receipt a
customer can check) into per-customer amounts with integer prices per token, so a billing
run can settle them through the escrow without any rounding: amount = prompt tokens x
prompt price + completion tokens x completion price, summed.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from veil.errors import InputError


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


def _field(row: Any, name: str) -> Any:
    return row[name] if isinstance(row, Mapping) else getattr(row, name)


def charges(rows: Iterable[Any], prices: Mapping[str, TokenPrice]) -> dict[str, CustomerCharge]:
    """Amounts per customer; a row for a model without a price is refused, never free."""
    result: dict[str, CustomerCharge] = {}
    for row in rows:
        model = str(_field(row, "model"))
        price = prices.get(model)
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
