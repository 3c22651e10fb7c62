"""What an epoch may pay and how it splits, mirroring RewardPool to the wei.

The report computes the providers' part itself (offline, in tests and in the bench) and,
when a chain is at hand, reads `epochBudget` and `split` from the pool and refuses to go
on if the two disagree: a report whose split differs from the contract's would be posted
and then refused (the pool checks the total against the providers' part), or worse,
accepted with the wrong numbers.

Schedule (RewardPool NatSpec): `initialBudget >> (epoch // halfLifeEpochs)`, capped by
what the pool holds. Split: stakers and providers get floor(budget * bps / 10,000); the
treasury gets the rest, so the three always add up to the budget exactly.
"""

from __future__ import annotations

from dataclasses import dataclass

from veil.errors import InputError

BPS = 10_000


@dataclass(frozen=True)
class Split:
    treasury: int
    stakers: int
    providers: int

    @property
    def total(self) -> int:
        return self.treasury + self.stakers + self.providers

    def to_json(self) -> dict[str, str]:
        return {
            "treasury": str(self.treasury),
            "stakers": str(self.stakers),
            "providers": str(self.providers),
        }


@dataclass(frozen=True)
class Schedule:
    initial_budget: int
    half_life_epochs: int
    stakers_bps: int
    providers_bps: int

    def __post_init__(self) -> None:
        if self.initial_budget < 0:
            raise InputError(f"initial budget {self.initial_budget}: must not be negative")
        if self.half_life_epochs <= 0:
            raise InputError(f"half-life {self.half_life_epochs} epochs: must be positive")
        for name in ("stakers_bps", "providers_bps"):
            if not 0 <= getattr(self, name) <= BPS:
                raise InputError(f"{name} {getattr(self, name)}: must be 0..{BPS}")
        if self.stakers_bps + self.providers_bps > BPS:
            raise InputError(
                f"split: stakers {self.stakers_bps} + providers {self.providers_bps} bps "
                f"exceed {BPS}"
            )

    def scheduled(self, epoch: int) -> int:
        """The budget before the pool's balance caps it (halves every half-life)."""
        if epoch < 0:
            raise InputError(f"epoch {epoch}: must not be negative")
        halvings = epoch // self.half_life_epochs
        return self.initial_budget >> halvings if halvings < 256 else 0

    def budget(self, epoch: int, available: int) -> int:
        """What the epoch pays: the schedule, or what the pool still holds if less."""
        if available < 0:
            raise InputError(f"pool balance {available}: must not be negative")
        return min(self.scheduled(epoch), available)

    def split(self, budget: int) -> Split:
        return split_budget(budget, self.stakers_bps, self.providers_bps)


def split_budget(budget: int, stakers_bps: int, providers_bps: int) -> Split:
    if budget < 0:
        raise InputError(f"budget {budget}: must not be negative")
    stakers = budget * stakers_bps // BPS
    providers = budget * providers_bps // BPS
    return Split(budget - stakers - providers, stakers, providers)
