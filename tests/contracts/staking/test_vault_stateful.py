"""Stateful property test of the vault's money invariants.

Random deposits, mints, unlock requests (by owners, their operators and strangers,
for themselves or other controllers), operator grants and revocations, cancels, claims
(claim(requestId), and ERC-7540 redeem/withdraw, whole or split, to any receiver),
time jumps, reward funding, rate and treasury-share changes, treasury releases and
share transfers. After every step:

- solvency: PHA held by the vault == totalAssets + pending unlocks + reward reserve +
  treasury owed (exact: nothing else sends PHA in), and the shares can never claim more
  than totalAssets (convertToAssets(totalSupply) <= totalAssets);
- the queue: pendingAssets and every account's open request list match the model, and
  so do maxRedeem, maxWithdraw and the requestId-0 pending/claimable totals;
- the share price (totalAssets + 1) / (totalSupply + 10^6), compared exactly as a
  fraction, never drops. The single documented exception: a cancel whose rounding
  wei neither the reserve nor the treasury's share could pay; there the rule checks
  that all other holders together lost less than one wei (and that a cancel which
  would cost them a wei or more is refused, leaving the request pending).

Rules check their own promises: previews equal results, a claim pays exactly the fixed
assets and never before claimableAt (a request split over several claims pays, in
total, exactly the PHA fixed when it was made), a cancel gives back shares worth at
least the queued assets, and only a controller or its operator adds to or claims from
its queue.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import boa
from compiled import compiled
from hypothesis import HealthCheck, event, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    consumes,
    initialize,
    invariant,
    rule,
)
from vpha_kit import (
    DAY,
    GOV,
    PHA,
    PHA_SOURCE,
    STAKERS,
    VAULT_SOURCE,
    VIRTUAL_SHARES,
    deploy_world,
    price,
)

_PHA = compiled(PHA_SOURCE)
_VAULT = compiled(VAULT_SOURCE)

staker = st.sampled_from(STAKERS)
assets_st = st.one_of(
    st.integers(min_value=1, max_value=1000),
    st.integers(min_value=1, max_value=10**6 * PHA),
)
fraction_st = st.fractions(min_value=0, max_value=1, max_denominator=10**6)


@dataclass
class Request:
    rid: int
    controller: str
    assets: int  # still owed (a split claim lowers it)
    shares: int  # still standing for it
    claimable_at: int
    fixed: int  # PHA fixed at request time
    paid: int = 0


NOT_CONTROLLER = "vPHA: caller is not the controller or its operator"
maybe_staker = st.one_of(st.none(), staker)  # None: the rule's main account itself


class VaultMoney(RuleBasedStateMachine):
    requests = Bundle("requests")

    @initialize(stakes=st.lists(assets_st, min_size=len(STAKERS), max_size=len(STAKERS)))
    def deploy(self, stakes: list[int]) -> None:
        self._anchor = boa.env.anchor()
        self._anchor.__enter__()
        self.pha, self.vault = deploy_world(_PHA, _VAULT)
        # Everyone starts staked so that queue rules have something to work on.
        for who, assets in zip(STAKERS, stakes, strict=True):
            with boa.env.prank(who):
                self.vault.deposit(assets, who)
        self.open: dict[int, Request] = {}
        self.operators: set[tuple[str, str]] = set()  # (controller, operator)
        # The second staker starts as the first one's operator, and every staker's
        # queue holds one request (the first one's made by its operator), so operator
        # and claim rules have work from the first step.
        with boa.env.prank(STAKERS[0]):
            self.vault.setOperator(STAKERS[1], True)
        self.operators.add((STAKERS[0], STAKERS[1]))
        for who in STAKERS:
            owner = STAKERS[1] if who == STAKERS[0] else who  # spends its own shares
            shares = self.vault.balanceOf(owner) // 4
            assets = self.vault.convertToAssets(shares)
            if assets == 0:
                continue
            with boa.env.prank(owner):
                rid = self.vault.requestRedeem(shares, who, owner)
            self.open[rid] = Request(
                rid, who, assets, shares, self.vault.redeemRequest(rid)[3], assets
            )
        self.last_price = price(self.vault)
        self.diluted = False

    def teardown(self) -> None:
        if hasattr(self, "_anchor"):
            self._anchor.__exit__(None, None, None)

    # --- staking -----------------------------------------------------------------

    @rule(who=staker, assets=assets_st, receiver=staker)
    def deposit(self, who: str, assets: int, receiver: str) -> None:
        preview = self.vault.previewDeposit(assets)
        before = self.vault.balanceOf(receiver)
        with boa.env.prank(who):
            if preview == 0:
                with boa.reverts("vPHA: deposit too small for one share"):
                    self.vault.deposit(assets, receiver)
                return
            assert self.vault.deposit(assets, receiver) == preview
        assert self.vault.balanceOf(receiver) == before + preview

    @rule(who=staker, shares=st.integers(min_value=1, max_value=10**30))
    def mint(self, who: str, shares: int) -> None:
        cost = self.vault.previewMint(shares)
        pha_before = self.pha.balanceOf(who)
        with boa.env.prank(who):
            assert self.vault.mint(shares, who) == cost
        assert self.pha.balanceOf(who) == pha_before - cost

    @rule(src=staker, dst=staker, fraction=fraction_st)
    def transfer(self, src: str, dst: str, fraction: Fraction) -> None:
        amount = int(self.vault.balanceOf(src) * fraction)
        with boa.env.prank(src):
            self.vault.transfer(dst, amount)

    # --- unlock queue --------------------------------------------------------------

    def _acts_for(self, caller: str, account: str) -> bool:
        return caller == account or (account, caller) in self.operators

    @rule(controller=staker, operator=staker, approved=st.booleans())
    def set_operator(self, controller: str, operator: str, approved: bool) -> None:
        with boa.env.prank(controller):
            if operator == controller:
                with boa.reverts("vPHA: cannot operate for yourself"):
                    self.vault.setOperator(operator, approved)
                return
            assert self.vault.setOperator(operator, approved) is True
        if approved:
            self.operators.add((controller, operator))
        else:
            self.operators.discard((controller, operator))
        assert self.vault.isOperator(controller, operator) == approved

    @rule(
        target=requests,
        owner=staker,
        controller=maybe_staker,
        caller=maybe_staker,
        fraction=fraction_st,
    )
    def request(
        self, owner: str, controller: str | None, caller: str | None, fraction: Fraction
    ) -> Any:
        controller = controller or owner
        caller = caller or owner
        shares = int(self.vault.balanceOf(owner) * fraction)
        expected = self.vault.convertToAssets(shares)
        full = self.vault.openRequestCount(controller) >= self.vault.maxOpenRequests()
        with boa.env.prank(caller):
            if shares == 0:
                with boa.reverts("vPHA: zero shares"):
                    self.vault.requestRedeem(shares, controller, owner)
                return None
            if not self._acts_for(caller, controller):
                event("request refused: not the controller's operator")
                with boa.reverts(NOT_CONTROLLER):
                    self.vault.requestRedeem(shares, controller, owner)
                return None
            if not self._acts_for(caller, owner):
                with boa.reverts("vPHA: insufficient allowance"):  # nobody approves here
                    self.vault.requestRedeem(shares, controller, owner)
                return None
            if full:
                with boa.reverts("vPHA: too many open unlock requests"):
                    self.vault.requestRedeem(shares, controller, owner)
                return None
            if expected == 0:
                with boa.reverts("vPHA: shares worth less than one wei"):
                    self.vault.requestRedeem(shares, controller, owner)
                return None
            rid = self.vault.requestRedeem(shares, controller, owner)
        controller_, assets, shares_, claimable_at, status = self.vault.redeemRequest(rid)
        assert (controller_, assets, shares_, status) == (controller, expected, shares, 1)
        assert claimable_at == boa.env.evm.patch.timestamp + self.vault.unlockPeriod()
        self.open[rid] = Request(rid, controller, assets, shares, claimable_at, assets)
        event("request queued" if caller == owner == controller else "request queued by another")
        return rid

    @rule(rid=consumes(requests))
    def cancel(self, rid: int | None) -> None:
        if rid is not None and rid in self.open:
            self._cancel(self.open.pop(rid))

    @rule(who=staker)
    def cancel_oldest(self, who: str) -> None:
        ids = self.vault.openRequests(who)
        if ids:
            self._cancel(self.open.pop(ids[0]))

    def _cancel(self, req: Request) -> None:
        staked = self.vault.totalAssets()
        supply = self.vault.totalSupply()
        minted = -(-req.assets * (supply + VIRTUAL_SHARES) // (staked + 1))
        needed = -(-minted * (staked + 1) // (supply + VIRTUAL_SHARES))
        gap = needed - req.assets
        covered = gap == 0 or self.vault.rewardReserve() >= gap or self.vault.treasuryOwed() >= gap
        # What the others would carry unpaid, times (supply + V + minted): refused from 1 wei.
        carried = minted * (staked + 1) - req.assets * (supply + VIRTUAL_SHARES)
        old_price = price(self.vault)
        balance = self.vault.balanceOf(req.controller)
        if not covered and carried >= supply + VIRTUAL_SHARES + minted:
            event("cancel refused: rounding worth a wei or more, nothing pays it")
            self.open[req.rid] = req  # still pending, still owed in full
            refused = boa.reverts("vPHA: cancel rounding exceeds the reserve")
            with boa.env.prank(req.controller), refused:
                self.vault.cancelRedeemRequest(req.rid)
            return
        with boa.env.prank(req.controller):
            assert self.vault.cancelRedeemRequest(req.rid) == minted
        assert self.vault.balanceOf(req.controller) == balance + minted
        # Cancelling loses nothing: the new shares are worth at least the queued PHA.
        assert self.vault.convertToAssets(minted) >= req.assets
        event(f"cancel: rounding gap {min(gap, 2)}, {'paid' if covered else 'NOT paid'}")
        if not covered:
            # The documented exception: others carry less than one wei in total.
            loss = (old_price - price(self.vault)) * (supply + VIRTUAL_SHARES)
            assert loss < 1
            self.diluted = True

    def _paid(self, req: Request, assets: int) -> None:
        """Book a payment on `req`; a request closed by it has paid exactly its fixed PHA."""
        req.paid += assets
        if req.rid not in self.open:
            assert req.paid == req.fixed

    @rule(
        controller=staker,
        by_operator=st.booleans(),
        receiver=maybe_staker,
        fraction=st.fractions(min_value=Fraction(1, 1000), max_value=1, max_denominator=10**6),
        in_assets=st.booleans(),
    )
    def erc7540_claim_due(
        self,
        controller: str,
        by_operator: bool,
        receiver: str | None,
        fraction: Fraction,
        in_assets: bool,
    ) -> None:
        """Wait until the controller's oldest-maturing request is due, then claim part or
        all of what is due, by the controller or one of its operators."""
        operators = sorted(o for c, o in self.operators if c == controller)
        caller = operators[0] if by_operator and operators else controller
        self.erc7540_claim(controller, caller, receiver, fraction, in_assets, False, True)

    @rule(
        controller=staker,
        caller=maybe_staker,
        receiver=maybe_staker,
        fraction=fraction_st,
        in_assets=st.booleans(),
        beyond=st.integers(0, 3).map(lambda n: n == 0),
        wait=st.booleans(),
    )
    def erc7540_claim(
        self,
        controller: str,
        caller: str | None,
        receiver: str | None,
        fraction: Fraction,
        in_assets: bool,
        beyond: bool,
        wait: bool,
    ) -> None:
        """redeem(shares) or withdraw(assets) over the controller's due requests, after
        waiting (if `wait`) until the oldest-maturing one is due; any caller, any amount."""
        caller = caller or controller
        receiver = receiver or controller
        now = boa.env.evm.patch.timestamp
        mine = [r.claimable_at for r in self.open.values() if r.controller == controller]
        if wait and mine and min(mine) > now:
            boa.env.time_travel(seconds=min(mine) - now)
            now = min(mine)
        due = sorted(
            (r for r in self.open.values() if r.controller == controller and r.claimable_at <= now),
            key=lambda r: r.rid,
        )
        total = sum(r.assets if in_assets else r.shares for r in due)
        amount = total + 1 if beyond else int(total * fraction)
        claim = self.vault.withdraw if in_assets else self.vault.redeem
        with boa.env.prank(caller):
            if amount == 0:
                with boa.reverts("vPHA: zero amount"):
                    claim(amount, receiver, controller)
                return
            if not self._acts_for(caller, controller):
                event("erc7540 claim refused: not the controller's operator")
                with boa.reverts(NOT_CONTROLLER):
                    claim(amount, receiver, controller)
                return
            if beyond:
                event("erc7540 claim refused: beyond claimable")
                with boa.reverts("vPHA: exceeds claimable requests"):
                    claim(amount, receiver, controller)
                return
            # The model: oldest first, the last one touched split.
            left, paid_assets, paid_shares = amount, 0, 0
            payments: list[tuple[Request, int]] = []
            for req in due:
                if left == 0:
                    break
                whole = req.assets if in_assets else req.shares
                if left >= whole:
                    part_assets, part_shares = req.assets, req.shares
                    left -= whole
                    del self.open[req.rid]
                elif in_assets:
                    part_assets = left
                    part_shares = min(-(-req.shares * left // req.assets), req.shares - 1)
                    left = 0
                else:
                    part_assets, part_shares = req.assets * left // req.shares, left
                    left = 0
                req.assets -= part_assets
                req.shares -= part_shares
                paid_assets += part_assets
                paid_shares += part_shares
                payments.append((req, part_assets))
            before = self.pha.balanceOf(receiver)
            result = claim(amount, receiver, controller)
        assert result == (paid_shares if in_assets else paid_assets)
        assert self.pha.balanceOf(receiver) == before + paid_assets
        for req, assets in payments:
            self._paid(req, assets)
            if req.rid in self.open:
                assert self.vault.redeemRequest(req.rid)[1:3] == (req.assets, req.shares)
                event("erc7540 claim split a request")
        event(f"erc7540 claim by {'operator' if caller != controller else 'controller'}")

    @rule(rid=requests)
    def claim(self, rid: int | None) -> None:
        if rid is None or rid not in self.open:
            return
        req = self.open[rid]
        now = boa.env.evm.patch.timestamp
        with boa.env.prank(req.controller):
            if now < req.claimable_at:
                event("claim refused: too early")
                with boa.reverts("vPHA: unlock period not over"):
                    self.vault.claim(rid)
                return
            before = self.pha.balanceOf(req.controller)
            assert self.vault.claim(rid) == req.assets
        assert self.pha.balanceOf(req.controller) == before + req.assets
        del self.open[rid]
        self._paid(req, req.assets)
        event("claim paid")

    @rule(who=staker)
    def claim_due(self, who: str) -> None:
        """Claim every request of `who` whose unlock period is over (the CLI's claim-all)."""
        now = boa.env.evm.patch.timestamp
        due = [r for r in self.open.values() if r.controller == who and r.claimable_at <= now]
        before = self.pha.balanceOf(who)
        with boa.env.prank(who):
            for req in due:
                assert self.vault.claim(req.rid) == req.assets
                del self.open[req.rid]
                self._paid(req, req.assets)
        assert self.pha.balanceOf(who) == before + sum(r.assets for r in due)
        if due:
            event("claim paid")

    @rule(who=staker)
    def wait_until_due_and_claim(self, who: str) -> None:
        mine = [r.claimable_at for r in self.open.values() if r.controller == who]
        if not mine:
            return
        now = boa.env.evm.patch.timestamp
        if min(mine) > now:
            boa.env.time_travel(seconds=min(mine) - now)
        self.claim_due(who)

    # --- time, rewards, governance ------------------------------------------------

    @rule(seconds=st.one_of(st.integers(1, 3600), st.integers(DAY, 30 * DAY), st.just(21 * DAY)))
    def wait(self, seconds: int) -> None:
        boa.env.time_travel(seconds=seconds)

    @rule(amount=assets_st)
    def fund(self, amount: int) -> None:
        with boa.env.prank(GOV):
            self.vault.fundRewards(amount)

    @rule(rate=st.one_of(st.just(0), st.integers(1, 10**6), st.integers(1, 10 * PHA)))
    def set_rate(self, rate: int) -> None:
        with boa.env.prank(GOV):
            self.vault.setRewardRate(rate)

    @rule(bps=st.integers(0, 10_000))
    def set_treasury_share(self, bps: int) -> None:
        with boa.env.prank(GOV):
            self.vault.setTreasuryShareBps(bps)

    @rule(period=st.sampled_from([0, 60, DAY, 21 * DAY]))
    def set_unlock_period(self, period: int) -> None:
        with boa.env.prank(GOV):
            self.vault.setUnlockPeriod(period)

    @rule()
    def release_treasury(self) -> None:
        owed = self.vault.treasuryOwed()
        assert self.vault.releaseTreasury() == owed

    # --- invariants --------------------------------------------------------------

    @invariant()
    def solvent_with_exact_accounting(self) -> None:
        held = self.pha.balanceOf(self.vault.address)
        total = self.vault.totalAssets()
        pending = self.vault.pendingAssets()
        owed_out = pending + self.vault.rewardReserve() + self.vault.treasuryOwed()
        assert held == total + owed_out
        assert self.vault.convertToAssets(self.vault.totalSupply()) <= total
        assert pending == sum(r.assets for r in self.open.values())

    @invariant()
    def open_lists_match(self) -> None:
        now = boa.env.evm.patch.timestamp
        for account in STAKERS:
            mine = [r for r in self.open.values() if r.controller == account]
            expected = sorted(r.rid for r in mine)
            assert list(self.vault.openRequests(account)) == expected
            assert self.vault.openRequestCount(account) == len(expected)
            due = [r for r in mine if r.claimable_at <= now]
            assert self.vault.maxRedeem(account) == sum(r.shares for r in due)
            assert self.vault.maxWithdraw(account) == sum(r.assets for r in due)
            assert self.vault.claimableRedeemRequest(0, account) == sum(r.shares for r in due)
            locked = sum(r.shares for r in mine if r.claimable_at > now)
            assert self.vault.pendingRedeemRequest(0, account) == locked

    @invariant()
    def price_never_drops(self) -> None:
        now = price(self.vault)
        if not self.diluted:
            assert now >= self.last_price
        self.diluted = False
        self.last_price = now


VaultMoney.TestCase.settings = settings(
    max_examples=100,
    stateful_step_count=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
TestVaultMoney = VaultMoney.TestCase
