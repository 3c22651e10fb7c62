"""Phala's staking storage proven against a block's state root, entry by entry.

Every staked PHA a Phala migration pays is decided by a few storage maps (W-PHA balances,
pools, delegation NFTs and their `stake-info`, what the reward budget owes). A read proof
of the entries a node listed shows their values, but not that the node listed them all:
one that leaves out a delegator's NFT shifts that delegator's stake to the others in the
pool and conservation still holds. So the proof nodes are read as a partial trie and
every entry under each item's prefix is enumerated from them; a subtree the proof lacks
is named, so the snapshot (and later the audit, from the saved proof alone) knows it holds
the whole of each map, not only the values it happened to be shown.

The audit then decodes the proven entries with the runtime's own metadata, compares each
decoded entry with what the snapshot recorded (naming the storage key of any difference)
and derives every holder's position from both, so a staking value edited in the snapshot
cannot reach the tree unnoticed.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from veil.errors import InputError
from veil.migration.phala_staking import (
    STAKE_INFO,
    STAKING_ITEMS,
    WPHA_ASSET_ID,
    StakingState,
    derive,
    has_item,
    read_staking,
    staking_prefixes,
)
from veil.substrate.metadata import Metadata
from veil.substrate.scale_types import StorageMap, TypeRegistry
from veil.substrate.trie import ProofError, decode_node

_HASH_LEN = 32
_NIBBLES = "0123456789abcdef"


def node_database(nodes: Iterable[bytes]) -> dict[bytes, bytes]:
    """Proof nodes by their blake2_256 hash: the form a trie walk looks references up in."""
    return {hashlib.blake2b(node, digest_size=32).digest(): node for node in nodes}


def entries_under(
    root: bytes, database: Mapping[bytes, bytes], prefix: bytes
) -> dict[bytes, bytes]:
    """Every key and value under `prefix` in the trie of `root`, read from proof nodes.

    Raises ProofError naming the key path of the first node (or hashed value) under the
    prefix that the proof does not hold: without it the entries below are unknown, so the
    proof cannot show the item is complete."""
    want = prefix.hex()
    found: dict[bytes, bytes] = {}
    stack: list[tuple[bytes, str]] = [(root, "")]
    while stack:
        reference, path = stack.pop()
        if len(reference) == _HASH_LEN:
            encoded = database.get(reference)
            if encoded is None:
                raise ProofError(
                    f"key path 0x{path or '(root)'}: trie node 0x{reference.hex()} is not in "
                    "the proof"
                )
        else:
            encoded = reference
        node = decode_node(encoded)
        full = path + node.partial
        size = min(len(full), len(want))
        if full[:size] != want[:size]:
            continue
        has_value = node.value is not None or node.value_hash is not None
        if has_value and len(full) >= len(want) and not len(full) % 2:
            value = node.value
            if node.value_hash is not None:
                value = database.get(node.value_hash)
                if value is None:
                    raise ProofError(
                        f"storage key 0x{full}: its hashed value 0x{node.value_hash.hex()} is "
                        "not in the proof"
                    )
            assert value is not None
            found[bytes.fromhex(full)] = value
        for index, child in enumerate(node.children):
            if child is None:
                continue
            below = full + _NIBBLES[index]
            size = min(len(below), len(want))
            if below[:size] == want[:size]:
                stack.append((child, below))
    return found


def proven_staking_storage(
    root: bytes, database: Mapping[bytes, bytes], metadata: Metadata
) -> dict[str, str]:
    """Every staking entry the proof holds, as 0x-hex storage (what `read_staking` reads).

    Raises ProofError naming the storage item whose entries the proof does not fully show."""
    storage: dict[str, str] = {}
    names = {prefix: name for prefix, name in _item_names(metadata)}
    for prefix, _plain in staking_prefixes(metadata):
        try:
            entries = entries_under(root, database, bytes.fromhex(prefix[2:]))
        except ProofError as error:
            raise ProofError(f"{names[prefix]}: {error}") from None
        for key, value in entries.items():
            storage["0x" + key.hex()] = "0x" + value.hex()
    return storage


def _item_names(metadata: Metadata) -> list[tuple[str, str]]:
    registry = TypeRegistry(metadata)
    return [
        ("0x" + StorageMap(registry, *item).prefix.hex(), ".".join(item))
        for item in STAKING_ITEMS.values()
        if has_item(metadata, *item)
    ]


def check_listed(
    root: bytes, database: Mapping[bytes, bytes], metadata: Metadata, listed: Mapping[str, str]
) -> None:
    """Refuse a node that left staking entries out of its listing.

    `listed` is what the node's `state_getKeysPaged` pages gave; its own proofs must show
    no entry beyond them under any staking prefix."""
    proven = proven_staking_storage(root, database, metadata)
    hidden = sorted(proven.keys() - {key.lower() for key in listed})
    if hidden:
        more = f" (and {len(hidden) - 1} more)" if len(hidden) > 1 else ""
        raise ProofError(
            f"storage key {hidden[0]}: the node's own read proof shows it under a staking "
            f"item, but its key listing left it out{more}"
        )


# --- comparing a snapshot's staking section with the proven storage ----------------------


def _entry_keys(storage: Mapping[str, str], metadata: Metadata) -> dict[tuple[Any, ...], str]:
    """The storage key of each decoded staking entry, by the label `_entries` gives it."""
    registry = TypeRegistry(metadata)
    keys: dict[tuple[Any, ...], str] = {}
    maps = {
        name: StorageMap(registry, *item)
        for name, item in STAKING_ITEMS.items()
        if has_item(metadata, *item)
    }
    by_prefix = {"0x" + m.prefix.hex(): name for name, m in maps.items()}
    for key in storage:
        name = by_prefix.get(key[:66].lower())
        if name is None:
            continue
        storage_map = maps[name]
        parts = storage_map.decode_key(bytes.fromhex(key[2:]))
        if name == "asset":
            keys[("Assets.Asset", parts[0])] = key
        elif name == "asset_account":
            keys[("Assets.Account", parts[0], "0x" + bytes(parts[1]).hex())] = key
        elif name == "dust":
            keys[("PhalaWrappedBalances.UnmintableDust",)] = key
        elif name == "pools":
            keys[("PhalaBasePool.Pools", parts[0])] = key
        elif name == "nfts":
            keys[("RmrkCore.Nfts", parts[0], parts[1])] = key
        elif name == "properties":
            keys[("RmrkCore.Properties", parts[0], parts[1], bytes(parts[2]).decode("latin-1"))] = (
                key
            )
        else:
            (account, pid) = parts[0]
            item = ".".join(STAKING_ITEMS[name])
            keys[(item, "0x" + bytes(account).hex(), int(pid))] = key
    return keys


def _entries(state: StakingState) -> dict[tuple[Any, ...], Any]:
    """The staking section as one value per storage entry it came from."""
    out: dict[tuple[Any, ...], Any] = {("Assets.Asset", WPHA_ASSET_ID): str(state.wpha_supply)}
    for account, balance in state.wpha_balances.items():
        out[("Assets.Account", WPHA_ASSET_ID, "0x" + account.hex())] = str(balance)
    out[("PhalaWrappedBalances.UnmintableDust",)] = str(state.unmintable_dust)
    for pool in state.pools:
        out[("PhalaBasePool.Pools", pool.pid)] = pool.to_json()
    stake_info = STAKE_INFO.decode()
    for nft in state.nfts:
        owner = "0x" + nft.owner.hex() if nft.owner else "(owned by another NFT)"
        out[("RmrkCore.Nfts", nft.cid, nft.nft_id)] = owner
        if nft.shares is not None:
            out[("RmrkCore.Properties", nft.cid, nft.nft_id, stake_info)] = str(nft.shares)
    for item, rows in (
        ("PhalaStakePoolv2.LegacyRewards", state.legacy_rewards),
        ("PhalaBasePool.Reimbursements", state.reimbursements),
    ):
        for account, pid, amount in rows:
            out[(item, "0x" + account.hex(), pid)] = str(amount)
    return out


def _label(entry: tuple[Any, ...]) -> str:
    item, *parts = entry
    return f"{item}({', '.join(map(str, parts))})" if parts else item


def staking_differences(
    claimed: StakingState, proven: StakingState, storage: Mapping[str, str], metadata: Metadata
) -> list[str]:
    """One line per staking entry where the snapshot and the proven storage disagree."""
    mine, truth = _entries(claimed), _entries(proven)
    differing = sorted(
        (e for e in mine.keys() | truth.keys() if e not in mine or e not in truth
         or mine[e] != truth[e]),
        key=repr,
    )  # fmt: skip
    keys = _entry_keys(storage, metadata) if differing else {}  # decoded only to name them
    lines = []
    for entry in differing:
        key = keys.get(entry)
        where = f"storage key {key} ({_label(entry)})" if key else _label(entry)
        if entry not in truth and key is None:
            lines.append(f"{where}: in the snapshot, but the proof shows no such storage key")
        elif entry not in truth:  # e.g. a W-PHA account the proof shows with a zero balance
            lines.append(
                f"{where}: the snapshot has {_short(mine[entry])}, the proof shows nothing for it"
            )
        elif entry not in mine:
            lines.append(
                f"{where}: the proof shows {_short(truth[entry])}, the snapshot leaves it out"
            )
        else:
            lines.append(
                f"{where}: the snapshot has {_short(mine[entry])}, the proof shows "
                f"{_short(truth[entry])}"
            )
    if claimed.wpha_account != proven.wpha_account:
        lines.append(f"wpha_account: the snapshot has 0x{claimed.wpha_account.hex()}")
    if claimed.pallet_ids != proven.pallet_ids:
        lines.append("pallet_ids: differ from the PalletId constants of the metadata given")
    if not lines and claimed.entries_sha256 != proven.entries_sha256:
        lines.append(
            f"entries_sha256: the snapshot has {claimed.entries_sha256}, the proven entries "
            f"hash to {proven.entries_sha256}"
        )
    return lines


def _short(value: Any) -> str:
    text = repr(value) if not isinstance(value, str) else value
    return text if len(text) <= 120 else text[:117] + "..."


def position_differences(
    balances: Mapping[bytes, int], claimed: StakingState, proven: StakingState
) -> list[str]:
    """Holders whose position derived from the snapshot differs from the proven one."""
    mine, truth = derive(dict(balances), claimed), derive(dict(balances), proven)
    lines = []
    for what, said, shown in (
        ("staked", mine.staked, truth.staked),
        ("free from staking", mine.free_extra, truth.free_extra),
    ):
        for account in sorted(said.keys() | shown.keys()):
            if said.get(account, 0) != shown.get(account, 0):
                lines.append(
                    f"holder 0x{account.hex()}: {what} {said.get(account, 0)} planck from the "
                    f"snapshot, {shown.get(account, 0)} from the proven storage"
                )
    return lines


@dataclass
class StakingAudit:
    """What the proof shows of the staking storage, beside what the snapshot recorded."""

    proven: StakingState
    entries: int
    entry_differences: list[str]
    position_differences: list[str]


def audit_staking(
    claimed: StakingState,
    nodes: Iterable[bytes],
    root: bytes,
    metadata: Metadata,
    balances: Mapping[bytes, int],
) -> StakingAudit:
    """Decode the staking storage the proof shows and compare it with the snapshot's, entry
    by entry and holder by holder.

    Raises InputError naming the item (and key path) the proof does not fully cover."""
    database = node_database(nodes)
    if root not in database:
        raise InputError(f"read proof does not contain the state root 0x{root.hex()}")
    try:
        storage = proven_staking_storage(root, database, metadata)
    except ProofError as error:
        raise InputError(f"staking storage not covered by the proof: {error}") from None
    proven = read_staking(storage, metadata)
    return StakingAudit(
        proven=proven,
        entries=len(storage),
        entry_differences=staking_differences(claimed, proven, storage, metadata),
        position_differences=position_differences(balances, claimed, proven),
    )


def first_line(lines: list[str]) -> str:
    """The first difference, and how many more there are: one line for an operator."""
    more = f" (and {len(lines) - 1} more)" if len(lines) > 1 else ""
    return lines[0] + more


def load_proof_nodes(snapshot_path: str | os.PathLike[str], record: Any) -> list[bytes]:
    """The trie nodes of a snapshot's proof file, after checking the hash it recorded."""
    if not isinstance(record, dict):
        raise InputError(f"{snapshot_path}: snapshot has no read proof")
    sidecar = Path(snapshot_path).with_name(str(record.get("file")))
    try:
        data = sidecar.read_bytes()
    except OSError as error:
        raise InputError(f"{sidecar}: cannot read ({error.strerror})") from None
    if "0x" + hashlib.sha256(data).hexdigest() != record.get("sha256"):
        raise InputError(f"{sidecar}: sha256 differs from the one the snapshot recorded")
    try:
        return [bytes.fromhex(node.removeprefix("0x")) for node in json.loads(data)["nodes"]]
    except (KeyError, TypeError, ValueError, AttributeError):
        raise InputError(f"{sidecar}: not a read proof file (nodes missing or not hex)") from None
