"""How a worker authenticates to the control plane: EIP-191 over a tag, the time and the body.

One definition for the side that signs (the worker's app loop and telemetry shipper) and the
side that checks (the control plane), so the two cannot drift. The tag names the route, so a
signed sync cannot be replayed as telemetry; the timestamp bounds a replay to the control
plane's skew window; the body's sha256 ties the signature to exactly the bytes sent.
"""

from __future__ import annotations

import hashlib

from eth_account import Account
from eth_account.messages import encode_defunct
from eth_account.signers.local import LocalAccount

from veil.errors import InputError

SYNC = "veil-worker-sync"
TELEMETRY = "veil-worker-telemetry"


def message(tag: str, timestamp: int, body: bytes) -> str:
    """The text the worker signs for one request."""
    return f"{tag}:{timestamp}:{hashlib.sha256(body).hexdigest()}"


def sync_message(timestamp: int, body: bytes) -> str:
    return message(SYNC, timestamp, body)


def telemetry_message(timestamp: int, body: bytes) -> str:
    return message(TELEMETRY, timestamp, body)


def signed_headers(worker: LocalAccount, tag: str, timestamp: int, body: bytes) -> dict[str, str]:
    """The request headers that carry the worker's signature over `body`."""
    signed = worker.sign_message(encode_defunct(text=message(tag, timestamp, body)))
    return {
        "Content-Type": "application/json",
        "X-Veil-Worker": worker.address,
        "X-Veil-Timestamp": str(timestamp),
        "X-Veil-Signature": "0x" + bytes(signed.signature).hex(),
    }


def signer_of(tag: str, timestamp: int, body: bytes, signature: str) -> str:
    """The checksummed address that signed the request; InputError if it is no signature."""
    try:
        raw = bytes.fromhex(signature.removeprefix("0x"))
        if len(raw) != 65:
            raise ValueError
        text = message(tag, timestamp, body)
        return str(Account.recover_message(encode_defunct(text=text), signature=raw))
    except Exception:
        raise InputError("X-Veil-Signature is not a signature") from None
