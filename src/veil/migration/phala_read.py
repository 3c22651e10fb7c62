"""Reading Phala's staking storage from a node, page by page, proven and resumable.

A real Phala state has half a million W-PHA balances and a hundred thousand delegation
NFTs besides its accounts: reading them over RPC takes as long as the accounts, and a
connection lost near the end must not cost the whole read again. So every page (its
entries and the read proof of them) is appended to `<out>.staking.partial` as soon as it
is proven, and a rerun for the same block continues each storage item after its last
saved key, yielding the same entries and proof nodes in the same order as an unbroken
run, hence the identical snapshot.

Once every item is read, the proofs are walked as a trie (`phala_proof.check_listed`):
a node that left an entry out of its key listing is caught here, not in the ledger.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from veil.atomic import write_text
from veil.errors import ChainError, InputError
from veil.migration.phala_proof import check_listed, node_database
from veil.migration.phala_staking import StakingState, read_staking, staking_prefixes
from veil.substrate.metadata import Metadata
from veil.substrate.rpc import SubstrateRpc, check_proven
from veil.substrate.trie import ProofError

PROGRESS_FORMAT = "veil-staking-progress-v1"


def staking_progress_path(out: str | os.PathLike[str]) -> Path:
    """Where the staking pages of a snapshot to `out` are kept until it is written."""
    target = Path(out)
    return target.with_name(target.name + ".staking.partial")


@dataclass
class _Item:
    """What is saved of one storage item: its entries so far and where to go on."""

    pairs: list[tuple[str, str]] = field(default_factory=list)
    proof: list[str] = field(default_factory=list)
    last_key: str | None = None
    done: bool = False


class StakingProgress:
    """Append-only record of proven staking pages, one JSON line each after a header.

    A line cut short by a crash is dropped, and the file is rewritten atomically without
    it before anything is appended, so later pages never land behind a broken line."""

    def __init__(self, path: Path, header: dict[str, Any]) -> None:
        self.path = path
        self.header = header
        self.items: dict[str, _Item] = {prefix: _Item() for prefix in header["prefixes"]}
        self.pages = 0

    def load(self) -> None:
        if not self.path.exists():
            return
        lines = self.path.read_text().splitlines()
        if not lines:
            return
        try:
            header = json.loads(lines[0])
        except json.JSONDecodeError:
            header = None
        if header != self.header:
            at = header.get("at") if isinstance(header, dict) else None
            raise InputError(
                f"{self.path}: staking progress is for another block or runtime ({at}); "
                "delete it to start over"
            )
        kept = [lines[0]]
        for line in lines[1:]:
            try:
                page = json.loads(line)
                item = self.items[page["prefix"]]
                pairs = [(str(k), str(v)) for k, v in page["pairs"]]
                proof = [str(node) for node in page["proof"]]
            except (json.JSONDecodeError, KeyError, TypeError, ValueError):
                break
            item.pairs.extend(pairs)
            item.proof.extend(proof)
            item.last_key = page["last_key"]
            item.done = bool(page["done"])
            kept.append(line)
            self.pages += 1
        if len(kept) != len(lines):
            write_text(self.path, "".join(line + "\n" for line in kept))

    def append(
        self,
        prefix: str,
        pairs: list[tuple[str, str]],
        last_key: str | None,
        done: bool,
        proof: list[str],
    ) -> None:
        new_file = not self.path.exists() or self.path.stat().st_size == 0
        page = {
            "prefix": prefix,
            "last_key": last_key,
            "done": done,
            "pairs": pairs,
            "proof": proof,
        }
        with self.path.open("a") as handle:
            if new_file:
                handle.write(json.dumps(self.header) + "\n")
            handle.write(json.dumps(page) + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        item = self.items[prefix]
        item.pairs.extend(pairs)
        item.proof.extend(proof)
        item.last_key = last_key
        item.done = done
        self.pages += 1


def read_staking_rpc(
    rpc: SubstrateRpc,
    metadata: Metadata,
    at: str,
    state_root: bytes,
    out: str | os.PathLike[str],
    *,
    page_size: int = 1000,
    on_page: Callable[[int], None] | None = None,
) -> tuple[StakingState, list[str]]:
    """Every stake pool v2 entry at block `at`, proven, and the proof nodes (in read order).

    Continues from `<out>.staking.partial` when an earlier run for the same block and
    runtime was cut off; the caller removes that file once the snapshot is written."""
    prefixes = staking_prefixes(metadata)
    progress = StakingProgress(
        staking_progress_path(out),
        {
            "format": PROGRESS_FORMAT,
            "at": at.lower(),
            "root": "0x" + state_root.hex(),
            "prefixes": [prefix for prefix, _ in prefixes],
        },
    )
    progress.load()
    if on_page is not None:
        saved = sum(len(item.pairs) for item in progress.items.values())
        if saved:
            on_page(saved)
    for prefix, plain in prefixes:
        item = progress.items[prefix]
        while not item.done:
            if plain:  # one value: its key is the prefix itself, proven present or absent
                value = rpc.storage(prefix, at)
                nodes = rpc.read_proof([prefix], at)
                check_proven(state_root, nodes, [(prefix, value)], at)
                progress.append(prefix, [] if value is None else [(prefix, value)], None, True,
                                nodes)  # fmt: skip
                continue
            page = rpc.storage_page(
                prefix, page_size, item.last_key, at,
                outside=f"not under the prefix {prefix} asked for",
            )  # fmt: skip
            keys = [key for key, _ in page]
            if keys:
                nodes = rpc.read_proof(keys, at)
                check_proven(state_root, nodes, list(page), at)
            elif item.last_key is None:
                # An empty item: the path to its prefix shows that nothing hangs below it.
                nodes = rpc.read_proof([prefix], at)
                check_proven(state_root, nodes, [], at)
            else:
                nodes = []
            done = len(keys) < page_size
            progress.append(prefix, page, keys[-1] if keys else item.last_key, done, nodes)
            if on_page is not None:
                on_page(len(page))
    pairs = {k: v for item in progress.items.values() for k, v in item.pairs}
    proof = list(dict.fromkeys(node for item in progress.items.values() for node in item.proof))
    database = node_database(bytes.fromhex(node.removeprefix("0x")) for node in proof)
    try:
        check_listed(state_root, database, metadata, pairs)
    except ProofError as error:
        raise ChainError(f"block {at}: {error}") from None
    return read_staking(pairs, metadata), proof
