"""`veil kms serve`: the key management service for veil cloud apps."""

from __future__ import annotations

import logging
import tomllib
from pathlib import Path

import typer
from rich.console import Console

from veil.chain import deployment as deployments
from veil.chain.client import Chain
from veil.cli.options import RpcOpt
from veil.cloud.app_auth import AppAuthClient
from veil.cloud.app_keys import load_root_secret
from veil.cloud.kms import devnet_kms_policy
from veil.compute.registry import RegistryClient
from veil.errors import InputError
from veil.services.kms.service import SIMULATED_KMS, ChainLookups, chain_state
from veil.tee import load_policy
from veil.tee.collateral import CollateralCache, default_cache_dir
from veil.tee.policy import policy_from_dict

app = typer.Typer(no_args_is_help=True, help="Run the key management service (KMS).")
console = Console(highlight=False, soft_wrap=True)


@app.command(
    epilog="Example: veil kms serve --root-secret-file kms-root.hex -d deployments/devnet.json"
    " --devnet --port 8710"
)
def serve(
    root_secret_file: Path = typer.Option(
        ..., "--root-secret-file", help="The root secret (created 0600 if absent)."
    ),
    deployment: Path = typer.Option(
        deployments.default_path(),
        "--deployment",
        "-d",
        help="Deployment file (AppAuth, registry).",
    ),
    policy: Path = typer.Option(
        None, "--policy", help="Attestation policy TOML (default: production, no simulated TEEs)."
    ),
    devnet: bool = typer.Option(
        False, "--devnet", help="Use the devnet policy: SIMULATED TEEs accepted."
    ),
    host: str = typer.Option("127.0.0.1", "--host", help="Interface to listen on."),
    port: int = typer.Option(8710, "--port", min=1, max=65535, help="TCP port to listen on."),
    rpc: str = RpcOpt,
    pccs: str = typer.Option(None, "--pccs", help="PCCS URL for collateral a worker omits."),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Log every request."),
) -> None:
    """Release each app's keys only to attested workers active in the registry.

    Keys derive from the root secret (dstack's KDF); the AppAuth contract of the
    deployment says which compose hashes each app allows. This KMS keeps its root in a
    file, not in a TEE: it says SIMULATED in /v1/kms/info and here.
    """
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO)
    if policy is not None and devnet:
        raise InputError("give --policy or --devnet, not both")
    if devnet:
        rules = policy_from_dict(tomllib.loads(devnet_kms_policy()), "devnet KMS policy")
    elif policy is not None:
        rules = load_policy(policy)
    else:
        rules = policy_from_dict({}, "default policy")
    dep = deployments.load(deployment)
    chain = Chain.open(dep, rpc)
    existed = root_secret_file.exists()
    root = load_root_secret(root_secret_file, create=True)
    registry = RegistryClient.from_chain(chain)
    lookups = ChainLookups(
        AppAuthClient.from_chain(chain),
        lambda worker: bool(registry.contract.functions.isActive(worker).call()),
        dep.chain_id,
        str(registry.contract.address),
    )
    source = None
    if pccs is not None:
        cache = CollateralCache(default_cache_dir(), pccs)
        source = lambda fmspc, now, tee: cache.get(fmspc, now, tee=tee)  # noqa: E731
    state = chain_state(root, rules, lookups, source)

    import uvicorn

    from veil.services.kms.server import create_app

    if not existed:
        console.print(f"created root secret {root_secret_file} (mode 0600): back it up")
    console.print(f"warning: {SIMULATED_KMS}")
    if rules.allow_simulated:
        console.print("warning: policy allows SIMULATED TEEs (devnet only)")
    else:
        console.print("policy: production (simulated quotes refused)")
    console.print(f"KMS signer {state.signer.address}; AppAuth {lookups.app_auth.address}")
    console.print(f"listening on http://{host}:{port}")
    try:
        uvicorn.run(
            create_app(state), host=host, port=port, log_level="info" if verbose else "warning"
        )
    except OSError as error:
        raise InputError(f"kms: cannot listen on {host}:{port} ({error.strerror})") from None
