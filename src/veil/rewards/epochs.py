"""Epoch numbers and chain time, as RewardPool counts them.

An epoch is `epochLength` seconds of *chain* time (block timestamps), numbered from the
pool's `genesisTime`: epoch n covers [genesis + n * length, genesis + (n + 1) * length).
Wall-clock time never decides anything: the report, the attester and the contract must
agree on which epoch a heartbeat or a registry change falls in, and only the chain's
timestamps are the same for all three.
"""

from __future__ import annotations

from dataclasses import dataclass

from veil.errors import InputError


@dataclass(frozen=True)
class EpochClock:
    genesis_time: int
    epoch_length: int

    def __post_init__(self) -> None:
        if self.epoch_length <= 0:
            raise InputError(f"epoch length {self.epoch_length}: must be positive")
        if self.genesis_time < 0:
            raise InputError(f"genesis time {self.genesis_time}: must not be negative")

    def epoch_at(self, timestamp: int) -> int:
        """The epoch a chain timestamp falls in; before genesis there is none."""
        if timestamp < self.genesis_time:
            raise InputError(f"time {timestamp}: before the rewards genesis {self.genesis_time}")
        return (timestamp - self.genesis_time) // self.epoch_length

    def start(self, epoch: int) -> int:
        self._check(epoch)
        return self.genesis_time + epoch * self.epoch_length

    def end(self, epoch: int) -> int:
        """First second after the epoch (exclusive bound)."""
        return self.start(epoch) + self.epoch_length

    def is_over(self, epoch: int, now: int) -> bool:
        """An epoch can be closed only once chain time has passed its end."""
        return now >= self.end(epoch)

    @staticmethod
    def _check(epoch: int) -> None:
        if isinstance(epoch, bool) or not isinstance(epoch, int) or epoch < 0:
            raise InputError(f"epoch {epoch!r}: must be a non-negative integer")
