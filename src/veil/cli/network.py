"""`veil network`: deploy a production network (no demo accounts) and check its genesis.

The devnet has `veil devnet up`; a real L2 gets this: the operator's key, the published
migration tree and ledger, the attesters, and an explicit guardian choice in, a
deployments/<name>.json out. The checks live in `veil.network.production`.
"""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console

from veil.chain.addresses import parse_address
from veil.chain.client import Chain, connect
from veil.cli.accounts import resolve_signer
from veil.cli.options import DeploymentOpt, KeystoreOpt, RpcOpt, open_chain
from veil.errors import InputError, VeilError
from veil.network.production import (
    DEFAULT_CLAIM_DAYS,
    deploy_production,
    genesis_problems,
    migration_source,
    production_parameters,
)

app = typer.Typer(no_args_is_help=True, help="Deploy a production network and check its genesis.")
console = Console(highlight=False, soft_wrap=True)


def _hash32(text: str, option: str) -> bytes:
    try:
        value = bytes.fromhex(text.removeprefix("0x"))
    except ValueError:
        value = b""
    if len(value) != 32:
        raise InputError(f"{option} {text!r:.80}: expected 32 bytes of hex")
    return value


@app.command(
    epilog="Example: veil network deploy --rpc http://127.0.0.1:8545 --chain-id 31337 "
    "--keystore deployer.json --tree TREE.json --ledger LEDGER.json --attester 0x... "
    "--threshold 1 --guardian none --out deployments/l2.json"
)
def deploy(
    rpc: str = typer.Option(..., "--rpc", help="RPC URL of the L2."),
    chain_id: int = typer.Option(..., "--chain-id", help="The L2's chain id (checked)."),
    tree: Path = typer.Option(..., "--tree", help="TREE.json from `veil migrate tree`."),
    ledger: Path = typer.Option(..., "--ledger", help="LEDGER.json from `veil migrate ledger`."),
    attester: list[str] = typer.Option(
        ..., "--attester", help="Attester signing address (repeat for several)."
    ),
    threshold: int = typer.Option(..., "--threshold", help="Attestations a claim needs (M)."),
    guardian: str = typer.Option(
        ..., "--guardian", help="Address that may pause claims, or 'none'."
    ),
    out: Path = typer.Option(..., "--out", help="Deployment file to write (must not exist)."),
    claim_days: int = typer.Option(
        DEFAULT_CLAIM_DAYS, "--claim-days", help="Claim period from deployment, in days."
    ),
    os_image: list[str] = typer.Option(
        None, "--os-image", help="Allowed worker OS image measurement, 32-byte hex (repeat)."
    ),
    compose_hash: list[str] = typer.Option(
        None, "--compose-hash", help="Allowed app compose hash, 32-byte hex (repeat)."
    ),
    keystore: Path = KeystoreOpt,
) -> None:
    """Deploy every contract, commit the migration root, hand every role to the timelock.

    The deployer (--keystore, or $VEIL_PRIVATE_KEY) funds nobody and keeps nothing.
    """
    if out.exists():
        raise InputError(f"--out {out}: exists; a deployment record is never overwritten")
    attesters = [parse_address(a, "--attester") for a in attester]
    named_guardian = None if guardian.lower() == "none" else parse_address(guardian, "--guardian")
    params = production_parameters(
        attesters,
        threshold,
        [_hash32(h, "--os-image") for h in os_image or []],
        [_hash32(h, "--compose-hash") for h in compose_hash or []],
    )
    source = migration_source(tree, ledger)
    signer = resolve_signer(None, keystore)
    chain = Chain(connect(rpc))  # deploy_production checks the id, naming --chain-id
    deployment = deploy_production(
        chain,
        signer,
        out.stem,
        rpc,
        params,
        source,
        expected_chain_id=chain_id,
        guardian=named_guardian,
        claim_days=claim_days,
        progress=lambda msg: console.print(msg),
    )
    deployment.save(out)
    committed = deployment.parameters["migration"]
    console.print(f"root 0x{source.root.hex()}: {source.leaf_count} leaves, free "
                  f"{source.total_free} wei, staked {source.total_staked} wei, claims until "
                  f"{committed['deadline']}")  # fmt: skip
    console.print(f"guardian: {named_guardian or 'none'}; deployer {signer.address} holds no role")
    console.print(f"deployment {deployment.network} (chain {chain_id}) -> {out}")


@app.command(epilog="Example: veil network check --deployer 0x... -d deployments/l2.json")
def check(
    deployer: str = typer.Option(..., "--deployer", help="The address that deployed."),
    deployment: Path = DeploymentOpt,
    rpc: str = RpcOpt,
) -> None:
    """Read a genesis back from the chain; exit 1 unless governance alone holds every role."""
    chain = open_chain(deployment, rpc)
    assert chain.deployment is not None
    problems = genesis_problems(chain, chain.deployment, parse_address(deployer, "--deployer"))
    if problems:
        raise VeilError(f"deployment {chain.deployment.network}: {'; '.join(problems)}")
    console.print(
        f"deployment {chain.deployment.network}: the timelock owns every contract, the root "
        "is committed, the deployer holds no role"
    )
