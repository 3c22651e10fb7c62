"""L2 addresses as users type them, checked per EIP-55.

Kept apart from the signing code (eth-account) so that commands which only read an address,
such as `veil migrate binding-message`, do not load key handling to do it.
"""

from __future__ import annotations

import re

from veil.errors import InputError

_HEX_ADDRESS = re.compile(r"0x[0-9a-fA-F]{40}")


def parse_address(text: str, what: str = "address", *, allow_zero: bool = False) -> str:
    """An L2 address as typed, strictly per EIP-55, returned checksummed.

    All-lowercase and all-uppercase hex carry no checksum and are accepted, as EIP-55 says;
    mixed case is a checksum and must be right: a typo in it is caught here, instead of
    being silently re-checksummed into an address nobody holds. The zero address burns what
    is sent to it, so it is refused unless the caller says it means it.
    """
    if not _HEX_ADDRESS.fullmatch(text):
        raise InputError(f"{what} {text!r:.60}: not an address (expected 0x and 40 hex digits)")
    digits = text[2:]
    checksummed = _eip55(digits.lower())
    mixed = digits != digits.lower() and digits != digits.upper()
    if mixed and digits != checksummed[2:]:
        raise InputError(
            f"{what} {text}: wrong EIP-55 checksum (mixed case must match {checksummed}); "
            "check for a typo"
        )
    if not allow_zero and int(digits, 16) == 0:
        raise InputError(f"{what} {text}: the zero address (anything sent there is lost)")
    return checksummed


def _eip55(lower_hex: str) -> str:
    from eth_utils import keccak  # ~0.1 s; only when an address is actually checked

    digest = keccak(text=lower_hex).hex()
    return "0x" + "".join(
        c.upper() if c.isalpha() and int(digest[i], 16) >= 8 else c for i, c in enumerate(lower_hex)
    )
