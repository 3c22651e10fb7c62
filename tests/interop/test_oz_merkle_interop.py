"""Our tree against @openzeppelin/merkle-tree itself (node, from the repo's node_modules)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from veil.merkle import (
    LEAF_ENCODING,
    Multiproof,
    build_tree,
    load_tree,
    value_to_json,
    verify_multiproof,
    verify_proof,
    write_tree,
)
from veil.migration.ledger import build_ledger, tree_from_ledger
from veil.migration.snapshot import snapshot_from_raw
from veil.migration.synthetic import generate_state, raw_document

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "tests" / "interop" / "js" / "oz_tree.js"


def _node(*args: str) -> dict:
    done = subprocess.run(
        ["node", str(SCRIPT), *args], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


@pytest.fixture(scope="module")
def tree_and_dump(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    folder = tmp_path_factory.mktemp("oz")
    state = generate_state(700, seed=5)
    raw = folder / "raw.json"
    raw.write_text(json.dumps(raw_document(state)))
    ledger = build_ledger(snapshot_from_raw(raw), state.positions, state.exclusions)
    tree = tree_from_ledger(ledger)
    dump_path = folder / "tree.json"
    write_tree(tree, dump_path)  # the fast text writer the CLI uses
    assert json.loads(dump_path.read_text()) == tree.dump()
    return tree, dump_path, folder


def test_openzeppelin_loads_our_dump_and_agrees_on_proofs(tree_and_dump) -> None:  # type: ignore[no-untyped-def]
    tree, dump_path, _ = tree_and_dump
    indices = [0, 1, 17, 350, len(tree.values) - 1]
    theirs = _node("load", str(dump_path), json.dumps(indices))  # load() validates every node
    assert theirs["root"] == "0x" + tree.root.hex()
    assert theirs["length"] == len(tree.values)
    for item in theirs["proofs"]:
        assert item["proof"] == ["0x" + p.hex() for p in tree.proof(item["index"])]
        assert item["value"] == value_to_json(tree.values[item["index"]])
    ours = tree.multiproof(indices).to_json()
    assert theirs["multiproof"] == ours


def test_openzeppelin_of_on_the_same_leaves_dumps_identically(tree_and_dump) -> None:  # type: ignore[no-untyped-def]
    tree, dump_path, folder = tree_and_dump
    values = folder / "values.json"
    values.write_text(json.dumps([value_to_json(v) for v in tree.values]))
    theirs_path = folder / "theirs.json"
    answer = _node("of", str(values), str(theirs_path))
    assert answer["root"] == "0x" + tree.root.hex()
    ours = json.loads(dump_path.read_text())
    ours.pop("veil")  # our metadata; everything else is byte-for-byte their format
    assert json.loads(theirs_path.read_text()) == ours
    # ... and the dump OpenZeppelin wrote loads with our loader, full validation included.
    reloaded = load_tree(theirs_path)
    assert reloaded.root == tree.root and reloaded.values == tree.values


def test_openzeppelin_verifies_our_proofs_and_refuses_tampered_ones(tree_and_dump) -> None:  # type: ignore[no-untyped-def]
    tree, _, folder = tree_and_dump
    picks = [3, 99, 420]
    proofs = [
        {"value": value_to_json(tree.values[i]), "proof": ["0x" + p.hex() for p in tree.proof(i)]}
        for i in picks
    ]
    forged = dict(proofs[0], value=list(proofs[0]["value"]))
    forged["value"][2] = str(int(forged["value"][2]) + 1)  # one more wei
    check = folder / "check.json"
    check.write_text(
        json.dumps(
            {
                "root": "0x" + tree.root.hex(),
                "proofs": [*proofs, forged],
                "multiproof": tree.multiproof(picks).to_json(),
            }
        )
    )
    answer = _node("verify", str(check))
    assert answer == {"proofs": [True, True, True, False], "multiproof": True}
    # Ours refuses the same forgery.
    value = tree.values[3]
    assert verify_proof(tree.root, value, tree.proof(3))
    assert not verify_proof(tree.root, (value[0], value[1], value[2] + 1, value[3]), tree.proof(3))


def test_small_trees_and_multiproof_edge_cases_match_openzeppelin(tmp_path: Path) -> None:
    for count in (1, 2, 3, 5):
        values = [(i, bytes([i + 1]) * 32, 10**18 * (i + 1), i * 7) for i in range(count)]
        tree = build_tree(values)
        path = tmp_path / f"v{count}.json"
        path.write_text(json.dumps([value_to_json(v) for v in values]))
        assert _node("of", str(path))["root"] == "0x" + tree.root.hex()
        everything = tree.multiproof(list(range(count)))
        assert verify_multiproof(tree.root, everything)
        nothing = tree.multiproof([])
        assert nothing.proof == [tree.root] and verify_multiproof(tree.root, nothing)
    assert list(LEAF_ENCODING) == ["uint256", "bytes32", "uint256", "uint256"]
    bad = Multiproof(everything.leaves, everything.proof, [*everything.proof_flags, True])
    assert not verify_multiproof(tree.root, bad)
