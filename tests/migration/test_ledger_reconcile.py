"""Ledger conversion and reconciliation: examples for every refusal, and a property test."""

from __future__ import annotations

from collections import defaultdict

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from veil.migration.account_storage import AccountRow
from veil.migration.ledger import WEI_PER_PLANCK, LedgerRefused, build_ledger
from veil.migration.positions import Exclusion, Position, module_account
from veil.migration.snapshot import Snapshot

POOL_A = module_account(b"phala/sp", 1)
POOL_B = module_account(b"phala/sp", 2)
VAULT = module_account(b"phala/vt", 1)
TREASURY = module_account(b"py/trsry")
ALICE, BOB, CAROL = (bytes([n]) * 32 for n in (1, 2, 3))


def row(account: bytes, free: int, reserved: int = 0) -> AccountRow:
    return AccountRow(account, free, reserved, 0, 0, 0, 0, 1, 0)


def snap(balances: dict[bytes, tuple[int, int]], issuance: int | None = None) -> Snapshot:
    rows = [row(a, f, r) for a, (f, r) in sorted(balances.items())]
    total = sum(f + r for f, r in balances.values()) if issuance is None else issuance
    return Snapshot(total, rows, "0x00", block="0x" + "11" * 32, genesis_hash="0x" + "22" * 32)


def test_free_reserved_and_staked_convert_exactly() -> None:
    state = snap({ALICE: (7, 3), BOB: (1, 0), POOL_A: (500, 0), TREASURY: (40, 0)})
    positions = [Position(ALICE, 200, "modl:phala/sp:1"), Position(CAROL, 300, "modl:phala/sp:1")]
    exclusions = [Exclusion(TREASURY, "treasury", "treasury")]
    ledger = build_ledger(state, positions, exclusions)
    leaves = {leaf.account: (leaf.free_wei, leaf.staked_wei) for leaf in ledger.leaves}
    assert leaves == {
        ALICE: (10 * WEI_PER_PLANCK, 200 * WEI_PER_PLANCK),
        BOB: (1 * WEI_PER_PLANCK, 0),
        CAROL: (0, 300 * WEI_PER_PLANCK),  # a delegator without an account entry still migrates
    }
    assert [leaf.index for leaf in ledger.leaves] == [0, 1, 2]
    assert [leaf.account for leaf in ledger.leaves] == sorted(leaves)
    assert [(e.account, e.reason, e.amount_wei) for e in ledger.excluded] == [
        (TREASURY, "treasury", 40 * WEI_PER_PLANCK)
    ]
    assert ledger.backing[0].account == POOL_A and ledger.backing[0].dust_wei == 0
    assert ledger.reconciliation()[-1] == ("difference", 0)
    # 551 planck issued = 11 free (Alice 10, Bob 1) + 500 staked + 40 treasury.
    assert (ledger.free_wei, ledger.staked_wei, ledger.excluded_wei) == (
        11 * WEI_PER_PLANCK,
        500 * WEI_PER_PLANCK,
        40 * WEI_PER_PLANCK,
    )
    assert ledger.total_issuance_wei == 551 * WEI_PER_PLANCK


def test_positions_short_of_the_pool_balance_are_refused_then_accepted_as_dust() -> None:
    state = snap({ALICE: (5, 0), POOL_A: (1003, 0), POOL_B: (10, 0)})
    positions = [
        Position(ALICE, 1000, "modl:phala/sp:1"),
        Position(BOB, 10, "modl:phala/sp:2"),
    ]
    with pytest.raises(LedgerRefused, match=r"modl:phala/sp:1 .* exceeds its positions 1000 by 3"):
        build_ledger(state, positions)
    ledger = build_ledger(state, positions, accept_dust=3)
    dust = [e for e in ledger.excluded if e.reason == "rounding dust"]
    assert [(d.account, d.amount_wei) for d in dust] == [(POOL_A, 3 * WEI_PER_PLANCK)]
    assert ledger.reconciliation()[-1][1] == 0
    with pytest.raises(LedgerRefused, match=r"by 3 planck \(more than --accept-dust 2\)"):
        build_ledger(state, positions, accept_dust=2)


def test_positions_exceeding_the_backing_are_always_refused() -> None:
    state = snap({POOL_A: (99, 0)})
    with pytest.raises(LedgerRefused, match=r"positions 100 planck exceed its balance 99 by 1"):
        build_ledger(state, [Position(ALICE, 100, "modl:phala/sp:1")], accept_dust=10**9)


def test_named_pools_need_a_backing_account_from_the_exclusions_file() -> None:
    state = snap({VAULT: (50, 0), ALICE: (1, 0)})
    positions = [Position(ALICE, 50, "vault-1"), Position(BOB, 0, "vault-1")]
    with pytest.raises(LedgerRefused) as refused:
        build_ledger(state, positions)
    assert "pool 'vault-1': 2 positions but no backing account" in refused.value.problems[0]
    assert any("module account" in p and VAULT.hex() in p for p in refused.value.problems)
    backing = [Exclusion(VAULT, "backs staked positions", "vault", ("vault-1",))]
    ledger = build_ledger(state, positions, backing)
    assert ledger.backing[0].pools == ("vault-1",)


def test_unnamed_module_accounts_and_wrong_issuance_are_refused() -> None:
    with pytest.raises(LedgerRefused, match=r"module account 0x6d6f646c.* holds 40 planck"):
        build_ledger(snap({ALICE: (1, 0), TREASURY: (40, 0)}))
    with pytest.raises(LedgerRefused, match=r"differ from it by 1000000 wei"):
        build_ledger(snap({ALICE: (1, 0)}, issuance=2))
    with pytest.raises(LedgerRefused, match=r"differ from it by -1000000 wei"):
        build_ledger(snap({ALICE: (2, 0)}, issuance=1))


def test_excluded_accounts_cannot_hold_positions_or_be_listed_twice() -> None:
    state = snap({TREASURY: (40, 0), POOL_A: (5, 0)})
    exclusions = [Exclusion(TREASURY, "treasury")]
    with pytest.raises(LedgerRefused, match=r"holder 0x6d6f.* is itself an excluded account"):
        build_ledger(state, [Position(TREASURY, 5, "modl:phala/sp:1")], exclusions)
    with pytest.raises(LedgerRefused, match=r"backed by 0x6d6f.*excluded as 'treasury'"):
        build_ledger(state, [Position(ALICE, 5, "0x" + TREASURY.hex())], exclusions)
    # The pool account holds a position before anything names it as a backer.
    backer_holds = [Position(POOL_A, 0, "modl:phala/sp:1"), Position(ALICE, 5, "modl:phala/sp:1")]
    with pytest.raises(LedgerRefused, match=r"module account backing stake holds positions"):
        build_ledger(state, backer_holds)
    with pytest.raises(LedgerRefused, match=r"listed twice"):
        build_ledger(state, [Position(ALICE, 5, "modl:phala/sp:1")], exclusions * 2)


accounts = st.binary(min_size=32, max_size=32).filter(lambda a: not a.startswith(b"modl"))
planck = st.integers(0, 10**22)


@st.composite
def scenarios(draw: st.DrawFn) -> tuple[Snapshot, list[Position], list[Exclusion], int, dict]:
    holders = draw(st.lists(accounts, min_size=1, max_size=12, unique=True))
    balances = {a: (draw(planck), draw(st.integers(0, 10**15))) for a in holders}
    positions: list[Position] = []
    pools = draw(st.integers(0, 3))
    for pid in range(pools):
        stakes = draw(st.lists(st.tuples(st.sampled_from(holders), planck), max_size=5))
        positions += [Position(a, s, f"modl:phala/sp:{pid}") for a, s in stakes]
        held = sum(s for _, s in stakes)
        skew = draw(st.sampled_from([0, 0, 1, 7, -1, -5]))
        balances[module_account(b"phala/sp", pid)] = (max(0, held + skew), 0)
    exclusions = []
    if draw(st.booleans()):
        balances[TREASURY] = (draw(planck), 0)
        exclusions.append(Exclusion(TREASURY, "treasury", "treasury"))
    if draw(st.booleans()) and len(holders) > 1:
        excluded = holders[-1]
        if all(p.account != excluded for p in positions):
            exclusions.append(Exclusion(excluded, "bridge reserve", "bridge"))
    total = sum(f + r for f, r in balances.values())
    issuance = total + draw(st.sampled_from([0, 0, 0, 1, -1]))
    return (
        snap(balances, max(issuance, 0)),
        positions,
        exclusions,
        draw(st.integers(0, 8)),
        balances,
    )


@given(scenarios())
@settings(max_examples=150, deadline=None)
def test_conservation_or_refusal(scenario) -> None:  # type: ignore[no-untyped-def]
    state, positions, exclusions, dust, balances = scenario
    try:
        ledger = build_ledger(state, positions, exclusions, accept_dust=dust)
    except LedgerRefused as refused:
        assert refused.problems and all(isinstance(p, str) and p for p in refused.problems)
        return
    free, staked, excluded = ledger.free_wei, ledger.staked_wei, ledger.excluded_wei
    assert state.total_issuance * WEI_PER_PLANCK == free + staked + excluded
    # Never loses a planck: every balance is a leaf, backs positions, or is excluded.
    assert sum(f + r for f, r in balances.values()) * WEI_PER_PLANCK == free + staked + excluded
    expected_stake: dict[bytes, int] = defaultdict(int)
    for p in positions:
        expected_stake[p.account] += p.staked * WEI_PER_PLANCK
    excluded_accounts = {e.account for e in exclusions}
    leaves = {leaf.account: leaf for leaf in ledger.leaves}
    for account, (f, r) in balances.items():
        if account.startswith(b"modl") or account in excluded_accounts:
            assert account not in leaves
        elif f + r or expected_stake[account]:
            assert leaves[account].free_wei == (f + r) * WEI_PER_PLANCK
            assert leaves[account].staked_wei == expected_stake[account]
    for backing in ledger.backing:
        assert 0 <= backing.dust_wei <= dust * WEI_PER_PLANCK
