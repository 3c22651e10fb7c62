"""Deployment, accounts and signing for the Market tests.

A uniquely named module (not `conftest`) so that `from market_kit import ...` cannot pick up
another directory's conftest when the whole suite runs. The market runs over the real PHA
token (18 decimals); in unit tests a plain account stands in for the timelock (the owner),
and test_market_governance.py drives the real Governor and Timelock.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import boa
from compiled import ZERO_ADDRESS, compiled
from eth_account import Account
from eth_account.messages import encode_typed_data
from eth_utils import keccak

from veil.chain.compile import CONTRACTS_DIR
from veil.market.typed_data import OPEN_LEASE_TYPES, PERMIT_TYPES, sign_usage

MARKET_SOURCE = CONTRACTS_DIR / "market" / "Market.vy"
PHA_SOURCE = CONTRACTS_DIR / "token" / "PHA.vy"

PHA = 10**18
HOUR = 3_600
DAY = 86_400
ZERO = "0x0000000000000000000000000000000000000000"

#: Price list used by the tests: odd wei-per-second rates (2 PHA/h and 0.1 PHA/h do not
#: divide evenly), so that any rounding slip shows.
H100 = keccak(text="h100")
CPU = keccak(text="cpu-small")
H100_RATE = 2 * PHA // HOUR  # 555,555,555,555,555 wei/s
CPU_RATE = PHA // 10 // HOUR  # 27,777,777,777,777 wei/s

DEFAULT_FEE_BPS = 250
DEFAULT_GRACE = 7 * DAY
DEFAULT_WINDOW = 300

# Status as stored (`lease().status`) and state as a worker reads it (`state()`).
STATUS_BILLING, STATUS_STOPPED, STATUS_CLOSED = 1, 2, 3
STATE_NONE, STATE_RUNNING, STATE_PAUSED, STATE_CLOSED = 0, 1, 2, 3

KEYS = [keccak(text=f"veil market test key {i}") for i in range(8)]
ACCOUNTS = [Account.from_key(k) for k in KEYS]
#: Gateway keys that customers authorise as their leases' meters.
METER_KEYS = [keccak(text=f"veil market meter key {i}") for i in range(4)]
METERS = [Account.from_key(k).address for k in METER_KEYS]

# The one definition of what customers sign lives in the library.
OPEN_TYPES = OPEN_LEASE_TYPES


def domain_of(contract: Any) -> dict[str, Any]:
    """The EIP-712 domain a wallet builds from the contract's ERC-5267 answer."""
    _fields, name, version, chain_id, verifying, _salt, _ext = contract.eip712Domain()
    return {"name": name, "version": version, "chainId": chain_id, "verifyingContract": verifying}


def sign_typed(key: bytes, domain: dict[str, Any], types: dict[str, Any], message: dict) -> Any:
    signable = encode_typed_data(domain_data=domain, message_types=types, message_data=message)
    return Account.sign_message(signable, key)


def deployment_id(name: str) -> bytes:
    return keccak(text=f"deployment {name}")


@dataclass
class Market:
    """The deployed market, its token and the accounts the tests act as."""

    pha: Any
    market: Any
    owner: str
    treasury: str
    customers: list[Any]  # eth_account accounts (they sign permits and open requests)
    providers: list[str]

    def now(self) -> int:
        return boa.env.evm.patch.timestamp

    def mint(self, who: str, amount: int) -> None:
        self.pha.mint(who, amount)

    def deposit(self, who: str, amount: int) -> None:
        """Mint `amount` to `who`, approve and deposit it."""
        self.pha.mint(who, amount)
        with boa.env.prank(who):
            self.pha.approve(self.market.address, amount)
            self.market.deposit(amount)

    def open(
        self,
        customer: str,
        provider: str,
        amount: int,
        name: str = "app",
        instance: bytes = H100,
        max_rate: int | None = None,
        fund: bool = True,
    ) -> int:
        """Open a lease by the customer's own transaction (depositing `amount` first)."""
        if fund:
            self.deposit(customer, amount)
        rate = self.market.priceOf(instance) if max_rate is None else max_rate
        with boa.env.prank(customer):
            return self.market.openLease(provider, deployment_id(name), instance, amount, rate)

    def sign_open(
        self,
        key: bytes,
        provider: str,
        name: str,
        amount: int,
        instance: bytes = H100,
        max_rate: int = H100_RATE,
        deadline: int | None = None,
        customer: str | None = None,
    ) -> tuple[tuple[Any, ...], bytes]:
        """An `OpenLease` request signed with `key`: (openLeaseFor args without the
        signature, signature)."""
        customer = customer or Account.from_key(key).address
        deadline = self.now() + HOUR if deadline is None else deadline
        message = {
            "customer": customer,
            "provider": provider,
            "deployment": deployment_id(name),
            "instanceType": instance,
            "amount": amount,
            "maxRate": max_rate,
            "deadline": deadline,
        }
        signed = sign_typed(key, domain_of(self.market), OPEN_TYPES, message)
        args = (customer, provider, deployment_id(name), instance, amount, max_rate, deadline)
        return args, signed.signature

    def sign_permit(self, key: bytes, value: int, deadline: int) -> tuple[int, bytes, bytes]:
        owner = Account.from_key(key).address
        message = {
            "owner": owner,
            "spender": self.market.address,
            "value": value,
            "nonce": self.pha.nonces(owner),
            "deadline": deadline,
        }
        signed = sign_typed(key, domain_of(self.pha), PERMIT_TYPES, message)
        return signed.v, signed.r.to_bytes(32, "big"), signed.s.to_bytes(32, "big")

    def set_meter(self, lease_id: int, meter: str, max_token_rate: int) -> None:
        """The lease's customer authorises `meter` at `max_token_rate` wei per token."""
        with boa.env.prank(self.market.lease(lease_id).customer):
            self.market.setMeter(lease_id, meter, max_token_rate)

    def sign_usage(self, key: bytes, lease_id: int, tokens: int, amount: int) -> bytes:
        """A meter's voucher signature, made by the library as a gateway makes it."""
        chain_id = domain_of(self.market)["chainId"]
        return sign_usage(key, chain_id, self.market.address, lease_id, tokens, amount)

    def charge(self, key: bytes, lease_id: int, tokens: int, amount: int) -> int:
        """Submit `key`'s voucher (as a keeper, nobody in particular); the wei charged."""
        signature = self.sign_usage(key, lease_id, tokens, amount)
        with boa.env.prank(boa.env.generate_address("keeper")):
            return self.market.chargeUsage(lease_id, tokens, amount, signature)

    def escrow_liabilities(
        self, leases_ids: list[int], providers: list[str], customers: list[str]
    ) -> int:
        """What the market owes, from its own storage: lease balances + provider
        earnings (net and fee) + fees accrued + free balances."""
        leases = sum(self.market.lease(i).balance for i in leases_ids)
        earnings = sum(sum(self.market.earningsOf(p)) for p in providers)
        free = sum(self.market.freeBalance(c) for c in customers)
        return leases + earnings + self.market.feesAccrued() + free


def make_market(market_deployer: Any = None, pha_deployer: Any = None) -> Market:
    """Real PHA and the market; the deployer keeps PHA's minter role to fund accounts."""
    owner = boa.env.generate_address("market-owner (timelock)")
    treasury = boa.env.generate_address("treasury")
    pha = (pha_deployer or compiled(PHA_SOURCE)).deploy(ZERO_ADDRESS)  # no Migrator here
    pha.setMinter(boa.env.eoa, True)
    args = (pha.address, owner, treasury)
    market = (market_deployer or compiled(MARKET_SOURCE)).deploy(*args)
    with boa.env.prank(owner):
        market.setPrice(H100, H100_RATE)
        market.setPrice(CPU, CPU_RATE)
    providers = [boa.env.generate_address(f"provider {i}") for i in range(3)]
    return Market(pha, market, owner, treasury, ACCOUNTS[:4], providers)
