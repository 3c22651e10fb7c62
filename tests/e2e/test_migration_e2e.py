"""Issue 3 end to end on the devnet: bind, claim, audit clean; tamper, audit fails.

The demo's migration walk-through runs through subprocess `veil` calls against a real
anvil with a real attester process; the assertions read balances from the chain and
compare them with the leaves, then a one-planck edit of the published snapshot must make
the audit fail.
"""

from __future__ import annotations

import json
import subprocess

import pytest
from eth_account import Account

from veil.devnet.accounts import devnet_account
from veil.devnet.anvil import free_port
from veil.devnet.demo import (
    SAMPLE_HOLDERS,
    bring_up,
    migration,
    stake_and_delegate,
    veil_executable,
)
from veil.merkle import load_tree
from veil.migration.synthetic import keypair

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("anvil")]


def test_bind_claim_audit_then_tamper(e2e, tmp_path) -> None:  # e2e: conftest.E2E
    w = e2e.walkthrough
    bring_up(w, e2e.port)
    stake_and_delegate(w)
    migration(w, tmp_path, accounts=400, attester_port=free_port())

    chain = e2e.chain()
    pha, vault, migrator = (chain.contract(n) for n in ("PHA", "Vault", "Migrator"))
    tree = load_tree(tmp_path / "tree.json")
    secrets = json.loads((tmp_path / "keys.json").read_text())["keys"]
    for number, scheme in enumerate(SAMPLE_HOLDERS, start=1):
        entry = next(k for k in secrets if k["scheme"] == scheme)
        holder = keypair(scheme, bytes.fromhex(entry["seed"][2:]))
        index, _, free, staked = tree.values[tree.value_index(holder.account)]
        receiver = Account.from_key(bytes(31) + bytes([number])).address
        assert migrator.functions.isClaimed(index).call()
        assert pha.functions.balanceOf(receiver).call() == free
        # staked PHA arrived staked: the Migrator deposited exactly the leaf for the receiver
        deposits = vault.events.Deposit().get_logs(
            from_block=0, argument_filters={"owner": receiver}
        )
        assert [(d["args"]["assets"], d["args"]["sender"]) for d in deposits] == [
            (staked, migrator.address)
        ]
        assert vault.functions.balanceOf(receiver).call() == deposits[0]["args"]["shares"] > 0
    assert migrator.functions.claimedFree().call() > 0
    assert "audit clean" in e2e.run.last("migrate", "audit")
    # the claim was sent by dave, who received nothing
    assert pha.functions.balanceOf(devnet_account("dave").address).call() == 10**24
    # PHA that anyone sends the Migrator only lowers its own claimed figure: still clean, named
    chain.send(devnet_account("dave"), pha.functions.transfer(migrator.address, 7), "gift")
    files = [(f"--{n}", str(tmp_path / f"{n}.json")) for n in ("snapshot", "tree", "positions")]
    audit_args = [str(veil_executable()), "migrate", "audit", *(x for f in files for x in f),
                  "--exclusions", str(tmp_path / "exclusions.json"),
                  "--deployment", str(e2e.deployment)]  # fmt: skip
    gifted = subprocess.run([*audit_args, "--json"], capture_output=True, text=True, timeout=120)
    assert gifted.returncode == 0, gifted.stdout + gifted.stderr
    counters = next(
        c for c in json.loads(gifted.stdout)["checks"] if "Migrator's counters" in c["name"]
    )
    assert counters["ok"] and "7 wei of PHA sent to the Migrator by others" in counters["detail"]

    # tamper: one planck more in one account of the published snapshot
    snapshot_path = tmp_path / "snapshot.json"
    document = json.loads(snapshot_path.read_text())
    _bump_first_account(document)
    snapshot_path.write_text(json.dumps(document))
    audit = subprocess.run(audit_args, capture_output=True, text=True, timeout=120)
    assert audit.returncode == 1, audit.stdout + audit.stderr
    assert "audit failed: 1 check(s)" in audit.stdout
    root_row = next(line for line in audit.stdout.splitlines() if "rebuilt root" in line)
    assert "FAIL" in root_row


def _bump_first_account(document: dict) -> None:
    """A consistent forgery: one more planck for one holder and in TotalIssuance, so the
    ledger still reconciles and only the root comparison can catch it."""
    free = document["columns"].index("free")
    document["accounts"][0][free] = str(int(document["accounts"][0][free]) + 1)
    document["total_issuance"] = str(int(document["total_issuance"]) + 1)
