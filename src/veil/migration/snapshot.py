"""Snapshot: every `System.Account` balance and `Balances.TotalIssuance` at one block.

A snapshot is the only input the rest of the pipeline reads from the parachain, so it
records where it came from (block, genesis hash) and a hash of exactly the storage it
decoded: anyone holding the same state computes the same `state_sha256`, whether they
read a raw dump or a live node.

This module holds the types and the reading of a raw state or chain spec. Decoding the
account entries is `account_storage`; the snapshot file is `snapshot_format`; reading a
live node page by page, with proofs and resume, is `rpc_snapshot`.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import pickle
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from veil.bulkwork import PARALLEL_MIN_ROWS, can_fork, collector_paused, forked
from veil.columns import load_json
from veil.errors import InputError
from veil.migration.account_storage import (
    ACCOUNT_PREFIX_HEX,
    AccountRow,
    Decoded,
    decode_account_pairs,
    decode_account_storage,
)
from veil.migration.phala_staking import (
    StakingState,
    has_staking,
    read_staking,
    staking_prefixes,
)
from veil.substrate.account_layout import BUILTIN_DESCRIPTION, AccountLayout, account_layout
from veil.substrate.chainspec import CODE_KEY, chain_spec_from_document, genesis_state
from veil.substrate.metadata import Metadata, load_metadata

DEFAULT_DECIMALS = 12  # PHA; what snapshots without a recorded token_decimals hold


@dataclass
class Snapshot:
    total_issuance: int
    accounts: list[AccountRow]
    state_sha256: str
    block: str | None = None
    genesis_hash: str | None = None
    source: dict[str, Any] = field(default_factory=dict)
    # Trie nodes proving every entry against the block's state root (RPC snapshots); kept
    # beside the snapshot file, not in it, so the snapshot format stays one table.
    proof_nodes: list[str] | None = None
    # Phala's stake pool v2 state (pools, delegation NFTs, W-PHA), when the runtime has it:
    # the ledger derives every holder's position from it instead of a positions file.
    staking: StakingState | None = None

    @property
    def token_decimals(self) -> int:
        """The native token's decimals (PHA: 12), as the spec or node declared them."""
        decimals = self.source.get("token_decimals")
        return decimals if isinstance(decimals, int) else DEFAULT_DECIMALS


def _storage_map(document: Any, path: Path) -> dict[str, Any]:
    """The key/value object of a raw dump or of a raw chain spec (`genesis.raw.top`)."""
    if isinstance(document, dict) and "genesis" in document:
        raw = document["genesis"].get("raw") if isinstance(document["genesis"], dict) else None
        if isinstance(raw, list) and raw:  # a 2019-format spec: genesis.raw is [top, children]
            raw = {"top": raw[0]}
        if not isinstance(raw, dict) or "top" not in raw:
            raise InputError(f"{path}: chain spec without genesis.raw.top (not a raw spec)")
        top = raw["top"]
        if not isinstance(top, dict):
            raise InputError(f"{path}: genesis.raw.top is not an object")
        return top
    if isinstance(document, dict) and "result" in document and isinstance(document["result"], list):
        return {k: v for k, v in document["result"]}
    if not isinstance(document, dict):
        raise InputError(f"{path}: expected a JSON object of 0x-hex storage keys to values")
    return document


def _canonical_accounts(storage: dict[str, Any], layout: AccountLayout) -> dict[str, Any]:
    """Account values re-encoded from the runtime's layout to the built-in one."""
    prefix = ACCOUNT_PREFIX_HEX
    out: dict[str, Any] = {}
    for key, value in storage.items():
        if isinstance(key, str) and key[:66].lower() == prefix and isinstance(value, str):
            try:
                raw = bytes.fromhex(value.removeprefix("0x"))
            except ValueError:
                raise InputError(f"storage key {key}: value is not valid hex") from None
            value = "0x" + layout.canonical(raw, f"storage key {key}").hex()
        out[key] = value
    return out


def apply_layout(
    storage: dict[str, Any], metadata: Metadata | None
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Storage in the built-in layout, and what the snapshot records about the layout."""
    if metadata is None:
        return storage, {"account_layout": BUILTIN_DESCRIPTION}
    layout = account_layout(metadata)
    record = {
        "account_layout": layout.layout.describe(),
        "metadata": Path(metadata.source).name,
        "frozen": layout.frozen_rule,
    }
    return (storage if layout.builtin else _canonical_accounts(storage, layout)), record


# A state this large is worth decoding its metadata beside it, in a forked child.
BACKGROUND_METADATA_BYTES = 32 << 20


def metadata_reader(
    metadata: Metadata | str | os.PathLike[str] | None, state_bytes: int
) -> Callable[[], Metadata | None]:
    """The runtime metadata, decoded or to be decoded from a file, as a function to call
    when it is needed. Decoding Phala's metadata takes scalecodec ~1.3 s, and parsing a
    large state's JSON about as long: for a state of `BACKGROUND_METADATA_BYTES` or more
    a forked child decodes the file meanwhile (the result comes back pickled, ~0.4 MB). A
    child that fails leaves the work, and the report of the problem, to this process."""
    if metadata is None or isinstance(metadata, Metadata):
        return lambda: metadata
    path = Path(metadata)
    if state_bytes < BACKGROUND_METADATA_BYTES or not can_fork(PARALLEL_MIN_ROWS):
        return lambda: load_metadata(path)
    shipped = forked(lambda: pickle.dumps(load_metadata(path), protocol=5))

    def wait() -> Metadata:
        payload = shipped()
        return load_metadata(path) if payload is None else pickle.loads(payload)

    return wait


@collector_paused
def snapshot_from_raw(
    path: str | os.PathLike[str], metadata: Metadata | str | os.PathLike[str] | None = None
) -> Snapshot:
    """Snapshot of a raw state dump (state_getPairs as an object) or a raw chain spec.

    With `metadata` (decoded, or a file: see `metadata_reader`), account values are read
    in the layout the runtime declares; without it, the built-in layout applies and any
    other one is refused by name."""
    source = Path(path)
    try:
        size = source.stat().st_size
    except OSError as error:
        raise InputError(f"{source}: cannot read ({error.strerror})") from None
    pending = metadata_reader(metadata, size)
    try:
        data = source.read_bytes()
        document = load_json(data)
    except (OSError, json.JSONDecodeError, UnicodeDecodeError) as error:
        with contextlib.suppress(InputError):  # the child's answer: it must not wait on a
            pending()  # pipe nobody reads; the state's problem is the one to report
        if isinstance(error, OSError):
            raise InputError(f"{source}: cannot read ({error.strerror})") from None
        raise InputError(f"{source}: not valid JSON ({error})") from None
    runtime_metadata = pending()
    file_hash = "0x" + hashlib.sha256(data).hexdigest()
    del data  # half a gigabyte for a million accounts; the peak of the pipeline is here
    is_spec = isinstance(document, dict) and "genesis" in document
    storage, layout_record = apply_layout(_storage_map(document, source), runtime_metadata)
    with_staking = runtime_metadata is not None and has_staking(runtime_metadata)
    block = document.get("block") if isinstance(document.get("block"), str) else None
    genesis = (
        document.get("genesis_hash") if isinstance(document.get("genesis_hash"), str) else None
    )
    spec = chain_spec_from_document(document, source) if is_spec else None
    del document
    if with_staking and can_fork(len(storage)):
        assert runtime_metadata is not None
        # The staking items and the accounts decode independently: a forked child reads
        # the staking while this process decodes the accounts (two cores, half the wait).
        # A child that fails leaves the work, and the report of any problem, to us.
        # The child gets only the staking entries: walking the whole state would make it
        # copy every page of the parent's memory (reference counts are writes).
        runtime = runtime_metadata
        entries = _staking_entries(storage, runtime)
        shipped = forked(lambda: pickle.dumps(read_staking(entries, runtime), protocol=5))
        try:
            decoded = _decode_accounts(storage)
        finally:
            staking_bytes = shipped()
        staking = (
            read_staking(storage, runtime) if staking_bytes is None else pickle.loads(staking_bytes)
        )
        del staking_bytes, entries
    else:
        staking = None
        if with_staking and runtime_metadata is not None:
            staking = read_staking(storage, runtime_metadata)
        decoded = _decode_accounts(storage)
    issuance, rows, state_hash, ignored = decoded
    if not rows and issuance:
        raise InputError(
            f"{source}: no System.Account entries but TotalIssuance {issuance}: "
            "not a whole state (a dump of other storage, or of the wrong prefix)"
        )
    origin: dict[str, Any] = {"kind": "raw-state"}
    if spec is not None:
        origin = {"kind": "chain-spec", "state_root": None}
        if spec.token_decimals is not None:
            origin["token_decimals"] = spec.token_decimals
        if CODE_KEY in spec.top:
            # A spec is the genesis state itself: its trie root names the chain, so record
            # the genesis hash it proves rather than one a caller asserts. (Without a
            # runtime there is no trie version to compute it with, and no real chain.)
            state = genesis_state(spec)
            genesis = block = "0x" + state.genesis_hash.hex()
            origin.update(
                state_root="0x" + state.state_root.hex(), state_version=int(state.state_version)
            )
    return Snapshot(
        total_issuance=issuance,
        accounts=rows,
        state_sha256=state_hash,
        block=block,
        genesis_hash=genesis,
        source={
            **origin,
            "file": source.name,
            "file_sha256": file_hash,
            "ignored_keys": ignored,
            **layout_record,
        },
        staking=staking,
    )


def record_decimals(snapshot: Snapshot, decimals: int) -> None:
    """Record the operator's `--decimals`; refuses one that contradicts the chain's own."""
    if not 0 <= decimals <= 18:
        raise InputError(f"--decimals {decimals}: must be between 0 and 18 (wei has 18)")
    declared = snapshot.source.get("token_decimals")
    if isinstance(declared, int) and declared != decimals:
        raise InputError(
            f"--decimals {decimals}: the chain declares tokenDecimals {declared} "
            f"({snapshot.source.get('kind')}); planck would convert to wei by the wrong factor"
        )
    snapshot.source["token_decimals"] = decimals


def record_genesis(snapshot: Snapshot, genesis: str) -> None:
    """Record the genesis hash an operator names; refuses one the snapshot proves wrong."""
    proven = snapshot.source.get("kind") == "chain-spec" and snapshot.source.get("state_root")
    if proven and snapshot.genesis_hash != genesis:
        raise InputError(
            f"--genesis {genesis}: the chain spec's own genesis hash is {snapshot.genesis_hash} "
            "(recomputed from its storage); this spec is another chain"
        )
    snapshot.genesis_hash = genesis


def _decode_accounts(storage: dict[str, Any]) -> Decoded:
    """The fast decoder, or the checked one (which names the problem) when it steps aside."""
    decoded = decode_account_storage(storage)
    if decoded is None:
        pairs = ((k, v) for k, v in storage.items() if k not in ("block", "genesis_hash"))
        decoded = decode_account_pairs(pairs, strict_prefix=False)
    return decoded


def _staking_entries(storage: dict[str, Any], metadata: Metadata) -> dict[str, Any]:
    """The entries under the runtime's staking prefixes: all `read_staking` looks at."""
    prefixes = {prefix for prefix, _ in staking_prefixes(metadata)}
    try:
        return {
            key: value
            for key, value in storage.items()
            if (head := key[:66]) != ACCOUNT_PREFIX_HEX
            and (head in prefixes or head.lower() in prefixes)
        }
    except TypeError:  # a key that is not text: let `read_staking` see everything
        return storage
