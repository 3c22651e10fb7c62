"""Reading every entry under a prefix out of read-proof nodes (`phala_proof.entries_under`):
what a proof of the listed keys shows must be exactly the storage under the prefix, and a
listing that leaves a key out must be caught, for any storage and either trie layout."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from veil.migration.phala_proof import entries_under, node_database
from veil.substrate.trie import ProofError, StateVersion, read_proof, trie_root

# Keys share a few short prefixes so that branches, extensions and prefix boundaries that
# fall inside a node's partial key all occur; values cross V1's 32-byte hashing threshold.
_heads = st.sampled_from([b"", b"\x12", b"\x12\x34", b"\x12\x35", b"\xab\xcd\xef"])
_keys = st.builds(lambda head, tail: head + tail, _heads, st.binary(min_size=0, max_size=5))
_storage = st.dictionaries(_keys, st.binary(min_size=0, max_size=40), min_size=1, max_size=40)
_prefixes = st.builds(lambda head, tail: head + tail, _heads, st.binary(max_size=1))


def _under(storage: dict[bytes, bytes], prefix: bytes) -> dict[bytes, bytes]:
    return {key: value for key, value in storage.items() if key.startswith(prefix)}


@settings(max_examples=150, deadline=None)
@given(_storage, _prefixes, st.sampled_from(list(StateVersion)))
def test_a_proof_of_the_listed_keys_shows_exactly_the_entries_under_the_prefix(
    storage: dict[bytes, bytes], prefix: bytes, version: StateVersion
) -> None:
    nodes: dict[bytes, bytes] = {}
    root = trie_root(storage, version, nodes=nodes)
    listed = sorted(_under(storage, prefix))
    proof = read_proof(root, nodes, listed or [prefix])  # an empty item: the path to it
    assert entries_under(root, node_database(proof), prefix) == _under(storage, prefix)
    # And from the whole database, the same (the walk never strays outside the prefix).
    assert entries_under(root, nodes, prefix) == _under(storage, prefix)


@settings(max_examples=150, deadline=None)
@given(_storage, _prefixes, st.sampled_from(list(StateVersion)), st.data())
def test_a_listing_that_leaves_a_key_out_is_caught(
    storage: dict[bytes, bytes],
    prefix: bytes,
    version: StateVersion,
    data: st.DataObject,
) -> None:
    under = sorted(_under(storage, prefix))
    if not under:
        return
    hidden = data.draw(st.sampled_from(under))
    nodes: dict[bytes, bytes] = {}
    root = trie_root(storage, version, nodes=nodes)
    listed = [key for key in under if key != hidden]
    proof = read_proof(root, nodes, listed or [prefix])
    try:
        shown = entries_under(root, node_database(proof), prefix)
    except ProofError as error:
        assert "is not in the proof" in str(error)
    else:  # a small node inlined in its parent: its entry is in the proof after all
        assert shown == _under(storage, prefix) and hidden in shown


def test_a_missing_root_is_named() -> None:
    nodes: dict[bytes, bytes] = {}
    root = trie_root({b"\x01" * 40: b"\x02" * 40}, StateVersion.V1, nodes=nodes)
    with pytest.raises(ProofError, match=r"key path 0x\(root\): trie node .* is not in the proof"):
        entries_under(root, {}, b"\x01")
