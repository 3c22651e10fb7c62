"""Tree construction: the parallel build equals the serial one, proofs verify everywhere."""

from __future__ import annotations

import random

import pytest

from veil.errors import InputError
from veil.merkle.tree import (
    _internal_ranges,
    build_tree,
    leaf_hash,
    node_hash,
    verify_multiproof,
    verify_proof,
)


def _values(count: int, seed: int = 0) -> list[tuple[int, bytes, int, int]]:
    rng = random.Random(seed)
    return [
        (i, rng.randbytes(32), rng.randrange(10**24), rng.randrange(10**20)) for i in range(count)
    ]


@pytest.mark.parametrize("count", [4, 5, 7, 8, 9, 31, 32, 33, 100, 1025])
def test_parallel_build_is_identical(count: int) -> None:
    values = _values(count, count)
    serial = build_tree(values, workers=1)
    parallel = build_tree(values, workers=2)
    assert parallel.tree == serial.tree
    assert parallel.tree_indices == serial.tree_indices


@pytest.mark.parametrize("count", range(2, 40))
def test_internal_halves_cover_every_internal_node_once(count: int) -> None:
    left = [i for span in _internal_ranges(count, right=False) for i in span]
    right = [i for span in _internal_ranges(count, right=True) for i in span]
    assert sorted(left + right + [0]) == list(range(count - 1))
    # Deepest first: every node comes after both of its internal children.
    for order in (left, right):
        seen: set[int] = set()
        for i in order:
            for child in (2 * i + 1, 2 * i + 2):
                assert child > count - 2 or child in seen
            seen.add(i)


def test_every_leaf_proves_and_the_root_is_the_pairwise_hash() -> None:
    values = _values(13, 3)
    tree = build_tree(values)
    for i, value in enumerate(values):
        proof = tree.proof(i)
        assert verify_proof(tree.root, value, proof)
        assert tree.tree[tree.tree_indices[i]] == leaf_hash(value)
    assert tree.root == node_hash(tree.tree[1], tree.tree[2])
    assert verify_multiproof(tree.root, tree.multiproof([0, 5, 12]))
    with pytest.raises(InputError, match=r"asked for twice"):
        tree.multiproof([1, 1])
    with pytest.raises(InputError, match=r"at least one leaf"):
        build_tree([])
    with pytest.raises(InputError, match=r"does not fit in uint256"):
        build_tree([(0, bytes(32), 2**256, 0)])


def test_dump_text_is_the_dump() -> None:
    import json

    tree = build_tree(_values(300, 7), workers=1)
    assert json.loads(tree.dump_text()) == json.loads(json.dumps(tree.dump()))
