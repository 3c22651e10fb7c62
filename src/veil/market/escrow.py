"""The market's escrow as customers, control planes, providers and keepers use it.

One client for every side, so that each sends the same calls the same way: a customer
deposits with an EIP-2612 permit (one transaction, no approval), opens or signs a lease
request and tops up; a control plane submits signed requests; a provider collects from
many leases at once; anyone settles. Reads combine one `lease(id)` call with
`veil.market.runway` so billing figures cost no extra round trips, and statements are
rebuilt from the chain's events (`veil.market.usage`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from veil.chain.client import Chain, event_args
from veil.errors import InputError
from veil.market import runway, usage
from veil.market.typed_data import (
    OpenLease,
    UsageVoucher,
    deployment_key,
    domain_from_eip5267,
    instance_type_key,
    sign_open_lease,
    sign_permit,
)

if TYPE_CHECKING:
    from eth_account.signers.local import LocalAccount
    from web3.contract import Contract
    from web3.types import TxReceipt

#: The market's events, in the order `usage.ledger` understands them.
EVENT_NAMES = (
    "Deposited",
    "Withdrawn",
    "LeaseOpened",
    "ToppedUp",
    "Settled",
    "BillingStopped",
    "LeaseClosed",
    "UsageCharged",
)
#: How long a signed permit or lease request stays valid unless told otherwise.
DEFAULT_SIGNATURE_TTL = 3_600
#: The market's bound on every rate (wei per second, and wei per token for a meter's cap).
MAX_RATE = 10**27


@dataclass(frozen=True)
class Meter:
    """A lease's meter as the market holds it (`meterOf`): who may sign usage vouchers,
    the most a voucher may add per token it adds, the last voucher accepted (cumulative
    tokens and wei since `setMeter`), and the wei charged of it (less than its amount
    while the lease could not pay it all)."""

    meter: str | None  # None: metering is off
    max_token_rate: int
    tokens: int
    amount: int
    charged: int


@dataclass(frozen=True)
class UsageCharged:
    """What one `chargeUsage` took (its `UsageCharged` event; zeros when it took nothing):
    tokens and wei newly charged, and the treasury's fee out of that wei."""

    tokens: int
    amount: int
    fee: int


def _bytes32(value: bytes | str) -> bytes:
    """An instance type or deployment given as bytes, a 0x-hex id, or a name."""
    if isinstance(value, bytes):
        if len(value) != 32:
            raise InputError(f"expected 32 bytes, got {len(value)}")
        return value
    return instance_type_key(value) if not value.startswith("0x") else bytes.fromhex(value[2:])


class Escrow:
    """The deployed `Market` and its token, seen through one chain connection."""

    def __init__(
        self, chain: Chain, market: Contract | None = None, token: Contract | None = None
    ) -> None:
        self.chain = chain
        self.market = market if market is not None else chain.contract("Market")
        self.token = token if token is not None else chain.contract("PHA")
        self._timestamps: dict[int, int] = {}
        #: Where event scans start: the market's deployment block when the record has it
        #: (nothing before it can be the market's), else genesis.
        self.first_block = 0
        record = chain.deployment.contracts.get("Market") if chain.deployment else None
        if record is not None and record.address.lower() == self.market.address.lower():
            self.first_block = int(record.block)

    # --- customer ------------------------------------------------------------------

    def deposit(
        self, signer: LocalAccount, amount: int, *, permit: bool = True, deadline: int | None = None
    ) -> TxReceipt:
        """Move `amount` wei of the signer's PHA into its free balance: with a permit
        signed here (one transaction), or through an allowance it already gave."""
        _positive(amount, "deposit")
        fn = self.market.functions
        if not permit:
            return self.chain.send(signer, fn.deposit(amount), "Market.deposit")
        deadline = self.now() + DEFAULT_SIGNATURE_TTL if deadline is None else deadline
        token_domain = domain_from_eip5267(self.token.functions.eip712Domain().call())
        nonce = self.token.functions.nonces(signer.address).call()
        v, r, s = sign_permit(
            signer.key, token_domain, self.market.address, amount, nonce, deadline
        )
        call = fn.depositWithPermit(amount, deadline, v, r, s)
        return self.chain.send(signer, call, "Market.depositWithPermit")

    def withdraw(self, signer: LocalAccount, amount: int) -> TxReceipt:
        """Take `amount` of the free balance back to the signer's wallet."""
        _positive(amount, "withdraw")
        return self.chain.send(signer, self.market.functions.withdraw(amount), "Market.withdraw")

    def top_up(self, signer: LocalAccount, lease_id: int, amount: int) -> TxReceipt:
        """Add `amount` from the free balance to the signer's lease (resumes a paused one)."""
        _positive(amount, "top-up")
        call = self.market.functions.topUp(lease_id, amount)
        return self.chain.send(signer, call, "Market.topUp")

    def set_auto_top_up(
        self, signer: LocalAccount, threshold: int, amount: int, cap: int
    ) -> TxReceipt:
        """Let keepers top up the signer's leases below `threshold` seconds of runway."""
        call = self.market.functions.setAutoTopUp(threshold, amount, cap)
        return self.chain.send(signer, call, "Market.setAutoTopUp")

    def auto_top_up(self, signer: LocalAccount, lease_id: int) -> int:
        """As a keeper: top up a lease below its customer's threshold from the customer's
        wallet (within the cap); returns the amount moved."""
        receipt = self.chain.send(signer, self.market.functions.autoTopUp(lease_id), "autoTopUp")
        return int(event_args(self.market, receipt, "ToppedUp")["amount"])

    def open_lease(
        self,
        signer: LocalAccount,
        provider: str,
        deployment: bytes | str,
        instance_type: bytes | str,
        amount: int,
        max_rate: int | None = None,
    ) -> int:
        """Open the signer's lease by its own transaction; returns the lease id. Without
        `max_rate`, the current price is the most the signer accepts."""
        kind = _bytes32(instance_type)
        rate = self.price(kind) if max_rate is None else max_rate
        dep = _bytes32_deployment(deployment)
        call = self.market.functions.openLease(provider, dep, kind, amount, rate)
        receipt = self.chain.send(signer, call, "Market.openLease")
        return int(event_args(self.market, receipt, "LeaseOpened")["lease"])

    def open_request(
        self,
        customer: str,
        provider: str,
        deployment: bytes | str,
        instance_type: bytes | str,
        amount: int,
        max_rate: int | None = None,
        deadline: int | None = None,
    ) -> OpenLease:
        """A lease request for the customer to sign (the control plane prepares it)."""
        kind = _bytes32(instance_type)
        return OpenLease(
            customer=customer,
            provider=provider,
            deployment=_bytes32_deployment(deployment),
            instance_type=kind,
            amount=amount,
            max_rate=self.price(kind) if max_rate is None else max_rate,
            deadline=self.now() + DEFAULT_SIGNATURE_TTL if deadline is None else deadline,
        )

    def sign_open(self, key: bytes | str, request: OpenLease) -> bytes:
        """The customer's signature over `request` under this market's domain."""
        return sign_open_lease(key, self.domain(), request)

    def open_lease_for(self, sender: LocalAccount, request: OpenLease, signature: bytes) -> int:
        """Submit a customer's signed request (any sender pays the gas); the lease id."""
        call = self.market.functions.openLeaseFor(*request.args(), signature)
        receipt = self.chain.send(sender, call, "Market.openLeaseFor")
        return int(event_args(self.market, receipt, "LeaseOpened")["lease"])

    def close(self, signer: LocalAccount, lease_id: int) -> int:
        """Close a lease; returns the refund paid to its customer."""
        receipt = self.chain.send(signer, self.market.functions.closeLease(lease_id), "close")
        return int(event_args(self.market, receipt, "LeaseClosed")["refund"])

    # --- per-token usage -----------------------------------------------------------

    def set_meter(
        self, signer: LocalAccount, lease_id: int, meter: str | None, max_token_rate: int
    ) -> TxReceipt:
        """As the lease's customer, authorise `meter` (the AI gateway's signing address,
        after verifying its attestation) to sign usage vouchers at most `max_token_rate`
        wei per token; None turns metering off. A new meter counts from zero."""
        from eth_utils import is_address, to_checksum_address

        if meter is None:
            meter = "0x" + "00" * 20
        elif not is_address(meter):
            raise InputError(f"meter {meter!r}: not an address")
        if not 0 <= max_token_rate <= MAX_RATE:
            raise InputError(f"max token rate {max_token_rate}: must be 0..{MAX_RATE} wei")
        call = self.market.functions.setMeter(lease_id, to_checksum_address(meter), max_token_rate)
        return self.chain.send(signer, call, "Market.setMeter")

    def charge_usage(
        self,
        signer: LocalAccount,
        lease_id: int,
        tokens: int,
        amount: int,
        signature: bytes | str,
    ) -> UsageCharged:
        """Submit a meter's cumulative voucher (any sender; normally the provider);
        returns what it charged now: nothing when the voucher was charged already or the
        lease has nothing left above its shutdown window (submit it again after a top-up)."""
        raw = signature if isinstance(signature, bytes) else _hex_bytes(signature, "signature")
        if len(raw) != 65:
            raise InputError(f"usage signature: expected 65 bytes, got {len(raw)}")
        for name, value in (("tokens", tokens), ("amount", amount)):
            if not 0 <= value < 2**256:
                raise InputError(f"usage voucher: {name} {value} is outside uint256")
        call = self.market.functions.chargeUsage(lease_id, tokens, amount, raw)
        receipt = self.chain.send(signer, call, "Market.chargeUsage")
        from web3.logs import DISCARD

        found = self.market.events.UsageCharged().process_receipt(receipt, errors=DISCARD)
        if not found:
            return UsageCharged(0, 0, 0)
        charged = found[0]["args"]
        return UsageCharged(int(charged["tokens"]), int(charged["amount"]), int(charged["fee"]))

    def charge_voucher(self, signer: LocalAccount, voucher: UsageVoucher) -> UsageCharged:
        """Submit a gateway's voucher after checking, before any gas is spent, that it
        was signed by the lease's current meter for this market."""
        current = self.meter_of(voucher.lease_id)
        if current.meter is None:
            raise InputError(f"lease {voucher.lease_id:#x}: no meter is set")
        if current.meter.lower() != voucher.meter.lower():
            raise InputError(
                f"usage voucher: meter {voucher.meter} is not lease {voucher.lease_id:#x}'s "
                f"meter {current.meter}"
            )
        signer_of = voucher.signer(int(self.chain.w3.eth.chain_id), self.market.address)
        if signer_of.lower() != voucher.meter.lower():
            raise InputError(
                f"usage voucher: signed by {signer_of}, not by the meter {voucher.meter} "
                "(another market or chain, or altered figures)"
            )
        return self.charge_usage(
            signer, voucher.lease_id, voucher.tokens, voucher.amount, voucher.signature
        )

    def meter_of(self, lease_id: int) -> Meter:
        meter, rate, tokens, amount, charged = self.market.functions.meterOf(lease_id).call()
        return Meter(
            None if int(meter, 16) == 0 else str(meter),
            int(rate),
            int(tokens),
            int(amount),
            int(charged),
        )

    def usage_digest(self, lease_id: int, meter: str, tokens: int, amount: int) -> bytes:
        """The digest the contract verifies, for checking a gateway's typed data."""
        return bytes(self.market.functions.usageDigest(lease_id, meter, tokens, amount).call())

    # --- anyone / provider ---------------------------------------------------------

    def settle(self, signer: LocalAccount, lease_id: int) -> TxReceipt:
        return self.chain.send(signer, self.market.functions.settle(lease_id), "Market.settle")

    def withdraw_earnings(self, signer: LocalAccount, lease_ids: Sequence[int]) -> int:
        """Settle the signer's `lease_ids` (up to 256) and collect everything it earned;
        returns the PHA paid."""
        if len(lease_ids) > 256:
            raise InputError(f"{len(lease_ids)} leases: at most 256 per withdrawal")
        call = self.market.functions.withdrawEarnings(list(lease_ids))
        receipt = self.chain.send(signer, call, "Market.withdrawEarnings")
        return int(event_args(self.market, receipt, "EarningsWithdrawn")["amount"])

    def leases_of_provider(self, provider: str, from_block: int | None = None) -> list[int]:
        """The provider's leases not closed, from the chain's events."""
        events = self.events(from_block)
        book = usage.ledger(events)
        closed = {int(e.args["lease"]) for e in events if e.name == "LeaseClosed"}
        return sorted(
            i
            for i, info in book.leases.items()
            if info.provider.lower() == provider.lower() and i not in closed
        )

    # --- views ---------------------------------------------------------------------

    def domain(self) -> dict[str, Any]:
        return domain_from_eip5267(self.market.functions.eip712Domain().call())

    def now(self) -> int:
        """The chain's clock (latest block), which is what the contract bills by."""
        return int(self.chain.w3.eth.get_block("latest")["timestamp"])

    def price(self, instance_type: bytes | str) -> int:
        rate = int(self.market.functions.priceOf(_bytes32(instance_type)).call())
        if rate == 0:
            raise InputError(f"instance type {instance_type!r} is not offered by the market")
        return rate

    def lease_id(self, customer: str, deployment: bytes | str) -> int:
        dep = _bytes32_deployment(deployment)
        return int(self.market.functions.leaseId(customer, dep).call())

    def lease(self, lease_id: int) -> runway.Lease:
        lease = runway.Lease.from_chain(self.market.functions.lease(lease_id).call())
        if lease.status == runway.STATUS_NONE:
            raise InputError(f"lease {lease_id:#x}: no such lease")
        return lease

    def free_balance(self, customer: str) -> int:
        return int(self.market.functions.freeBalance(customer).call())

    def earnings(self, provider: str) -> tuple[int, int]:
        net, fee = self.market.functions.earningsOf(provider).call()
        return int(net), int(fee)

    def state(self, lease_id: int) -> int:
        return int(self.market.functions.state(lease_id).call())

    def billing(self, lease_id: int) -> runway.Billing:
        """Rate, cost so far, balance and runway of one lease, at the chain's clock."""
        lease = self.lease(lease_id)
        funded = refunded = 0
        for event in self._lease_events(lease_id):
            if event.name in ("LeaseOpened", "ToppedUp"):
                funded += int(event.args["amount"])
            elif event.name == "LeaseClosed":
                refunded += int(event.args["refund"])
        grace = int(self.market.functions.gracePeriod().call())
        return runway.billing(lease, self.now(), funded, grace, refunded)

    def events(
        self, from_block: int | None = None, to_block: int | str = "latest"
    ) -> list[usage.MarketEvent]:
        """Every market event in the range, in chain order, with block timestamps."""
        found: list[usage.MarketEvent] = []
        for name in EVENT_NAMES:
            logs = getattr(self.market.events, name)().get_logs(
                from_block=self.first_block if from_block is None else from_block,
                to_block=to_block,
            )
            found.extend(self._decoded(name, logs))
        found.sort(key=lambda e: (e.block, e.log_index))
        return found

    def statement(self, customer: str, month: str, from_block: int | None = None) -> dict[str, Any]:
        """The customer's monthly statement, unsettled seconds up to now included."""
        book = usage.ledger(self.events(from_block))
        current = {
            i: self.lease(i)
            for i, info in book.leases.items()
            if info.customer.lower() == customer.lower()
        }
        return usage.statement(
            book,
            customer,
            month,
            chain_id=int(self.chain.w3.eth.chain_id),
            market=self.market.address,
            current=current,
            now=self.now(),
        )

    def write_statement(self, customer: str, month: str, path: Path) -> Path:
        return usage.write_statement(self.statement(customer, month), path)

    # --- internals -----------------------------------------------------------------

    def _lease_events(self, lease_id: int) -> list[usage.MarketEvent]:
        found: list[usage.MarketEvent] = []
        for name in ("LeaseOpened", "ToppedUp", "LeaseClosed"):
            logs = getattr(self.market.events, name)().get_logs(
                from_block=self.first_block, argument_filters={"lease": lease_id}
            )
            found.extend(self._decoded(name, logs))
        return found

    def _decoded(self, name: str, logs: Iterable[Any]) -> list[usage.MarketEvent]:
        out = []
        for log in logs:
            block = int(log["blockNumber"])
            out.append(
                usage.MarketEvent(
                    name=name,
                    block=block,
                    log_index=int(log["logIndex"]),
                    timestamp=self._timestamp(block),
                    args=dict(log["args"]),
                )
            )
        return out

    def _timestamp(self, block: int) -> int:
        if block not in self._timestamps:
            self._timestamps[block] = int(self.chain.w3.eth.get_block(block)["timestamp"])
        return self._timestamps[block]


def _bytes32_deployment(deployment: bytes | str) -> bytes:
    if isinstance(deployment, bytes):
        if len(deployment) != 32:
            raise InputError(f"deployment id: expected 32 bytes, got {len(deployment)}")
        return deployment
    return deployment_key(deployment)


def _hex_bytes(text: str, what: str) -> bytes:
    try:
        return bytes.fromhex(text.removeprefix("0x"))
    except ValueError:
        raise InputError(f"{what}: {text[:20]!r}... is not hex") from None


def _positive(amount: int, what: str) -> None:
    if amount <= 0:
        raise InputError(f"{what}: the amount must be positive, got {amount}")
