"""The provider's per-token charges, kept up by the worker that runs the apps.

Usage a meter signed but nobody charged is lost when the customer closes the lease or
names another meter (the Market cannot know what was signed until a voucher arrives), so
what a provider risks is whatever accumulated since its last charge. A worker already
knows which of its apps are billed, under which lease, and where their ports are; charging
from there every few minutes bounds that risk to one interval without the provider running
`veil ai charge` on a schedule of its own.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from veil.errors import VeilError
from veil.inference.voucher import NothingToCharge, UsageCharge, charge_voucher

if TYPE_CHECKING:
    from eth_account.signers.local import LocalAccount

    from veil.market.escrow import Escrow

log = logging.getLogger(__name__)

#: Seconds between looks at the worker's apps, at most.
LOOK_EVERY = 60.0


@dataclass
class UsageKeeper:
    """Charges each metered lease from its app's voucher at most once every `every` seconds.

    A lease without a meter costs one read per interval and nothing else; an app port that
    serves no voucher (not a gateway, or a gateway without prices) is passed over, so any
    billed app may be handed in without knowing which of its ports is the gateway. The
    apps themselves are looked at once a minute at most (a docker runtime's look is a
    `docker compose ps` per app), however often the worker's loop calls.
    """

    escrow: Escrow
    signer: LocalAccount
    every: float = 600.0
    clock: Callable[[], float] = time.monotonic
    _due: dict[int, float] = field(default_factory=dict, init=False)
    _look_at: float | None = field(default=None, init=False)

    def charge(self, endpoints: Callable[[], Mapping[int, Sequence[str]]]) -> list[UsageCharge]:
        """Charge the leases whose turn has come; `endpoints` tells each running billed
        app's lease id and the host:port addresses its runtime published."""
        now = self.clock()
        if self._look_at is not None and now < self._look_at:
            return []
        self._look_at = now + min(self.every, LOOK_EVERY)
        apps = endpoints()
        for gone in set(self._due) - set(apps):
            del self._due[gone]
        charged = []
        for lease_id, addresses in apps.items():
            if self._due.get(lease_id, now) > now:
                continue
            self._due[lease_id] = now + self.every
            try:
                done = self._charge_one(lease_id, addresses)
            except Exception:  # a keeper inside the worker's sync loop must not end it
                log.exception("usage: lease %#x: charge failed", lease_id)
                continue
            if done is not None:
                charged.append(done)
        return charged

    def _charge_one(self, lease_id: int, addresses: Sequence[str]) -> UsageCharge | None:
        try:
            if self.escrow.meter_of(lease_id).meter is None:
                return None
        except VeilError as error:
            log.warning("usage: lease %#x: cannot read its meter: %s", lease_id, error)
            return None
        for address in addresses:
            try:
                return charge_voucher(self.escrow, self.signer, f"http://{address}", lease_id)
            except NothingToCharge:
                return None
            except VeilError as error:  # not the gateway's port, or a voucher refused
                log.info("usage: lease %#x: %s: %s", lease_id, address, error)
        return None
