"""The column-wide tree build equals OpenZeppelin's algorithm written out plainly, and
names a bad leaf as the one-leaf-at-a-time encoding would."""

from __future__ import annotations

import random

import pytest

from veil.errors import InputError
from veil.merkle import build_tree, leaf_hash, node_hash


def _reference_tree(values: list[tuple[int, bytes, int, int]]) -> tuple[list[bytes], list[int]]:
    """OpenZeppelin's algorithm written out plainly: one leaf and one node at a time."""
    count = len(values)
    hashes = [leaf_hash(v) for v in values]
    order = sorted(range(count), key=hashes.__getitem__)
    tree = [b""] * (2 * count - 1)
    indices = [0] * count
    for position, value_index in enumerate(order):
        tree[2 * count - 2 - position] = hashes[value_index]
        indices[value_index] = 2 * count - 2 - position
    for i in range(count - 2, -1, -1):
        tree[i] = node_hash(tree[2 * i + 1], tree[2 * i + 2])
    return tree, indices


@pytest.mark.parametrize("count", [*range(1, 20), 33, 64, 65, 200, 70_000])
def test_bulk_tree_build_equals_the_plain_algorithm(count: int) -> None:
    rng = random.Random(count)
    values = [
        (i, rng.randbytes(32), rng.randrange(2**256), rng.randrange(10**20)) for i in range(count)
    ]
    tree, indices = _reference_tree(values)
    for workers in (1, 2):
        built = build_tree(values, workers=workers)
        assert built.tree == tree and built.tree_indices == indices


@pytest.mark.parametrize(
    ("spoil", "message"),
    [
        ((3, b"\1" * 31, 5, 5), r"leaf 3: account must be 32 bytes"),
        ((-1, b"\1" * 32, 5, 5), r"leaf -1: index -1 does not fit"),
        ((3, b"\1" * 32, 2**256, 5), r"leaf 3: free \d+ does not fit"),
        ((3, b"\1" * 32, 5, -2), r"leaf 3: staked -2 does not fit"),
    ],
)
def test_bulk_tree_build_names_a_bad_leaf(spoil: tuple[int, bytes, int, int], message: str) -> None:
    values = [(i, bytes([i]) * 32, i, 0) for i in range(10)]
    values[3] = spoil
    with pytest.raises(InputError, match=message):
        build_tree(values, workers=1)
