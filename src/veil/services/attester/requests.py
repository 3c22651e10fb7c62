"""Request bodies: parsed strictly, refused with a reason a client can act on.

The attester signs money-moving statements, so it accepts exactly the fields it knows,
of the types and sizes it expects; anything else is a 4xx, never a best guess.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from veil.attestation.api import Fields


@dataclass
class Refused(Exception):
    """An HTTP error answer: status code and a one-line reason."""

    status: int
    reason: str
    code: str | None = None  # machine-readable; default: from the status
    retry_after: int | None = None  # seconds, sent as Retry-After (503, 429)

    def __str__(self) -> str:
        return f"{self.status}: {self.reason}"


def require_object(body: Any, fields: Fields) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise Refused(400, "body must be a JSON object")
    unknown = sorted(set(body) - fields.allowed)
    if unknown:
        raise Refused(400, f"unknown field(s): {', '.join(unknown)}")
    missing = sorted(fields.required - set(body))
    if missing:
        raise Refused(400, f"missing field(s): {', '.join(missing)}")
    return body


def text_field(body: dict[str, Any], name: str, max_len: int = 256) -> str:
    value = body.get(name)
    if not isinstance(value, str) or not value or len(value) > max_len:
        raise Refused(400, f"{name}: expected a non-empty string of at most {max_len} chars")
    return value


def hex_field(body: dict[str, Any], name: str, sizes: tuple[int, ...]) -> bytes:
    text = text_field(body, name, max_len=2 + 2 * max(sizes))
    if not text.startswith("0x"):
        raise Refused(400, f"{name}: expected 0x-prefixed hex")
    try:
        raw = bytes.fromhex(text[2:])
    except ValueError:
        raise Refused(400, f"{name}: not hex") from None
    if len(raw) not in sizes:
        want = " or ".join(str(s) for s in sizes)
        raise Refused(400, f"{name}: {len(raw)} bytes, expected {want}")
    return raw


def int_field(body: dict[str, Any], name: str, low: int = 0, high: int = 2**64 - 1) -> int:
    value = body.get(name)
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise Refused(400, f"{name}: expected an integer in [{low}, {high}]")
    return value
