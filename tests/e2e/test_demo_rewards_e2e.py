"""The demo's rewards section end to end: real simulated workers, a real attester on chain
time, and the epoch settled through the CLI.

The walk-through runs as subprocess `veil` calls; the assertions read the report and the
chain, so a section that printed success without paying would fail here. It also shows
the attester's `--chain-clock`: without it the epoch's log would stay incomplete for an
hour of wall clock and `rewards close` would refuse it.
"""

from __future__ import annotations

import json

import pytest

from veil.devnet.accounts import devnet_account
from veil.devnet.anvil import free_port
from veil.devnet.demo import bring_up, rewards, stake_and_delegate

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("anvil")]


def test_rewards_section_pays_weight_times_uptime_and_audits(e2e, tmp_path) -> None:
    w = e2e.walkthrough
    bring_up(w, e2e.port)
    stake_and_delegate(w)
    chain = e2e.chain()
    pool, vault, pha = (chain.contract(n) for n in ("RewardPool", "Vault", "PHA"))
    treasury = pool.functions.treasury().call()
    before_treasury = pha.functions.balanceOf(treasury).call()

    rewards(w, tmp_path / "rewards", attester_port=free_port())

    report = json.loads((tmp_path / "rewards" / "reports" / "epoch-0.json").read_text())
    rows = {row["model"]: row for row in report["workers"]}
    assert set(rows) == {"cpu", "h100", "h200"}
    assert rows["cpu"]["uptimeBps"] == 10_000
    assert 8_000 <= rows["h100"]["uptimeBps"] < 10_000  # missed 3 of 20 beats
    assert rows["h200"]["uptimeBps"] < 8_000 and int(rows["h200"]["reward"]) == 0
    cpu, h100 = (rows[m]["weightBps"] * rows[m]["uptimeBps"] for m in ("cpu", "h100"))
    paid = int(rows["cpu"]["reward"]) + int(rows["h100"]["reward"])
    share = int(report["split"]["providers"]) * h100 // (cpu + h100)  # weightBps is rounded
    assert abs(int(rows["h100"]["reward"]) - share) <= share // 1_000
    assert paid == int(report["total"])

    dave = devnet_account("dave").address
    assert pool.functions.lastFinalizedEpoch().call() == 0
    assert "0x" + bytes(pool.functions.root().call()).hex() == report["root"]
    assert pool.functions.claimed(dave).call() == paid
    worth = vault.functions.convertToAssets(vault.functions.balanceOf(dave).call()).call()
    assert paid - paid // 10**6 <= worth <= paid + paid // 10**6
    unallocated = int(report["split"]["providers"]) - paid
    got = pha.functions.balanceOf(treasury).call() - before_treasury
    assert got == int(report["split"]["treasury"]) + unallocated
    assert "the recomputed report matches the chain" in e2e.run.last("rewards", "audit")
