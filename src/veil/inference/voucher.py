"""Usage vouchers: how the AI gateway's metered tokens become a per-token charge in the escrow.

The gateway's ECDSA key is made inside the CVM and bound to its attestation (report data =
signing address ‖ nonce). A customer who verified that attestation, with the price table in
the attested compose, names the key's address as its lease's *meter* (`Market.setMeter`),
with a cap in wei per token. The gateway then signs cumulative vouchers, EIP-712
`Usage(uint256 leaseId,address meter,uint256 tokens,uint256 amount)` under the Market's own
domain: every token and every wei it metered under that key. Anyone (normally the provider)
submits the latest voucher; the Market charges what is new since the last charge. The
provider cannot forge a voucher (it never holds the key), the customer cannot deny usage
it authorised, and a mispriced CVM is bounded by the cap.

This module holds both sides so they cannot drift: the gateway builds and signs a voucher
here, the customer's authorisation and the provider's charge read and check it here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import httpx
from eth_account import Account
from eth_utils import to_checksum_address
from web3.logs import DISCARD

from veil.errors import InputError, VeilError
from veil.inference.verify import AttestedGateway, VerificationRefused
from veil.market.typed_data import usage_digest, usage_typed_data

if TYPE_CHECKING:
    from eth_account.signers.local import LocalAccount

    from veil.inference.receipt import SigningKeys
    from veil.market.escrow import Escrow
    from veil.tee.collateral import Collateral, CollateralCache
    from veil.tee.policy import Policy

VOUCHER_PATH = "/v1/usage/voucher"


def _jsonable(value: Any) -> Any:
    """EIP-712 values as JSON: bytes as 0x-hex; integers stay integers (exact in Python)."""
    if isinstance(value, bytes):
        return "0x" + value.hex()
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value


@dataclass(frozen=True)
class UsageVoucher:
    """One signed statement of everything a meter counted for a lease since `setMeter`."""

    chain_id: int
    market: str
    lease_id: int
    meter: str
    tokens: int
    amount: int
    signature: str

    def typed_data(self) -> dict[str, Any]:
        return _jsonable(usage_typed_data(*self._fields()))

    def digest(self) -> bytes:
        """What the meter signs and `Market.chargeUsage` recovers from."""
        return usage_digest(*self._fields())

    def _fields(self) -> tuple[int, str, int, str, int, int]:
        return (self.chain_id, self.market, self.lease_id, self.meter, self.tokens, self.amount)

    def to_json(self) -> dict[str, Any]:
        """The gateway's `GET /v1/usage/voucher` answer (amount as a decimal string, since
        JSON readers outside Python lose integers above 2**53)."""
        return {
            "lease_id": f"{self.lease_id:#066x}",
            "meter": self.meter,
            "tokens": self.tokens,
            "amount": str(self.amount),
            "signature": self.signature,
            "typed_data": self.typed_data(),
        }

    @classmethod
    def from_json(cls, doc: Any) -> UsageVoucher:
        """Read a voucher answer; the domain (chain id, market) comes from its typed data and
        is checked against the caller's network by `check`."""
        try:
            domain = doc["typed_data"]["domain"]
            voucher = cls(
                chain_id=int(domain["chainId"]),
                market=to_checksum_address(domain["verifyingContract"]),
                lease_id=int(str(doc["lease_id"]), 16),
                meter=to_checksum_address(doc["meter"]),
                tokens=_natural(doc["tokens"], "tokens"),
                amount=_natural(doc["amount"], "amount"),
                signature=str(doc["signature"]),
            )
            served = voucher.typed_data()
        except (KeyError, TypeError, ValueError) as error:
            raise VerificationRefused("bad_voucher", f"malformed voucher ({error})") from None
        if served != _jsonable(doc["typed_data"]):
            raise VerificationRefused(
                "bad_voucher", "the voucher's typed data does not match its own fields"
            )
        return voucher

    def check(self, chain_id: int, market: str, meter: str | None = None) -> None:
        """Raise VerificationRefused unless the voucher is for this chain and market and is
        signed by its meter (and, when given, that meter is `meter`)."""
        if self.chain_id != chain_id or self.market.lower() != market.lower():
            raise VerificationRefused(
                "wrong_market",
                f"the voucher is for market {self.market} on chain {self.chain_id}, "
                f"not {market} on chain {chain_id}",
            )
        try:
            signer = Account._recover_hash(
                self.digest(), signature=bytes.fromhex(self.signature.removeprefix("0x"))
            )
        except Exception:  # eth-keys raises several types for a malformed signature
            problem = "the voucher's signature is malformed"
            raise VerificationRefused("bad_signature", problem) from None
        if signer.lower() != self.meter.lower():
            raise VerificationRefused(
                "bad_signature", f"the voucher is signed by {signer}, not its meter {self.meter}"
            )
        if meter is not None and meter.lower() != self.meter.lower():
            raise VerificationRefused(
                "wrong_meter", f"the voucher's meter is {self.meter}, expected {meter}"
            )


def _natural(value: Any, what: str) -> int:
    number = int(value) if isinstance(value, int) else int(str(value), 10)
    if number < 0:
        raise ValueError(f"{what} is negative")
    return number


def sign_voucher(
    keys: SigningKeys, chain_id: int, market: str, lease_id: int, tokens: int, amount: int
) -> UsageVoucher:
    """The gateway's side: sign the cumulative counts with the attested ECDSA key."""
    unsigned = UsageVoucher(
        chain_id, to_checksum_address(market), lease_id, keys.ecdsa_address, tokens, amount, ""
    )
    signature = keys.sign_digest(unsigned.digest())
    return UsageVoucher(**{**unsigned.__dict__, "signature": signature})


def fetch_voucher(url: str, *, timeout: float = 30.0) -> UsageVoucher:
    """The gateway's latest voucher (signature not yet checked: see `UsageVoucher.check`)."""
    try:
        answer = httpx.get(url.rstrip("/") + VOUCHER_PATH, timeout=timeout)
    except httpx.HTTPError as error:
        raise InputError(f"{url}: cannot reach the gateway ({type(error).__name__})") from None
    if answer.status_code != 200:
        try:
            detail = answer.json().get("message") or answer.text[:200]
        except ValueError:
            detail = answer.text[:200]
        raise VerificationRefused(
            "no_voucher", f"{url}{VOUCHER_PATH}: HTTP {answer.status_code}: {detail}"
        )
    try:
        doc = answer.json()
    except ValueError:
        raise VerificationRefused("bad_voucher", "the voucher answer is not JSON") from None
    return UsageVoucher.from_json(doc)


@dataclass(frozen=True)
class MeterAuthorisation:
    """What `authorise_meter` verified and set."""

    lease_id: int
    meter: str
    max_token_rate: int
    gateway: AttestedGateway
    transaction: str


def authorise_meter(
    escrow: Escrow,
    signer: LocalAccount,
    url: str,
    policy: Policy,
    max_token_rate: int,
    *,
    lease_id: int | None = None,
    collateral: Collateral | CollateralCache | None = None,
) -> MeterAuthorisation:
    """The customer's side: verify the gateway under `policy`, then make its attested key
    the lease's meter. Nothing is sent to the chain unless every check passed.

    Checks, in order: the attestation (fresh nonce, quote, policy: the compose hash pins
    the price table); the gateway's voucher is signed by that attested key, for this
    market and chain, and for the lease given (or, without one, the lease it names); the
    signer is the lease's customer.
    """
    from veil.inference.transport import VerifyingTransport

    if max_token_rate <= 0:
        raise InputError(f"--max-token-rate: must be positive wei per token, got {max_token_rate}")
    transport = VerifyingTransport(url, policy, collateral=collateral)
    try:
        gateway = transport.attest()
    except httpx.HTTPError as error:
        raise InputError(f"{url}: cannot reach the gateway ({type(error).__name__})") from None
    finally:
        transport.close()
    voucher = fetch_voucher(url)
    chain_id = int(escrow.chain.w3.eth.chain_id)
    voucher.check(chain_id, escrow.market.address, meter=gateway.ecdsa_address)
    if lease_id is not None and lease_id != voucher.lease_id:
        raise VerificationRefused(
            "wrong_lease",
            f"the gateway meters lease {voucher.lease_id:#x}, not {lease_id:#x}",
        )
    lease = escrow.lease(voucher.lease_id)
    if lease.customer.lower() != signer.address.lower():
        raise InputError(
            f"lease {voucher.lease_id:#x} belongs to {lease.customer}, not {signer.address}"
        )
    call = escrow.market.functions.setMeter(voucher.lease_id, gateway.ecdsa_address, max_token_rate)
    receipt = escrow.chain.send(signer, call, "Market.setMeter")
    return MeterAuthorisation(
        voucher.lease_id,
        gateway.ecdsa_address,
        max_token_rate,
        gateway,
        "0x" + bytes(receipt["transactionHash"]).hex(),
    )


@dataclass(frozen=True)
class UsageCharge:
    """One `chargeUsage` as the chain recorded it; `amount` includes `fee`. `due` is what
    the voucher added: more than `amount` when the lease's balance (less its prepaid
    shutdown window) could not pay it all; the same voucher charges the rest after a
    top-up."""

    lease_id: int
    tokens: int
    amount: int
    fee: int
    balance: int
    due: int
    voucher: UsageVoucher

    @property
    def partial(self) -> bool:
        return self.amount < self.due


class NothingToCharge(VeilError):
    """The latest voucher adds nothing to what the lease was already charged."""


def charge_voucher(escrow: Escrow, signer: LocalAccount, url: str) -> UsageCharge:
    """The provider's side: fetch the gateway's latest voucher, check it against the lease's
    meter on chain, and submit it. A voucher from a meter the customer has not set, or one
    that adds nothing, is refused here in one line rather than as a reverted transaction."""
    voucher = fetch_voucher(url)
    chain_id = int(escrow.chain.w3.eth.chain_id)
    voucher.check(chain_id, escrow.market.address)
    meter, _cap, charged_tokens, charged_amount = escrow.market.functions.meterOf(
        voucher.lease_id
    ).call()
    if meter.lower() != voucher.meter.lower():
        raise VerificationRefused(
            "meter_not_set",
            f"lease {voucher.lease_id:#x} has meter {meter}, but the gateway signs as "
            f"{voucher.meter}: the customer must authorise it first (veil ai meter)",
        )
    if (voucher.tokens, voucher.amount) == (charged_tokens, charged_amount):
        raise NothingToCharge(
            f"lease {voucher.lease_id:#x}: nothing new to charge "
            f"({voucher.tokens} tokens, {voucher.amount} wei already charged)"
        )
    signature = bytes.fromhex(voucher.signature.removeprefix("0x"))
    call = escrow.market.functions.chargeUsage(
        voucher.lease_id, voucher.tokens, voucher.amount, signature
    )
    receipt = escrow.chain.send(signer, call, "Market.chargeUsage")
    found = escrow.market.events.UsageCharged().process_receipt(receipt, errors=DISCARD)
    charged = found[0]["args"] if found else {"tokens": 0, "amount": 0, "fee": 0}
    return UsageCharge(
        voucher.lease_id,
        int(charged["tokens"]),
        int(charged["amount"]),
        int(charged["fee"]),
        escrow.lease(voucher.lease_id).balance,
        voucher.amount - charged_amount,
        voucher,
    )
