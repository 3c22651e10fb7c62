"""Stateful property test of RewardPool's money, on the real PHA token and vPHA vault.

Random sequences of time jumps, root posts (with random allocations, some providers
earning nothing in an epoch as if below the minimum uptime or re-registered), vetoes,
finalizations, claims as PHA or vPHA (including repeated and stale claims), fundings and
governance changes of the split and the budget schedule run against the contract and a
Python model. After every step:

- per epoch: treasury + stakers + providers' allocation == the budget fixed at posting
  <= the scheduled budget, and the stakers' part is exactly the split of that budget;
- cumulative totals never decrease: a post with a smaller total reverts, and every
  provider's finalized cumulative only grows;
- nobody claims twice: a claim pays exactly cumulative - claimed, a repeated or stale
  claim reverts, and `claimed` matches the model;
- a provider's rewards survive any number of epochs in which it earned nothing;
- total paid out (treasury, vault reserve, claims) <= total funded, and the pool holds
  funded - paid, which covers what finalized roots owe plus what posted roots reserved.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import boa
from compiled import compiled
from hypothesis import HealthCheck, event, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule
from pool_kit import (
    FUNDED,
    FUNDER,
    GUARDIAN,
    OWNER,
    PHA,
    PROVIDERS,
    TREASURY,
    RewardTree,
    build_tree,
    make_world,
    post,
)

BPS = 10_000
PROVS = PROVIDERS[:4]


@dataclass
class Posted:
    epoch: int
    tree: RewardTree | None
    values: dict[str, int]
    total: int
    budget: int
    scheduled: int
    stakers_bps: int
    posted_at: int


@dataclass
class Model:
    funded: int = FUNDED
    paid_treasury: int = 0
    paid_stakers: int = 0
    paid_claims: int = 0
    pending: list[Posted] = field(default_factory=list)
    finalized: list[Posted] = field(default_factory=list)
    claimed: dict[str, int] = field(default_factory=lambda: dict.fromkeys(PROVS, 0))

    def last_values(self) -> dict[str, int]:
        chain = self.finalized + self.pending
        return dict(chain[-1].values) if chain else dict.fromkeys(PROVS, 0)

    def finalized_values(self) -> dict[str, int]:
        return dict(self.finalized[-1].values) if self.finalized else dict.fromkeys(PROVS, 0)


class PoolMachine(RuleBasedStateMachine):
    @initialize(funded=st.sampled_from([FUNDED, 2_500 * PHA, 700 * PHA]))
    def deploy(self, funded: int) -> None:
        self._anchor = boa.env.anchor()
        self._anchor.__enter__()
        self.w = make_world(
            compiled("PHA"), compiled("Vault"), compiled("RewardPool"), funded=funded
        )
        self.pool, self.pha, self.vault = self.w.pool, self.w.pha, self.w.vault
        self.m = Model(funded=funded)
        self.treasury0 = self.pha.balanceOf(TREASURY)
        self.reserve0 = self.vault.rewardReserve()

    def teardown(self) -> None:
        if hasattr(self, "_anchor"):
            self._anchor.__exit__(None, None, None)

    def now(self) -> int:
        return boa.env.evm.patch.timestamp

    # ---------------------------------------------------------------- rules

    @rule(seconds=st.sampled_from([1, 600, 3_599, 3_600, 3_601, 7_200, 20_000]))
    def advance(self, seconds: int) -> None:
        boa.env.time_travel(seconds=seconds)

    @rule(
        weights=st.lists(st.integers(0, 1_000), min_size=4, max_size=4),
        slack=st.integers(0, 1_000),
    )
    def post_root(self, weights: list[int], slack: int) -> None:
        pool = self.pool
        epoch = pool.nextEpoch()
        if epoch >= pool.currentEpoch():
            with boa.reverts("RewardPool: epoch not over"):
                post(pool, epoch, None)
            return
        scheduled = pool.scheduledBudget(epoch)
        budget = pool.epochBudget(epoch)
        held = self.pha.balanceOf(pool.address)
        assert budget == min(scheduled, max(0, held - pool.reserved() - pool.owed()))
        part = pool.split(budget)[2]
        stakers_bps = pool.splitBps()[1]
        values = self.m.last_values()
        denominator = sum(weights) + slack
        if denominator:
            for p, w in zip(PROVS, weights, strict=True):
                values[p] += part * w // denominator
        total = sum(values.values())
        tree = build_tree({p: v for p, v in values.items() if v}) if total else None
        post(pool, epoch, tree)
        self.m.pending.append(
            Posted(epoch, tree, values, total, budget, scheduled, stakers_bps, self.now())
        )

    @rule(extra=st.integers(1, 10 * PHA))
    def post_too_much_or_less(self, extra: int) -> None:
        pool = self.pool
        epoch = pool.nextEpoch()
        if epoch >= pool.currentEpoch():
            return
        part = pool.split(pool.epochBudget(epoch))[2]
        values = self.m.last_values()
        over = dict(values)
        over[PROVS[0]] += part + extra
        with boa.reverts("RewardPool: total above providers part"):
            post(pool, epoch, build_tree(over))
        if sum(values.values()) > 0:
            under = {p: v for p, v in values.items() if v}
            first = next(iter(under))
            under[first] -= min(under[first], extra)
            if sum(under.values()) < sum(values.values()):
                with boa.reverts("RewardPool: total decreased"):
                    post(
                        pool, epoch, build_tree({p: v for p, v in under.items() if v} or {first: 0})
                    )

    @precondition(lambda self: self.m.pending)
    @rule(pick=st.integers(0, 10), by_owner=st.booleans())
    def veto(self, pick: int, by_owner: bool) -> None:
        index = pick % len(self.m.pending)
        target = self.m.pending[index]
        who = OWNER if by_owner else GUARDIAN
        if self.now() >= target.posted_at + self.pool.challengeWindow():
            with boa.env.prank(who), boa.reverts("RewardPool: window closed"):
                self.pool.vetoRoot(target.epoch)
            return
        with boa.env.prank(who):
            self.pool.vetoRoot(target.epoch)
        del self.m.pending[index:]
        event("root vetoed")

    @rule()
    def finalize(self) -> None:
        pool = self.pool
        if not self.m.pending:
            with boa.reverts("RewardPool: not posted"):
                pool.finalize(pool.nextEpochToFinalize())
            return
        first = self.m.pending[0]
        if self.now() < first.posted_at + pool.challengeWindow():
            with boa.reverts("RewardPool: challenge window open"):
                pool.finalize(first.epoch)
            return
        treasury = self.pha.balanceOf(TREASURY)
        reserve = self.vault.rewardReserve()
        pool.finalize(first.epoch)
        previous = self.m.finalized[-1].total if self.m.finalized else 0
        allocated = first.total - previous
        stakers = first.budget * first.stakers_bps // BPS
        paid_treasury = self.pha.balanceOf(TREASURY) - treasury
        paid_stakers = self.vault.rewardReserve() - reserve
        assert paid_stakers == stakers
        assert paid_treasury + paid_stakers + allocated == first.budget <= first.scheduled
        self.m.paid_treasury += paid_treasury
        self.m.paid_stakers += paid_stakers
        before = self.m.finalized_values()
        self.m.finalized.append(self.m.pending.pop(0))
        after = self.m.finalized_values()
        assert all(after[p] >= before[p] for p in PROVS)
        event("epoch finalized")

    @rule(which=st.integers(0, 3), as_vpha=st.booleans(), stale=st.booleans())
    def claim(self, which: int, as_vpha: bool, stale: bool) -> None:
        provider = PROVS[which]
        pool = self.pool
        posted = self.m.finalized
        if stale and len(posted) >= 2 and posted[-2].tree and posted[-2].values[provider]:
            old = posted[-2]
            if old.tree.root != posted[-1].tree.root:
                with boa.env.prank(provider), boa.reverts("RewardPool: invalid proof"):
                    pool.claim(provider, old.values[provider], old.tree.proof(provider), as_vpha)
                event("stale claim refused")
            return
        if not posted or posted[-1].tree is None or not posted[-1].values[provider]:
            return
        last = posted[-1]
        cumulative = last.values[provider]
        due = cumulative - self.m.claimed[provider]
        if due == 0:
            with boa.env.prank(provider), boa.reverts("RewardPool: nothing to claim"):
                pool.claim(provider, cumulative, last.tree.proof(provider), as_vpha)
            return
        pha_before = self.pha.balanceOf(provider)
        shares_before = self.vault.balanceOf(provider)
        shares = self.vault.previewDeposit(due)
        with boa.env.prank(provider):
            pool.claim(provider, cumulative, last.tree.proof(provider), as_vpha)
        if as_vpha:
            assert self.vault.balanceOf(provider) - shares_before == shares
            assert self.pha.balanceOf(provider) == pha_before
        else:
            assert self.pha.balanceOf(provider) - pha_before == due
        self.m.claimed[provider] = cumulative
        self.m.paid_claims += due
        event("claim paid")

    @rule(amount=st.integers(1, 5_000 * PHA))
    def fund(self, amount: int) -> None:
        with boa.env.prank(FUNDER):
            self.pool.fund(amount)
        self.m.funded += amount

    @rule(treasury=st.integers(0, BPS), stakers=st.integers(0, BPS))
    def set_split(self, treasury: int, stakers: int) -> None:
        stakers = min(stakers, BPS - treasury)
        with boa.env.prank(OWNER):
            self.pool.setSplit(treasury, stakers, BPS - treasury - stakers)

    @rule(budget=st.integers(0, 5_000 * PHA), half_life=st.integers(1, 30))
    def set_schedule(self, budget: int, half_life: int) -> None:
        with boa.env.prank(OWNER):
            self.pool.setBudgetSchedule(budget, half_life)

    @rule(length=st.sampled_from([1_800, 3_600, 5_400]))
    def set_epoch_length(self, length: int) -> None:
        current = self.pool.currentEpoch()
        with boa.env.prank(OWNER):
            self.pool.setEpochLength(length)
        assert self.pool.currentEpoch() >= current  # epochs never run backwards

    @rule(window=st.sampled_from([0, 600, 3_600, 7_200]))
    def set_challenge_window(self, window: int) -> None:
        with boa.env.prank(OWNER):
            self.pool.setChallengeWindow(window)

    # ---------------------------------------------------------------- invariants

    @invariant()
    def money_is_conserved(self) -> None:
        if not hasattr(self, "m"):
            return
        pool = self.pool
        paid = self.m.paid_treasury + self.m.paid_stakers + self.m.paid_claims
        assert paid <= self.m.funded
        held = self.pha.balanceOf(pool.address)
        assert held == self.m.funded - paid
        assert held >= pool.reserved() + pool.owed()
        assert pool.reserved() == sum(p.budget for p in self.m.pending)
        finalized_total = self.m.finalized[-1].total if self.m.finalized else 0
        assert pool.finalizedTotal() == finalized_total
        assert pool.owed() == finalized_total - sum(self.m.claimed.values())
        for p in PROVS:
            assert pool.claimed(p) == self.m.claimed[p]
        assert self.pha.balanceOf(TREASURY) - self.treasury0 == self.m.paid_treasury
        assert self.vault.rewardReserve() - self.reserve0 <= self.m.paid_stakers
        assert pool.nextEpoch() == pool.nextEpochToFinalize() + len(self.m.pending)


TestRewardPoolMoney = PoolMachine.TestCase
TestRewardPoolMoney.settings = settings(
    max_examples=40,
    stateful_step_count=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
