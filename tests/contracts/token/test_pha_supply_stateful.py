"""Stateful property test of PHA's supply invariant under the lifetime cap:
sum of balances == totalSupply <= totalMinted <= cap, and totalMinted only grows.

Random mints (some past the cap, some by non-minters, some by the Migrator named at
construction while the owner dismisses and reappoints it), transfers, transferFroms, burns
and burnFroms; each rule checks its own effect against a Python model (which counts every
mint, so a burn never makes room), and the invariants hold after every step. The
Migrator's dismissal bit shares the supply slot, so the invariants also show that no
supply arithmetic touches it and that it never leaks into totalSupply or totalMinted.
"""

from __future__ import annotations

from typing import Any

import boa
from compiled import compiled
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule
from vpha_kit import ACCOUNTS, PHA_SOURCE

CAP = 10**27
HOLDERS = [a.address for a in ACCOUNTS[2:6]]
OWNER = ACCOUNTS[0].address
MINTER = ACCOUNTS[1].address
MIGRATOR = ACCOUNTS[6].address

_DEPLOYER = compiled(PHA_SOURCE)

amounts = st.one_of(
    st.integers(min_value=0, max_value=10**6),
    st.integers(min_value=0, max_value=CAP),
    st.sampled_from([CAP, CAP // 2, CAP // 3 + 1]),
)
holder = st.sampled_from(HOLDERS)


class PHASupply(RuleBasedStateMachine):
    token: Any

    @initialize()
    def deploy(self) -> None:
        self._anchor = boa.env.anchor()
        self._anchor.__enter__()
        with boa.env.prank(OWNER):
            self.token = _DEPLOYER.deploy(MIGRATOR)
            self.token.setMinter(MINTER, True)
        self.balances = dict.fromkeys(HOLDERS, 0)
        self.minted = 0
        self.migrator_minter = True

    def teardown(self) -> None:
        if hasattr(self, "_anchor"):
            self._anchor.__exit__(None, None, None)

    @rule(to=holder, amount=amounts, by_minter=st.booleans())
    def mint(self, to: str, amount: int, by_minter: bool) -> None:
        caller = MINTER if by_minter else to
        with boa.env.prank(caller):
            if not by_minter:
                with boa.reverts("PHA: caller is not a minter"):
                    self.token.mint(to, amount)
            elif self.minted + amount > CAP:
                with boa.reverts("PHA: cap exceeded"):
                    self.token.mint(to, amount)
            else:
                self.token.mint(to, amount)
                self.balances[to] += amount
                self.minted += amount

    @rule(to=holder, amount=amounts)
    def migrator_mints(self, to: str, amount: int) -> None:
        with boa.env.prank(MIGRATOR):
            if not self.migrator_minter:
                with boa.reverts("PHA: caller is not a minter"):
                    self.token.mint(to, amount)
            elif self.minted + amount > CAP:
                with boa.reverts("PHA: cap exceeded"):
                    self.token.mint(to, amount)
            else:
                self.token.mint(to, amount)
                self.balances[to] += amount
                self.minted += amount

    @rule(allowed=st.booleans())
    def owner_sets_the_migrator(self, allowed: bool) -> None:
        with boa.env.prank(OWNER):
            self.token.setMinter(MIGRATOR, allowed)
        self.migrator_minter = allowed

    @rule(to=holder)
    def mint_the_rest(self, to: str) -> None:
        """Reach the cap exactly, so that later burns are followed by refused mints."""
        with boa.env.prank(MINTER):
            self.token.mint(to, CAP - self.minted)
            with boa.reverts("PHA: cap exceeded"):
                self.token.mint(to, 1)
        self.balances[to] += CAP - self.minted
        self.minted = CAP

    @rule(src=holder, dst=holder, fraction=st.fractions(0, 1), via_allowance=st.booleans())
    def transfer(self, src: str, dst: str, fraction: Any, via_allowance: bool) -> None:
        amount = int(self.balances[src] * fraction)
        if via_allowance:
            with boa.env.prank(src):
                self.token.approve(dst, amount)
            with boa.env.prank(dst):
                self.token.transferFrom(src, dst, amount)
            assert self.token.allowance(src, dst) == 0
        else:
            with boa.env.prank(src):
                self.token.transfer(dst, amount)
        self.balances[src] -= amount
        self.balances[dst] += amount

    @rule(src=holder, extra=st.integers(min_value=1, max_value=10))
    def overdraw(self, src: str, extra: int) -> None:
        with boa.env.prank(src), boa.reverts("PHA: transfer amount exceeds balance"):
            self.token.transfer(HOLDERS[0], self.balances[src] + extra)

    @rule(src=holder, fraction=st.fractions(0, 1))
    def burn(self, src: str, fraction: Any) -> None:
        amount = int(self.balances[src] * fraction)
        with boa.env.prank(src):
            self.token.burn(amount)
        self.balances[src] -= amount

    @rule(src=holder, spender=holder, fraction=st.fractions(0, 1))
    def burn_from(self, src: str, spender: str, fraction: Any) -> None:
        amount = int(self.balances[src] * fraction)
        with boa.env.prank(src):
            self.token.approve(spender, amount)
        with boa.env.prank(spender):
            self.token.burnFrom(src, amount)
        self.balances[src] -= amount

    @invariant()
    def supply_is_sum_of_balances_and_capped(self) -> None:
        supply = self.token.totalSupply()
        assert supply == sum(self.balances.values())
        assert supply <= self.token.totalMinted() == self.minted <= CAP
        for account, balance in self.balances.items():
            assert self.token.balanceOf(account) == balance
        assert self.token.isMinter(MIGRATOR) is self.migrator_minter
        assert self.token.isMinter(MINTER) and not self.token.isMinter(HOLDERS[0])


PHASupply.TestCase.settings = settings(max_examples=40, stateful_step_count=20, deadline=None)
TestPHASupply = PHASupply.TestCase
