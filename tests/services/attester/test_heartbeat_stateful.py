"""Stateful property test of the attester's heartbeat rules, without HTTP.

Random heartbeats (valid or not in every way the rules name) against one service; after
every step the signed log read back with `read_log` must hold exactly the heartbeats the
service accepted, in order, each worker's sequences strictly increasing and timestamps at
least the minimum interval apart, every signature the worker's, and its refusal tallies
must equal the refusals the service answered."""

from __future__ import annotations

import shutil
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

from eth_account import Account
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from veil.attestation.typed_data import DigestSigner
from veil.compute import heartbeat
from veil.compute.attestation import RegistryDomain
from veil.compute.heartbeat import EpochSchedule
from veil.compute.heartbeat_log import ZERO_ADDRESS, read_log
from veil.services.attester.heartbeats import HeartbeatJournal, HeartbeatService
from veil.services.attester.requests import Refused

DOMAIN = RegistryDomain(73217, "0x" + "12" * 20)
SCHEDULE = EpochSchedule(1_000_000, 600)
WORKERS = [Account.from_key(bytes([i + 0x31]) * 32) for i in range(3)]
STRANGER = Account.from_key(b"\x66" * 32)
BLOCK, OLD = b"\xaa" * 32, b"\xbb" * 32
MIN_INTERVAL, SKEW = 5, 60


class HeartbeatRules(RuleBasedStateMachine):
    @initialize()
    def start(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="veil-beats-"))
        self.now = SCHEDULE.start(3) + 10
        self.journal = HeartbeatJournal(self.dir, sync=False)
        expiries = {w.address: 2**40 for w in WORKERS}
        self.service = HeartbeatService(
            DOMAIN, DigestSigner(b"\x07" * 32), SCHEDULE, self.journal, expiries.get, {BLOCK},
            max_skew=SKEW, min_interval=MIN_INTERVAL, clock=lambda: self.now,
        )  # fmt: skip
        self.accepted: list[tuple[str, int, int, int]] = []  # worker, epoch, sequence, ts
        self.refused: Counter[tuple[int, str, str]] = Counter()  # (arrival epoch, who, why)
        self.next_sequence = {w.address: 1 for w in WORKERS}

    def teardown(self) -> None:
        self.journal.close()
        shutil.rmtree(self.dir, ignore_errors=True)

    @rule(seconds=st.integers(0, 400))
    def time_passes(self, seconds: int) -> None:
        self.now += seconds

    @rule(
        who=st.integers(0, 3),
        step=st.integers(-2, 3),
        offset=st.integers(-2 * SKEW, 2 * SKEW),
        epoch_shift=st.sampled_from([0, 0, 0, 1, -1]),
        block=st.sampled_from([BLOCK, BLOCK, OLD]),
        forged=st.sampled_from([False, False, False, True]),
    )
    def send(self, who: int, step: int, offset: int, epoch_shift: int, block: bytes,
             forged: bool) -> None:  # fmt: skip
        key = WORKERS[who] if who < 3 else STRANGER
        sequence = max(0, self.next_sequence.get(key.address, 1) + step - 1)
        timestamp = self.now + offset
        epoch = max(0, SCHEDULE.epoch(timestamp) + epoch_shift)
        beat = heartbeat.Heartbeat(key.address, epoch, sequence, timestamp, block)
        signer = WORKERS[(who + 1) % 3] if forged else key
        body: dict[str, Any] = heartbeat.to_json(beat, heartbeat.sign(beat, DOMAIN, signer.key))
        try:
            answer = self.service.heartbeat(body)
        except Refused as refusal:
            assert refusal.code is not None
            registered = who < 3
            whom = key.address if registered else ZERO_ADDRESS
            self.refused[(SCHEDULE.epoch(self.now), whom, refusal.code)] += 1
            return
        assert answer["stored"] is True and who < 3 and not forged
        self.accepted.append((key.address, epoch, sequence, timestamp))
        self.next_sequence[key.address] = sequence + 1

    @invariant()
    def the_signed_logs_hold_exactly_what_was_accepted(self) -> None:
        if not hasattr(self, "service"):
            return
        self.journal.flush_tallies()
        epochs = {e for _, e, _, _ in self.accepted} | {e for e, _, _ in self.refused}
        for epoch in epochs:
            _, chunks = self.service.log(f"epoch={epoch}")
            log = read_log(b"".join(chunks))
            rows = [(e.worker, e.epoch, e.sequence, e.timestamp) for e in log]
            assert rows == [a for a in self.accepted if a[1] == epoch]
            want = {(w, r): n for (e, w, r), n in self.refused.items() if e == epoch}
            assert log.refusals == want
            for entry in log:
                beat = heartbeat.Heartbeat(entry.worker, entry.epoch, entry.sequence,
                                           entry.timestamp, entry.block_hash)  # fmt: skip
                assert heartbeat.recover(beat, DOMAIN, entry.signature) == entry.worker
        last: dict[str, tuple[int, int]] = {}
        for worker, epoch, sequence, timestamp in self.accepted:
            assert SCHEDULE.epoch(timestamp) == epoch
            if worker in last:
                assert sequence > last[worker][0]
                assert timestamp - last[worker][1] >= MIN_INTERVAL
            last[worker] = (sequence, timestamp)


HeartbeatRules.TestCase.settings = settings(max_examples=60, stateful_step_count=40,
                                            deadline=None)  # fmt: skip
test_heartbeat_rules = HeartbeatRules.TestCase
