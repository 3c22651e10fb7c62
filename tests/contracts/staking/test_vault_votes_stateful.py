"""Stateful property test of vPHA voting power.

After any sequence of deposits (plain or depositAndDelegate, for oneself or another
receiver), transfers, unlock requests, cancels, delegations (including to the zero
address) and time jumps:

- each delegate's getVotes equals the sum of the balances delegated to it, so the sum
  of getVotes over all accounts equals the sum of balances of accounts that delegated
  (to anyone), and undelegated balances do not vote;
- getPastVotes and getPastTotalSupply return, for every past second the test saw, the
  values that were current at the end of that second;
- delegates() is what the model says: the last choice made with delegate(), or the
  receiver itself after a depositAndDelegate if it had never chosen.
"""

from __future__ import annotations

from fractions import Fraction

import boa
from compiled import compiled
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule
from vpha_kit import PHA, PHA_SOURCE, STAKERS, VAULT_SOURCE, ZERO, deploy_world

_PHA = compiled(PHA_SOURCE)
_VAULT = compiled(VAULT_SOURCE)

staker = st.sampled_from(STAKERS)
delegatee = st.sampled_from([*STAKERS, ZERO])
first_choice = st.one_of(st.none(), delegatee)  # None: never delegates at the start
fraction_st = st.fractions(min_value=0, max_value=1, max_denominator=1000)


class VaultVotes(RuleBasedStateMachine):
    @initialize(
        stakes=st.lists(
            st.integers(min_value=1, max_value=10**6 * PHA),
            min_size=len(STAKERS),
            max_size=len(STAKERS),
        ),
        delegatees=st.lists(first_choice, min_size=len(STAKERS), max_size=len(STAKERS)),
    )
    def deploy(self, stakes: list[int], delegatees: list[str | None]) -> None:
        self._anchor = boa.env.anchor()
        self._anchor.__enter__()
        self.pha, self.vault = deploy_world(_PHA, _VAULT)
        # the delegate each staker has, and whether it ever chose one itself
        self.delegate_of: dict[str, str] = dict.fromkeys(STAKERS, ZERO)
        self.chose: dict[str, bool] = dict.fromkeys(STAKERS, False)
        # Start from a staked, partly delegated population so every rule moves votes.
        for who, assets, to in zip(STAKERS, stakes, delegatees, strict=True):
            with boa.env.prank(who):
                self.vault.deposit(assets, who)
                if to is not None:
                    self.vault.delegate(to)
                    self.delegate_of[who], self.chose[who] = to, True
        # history[t] = (votes per staker, total supply) at the end of second t
        self.history: dict[int, tuple[dict[str, int], int]] = {}

    def teardown(self) -> None:
        if hasattr(self, "_anchor"):
            self._anchor.__exit__(None, None, None)

    @rule(who=staker, assets=st.integers(min_value=1, max_value=10**6 * PHA))
    def deposit(self, who: str, assets: int) -> None:
        with boa.env.prank(who):
            self.vault.deposit(assets, who)

    @rule(payer=staker, receiver=staker, assets=st.integers(min_value=1, max_value=10**6 * PHA))
    def deposit_and_delegate(self, payer: str, receiver: str, assets: int) -> None:
        votes_before = self.vault.getVotes(receiver)
        balance_before = self.vault.balanceOf(receiver)
        fresh = not self.chose[receiver] and self.delegate_of[receiver] == ZERO
        with boa.env.prank(payer):
            shares = self.vault.depositAndDelegate(assets, receiver)
        if fresh:
            self.delegate_of[receiver] = receiver
            # the receiver's whole balance, old and new, votes from this block
            assert self.vault.getVotes(receiver) == votes_before + balance_before + shares
        elif self.delegate_of[receiver] == receiver:
            assert self.vault.getVotes(receiver) == votes_before + shares

    @rule(src=staker, dst=staker, fraction=fraction_st)
    def transfer(self, src: str, dst: str, fraction: Fraction) -> None:
        with boa.env.prank(src):
            self.vault.transfer(dst, int(self.vault.balanceOf(src) * fraction))

    @rule(who=staker, to=delegatee)
    def delegate(self, who: str, to: str) -> None:
        with boa.env.prank(who):
            self.vault.delegate(to)
        self.delegate_of[who], self.chose[who] = to, True
        assert self.vault.delegates(who) == to

    @rule(who=staker, fraction=fraction_st, cancel=st.booleans())
    def request(self, who: str, fraction: Fraction, cancel: bool) -> None:
        shares = int(self.vault.balanceOf(who) * fraction)
        if self.vault.convertToAssets(shares) == 0 or self.vault.openRequestCount(who) >= 8:
            return
        with boa.env.prank(who):
            rid = self.vault.requestRedeem(shares, who, who)
            if cancel:
                self.vault.cancelRedeemRequest(rid)

    @rule(who=staker)
    def cancel_oldest(self, who: str) -> None:
        ids = self.vault.openRequests(who)
        if ids:
            with boa.env.prank(who):
                self.vault.cancelRedeemRequest(ids[0])

    @rule(seconds=st.integers(min_value=1, max_value=5 * 86400))
    def wait(self, seconds: int) -> None:
        boa.env.time_travel(seconds=seconds)

    @invariant()
    def votes_equal_delegated_balances(self) -> None:
        expected = dict.fromkeys(STAKERS, 0)
        delegated_total = 0
        for account in STAKERS:
            to = self.vault.delegates(account)
            assert to == self.delegate_of[account]
            if to != ZERO:
                balance = self.vault.balanceOf(account)
                expected[to] += balance
                delegated_total += balance
        votes = {a: self.vault.getVotes(a) for a in STAKERS}
        assert votes == expected
        assert sum(votes.values()) == delegated_total
        assert self.vault.getVotes(ZERO) == 0
        self.history[boa.env.evm.patch.timestamp] = (votes, self.vault.totalSupply())

    @invariant()
    def past_lookups_match_history(self) -> None:
        now = boa.env.evm.patch.timestamp
        past = sorted(t for t in self.history if t < now)
        # the oldest second and the latest few: enough to hit every search path cheaply
        for when in {*past[:1], *past[-4:]}:
            votes, supply = self.history[when]
            assert self.vault.getPastTotalSupply(when) == supply
            for account, amount in votes.items():
                assert self.vault.getPastVotes(account, when) == amount


VaultVotes.TestCase.settings = settings(
    max_examples=60,
    stateful_step_count=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
TestVaultVotes = VaultVotes.TestCase
