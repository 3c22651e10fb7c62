"""Issue 2 end to end on the devnet, through the CLI: stake, delegate, govern, unstake.

The demo's own `economy` walk-through drives a real anvil with subprocess `veil` calls;
the assertions then read the chain directly, so a CLI that printed success without
acting would fail here.
"""

from __future__ import annotations

import re

import pytest
from web3 import Web3

from veil.devnet.accounts import devnet_account
from veil.devnet.demo import economy
from veil.governance import governor as governance

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("anvil")]
PHA = 10**18


def test_economy_walkthrough(e2e) -> None:  # e2e: conftest.E2E
    economy(e2e.walkthrough, e2e.port)
    chain = e2e.chain()
    vault, pha, governor = (chain.contract(n) for n in ("Vault", "PHA", "Governor"))
    timelock = chain.contract("Timelock").address

    # governance raised the reward rate through the timelock
    assert vault.functions.rewardRate().call() == 18 * PHA // 10_000
    proposal = governance.proposals(chain)[-1]
    assert governance.STATES[governor.functions.state(proposal.proposal_id).call()] == "Executed"
    assert "Vault.setRewardRate(" in e2e.run.last("gov", "status")
    against, for_, _ = governor.functions.proposalVotes(proposal.proposal_id).call()
    alice, bob, carol = (devnet_account(n).address for n in ("alice", "bob", "carol"))
    assert for_ == vault.functions.getPastVotes(alice, proposal.vote_start).call() > 0
    assert against == vault.functions.getPastVotes(bob, proposal.vote_start).call() > 0

    # every parameter belongs to the timelock; the deployer kept nothing
    for name in ("PHA", "Vault", "Migrator", "ComputeRegistry", "Market"):
        assert chain.contract(name).functions.owner().call() == timelock
    deployer = devnet_account("deployer").address
    assert not pha.functions.isMinter(deployer).call()
    admin = b"\x00" * 32
    assert not chain.contract("Timelock").functions.hasRole(admin, deployer).call()

    # carol unstaked 5,000 PHA through the queue and got it in full; the cancelled 1,000 is
    # staked again, so she holds 15,000 PHA staked plus rewards
    assert vault.functions.openRequests(carol).call() == []
    claimed = re.search(r"claimed request (\d+): .* \((\d+) wei\)", e2e.run.last("stake", "claim"))
    assert claimed is not None
    controller, owed, _, _, status = vault.functions.redeemRequest(int(claimed[1])).call()
    assert (controller, status, int(claimed[2])) == (carol, 2, owed)
    assert 5_000 * PHA <= owed < 5_001 * PHA
    assert pha.functions.balanceOf(carol).call() == (1_000_000 - 20_000) * PHA + owed
    assert vault.functions.convertToAssets(vault.functions.balanceOf(carol).call()).call() >= (
        15_000 * PHA
    )
    # undelegated vPHA does not vote
    assert vault.functions.getVotes(carol).call() == 0
    assert Web3.to_checksum_address(vault.functions.delegates(alice).call()) == alice
