"""Epoch after epoch, whatever workers do: the invariants of issue 11 hold.

Workers of three providers register, deregister, re-register under new keys, change model
and go offline at random; each epoch is closed from the previous report. Paid never
exceeds the providers' part, cumulative totals never decrease, a worker not active earns
nothing, and every provider's cumulative is provable against the root.
"""

from __future__ import annotations

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from veil.rewards.activity import WorkerActivity
from veil.rewards.budget import Schedule
from veil.rewards.epochs import EpochClock
from veil.rewards.report import EpochInputs, EpochReport, build_report
from veil.rewards.tree import verify_claim
from veil.rewards.uptime import AttesterHeartbeats

PROVIDERS = ["0x" + f"{0x10 + i:02x}" * 20 for i in range(3)]
ATTESTERS = ["0x" + f"{0xA0 + i:02x}" * 20 for i in range(3)]
CLOCK = EpochClock(0, 3600)
SCHEDULE = Schedule(10**21, 4, 4000, 4000)
WEIGHTS = {0: 1_000, 1: 10_000, 2: 15_000, 3: 18_000}


class Epochs(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.epoch = 0
        self.next_key = 1
        self.workers: dict[str, tuple[str, int]] = {}  # active: worker -> (provider, model)
        self.retired: set[str] = set()
        self.uptime: dict[str, int] = {}  # worker -> heartbeats this epoch (of 60)
        self.report: EpochReport | None = None
        self.pool = 5 * 10**21

    def _key(self) -> str:
        self.next_key += 1
        return "0x" + f"{self.next_key:040x}"

    @rule(provider=st.sampled_from(PROVIDERS), model=st.sampled_from([0, 1, 2, 3]))
    def register(self, provider: str, model: int) -> None:
        worker = self._key()
        self.workers[worker] = (provider, model)
        self.uptime[worker] = 60

    @precondition(lambda self: self.workers)
    @rule(data=st.data())
    def deregister(self, data: st.DataObject) -> None:
        worker = data.draw(st.sampled_from(sorted(self.workers)))
        del self.workers[worker]
        self.retired.add(worker)

    @precondition(lambda self: self.workers)
    @rule(data=st.data(), beats=st.integers(0, 70))
    def heartbeats(self, data: st.DataObject, beats: int) -> None:
        self.uptime[data.draw(st.sampled_from(sorted(self.workers)))] = beats

    @rule(missing=st.integers(0, 2))
    def close(self, missing: int) -> None:
        acts = [WorkerActivity(w, p, m, 1, WEIGHTS[m] * 3600, 3600)
                for w, (p, m) in self.workers.items()]  # fmt: skip
        # retired workers still appear in the registry's history, inactive all epoch,
        # and may still send heartbeats: they must earn nothing
        acts += [WorkerActivity(w, PROVIDERS[0], 1, 1, 0, 0) for w in sorted(self.retired)]
        logs = []
        for i, attester in enumerate(ATTESTERS):
            seen = {w: list(range(1, n + 1)) for w, n in self.uptime.items() if i >= missing}
            logs.append(AttesterHeartbeats(attester, seen))
        budget = SCHEDULE.budget(self.epoch, self.pool)
        previous = self.report.cumulative() if self.report else {}
        report = build_report(
            EpochInputs(31337, ATTESTERS[0], ATTESTERS[1], CLOCK, self.epoch, budget,
                        SCHEDULE.split(budget), 8000, 2, acts, logs, previous)
        )  # fmt: skip
        split = SCHEDULE.split(budget)
        assert split.total == budget
        paid = int(report.doc["allocated"])
        assert paid <= split.providers
        assert report.total == sum(previous.values()) + paid
        for provider, amount in previous.items():
            assert report.cumulative().get(provider, 0) >= amount
        for row in report.doc["workers"]:
            if row["worker"] in self.retired:
                assert row["reward"] == "0"
            if row["uptimeBps"] < 8000:
                assert row["reward"] == "0"
        if missing >= 2:  # only one attester saw anything: below the threshold of two
            assert paid == 0
        self.pool -= budget
        self.report = report
        self.epoch += 1

    @invariant()
    def every_provider_can_prove_its_total(self) -> None:
        if self.report is None:
            return
        for provider, amount in self.report.cumulative().items():
            proof = self.report.tree.proof(provider)
            assert verify_claim(self.report.root, provider, amount, proof)


Epochs.TestCase.settings = settings(max_examples=40, stateful_step_count=25, deadline=None)
TestEpochs = Epochs.TestCase
