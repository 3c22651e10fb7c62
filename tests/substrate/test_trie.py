"""The Substrate trie: real genesis hashes, an independent oracle, and read proofs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from trie_oracle import oracle_root

from veil.errors import ChainError
from veil.substrate.chainspec import genesis_state, load_chain_spec, runtime_version
from veil.substrate.header import header_hash, state_root_of_block
from veil.substrate.trie import (
    EMPTY_TRIE_ROOT,
    ProofError,
    StateVersion,
    decode_node,
    read_proof,
    trie_root,
    verify_read_proof,
)

SPECS = Path(__file__).resolve().parents[2].parent / "shared" / "fixtures" / "substrate" / "specs"

# Published genesis hashes (polkadot-js/common networks, quoted in the fixtures README).
PUBLISHED = {
    "khala": "0xd43540ba6d3eb4897c28a77d48cb5b729fea37603cbbfc7a86a73b72adb3be8d",
    "phala": "0x1bb969d85965e4bb5a651abbedf21a54b6b31a21f66b5401cc3f1e286268d736",
}


@pytest.mark.parametrize("chain", sorted(PUBLISHED))
def test_real_spec_genesis_hash_is_the_published_one(chain: str) -> None:
    state = genesis_state(load_chain_spec(SPECS / f"{chain}.json"))
    assert state.state_version is StateVersion.V0
    assert "0x" + state.genesis_hash.hex() == PUBLISHED[chain]


def test_runtime_version_is_read_from_the_wasm() -> None:
    khala = load_chain_spec(SPECS / "khala.json")
    version = runtime_version(khala.top[b":code"])
    assert (version.spec_name, version.spec_version) == ("khala", 1)
    assert not version.state_version_declared  # 2021 runtime: before state versions
    rhala = load_chain_spec(SPECS / "rhala.json")
    declared = runtime_version(rhala.top[b":code"])
    assert declared.state_version_declared and declared.state_version is StateVersion.V0


def test_other_state_version_gives_another_root() -> None:
    spec = load_chain_spec(SPECS / "khala.json")
    v1 = genesis_state(spec, StateVersion.V1)
    assert "0x" + v1.genesis_hash.hex() != PUBLISHED["khala"]
    assert v1.state_version_source == "given"


def test_2019_format_spec_reads_as_the_same_state(tmp_path: Path) -> None:
    document = json.loads((SPECS / "khala.json").read_text())
    document["genesis"]["raw"] = [document["genesis"]["raw"]["top"], {}]
    legacy = tmp_path / "legacy.json"
    legacy.write_text(json.dumps(document))
    spec = load_chain_spec(legacy)
    assert spec.legacy_format
    assert "0x" + genesis_state(spec).genesis_hash.hex() == PUBLISHED["khala"]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("[]", "not a chain spec"),
        ('{"genesis": {"runtime": {}}}', "not a raw chain spec"),
        ('{"genesis": {"raw": {"top": {"0x12": "zz"}}}}', "0x-prefixed hex"),
        ('{"genesis": {"raw": [1, 2, 3]}}', "2019-format raw spec"),
        ('{"genesis": {"raw": {"top": {"0x00": "0x01"}}}}', "no :code"),
    ],
)
def test_bad_specs_are_one_line(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "spec.json"
    path.write_text(content)
    with pytest.raises(Exception, match=message) as raised:
        genesis_state(load_chain_spec(path))
    assert "\n" not in str(raised.value)


def test_empty_trie() -> None:
    assert trie_root({}) == EMPTY_TRIE_ROOT == oracle_root({})


_keys = st.binary(min_size=0, max_size=40)
_values = st.binary(min_size=0, max_size=70)
# Few distinct leading bytes make long shared prefixes, nested branches and keys that are
# prefixes of other keys (branch values), which is where trie encoders go wrong.
_clustered = st.lists(st.sampled_from([b"", b"\x00", b"\x01\x02", b"\xff" * 3]), max_size=4).map(
    b"".join
)
_entries = st.dictionaries(st.builds(lambda a, b: a + b, _clustered, _keys), _values, max_size=60)


@settings(max_examples=300, deadline=None)
@given(entries=_entries, version=st.sampled_from(list(StateVersion)))
def test_fast_builder_matches_the_oracle(
    entries: dict[bytes, bytes], version: StateVersion
) -> None:
    assert trie_root(entries, version) == oracle_root(entries, version is StateVersion.V1)


def test_long_partial_keys_use_extended_headers() -> None:
    # Partial keys of 62, 63, 317 and 318 nibbles sit on the header's continuation limits.
    for size in (31, 32, 159, 160):
        entries = {b"\x10" * size: b"v", b"\x20" * size: b"w" * 40}
        for version in StateVersion:
            assert trie_root(entries, version) == oracle_root(entries, version is StateVersion.V1)


@settings(max_examples=100, deadline=None)
@given(
    entries=_entries,
    probes=st.lists(_keys, max_size=5),
    version=st.sampled_from(list(StateVersion)),
)
def test_read_proofs_show_every_value_and_every_absence(
    entries: dict[bytes, bytes], probes: list[bytes], version: StateVersion
) -> None:
    nodes: dict[bytes, bytes] = {}
    root = trie_root(entries, version, nodes=nodes)
    if not entries:
        return
    keys = list(entries)[:5] + probes
    proof = read_proof(root, nodes, keys)
    assert verify_read_proof(root, proof, keys) == {key: entries.get(key) for key in keys}


def _sample_trie() -> tuple[bytes, dict[bytes, bytes], dict[bytes, bytes]]:
    entries = {bytes([i, j]) * 20: bytes([i]) * (10 + j) for i in range(8) for j in range(8)}
    nodes: dict[bytes, bytes] = {}
    return trie_root(entries, StateVersion.V1, nodes=nodes), nodes, entries


def test_a_forged_value_does_not_verify() -> None:
    root, nodes, entries = _sample_trie()
    key = next(iter(entries))
    proof = read_proof(root, nodes, [key])
    value = entries[key]
    forged = [node.replace(value, bytes([value[0] ^ 1]) + value[1:]) for node in proof]
    assert forged != proof
    with pytest.raises(ProofError, match=r"not in the proof|state root"):
        verify_read_proof(root, forged, [key])


def test_a_proof_missing_a_node_proves_nothing() -> None:
    root, nodes, entries = _sample_trie()
    key = next(iter(entries))
    proof = read_proof(root, nodes, [key])
    root_node = nodes[root]
    with pytest.raises(ProofError, match="not in the proof"):
        verify_read_proof(root, [root_node], [key])
    with pytest.raises(ProofError, match="does not contain the state root"):
        verify_read_proof(b"\x11" * 32, proof, [key])


def test_malformed_node_is_refused() -> None:
    with pytest.raises(ProofError, match="malformed"):
        decode_node(bytes([0x05, 0x01]))
    with pytest.raises(ProofError, match="malformed"):
        decode_node(bytes([0x42, 0x12]))  # a leaf whose value is missing


def test_header_hash_of_the_genesis_header_is_the_genesis_hash() -> None:
    state = genesis_state(load_chain_spec(SPECS / "khala.json"))
    header = {
        "parentHash": "0x" + "00" * 32,
        "number": "0x0",
        "stateRoot": "0x" + state.state_root.hex(),
        "extrinsicsRoot": "0x" + EMPTY_TRIE_ROOT.hex(),
        "digest": {"logs": []},
    }
    assert "0x" + header_hash(header).hex() == PUBLISHED["khala"]
    assert state_root_of_block(header, PUBLISHED["khala"]) == state.state_root
    with pytest.raises(ChainError, match="not that block's header"):
        state_root_of_block({**header, "number": "0x1"}, PUBLISHED["khala"])
