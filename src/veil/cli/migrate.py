"""`veil migrate`: parachain state -> snapshot -> ledger -> Merkle tree, bindings, and the
on-chain half: claims and the audit.

Each step reads the previous step's file and writes its own; the logic lives in
`veil.migration` and `veil.substrate`, this module only parses, calls and prints.
"""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from veil.atomic import write_json
from veil.attestation.api import BindingRequest
from veil.bulkwork import gc_paused
from veil.chain import deployment as deployments
from veil.chain.addresses import parse_address
from veil.chain.units import amount_json, format_amount, format_with_wei
from veil.cli.accounts import resolve_signer
from veil.cli.options import (
    AccountOpt,
    DeploymentOpt,
    JsonOpt,
    KeystoreOpt,
    RpcOpt,
    deprecated,
    open_chain,
    out_path,
)
from veil.cli.output import print_json, print_table
from veil.errors import InputError, VeilError
from veil.merkle import load_tree, write_tree
from veil.migration import binding as binding_lib
from veil.migration.attestation import signature_hash
from veil.migration.audit import AuditInputs, run_audit
from veil.migration.claim import collect_attestations, submit_claim
from veil.migration.ledger import Ledger, LedgerRefused, build_ledger, pool_report, tree_from_ledger
from veil.migration.ledger_format import file_sha256, load_ledger, write_ledger
from veil.migration.positions import (
    exclusions_to_json,
    load_exclusions,
    load_positions,
    positions_to_json,
)
from veil.migration.rpc_snapshot import snapshot_from_rpc
from veil.migration.snapshot import record_decimals, record_genesis, snapshot_from_raw
from veil.migration.snapshot_format import load_snapshot, write_snapshot
from veil.migration.synthetic import generate_state, raw_document
from veil.substrate import ss58
from veil.substrate.signature import SCHEMES

app = typer.Typer(
    no_args_is_help=True,
    help="Move parachain balances to the L2: snapshot, ledger, Merkle tree, bindings.",
)
_out = Console(soft_wrap=True)
_err = Console(stderr=True, soft_wrap=True)


# The steps that hold a million records run without the cyclic collector: it would scan
# every row again and again for cycles that none of them form (see veil.bulkwork).
_MILLION_ROW_STEPS = frozenset({"snapshot", "ledger", "tree", "proof", "multiproof"})


@app.callback()
def _pause_collector(ctx: typer.Context) -> None:
    if ctx.invoked_subcommand in _MILLION_ROW_STEPS:
        ctx.with_resource(gc_paused())


def _pha(wei: int) -> str:
    return f"{Decimal(wei) / Decimal(10**18):,f} PHA"


@app.command(
    epilog="Example: veil migrate snapshot --raw-state RAW.json --out SNAP.json; "
    "veil migrate snapshot --rpc wss://NODE --at 0xBLOCK_HASH --out SNAP.json"
)
def snapshot(
    out: Path = typer.Option(..., "--out", help="Snapshot file to write."),
    raw_state: Path | None = typer.Option(
        None, "--raw-state", help="state_getPairs object or raw chain spec (JSON)."
    ),
    rpc: str | None = typer.Option(None, "--rpc", help="Node endpoint, ws:// or http://."),
    at: str | None = typer.Option(None, "--at", help="Block hash to read (with --rpc)."),
    page_size: int = typer.Option(1000, "--page-size", min=1, help="Keys per RPC page."),
    genesis: str | None = typer.Option(
        None, "--genesis", help="Genesis hash to record for a raw dump that lacks one."
    ),
    block: str | None = typer.Option(None, "--block", help="Block hash to record (raw dump)."),
    metadata: Path | None = typer.Option(
        None,
        "--metadata",
        help="Runtime metadata (raw SCALE, 0x-hex, or a state_getMetadata answer) to decode "
        "accounts with; --rpc reads it from the node.",
    ),
    decimals: int | None = typer.Option(
        None,
        "--decimals",
        help="Native token decimals (PHA: 12); refused if the spec or node declares others.",
    ),
) -> None:
    """Decode every System.Account balance and TotalIssuance at one block."""
    from veil.substrate.metadata import load_metadata

    out_path(out)
    if (raw_state is None) == (rpc is None):
        raise InputError("snapshot: give exactly one of --raw-state or --rpc")
    if rpc is not None:
        runtime = load_metadata(metadata) if metadata is not None else None
        if at is None:
            raise InputError("snapshot: --rpc needs --at BLOCK_HASH")
        with Progress(
            TextColumn("reading System.Account"), BarColumn(), TextColumn("{task.completed} keys"),
            TimeElapsedColumn(), console=_err, transient=True,
        ) as bar:  # fmt: skip
            task = bar.add_task("accounts", total=None)
            result = snapshot_from_rpc(
                rpc, at, out, page_size=page_size, on_page=lambda n: bar.advance(task, n),
                metadata=runtime,
            )  # fmt: skip
    else:
        assert raw_state is not None
        # the metadata file is decoded beside the state (in a forked child when it is large)
        result = snapshot_from_raw(raw_state, metadata=metadata)
    if genesis is not None:
        record_genesis(result, "0x" + binding_lib.parse_genesis(genesis).hex())
    if block is not None:
        result.block = "0x" + binding_lib.parse_genesis(block).hex()
    if decimals is not None:
        record_decimals(result, decimals)
    write_snapshot(result, out)
    _out.print(
        f"snapshot: {len(result.accounts)} accounts, TotalIssuance {result.total_issuance} planck"
        f" at block {result.block or '(not recorded)'}, state {result.state_sha256} -> {out}"
    )
    if result.staking is not None:
        staking = result.staking
        _out.print(
            f"phala staking: {len(staking.pools)} pools, {len(staking.nfts)} NFTs, "
            f"{len(staking.wpha_balances)} W-PHA holders (supply {staking.wpha_supply} planck), "
            f"{len(staking.legacy_rewards)} LegacyRewards, "
            f"{len(staking.reimbursements)} Reimbursements; staking entries "
            f"{staking.entries_sha256}"
        )


@app.command(
    epilog="Example: veil migrate ledger SNAP.json --positions positions.json "
    "--exclusions exclusions.json --out LEDGER.json"
)
def ledger(
    snapshot_file: Path = typer.Argument(..., metavar="SNAP.json", help="Snapshot to convert."),
    out: Path = typer.Option(..., "--out", help="Ledger file to write."),
    positions: Path | None = typer.Option(None, "--positions", help="Staked positions, CSV/JSON."),
    exclusions: Path | None = typer.Option(None, "--exclusions", help="Exclusions, JSON list."),
    accept_dust: int | None = typer.Option(
        None,
        "--accept-dust",
        min=0,
        help="Planck a module account may hold beyond its positions (default 0); on a Phala "
        "snapshot, planck a pool's assets may differ from the runtime's value of its shares "
        "(default: not checked).",
    ),
) -> None:
    """Convert planck to wei 1:1, split free and staked, and reconcile to TotalIssuance."""
    out_path(out)
    snap = load_snapshot(snapshot_file)
    position_list = load_positions(positions) if positions else []
    exclusion_list = load_exclusions(exclusions) if exclusions else []
    try:
        result = build_ledger(snap, position_list, exclusion_list, accept_dust=accept_dust)
    except LedgerRefused as refused:
        _err.print("ledger refused; what does not reconcile:", style="bold red")
        for problem in refused.problems[:50]:
            _err.print(f"  - {problem}", highlight=False, soft_wrap=True)
        if len(refused.problems) > 50:
            _err.print(f"  ... and {len(refused.problems) - 50} more", highlight=False)
        raise
    result.snapshot["file_sha256"] = file_sha256(snapshot_file)
    write_ledger(result, out)
    _print_reconciliation(result)
    _out.print(f"ledger: {len(result.leaves)} leaves -> {out}")


def _print_rows(title: str, columns: tuple[str, ...], rows: list[tuple[str, ...]]) -> None:
    """A table that is fitted to a terminal and printed whole anywhere else (an auditor
    compares every digit of the wei)."""
    table = Table(title=title)
    for column in columns:
        table.add_column(column)
    for row in rows:
        table.add_row(*row)
    print_table(_out, table)


def _print_reconciliation(result: Ledger) -> None:
    _print_rows(
        "reconciliation (wei)",
        ("line", "wei", "PHA"),
        [(label, str(wei), _pha(wei)) for label, wei in result.reconciliation()],
    )
    if result.phala is not None:
        factor = result.wei_per_planck
        _print_rows(
            "W-PHA (planck): supply == idle + owner rewards + pool assets + excluded",
            ("line", "planck", "PHA"),
            [(label, amount, _pha(int(amount) * factor)) for label, amount in result.phala["wpha"]],
        )
        _print_rows(
            "pools: allocated (exact) beside the runtime's U64F64 value (planck)",
            ("pid", "kind", "account", "shares", "allocated", "runtime", "difference"),
            [
                (
                    str(p["pid"]),
                    p["kind"],
                    p["account"],
                    p["held_shares"],
                    p["assets_planck"],
                    p["runtime_value_planck"],
                    p["difference_planck"],
                )
                for p in result.phala["pools"]
            ],
        )
        return
    pools = pool_report(result)
    if pools:
        _print_rows(
            "module accounts backing staked positions",
            ("pools", "module account", "balance wei", "positions wei", "dust wei"),
            [(names, account, str(b), str(h), str(d)) for names, account, b, h, d in pools],
        )


@app.command(epilog="Example: veil migrate tree LEDGER.json --out TREE.json")
def tree(
    ledger_file: Path = typer.Argument(..., metavar="LEDGER.json", help="Ledger to commit to."),
    out: Path = typer.Option(..., "--out", help="OpenZeppelin standard-v1 tree dump to write."),
) -> None:
    """Build the claim Merkle tree exactly as OpenZeppelin's StandardMerkleTree does."""
    out_path(out)
    result = tree_from_ledger(load_ledger(ledger_file))
    write_tree(result, out)
    totals = result.totals()
    _out.print(f"root: 0x{result.root.hex()}")
    _out.print(
        f"leaves: {totals['leaf_count']}"
        f"  free: {totals['free_wei']} wei ({_pha(int(totals['free_wei']))})"
        f"  staked: {totals['staked_wei']} wei ({_pha(int(totals['staked_wei']))}) -> {out}"
    )


@app.command(epilog="Example: veil migrate proof TREE.json 4xYourPhalaAddress")
def proof(
    tree_file: Path = typer.Argument(..., metavar="TREE.json", help="The published tree."),
    account: str = typer.Argument(..., help="SS58 address or 0x account id."),
) -> None:
    """Print one leaf's proof as JSON (index, account, free, staked, proof, root)."""
    result = load_tree(tree_file, validate=False)
    value_index = result.value_index(ss58.parse_account(account))
    path = result.proof(value_index)
    index, account_id, free, staked = result.values[value_index]
    typer.echo(
        json.dumps(
            {
                "index": index,
                "account": "0x" + account_id.hex(),
                "address": ss58.encode(account_id),
                "free": str(free),
                "staked": str(staked),
                "proof": ["0x" + p.hex() for p in path],
                "root": "0x" + result.root.hex(),
            },
            indent=2,
        )
    )


@app.command(epilog="Example: veil migrate multiproof TREE.json 4xFirst... 4xSecond...")
def multiproof(
    tree_file: Path = typer.Argument(..., metavar="TREE.json", help="The published tree."),
    accounts: list[str] = typer.Argument(..., help="SS58 addresses or 0x account ids."),
) -> None:
    """Print an OpenZeppelin multiproof for several leaves (batch claims)."""
    result = load_tree(tree_file, validate=False)
    indices = [result.value_index(ss58.parse_account(a)) for a in accounts]
    proof_json = result.multiproof(indices).to_json()
    proof_json["root"] = "0x" + result.root.hex()
    typer.echo(json.dumps(proof_json, indent=2))


def _context(
    genesis: str | None,
    chain_id: int | None,
    migrator: str | None,
    tree_file: Path | None,
    deployment: Path | None,
) -> binding_lib.BindingContext:
    if tree_file is not None or deployment is not None:
        if tree_file is None or deployment is None:
            raise InputError("binding: --tree and --deployment go together")
        return binding_lib.context_from_files(tree_file, deployment)
    if genesis is None or chain_id is None or migrator is None:
        raise InputError(
            "binding: give --genesis, --chain-id and --migrator, or --tree and --deployment"
        )
    return binding_lib.BindingContext(binding_lib.parse_genesis(genesis), chain_id, migrator)


_GENESIS = typer.Option(None, "--genesis", help="Parachain genesis hash (0x...).")
_CHAIN = typer.Option(None, "--chain-id", help="L2 chain id.")
_MIGRATOR = typer.Option(None, "--migrator", help="Migrator contract address.")
_TREE = typer.Option(None, "--tree", help="Published tree (gives the genesis hash).")
_DEPLOYMENT = typer.Option(
    None, "--deployment", "-d", help="Deployment file (gives the chain id and the Migrator)."
)
_HOLDER = typer.Option(
    None, "--holder", help="The parachain holder: SS58 address (prefix 30) or 0x account id."
)
_OLD_HOLDER = typer.Option(None, "--account", hidden=True, help="Deprecated: use --holder.")
_TO = typer.Option(..., "--to", help="L2 receiver address (EIP-55 checksum checked).")


def _holder(holder: str | None, old: str | None) -> bytes:
    """The holder's account id from --holder (or the deprecated --account spelling)."""
    if old is not None:
        deprecated("--account (the holder)", "--holder")
        holder = holder or old
    if holder is None:
        raise InputError("give the holder: --holder SS58_ADDRESS")
    return ss58.parse_account(holder)


def _in_tree(tree_file: Path | None, account_id: bytes) -> None:
    """A holder absent from the tree can never claim: say so before anyone signs anything."""
    if tree_file is None:
        return
    if account_id not in {value[1] for value in load_tree(tree_file, validate=False).values}:
        raise InputError(
            f"holder {ss58.encode(account_id)}: not in the tree {tree_file} "
            "(no balance at the snapshot, or a different network)"
        )


@app.command(
    "binding-message",
    epilog="Example: veil migrate binding-message --holder 4xYourPhalaAddress --to 0xYourL2Address"
    " --tree TREE.json -d deployments/devnet.json",
)
def binding_message(
    holder: str | None = _HOLDER,
    to: str = _TO,
    account: str | None = _OLD_HOLDER,
    genesis: str | None = _GENESIS,
    chain_id: int | None = _CHAIN,
    migrator: str | None = _MIGRATOR,
    tree_file: Path | None = _TREE,
    deployment: Path | None = _DEPLOYMENT,
) -> None:
    """Print the exact text to sign (wallets wrap it in <Bytes>...</Bytes>)."""
    account_id = _holder(holder, account)
    receiver = parse_address(to, "--to")
    context = _context(genesis, chain_id, migrator, tree_file, deployment)
    _in_tree(tree_file, account_id)
    typer.echo(binding_lib.binding_message(account_id, receiver, context))


@app.command(
    "verify-binding",
    epilog="Example: veil migrate verify-binding --holder 4xYourPhalaAddress --to 0xYourL2Address"
    " --signature 0xSIG --tree TREE.json -d deployments/devnet.json",
)
def verify_binding(
    holder: str | None = _HOLDER,
    to: str = _TO,
    account: str | None = _OLD_HOLDER,
    signature: str = typer.Option(..., "--signature", help="0x signature from signRaw."),
    scheme: str | None = typer.Option(None, "--scheme", help="sr25519, ed25519 or ecdsa."),
    pubkey: str | None = typer.Option(None, "--pubkey", help="0x public key (ecdsa: 33 bytes)."),
    genesis: str | None = _GENESIS,
    chain_id: int | None = _CHAIN,
    migrator: str | None = _MIGRATOR,
    tree_file: Path | None = _TREE,
    deployment: Path | None = _DEPLOYMENT,
) -> None:
    """Exit 0 if the signature binds the holder to the receiver on this deployment, else 1."""
    account_id = _holder(holder, account)
    receiver = parse_address(to, "--to")
    context = _context(genesis, chain_id, migrator, tree_file, deployment)
    if scheme is not None and scheme not in SCHEMES:
        raise InputError(f"--scheme {scheme!r}: expected one of {', '.join(SCHEMES)}")
    signature_bytes = _hex_arg(signature, "--signature")
    key = _hex_arg(pubkey, "--pubkey") if pubkey else None
    verified = binding_lib.verify_binding(
        account_id, receiver, signature_bytes, context,
        scheme=scheme, public_key=key,
    )  # fmt: skip
    form = "<Bytes>-wrapped" if verified.wrapped else "bare"
    typer.echo(f"valid: {verified.scheme} signature over the {form} binding message")


def _hex_arg(text: str, option: str) -> bytes:
    try:
        if not text.startswith("0x"):
            raise ValueError
        return bytes.fromhex(text[2:])
    except ValueError:
        raise InputError(f"{option} {text!r:.40}: expected 0x-prefixed hex") from None


@app.command(
    "generate-state",
    epilog="Example: veil migrate generate-state --accounts 1000 --out RAW.json"
    " --positions positions.json --exclusions exclusions.json",
)
def generate_state_command(
    accounts: int = typer.Option(..., "--accounts", help="Ordinary holders to create."),
    out: Path = typer.Option(..., "--out", help="RAW.json to write."),
    positions: Path = typer.Option(..., "--positions", help="Positions JSON to write."),
    exclusions: Path = typer.Option(..., "--exclusions", help="Exclusions JSON to write."),
    keys: Path | None = typer.Option(None, "--keys", help="Secrets of the sample keypairs."),
    seed: int = typer.Option(0, "--seed", help="Random seed (same seed, same state)."),
) -> None:
    """Write a realistic synthetic parachain state for the demo and benchmarks."""
    if accounts < 3:
        raise InputError(f"--accounts {accounts}: need at least 3")
    for path, option in ((out, "--out"), (positions, "--positions"), (exclusions, "--exclusions"),
                         (keys, "--keys")):  # fmt: skip
        if path is not None:
            out_path(path, option)
    state = generate_state(accounts, seed=seed)
    write_json(out, raw_document(state), indent=None)
    write_json(positions, positions_to_json(state.positions))
    write_json(exclusions, exclusions_to_json(state.exclusions))
    if keys is not None:
        write_json(
            keys,
            {
                "warning": "demo secrets: never use these keys for real funds",
                "genesis_hash": "0x" + state.genesis_hash.hex(),
                "keys": [k.to_json() for k in state.keys],
            },
        )
    _out.print(
        f"state: {accounts} holders, {len(state.positions)} positions, "
        f"TotalIssuance {state.total_issuance} planck -> {out}"
    )


# --- on-chain half: claim and audit ------------------------------------------------


def _onchain_context(
    tree: Path, genesis: str | None, deployment: Path | None
) -> binding_lib.BindingContext:
    """Where bindings are valid: the tree's source chain (or --genesis) and the Migrator."""
    path = deployment or deployments.default_path()
    if genesis is None:
        return binding_lib.context_from_files(tree, path)
    chain_id, migrator = binding_lib.read_deployment(path)
    return binding_lib.BindingContext(binding_lib.parse_genesis(genesis), chain_id, migrator)


@app.command(
    epilog="Example: veil migrate claim --tree TREE.json --holder 4xYourPhalaAddress"
    " --to 0xYourL2Address --signature 0xSIG --attester http://127.0.0.1:8700 -a dave"
)
def claim(
    tree: Path = typer.Option(..., "--tree", help="The published migration tree."),
    holder: str = typer.Option(
        None, "--holder", help="The parachain holder: SS58 address (prefix 30) or 0x account id."
    ),
    to: str = typer.Option(..., "--to", help="The L2 receiver the holder bound."),
    signature: str = typer.Option(..., "--signature", help="The holder's binding signature."),
    scheme: str = typer.Option(None, "--scheme", help="sr25519, ed25519 or ecdsa."),
    pubkey: str = typer.Option(None, "--pubkey", help="33-byte key (ECDSA accounts)."),
    attester: list[str] = typer.Option(..., "--attester", help="Attester URL (repeat)."),
    genesis: str = typer.Option(None, "--genesis", help="Source genesis (default: tree's)."),
    account: str = AccountOpt,
    sender_name: str = typer.Option(None, "--from", hidden=True, help="Deprecated: --account."),
    keystore: Path = KeystoreOpt,
    as_json: bool = JsonOpt,
    deployment: Path = DeploymentOpt,
    rpc: str = RpcOpt,
) -> None:
    """Check the binding, collect attestations, claim: PHA and vPHA go to the receiver.

    Anyone may send the transaction (--account NAME on the devnet, --keystore, or
    $VEIL_PRIVATE_KEY); the funds only ever go to the bound receiver.
    """
    if sender_name is not None:
        deprecated("--from", "--account/-a")
        account = account or sender_name
    if holder is None:
        raise InputError(
            "give the holder: --holder SS58_ADDRESS (--account now names the signer, "
            "as in every other command)"
        )
    if scheme is not None and scheme not in SCHEMES:
        raise InputError(f"--scheme {scheme!r}: expected one of {', '.join(SCHEMES)}")
    account_id = ss58.parse_account(holder)
    receiver = parse_address(to, "receiver")
    context = _onchain_context(tree, genesis, deployment)
    migrator = context.migrator
    sig = _hex_arg(signature, "--signature")
    key = _hex_arg(pubkey, "--pubkey") if pubkey else None
    verified = binding_lib.verify_binding(
        account_id,
        receiver,
        sig,
        context,
        scheme=scheme,
        public_key=key,
    )
    chain = open_chain(deployment, rpc)
    merkle = load_tree(tree)
    request = BindingRequest("0x" + account_id.hex(), receiver, signature, scheme or None,
                             pubkey or None)  # fmt: skip
    attestations, problems = collect_attestations(
        attester, request, merkle, account_id, receiver, context.chain_id, migrator,
        signature_hash(sig, verified.scheme),
    )  # fmt: skip
    for problem in problems:
        _out.print(f"[yellow]warning:[/yellow] {problem}")
    if not attestations:
        raise VeilError(f"claim {ss58.encode(account_id)}: no attester signed the binding")
    sender = resolve_signer(account, keystore)
    result = submit_claim(chain, sender, merkle, account_id, receiver, sig, verified.scheme,
                          attestations)  # fmt: skip
    decimals = chain.contract("Vault").functions.decimals().call()
    holder = ss58.encode(account_id)
    if as_json:
        print_json(
            {
                "leaf": result.index,
                "holder": holder,
                "receiver": receiver,
                "tx": result.tx_hash,
                "pha": amount_json(result.pha),
                "vpha": amount_json(result.vpha_shares, decimals),
                "vpha_value": amount_json(result.vpha_value),
                "gas_used": result.gas_used,
            }
        )
        return
    _out.print(f"claimed leaf {result.index} for {holder} (tx {result.tx_hash})")
    _out.print(f"  PHA   {format_with_wei(result.pha)} -> {receiver}")
    _out.print(
        f"  vPHA  {format_amount(result.vpha_shares, decimals, 'vPHA')} "
        f"(worth {format_with_wei(result.vpha_value)}) -> {receiver}"
    )
    _out.print(f"  gas   {result.gas_used}")


@app.command(
    epilog="Example: veil migrate audit --snapshot SNAP.json --tree TREE.json"
    " --positions positions.json --exclusions exclusions.json --json"
)
def audit(
    snapshot: Path = typer.Option(..., "--snapshot", help="Published snapshot."),
    tree: Path = typer.Option(..., "--tree", help="Published tree."),
    positions: Path = typer.Option(None, "--positions", help="Published staked positions."),
    exclusions: Path = typer.Option(None, "--exclusions", help="Published exclusions."),
    ledger: Path = typer.Option(None, "--ledger", help="Published ledger (compared too)."),
    as_json: bool = JsonOpt,
    accept_dust: int | None = typer.Option(
        None,
        "--accept-dust",
        min=0,
        help="Planck a module account may hold beyond its positions (default 0); on a Phala "
        "snapshot, planck a pool's assets may differ from the runtime's value of its shares "
        "(default: not checked).",
    ),
    genesis: str = typer.Option(None, "--genesis", help="Source genesis (default: tree's)."),
    metadata: Path | None = typer.Option(
        None,
        "--metadata",
        help="Runtime metadata at the snapshot block: decodes the Phala staking entries the "
        "snapshot's read proof shows, to re-derive every position from them.",
    ),
    deployment: Path = DeploymentOpt,
    rpc: str = RpcOpt,
) -> None:
    """Rebuild everything from public data and the chain; exit 1 on any discrepancy."""
    chain = open_chain(deployment, rpc)
    assert chain.deployment is not None
    context = _onchain_context(tree, genesis, deployment)
    inputs = AuditInputs(snapshot, tree, positions, exclusions, ledger, accept_dust, metadata)
    report = run_audit(inputs, chain, context)
    if as_json:
        print_json(
            {
                "ok": report.ok,
                "claims": report.claims,
                "checks": [{"name": c.name, "ok": c.ok, "detail": c.detail} for c in report.checks],
            }
        )
        if not report.ok:
            raise typer.Exit(1)
        return
    table = Table(title=f"migration audit ({report.claims} claims)")
    table.add_column("check")
    table.add_column("result")
    table.add_column("detail", overflow="fold")
    for check in report.checks:
        table.add_row(check.name, "[green]ok[/green]" if check.ok else "[red]FAIL[/red]",
                      check.detail)  # fmt: skip
    print_table(_out, table)
    if not report.ok:
        failed = sum(not c.ok for c in report.checks)
        _out.print(f"[red]audit failed: {failed} check(s)[/red]")
        raise typer.Exit(1)
    _out.print("[green]audit clean[/green]")
