"""Stateful property test of ComputeRegistry's collateral accounting, on real vPHA (the
Vault over PHA).

Random sequences of deposits, withdrawals, worker registrations, re-attestations,
deregistrations, releases, slashes and time jumps run against the contract and against a
small Python model of the rules. After every step:

- vPHA held by the registry == sum over providers of (free + locked + cooling);
- each provider's withdrawals never exceed its deposits minus slashes (exactly:
  withdrawn + collateral == deposited - slashed);
- locked >= what its registered workers require, unless the provider was slashed;
- a frozen provider's collateral never leaves the registry except by slash (its own vPHA
  balance never grows while it is frozen, its collateral shrinks only by what is slashed),
  and no freeze lasts longer than the maximum in force when the guardian made it;
- the contract agrees with the model on every balance and on which workers are active,
  and a call reverts exactly when the model says it must.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import boa
import pytest
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
from registry_world import DAY, PHA_SOURCE, REGISTRY_SOURCE, VAULT_SOURCE, make_vault_world

PROVIDERS = [f"0x{i:040x}" for i in (0xA1, 0xA2, 0xA3)]
MODELS = [0, 1, 2, 3]
#: Amounts are drawn in 2**-20 vPHA steps so they include odd share counts.
STEPS_PER_VPHA = 2**20
START_BALANCE_VPHA = 20_000
COOLDOWN = 7 * DAY
MAX_FREEZES = [DAY, 3 * DAY, 14 * DAY]
GUARDIAN = "0x" + "6a" * 20


@dataclass
class ProviderModel:
    registered: bool = False
    collateral: int = 0
    locked: int = 0
    required: int = 0
    cooling: int = 0
    cooldown_end: int = 0
    deposited: int = 0
    withdrawn: int = 0
    slashed: int = 0
    frozen_until: int = 0
    freeze_bound: int = 0  # start + maximum of the last freeze the guardian made

    def frozen(self, now: int) -> bool:
        return now < self.frozen_until

    def matured(self, now: int) -> bool:
        return self.cooling > 0 and now >= self.cooldown_end

    def free(self) -> int:
        return self.collateral - self.locked - self.cooling


@dataclass
class WorkerModel:
    key: str
    provider: str
    model: int
    count: int
    expiry: int
    collateral: int
    registered: bool = True


@dataclass
class Ledger:
    providers: dict[str, ProviderModel] = field(
        default_factory=lambda: {p: ProviderModel() for p in PROVIDERS}
    )
    workers: list[WorkerModel] = field(default_factory=list)
    max_freeze: int = 14 * DAY


class RegistryAccounting(RuleBasedStateMachine):
    @initialize()
    def deploy(self) -> None:
        self._anchor = boa.env.anchor()
        self._anchor.__enter__()
        self.world = make_vault_world(
            compiled(REGISTRY_SOURCE), compiled(PHA_SOURCE), compiled(VAULT_SOURCE)
        )
        self.r = self.world.registry
        self.t = self.world.token
        self.unit = self.world.unit
        self.start_balance = START_BALANCE_VPHA * self.unit
        self.m = Ledger()
        for p in PROVIDERS:
            self.world.mint_shares(p, self.start_balance)
            with boa.env.prank(p):
                self.t.approve(self.r.address, 2**256 - 1)
        # Two providers start registered and funded so that sequences reach workers; the
        # third starts from nothing to exercise the unregistered paths.
        for p in PROVIDERS[:2]:
            self.register_provider(p)
            self.deposit(p, 5_000 * STEPS_PER_VPHA)
        with boa.env.prank(self.world.owner):
            self.r.setGuardian(GUARDIAN)
        self.seen: dict[str, tuple[bool, int, int, int]] = {}
        self.remember()

    def teardown(self) -> None:
        if hasattr(self, "_anchor"):
            self._anchor.__exit__(None, None, None)

    # --- helpers -------------------------------------------------------------------

    def now(self) -> int:
        return self.world.now()

    def _release(self, pm: ProviderModel) -> None:
        if pm.matured(self.now()):
            pm.cooling = 0

    # --- rules ---------------------------------------------------------------------

    @rule(p=st.sampled_from(PROVIDERS))
    def register_provider(self, p: str) -> None:
        pm = self.m.providers[p]
        with boa.env.prank(p):
            if pm.registered:
                with boa.reverts("registry: provider already registered"):
                    self.r.registerProvider()
                return
            self.r.registerProvider()
        pm.registered = True

    @rule(p=st.sampled_from(PROVIDERS), steps=st.integers(1, 4_000 * STEPS_PER_VPHA))
    def deposit(self, p: str, steps: int) -> None:
        pm = self.m.providers[p]
        amount = steps * self.unit // STEPS_PER_VPHA
        with boa.env.prank(p):
            if not pm.registered:
                with boa.reverts("registry: provider not registered"):
                    self.r.depositCollateral(amount)
                return
            self.r.depositCollateral(amount)
        pm.collateral += amount
        pm.deposited += amount
        pm.locked += min(pm.required - pm.locked, amount)

    @rule(p=st.sampled_from(PROVIDERS), fraction=st.floats(0.0, 1.2), dust=st.integers(0, 2))
    def withdraw(self, p: str, fraction: float, dust: int) -> None:
        pm = self.m.providers[p]
        available = pm.free() + (pm.cooling if pm.matured(self.now()) else 0)
        amount = max(1, int(available * fraction) + dust)
        with boa.env.prank(p):
            if pm.frozen(self.now()):
                with boa.reverts("registry: provider frozen"):
                    self.r.withdrawCollateral(amount)
                event("withdrawal refused: frozen")
                return
            if amount > available:
                with boa.reverts("registry: exceeds free collateral"):
                    self.r.withdrawCollateral(amount)
                return
            self.r.withdrawCollateral(amount)
        self._release(pm)
        pm.collateral -= amount
        pm.withdrawn += amount

    @rule(
        p=st.sampled_from(PROVIDERS),
        model=st.sampled_from(MODELS),
        count=st.integers(0, 3),
        ttl=st.integers(1, 3 * DAY),
    )
    def register_worker(self, p: str, model: int, count: int, ttl: int) -> None:
        pm = self.m.providers[p]
        need = self.r.acceleratorType(model).collateral * max(count, 1)
        a = self.world.attestation(p, model=model, count=count, ttl=ttl)
        if not pm.registered:
            expected = "registry: provider not registered"
        elif pm.locked < pm.required:
            expected = "registry: provider has a collateral shortfall"
        elif need > pm.free():
            expected = "registry: insufficient free collateral"
        else:
            expected = None
        if expected:
            with boa.reverts(expected):
                self.world.register(a)
            return
        self.world.register(a)
        event("worker registered")
        pm.locked += need
        pm.required += need
        self.m.workers.append(WorkerModel(a.worker, p, model, count, a.expiry, need))

    @precondition(lambda self: any(w.registered for w in self.m.workers))
    @rule(data=st.data(), ttl=st.integers(1, 3 * DAY))
    def reattest(self, data: st.DataObject, ttl: int) -> None:
        w = data.draw(st.sampled_from([w for w in self.m.workers if w.registered]))
        a = self.world.attestation(w.provider, w.key, model=w.model, count=w.count, ttl=ttl)
        if a.expiry <= w.expiry:
            with boa.reverts("registry: attestation older than the last one"):
                self.world.reattest(a)
            return
        self.world.reattest(a)
        event("worker re-attested")
        w.expiry = a.expiry

    @precondition(lambda self: any(w.registered for w in self.m.workers))
    @rule(data=st.data())
    def deregister(self, data: st.DataObject) -> None:
        w = data.draw(st.sampled_from([w for w in self.m.workers if w.registered]))
        pm = self.m.providers[w.provider]
        with boa.env.prank(w.provider):
            self.r.deregisterWorker(w.key)
        shortfall = pm.required - pm.locked
        moved = w.collateral - min(w.collateral, shortfall)
        pm.required -= w.collateral
        pm.locked -= moved
        pm.cooling += moved
        pm.cooldown_end = self.now() + COOLDOWN
        w.registered = False
        event("worker deregistered" + (" in shortfall" if shortfall else ""))

    @rule(p=st.sampled_from(PROVIDERS))
    def release(self, p: str) -> None:
        pm = self.m.providers[p]
        with boa.env.prank(p):
            if pm.frozen(self.now()):
                with boa.reverts("registry: provider frozen"):
                    self.r.releaseCollateral()
                event("release refused: frozen")
                return
            if pm.cooling == 0:
                with boa.reverts("registry: nothing cooling"):
                    self.r.releaseCollateral()
                return
            if not pm.matured(self.now()):
                with boa.reverts("registry: cooldown not over"):
                    self.r.releaseCollateral()
                return
            self.r.releaseCollateral()
        event("collateral released")
        pm.cooling = 0

    @rule(
        p=st.sampled_from(PROVIDERS),
        depth=st.sampled_from(["free", "cooling", "locked", "beyond"]),
        fraction=st.floats(0.0, 1.0),
    )
    def slash(self, p: str, depth: str, fraction: float) -> None:
        """Aim the slash at a bucket so that every branch of the slash order is reached."""
        pm = self.m.providers[p]
        before = {
            "free": 0,
            "cooling": pm.free(),
            "locked": pm.free() + pm.cooling,
            "beyond": pm.collateral,
        }[depth]
        size = {"free": pm.free(), "cooling": pm.cooling, "locked": pm.locked, "beyond": 3}[depth]
        amount = before + max(1, int(size * fraction))
        with boa.env.prank(self.world.owner):
            if amount > pm.collateral:
                with boa.reverts("registry: exceeds collateral"):
                    self.r.slash(p, amount, "property test")
                return
            self.r.slash(p, amount, "property test")
        rest = amount - min(amount, pm.free())
        from_cooling = min(rest, pm.cooling)
        pm.cooling -= from_cooling
        pm.locked -= rest - from_cooling
        pm.collateral -= amount
        pm.slashed += amount
        if pm.frozen(self.now()):
            pm.frozen_until = self.now()
            event("slash ended a freeze")
        event("slash reached locked" if pm.locked < pm.required else "slash")

    @rule(p=st.sampled_from(PROVIDERS), outsider=st.booleans())
    def freeze(self, p: str, outsider: bool) -> None:
        pm, now = self.m.providers[p], self.now()
        caller = PROVIDERS[0] if outsider else GUARDIAN
        if outsider:
            expected = "registry: caller is not the guardian"
        elif not pm.registered:
            expected = "registry: provider not registered"
        elif pm.frozen(now):
            expected = "registry: provider already frozen"
        elif pm.frozen_until and now < pm.frozen_until + self.m.max_freeze:
            expected = "registry: freeze cool-off not over"
        else:
            expected = None
        with boa.env.prank(caller):
            if expected:
                with boa.reverts(expected):
                    self.r.freeze(p, "property test")
                return
            self.r.freeze(p, "property test")
        event("frozen")
        pm.frozen_until = pm.freeze_bound = now + self.m.max_freeze

    @rule(p=st.sampled_from(PROVIDERS), caller=st.sampled_from(["owner", "guardian", "other"]))
    def unfreeze(self, p: str, caller: str) -> None:
        pm = self.m.providers[p]
        who = {"owner": self.world.owner, "guardian": GUARDIAN, "other": p}[caller]
        with boa.env.prank(who):
            if caller == "other":
                with boa.reverts("registry: caller is not the owner or guardian"):
                    self.r.unfreeze(p)
                return
            if not pm.frozen(self.now()):
                with boa.reverts("registry: provider not frozen"):
                    self.r.unfreeze(p)
                return
            self.r.unfreeze(p)
        event("unfrozen")
        pm.frozen_until = self.now()

    @rule(seconds=st.sampled_from(MAX_FREEZES))
    def set_max_freeze(self, seconds: int) -> None:
        with boa.env.prank(self.world.owner):
            self.r.setMaxFreeze(seconds)
        self.m.max_freeze = seconds

    @rule(seconds=st.sampled_from([1, 3_600, DAY, 7 * DAY, 14 * DAY]))
    def time_passes(self, seconds: int) -> None:
        boa.env.time_travel(seconds=seconds)

    # --- invariants ----------------------------------------------------------------

    def remember(self) -> None:
        for p in PROVIDERS:
            self.seen[p] = (
                bool(self.r.isFrozen(p)),
                int(self.t.balanceOf(p)),
                int(self.r.provider(p).collateral),
                self.m.providers[p].slashed,
            )

    @invariant()
    def frozen_collateral_leaves_only_by_slash(self) -> None:
        """Read from the chain, not the model: a provider frozen before this step gained
        no vPHA in it, and its collateral fell by no more than it was slashed."""
        for p in PROVIDERS:
            was_frozen, balance, collateral, slashed = self.seen[p]
            if was_frozen:
                assert self.t.balanceOf(p) <= balance
                slashed_now = self.m.providers[p].slashed - slashed
                assert self.r.provider(p).collateral >= collateral - slashed_now
        self.remember()

    @invariant()
    def no_freeze_outlives_its_maximum(self) -> None:
        now = self.now()
        for p in PROVIDERS:
            pm = self.m.providers[p]
            assert self.r.frozenUntil(p) == pm.frozen_until
            assert self.r.frozenUntil(p) <= pm.freeze_bound
            assert self.r.isFrozen(p) == pm.frozen(now)
            if self.r.isFrozen(p):
                assert now < pm.freeze_bound
                assert self.r.freeCollateral(p) == 0

    @invariant()
    def registry_holds_every_providers_collateral(self) -> None:
        total = 0
        for p in PROVIDERS:
            info = self.r.provider(p)
            assert info.collateral >= info.locked + info.cooling
            free = info.collateral - info.locked - info.cooling
            total += free + info.locked + info.cooling
        assert self.t.balanceOf(self.r.address) == total

    @invariant()
    def withdrawals_bounded_by_deposits_minus_slashes(self) -> None:
        for p in PROVIDERS:
            pm = self.m.providers[p]
            assert pm.withdrawn <= pm.deposited - pm.slashed
            assert self.t.balanceOf(p) == self.start_balance - pm.deposited + pm.withdrawn
            assert pm.withdrawn + self.r.provider(p).collateral == pm.deposited - pm.slashed

    @invariant()
    def locked_covers_workers_unless_slashed(self) -> None:
        for p in PROVIDERS:
            info = self.r.provider(p)
            owed = sum(w.collateral for w in self.m.workers if w.provider == p and w.registered)
            assert info.required == owed
            if self.m.providers[p].slashed == 0:
                assert info.locked == info.required
            assert info.locked <= info.required

    @invariant()
    def contract_matches_model(self) -> None:
        now = self.now()
        for p in PROVIDERS:
            pm, info = self.m.providers[p], self.r.provider(p)
            assert (info.collateral, info.locked, info.cooling, info.required) == (
                pm.collateral,
                pm.locked,
                pm.cooling,
                pm.required,
            )
        for w in self.m.workers:
            pm = self.m.providers[w.provider]
            active = w.registered and w.expiry > now and pm.locked >= pm.required
            assert self.r.isActive(w.key) == active
            weight = self.r.rewardWeight(w.key)
            assert (weight > 0) == active


TestRegistryAccounting = RegistryAccounting.TestCase
TestRegistryAccounting.settings = settings(
    max_examples=25,
    stateful_step_count=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)


def test_invariant_check_detects_a_mismatch() -> None:
    """The model is not vacuous: a deposit the model does not know about is caught."""
    machine = RegistryAccounting()
    try:
        machine.deploy()
        machine.register_provider(PROVIDERS[0])
        with boa.env.prank(PROVIDERS[0]):
            machine.r.depositCollateral(5)
        with pytest.raises(AssertionError):
            machine.contract_matches_model()
    finally:
        machine.teardown()


def test_frozen_invariant_detects_a_withdrawal() -> None:
    """The freeze invariant is not vacuous: collateral that left a frozen provider (here
    by a withdrawal the guardian lifted the freeze for, unknown to the model) is caught."""
    machine = RegistryAccounting()
    try:
        machine.deploy()
        p = PROVIDERS[0]
        with boa.env.prank(GUARDIAN):
            machine.r.freeze(p, "detector")
        machine.remember()
        with boa.env.prank(GUARDIAN):
            machine.r.unfreeze(p)
        with boa.env.prank(p):
            machine.r.withdrawCollateral(5)
        with pytest.raises(AssertionError):
            machine.frozen_collateral_leaves_only_by_slash()
    finally:
        machine.teardown()
