"""Hypothesis stateful test of the Claims and Supply invariants of the Migrator.

Random valid and invalid claims (single and batched), pauses, time jumps, sweeps and late
claims run against a model. After every step: each leaf is claimed at most once and only
through a valid path; minted PHA never exceeds the committed totals (the free total is
minted to the Migrator with the root, and its balance is what remains); for free and
staked separately claimed + swept + remaining == committed; every receiver holds exactly the
PHA and the vPHA value of the leaves paid to it, and votes with all its vPHA from the
claim on (self-delegated at claim); a claim whose published signature is not the one the
attesters bound never pays; the one-lookup registry `isAccepted(root, a)` always equals
`isAttester(a)` under the current root, while attesters come and go.
"""

from __future__ import annotations

import boa
from eth_account import Account
from eth_utils import keccak
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)
from migrator_kit import ATTESTER_KEYS, WEI, Leaf, Tree, deploy_system

LEAVES = 10
WINDOW = 10 * 86400
RECEIVERS = 3
FAULTS = [
    "none",
    "wrong proof",
    "other receiver",
    "too few",
    "same attester",
    "outsider",
    "other signature",
]


def make_tree() -> Tree:
    leaves = []
    for i in range(LEAVES):
        free = 0 if i == 3 else (i + 1) * WEI
        staked = (i % 3) * 2 * WEI
        leaves.append(Leaf(i * 37, keccak(text=f"stateful {i}"), free, staked))
    return Tree(leaves)


class MigratorMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self._anchor = boa.env.anchor()  # every example starts from, and leaves, a clean chain
        self._anchor.__enter__()
        self.system = deploy_system(attester_count=3, threshold=2)
        self.tree = make_tree()
        self.receivers = [boa.env.generate_address(f"receiver {i}") for i in range(RECEIVERS)]
        self.thief = boa.env.generate_address("thief")
        self.owed_free = dict.fromkeys(self.receivers, 0)
        self.owed_staked = dict.fromkeys(self.receivers, 0)
        self.claimed: set[int] = set()
        self.paused = False
        self.swept = False
        self.swept_free = self.swept_staked = 0
        self.treasury_balance = 0

    @initialize(short_free=st.integers(0, 3 * WEI), short_staked=st.integers(0, 3 * WEI))
    def set_root(self, short_free: int, short_staked: int) -> None:
        """Commit totals up to 3 PHA below the leaves' sums, so the cap is reachable."""
        self.remaining_free = self.tree.total_free - short_free
        self.remaining_staked = self.tree.total_staked - short_staked
        self.deadline = self.system.set_tree(
            self.tree, window=WINDOW, free=self.remaining_free, staked=self.remaining_staked
        )
        self.committed = (self.remaining_free, self.remaining_staked)
        with boa.env.prank(self.system.treasury):
            self.system.pha.approve(self.system.migrator.address, 2**256 - 1)

    def teardown(self) -> None:
        self._anchor.__exit__(None, None, None)

    # ------------------------------------------------------------ helpers

    def now(self) -> int:
        return boa.env.evm.patch.timestamp

    def args(self, position: int, receiver: str, fault: str) -> dict:
        s, tree = self.system, self.tree
        leaf = tree.leaves[position]
        args = s.claim_args(tree, position, receiver)
        if fault == "wrong proof":
            args["proof"] = tree.proof((position + 1) % LEAVES)
        elif fault == "other receiver":
            args["attestations"] = s.attest(
                leaf, self.receivers[0] if receiver != self.receivers[0] else self.receivers[1]
            )
        elif fault == "too few":
            args["attestations"] = s.attest(leaf, receiver, [0])
        elif fault == "same attester":
            (one,) = s.attest(leaf, receiver, [1])
            args["attestations"] = [one, one]
        elif fault == "outsider":
            args["attestations"] = s.raw_attestations(leaf, receiver, [ATTESTER_KEYS[5]]) * 2
        elif fault == "other signature":  # attested one signature, publishes another
            args["substrateSignature"] = b"\x12" + args["substrateSignature"][1:]
        return args

    def fits(self, leaf: Leaf, free: int, staked: int) -> bool:
        return leaf.free <= free and leaf.staked <= staked

    def pay(self, leaf: Leaf, receiver: str) -> None:
        self.claimed.add(leaf.index)
        self.owed_free[receiver] += leaf.free
        self.owed_staked[receiver] += leaf.staked

    # ------------------------------------------------------------ rules

    @rule(
        position=st.integers(0, LEAVES - 1),
        who=st.integers(0, RECEIVERS - 1),
        fault=st.sampled_from(FAULTS),
    )
    def claim(self, position: int, who: int, fault: str) -> None:
        leaf, receiver = self.tree.leaves[position], self.receivers[who]
        args = self.args(position, receiver, fault)
        ok = (
            fault == "none"
            and not self.paused
            and self.now() <= self.deadline
            and leaf.index not in self.claimed
            and self.fits(leaf, self.remaining_free, self.remaining_staked)
        )
        if not ok:
            with boa.reverts():
                self.system.migrator.claim(*args.values())
            return
        self.system.migrator.claim(*args.values())
        self.remaining_free -= leaf.free
        self.remaining_staked -= leaf.staked
        self.pay(leaf, receiver)

    @rule(
        positions=st.sets(st.integers(0, LEAVES - 1), min_size=1, max_size=5),
        who=st.integers(0, RECEIVERS - 1),
        tamper=st.booleans(),
    )
    def claim_many(self, positions: set[int], who: int, tamper: bool) -> None:
        receivers = {p: self.receivers[(who + p) % RECEIVERS] for p in positions}
        claims, proof, flags = self.system.batch_args(self.tree, sorted(positions), receivers)
        if tamper:
            claims[-1] = (*claims[-1][:4], self.thief, *claims[-1][5:])
        free, staked, ok = self.remaining_free, self.remaining_staked, True
        ok = not tamper and not self.paused and self.now() <= self.deadline
        for p in positions:
            leaf = self.tree.leaves[p]
            ok = ok and leaf.index not in self.claimed and self.fits(leaf, free, staked)
            free, staked = free - leaf.free, staked - leaf.staked
        if not ok:
            with boa.reverts():
                self.system.migrator.claimMany(claims, proof, flags)
            return
        self.system.migrator.claimMany(claims, proof, flags)
        self.remaining_free, self.remaining_staked = free, staked
        for p in positions:
            self.pay(self.tree.leaves[p], receivers[p])

    @rule(by_guardian=st.booleans())
    def pause(self, by_guardian: bool) -> None:
        with boa.env.prank(self.system.guardian if by_guardian else self.system.owner):
            self.system.migrator.pause()
        self.paused = True

    @rule()
    def unpause(self) -> None:
        with boa.env.prank(self.system.guardian), boa.reverts():
            self.system.migrator.unpause()
        with boa.env.prank(self.system.owner):
            self.system.migrator.unpause()
        self.paused = False

    @rule(key=st.sampled_from([3, 4]))
    def toggle_attester(self, key: int) -> None:
        """Register or remove a spare attester: claims signed by 0 and 1 keep working."""
        attester = Account.from_key(ATTESTER_KEYS[key]).address
        allowed = not self.system.migrator.isAttester(attester)
        with boa.env.prank(self.system.owner):
            self.system.migrator.setAttester(attester, allowed)

    @rule(seconds=st.integers(0, 6 * 86400))
    def time_jump(self, seconds: int) -> None:
        boa.env.time_travel(seconds=seconds)

    @rule()
    def sweep(self) -> None:
        ok = self.now() > self.deadline and not self.swept
        with boa.env.prank(self.system.owner):
            if not ok:
                with boa.reverts():
                    self.system.migrator.sweep()
                return
            self.system.migrator.sweep()
        self.swept = True
        self.swept_free, self.swept_staked = self.remaining_free, self.remaining_staked
        self.treasury_balance += self.remaining_free + self.remaining_staked
        self.remaining_free = self.remaining_staked = 0

    @precondition(lambda self: self.now() > self.deadline)
    @rule(position=st.integers(0, LEAVES - 1), who=st.integers(0, RECEIVERS - 1))
    def honour_late_claim(self, position: int, who: int) -> None:
        leaf, receiver = self.tree.leaves[position], self.receivers[who]
        args = self.args(position, receiver, "none")
        if self.swept:
            ok = self.fits(leaf, self.swept_free, self.swept_staked)
        else:
            ok = self.fits(leaf, self.remaining_free, self.remaining_staked)
        ok = ok and leaf.index not in self.claimed
        with boa.env.prank(self.system.owner):
            if not ok:
                with boa.reverts():
                    self.system.migrator.honourLateClaim(*args.values())
                return
            self.system.migrator.honourLateClaim(*args.values())
        if self.swept:
            self.swept_free -= leaf.free
            self.swept_staked -= leaf.staked
            self.treasury_balance -= leaf.free + leaf.staked
        else:
            self.remaining_free -= leaf.free
            self.remaining_staked -= leaf.staked
        self.pay(leaf, receiver)

    # ------------------------------------------------------------ invariants

    @invariant()
    def each_leaf_claimed_at_most_once_and_only_as_modelled(self) -> None:
        m = self.system.migrator
        for leaf in self.tree.leaves:
            assert m.isClaimed(leaf.index) == (leaf.index in self.claimed)
            assert not m.isClaimed(leaf.index + 1)

    @invariant()
    def minted_never_exceeds_committed_totals(self) -> None:
        m, pha = self.system.migrator, self.system.pha
        total_free, total_staked = self.committed
        assert pha.totalSupply() <= total_free + total_staked
        assert m.claimedFree() + m.sweptFree() <= total_free
        assert m.claimedStaked() + m.sweptStaked() <= total_staked
        claimed_free = sum(self.owed_free.values())
        claimed_staked = sum(self.owed_staked.values())
        assert (m.claimedFree(), m.claimedStaked()) == (claimed_free, claimed_staked)
        assert (m.sweptFree(), m.sweptStaked()) == (self.swept_free, self.swept_staked)
        assert claimed_free + self.swept_free + self.remaining_free == total_free
        assert claimed_staked + self.swept_staked + self.remaining_staked == total_staked
        # Free PHA is minted whole when the root is committed and held here until it is
        # claimed or swept; staked PHA is minted as it is claimed or swept.
        minted = total_free + claimed_staked + self.swept_staked
        assert pha.totalSupply() == minted
        assert pha.balanceOf(m.address) == m.remainingFree() == self.remaining_free

    @invariant()
    def receivers_hold_exactly_their_leaves(self) -> None:
        for r in self.receivers:
            assert self.system.pha.balanceOf(r) == self.owed_free[r]
            assert self.system.staked_value(r) == self.owed_staked[r]
        assert self.system.pha.balanceOf(self.system.treasury) == self.treasury_balance

    @invariant()
    def receivers_vote_with_all_their_stake(self) -> None:
        for r in self.receivers:
            assert self.system.vault.getVotes(r) == self.system.vault.balanceOf(r)

    @invariant()
    def one_lookup_equals_root_and_registry(self) -> None:
        m = self.system.migrator
        root = m.root()
        for key in ATTESTER_KEYS:
            attester = Account.from_key(key).address
            assert m.isAccepted(root, attester) == m.isAttester(attester)
            assert not m.isAccepted(self.tree.root[::-1], attester)

    @invariant()
    def flags_match(self) -> None:
        assert self.system.migrator.paused() == self.paused
        assert self.system.migrator.swept() == self.swept


MigratorMachine.TestCase.settings = settings(
    max_examples=20,
    stateful_step_count=20,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
TestMigratorClaimsAndSupply = MigratorMachine.TestCase
