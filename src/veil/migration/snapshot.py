"""Snapshot: every `System.Account` balance and `Balances.TotalIssuance` at one block.

A snapshot is the only input the rest of the pipeline reads from the parachain, so it
records where it came from (block, genesis hash) and a hash of exactly the storage it
decoded: anyone holding the same state computes the same `state_sha256`, whether they
read a raw dump or a live node.
"""

from __future__ import annotations

import hashlib
import json
import os
import struct
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import partial
from itertools import islice, repeat
from operator import add, lt, methodcaller
from pathlib import Path
from typing import Any, NamedTuple

from veil.atomic import write_text
from veil.errors import ChainError, InputError
from veil.migration.bulk import (
    amount_column,
    bulk,
    hex_records,
    json_document,
    json_exact,
    load_json,
    read_document,
    split_records,
)
from veil.migration.phala_read import read_staking_rpc, staking_progress_path
from veil.migration.phala_staking import (
    StakingState,
    has_staking,
    read_staking,
)
from veil.substrate.account_layout import BUILTIN_DESCRIPTION, AccountLayout, account_layout
from veil.substrate.chainspec import CODE_KEY, chain_spec_from_document, genesis_state
from veil.substrate.header import state_root_of_block
from veil.substrate.metadata import Metadata, parse_metadata
from veil.substrate.rpc import SubstrateRpc
from veil.substrate.storage import (
    ACCOUNT_INFO_SIZE,
    SYSTEM_ACCOUNT_PREFIX,
    TOTAL_ISSUANCE_KEY,
    AccountInfo,
    account_key,
    decode_u128,
)
from veil.substrate.trie import ProofError, verify_read_proof

FORMAT = "veil-snapshot-v1"
DEFAULT_DECIMALS = 12  # PHA; what snapshots without a recorded token_decimals hold
PROOF_FORMAT = "veil-read-proof-v1"
COLUMNS = (
    "account", "free", "reserved", "frozen", "flags",
    "nonce", "consumers", "providers", "sufficients",
)  # fmt: skip
_ACCOUNT_PREFIX_HEX = "0x" + SYSTEM_ACCOUNT_PREFIX.hex()
_TOTAL_ISSUANCE_HEX = "0x" + TOTAL_ISSUANCE_KEY.hex()
_ACCOUNT_KEY_HEX_LEN = 2 + 2 * (32 + 16 + 32)
_HEAD = struct.Struct("<IIII")
# account id, then AccountInfo: four u32 counters and four u128 amounts as (low, high) u64s
_RECORD = struct.Struct("<32sIIIIQQQQQQQQ")


class AccountRow(NamedTuple):
    """One decoded `System.Account` entry (a tuple: a million of them must be cheap)."""

    account: bytes
    free: int
    reserved: int
    frozen: int
    flags: int
    nonce: int
    consumers: int
    providers: int
    sufficients: int


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

    @bulk
    def to_json(self) -> dict[str, Any]:
        return {
            **self.to_json_head(),
            "accounts": [
                [
                    "0x" + a.account.hex(),
                    str(a.free),
                    str(a.reserved),
                    str(a.frozen),
                    str(a.flags),
                    a.nonce,
                    a.consumers,
                    a.providers,
                    a.sufficients,
                ]
                for a in self.accounts
            ],
            **self._tail(),
        }

    @bulk
    def to_json_text(self) -> str:
        """The same document as `to_json`, rendered fast (a snapshot has a million rows)."""
        document = self.to_json_head()
        row = '["0x%s","%d","%d","%d","%d",%d,%d,%d,%d]'
        rows = [row % (a[0].hex(), *a[1:]) for a in self.accounts]
        return json_document(document, self._tail(), {"accounts": rows})

    def _tail(self) -> dict[str, Any]:
        return {} if self.staking is None else {"phala_staking": self.staking.to_json()}

    def to_json_head(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "block": self.block,
            "genesis_hash": self.genesis_hash,
            "state_sha256": self.state_sha256,
            "source": self.source,
            "total_issuance": str(self.total_issuance),
            "account_count": len(self.accounts),
            "columns": list(COLUMNS),
        }


def _decode_pairs(
    pairs: Iterable[tuple[str, str | None]], *, strict_prefix: bool
) -> tuple[int, list[AccountRow], str, int]:
    """Decode account entries and TotalIssuance; returns (issuance, rows, state hash, ignored).

    `strict_prefix` refuses any key that is neither an account nor TotalIssuance (an RPC
    page of the account map); a full raw dump holds every pallet and those are ignored.
    The state hash is sha256 over (account id, AccountInfo bytes) in account order, then
    the TotalIssuance bytes: the same storage gives the same hash however it was read.
    """
    entries: list[tuple[bytes, bytes]] = []
    append = entries.append
    issuance_value: bytes | None = None
    ignored = 0
    fromhex = bytes.fromhex
    blake2b = hashlib.blake2b
    prefix = _ACCOUNT_PREFIX_HEX
    for raw_key, raw_value in pairs:
        if not isinstance(raw_key, str) or not isinstance(raw_value, str):
            raise InputError(f"storage key {raw_key!r:.80}: key and value must be hex strings")
        head = raw_key[:66]
        if head == prefix or head.lower() == prefix:
            if len(raw_key) != _ACCOUNT_KEY_HEX_LEN:
                raise InputError(
                    f"storage key {raw_key}: System.Account key of {(len(raw_key) - 2) // 2} "
                    f"bytes, expected 80"
                )
            try:
                tail = fromhex(raw_key[66:])
                value = fromhex(raw_value[2:]) if raw_value[:2] == "0x" else None
            except ValueError:
                raise InputError(f"storage key {raw_key}: key or value is not valid hex") from None
            if value is None:
                raise InputError(f"storage key {raw_key}: value is not 0x-prefixed hex")
            account = tail[16:]
            if blake2b(account, digest_size=16).digest() != tail[:16]:
                raise InputError(f"storage key {raw_key}: blake2_128 hash does not match its id")
            if len(value) != ACCOUNT_INFO_SIZE:
                raise InputError(
                    f"storage key {raw_key}: AccountInfo of {len(value)} bytes, not the built-in "
                    f"{BUILTIN_DESCRIPTION}; decode it with the chain's own metadata "
                    "(--metadata, or --rpc which reads it from the node)"
                )
            append((account, value))
        elif raw_key.lower() == _TOTAL_ISSUANCE_HEX:
            try:
                issuance_value = fromhex(raw_value[2:]) if raw_value[:2] == "0x" else b"?"
            except ValueError:
                raise InputError(f"storage key {raw_key}: value is not valid hex") from None
            decode_u128(issuance_value, raw_key)
        elif strict_prefix:
            raise InputError(f"storage key {raw_key}: not a System.Account key")
        else:
            ignored += 1
    if issuance_value is None:
        raise InputError(
            f"storage key {_TOTAL_ISSUANCE_HEX} (Balances.TotalIssuance): missing from the state"
        )
    entries.sort()
    digest = hashlib.sha256()
    update = digest.update
    unpack = _HEAD.unpack_from
    frm = int.from_bytes
    rows: list[AccountRow] = []
    add = rows.append
    previous = b""
    for account, value in entries:
        if account == previous:
            raise InputError(f"account 0x{account.hex()}: appears twice in the state")
        previous = account
        update(account)
        update(value)
        nonce, consumers, providers, sufficients = unpack(value)
        add(
            AccountRow(
                account,
                frm(value[16:32], "little"),
                frm(value[32:48], "little"),
                frm(value[48:64], "little"),
                frm(value[64:80], "little"),
                nonce,
                consumers,
                providers,
                sufficients,
            )
        )
    update(issuance_value)
    return decode_u128(issuance_value), rows, "0x" + digest.hexdigest(), ignored


def _decode_storage_fast(storage: dict[Any, Any]) -> tuple[int, list[AccountRow], str, int] | None:
    """`_decode_pairs(storage.items(), strict_prefix=False)` in a few bulk operations.

    A million entries one by one cost seconds; here keys and values are decoded as two
    joined hex texts, the id hashes checked with `map`, and (id, AccountInfo) records
    sorted as bytes, whose concatenation is exactly what the state hash covers. Returns
    None on anything unusual (an upper-case key, a bad hash, a short value, a duplicate):
    the caller then runs `_decode_pairs`, which names the problem. Same result otherwise.
    """
    prefix = _ACCOUNT_PREFIX_HEX
    try:
        keys = [key for key in storage if key[:66] == prefix]
        others = [key for key in storage if key[:66] != prefix]
    except TypeError:
        return None
    issuance_value: bytes | None = None
    ignored = 0
    for key in others:
        if key in ("block", "genesis_hash"):
            continue
        value = storage[key]
        if not isinstance(key, str) or not isinstance(value, str):
            return None
        if key[:66].lower() == prefix:
            return None
        if key.lower() != _TOTAL_ISSUANCE_HEX:
            ignored += 1
            continue
        if issuance_value is not None or value[:2] != "0x":
            return None
        try:
            issuance_value = bytes.fromhex(value[2:])
        except ValueError:
            return None
        if len(issuance_value) != 16:
            return None
    if issuance_value is None:
        return None
    # Every pass runs in dict order, i.e. the order the strings lie in memory: after
    # sorting, each access would be a cache miss. Only compact records are sorted.
    key_blob = hex_records(keys, len(SYSTEM_ACCOUNT_PREFIX) + 16 + 32)
    if key_blob is None:
        return None
    values = [value for key, value in storage.items() if key[:66] == prefix]
    value_blob = hex_records(values, ACCOUNT_INFO_SIZE)
    if value_blob is None or len(value_blob) != len(keys) * (1 + ACCOUNT_INFO_SIZE):
        return None
    del keys
    skip = 1 + len(SYSTEM_ACCOUNT_PREFIX)
    accounts = split_records(key_blob, skip + 48, skip + 16, 32)
    hashes = split_records(key_blob, skip + 48, skip, 16)
    del key_blob
    blake2_128 = partial(hashlib.blake2b, digest_size=16)
    if list(map(methodcaller("digest"), map(blake2_128, accounts))) != hashes:
        return None
    del hashes
    values = split_records(value_blob, 1 + ACCOUNT_INFO_SIZE, 1, ACCOUNT_INFO_SIZE)
    del value_blob
    records = list(map(add, accounts, values))
    del accounts, values
    records.sort()
    blob = b"".join(records)
    del records
    ids = split_records(blob, _RECORD.size, 0, 32)
    if not all(map(lt, ids, islice(ids, 1, None))):  # an account twice (in two spellings)
        return None
    del ids
    digest = hashlib.sha256(blob)
    digest.update(issuance_value)
    new = tuple.__new__
    rows: list[AccountRow] = [
        new(AccountRow, (a, f | F << 64, r | R << 64, z | Z << 64, g | G << 64, n, c, p, s))
        for a, n, c, p, s, f, F, r, R, z, Z, g, G in _RECORD.iter_unpack(blob)
    ]  # fmt: skip
    return decode_u128(issuance_value), rows, "0x" + digest.hexdigest(), ignored


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
    prefix = _ACCOUNT_PREFIX_HEX
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


def _apply_layout(
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


@bulk
def snapshot_from_raw(path: str | os.PathLike[str], metadata: Metadata | None = None) -> Snapshot:
    """Snapshot of a raw state dump (state_getPairs as an object) or a raw chain spec.

    With `metadata`, account values are read in the layout the runtime declares; without
    it, the built-in layout applies and any other one is refused by name."""
    source = Path(path)
    try:
        data = source.read_bytes()
    except OSError as error:
        raise InputError(f"{source}: cannot read ({error.strerror})") from None
    try:
        document = load_json(data)
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise InputError(f"{source}: not valid JSON ({error})") from None
    file_hash = "0x" + hashlib.sha256(data).hexdigest()
    is_spec = isinstance(document, dict) and "genesis" in document
    storage, layout_record = _apply_layout(_storage_map(document, source), metadata)
    staking = (
        read_staking(storage, metadata) if metadata is not None and has_staking(metadata) else None
    )
    block = document.get("block") if isinstance(document.get("block"), str) else None
    genesis = (
        document.get("genesis_hash") if isinstance(document.get("genesis_hash"), str) else None
    )
    spec = chain_spec_from_document(document, source) if is_spec else None
    del document
    decoded = _decode_storage_fast(storage)
    if decoded is None:
        pairs = ((k, v) for k, v in storage.items() if k not in ("block", "genesis_hash"))
        decoded = _decode_pairs(pairs, strict_prefix=False)
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


class _Progress:
    """Append-only record of fetched pages beside the output, so a broken run resumes.

    Each line is one JSON page; a line cut short by a crash is simply ignored.
    """

    def __init__(self, path: Path, header: dict[str, Any]) -> None:
        self.path = path
        self.header = header
        self.pairs: list[tuple[str, str]] = []
        self.proof: dict[str, None] = {}  # trie nodes, deduplicated, in arrival order
        self.last_key: str | None = None
        self.done = False

    def load(self) -> None:
        if not self.path.exists():
            return
        lines = self.path.read_text().splitlines()
        if not lines:
            return
        try:
            header = json.loads(lines[0])
        except json.JSONDecodeError:
            return
        if header != self.header:
            raise InputError(
                f"{self.path}: progress file is for another node, block or prefix "
                f"({header.get('at')}); delete it to start over"
            )
        for line in lines[1:]:
            try:
                page = json.loads(line)
            except json.JSONDecodeError:
                break
            self.pairs.extend((k, v) for k, v in page["pairs"])
            self.proof.update(dict.fromkeys(page.get("proof", [])))
            self.last_key = page["last_key"]
            self.done = bool(page.get("done"))

    def append(
        self, pairs: list[tuple[str, str]], last_key: str | None, done: bool, proof: list[str]
    ) -> None:
        new_file = not self.path.exists() or self.path.stat().st_size == 0
        page = {"last_key": last_key, "done": done, "pairs": pairs, "proof": proof}
        with self.path.open("a") as handle:
            if new_file:
                handle.write(json.dumps(self.header) + "\n")
            handle.write(json.dumps(page) + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        self.pairs.extend(pairs)
        self.proof.update(dict.fromkeys(proof))
        self.last_key = last_key
        self.done = done


def progress_path(out: str | os.PathLike[str]) -> Path:
    target = Path(out)
    return target.with_name(target.name + ".partial")


@bulk
def snapshot_from_rpc(
    url: str,
    at: str,
    out: str | os.PathLike[str],
    *,
    page_size: int = 1000,
    on_page: Callable[[int], None] | None = None,
    metadata: Metadata | None = None,
) -> Snapshot:
    """Read every `System.Account` entry at block `at` from a node, page by page.

    Every value is checked against the block's state root with `state_getReadProof`, and
    the root against the block hash through the header the node serves, so a node cannot
    alter a balance unnoticed (one that leaves accounts out is caught by the ledger: the
    proven TotalIssuance would no longer reconcile). The proofs are kept for the audit.
    Pages go to `<out>.partial` as they arrive; a rerun with the same node, block and
    output continues after the last saved page and yields the identical snapshot.
    Accounts are read in the layout of the runtime's metadata at that block (the node's
    `state_getMetadata` unless `metadata` is given).
    """
    if not at.startswith("0x") or len(at) != 66:
        raise InputError(f"--at {at!r}: expected a 0x-prefixed 32-byte block hash")
    progress = _Progress(
        progress_path(out), {"format": "veil-snapshot-progress-v1", "at": at.lower(),
                             "prefix": _ACCOUNT_PREFIX_HEX},
    )  # fmt: skip
    progress.load()
    if on_page is not None and progress.pairs:
        on_page(len(progress.pairs))
    with SubstrateRpc(url) as rpc:
        genesis = rpc.genesis_hash()
        state_root = state_root_of_block(rpc.header(at), at)
        if metadata is None:
            metadata = parse_metadata(rpc.metadata(at), f"{url} at {at}")
        while not progress.done:
            keys = rpc.keys_paged(_ACCOUNT_PREFIX_HEX, page_size, progress.last_key, at)
            for key in keys:
                if not key.lower().startswith(_ACCOUNT_PREFIX_HEX):
                    raise InputError(f"storage key {key}: not a System.Account key")
            values = rpc.query_storage_at(keys, at) if keys else {}
            pairs: list[tuple[str, str]] = []
            for key in keys:
                value = values.get(key)
                if value is None:
                    raise InputError(f"storage key {key}: listed by the node but has no value")
                pairs.append((key, value))
            proof = rpc.read_proof(keys, at) if keys else []
            _check_proven(state_root, proof, pairs, at)
            done = len(keys) < page_size
            progress.append(pairs, keys[-1] if keys else progress.last_key, done, proof)
            if on_page is not None:
                on_page(len(pairs))
        issuance_value = rpc.storage(_TOTAL_ISSUANCE_HEX, at)
        if issuance_value is None:
            raise InputError(
                f"storage key {_TOTAL_ISSUANCE_HEX} (Balances.TotalIssuance): missing at block {at}"
            )
        issuance_proof = rpc.read_proof([_TOTAL_ISSUANCE_HEX], at)
        _check_proven(state_root, issuance_proof, [(_TOTAL_ISSUANCE_HEX, issuance_value)], at)
        staking = None
        staking_proof: list[str] = []
        if has_staking(metadata):  # resumable like the accounts: phala_read
            staking, staking_proof = read_staking_rpc(
                rpc, metadata, at, state_root, out, page_size=page_size
            )
        decimals = _node_decimals(rpc)
    storage, layout_record = _apply_layout(dict(progress.pairs), metadata)
    all_pairs = [*storage.items(), (_TOTAL_ISSUANCE_HEX, issuance_value)]
    issuance, rows, state_hash, _ = _decode_pairs(all_pairs, strict_prefix=True)
    return Snapshot(
        total_issuance=issuance,
        accounts=rows,
        state_sha256=state_hash,
        block=at.lower(),
        genesis_hash=genesis,
        source={
            "kind": "rpc",
            "endpoint": url,
            "page_size": page_size,
            "state_root": "0x" + state_root.hex(),
            **layout_record,
            **({"token_decimals": decimals} if decimals is not None else {}),
        },
        proof_nodes=list(
            {**progress.proof, **dict.fromkeys(issuance_proof), **dict.fromkeys(staking_proof)}
        ),
        staking=staking,
    )


def _node_decimals(rpc: SubstrateRpc) -> int | None:
    """`system_properties.tokenDecimals`, or None from a node that does not serve it."""
    try:
        properties = rpc.call("system_properties", [])
    except ChainError:
        return None
    decimals = (properties or {}).get("tokenDecimals") if isinstance(properties, dict) else None
    if isinstance(decimals, list):
        decimals = decimals[0] if decimals else None
    return decimals if isinstance(decimals, int) else None


def _check_proven(root: bytes, proof: list[str], pairs: list[tuple[str, str]], at: str) -> None:
    """Every value must be the one the read proof shows under the block's state root."""
    try:
        nodes = [bytes.fromhex(node.removeprefix("0x")) for node in proof]
        keys = [bytes.fromhex(key[2:]) for key, _ in pairs]
    except ValueError:
        raise ChainError(f"block {at}: read proof is not hex") from None
    try:
        proven = verify_read_proof(root, nodes, keys)
    except ProofError as error:
        raise ChainError(f"block {at}: {error}") from None
    for (key, value), raw_key in zip(pairs, keys, strict=True):
        shown = proven[raw_key]
        if shown is None or "0x" + shown.hex() != value.lower():
            raise ChainError(
                f"storage key {key}: the node's value differs from what its read proof shows "
                f"under the state root of block {at}"
            )


def proof_path(out: str | os.PathLike[str]) -> Path:
    target = Path(out)
    return target.with_name(target.name + ".proof.json")


@bulk
def write_snapshot(snapshot: Snapshot, out: str | os.PathLike[str]) -> Path:
    """Write the snapshot (and its read proof beside it, first, with its hash recorded)."""
    if snapshot.proof_nodes is not None:
        proof_text = json.dumps(
            {
                "format": PROOF_FORMAT,
                "block": snapshot.block,
                "state_root": snapshot.source.get("state_root"),
                "nodes": snapshot.proof_nodes,
            }
        )
        snapshot.source["read_proof"] = {
            "file": proof_path(out).name,
            "sha256": "0x" + hashlib.sha256(proof_text.encode()).hexdigest(),
            "nodes": len(snapshot.proof_nodes),
        }
        write_text(proof_path(out), proof_text)
    path = write_text(out, snapshot.to_json_text())
    progress_path(out).unlink(missing_ok=True)
    staking_progress_path(out).unlink(missing_ok=True)
    return path


def verify_snapshot_proof(snapshot: Snapshot, path: str | os.PathLike[str]) -> int:
    """Re-verify an RPC snapshot against its saved read proof; returns the keys checked.

    Every account row is re-encoded to the exact `AccountInfo` bytes and looked up under
    the recorded state root, and TotalIssuance with it: anyone holding the two files can
    confirm the snapshot is the block's storage without asking a node again."""
    record = snapshot.source.get("read_proof")
    root_hex = snapshot.source.get("state_root")
    if not isinstance(record, dict) or not isinstance(root_hex, str):
        raise InputError(f"{path}: snapshot has no read proof (only --rpc snapshots carry one)")
    sidecar = Path(path).with_name(str(record.get("file")))
    try:
        data = sidecar.read_bytes()
    except OSError as error:
        raise InputError(f"{sidecar}: cannot read ({error.strerror})") from None
    if "0x" + hashlib.sha256(data).hexdigest() != record.get("sha256"):
        raise InputError(f"{sidecar}: sha256 differs from the one the snapshot recorded")
    nodes = [bytes.fromhex(node.removeprefix("0x")) for node in load_json(data)["nodes"]]
    expected = {account_key(row.account): _account_bytes(row) for row in snapshot.accounts}
    expected[TOTAL_ISSUANCE_KEY] = snapshot.total_issuance.to_bytes(16, "little")
    try:
        proven = verify_read_proof(bytes.fromhex(root_hex[2:]), nodes, expected)
    except ProofError as error:
        raise InputError(f"{sidecar}: {error}") from None
    for key, value in expected.items():
        if proven[key] != value:
            raise InputError(
                f"{path}: storage key 0x{key.hex()} differs from the value its proof shows"
            )
    return len(expected)


def _account_bytes(row: AccountRow) -> bytes:
    return AccountInfo(
        row.nonce, row.consumers, row.providers, row.sufficients,
        row.free, row.reserved, row.frozen, row.flags,
    ).encode()  # fmt: skip


@bulk
def load_snapshot(path: str | os.PathLike[str]) -> Snapshot:
    """Read a snapshot file back; every malformed record is named by its position."""
    source = Path(path)
    document = read_document(source, FORMAT, COLUMNS, "snapshot", "accounts")
    try:
        issuance = int(document["total_issuance"])
    except (KeyError, TypeError, ValueError):
        raise InputError(f"{source}: total_issuance missing or not an integer") from None
    records = document.get("accounts")
    if not isinstance(records, list):
        raise InputError(f"{source}: accounts must be a list")
    rows = _rows_fast(records)
    if rows is None:  # read again as `json` does (exact big integers) to name the problem
        document = json_exact(source.read_bytes())
        rows = _rows_checked(document["accounts"], source)
    if document.get("account_count") not in (None, len(rows)):
        raise InputError(
            f"{source}: account_count {document.get('account_count')} but {len(rows)} records"
        )
    staking = document.get("phala_staking")
    return Snapshot(
        total_issuance=issuance,
        accounts=rows,
        state_sha256=str(document.get("state_sha256")),
        block=document.get("block"),
        genesis_hash=document.get("genesis_hash"),
        source=document.get("source") or {},
        staking=None if staking is None else StakingState.from_json(staking, str(source)),
    )


def _rows_fast(records: list[Any]) -> list[AccountRow] | None:
    """All rows in column-wide bulk operations, or None if anything is off.

    Holds to the same rules as `_rows_checked` (which then names the first bad record),
    only stricter: amounts must be strings and counters plain JSON integers, so whatever
    this accepts `_rows_checked` reads identically.
    """
    if not records:
        return []
    if set(map(type, records)) != {list} or set(map(len, records)) != {len(COLUMNS)}:
        return None
    columns = list(zip(*records, strict=True))
    blob = hex_records(columns[0], 32)
    if blob is None:
        return None
    accounts = split_records(blob, 33, 1, 32)
    del blob
    if not all(map(lt, accounts, islice(accounts, 1, None))):
        return None
    amounts = []
    for column in columns[1:5]:
        numbers = amount_column(column)
        if numbers is None:
            return None
        amounts.append(numbers)
    for column in columns[5:]:
        if set(map(type, column)) != {int} or min(column) < 0:
            return None
    del records
    fields = zip(accounts, *amounts, *columns[5:], strict=True)
    return list(map(tuple.__new__, repeat(AccountRow), fields))


def _rows_checked(records: list[Any], source: Path) -> list[AccountRow]:
    """The slow path: find and name the first malformed account record."""
    rows: list[AccountRow] = []
    append = rows.append
    previous = b""
    for number, record in enumerate(records):
        try:
            account_hex = record[0]
            account = bytes.fromhex(account_hex[2:]) if account_hex[:2] == "0x" else b""
            row = AccountRow(
                account, int(record[1]), int(record[2]), int(record[3]), int(record[4]),
                int(record[5]), int(record[6]), int(record[7]), int(record[8]),
            )  # fmt: skip
        except (IndexError, TypeError, ValueError, KeyError):
            where = f"{source}: account record {number}"
            raise InputError(f"{where} ({str(record)[:80]}): malformed") from None
        if len(account) != 32 or row.free < 0 or row.reserved < 0:
            raise InputError(
                f"{source}: account record {number} ({account_hex!r:.70}): "
                f"bad id or negative amount"
            )
        if account <= previous:
            raise InputError(
                f"{source}: account record {number} ({account_hex}): not sorted or duplicated"
            )
        previous = account
        append(row)
    return rows
