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

import os
from collections.abc import Callable

from veil.errors import ChainError
from veil.migration.page_log import PageLog
from veil.migration.phala_proof import check_listed, node_database
from veil.migration.phala_staking import StakingState, read_staking, staking_prefixes
from veil.migration.snapshot_format import staking_progress_path
from veil.substrate.metadata import Metadata
from veil.substrate.rpc import SubstrateRpc, check_proven
from veil.substrate.trie import ProofError

PROGRESS_FORMAT = "veil-staking-progress-v1"


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
    names = [prefix for prefix, _ in prefixes]
    progress = PageLog(
        staking_progress_path(out),
        {
            "format": PROGRESS_FORMAT,
            "at": at.lower(),
            "root": "0x" + state_root.hex(),
            "prefixes": names,
        },
        names,
        "staking progress",
        "block or runtime",
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
