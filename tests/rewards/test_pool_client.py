"""veil.rewards.pool against the devnet's RewardPool: one epoch from post to claims.

The devnet deploys the pool owned by the timelock, funded with its reserve, with the
devnet attester as the one signer (threshold 1) and the devnet guardian as the guardian.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from veil.chain.units import WEI_PER_PHA
from veil.devnet.accounts import devnet_account
from veil.devnet.anvil import Devnet, free_port
from veil.devnet.client import DevnetChain
from veil.devnet.network import DEVNET_REWARD_POOL_PHA, devnet_up
from veil.errors import ChainError, InputError
from veil.merkle import keccak256, node_hash
from veil.rewards.pool import EpochRoot, RewardPoolClient

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("anvil")]


@pytest.fixture(scope="module")
def chain(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevnetChain]:
    root = tmp_path_factory.mktemp("pool")
    devnet = Devnet(root / "home")
    up = devnet_up(devnet, root / "deployment.json", port=free_port())
    try:
        yield DevnetChain.open(up.deployment, up.process.rpc_url)
    finally:
        devnet.stop()


def leaf(provider: str, cumulative: int) -> bytes:
    encoded = bytes(12) + bytes.fromhex(provider[2:]) + cumulative.to_bytes(32, "big")
    return keccak256(keccak256(encoded))


def test_post_veto_finalize_and_claim(chain: DevnetChain) -> None:
    pool = RewardPoolClient.from_chain(chain)
    timelock = chain.contract("Timelock").address
    assert pool.contract.functions.owner().call() == timelock
    assert pool.registry() == chain.contract("ComputeRegistry").address
    attester, guardian = devnet_account("attester"), devnet_account("guardian")
    assert pool.attesters() == [attester.address] and pool.threshold() == 1
    assert pool.available() == DEVNET_REWARD_POOL_PHA * WEI_PER_PHA
    assert pool.last_finalized_epoch() is None

    chain.advance_time(pool.epoch_length() + 1)
    assert pool.current_epoch() >= 1
    start, end = pool.epoch_bounds(0)
    assert end - start == pool.epoch_length()
    budget = pool.epoch_budget(0)
    assert budget == pool.scheduled_budget(0) == pool.initial_budget()
    split = pool.split(budget)
    assert split.treasury + split.stakers + split.providers == budget

    provider, dave = devnet_account("provider"), devnet_account("dave")
    amounts = {provider.address: split.providers // 2, dave.address: split.providers // 3}
    leaves = {a: leaf(a, v) for a, v in amounts.items()}
    root = node_hash(*leaves.values())
    statement = EpochRoot(0, root, sum(amounts.values()), b"\x42" * 32)
    domain = pool.domain()
    assert (
        statement.digest(domain)
        == pool.contract.functions.epochRootDigest(*statement.values()).call()
    )

    sender = devnet_account("bob")
    with pytest.raises(InputError, match="no attester signatures"):
        pool.post_root(sender, statement, [])
    wrong = EpochRoot(0, root, statement.total + 1, statement.report_hash)
    with pytest.raises(ChainError, match="unknown attester"):
        pool.post_root(sender, wrong, [statement.sign(domain, attester.key)])

    signature = statement.sign(domain, attester.key)
    pool.post_root(sender, statement, [signature])
    posted = pool.pending(0)
    assert (posted.status_name, posted.root, posted.total, posted.budget) == (
        "pending",
        root,
        statement.total,
        budget,
    )
    pool.veto(guardian, 0)
    assert pool.pending(0).status_name == "not posted" and pool.next_epoch() == 0
    pool.post_root(sender, statement, [signature])
    with pytest.raises(ChainError, match="challenge window open"):
        pool.finalize(sender, 0)
    chain.advance_time(pool.challenge_window())
    pha = chain.contract("PHA")
    treasury_before = pha.functions.balanceOf(timelock).call()
    pool.finalize(sender, 0)
    assert pool.last_finalized_epoch() == 0 and pool.root() == root
    unallocated = split.providers - statement.total
    assert pha.functions.balanceOf(timelock).call() - treasury_before == (
        split.treasury + unallocated
    )
    assert pool.owed() == statement.total

    held = pha.functions.balanceOf(provider.address).call()
    pool.claim(provider, amounts[provider.address], [leaves[dave.address]], as_vpha=False)
    assert pha.functions.balanceOf(provider.address).call() - held == amounts[provider.address]
    vault = chain.contract("Vault")
    shares = vault.functions.previewDeposit(amounts[dave.address]).call()
    pool.claim(dave, amounts[dave.address], [leaves[provider.address]], as_vpha=True)
    assert vault.functions.balanceOf(dave.address).call() == shares
    assert pool.claimed(dave.address) == amounts[dave.address]
    assert pool.owed() == 0
    with pytest.raises(ChainError, match="nothing to claim"):
        pool.claim(dave, amounts[dave.address], [leaves[provider.address]], as_vpha=False)

    pool.fund(devnet_account("carol"), 5 * WEI_PER_PHA)
    assert pool.min_uptime_bps() == 8_000 and pool.half_life_epochs() == 8_760
