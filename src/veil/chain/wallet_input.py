"""Amounts and addresses as the wallet commands accept them: strictly, or not at all.

A transfer cannot be taken back, so nothing is guessed: `1,5` (a decimal comma to some, a
thousands separator to others), exponents, signs and spaces are refused with the input
quoted; an address in mixed case must carry a correct EIP-55 checksum (a typo is caught
instead of silently re-checksummed); the zero address, where tokens are lost, is refused.

Same signatures as `veil.chain.units.parse_amount` and `veil.chain.accounts.parse_address`
on the cli-a branch, so the two can become one module when merged.
"""

from __future__ import annotations

import re

from veil.errors import InputError

_AMOUNT = re.compile(r"([0-9]+)(?:\.([0-9]+))?")
_ADDRESS = re.compile(r"0x[0-9a-fA-F]{40}")


def parse_amount(text: str, decimals: int = 18, what: str = "amount") -> int:
    """'12.5' with 18 decimals -> 12_500_000_000_000_000_000; exact, never rounded."""
    match = _AMOUNT.fullmatch(text)
    if match is None:
        if text.strip().startswith("-"):
            reason = "must not be negative"
        elif "," in text:
            reason = "',' is not a decimal point or a separator here; write e.g. 1.5 or 1500"
        else:
            reason = "not an amount (digits with at most one '.', e.g. 12 or 12.5)"
        raise InputError(f"{what} {text!r}: {reason}")
    whole: str = match.group(1)
    frac: str = (match.group(2) or "").rstrip("0")
    if len(frac) > decimals:
        raise InputError(f"{what} {text!r}: more than {decimals} decimals")
    scale: int = 10**decimals
    return int(whole) * scale + int(frac.ljust(decimals, "0") or "0")


def parse_address(text: str, what: str = "address", *, allow_zero: bool = False) -> str:
    """A 0x address, returned checksummed; mixed case must be a correct EIP-55 checksum."""
    if not _ADDRESS.fullmatch(text):
        raise InputError(f"{what} {text[:60]!r}: not an address (0x and 40 hex digits)")
    from eth_utils.address import to_checksum_address

    checksummed = str(to_checksum_address(text))
    digits = text[2:]
    if digits not in (digits.lower(), digits.upper()) and text != checksummed:
        raise InputError(
            f"{what} {text}: wrong EIP-55 checksum (would be {checksummed}); check for a typo"
        )
    if not allow_zero and int(digits, 16) == 0:
        raise InputError(f"{what} {text}: the zero address (whatever is sent there is lost)")
    return checksummed
