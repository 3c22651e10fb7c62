"""RewardPool, function by function: every success path and every revert path."""

from __future__ import annotations

import boa
import pytest
from pool_kit import (
    ATTESTERS,
    DAY,
    FUNDED,
    FUNDER,
    GUARDIAN,
    HALF_LIFE,
    HOUR,
    INITIAL_BUDGET,
    NONE_FINALIZED,
    OWNER,
    PHA,
    PROVIDERS,
    STAKER,
    STRANGER,
    TREASURY,
    WINDOW,
    ZERO,
    build_tree,
    end_epoch,
    make_world,
    pass_window,
    post,
    report_hash,
    signatures,
)

from veil.attestation.typed_data import HALF_N
from veil.rewards.pool import EpochRoot, pool_domain

P1, P2, P3 = PROVIDERS[:3]


def settle(pool, epoch: int, tree) -> None:
    end_epoch(pool, epoch)
    post(pool, epoch, tree)
    pass_window(pool)
    pool.finalize(epoch)


# ---------------------------------------------------------------- deployment


def test_deploy_sets_every_parameter(world):
    pool = world.pool
    assert pool.owner() == OWNER
    assert pool.guardian() == GUARDIAN
    assert pool.treasury() == TREASURY
    assert pool.PHA() == world.pha.address
    assert pool.VAULT() == world.vault.address
    assert pool.REGISTRY() == STRANGER
    assert pool.genesisTime() == world.genesis
    assert pool.epochLength() == HOUR
    assert pool.challengeWindow() == WINDOW
    assert pool.minUptimeBps() == 8_000
    assert pool.initialBudget() == INITIAL_BUDGET
    assert pool.halfLifeEpochs() == HALF_LIFE
    assert pool.splitBps() == (2_000, 4_000, 4_000)
    assert pool.threshold() == 2
    assert sorted(pool.attesters()) == sorted(a.address for a in ATTESTERS[:3])
    assert pool.isAttester(ATTESTERS[0].address) and not pool.isAttester(ATTESTERS[3].address)
    assert pool.currentEpoch() == 0
    assert pool.nextEpoch() == 0 and pool.nextEpochToFinalize() == 0
    assert pool.lastFinalizedEpoch() == NONE_FINALIZED
    assert pool.finalizedTotal() == 0 and pool.root() == bytes(32)
    assert pool.available() == FUNDED
    # the vault may pull PHA for vPHA claims and staker parts
    assert world.pha.allowance(pool.address, world.vault.address) == 2**256 - 1


def _deploy(pool_deployer, world, **overrides):
    args = {
        "pha": world.pha.address,
        "vault": world.vault.address,
        "registry": STRANGER,
        "treasury": TREASURY,
        "owner": OWNER,
        "guardian": GUARDIAN,
        "genesis": world.genesis,
        "length": HOUR,
        "attesters": [a.address for a in ATTESTERS[:3]],
        "threshold": 2,
        "budget": INITIAL_BUDGET,
        "half_life": HALF_LIFE,
        "window": WINDOW,
    }
    args.update(overrides)
    return pool_deployer.deploy(*args.values())


@pytest.mark.parametrize(
    ("overrides", "reason"),
    [
        ({"pha": ZERO}, "RewardPool: zero token or vault"),
        ({"vault": ZERO}, "RewardPool: zero token or vault"),
        ({"owner": ZERO}, "RewardPool: zero owner"),
        ({"treasury": ZERO}, "RewardPool: zero treasury"),
        ({"genesis": 2**64}, "RewardPool: bad genesis time"),
        ({"length": 0}, "RewardPool: bad epoch length"),
        ({"length": 30 * DAY + 1}, "RewardPool: bad epoch length"),
        ({"window": 30 * DAY + 1}, "RewardPool: challenge window too long"),
        ({"budget": 2**96}, "RewardPool: budget too large"),
        ({"half_life": 0}, "RewardPool: bad half-life"),
        ({"attesters": [ZERO]}, "attester_set: zero attester"),
        ({"attesters": [ATTESTERS[0].address] * 2}, "attester_set: attester unchanged"),
        ({"threshold": 0}, "RewardPool: bad threshold"),
        ({"threshold": 4}, "RewardPool: bad threshold"),
    ],
)
def test_deploy_refuses_bad_arguments(world, pool_deployer, overrides, reason):
    with boa.reverts(reason):
        _deploy(pool_deployer, world, **overrides)


def test_deploy_without_attesters_keeps_threshold_one(world, pool_deployer):
    pool = _deploy(pool_deployer, world, attesters=[], threshold=0)
    assert pool.attesterCount() == 0 and pool.threshold() == 1


# ---------------------------------------------------------------- funding


def test_fund_and_plain_transfer_both_count(world):
    pool, pha = world.pool, world.pha
    with boa.env.prank(FUNDER):
        pool.fund(5 * PHA)
        pha.transfer(pool.address, 7 * PHA)
    assert pool.available() == FUNDED + 12 * PHA
    assert pha.balanceOf(pool.address) == FUNDED + 12 * PHA


def test_fund_refuses_zero_and_unapproved(world):
    with boa.env.prank(FUNDER), boa.reverts("RewardPool: zero amount"):
        world.pool.fund(0)
    with boa.env.prank(STRANGER), boa.reverts():
        world.pool.fund(PHA)


# ---------------------------------------------------------------- budget and split


def test_scheduled_budget_halves_per_half_life(world):
    pool = world.pool
    assert pool.scheduledBudget(0) == INITIAL_BUDGET
    assert pool.scheduledBudget(HALF_LIFE - 1) == INITIAL_BUDGET
    assert pool.scheduledBudget(HALF_LIFE) == INITIAL_BUDGET // 2
    assert pool.scheduledBudget(5 * HALF_LIFE + 3) == INITIAL_BUDGET >> 5
    assert pool.scheduledBudget(300 * HALF_LIFE) == 0


def test_split_is_exact_and_rounds_to_the_treasury(world):
    pool = world.pool
    for budget in (0, 1, 3, 7, 9_999, 10_001, INITIAL_BUDGET + 3):
        treasury, stakers, providers = pool.split(budget)
        assert treasury + stakers + providers == budget
        assert stakers == budget * 4_000 // 10_000 and providers == budget * 4_000 // 10_000
    assert pool.split(7) == (7 - 2 - 2, 2, 2)


def test_short_pool_pays_what_is_there_and_says_so(pha_deployer, vault_deployer, pool_deployer):
    with boa.env.anchor():
        world = make_world(pha_deployer, vault_deployer, pool_deployer, funded=300 * PHA)
        pool = world.pool
        assert pool.epochBudget(0) == 300 * PHA
        end_epoch(pool, 0)
        post(pool, 0, None)
        logs = [e for e in pool.get_logs() if type(e).__name__ == "BudgetShort"]
        assert len(logs) == 1
        assert (logs[0].scheduledBudget, logs[0].budget) == (INITIAL_BUDGET, 300 * PHA)
        assert pool.epochBudget(0) == 300 * PHA
        assert pool.available() == 0
        end_epoch(pool, 1)
        post(pool, 1, None)
        assert pool.epochBudget(1) == 0
        pass_window(pool)
        pool.finalize(0)
        pool.finalize(1)
        assert world.pha.balanceOf(pool.address) == 0


def test_epoch_budget_of_a_posted_epoch_is_fixed(world):
    pool = world.pool
    end_epoch(pool, 0)
    post(pool, 0, None)
    with boa.env.prank(FUNDER):
        pool.fund(PHA)
    with boa.env.prank(OWNER):
        pool.setBudgetSchedule(5 * PHA, 1)
    assert pool.epochBudget(0) == INITIAL_BUDGET
    assert pool.epochBudget(1) == 5 * PHA // 2


# ---------------------------------------------------------------- posting


def test_post_refuses_wrong_epochs(world):
    pool = world.pool
    with boa.reverts("RewardPool: epoch not over"):
        post(pool, 0, None)
    end_epoch(pool, 1)
    with boa.reverts("RewardPool: not the next epoch"):
        post(pool, 1, None)
    post(pool, 0, None)
    with boa.reverts("RewardPool: not the next epoch"):
        post(pool, 0, None)
    post(pool, 1, None)
    with boa.reverts("RewardPool: epoch not over"):
        post(pool, 2, None)


def test_post_refuses_bad_totals(world):
    pool = world.pool
    part = pool.split(INITIAL_BUDGET)[2]
    end_epoch(pool, 0)
    report = report_hash(0)
    with boa.reverts("RewardPool: zero root"):
        pool.postRoot(0, bytes(32), 1, report, signatures(pool, 0, bytes(32), 1, report, (0, 1)))
    too_much = build_tree({P1: part, P2: 1})
    with boa.reverts("RewardPool: total above providers part"):
        post(pool, 0, too_much)
    tree = build_tree({P1: part})
    post(pool, 0, tree)
    end_epoch(pool, 1)
    smaller = build_tree({P1: part - 1})
    with boa.reverts("RewardPool: total decreased"):
        post(pool, 1, smaller)
    # cumulative: epoch 1 may add at most its own providers part
    with boa.reverts("RewardPool: total above providers part"):
        post(pool, 1, build_tree({P1: part, P2: part + 1}))
    post(pool, 1, build_tree({P1: part, P2: part}))


def test_post_checks_the_attester_signatures(world):
    pool = world.pool
    end_epoch(pool, 0)
    tree = build_tree({P1: PHA})
    report = report_hash(0)
    good = signatures(pool, 0, tree.root, tree.total, report, (0, 1))
    with boa.reverts("attester_set: too few signatures"):
        pool.postRoot(0, tree.root, tree.total, report, good[:1])
    with boa.reverts("attester_set: signers not strictly increasing"):
        pool.postRoot(0, tree.root, tree.total, report, list(reversed(good)))
    with boa.reverts("attester_set: unknown attester"):
        pool.postRoot(
            0,
            tree.root,
            tree.total,
            report,
            signatures(pool, 0, tree.root, tree.total, report, (0, 3)),
        )
    # signatures over another total recover other addresses: no attester
    with boa.reverts("attester_set: unknown attester"):
        pool.postRoot(0, tree.root, tree.total + 1, report, good)
    with boa.reverts("attester_set: unknown attester"):
        pool.postRoot(0, tree.root, tree.total, report_hash(9), good)
    r, vs = good[0]
    high = (int.from_bytes(vs, "big") & ((1 << 255) - 1)) | (HALF_N + 1)
    with boa.reverts("attester_set: high-s signature"):
        pool.postRoot(0, tree.root, tree.total, report, [(r, high.to_bytes(32, "big")), good[1]])
    pool.postRoot(0, tree.root, tree.total, report, good)
    assert pool.nextEpoch() == 1


def test_digest_and_domain_match_python(world):
    pool = world.pool
    domain = pool_domain(boa.env.evm.patch.chain_id, pool.address)
    assert pool.DOMAIN_SEPARATOR() == domain.separator
    statement = EpochRoot(7, b"\x11" * 32, 123, b"\x22" * 32)
    assert pool.epochRootDigest(7, b"\x11" * 32, 123, b"\x22" * 32) == statement.digest(domain)
    _fields, name, version, chain_id, verifying, _salt, _ext = pool.eip712Domain()
    assert (name, version, chain_id, verifying) == (
        "veil RewardPool",
        "1",
        domain.chain_id,
        pool.address,
    )


def test_post_cost_is_independent_of_the_worker_count(world):
    pool = world.pool
    part = pool.split(INITIAL_BUDGET)[2]
    end_epoch(pool, 2)
    small = build_tree({P1: 1, P2: 2})
    bigger = build_tree({P1: 2, P2: 2})
    big = build_tree({f"0x{i:040x}": 1 for i in range(1, 2_001)})
    post(pool, 0, small)
    post(pool, 1, bigger)
    gas_small = pool._computation.get_gas_used()
    assert big.total <= part + bigger.total
    post(pool, 2, big)
    gas_big = pool._computation.get_gas_used()
    assert abs(gas_big - gas_small) < 200


# ---------------------------------------------------------------- veto


def test_veto_withdraws_the_root_and_every_later_one(world):
    pool = world.pool
    end_epoch(pool, 2)
    post(pool, 0, build_tree({P1: PHA}))
    post(pool, 1, build_tree({P1: 2 * PHA}))
    post(pool, 2, build_tree({P1: 3 * PHA}))
    assert pool.reserved() == 3 * INITIAL_BUDGET
    with boa.env.prank(GUARDIAN):
        pool.vetoRoot(1)
    assert pool.nextEpoch() == 1 and pool.reserved() == INITIAL_BUDGET
    assert pool.pending(1)[0] == 0 and pool.pending(2)[0] == 0
    # the next post of epoch 1 builds on epoch 0's total again
    post(pool, 1, build_tree({P1: PHA + 5}))
    with boa.env.prank(OWNER):
        pool.vetoRoot(0)
    assert pool.nextEpoch() == 0 and pool.reserved() == 0
    post(pool, 0, build_tree({P2: 9}))
    assert pool.pending(0)[2] == 9


def test_veto_refusals(world):
    pool = world.pool
    with boa.env.prank(GUARDIAN), boa.reverts("RewardPool: not pending"):
        pool.vetoRoot(0)
    end_epoch(pool, 0)
    post(pool, 0, None)
    with boa.env.prank(STRANGER), boa.reverts("RewardPool: not guardian"):
        pool.vetoRoot(0)
    pass_window(pool)
    with boa.env.prank(GUARDIAN), boa.reverts("RewardPool: window closed"):
        pool.vetoRoot(0)
    pool.finalize(0)
    with boa.env.prank(OWNER), boa.reverts("RewardPool: not pending"):
        pool.vetoRoot(0)


# ---------------------------------------------------------------- finalize


def test_finalize_refusals(world):
    pool = world.pool
    with boa.reverts("RewardPool: not posted"):
        pool.finalize(0)
    end_epoch(pool, 1)
    post(pool, 0, None)
    post(pool, 1, None)
    with boa.reverts("RewardPool: challenge window open"):
        pool.finalize(0)
    boa.env.time_travel(seconds=WINDOW - 2)
    with boa.reverts("RewardPool: challenge window open"):
        pool.finalize(0)
    boa.env.time_travel(seconds=2)
    with boa.reverts("RewardPool: not the next epoch to finalize"):
        pool.finalize(1)
    pool.finalize(0)
    with boa.reverts("RewardPool: not the next epoch to finalize"):
        pool.finalize(0)
    pool.finalize(1)
    assert pool.lastFinalizedEpoch() == 1


def test_finalize_uses_the_split_fixed_at_posting(world):
    pool, pha, vault = world.pool, world.pha, world.vault
    part = pool.split(INITIAL_BUDGET)[2]
    end_epoch(pool, 0)
    tree = build_tree({P1: part})
    post(pool, 0, tree)
    with boa.env.prank(OWNER):
        pool.setSplit(0, 10_000, 0)  # would leave nothing for the providers already allocated
    pass_window(pool)
    reserve = vault.rewardReserve()
    treasury = pha.balanceOf(TREASURY)
    pool.finalize(0)
    assert vault.rewardReserve() - reserve == INITIAL_BUDGET * 4_000 // 10_000
    assert pha.balanceOf(TREASURY) - treasury == INITIAL_BUDGET * 2_000 // 10_000
    assert pool.owed() == part


def test_longer_window_applies_to_pending_roots(world):
    pool = world.pool
    end_epoch(pool, 0)
    post(pool, 0, None)
    with boa.env.prank(OWNER):
        pool.setChallengeWindow(3 * WINDOW)
    pass_window(pool)  # the new, longer window's worth: still fine to check the old one
    boa.env.time_travel(seconds=-2 * WINDOW)  # back to one WINDOW after posting
    with boa.reverts("RewardPool: challenge window open"):
        pool.finalize(0)
    with boa.env.prank(GUARDIAN):
        pool.vetoRoot(0)


def test_stakers_part_raises_the_vpha_price(world):
    pool, vault = world.pool, world.vault
    with boa.env.prank(OWNER):
        vault.setRewardRate(2**64 - 1)  # stream everything at once
    price = vault.convertToAssets(10**24)
    settle(pool, 0, None)
    boa.env.time_travel(seconds=10)
    vault.accrue()
    assert vault.convertToAssets(10**24) > price


def test_empty_vault_still_finalizes(pha_deployer, vault_deployer, pool_deployer):
    with boa.env.anchor():
        world = make_world(pha_deployer, vault_deployer, pool_deployer, stake=False)
        settle(world.pool, 0, None)
        assert world.vault.rewardReserve() == INITIAL_BUDGET * 4_000 // 10_000


# ---------------------------------------------------------------- claims


def test_claim_is_cumulative_across_epochs(world):
    pool, pha = world.pool, world.pha
    settle(pool, 0, build_tree({P1: 10 * PHA, P2: 5 * PHA}))
    with boa.env.prank(P1):
        pool.claim(P1, 10 * PHA, build_tree({P1: 10 * PHA, P2: 5 * PHA}).proof(P1), False)
    # epoch 1: P1 earns 3 more, P2 earns nothing (e.g. its worker was re-registered)
    tree = build_tree({P1: 13 * PHA, P2: 5 * PHA, P3: PHA})
    settle(pool, 1, tree)
    before1, before2 = pha.balanceOf(P1), pha.balanceOf(P2)
    with boa.env.prank(P1):
        pool.claim(P1, 13 * PHA, tree.proof(P1), False)
    with boa.env.prank(P2):
        pool.claim(P2, 5 * PHA, tree.proof(P2), False)
    assert pha.balanceOf(P1) - before1 == 3 * PHA
    assert pha.balanceOf(P2) - before2 == 5 * PHA  # nothing earned in epoch 0 is lost
    assert pool.claimed(P1) == 13 * PHA and pool.claimed(P2) == 5 * PHA
    assert pool.owed() == PHA


def test_claim_as_vpha_deposits_for_the_provider(world):
    pool, vault, pha = world.pool, world.vault, world.pha
    tree = build_tree({P1: 10 * PHA})
    settle(pool, 0, tree)
    shares = vault.previewDeposit(10 * PHA)
    held = pha.balanceOf(P1)
    with boa.env.prank(P1):
        pool.claim(P1, 10 * PHA, tree.proof(P1), True)
    assert vault.balanceOf(P1) == shares > 0
    assert pha.balanceOf(P1) == held
    assert pool.owed() == 0


def test_claim_refusals(world):
    pool = world.pool
    tree = build_tree({P1: 10 * PHA, P2: PHA})
    settle(pool, 0, tree)
    with boa.env.prank(STRANGER), boa.reverts("RewardPool: only the provider claims"):
        pool.claim(P1, 10 * PHA, tree.proof(P1), False)
    with boa.env.prank(P1), boa.reverts("RewardPool: invalid proof"):
        pool.claim(P1, 11 * PHA, tree.proof(P1), False)
    with boa.env.prank(P1), boa.reverts("RewardPool: invalid proof"):
        pool.claim(P1, 10 * PHA, tree.proof(P2), False)
    with boa.env.prank(P1):
        pool.claim(P1, 10 * PHA, tree.proof(P1), False)
    with boa.env.prank(P1), boa.reverts("RewardPool: nothing to claim"):
        pool.claim(P1, 10 * PHA, tree.proof(P1), False)


def test_claim_never_pays_beyond_the_signed_total(world):
    """A root whose leaves sum to more than its signed total pays out at most the total."""
    pool = world.pool
    tree = build_tree({P1: 100 * PHA, P2: 100 * PHA})
    end_epoch(pool, 0)
    report = report_hash(0)
    pool.postRoot(
        0, tree.root, 150 * PHA, report, signatures(pool, 0, tree.root, 150 * PHA, report, (0, 1))
    )
    pass_window(pool)
    pool.finalize(0)
    with boa.env.prank(P1):
        pool.claim(P1, 100 * PHA, tree.proof(P1), False)
    with boa.env.prank(P2), boa.reverts("RewardPool: exceeds finalized total"):
        pool.claim(P2, 100 * PHA, tree.proof(P2), False)


def test_one_wei_claims_as_vpha(world):
    """vPHA has 24 decimals to PHA's 18: even one wei buys shares, so no claim is stuck."""
    pool, vault = world.pool, world.vault
    tree = build_tree({P1: 1})
    settle(pool, 0, tree)
    shares = vault.previewDeposit(1)
    assert shares > 0
    with boa.env.prank(P1):
        pool.claim(P1, 1, tree.proof(P1), True)
    assert vault.balanceOf(P1) == shares


def test_single_leaf_tree_claims_with_an_empty_proof(world):
    pool = world.pool
    tree = build_tree({P3: 4 * PHA})
    settle(pool, 0, tree)
    assert tree.proof(P3) == []
    with boa.env.prank(P3):
        pool.claim(P3, 4 * PHA, [], False)
    assert pool.claimed(P3) == 4 * PHA


# ---------------------------------------------------------------- epochs and governance


def test_current_epoch_before_genesis_is_zero(world, pool_deployer):
    future = world.genesis + 10 * HOUR
    pool = _deploy(pool_deployer, world, genesis=future)
    assert pool.currentEpoch() == 0
    boa.env.time_travel(seconds=11 * HOUR)
    assert pool.currentEpoch() == 1


def test_epoch_length_change_keeps_the_current_epoch(world):
    pool = world.pool
    boa.env.time_travel(seconds=5 * HOUR + 100)
    assert pool.currentEpoch() == 5
    start = pool.genesisTime() + 5 * HOUR
    with boa.env.prank(OWNER):
        pool.setEpochLength(2 * HOUR)
    assert pool.currentEpoch() == 5
    assert pool.genesisTime() + 5 * pool.epochLength() == start
    boa.env.time_travel(seconds=2 * HOUR)
    assert pool.currentEpoch() == 6
    with boa.env.prank(OWNER):
        pool.setEpochLength(60)  # 100 s into epoch 6, which keeps its start: now in epoch 7
    assert pool.currentEpoch() == 7
    assert pool.genesisTime() + 6 * 60 == start + 2 * HOUR


def test_epoch_length_change_that_would_start_before_zero_is_refused(world, pool_deployer):
    pool = _deploy(pool_deployer, world, genesis=0)  # epoch ~ unix time / 3600
    with boa.env.prank(OWNER), boa.reverts("RewardPool: epoch length too long for the schedule"):
        pool.setEpochLength(30 * DAY)
    with boa.env.prank(OWNER):
        pool.setEpochLength(HOUR // 2)


OWNER_CALLS = [
    ("setBudgetSchedule", (PHA, 10)),
    ("setSplit", (1_000, 1_000, 8_000)),
    ("setMinUptimeBps", (5_000,)),
    ("setChallengeWindow", (2 * HOUR,)),
    ("setEpochLength", (2 * HOUR,)),
    ("setGuardian", (STRANGER,)),
    ("setTreasury", (STRANGER,)),
    ("setAttester", (ATTESTERS[3].address, True)),
    ("setThreshold", (3,)),
    ("transfer_ownership", (STRANGER,)),
]


@pytest.mark.parametrize(("name", "args"), OWNER_CALLS)
def test_privileged_functions_refuse_anyone_but_the_owner(world, name, args):
    for caller in (STRANGER, GUARDIAN, TREASURY):
        with boa.env.prank(caller), boa.reverts("ownable: caller is not the owner"):
            getattr(world.pool, name)(*args)
    with boa.env.prank(OWNER):
        getattr(world.pool, name)(*args)


def test_setters_change_the_numbers(world):
    pool = world.pool
    with boa.env.prank(OWNER):
        pool.setBudgetSchedule(PHA, 10)
        pool.setSplit(1_000, 1_000, 8_000)
        pool.setMinUptimeBps(5_000)
        pool.setChallengeWindow(2 * HOUR)
        pool.setGuardian(STRANGER)
        pool.setTreasury(STAKER)
    assert (pool.initialBudget(), pool.halfLifeEpochs()) == (PHA, 10)
    assert pool.splitBps() == (1_000, 1_000, 8_000)
    assert pool.minUptimeBps() == 5_000
    assert pool.challengeWindow() == 2 * HOUR
    assert pool.guardian() == STRANGER and pool.treasury() == STAKER


@pytest.mark.parametrize(
    ("name", "args", "reason"),
    [
        ("setBudgetSchedule", (2**96, 1), "RewardPool: budget too large"),
        ("setBudgetSchedule", (PHA, 0), "RewardPool: bad half-life"),
        ("setBudgetSchedule", (PHA, 2**64), "RewardPool: bad half-life"),
        ("setSplit", (2_000, 4_000, 4_001), "RewardPool: split must sum to 10000"),
        ("setSplit", (0, 0, 0), "RewardPool: split must sum to 10000"),
        ("setMinUptimeBps", (10_001,), "RewardPool: uptime above 100%"),
        ("setChallengeWindow", (30 * DAY + 1,), "RewardPool: challenge window too long"),
        ("setEpochLength", (0,), "RewardPool: bad epoch length"),
        ("setEpochLength", (30 * DAY + 1,), "RewardPool: bad epoch length"),
        ("setTreasury", (ZERO,), "RewardPool: zero treasury"),
    ],
)
def test_setters_refuse_out_of_range_values(world, name, args, reason):
    with boa.env.prank(OWNER), boa.reverts(reason):
        getattr(world.pool, name)(*args)


def test_split_change_applies_to_later_posts(world):
    pool = world.pool
    with boa.env.prank(OWNER):
        pool.setSplit(0, 0, 10_000)
    end_epoch(pool, 0)
    post(pool, 0, build_tree({P1: INITIAL_BUDGET}))
    assert pool.pending(0)[2] == INITIAL_BUDGET


def test_attester_rotation_takes_effect_for_posts(world):
    pool = world.pool
    with boa.env.prank(OWNER):
        pool.setAttester(ATTESTERS[3].address, True)
        pool.setAttester(ATTESTERS[0].address, False)
    end_epoch(pool, 0)
    with boa.reverts("attester_set: unknown attester"):
        post(pool, 0, None, signers=(0, 1))
    post(pool, 0, None, signers=(3, 1))
