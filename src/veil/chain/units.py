"""PHA amounts as people write them ("12.5") and as contracts hold them (wei).

Parsing is exact: a human amount with more decimals than the token has is refused rather
than rounded, because a silently rounded stake or proposal value is a lost planck.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

from veil.errors import InputError

PHA_DECIMALS = 18
WEI_PER_PHA = 10**PHA_DECIMALS


def parse_amount(text: str, decimals: int = PHA_DECIMALS, what: str = "amount") -> int:
    """'12.5' -> 12_500_000_000_000_000_000; '1e3' and '1_000' are accepted, '-1' is not."""
    cleaned = text.strip().replace("_", "").replace(",", "")
    try:
        value = Decimal(cleaned)
    except InvalidOperation:
        raise InputError(f"{what} {text!r}: not a number") from None
    if not value.is_finite() or value < 0:
        raise InputError(f"{what} {text!r}: must be a non-negative number")
    scaled = value.scaleb(decimals)
    if scaled != scaled.to_integral_value():
        raise InputError(f"{what} {text!r}: more than {decimals} decimals")
    return int(scaled)


def format_amount(wei: int, decimals: int = PHA_DECIMALS, symbol: str = "PHA") -> str:
    """Exact decimal rendering with trailing zeros removed: 12500000000000000000 -> '12.5 PHA'."""
    sign = "-" if wei < 0 else ""
    whole, frac = divmod(abs(wei), 10**decimals)
    text = f"{whole:,}"
    if frac:
        text += "." + str(frac).rjust(decimals, "0").rstrip("0")
    return f"{sign}{text} {symbol}".rstrip()


def format_with_wei(wei: int, decimals: int = PHA_DECIMALS, symbol: str = "PHA") -> str:
    """Human amount plus the exact integer, for places where precision matters."""
    return f"{format_amount(wei, decimals, symbol)} ({wei} wei)"
