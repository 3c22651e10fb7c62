"""Stateful property test of the Market's money, on the real PHA token.

Random sequences of deposits, withdrawals, lease openings, top-ups, settlements, provider
withdrawals over several leases, fee collections, closes (by customer, provider or a
stranger), fee and price changes, meters set and usage vouchers charged (new, replayed,
stale or forged) and time jumps run against the contract and against a Python model that
settles every lease eagerly at every step. The contract settles only
when the random `settle`/`withdraw`/`close`/`top_up` steps happen to touch a lease, so the
two settle at different moments and in different orders. After every step:

- escrow: PHA held by the market == lease balances + provider earnings not withdrawn (net
  and fee) + fees not collected + customers' free balances;
- provider bound: what a provider has received or can withdraw is exactly rate x paid
  seconds of its leases plus the usage charged to them, paid seconds never exceed the
  seconds a lease was billing, and a meter's charges never exceed its cap x the tokens its
  vouchers counted;
- no loss: a customer's wallet + free balance + unspent lease balances == everything it
  was given minus rate x paid seconds of its leases minus the usage charged;
- order: every lease's settled balance, billing clock, status, runway and state, every
  provider's earnings and the treasury's fees equal the eagerly settled model's;
- a call reverts exactly when the model says it must.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import boa
from compiled import compiled
from hypothesis import HealthCheck, event, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)
from market_kit import (
    CPU,
    CPU_RATE,
    DAY,
    H100,
    H100_RATE,
    MARKET_SOURCE,
    METER_KEYS,
    METERS,
    PHA,
    PHA_SOURCE,
    STATE_CLOSED,
    STATE_PAUSED,
    STATE_RUNNING,
    STATUS_BILLING,
    STATUS_CLOSED,
    STATUS_STOPPED,
    ZERO,
    deployment_id,
    make_market,
)

from veil.market.typed_data import sign_usage

GRACE = 2 * DAY
START = 50 * PHA
AMOUNTS = st.one_of(
    st.integers(min_value=0, max_value=3 * PHA),
    st.sampled_from([PHA // 6, PHA // 2 + 12_345, 301 * H100_RATE, 300 * H100_RATE]),
)
MAX_RATE = 10**27
CAPS = st.sampled_from([0, 1, 10**9, 10**12, 10**15, MAX_RATE, MAX_RATE + 1])
JUMPS = st.one_of(
    st.sampled_from([1, 60, 299, 300, 301, 1_799, 1_800, 3_600, DAY, GRACE + 1]),
    st.integers(min_value=1, max_value=3 * DAY),
)


@dataclass
class LeaseModel:
    customer: str
    provider: str
    rate: int
    fee_rate: int
    window: int
    balance: int
    last: int
    opened: int
    status: int = STATUS_BILLING
    billed: int = 0  # seconds paid so far
    billing_seconds: int = 0  # wall-clock seconds spent billing (an upper bound)
    meter: int | None = None  # index into METER_KEYS
    cap: int = 0
    top_cap: int = 0  # the highest cap this meter has had (the cap can change, counters stay)
    meter_fee_bps: int = 0
    # The last voucher the market accepted, and the wei charged of it (less while unpaid).
    last_tokens: int = 0
    last_amount: int = 0
    charged_amount: int = 0
    usage_paid: int = 0  # every meter's charges, fee included
    usage_fee: int = 0
    # What the current meter (the gateway) has signed: every voucher, latest last.
    vouchers: list[tuple[int, int]] = field(default_factory=list)

    def settle(self, now: int) -> None:
        if self.status != STATUS_BILLING or now == self.last:
            return
        elapsed = now - self.last
        affordable = self.balance // self.rate
        seconds = min(elapsed, affordable)
        self.balance -= seconds * self.rate
        self.billed += seconds
        self.billing_seconds += elapsed if elapsed < affordable else seconds
        self.last += seconds
        if seconds == affordable:
            self.status = STATUS_STOPPED
            event("billing stopped")

    def pauses_at(self) -> int:
        if self.status == STATUS_STOPPED:
            return self.last - self.window
        return self.last + self.balance // self.rate - self.window

    def runway(self, now: int) -> int:
        if self.status == STATUS_CLOSED:
            return 0
        return max(0, self.pauses_at() - now)


class MarketMachine(RuleBasedStateMachine):
    @initialize(ai_funding=st.integers(PHA // 5, 3 * PHA), ai_on_cpu=st.booleans())
    def deploy(self, ai_funding: int, ai_on_cpu: bool) -> None:
        self._anchor = boa.env.anchor()
        self._anchor.__enter__()
        self.m = make_market(compiled(MARKET_SOURCE), compiled(PHA_SOURCE))
        self.market, self.pha = self.m.market, self.m.pha
        with boa.env.prank(self.m.owner):
            self.market.setGracePeriod(GRACE)
        self.customers = [a.address for a in self.m.customers[:3]]
        self.providers = self.m.providers[:2]
        self.stranger = boa.env.generate_address("stranger")
        self.given = dict.fromkeys(self.customers, START)
        for c in self.customers:
            self.pha.mint(c, START)
            with boa.env.prank(c):
                self.pha.approve(self.market.address, 2**256 - 1)
        self.free = dict.fromkeys(self.customers, 0)
        self.leases: dict[int, LeaseModel] = {}
        self.fee_bps = self.market.feeBps()
        self.prices = {H100: H100_RATE, CPU: CPU_RATE}
        self.window = self.market.shutdownWindow()
        self.names = 0
        # Auto top-up starts on for everyone (threshold, amount, cap); a rule changes it.
        self.auto = dict.fromkeys(self.customers, (DAY, PHA // 2, 4 * PHA))
        for c in self.customers:
            with boa.env.prank(c):
                self.market.setAutoTopUp(*self.auto[c])
        # Every run starts with one metered AI lease, so that usage charges meet every
        # other step (and runs without one arise from closing it or turning it off).
        self.open(0, 0, ai_on_cpu, ai_funding, fund=True, metered=True)

    def teardown(self) -> None:
        if hasattr(self, "_anchor"):
            self._anchor.__exit__(None, None, None)

    # --- helpers -------------------------------------------------------------------

    def now(self) -> int:
        return self.m.now()

    def settle_model(self) -> None:
        for lease in self.leases.values():
            lease.settle(self.now())

    def pick(self, data: st.DataObject) -> int | None:
        if not self.leases:
            return None
        return data.draw(st.sampled_from(sorted(self.leases)))

    # --- rules ---------------------------------------------------------------------

    @rule(c=st.integers(0, 2), amount=AMOUNTS)
    def deposit(self, c: int, amount: int) -> None:
        who = self.customers[c]
        amount = min(amount, self.pha.balanceOf(who))
        with boa.env.prank(who):
            if amount == 0:
                with boa.reverts("market: zero amount"):
                    self.market.deposit(0)
                return
            self.market.deposit(amount)
        self.free[who] += amount

    @rule(c=st.integers(0, 2), amount=AMOUNTS)
    def withdraw(self, c: int, amount: int) -> None:
        who = self.customers[c]
        with boa.env.prank(who):
            if amount == 0:
                with boa.reverts("market: zero amount"):
                    self.market.withdraw(0)
            elif amount > self.free[who]:
                with boa.reverts("market: amount exceeds free balance"):
                    self.market.withdraw(amount)
            else:
                self.market.withdraw(amount)
                self.free[who] -= amount

    def top_free_up(self, who: str, amount: int) -> None:
        """A customer about to spend more than its free balance usually deposits first."""
        missing = min(amount - self.free[who], self.pha.balanceOf(who))
        if missing > 0:
            with boa.env.prank(who):
                self.market.deposit(missing)
            self.free[who] += missing

    @rule(
        c=st.integers(0, 2),
        p=st.integers(0, 1),
        cpu=st.booleans(),
        amount=AMOUNTS,
        fund=st.booleans(),
        metered=st.booleans(),
    )
    def open(self, c: int, p: int, cpu: bool, amount: int, fund: bool, metered: bool) -> None:
        who, provider = self.customers[c], self.providers[p]
        if fund:
            self.top_free_up(who, amount)
        instance = CPU if cpu else H100
        rate = self.prices[instance]
        self.names += 1
        args = (provider, deployment_id(f"d{self.names}"), instance, amount, rate)
        with boa.env.prank(who):
            if amount // rate <= self.window:
                with boa.reverts("market: funding does not cover the shutdown window"):
                    self.market.openLease(*args)
                return
            if amount > self.free[who]:
                with boa.reverts("market: amount exceeds free balance"):
                    self.market.openLease(*args)
                return
            lease_id = self.market.openLease(*args)
        self.free[who] -= amount
        fee_rate = rate * self.fee_bps // 10_000
        self.leases[lease_id] = LeaseModel(
            who, provider, rate, fee_rate, self.window, amount, self.now(), self.now()
        )
        if metered:  # a lease for an AI app: its customer authorises the gateway at once
            cap = 10**12 if cpu else 10**15
            with boa.env.prank(who):
                self.market.setMeter(lease_id, METERS[c], cap)
            model = self.leases[lease_id]
            model.meter, model.cap, model.top_cap, model.meter_fee_bps = c, cap, cap, self.fee_bps

    @rule(data=st.data(), amount=AMOUNTS, fund=st.booleans())
    def top_up(self, data: st.DataObject, amount: int, fund: bool) -> None:
        lease_id = self.pick(data)
        if lease_id is not None:
            self.top_up_lease(lease_id, amount, fund)

    @rule(data=st.data(), slack=st.sampled_from([-1, 0, 1, 7_777, PHA // 10]))
    def top_up_paused(self, data: st.DataObject, slack: int) -> None:
        """Top a paused lease up by just enough to resume it (slack 0), one wei less, or
        a little more: the edge of the resume rule."""
        now = self.now()
        paused = sorted(
            i
            for i, lease in self.leases.items()
            if lease.status != STATUS_CLOSED and lease.runway(now) == 0
        )
        if not paused:
            # Let one run dry first: to its pause, into its window, or past its funding.
            open_ids = sorted(i for i, x in self.leases.items() if x.status != STATUS_CLOSED)
            if not open_ids:
                return
            lease_id = data.draw(st.sampled_from(open_ids))
            lease = self.leases[lease_id]
            after = data.draw(st.sampled_from([0, lease.window - 1, lease.window + 1, DAY]))
            target = lease.pauses_at() + after
            if target >= 2**40:
                return
            boa.env.time_travel(seconds=target - now)
            self.settle_model()
            now = self.now()
            paused = [lease_id]
        lease_id = data.draw(st.sampled_from(paused))
        lease = self.leases[lease_id]
        start = lease.last if lease.status == STATUS_BILLING else now
        # Funded seconds needed: the end of funding must pass now + window.
        needed = (now + lease.window + 1 - start) * lease.rate - lease.balance
        self.top_up_lease(lease_id, max(needed + slack, 1), fund=True)

    def top_up_lease(self, lease_id: int, amount: int, fund: bool) -> None:
        lease = self.leases[lease_id]
        who = lease.customer
        if fund:
            self.top_free_up(who, amount)
        with boa.env.prank(who):
            if amount > self.free[who]:
                with boa.reverts("market: amount exceeds free balance"):
                    self.market.topUp(lease_id, amount)
                return
            if amount == 0:
                with boa.reverts("market: zero amount"):
                    self.market.topUp(lease_id, 0)
                return
            if lease.status == STATUS_CLOSED:
                with boa.reverts("market: lease is closed"):
                    self.market.topUp(lease_id, amount)
                return
            paused = lease.runway(self.now()) == 0
            after = LeaseModel(**vars(lease))
            after.balance += amount
            if after.status == STATUS_STOPPED:
                after.status, after.last = STATUS_BILLING, self.now()
            if paused and after.runway(self.now()) == 0:
                event("top-up too small to resume")
                with boa.reverts("market: top-up too small to resume"):
                    self.market.topUp(lease_id, amount)
                return
            self.market.topUp(lease_id, amount)
        stopped = lease.status == STATUS_STOPPED
        event(
            "top-up resumed a stopped lease"
            if stopped
            else "top-up resumed a paused lease"
            if paused
            else "top-up of a running lease"
        )
        self.free[who] -= amount
        self.leases[lease_id] = after

    @rule(
        c=st.integers(0, 2),
        threshold=st.sampled_from([0, 600, 3_600, DAY]),
        amount=AMOUNTS,
        cap=st.sampled_from([0, PHA // 3, 2 * PHA, 10 * PHA]),
    )
    def set_auto_top_up(self, c: int, threshold: int, amount: int, cap: int) -> None:
        who = self.customers[c]
        with boa.env.prank(who):
            self.market.setAutoTopUp(threshold, amount, cap)
        self.auto[who] = (threshold, amount, cap)

    @rule(data=st.data())
    def auto_top_up(self, data: st.DataObject) -> None:
        lease_id = self.pick(data)
        if lease_id is None:
            return
        lease = self.leases[lease_id]
        who = lease.customer
        threshold, amount, cap = self.auto[who]
        pull = min(amount, cap)
        runway = lease.runway(self.now())
        after = LeaseModel(**vars(lease))
        after.balance += pull
        if after.status == STATUS_STOPPED:
            after.status, after.last = STATUS_BILLING, self.now()
        refusal = None
        if amount == 0:
            refusal = "market: auto top-up is off"
        elif runway >= threshold:
            refusal = "market: runway above the threshold"
        elif pull == 0:
            refusal = "market: auto top-up cap used up"
        elif self.pha.balanceOf(who) < pull:
            refusal = "PHA: transfer amount exceeds balance"
        elif lease.status == STATUS_CLOSED:
            refusal = "market: lease is closed"
        elif runway == 0 and after.runway(self.now()) == 0:
            refusal = "market: top-up too small to resume"
        with boa.env.prank(self.stranger):
            if refusal is not None:
                with boa.reverts(refusal):
                    self.market.autoTopUp(lease_id)
                return
            self.market.autoTopUp(lease_id)
        event(
            "auto top-up resumed a stopped lease"
            if lease.status == STATUS_STOPPED
            else "auto top-up"
        )
        self.auto[who] = (threshold, amount, cap - pull)
        self.leases[lease_id] = after

    @precondition(lambda self: bool(self.leases))
    @rule(
        data=st.data(),
        meter=st.sampled_from([0, 1, 2, None]),
        cap=CAPS,
        stranger=st.integers(0, 9),
    )
    def set_meter(self, data: st.DataObject, meter: int | None, cap: int, stranger: int) -> None:
        lease_id = self.pick(data)
        if lease_id is None:
            return
        lease = self.leases[lease_id]
        address = ZERO if meter is None else METERS[meter]
        who = self.stranger if stranger == 0 else lease.customer
        with boa.env.prank(who):
            if who != lease.customer:
                with boa.reverts("market: caller is not the lease's customer"):
                    self.market.setMeter(lease_id, address, cap)
                return
            if lease.status == STATUS_CLOSED:
                with boa.reverts("market: lease is closed"):
                    self.market.setMeter(lease_id, address, cap)
                return
            if cap > MAX_RATE:
                with boa.reverts("market: rate too high"):
                    self.market.setMeter(lease_id, address, cap)
                return
            self.market.setMeter(lease_id, address, cap)
        if meter is None:
            lease.meter, lease.cap = None, 0
            lease.last_tokens = lease.last_amount = lease.charged_amount = 0
            lease.top_cap = 0
            lease.vouchers = []
            return
        if meter != lease.meter:
            event("new meter")
            lease.meter, lease.meter_fee_bps = meter, self.fee_bps
            lease.last_tokens = lease.last_amount = lease.charged_amount = 0
            lease.vouchers = []
            lease.top_cap = 0
        lease.cap, lease.top_cap = cap, max(lease.top_cap, cap)

    @precondition(lambda self: any(x.meter is not None for x in self.leases.values()))
    @rule(
        data=st.data(),
        tokens=st.one_of(st.just(0), st.integers(1, 10**6)),
        percent=st.sampled_from([0, 1, 50, 100, 101]),
        which=st.sampled_from(["new", "new", "latest", "older", "forged"]),
    )
    def charge_usage(self, data: st.DataObject, tokens: int, percent: int, which: str) -> None:
        """A voucher for a lease: a new one (the gateway metered `tokens` more at
        `percent` of the cap per token), the latest again, an older one, or one signed by
        a key that is not the lease's meter."""
        self._charge(data, tokens, percent, which)

    @precondition(lambda self: any(x.meter is not None for x in self.leases.values()))
    @rule(data=st.data(), tokens=st.integers(1, 10**6), percent=st.sampled_from([50, 100]))
    def provider_charges_new_usage(self, data: st.DataObject, tokens: int, percent: int) -> None:
        """The common case, drawn as often as the rest together: the provider submits
        the gateway's newest voucher."""
        self._charge(data, tokens, percent, "new")

    def _charge(self, data: st.DataObject, tokens: int, percent: int, which: str) -> None:
        metered = sorted(i for i, x in self.leases.items() if x.meter is not None)
        if metered and data.draw(st.integers(0, 4), label="metered") != 0:
            lease_id = data.draw(st.sampled_from(metered))
        else:
            lease_id = self.pick(data)
        if lease_id is None:
            return
        lease = self.leases[lease_id]
        last = lease.vouchers[-1] if lease.vouchers else (0, 0)
        voucher = (last[0] + tokens, last[1] + tokens * lease.cap * percent // 100)
        fresh = True  # "older" with no voucher yet falls back to a new one
        if which == "latest":
            voucher, fresh = last, False
        elif which == "older" and lease.vouchers:
            voucher, fresh = data.draw(st.sampled_from(lease.vouchers)), False
        key = METER_KEYS[3 if which == "forged" or lease.meter is None else lease.meter]
        chain_id = self.market.eip712Domain()[3]
        signature = sign_usage(key, chain_id, self.market.address, lease_id, *voucher)
        keeper = data.draw(st.sampled_from([self.stranger, lease.provider, lease.customer]))
        refusal = None
        if lease.meter is None:
            refusal = "market: no meter"
        elif lease.status == STATUS_CLOSED:
            refusal = "market: lease is closed"
        elif which == "forged":
            refusal = "market: signer is not the meter"
        elif voucher[0] < lease.last_tokens:
            refusal = "market: tokens below the last voucher"
        elif voucher[1] < lease.last_amount:
            refusal = "market: amount below the last voucher"
        elif voucher[1] - lease.last_amount > (voucher[0] - lease.last_tokens) * lease.cap:
            refusal = "market: amount above tokens times the cap"
        with boa.env.prank(keeper):
            if refusal is not None:
                event(f"usage refused: {refusal}")
                with boa.reverts(refusal):
                    self.market.chargeUsage(lease_id, *voucher, signature)
                return
            charged = self.market.chargeUsage(lease_id, *voucher, signature)
        if fresh:
            lease.vouchers.append(voucher)
        due = voucher[1] - lease.charged_amount
        chargeable = lease.balance
        if lease.status == STATUS_BILLING:
            keep = min(lease.balance // lease.rate, max(lease.window, 1))
            chargeable = lease.balance - keep * lease.rate
        paid = min(due, chargeable)
        event("usage charged in full" if paid == due else "usage charged in part")
        assert charged == paid
        bps = lease.meter_fee_bps
        fee = (lease.charged_amount + paid) * bps // 10_000 - lease.charged_amount * bps // 10_000
        lease.last_tokens, lease.last_amount = voucher
        lease.charged_amount += paid
        lease.balance -= paid
        lease.usage_paid += paid
        lease.usage_fee += fee

    @rule(data=st.data())
    def settle(self, data: st.DataObject) -> None:
        lease_id = self.pick(data)
        if lease_id is not None:
            self.market.settle(lease_id)

    @rule(p=st.integers(0, 1), data=st.data())
    def withdraw_earnings(self, p: int, data: st.DataObject) -> None:
        provider = self.providers[p]
        own = sorted(i for i, lease in self.leases.items() if lease.provider == provider)
        chosen = data.draw(st.lists(st.sampled_from(own), unique=True)) if own else []
        with boa.env.prank(provider):
            self.market.withdrawEarnings(chosen)

    @rule(data=st.data())
    def withdraw_foreign_lease_refused(self, data: st.DataObject) -> None:
        lease_id = self.pick(data)
        if lease_id is None:
            return
        other = next(p for p in self.providers if p != self.leases[lease_id].provider)
        with boa.env.prank(other), boa.reverts("market: lease of another provider"):
            self.market.withdrawEarnings([lease_id])

    @rule(which=st.sets(st.integers(0, 1)))
    def collect_fees(self, which: set[int]) -> None:
        self.market.collectFees([self.providers[i] for i in sorted(which)])

    @rule(data=st.data(), closer=st.sampled_from(["customer", "provider", "stranger"]))
    def close(self, data: st.DataObject, closer: str) -> None:
        lease_id = self.pick(data)
        if lease_id is None:
            return
        lease = self.leases[lease_id]
        who = {"customer": lease.customer, "provider": lease.provider}.get(closer, self.stranger)
        with boa.env.prank(who):
            if lease.status == STATUS_CLOSED:
                with boa.reverts("market: lease is closed"):
                    self.market.closeLease(lease_id)
                return
            if closer == "stranger" and self.now() < lease.pauses_at() + GRACE:
                event("stranger close before grace refused")
                with boa.reverts("market: grace period not over"):
                    self.market.closeLease(lease_id)
                return
            self.market.closeLease(lease_id)
        event(f"closed by {closer} ({'paused' if lease.runway(self.now()) == 0 else 'running'})")
        lease.status = STATUS_CLOSED
        lease.balance = 0  # refunded to the customer's wallet

    @rule(bps=st.sampled_from([0, 1, 250, 777, 2_000]), h100=st.integers(1, 3 * H100_RATE))
    def governance(self, bps: int, h100: int) -> None:
        with boa.env.prank(self.m.owner):
            self.market.setFeeBps(bps)
            self.market.setPrice(H100, h100)
        self.fee_bps, self.prices[H100] = bps, h100

    @rule(data=st.data(), offset=st.sampled_from([-1, 0, 1, "window-1", "window", "grace"]))
    def time_passes_to_a_pause(self, data: st.DataObject, offset: int | str) -> None:
        """Jump to the edges that matter: a lease's pause, the end of its funded time
        (pause + window) and the end of its grace."""
        lease_id = self.pick(data)
        if lease_id is None or self.leases[lease_id].status == STATUS_CLOSED:
            return
        lease = self.leases[lease_id]
        extra = {"window-1": lease.window - 1, "window": lease.window, "grace": GRACE}
        target = lease.pauses_at() + extra.get(offset, offset)  # type: ignore[call-overload]
        # A price of a few wei per second puts a pause millions of years away; block
        # timestamps are 64-bit, so stay far below that.
        if self.now() < target < 2**40:
            boa.env.time_travel(seconds=target - self.now())
            self.settle_model()

    @rule(seconds=JUMPS)
    def time_passes(self, seconds: int) -> None:
        boa.env.time_travel(seconds=seconds)
        self.settle_model()

    # --- invariants ----------------------------------------------------------------

    @invariant()
    def escrow_is_conserved(self) -> None:
        if not hasattr(self, "m"):
            return
        held = self.pha.balanceOf(self.market.address)
        assert held == self.m.escrow_liabilities(list(self.leases), self.providers, self.customers)

    @invariant()
    def leases_match_the_eager_model(self) -> None:
        if not hasattr(self, "m"):
            return
        now = self.now()
        for lease_id, model in self.leases.items():
            model.settle(now)
            got = self.market.settledLease(lease_id)
            assert (got.balance, got.status) == (model.balance, model.status), lease_id
            if model.status != STATUS_CLOSED:
                assert got.lastSettled == model.last
            runway = model.runway(now)
            assert self.market.runway(lease_id) == runway
            expected = (
                STATE_CLOSED
                if model.status == STATUS_CLOSED
                else STATE_RUNNING
                if runway
                else STATE_PAUSED
            )
            assert self.market.state(lease_id) == expected
            assert model.billed <= model.billing_seconds <= now - model.opened
            meter = ZERO if model.meter is None else METERS[model.meter]
            assert tuple(self.market.meterOf(lease_id)) == (
                meter,
                model.cap,
                model.last_tokens,
                model.last_amount,
                model.charged_amount,
            )
            # The meter never charges more than it signed, nor more than the cap per token.
            assert model.charged_amount <= model.last_amount <= model.top_cap * model.last_tokens

    def _pending(self, lease_id: int) -> tuple[int, int]:
        """(net, fee) that a settlement now would credit, read from the contract."""
        stored, settled = self.market.lease(lease_id), self.market.settledLease(lease_id)
        seconds = (stored.balance - settled.balance) // stored.rate
        return seconds * (stored.rate - stored.feeRate), seconds * stored.feeRate

    @invariant()
    def providers_get_exactly_rate_times_paid_seconds(self) -> None:
        if not hasattr(self, "m"):
            return
        fees_due = 0
        fees_held = self.pha.balanceOf(self.m.treasury) + self.market.feesAccrued()
        for provider in self.providers:
            net_due = 0
            net, fee = self.market.earningsOf(provider)
            received = self.pha.balanceOf(provider) + net
            fees_held += fee
            for lease_id, model in self.leases.items():
                if model.provider != provider:
                    continue
                net_due += model.billed * (model.rate - model.fee_rate)
                net_due += model.usage_paid - model.usage_fee
                fees_due += model.billed * model.fee_rate + model.usage_fee
                pending_net, pending_fee = self._pending(lease_id)
                received += pending_net
                fees_held += pending_fee
            assert received == net_due
            assert self.pha.balanceOf(provider) <= net_due
        assert fees_held == fees_due

    @invariant()
    def customers_never_lose_unspent_funds(self) -> None:
        if not hasattr(self, "m"):
            return
        for who in self.customers:
            spent = sum(
                lease.billed * lease.rate + lease.usage_paid
                for lease in self.leases.values()
                if lease.customer == who
            )
            unspent = sum(
                self.market.settledLease(i).balance
                for i, lease in self.leases.items()
                if lease.customer == who
            )
            assert self.market.freeBalance(who) == self.free[who]
            assert tuple(self.market.autoTopUpOf(who)) == self.auto[who]
            total = self.pha.balanceOf(who) + self.free[who] + unspent
            mine = [(i % 1000, vars(x)) for i, x in self.leases.items() if x.customer == who]
            assert total == self.given[who] - spent, (who, self.pha.balanceOf(who), mine)


TestMarketMoney = MarketMachine.TestCase
TestMarketMoney.settings = settings(
    max_examples=60,
    stateful_step_count=50,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
