"""`veil attester serve`: verify, then sign; publish what was verified."""

from __future__ import annotations

import logging
from pathlib import Path

import typer
from rich.console import Console

from veil.atomic import write_text
from veil.chain import deployment as deployments
from veil.chain.client import Chain
from veil.cli.accounts import resolve_signer
from veil.cli.options import AccountOpt, KeystoreOpt, RpcOpt, out_path
from veil.compute.attestation import RegistryDomain
from veil.compute.heartbeat import choose_schedule, schedule_from_chain
from veil.errors import InputError
from veil.merkle import load_tree
from veil.migration.binding import BindingContext, context_from_files, parse_genesis
from veil.network.genesis import devnet_policy
from veil.services.attester.server import Limits
from veil.services.attester.service import AttesterConfig, build_server
from veil.tee import load_policy
from veil.tee.collateral import CollateralCache, default_cache_dir

app = typer.Typer(no_args_is_help=True, help="Run an attester service.")
console = Console(highlight=False, soft_wrap=True)


@app.command(
    epilog="Example: veil attester serve --tree TREE.json -d deployments/devnet.json"
    " -a attester --port 8700"
)
def serve(
    tree: Path = typer.Option(None, "--tree", help="Migration tree (enables bindings)."),
    genesis: str = typer.Option(None, "--genesis", help="Source genesis hash (default: tree's)."),
    deployment: Path = typer.Option(
        deployments.default_path(), "--deployment", "-d", help="Deployment file."
    ),
    db: Path = typer.Option(Path("attester.sqlite"), "--db", help="SQLite record of signatures."),
    host: str = typer.Option("127.0.0.1", "--host", help="Interface to listen on."),
    port: int = typer.Option(8700, "--port", min=1, max=65535, help="TCP port to listen on."),
    account: str = AccountOpt,
    keystore: Path = KeystoreOpt,
    rpc: str = RpcOpt,
    policy: Path = typer.Option(
        None, "--policy", help="Attestation policy TOML (enables the compute routes)."
    ),
    validity: int = typer.Option(86_400, "--validity", help="Worker attestation lifetime, s."),
    pccs: str = typer.Option(None, "--pccs", help="PCCS URL for collateral the worker omits."),
    rate: float = typer.Option(
        20.0, "--rate", help="Requests/s per client address (token bucket); 0 turns it off."
    ),
    burst: int = typer.Option(40, "--burst", help="Token bucket size per client."),
    trusted_proxy: list[str] = typer.Option(
        [], "--trusted-proxy", help="Load balancer address whose X-Forwarded-For is believed."
    ),
    max_connections: int = typer.Option(
        256, "--max-connections", min=1, help="Open connections; more get 503."
    ),
    max_inflight: int = typer.Option(
        16, "--max-inflight", min=1, help="Requests verified at once; more wait, then get 503."
    ),
    header_timeout: float = typer.Option(10.0, "--header-timeout", min=0.1, help="Seconds."),
    body_timeout: float = typer.Option(10.0, "--body-timeout", min=0.1, help="Seconds."),
    max_bindings: int = typer.Option(
        4, "--max-bindings-per-account", min=1, help="Distinct bindings kept per account."
    ),
    heartbeat_interval: int = typer.Option(
        10, "--min-heartbeat-interval", min=0, help="Keep one heartbeat per worker per this many s."
    ),
    retention_days: int = typer.Option(
        35, "--retention-days", min=1, help="Heartbeats and expired registrations kept, days."
    ),
    epoch_genesis: int = typer.Option(
        None, "--epoch-genesis", min=0, help="Epoch 0 start (unix s) without a RewardPool."
    ),
    epoch_length: int = typer.Option(
        None, "--epoch-length", min=1, help="Epoch length, s, without a RewardPool."
    ),
    chain_clock: bool = typer.Option(
        False, "--chain-clock", help="Heartbeat time is chain time (devnets whose clock jumps)."
    ),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Log every request."),
) -> None:
    """Verify and sign migration bindings and worker attestations until interrupted.

    Keys come from --keystore, $VEIL_PRIVATE_KEY, or a devnet name (--account attester).
    Compute routes attest for the deployment's ComputeRegistry.
    """
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO)
    signer = resolve_signer(account, keystore)
    dep = deployments.load(deployment)
    chain = Chain.open(dep, rpc)
    limits = Limits(
        max_connections=max_connections,
        header_timeout=header_timeout,
        body_timeout=body_timeout,
        max_inflight=max_inflight,
        rate=rate if rate > 0 else None,
        burst=burst,
        trusted_proxies=frozenset(trusted_proxy),
    )
    config = AttesterConfig(
        signer=signer,
        db=db,
        host=host,
        port=port,
        chain=chain,
        limits=limits,
        max_bindings_per_account=max_bindings,
        min_heartbeat_interval=heartbeat_interval,
        retention=retention_days * 86_400,
    )
    if chain_clock:
        # A devnet's `veil devnet advance` moves chain time only: epochs then end (and
        # their logs complete) when the chain says so, not an hour of wall clock later.
        from veil.services.attester.heartbeats import CachedClock

        config.clock = CachedClock(lambda: int(chain.w3.eth.get_block("latest")["timestamp"]))
    if tree is not None:
        config.tree = load_tree(tree)
        if genesis is not None:
            migrator = dep.address("Migrator")
            config.context = BindingContext(parse_genesis(genesis), dep.chain_id, migrator)
        else:
            config.context = context_from_files(tree, deployment)
    if policy is not None:
        config.policy = load_policy(policy)
        config.registry = RegistryDomain(dep.chain_id, dep.address("ComputeRegistry"))
        config.validity = validity
        if pccs is not None:
            cache = CollateralCache(default_cache_dir(), pccs)
            config.collateral_source = lambda fmspc, now, tee: cache.get(fmspc, now, tee=tee)
        if config.policy.allow_simulated:
            console.print("warning: policy allows SIMULATED TEEs (devnet only)")
        config.epochs = choose_schedule(schedule_from_chain(chain), epoch_genesis, epoch_length)
        console.print(f"heartbeat epochs: {config.epochs.epoch_length} s from"
                      f" {config.epochs.genesis_time}")  # fmt: skip
    try:
        server = build_server(config)
    except OSError as error:
        raise InputError(f"attester: cannot listen on {host}:{port} ({error.strerror})") from None
    console.print(f"attester {signer.address} listening on {server.url}")
    for route in server.posts:
        console.print(f"  POST {route}")
    for prefix in getattr(server, "readers", {}):
        console.print(f"  GET  {prefix}<id>")
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        console.print("stopped")
    finally:
        server.server_close()


@app.command("devnet-policy", epilog="Example: veil attester devnet-policy --out policy.toml")
def devnet_policy_command(
    out: Path = typer.Option(None, "--out", "-o", help="Write here instead of stdout."),
) -> None:
    """The devnet's compute policy TOML (allows SIMULATED TEEs; never for production)."""
    if out is not None:
        out_path(out)
    text = devnet_policy()
    if out is None:
        typer.echo(text, nl=False)
    else:
        write_text(out, text)
        console.print(f"wrote {out}")
