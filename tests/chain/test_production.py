"""The production genesis's input checks, without a chain: what is refused, and why.

A wrong root committed at deployment can only be replaced by governance, and governance
has no votes until claims succeed against the right root; so every mismatch between the
published tree and ledger must be caught before the first transaction.
"""

from __future__ import annotations

import json

import pytest

from veil.atomic import write_json
from veil.chain.addresses import parse_address
from veil.errors import InputError
from veil.merkle import write_tree
from veil.migration.ledger import Leaf, Ledger, build_ledger, tree_from_ledger
from veil.migration.ledger_format import write_ledger
from veil.migration.snapshot import snapshot_from_raw
from veil.migration.synthetic import generate_state, raw_document
from veil.network.production import (
    PHA_CAP_WEI,
    check_production,
    migration_source,
    production_parameters,
)

A1, A2, A3 = (f"0x{n:040x}" for n in (0xA1, 0xA2, 0xA3))
DEPLOYER = f"0x{0xD0:040x}"


@pytest.fixture(scope="module")
def published(tmp_path_factory: pytest.TempPathFactory):
    """TREE.json and LEDGER.json of a small synthetic parachain, as `veil migrate` writes."""
    work = tmp_path_factory.mktemp("published")
    state = generate_state(40, seed=3)
    raw = work / "raw.json"
    write_json(raw, raw_document(state))
    ledger = build_ledger(snapshot_from_raw(raw), state.positions, state.exclusions)
    write_ledger(ledger, work / "ledger.json")
    write_tree(tree_from_ledger(ledger), work / "tree.json")
    return ledger, work / "tree.json", work / "ledger.json"


def test_source_commits_the_ledger_totals_and_the_tree_root(published) -> None:
    ledger, tree, ledger_file = published
    source = migration_source(tree, ledger_file)
    assert source.root == tree_from_ledger(ledger).root
    assert (source.total_free, source.total_staked) == (ledger.free_wei, ledger.staked_wei)
    assert source.leaf_count == len(ledger.leaves) > 0
    assert source.genesis_hash == ledger.snapshot["genesis_hash"]
    committed = source.commit(1_900_000_000)
    assert committed.deadline == 1_900_000_000 and committed.root == source.root


def test_tree_of_other_leaves_with_the_same_totals_is_refused(published, tmp_path) -> None:
    ledger, _, ledger_file = published
    # move one wei of free balance from leaf 0 to leaf 1: same totals, same issuance
    leaves = list(ledger.leaves)
    a, b = leaves[0], leaves[1]
    assert a.free_wei > 0
    leaves[0] = Leaf(a.index, a.account, a.free_wei - 1, a.staked_wei)
    leaves[1] = Leaf(b.index, b.account, b.free_wei + 1, b.staked_wei)
    ledger.leaves, original = leaves, ledger.leaves
    try:
        other = write_tree(tree_from_ledger(ledger), tmp_path / "other-tree.json")
    finally:
        ledger.leaves = original
    with pytest.raises(InputError, match=r"leaf 0 .* differs from ledger"):
        migration_source(other, ledger_file)


def test_tree_with_other_totals_is_refused(published, tmp_path) -> None:
    _, tree, ledger_file = published
    document = json.loads(ledger_file.read_text())
    row = next(r for r in document["leaves"] if int(r[2]) > 0)
    row[2], row[3] = str(int(row[2]) - 1), str(int(row[3]) + 1)
    other = tmp_path / "other-ledger.json"
    other.write_text(json.dumps(document))
    with pytest.raises(InputError, match="do not match ledger"):
        migration_source(tree, other)


def test_ledger_of_another_chain_is_refused(published, tmp_path) -> None:
    _, tree, ledger_file = published
    document = json.loads(ledger_file.read_text())
    document["snapshot"]["genesis_hash"] = "0x" + "ab" * 32
    other = tmp_path / "other-genesis.json"
    other.write_text(json.dumps(document))
    with pytest.raises(InputError, match=r"genesis 0x\w+ is not ledger"):
        migration_source(tree, other)


def test_tampered_tree_is_refused(published, tmp_path) -> None:
    _, tree, ledger_file = published
    document = json.loads(tree.read_text())
    document["tree"][0] = "0x" + "00" * 32
    tampered = tmp_path / "tampered.json"
    tampered.write_text(json.dumps(document))
    with pytest.raises(InputError, match="not the hash of its children"):
        migration_source(tampered, ledger_file)


def test_production_parameters_fund_nobody() -> None:
    params = production_parameters([A1, A2], 2)
    assert params.reward_reserve_pha == 0
    assert params.reward_rate == 0 and params.attester_threshold == 2
    check_production(params, DEPLOYER, None, 180)  # accepted as is


@pytest.mark.parametrize(
    ("attesters", "threshold", "guardian", "days", "message"),
    [
        ([], 1, None, 180, "no --attester"),
        ([A1, A1], 1, None, 180, "given twice"),
        ([A1, A2], 0, None, 180, "--threshold 0: must be 1..2"),
        ([A1, A2], 3, None, 180, "--threshold 3: must be 1..2"),
        ([f"0x{n:040x}" for n in range(1, 11)], 9, None, 180, "at most 8"),
        ([A1, DEPLOYER], 1, None, 180, "is the deployer"),
        ([A1], 1, DEPLOYER, 180, "is the deployer"),
        ([A1], 1, A3, 0, "--claim-days 0"),
    ],
)
def test_check_production_refuses(attesters, threshold, guardian, days, message) -> None:
    params = production_parameters(attesters, threshold)
    with pytest.raises(InputError, match=message):
        check_production(params, DEPLOYER, guardian, days)


def test_check_production_refuses_funding() -> None:
    params = production_parameters([A1], 1)
    params.reward_reserve_pha = 1
    with pytest.raises(InputError, match="funds nobody"):
        check_production(params, DEPLOYER, None, 180)


@pytest.mark.parametrize(
    ("text", "why"),
    [("none", "not an address"), ("0x" + "00" * 20, "the zero address"),
     ("0x1234", "not an address"), ("alice", "not an address")],
)  # fmt: skip
def test_parse_address_refuses(text: str, why: str) -> None:
    with pytest.raises(InputError, match=why):
        parse_address(text, "--guardian")


def test_totals_above_the_pha_cap_are_refused(tmp_path) -> None:
    """A reconciled ledger of more than 1 B PHA: the Migrator could never pay it in full."""
    half = PHA_CAP_WEI // 2 + 10**18
    leaves = [Leaf(0, b"\x01" * 32, half, 0), Leaf(1, b"\x02" * 32, 0, half)]
    ledger = Ledger(2 * half // 10**6, leaves, [], [], snapshot={"genesis_hash": "0x" + "11" * 32})
    write_ledger(ledger, tmp_path / "ledger.json")
    write_tree(tree_from_ledger(ledger), tmp_path / "tree.json")
    with pytest.raises(InputError, match="above PHA's cap"):
        migration_source(tmp_path / "tree.json", tmp_path / "ledger.json")
