"""What is signed for the market, in one place: the EIP-712 `OpenLease` request a control
plane submits for a customer, the EIP-2612 `Permit` that funds a deposit without a separate
approval, and the `Usage` voucher a lease's meter (the AI gateway's attested key) signs for
per-token charges. The contract, its tests, the bench, the gateway and the clients must
agree on these type lists byte for byte, or signatures fail with nothing but "signer is not
the customer" (or "... the meter").
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from eth_account import Account
from eth_account.messages import SignableMessage, encode_typed_data
from eth_utils import is_address, keccak, to_checksum_address

from veil.errors import InputError

#: The market's EIP-712 domain name and version (`Market.vy`'s constructor).
MARKET_DOMAIN_NAME = "veil Market"
MARKET_DOMAIN_VERSION = "1"

OPEN_LEASE_TYPES: dict[str, list[dict[str, str]]] = {
    "OpenLease": [
        {"name": "customer", "type": "address"},
        {"name": "provider", "type": "address"},
        {"name": "deployment", "type": "bytes32"},
        {"name": "instanceType", "type": "bytes32"},
        {"name": "amount", "type": "uint256"},
        {"name": "maxRate", "type": "uint256"},
        {"name": "deadline", "type": "uint256"},
    ]
}
PERMIT_TYPES: dict[str, list[dict[str, str]]] = {
    "Permit": [
        {"name": "owner", "type": "address"},
        {"name": "spender", "type": "address"},
        {"name": "value", "type": "uint256"},
        {"name": "nonce", "type": "uint256"},
        {"name": "deadline", "type": "uint256"},
    ]
}

USAGE_TYPES: dict[str, list[dict[str, str]]] = {
    "Usage": [
        {"name": "leaseId", "type": "uint256"},
        {"name": "meter", "type": "address"},
        {"name": "tokens", "type": "uint256"},
        {"name": "amount", "type": "uint256"},
    ]
}
_DOMAIN_TYPE = [
    {"name": "name", "type": "string"},
    {"name": "version", "type": "string"},
    {"name": "chainId", "type": "uint256"},
    {"name": "verifyingContract", "type": "address"},
]


def instance_type_key(name: str) -> bytes:
    """The price list's bytes32 key for an instance-type name (`keccak256(name)`), so the
    deploy, the control plane and the contract's `priceOf` agree without a registry."""
    return keccak(text=name)


def deployment_key(deployment_id: str) -> bytes:
    """A deployment's bytes32 id as the market stores it: the id itself when it is 32
    bytes of hex, else `keccak256` of the text (control planes use UUIDs)."""
    text = deployment_id.removeprefix("0x")
    if len(text) == 64:
        try:
            return bytes.fromhex(text)
        except ValueError:
            pass
    return keccak(text=deployment_id)


def domain_from_eip5267(answer: Any) -> dict[str, Any]:
    """The EIP-712 domain a wallet builds from a contract's `eip712Domain()` answer."""
    _fields, name, version, chain_id, verifying, _salt, _extensions = answer
    return {"name": name, "version": version, "chainId": chain_id, "verifyingContract": verifying}


@dataclass(frozen=True)
class OpenLease:
    """A customer's request to open a lease, as signed and as `openLeaseFor` takes it."""

    customer: str
    provider: str
    deployment: bytes
    instance_type: bytes
    amount: int
    max_rate: int
    deadline: int

    def message(self) -> dict[str, Any]:
        return {
            "customer": self.customer,
            "provider": self.provider,
            "deployment": self.deployment,
            "instanceType": self.instance_type,
            "amount": self.amount,
            "maxRate": self.max_rate,
            "deadline": self.deadline,
        }

    def args(self) -> tuple[Any, ...]:
        """`openLeaseFor`'s arguments before the signature."""
        return (
            self.customer,
            self.provider,
            self.deployment,
            self.instance_type,
            self.amount,
            self.max_rate,
            self.deadline,
        )


def sign_open_lease(key: bytes | str, domain: dict[str, Any], request: OpenLease) -> bytes:
    """The customer's 65-byte signature over `request` under the market's domain."""
    typed = encode_typed_data(
        domain_data=domain, message_types=OPEN_LEASE_TYPES, message_data=request.message()
    )
    return bytes(Account.sign_message(typed, key).signature)


def sign_permit(
    key: bytes | str,
    token_domain: dict[str, Any],
    spender: str,
    value: int,
    nonce: int,
    deadline: int,
) -> tuple[int, bytes, bytes]:
    """An EIP-2612 permit by `key`'s account for `spender`: (v, r, s)."""
    owner = Account.from_key(key).address
    message = {
        "owner": owner,
        "spender": spender,
        "value": value,
        "nonce": nonce,
        "deadline": deadline,
    }
    typed = encode_typed_data(
        domain_data=token_domain, message_types=PERMIT_TYPES, message_data=message
    )
    signed = Account.sign_message(typed, key)
    return signed.v, signed.r.to_bytes(32, "big"), signed.s.to_bytes(32, "big")


def market_domain(chain_id: int, market: str) -> dict[str, Any]:
    """The market's EIP-712 domain from what a gateway knows without a chain connection
    (the lease's chain and market address), equal to the contract's `eip712Domain()`."""
    return {
        "name": MARKET_DOMAIN_NAME,
        "version": MARKET_DOMAIN_VERSION,
        "chainId": int(chain_id),
        "verifyingContract": market,
    }


def usage_typed_data(
    chain_id: int, market: str, lease_id: int, meter: str, tokens: int, amount: int
) -> dict[str, Any]:
    """The full EIP-712 document of a `Usage` voucher (what `eth_signTypedData_v4` takes),
    so a gateway can publish exactly what it signed and anyone can check it: cumulative
    `tokens` and `amount` (wei) since the customer set `meter` for `lease_id`."""
    for name, value in (("lease id", lease_id), ("tokens", tokens), ("amount", amount)):
        if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value < 2**256:
            raise ValueError(f"usage voucher: {name} must be a uint256, got {value!r}")
    return {
        "types": {"EIP712Domain": _DOMAIN_TYPE, **USAGE_TYPES},
        "primaryType": "Usage",
        "domain": market_domain(chain_id, market),
        "message": {"leaseId": lease_id, "meter": meter, "tokens": tokens, "amount": amount},
    }


def _signable_usage(typed: dict[str, Any]) -> SignableMessage:
    return encode_typed_data(full_message=typed)


def usage_digest(
    chain_id: int, market: str, lease_id: int, meter: str, tokens: int, amount: int
) -> bytes:
    """The 32-byte digest the meter signs, equal to the contract's `usageDigest`."""
    signable = _signable_usage(usage_typed_data(chain_id, market, lease_id, meter, tokens, amount))
    return keccak(b"\x19" + signable.version + signable.header + signable.body)


def sign_usage(
    key: bytes | str, chain_id: int, market: str, lease_id: int, tokens: int, amount: int
) -> bytes:
    """The meter's 65-byte signature over its cumulative usage of `lease_id`; the meter
    is the key's own address (the contract recovers the signer and compares)."""
    meter = Account.from_key(key).address
    typed = usage_typed_data(chain_id, market, lease_id, meter, tokens, amount)
    return bytes(Account.sign_message(_signable_usage(typed), key).signature)


@dataclass(frozen=True)
class UsageVoucher:
    """A meter's signed cumulative usage of one lease, as `chargeUsage` takes it and as
    the AI gateway publishes it at `GET /v1/usage/voucher`."""

    lease_id: int
    meter: str
    tokens: int
    amount: int
    signature: bytes

    @classmethod
    def from_json(cls, doc: Any) -> UsageVoucher:
        """Read the gateway's JSON (`lease_id` as 0x-hex of 32 bytes, `amount` as a
        decimal string of wei, `signature` as 0x-hex of 65 bytes); any field that does not
        parse is named in one line."""
        if not isinstance(doc, dict):
            raise InputError("usage voucher: expected a JSON object")

        def field(name: str) -> Any:
            if name not in doc:
                raise InputError(f"usage voucher: missing field {name!r}")
            return doc[name]

        lease_text, meter = field("lease_id"), field("meter")
        try:
            lease_id = int(str(lease_text), 16) if str(lease_text).startswith("0x") else -1
        except ValueError:
            lease_id = -1
        if not 0 <= lease_id < 2**256:
            raise InputError(f"usage voucher: lease_id {lease_text!r} is not 0x-hex of a uint256")
        if not isinstance(meter, str) or not is_address(meter):
            raise InputError(f"usage voucher: meter {meter!r} is not an address")
        tokens = _uint(field("tokens"), "tokens")
        amount = _uint(field("amount"), "amount")
        signature = field("signature")
        try:
            raw = bytes.fromhex(str(signature).removeprefix("0x"))
        except ValueError:
            raw = b""
        if len(raw) != 65:
            raise InputError("usage voucher: signature must be 0x-hex of 65 bytes")
        return cls(lease_id, to_checksum_address(meter), tokens, amount, raw)

    def signer(self, chain_id: int, market: str) -> str:
        """Who signed this voucher under the given market's domain (the meter, if it is
        genuine and meant for that market)."""
        typed = usage_typed_data(
            chain_id, market, self.lease_id, self.meter, self.tokens, self.amount
        )
        return str(Account.recover_message(_signable_usage(typed), signature=self.signature))


def _uint(value: Any, name: str) -> int:
    """A uint256 given as an int or a decimal string (wei amounts travel as strings)."""
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise InputError(f"usage voucher: {name} {value!r} is not a whole number")
    try:
        number = int(value) if isinstance(value, int) else int(value.strip(), 10)
    except ValueError:
        raise InputError(f"usage voucher: {name} {value!r} is not a whole number") from None
    if not 0 <= number < 2**256:
        raise InputError(f"usage voucher: {name} {value} is outside uint256")
    return number
