"""The audit anyone can run: rebuild the migration from public data and compare.

Inputs are what the operator publishes (snapshot, positions, exclusions, tree) and the
chain itself. The audit trusts none of the operator's derived files: it rebuilds the
ledger and the root from the snapshot, checks them against the tree file and the root the
timelock committed, re-verifies every holder signature published in `Claimed`, and
checks that claimed + swept + unclaimed equals what was committed, to the wei.

The Migrator only pays a claim whose published signature is the one the attesters bound
(its hash is in the attested binding), so a signature that does not verify here means
the attester threshold signed something it should not have: the audit fails on it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

from veil.chain.client import Chain
from veil.errors import VeilError
from veil.merkle import MerkleTree, load_tree
from veil.migration.attestation import BARE_LENGTHS, SCHEME_IDS
from veil.migration.binding import BindingContext, BindingRefused, verify_binding
from veil.migration.ledger import build_ledger, tree_from_ledger
from veil.migration.ledger_format import ledger_document, load_ledger
from veil.migration.phala_proof import audit_staking, first_line, load_proof_nodes
from veil.migration.positions import load_exclusions, load_positions
from veil.migration.rpc_snapshot import verify_snapshot_proof
from veil.migration.snapshot import Snapshot
from veil.migration.snapshot_format import load_snapshot
from veil.substrate import ss58
from veil.substrate.metadata import load_metadata
from veil.substrate.signature import Scheme

SCHEME_NAMES = {v: k for k, v in SCHEME_IDS.items()}


@dataclass
class Check:
    name: str
    ok: bool
    detail: str


@dataclass
class AuditReport:
    checks: list[Check] = field(default_factory=list)
    claims: int = 0

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.checks)

    def add(self, name: str, ok: bool, detail: str) -> None:
        self.checks.append(Check(name, ok, detail))


@dataclass
class AuditInputs:
    snapshot: Path
    tree: Path
    positions: Path | None = None
    exclusions: Path | None = None
    ledger: Path | None = None
    accept_dust: int | None = None
    # Runtime metadata at the snapshot block: decodes the staking entries a Phala RPC
    # snapshot's proof shows (the auditor's own copy, e.g. state_getMetadata of any node).
    metadata: Path | None = None


def _hex(b: bytes) -> str:
    return "0x" + b.hex()


def _rebuild(inputs: AuditInputs, report: AuditReport) -> MerkleTree | None:
    """Ledger and tree from the snapshot alone (plus published positions/exclusions)."""
    snapshot = load_snapshot(inputs.snapshot)
    if snapshot.source.get("read_proof"):
        # An RPC snapshot carries the node's read proofs: re-check every account and the
        # issuance under the block's state root, so the audit needs no node either.
        label = "snapshot re-verifies against the block's state root"
        try:
            checked = verify_snapshot_proof(snapshot, inputs.snapshot)
        except VeilError as error:
            report.add(label, False, str(error))
        else:
            report.add(label, True, f"{checked} keys under {snapshot.source['state_root']}")
        if snapshot.staking is not None:
            _check_staking(snapshot, inputs, report)
    positions = load_positions(inputs.positions) if inputs.positions else []
    exclusions = load_exclusions(inputs.exclusions) if inputs.exclusions else []
    try:
        ledger = build_ledger(snapshot, positions, exclusions, accept_dust=inputs.accept_dust)
    except VeilError as error:
        report.add("ledger rebuilds from the snapshot", False, str(error))
        return None
    report.add(
        "ledger rebuilds from the snapshot",
        True,
        f"{len(ledger.leaves)} leaves; TotalIssuance x 10^6 = {ledger.total_issuance_wei} wei "
        f"= free {ledger.free_wei} + staked {ledger.staked_wei} + excluded {ledger.excluded_wei}",
    )
    if inputs.ledger is not None:
        published = load_ledger(inputs.ledger)
        same = ledger_document(published)["leaves"] == ledger_document(ledger)["leaves"]
        report.add("published ledger matches the rebuilt one", same,
                   "identical leaves" if same else "leaves differ")  # fmt: skip
    return tree_from_ledger(ledger)


def _check_staking(snapshot: Snapshot, inputs: AuditInputs, report: AuditReport) -> None:
    """Re-read the Phala staking entries from the saved proof, compare them with the
    snapshot's and re-derive every position; the ledger is then rebuilt from the proven
    entries, so an edited staking value cannot reach the rebuilt root."""
    label = "staking entries re-verify against the read proof"
    derived = "positions re-derive from the proven staking storage"
    assert snapshot.staking is not None
    if inputs.metadata is None:
        report.add(label, False, f"pass --metadata (the runtime metadata at block "
                   f"{snapshot.block}) to decode the staking entries the proof shows")  # fmt: skip
        return
    try:
        metadata = load_metadata(inputs.metadata)
        nodes = load_proof_nodes(inputs.snapshot, snapshot.source.get("read_proof"))
        root = bytes.fromhex(str(snapshot.source["state_root"])[2:])
        balances = {row[0]: row[1] + row[2] for row in snapshot.accounts}
        result = audit_staking(snapshot.staking, nodes, root, metadata, balances)
    except VeilError as error:
        report.add(label, False, str(error))
        return
    report.add(
        label,
        not result.entry_differences,
        first_line(result.entry_differences) if result.entry_differences else
        f"{result.entries} staking entries, every item complete, under "
        f"{snapshot.source['state_root']}",
    )  # fmt: skip
    report.add(
        derived,
        not result.position_differences,
        first_line(result.position_differences) if result.position_differences else
        f"{len(result.proven.pools)} pools, {len(result.proven.nfts)} NFTs: every holder's "
        "free and staked amount is the same",
    )  # fmt: skip
    snapshot.staking = result.proven


def check_claims(
    events: Iterable[Mapping[str, Any]],
    published: MerkleTree,
    context: BindingContext,
    report: AuditReport,
) -> tuple[int, int, Counter[int]]:
    """Check decoded `Claimed` events against the tree and re-verify each holder signature
    (sr25519, ed25519 or ECDSA, bare or `<Bytes>`-wrapped) over its binding message.

    Adds three checks to `report`; returns (free, staked, claims per leaf index)."""
    bad_leaf: list[str] = []
    bad_signature: list[str] = []
    claimed_free = claimed_staked = claims = 0
    indices: Counter[int] = Counter()
    for a in events:
        claims += 1
        account = bytes(a["account"])
        indices[int(a["index"])] += 1
        claimed_free += a["free"]
        claimed_staked += a["staked"]
        name = ss58.encode(account)
        try:
            value = published.values[published.value_index(account)]
        except VeilError:
            bad_leaf.append(f"{name}: not in the tree")
        else:
            if value != (a["index"], account, a["free"], a["staked"]):
                bad_leaf.append(f"{name}: event amounts or index differ from its leaf")
        signature = bytes(a["substrateSignature"])
        scheme = SCHEME_NAMES.get(a["scheme"])
        try:
            if scheme is None:
                raise BindingRefused(f"unknown signature scheme {a['scheme']}")
            if len(signature) != BARE_LENGTHS[scheme]:
                raise BindingRefused(
                    f"{scheme} signature of {len(signature)} bytes, expected {BARE_LENGTHS[scheme]}"
                )
            verify_binding(account, a["receiver"], signature, context, scheme=cast(Scheme, scheme))
        except (BindingRefused, VeilError) as error:
            bad_signature.append(f"{name} -> {a['receiver']}: {error}")
    report.claims = claims
    doubles = [str(i) for i, n in indices.items() if n > 1]
    report.add("every Claimed event matches a leaf", not bad_leaf,
               "; ".join(bad_leaf[:5]) or f"{claims} claims")  # fmt: skip
    report.add("no leaf claimed twice", not doubles, ", ".join(doubles) or "none")
    report.add(
        "every holder signature re-verifies",
        not bad_signature,
        "; ".join(bad_signature[:5]) or f"{claims} signatures (sr25519/ed25519/ecdsa)",
    )
    return claimed_free, claimed_staked, indices


def run_audit(inputs: AuditInputs, chain: Chain, context: BindingContext) -> AuditReport:
    report = AuditReport()
    published = load_tree(inputs.tree)
    rebuilt = _rebuild(inputs, report)
    if rebuilt is not None:
        same = rebuilt.root == published.root
        report.add("rebuilt root equals the tree file's root", same,
                   f"rebuilt {_hex(rebuilt.root)}, file {_hex(published.root)}")  # fmt: skip

    migrator = chain.contract("Migrator")
    onchain_root = bytes(migrator.functions.root().call())
    report.add("tree root equals the root committed on chain", onchain_root == published.root,
               f"chain {_hex(onchain_root)}")  # fmt: skip
    free = sum(v[2] for v in published.values)
    staked = sum(v[3] for v in published.values)
    committed = (
        migrator.functions.totalFree().call(),
        migrator.functions.totalStaked().call(),
        migrator.functions.leafCount().call(),
    )
    report.add("committed totals equal the tree's totals",
               committed == (free, staked, len(published.values)),
               f"chain free {committed[0]}, staked {committed[1]}, leaves {committed[2]}; "
               f"tree free {free}, staked {staked}, leaves {len(published.values)}")  # fmt: skip

    assert chain.deployment is not None
    start = chain.deployment.contracts["Migrator"].block
    logs = migrator.events.Claimed().get_logs(from_block=start)
    claimed_free, claimed_staked, indices = check_claims(
        (log["args"] for log in logs), published, context, report
    )

    chain_free = migrator.functions.claimedFree().call()
    chain_staked = migrator.functions.claimedStaked().call()
    swept_free = migrator.functions.sweptFree().call()
    swept_staked = migrator.functions.sweptStaked().call()
    # The Migrator counts free PHA as claimed when it has left its balance, so PHA that
    # someone sends it can only lower its figure: the chain never shows more than the events.
    gift = claimed_free - chain_free
    sent = f" ({gift} wei of PHA sent to the Migrator by others)" if gift > 0 else ""
    report.add("claimed totals from events equal the Migrator's counters",
               gift >= 0 and claimed_staked == chain_staked,
               f"events free {claimed_free}, staked {claimed_staked}; "
               f"chain free {chain_free}, staked {chain_staked}{sent}")  # fmt: skip
    claimed_set = set(indices)
    open_free = sum(v[2] for v in published.values if v[0] not in claimed_set)
    open_staked = sum(v[3] for v in published.values if v[0] not in claimed_set)
    balanced = (
        claimed_free + open_free == committed[0]
        and chain_staked + open_staked == committed[1]
        and swept_free <= open_free + max(gift, 0)  # a sweep takes what others sent too
        and swept_staked <= open_staked
    )
    report.add("claimed + unclaimed leaves == committed (swept within unclaimed)", balanced,
               f"free: {claimed_free} + {open_free} vs {committed[0]} (swept {swept_free}); "
               f"staked: {chain_staked} + {open_staked} vs {committed[1]} "
               f"(swept {swept_staked})")  # fmt: skip
    return report
