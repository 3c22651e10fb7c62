"""PHA and vPHA amounts as people write them ("12.5") and as contracts hold them (integers).

One grammar for every amount a user types: digits, optionally one `.` and more digits
(`12`, `12.5`, `0.000001`). Nothing else is guessed at: `1,5` is a decimal comma in half of
the world and a thousands separator in the other half, so it is refused rather than read as
15; exponents, underscores, signs and spaces are refused too. Parsing is exact: an amount with
more decimals than the token has is refused rather than rounded, because a silently rounded
stake or proposal value is a lost planck.

PHA has 18 decimals. vPHA (the vault's shares) has 24: a vPHA amount accepts up to 24
decimals, the share's own precision, so any balance `format_amount` shows can be typed back.
"""

from __future__ import annotations

import re

from veil.errors import InputError

PHA_DECIMALS = 18
VPHA_DECIMALS = 24
WEI_PER_PHA = 10**PHA_DECIMALS

_AMOUNT = re.compile(r"(?P<whole>[0-9]+)(?:\.(?P<frac>[0-9]+))?")
GRAMMAR = "digits with at most one '.', e.g. 12 or 12.5"


def parse_amount(text: str, decimals: int = PHA_DECIMALS, what: str = "amount") -> int:
    """'12.5' -> 12_500_000_000_000_000_000 (PHA, 18 decimals); see the module for the grammar."""
    match = _AMOUNT.fullmatch(text)
    if match is None:
        raise InputError(f"{what} {text!r}: {_why_refused(text)}")
    frac = match["frac"] or ""
    if len(frac.rstrip("0")) > decimals:
        raise InputError(f"{what} {text!r}: more than {decimals} decimals")
    frac = frac[:decimals].ljust(decimals, "0")
    scale: int = 10**decimals
    return int(match["whole"]) * scale + int(frac or "0")


def _why_refused(text: str) -> str:
    """Name the likely slip, so the user knows what to type instead."""
    stripped = text.strip()
    if not stripped:
        return f"empty; expected {GRAMMAR}"
    if stripped.startswith("-"):
        return "must not be negative"
    if "," in stripped:
        return f"',' is neither a decimal point nor allowed as a separator; expected {GRAMMAR}"
    if stripped.count(".") > 1:
        return f"more than one '.'; expected {GRAMMAR}"
    return f"not an amount; expected {GRAMMAR}"


def format_amount(wei: int, decimals: int = PHA_DECIMALS, symbol: str = "PHA") -> str:
    """Exact decimal rendering with trailing zeros removed: 12500000000000000000 -> '12.5 PHA'."""
    sign = "-" if wei < 0 else ""
    whole, frac = divmod(abs(wei), 10**decimals)
    text = f"{whole:,}"
    if frac:
        text += "." + str(frac).rjust(decimals, "0").rstrip("0")
    return f"{sign}{text} {symbol}".rstrip()


def format_vpha(shares: int) -> str:
    """vPHA shares (24 decimals) as people read them: 1250 * 10**24 -> '1,250 vPHA'."""
    return format_amount(shares, VPHA_DECIMALS, "vPHA")


def format_with_wei(wei: int, decimals: int = PHA_DECIMALS, symbol: str = "PHA") -> str:
    """Human amount plus the exact integer, for places where precision matters."""
    return f"{format_amount(wei, decimals, symbol)} ({wei} wei)"


def amount_json(value: int, decimals: int = PHA_DECIMALS) -> dict[str, str]:
    """An amount in `--json` output: exact integer as a string (JSON numbers lose digits)
    and the decimal text, so scripts need not know the token's decimals."""
    whole, frac = divmod(value, 10**decimals)
    text = str(whole) + ("." + str(frac).rjust(decimals, "0").rstrip("0") if frac else "")
    return {"raw": str(value), "amount": text}
