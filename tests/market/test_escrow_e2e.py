"""The escrow client against a real anvil with the network deployed by `deploy_network`:
the market is owned by the timelock, fees go to it, the price list is set by name; a
customer deposits with a permit, opens by transaction and by signature through a control
plane, runs dry, pauses, tops up, resumes; a provider collects from several leases in one
transaction; billing, events and the statement agree with the chain's balances."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from eth_account import Account
from eth_utils import keccak

from veil.chain.client import connect
from veil.devnet.accounts import devnet_account
from veil.devnet.anvil import Devnet, free_port
from veil.devnet.client import DevnetChain
from veil.devnet.network import devnet_parameters, fund_accounts
from veil.errors import ChainError, InputError
from veil.market import runway
from veil.market.escrow import Escrow, Meter, UsageCharged
from veil.market.typed_data import UsageVoucher, sign_usage, usage_digest, usage_typed_data
from veil.network.deploy import deploy_network

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("market-anvil")]

PHA = 10**18
HOUR = 3_600


@pytest.fixture(scope="module")
def escrow(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Escrow]:
    devnet = Devnet(Path(tmp_path_factory.mktemp("market-devnet")))
    process = devnet.start(port=free_port())
    try:
        chain = DevnetChain(connect(process.rpc_url))
        accounts = {n: devnet_account(n).address for n in ("alice", "bob", "provider")}
        deploy_network(
            chain,
            devnet_account("deployer"),
            "market-test",
            process.rpc_url,
            devnet_parameters([]),
            genesis_mints=fund_accounts(accounts, 10_000),
        )
        yield Escrow(chain)
    finally:
        devnet.stop()


def test_deployment_wires_the_market_to_governance(escrow: Escrow) -> None:
    timelock = escrow.chain.contract("Timelock").address
    fn = escrow.market.functions
    assert fn.owner().call() == timelock
    assert fn.treasury().call() == timelock
    assert fn.pha().call() == escrow.token.address
    assert (fn.feeBps().call(), fn.gracePeriod().call(), fn.shutdownWindow().call()) == (
        250,
        7 * 86_400,
        300,
    )
    h100 = escrow.price("h100")
    assert escrow.price("h100x8") == 8 * h100 == 8 * (20 * PHA // HOUR)
    assert escrow.price("tdx.small") == PHA // 2 // HOUR
    with pytest.raises(InputError, match="not offered"):
        escrow.price("h100x9")
    params = escrow.chain.deployment.parameters  # type: ignore[union-attr]
    assert params["market_prices"]["h200x2"] == escrow.price("h200x2")


def test_customer_life_cycle_and_provider_batch(escrow: Escrow, tmp_path: Path) -> None:
    chain = escrow.chain
    assert isinstance(chain, DevnetChain)
    alice, bob, provider = (devnet_account(n) for n in ("alice", "bob", "provider"))
    rate = escrow.price("tdx.large")
    wallet0 = int(escrow.token.functions.balanceOf(alice.address).call())

    escrow.deposit(alice, 100 * PHA)  # permit: no approval transaction
    assert escrow.free_balance(alice.address) == 100 * PHA
    assert escrow.token.functions.allowance(alice.address, escrow.market.address).call() == 0

    one_hour = (HOUR + 300) * rate  # an hour of runway plus the shutdown window
    first = escrow.open_lease(alice, provider.address, "app-one", "tdx.large", one_hour)
    assert first == escrow.lease_id(alice.address, "app-one")
    # the control plane (bob) submits alice's signed request
    request = escrow.open_request(alice.address, provider.address, "app-two", "tdx.large", 5 * PHA)
    second = escrow.open_lease_for(bob, request, escrow.sign_open(alice.key, request))
    assert escrow.lease(second).customer == alice.address
    with pytest.raises(ChainError, match="already has a lease"):
        escrow.open_lease_for(bob, request, escrow.sign_open(alice.key, request))

    bill = escrow.billing(first)
    assert (bill.state, bill.rate, bill.runway_seconds) == (
        "running",
        rate,
        HOUR - bill_age(escrow, first),
    )

    chain.advance_time(HOUR + 60)  # runs dry: paused, billing ends with the window
    assert escrow.state(first) == runway.STATE_PAUSED
    paused = escrow.billing(first)
    assert paused.state == "paused" and paused.runway_seconds == 0
    need = runway.top_up_for_runway(escrow.lease(first), escrow.now() + 1, HOUR)
    escrow.top_up(alice, first, need)
    assert escrow.state(first) == runway.STATE_RUNNING
    assert escrow.billing(first).runway_seconds >= HOUR - 1

    chain.advance_time(600)
    net_before = int(escrow.token.functions.balanceOf(provider.address).call())
    paid = escrow.withdraw_earnings(provider, escrow.leases_of_provider(provider.address))
    assert paid > 0
    assert int(escrow.token.functions.balanceOf(provider.address).call()) == net_before + paid
    assert escrow.earnings(provider.address) == (0, 0)

    refund = escrow.close(alice, second)
    assert escrow.state(second) == runway.STATE_CLOSED
    assert escrow.billing(second).balance == 0
    escrow.withdraw(alice, escrow.free_balance(alice.address))

    # conservation from the customer's side: wallet + what the escrow holds for her ==
    # what she had minus everything billed (the sum of all Settled and unsettled seconds)
    month = datetime.fromtimestamp(escrow.now(), UTC).strftime("%Y-%m")
    doc = escrow.statement(alice.address, month)
    held = escrow.lease(first).balance
    wallet = int(escrow.token.functions.balanceOf(alice.address).call())
    settled_total = int(doc["totals"]["settled_amount_wei"])
    assert wallet + held == wallet0 - settled_total
    assert int(doc["funding"]["refund_wei"]) == refund > 0
    assert {row["lease"] for row in doc["leases"]} == {f"0x{first:064x}", f"0x{second:064x}"}
    # the statement's lease costs equal billing's cost so far for the closed lease
    closed_row = next(r for r in doc["leases"] if r["lease"] == f"0x{second:064x}")
    assert int(closed_row["amount_wei"]) == escrow.billing(second).cost_so_far
    path = escrow.write_statement(alice.address, month, tmp_path / "statement.csv")
    assert path.read_text().splitlines()[0].startswith("lease,deployment,instance_type")

    # auto top-up: a keeper (bob) refills from alice's wallet within her cap
    escrow.set_auto_top_up(alice, threshold=2 * HOUR, amount=PHA, cap=PHA + PHA // 2)
    chain.send(alice, escrow.token.functions.approve(escrow.market.address, 10 * PHA), "approve")
    before = escrow.lease(first).balance
    assert escrow.auto_top_up(bob, first) == PHA
    assert escrow.auto_top_up(bob, first) == PHA // 2  # what is left of the cap
    assert escrow.lease(first).balance > before + PHA
    with pytest.raises(ChainError, match="cap used up"):
        escrow.auto_top_up(bob, first)

    with pytest.raises(InputError, match="no such lease"):
        escrow.lease(12345)
    with pytest.raises(InputError, match="must be positive"):
        escrow.top_up(alice, first, 0)


def bill_age(escrow: Escrow, lease_id: int) -> int:
    """Seconds since the lease was last settled (blocks mined since its opening)."""
    return escrow.now() - escrow.lease(lease_id).last_settled


def test_per_token_usage_through_the_escrow(escrow: Escrow) -> None:
    """The customer authorises a gateway key as its lease's meter; the provider submits
    the gateway's voucher JSON; the contract charges the difference since the last one."""
    alice, bob, provider = (devnet_account(n) for n in ("alice", "bob", "provider"))
    gateway = Account.from_key(keccak(text="veil e2e gateway key"))
    escrow.deposit(alice, 20 * PHA)
    lease_id = escrow.open_lease(alice, provider.address, "ai-app", "h100", 10 * PHA)
    assert escrow.meter_of(lease_id) == Meter(None, 0, 0, 0, 0)
    cap = 10**13  # 0.00001 PHA per token at most
    escrow.set_meter(alice, lease_id, gateway.address, cap)
    assert escrow.meter_of(lease_id) == Meter(gateway.address, cap, 0, 0, 0)

    chain_id = int(escrow.chain.w3.eth.chain_id)
    market = escrow.market.address
    tokens, amount = 12_345, 12_345 * 3 * 10**12
    assert escrow.usage_digest(lease_id, gateway.address, tokens, amount) == usage_digest(
        chain_id, market, lease_id, gateway.address, tokens, amount
    )
    signature = sign_usage(gateway.key, chain_id, market, lease_id, tokens, amount)
    doc = {  # what the gateway serves at GET /v1/usage/voucher
        "lease_id": f"0x{lease_id:064x}",
        "meter": gateway.address,
        "tokens": tokens,
        "amount": str(amount),
        "signature": "0x" + signature.hex(),
        "typed_data": usage_typed_data(chain_id, market, lease_id, gateway.address, tokens, amount),
    }
    voucher = UsageVoucher.from_json(doc)
    before = sum(escrow.earnings(provider.address))
    assert escrow.charge_voucher(provider, voucher).amount == amount
    assert escrow.meter_of(lease_id) == Meter(gateway.address, cap, tokens, amount, amount)
    assert sum(escrow.earnings(provider.address)) - before >= amount  # plus settled seconds
    assert escrow.charge_voucher(bob, voucher) == UsageCharged(0, 0, 0)  # charged: no revert

    # Refusals: one line each, before gas where the client can tell.
    with pytest.raises(ChainError, match=r"setMeter reverted: .*not the lease's customer"):
        escrow.set_meter(bob, lease_id, bob.address, cap)
    with pytest.raises(InputError, match="not an address"):
        escrow.set_meter(alice, lease_id, "0x1234", cap)
    with pytest.raises(InputError, match="max token rate"):
        escrow.set_meter(alice, lease_id, gateway.address, 10**27 + 1)
    forged = sign_usage(bob.key, chain_id, market, lease_id, tokens + 1, amount + 1)
    with pytest.raises(ChainError, match=r"chargeUsage reverted: .*signer is not the meter"):
        escrow.charge_usage(provider, lease_id, tokens + 1, amount + 1, forged)
    with pytest.raises(ChainError, match="amount above tokens times the cap"):
        too_dear = sign_usage(gateway.key, chain_id, market, lease_id, tokens + 1, amount + cap + 1)
        escrow.charge_usage(provider, lease_id, tokens + 1, amount + cap + 1, too_dear)
    other_chain = sign_usage(gateway.key, chain_id + 1, market, lease_id, tokens + 9, amount + 9)
    stray = UsageVoucher(lease_id, gateway.address, tokens + 9, amount + 9, other_chain)
    with pytest.raises(InputError, match="not by the meter"):
        escrow.charge_voucher(provider, stray)
    with pytest.raises(InputError, match="65 bytes"):
        escrow.charge_usage(provider, lease_id, tokens, amount, "0x1234")

    month = datetime.fromtimestamp(escrow.now(), UTC).strftime("%Y-%m")
    doc = escrow.statement(alice.address, month)
    assert (doc["totals"]["tokens"], doc["totals"]["token_amount_wei"]) == (tokens, str(amount))
    assert [c["amount_wei"] for c in doc["token_charges"]] == [str(amount)]
    assert escrow.billing(lease_id).cost_so_far >= amount  # seconds and tokens

    escrow.set_meter(alice, lease_id, None, 0)
    assert escrow.meter_of(lease_id) == Meter(None, 0, 0, 0, 0)
    with pytest.raises(InputError, match="no meter is set"):
        escrow.charge_voucher(provider, voucher)
