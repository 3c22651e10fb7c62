"""A snapshot read from a live node: page by page, every value proven, resumable.

Each page of `System.Account` keys is read with its values and a `state_getReadProof`,
checked against the block's state root before it is kept, and appended to
`<out>.partial`; a rerun continues after the last saved page. The proofs go beside the
snapshot so the audit can check it again without a node (`verify_snapshot_proof`).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from veil.bulkwork import collector_paused
from veil.errors import ChainError, InputError
from veil.migration.account_storage import (
    ACCOUNT_PREFIX_HEX,
    TOTAL_ISSUANCE_HEX,
    AccountRow,
    decode_account_pairs,
)
from veil.migration.page_log import PageLog
from veil.migration.phala_proof import load_proof_nodes
from veil.migration.phala_read import read_staking_rpc
from veil.migration.phala_staking import has_staking
from veil.migration.snapshot import Snapshot, apply_layout
from veil.migration.snapshot_format import progress_path
from veil.substrate.header import state_root_of_block
from veil.substrate.metadata import Metadata, parse_metadata
from veil.substrate.rpc import SubstrateRpc, check_proven
from veil.substrate.storage import TOTAL_ISSUANCE_KEY, AccountInfo, account_key
from veil.substrate.trie import ProofError, verify_read_proof


@collector_paused
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
    progress = PageLog(
        progress_path(out),
        {"format": "veil-snapshot-progress-v1", "at": at.lower(), "prefix": ACCOUNT_PREFIX_HEX},
        [ACCOUNT_PREFIX_HEX],
        "progress file",
        "node, block or prefix",
    )
    progress.load()
    accounts = progress.items[ACCOUNT_PREFIX_HEX]
    if on_page is not None and accounts.pairs:
        on_page(len(accounts.pairs))
    with SubstrateRpc(url) as rpc:
        genesis = rpc.genesis_hash()
        state_root = state_root_of_block(rpc.header(at), at)
        if metadata is None:
            metadata = parse_metadata(rpc.metadata(at), f"{url} at {at}")
        while not accounts.done:
            pairs = rpc.storage_page(
                ACCOUNT_PREFIX_HEX, page_size, accounts.last_key, at,
                outside="not a System.Account key",
            )  # fmt: skip
            proof = rpc.read_proof([key for key, _ in pairs], at) if pairs else []
            check_proven(state_root, proof, pairs, at)
            done = len(pairs) < page_size
            last = pairs[-1][0] if pairs else accounts.last_key
            progress.append(ACCOUNT_PREFIX_HEX, pairs, last, done, proof)
            if on_page is not None:
                on_page(len(pairs))
        issuance_value = rpc.storage(TOTAL_ISSUANCE_HEX, at)
        if issuance_value is None:
            raise InputError(
                f"storage key {TOTAL_ISSUANCE_HEX} (Balances.TotalIssuance): missing at block {at}"
            )
        issuance_proof = rpc.read_proof([TOTAL_ISSUANCE_HEX], at)
        check_proven(state_root, issuance_proof, [(TOTAL_ISSUANCE_HEX, issuance_value)], at)
        staking = None
        staking_proof: list[str] = []
        if has_staking(metadata):  # resumable like the accounts: phala_read
            staking, staking_proof = read_staking_rpc(
                rpc, metadata, at, state_root, out, page_size=page_size
            )
        decimals = _node_decimals(rpc)
    storage, layout_record = apply_layout(dict(accounts.pairs), metadata)
    all_pairs = [*storage.items(), (TOTAL_ISSUANCE_HEX, issuance_value)]
    issuance, rows, state_hash, _ = decode_account_pairs(all_pairs, strict_prefix=True)
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
            {
                **dict.fromkeys(accounts.proof),
                **dict.fromkeys(issuance_proof),
                **dict.fromkeys(staking_proof),
            }
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
    nodes = load_proof_nodes(path, record)
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
