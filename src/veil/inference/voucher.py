"""Usage vouchers: how the AI gateway's metered tokens become a per-token charge in the escrow.

The gateway's ECDSA key is made inside the CVM and bound to its attestation (report data =
signing address ‖ nonce). A customer who verified that attestation, with the price table in
the attested compose, names the key's address as its lease's *meter* (`Market.setMeter`),
with a cap in wei per token. The gateway then signs cumulative vouchers, EIP-712
`Usage(uint256 leaseId,address meter,uint256 tokens,uint256 amount)` under the Market's own
domain: every token and every wei it metered under that key. Anyone (normally the provider)
submits the latest voucher; the Market charges what is new since the last charge. The
provider cannot forge a voucher (it never holds the key), the customer cannot deny a
charged voucher, and a mispriced CVM is bounded by the cap. What the provider risks is the
usage signed since its last charge: the customer can still close the lease, name another
meter or lower the cap before the next one (`veil.inference.keeper` charges every few
minutes from the worker to keep that small).

This module holds both sides so they cannot drift: the gateway builds and signs a voucher
here, the customer's authorisation and the provider's charge read and check it here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import httpx
from eth_utils import to_checksum_address

from veil.errors import InputError, VeilError
from veil.inference.verify import AttestedGateway, VerificationRefused
from veil.market.typed_data import UsageVoucher, usage_digest, usage_typed_data

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


def voucher_json(
    keys: SigningKeys, chain_id: int, market: str, lease_id: int, tokens: int, amount: int
) -> dict[str, Any]:
    """The gateway's `GET /v1/usage/voucher` answer: the cumulative counts signed with the
    attested ECDSA key, and the EIP-712 document signed, so anyone can check it with any
    EIP-712 tool (amount as a decimal string, since JSON readers outside Python lose
    integers above 2**53)."""
    market = to_checksum_address(market)
    meter = keys.ecdsa_address
    signature = keys.sign_digest(usage_digest(chain_id, market, lease_id, meter, tokens, amount))
    return {
        "lease_id": f"{lease_id:#066x}",
        "meter": meter,
        "tokens": tokens,
        "amount": str(amount),
        "signature": signature,
        "typed_data": _jsonable(
            usage_typed_data(chain_id, market, lease_id, meter, tokens, amount)
        ),
    }


def read_voucher(doc: Any, chain_id: int, market: str, meter: str | None = None) -> UsageVoucher:
    """A gateway's voucher, checked for this chain and market: signed by its own meter
    (and, when given, that meter is `meter`, the attested key). VerificationRefused names
    what is wrong; a malformed field is an InputError naming it."""
    voucher = UsageVoucher.from_json(doc)
    domain = doc.get("typed_data", {}).get("domain", {}) if isinstance(doc, dict) else {}
    served = (domain.get("chainId"), str(domain.get("verifyingContract", "")).lower())
    if served != (chain_id, market.lower()):
        raise VerificationRefused(
            "wrong_market",
            f"the gateway meters for market {domain.get('verifyingContract')} on chain "
            f"{domain.get('chainId')}, not {market} on chain {chain_id}",
        )
    try:
        signer = voucher.signer(chain_id, market)
    except Exception:  # eth-keys raises several types for a malformed signature
        raise VerificationRefused("bad_signature", "the voucher's signature is malformed") from None
    if signer.lower() != voucher.meter.lower():
        raise VerificationRefused(
            "bad_signature", f"the voucher is signed by {signer}, not its meter {voucher.meter}"
        )
    if meter is not None and meter.lower() != voucher.meter.lower():
        raise VerificationRefused(
            "wrong_meter", f"the voucher's meter is {voucher.meter}, not the attested {meter}"
        )
    return voucher


def fetch_voucher(
    url: str, chain_id: int, market: str, meter: str | None = None, *, timeout: float = 30.0
) -> UsageVoucher:
    """The gateway's latest voucher, checked by `read_voucher`."""
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
    return read_voucher(doc, chain_id, market, meter)


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
    chain_id = int(escrow.chain.w3.eth.chain_id)
    voucher = fetch_voucher(url, chain_id, escrow.market.address, gateway.ecdsa_address)
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
    receipt = escrow.set_meter(signer, voucher.lease_id, gateway.ecdsa_address, max_token_rate)
    return MeterAuthorisation(
        voucher.lease_id,
        gateway.ecdsa_address,
        max_token_rate,
        gateway,
        "0x" + bytes(receipt["transactionHash"]).hex(),
    )


@dataclass(frozen=True)
class UsageCharge:
    """One `chargeUsage` as the chain recorded it; `amount` includes `fee`, `tokens` are
    those the voucher added. `due` is what was left to charge: what the voucher added plus
    any rest of the one before, more than `amount` when the lease's balance (less its
    prepaid shutdown window) could not pay it all; the same voucher, or a later one,
    charges the rest after a top-up."""

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


def charge_voucher(
    escrow: Escrow, signer: LocalAccount, url: str, lease_id: int | None = None
) -> UsageCharge:
    """The provider's side: fetch the gateway's latest voucher, check it against the lease's
    meter on chain, and submit it. A voucher from a meter the customer has not set, one for
    another lease than `lease_id` (when given), or one that adds nothing, is refused here
    in one line rather than as a reverted transaction."""
    voucher = fetch_voucher(url, int(escrow.chain.w3.eth.chain_id), escrow.market.address)
    if lease_id is not None and voucher.lease_id != lease_id:
        raise VerificationRefused(
            "wrong_lease",
            f"{url} meters lease {voucher.lease_id:#x}, not lease {lease_id:#x}",
        )
    current = escrow.meter_of(voucher.lease_id)
    if current.meter is None or current.meter.lower() != voucher.meter.lower():
        raise VerificationRefused(
            "meter_not_set",
            f"lease {voucher.lease_id:#x} has meter {current.meter or 'none'}, but the gateway "
            f"signs as {voucher.meter}: the customer must authorise it first (veil ai meter)",
        )
    if (voucher.tokens, voucher.amount) == (current.tokens, current.charged):
        raise NothingToCharge(
            f"lease {voucher.lease_id:#x}: nothing new to charge "
            f"({voucher.tokens} tokens, {voucher.amount} wei already charged)"
        )
    charged = escrow.charge_usage(
        signer, voucher.lease_id, voucher.tokens, voucher.amount, voucher.signature
    )
    return UsageCharge(
        voucher.lease_id,
        charged.tokens,
        charged.amount,
        charged.fee,
        escrow.lease(voucher.lease_id).balance,
        voucher.amount - current.charged,
        voucher,
    )
