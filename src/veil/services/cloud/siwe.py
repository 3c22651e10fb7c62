"""Sign-In with Ethereum (EIP-4361): parse the message a wallet signed and judge it.

The message is parsed field by field as the EIP's grammar lays it out, and every field
the server relies on is checked: the domain is this control plane's, the chain is this
network's, the nonce is one we issued (single use, checked by the caller against the
database), the validity window holds, and the EIP-191 signature recovers the address
the message names. Any refusal is one line naming the field.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime

from eth_account import Account
from eth_account.messages import encode_defunct
from eth_utils import is_checksum_address

_HEADER = re.compile(
    r"^(?:(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*)://)?(?P<domain>[^ /]+) wants you "
    r"to sign in with your Ethereum account:$"
)
_ADDRESS = re.compile(r"^0x[0-9a-fA-F]{40}$")
_NONCE = re.compile(r"^[A-Za-z0-9]{8,}$")
_FIELDS = {
    "URI": "uri",
    "Version": "version",
    "Chain ID": "chain_id",
    "Nonce": "nonce",
    "Issued At": "issued_at",
    "Expiration Time": "expiration_time",
    "Not Before": "not_before",
    "Request ID": "request_id",
}
#: How far in the future an Issued At may be (clock skew between wallet and server).
MAX_SKEW = 300


class SiweError(ValueError):
    """The message or its signature cannot be accepted; the text names the field."""


@dataclass(frozen=True)
class SiweMessage:
    domain: str
    address: str
    statement: str | None
    uri: str
    version: str
    chain_id: int
    nonce: str
    issued_at: str
    expiration_time: str | None = None
    not_before: str | None = None
    request_id: str | None = None
    resources: tuple[str, ...] = ()
    scheme: str | None = None

    def text(self) -> str:
        """The message in the EIP's layout (what a wallet displays and signs)."""
        head = f"{self.scheme}://{self.domain}" if self.scheme else self.domain
        lines = [f"{head} wants you to sign in with your Ethereum account:", self.address, ""]
        if self.statement is not None:
            lines += [self.statement, ""]
        lines += [
            f"URI: {self.uri}",
            f"Version: {self.version}",
            f"Chain ID: {self.chain_id}",
            f"Nonce: {self.nonce}",
            f"Issued At: {self.issued_at}",
        ]
        for label, value in (
            ("Expiration Time", self.expiration_time),
            ("Not Before", self.not_before),
            ("Request ID", self.request_id),
        ):
            if value is not None:
                lines.append(f"{label}: {value}")
        if self.resources:
            lines.append("Resources:")
            lines += [f"- {resource}" for resource in self.resources]
        return "\n".join(lines)


def timestamp(text: str, field: str) -> int:
    """RFC 3339 date-time -> unix seconds."""
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise SiweError(f"{field}: {text!r} is not an RFC 3339 date-time") from None
    if moment.tzinfo is None:
        raise SiweError(f"{field}: {text!r} has no time zone")
    return int(moment.timestamp())


def rfc3339(unix: int) -> str:
    return datetime.fromtimestamp(unix, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse(text: str) -> SiweMessage:
    lines = text.split("\n")
    if len(lines) < 7:
        raise SiweError("message: not an EIP-4361 message (too short)")
    header = _HEADER.match(lines[0])
    if header is None:
        raise SiweError("message: first line must be '<domain> wants you to sign in with ...'")
    address = lines[1]
    if not _ADDRESS.match(address):
        raise SiweError(f"address: {address!r} is not an Ethereum address")
    if not is_checksum_address(address):
        raise SiweError(f"address: {address!r} is not EIP-55 checksummed")
    if lines[2] != "":
        raise SiweError("message: expected an empty line after the address")
    index = 3
    statement = None
    if not lines[index].startswith("URI: "):
        statement = lines[index]
        if index + 1 >= len(lines) or lines[index + 1] != "":
            raise SiweError("statement: must be one line followed by an empty line")
        index += 2
    values: dict[str, str] = {}
    resources: list[str] = []
    while index < len(lines):
        line = lines[index]
        index += 1
        if line == "Resources:":
            while index < len(lines) and lines[index].startswith("- "):
                resources.append(lines[index][2:])
                index += 1
            if index != len(lines):
                raise SiweError("resources: unexpected text after the resource list")
            break
        label, sep, value = line.partition(": ")
        if not sep or label not in _FIELDS:
            raise SiweError(f"message: unexpected line {line!r}")
        key = _FIELDS[label]
        if key in values:
            raise SiweError(f"message: {label} appears twice")
        values[key] = value
    for label, key in list(_FIELDS.items())[:5]:
        if key not in values:
            raise SiweError(f"message: missing '{label}:'")
    if values["version"] != "1":
        raise SiweError(f"Version: {values['version']!r} (only 1 is defined)")
    if not values["chain_id"].isdigit():
        raise SiweError(f"Chain ID: {values['chain_id']!r} is not a number")
    if not _NONCE.match(values["nonce"]):
        raise SiweError("Nonce: must be at least 8 alphanumeric characters")
    for key in ("issued_at", "expiration_time", "not_before"):
        if key in values:
            timestamp(values[key], key.replace("_", " "))
    return SiweMessage(
        domain=header.group("domain"),
        scheme=header.group("scheme"),
        address=address,
        statement=statement,
        uri=values["uri"],
        version=values["version"],
        chain_id=int(values["chain_id"]),
        nonce=values["nonce"],
        issued_at=values["issued_at"],
        expiration_time=values.get("expiration_time"),
        not_before=values.get("not_before"),
        request_id=values.get("request_id"),
        resources=tuple(resources),
    )


def check(message: SiweMessage, *, domain: str, chain_id: int, now: int) -> None:
    """Everything but the nonce's single use (the caller's database decides that)."""
    if message.domain != domain:
        raise SiweError(f"domain: message is for {message.domain!r}, this server is {domain!r}")
    if message.chain_id != chain_id:
        raise SiweError(f"Chain ID: message is for {message.chain_id}, this network is {chain_id}")
    if timestamp(message.issued_at, "Issued At") > now + MAX_SKEW:
        raise SiweError("Issued At: in the future")
    if (
        message.expiration_time is not None
        and timestamp(message.expiration_time, "Expiration Time") <= now
    ):
        raise SiweError("Expiration Time: the message has expired")
    if message.not_before is not None and timestamp(message.not_before, "Not Before") > now:
        raise SiweError("Not Before: the message is not valid yet")


def signer(text: str, signature: str) -> str:
    """The address whose EIP-191 personal_sign over `text` is `signature`."""
    try:
        raw = bytes.fromhex(signature.removeprefix("0x"))
    except ValueError:
        raise SiweError("signature: not hex") from None
    if len(raw) != 65:
        raise SiweError("signature: expected 65 bytes (r, s, v)")
    try:
        return str(Account.recover_message(encode_defunct(text=text), signature=raw))
    except Exception:
        raise SiweError("signature: does not recover an address") from None
