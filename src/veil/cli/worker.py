"""`veil worker`: run a compute worker (attest, register, heartbeat), inspect, re-verify."""

from __future__ import annotations

import json
import logging
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.console import Console

from veil.attestation.client import AttesterClient, AttesterRefused, AttesterUnavailable
from veil.chain.addresses import parse_address
from veil.chain.home import veil_home
from veil.chain.units import format_amount, parse_amount
from veil.cli.accounts import resolve_signer
from veil.cli.options import (
    AccountOpt,
    AtOpt,
    DeploymentOpt,
    JsonOpt,
    KeystoreOpt,
    RpcOpt,
    open_chain,
    parse_time,
)
from veil.cli.output import when
from veil.compute.evidence import parse_gpu_model
from veil.compute.identity import load_identity
from veil.compute.quote_source import quote_source
from veil.compute.registry import RegistryClient
from veil.compute.reverify import reverify
from veil.compute.worker import RoundReport, WorkerAgent, WorkerConfig
from veil.errors import InputError

if TYPE_CHECKING:
    from veil.cloud.agent import SyncRound
from veil.tee import load_policy

app = typer.Typer(no_args_is_help=True, help="Run and inspect a compute worker.")
console = Console(highlight=False, soft_wrap=True)

DEFAULT_STATE = veil_home() / "worker"
StateOpt = typer.Option(DEFAULT_STATE, "--state-dir", help="Worker key and counters.")


def _when(unix: int) -> str:
    return datetime.fromtimestamp(unix, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@app.command(epilog="Example: veil worker provider --stake 5000 -a provider")
def provider(
    stake: str = typer.Option(
        None, "--stake", help="PHA to stake and post as collateral (digits, one '.': 5000)."
    ),
    account: str = AccountOpt,
    keystore: Path = KeystoreOpt,
    deployment: Path = DeploymentOpt,
    rpc: str = RpcOpt,
) -> None:
    """Register as a compute provider (once); with --stake, stake PHA and post the vPHA."""
    from veil.staking.vault import deposit

    assets = None if stake is None else parse_amount(stake, what="--stake")
    chain = open_chain(deployment, rpc)
    me = resolve_signer(account, keystore)
    registry = RegistryClient.from_chain(chain)
    if registry.register_provider(me) is not None:
        console.print(f"registered provider {me.address}")
    if assets is not None:
        shares = deposit(chain, me, assets)
        registry.deposit_collateral(me, shares)
        console.print(f"staked {stake} PHA and posted the vPHA as collateral")
    record = registry.provider(me.address)
    decimals = chain.contract("Vault").functions.decimals().call()
    console.print(
        f"provider {me.address}: collateral {format_amount(record.collateral, decimals, 'vPHA')},"
        f" free {format_amount(record.free, decimals, 'vPHA')}, workers {record.workers}"
    )
    if record.frozen:
        console.print(f"  FROZEN by the guardian until {_when(record.frozen_until)}: no withdrawal")


@app.command(
    epilog="Example: veil worker run --provider 0xPROVIDER --attester http://127.0.0.1:8700"
    " -a provider --once"
)
def run(
    provider_address: str = typer.Option(..., "--provider", help="Provider address (your key)."),
    tee: str = typer.Option("sim", "--tee", help="tdx (configfs-tsm), dstack, or sim."),
    attesters: list[str] = typer.Option(..., "--attester", help="Attester URL (repeatable)."),
    state_dir: Path = StateOpt,
    gpu_model: str = typer.Option("CPU_TDX", "--gpu-model", help="CPU_TDX, H100, H200, B200."),
    gpu_count: int = typer.Option(0, "--gpu-count", min=0, help="GPUs attached to this worker."),
    gpu_evidence: Path = typer.Option(None, "--gpu-evidence", help="NVIDIA claim set file."),
    collateral: Path = typer.Option(None, "--collateral", help="Intel collateral JSON to send."),
    event_log: Path = typer.Option(None, "--event-log", help="Event log (configfs-tsm only)."),
    tsm_root: Path = typer.Option(None, "--tsm-root", help="configfs-tsm report directory."),
    dstack_socket: Path = typer.Option(None, "--dstack-socket", help="dstack agent socket."),
    interval: float = typer.Option(30.0, "--interval", help="Seconds between rounds."),
    iterations: int = typer.Option(None, "--iterations", help="Stop after N rounds."),
    once: bool = typer.Option(False, "--once", help="One round, then exit."),
    reattest_margin: int = typer.Option(
        3_600, "--reattest-margin", help="Re-attest when fewer seconds than this remain."
    ),
    account: str = AccountOpt,
    keystore: Path = KeystoreOpt,
    deployment: Path = DeploymentOpt,
    rpc: str = RpcOpt,
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Log each step (debug level)."),
    control_plane: str = typer.Option(
        None, "--control-plane", help="Cloud control plane URL: also run the apps it places here."
    ),
    runtime_kind: str = typer.Option(
        "process", "--runtime", help="App runtime: process (SIMULATED), docker, or dstack."
    ),
    advertise_host: str = typer.Option(
        "127.0.0.1", "--advertise-host", help="Host the gateway reaches this worker's apps at."
    ),
    sync_interval: float = typer.Option(
        3.0, "--sync-interval", help="Longest time between syncs (idle syncs long-poll)."
    ),
    disk_gb: int = typer.Option(
        None, "--disk-gb", help="Disk offered to apps in GB (default: free disk in --state-dir)."
    ),
    charge_every: float = typer.Option(
        600.0,
        "--charge-usage-every",
        min=0,
        help="Charge each metered lease from its AI gateway's voucher this often, in seconds "
        "(0: never; `veil ai charge` by hand).",
    ),
    vmm: str = typer.Option(None, "--vmm", help="dstack VMM URL (http://... or unix:/path)."),
    vmm_image: str = typer.Option(None, "--vmm-image", help="dstack OS image for app CVMs."),
    vmm_token: str = typer.Option(
        None, "--vmm-token", envvar="VEIL_VMM_TOKEN", help="dstack VMM bearer token."
    ),
) -> None:
    """Keep this machine attested and registered, and send heartbeats.

    The provider's key (--keystore, $VEIL_PRIVATE_KEY, or --account on the devnet) sends
    the registry transactions. With --control-plane the worker also runs the cloud apps
    placed on it (keys from the KMS, env decrypted only inside the app's runtime).
    """
    logging.basicConfig(level=logging.DEBUG if verbose else logging.WARNING)
    app_runtime = None
    if control_plane is None and (runtime_kind != "process" or vmm or vmm_image):
        raise InputError("--runtime/--vmm: apps come from a control plane; add --control-plane")
    if control_plane is not None:
        from veil.cloud.runtime import open_runtime

        if not control_plane.startswith(("http://", "https://")):
            raise InputError(f"--control-plane {control_plane!r}: expected an http(s) URL")
        if sync_interval <= 0:
            raise InputError("--sync-interval: must be positive")
        if disk_gb is not None and disk_gb < 0:
            raise InputError("--disk-gb: must not be negative")
        app_runtime = open_runtime(
            runtime_kind, state_dir, host=advertise_host, vmm_url=vmm, vmm_token=vmm_token,
            vmm_image=vmm_image,
        )  # fmt: skip
    signer = resolve_signer(account, keystore)
    if parse_address(provider_address, "--provider") != signer.address:
        raise InputError(f"--provider {provider_address}: the signing key is {signer.address};"
                         " the provider's own key must send registry transactions")  # fmt: skip
    if interval <= 0:
        raise InputError("--interval: must be positive")
    source = quote_source(tee, tsm_root=tsm_root, socket_path=dstack_socket, event_log=event_log)
    config = WorkerConfig(
        provider=signer,
        source=source,
        attesters=list(attesters),
        state_dir=state_dir,
        gpu_model=parse_gpu_model(gpu_model),
        gpu_count=gpu_count,
        gpu_evidence=_read(gpu_evidence, "gpu evidence") if gpu_evidence else None,
        collateral=_read(collateral, "collateral").decode() if collateral else None,
        interval=interval,
        reattest_margin=reattest_margin,
    )
    agent = WorkerAgent(config, RegistryClient.from_chain(open_chain(deployment, rpc)))
    if tee == "sim":
        console.print("warning: SIMULATED TEE: development evidence, not hardware-backed")
    console.print(f"worker {agent.address} (provider {signer.address}, tee {tee})")

    def show(report: RoundReport) -> None:
        if not report.ok:
            console.print(f"round {report.round}: error: {'; '.join(report.errors)}")
            return
        did = f"{report.action}, " if report.action else ""
        until = f"attested until {_when(report.expiry)}" if report.expiry else ""
        console.print(f"round {report.round}: {did}{until}; heartbeat #{report.sequence}"
                      f" accepted by {report.heartbeats}/{len(attesters)} attester(s)")  # fmt: skip

    apps_stop = threading.Event()
    apps_thread = None
    if app_runtime is not None:
        from veil.cloud.agent import AppLoop, SyncClient, machine_capacity
        from veil.cloud.telemetry import TelemetryShipper, load_nvml

        loop = AppLoop(
            client=SyncClient(control_plane, agent.identity),
            runtime=app_runtime,
            source=source,
            provider=signer.address,
            capacity=machine_capacity(state_dir, config.gpu_model, gpu_count, disk_gb),
            interval=sync_interval,
            watch=0.1 if runtime_kind == "process" else 1.0,
            telemetry=TelemetryShipper(
                control_plane, agent.identity, disk_path=str(state_dir), nvml=load_nvml()
            ),
        )
        keeper = None
        market_chain = open_chain(deployment, rpc)
        if market_chain.deployment is not None and "Market" in market_chain.deployment.contracts:
            from veil.cloud.lease_gate import LeaseGate, escrow_reader
            from veil.market.escrow import Escrow

            # billed apps run only while their lease runs on the chain (issue 13)
            escrow = Escrow(market_chain)
            loop.lease_gate = LeaseGate(
                escrow_reader(escrow), signer.address, market=escrow.market.address,
                chain_id=market_chain.deployment.chain_id,
            )  # fmt: skip
            if charge_every > 0:
                from veil.inference.keeper import UsageKeeper

                # per-token usage is charged from here, so little is at risk on a close
                keeper = UsageKeeper(escrow, signer, every=charge_every)
        if app_runtime.simulated:
            console.print("warning: SIMULATED app runtime (process): no CVM isolation")
        console.print(f"apps: {runtime_kind} runtime, synced with {control_plane}")

        connected = [False]

        def show_sync(outcome: SyncRound) -> None:
            done = [f"{what} {', '.join(ids)}" for what, ids in (
                ("started", outcome.started), ("stopped", outcome.stopped),
                ("removed", outcome.removed), ("held (lease not running)", outcome.held))
                if ids]  # fmt: skip
            for problem in outcome.errors:
                console.print(f"apps: error: {problem}")
            synced = not any(p.startswith("control plane") for p in outcome.errors)
            if synced and not connected[0]:
                console.print(f"apps: synced with the control plane ({outcome.deployments}"
                              " deployment(s) here)")  # fmt: skip
            connected[0] = synced
            if done:
                console.print(f"apps: {'; '.join(done)}")
            for charged in keeper.charge(loop.billed_endpoints) if keeper else ():
                # one line per charge, whatever the terminal's width
                console.print(
                    f"apps: usage: lease {charged.lease_id:#x} charged "
                    f"{format_amount(charged.amount)} for {charged.tokens} new "
                    f"token(s) ({charged.voucher.tokens} in all)",
                    soft_wrap=True,
                )

        apps_thread = threading.Thread(
            target=loop.run, kwargs={"stop": apps_stop, "on_round": show_sync}, daemon=True
        )
        apps_thread.start()
    try:
        reports = agent.run(1 if once else iterations, on_round=show)
    except KeyboardInterrupt:
        console.print("stopped")
        return
    finally:
        if apps_thread is not None:
            apps_stop.set()
            apps_thread.join(timeout=30)
            close = getattr(app_runtime, "close", None)
            if close is not None:  # host processes must not outlive the worker
                close()
    if reports and not reports[-1].ok:
        raise typer.Exit(1)


@app.command(epilog="Example: veil worker status --worker 0xWORKER --json")
def status(
    worker: str = typer.Option(None, "--worker", help="Worker address (default: this one)."),
    state_dir: Path = StateOpt,
    attesters: list[str] = typer.Option([], "--attester", help="Attester URL (repeatable)."),
    rewards_dir: Path = typer.Option(
        None, "--rewards-dir", help="Epoch reports (default: $VEIL_HOME/rewards)."
    ),
    epochs: int = typer.Option(24, "--epochs", help="How many recent epochs to show."),
    as_json: bool = JsonOpt,
    deployment: Path = DeploymentOpt,
    rpc: str = RpcOpt,
) -> None:
    """A worker's registration, evidence hash, heartbeats, uptime and rewards per epoch.

    Uptime and rewards come from the epoch reports (`veil rewards close` writes them)."""
    if worker is None:
        identity = load_identity(state_dir)
        if identity is None:
            raise InputError(f"no worker key in {state_dir}: pass --worker 0x...")
        worker = identity.address
    registry = RegistryClient.from_chain(open_chain(deployment, rpc))
    record = registry.worker(parse_address(worker, "--worker"))
    owner = registry.provider(record.provider) if record.registered else None
    frozen_until = owner.frozen_until if owner is not None and owner.frozen else None
    views: dict[str, object] = {}
    for url in attesters:
        try:
            views[url] = AttesterClient(url).worker(record.worker)
        except (AttesterRefused, AttesterUnavailable) as error:
            views[url] = {"error": str(error)}
    from veil.rewards.history import worker_history

    history = worker_history(record.worker, rewards_dir, epochs)
    if as_json:
        shown = {**record.to_json(), "provider_frozen_until": frozen_until}
        doc = {"registry": shown, "attesters": views, "rewards": history}
        typer.echo(json.dumps(doc, indent=2))
        return
    console.print(f"worker {record.worker}")
    if not record.registered:
        console.print(f"  registry: {record.to_json()['status']}")
    else:
        state = "active" if record.active else "INACTIVE"
        console.print(f"  registry: {record.to_json()['status']}, {state}")
        console.print(f"  provider: {record.provider}")
        if frozen_until is not None:
            console.print(f"  provider FROZEN by the guardian until {_when(frozen_until)}")
        console.print(f"  model: {record.to_json()['gpu_model']} x {record.gpu_count}")
        console.print(f"  expiry: {when(record.expiry, int(time.time()))}")
        console.print(f"  evidence hash: 0x{record.evidence_hash.hex()}")
        console.print(f"  measurement hash: 0x{record.measurement_hash.hex()}")
    for url, view in views.items():
        assert isinstance(view, dict)
        if "error" in view:
            console.print(f"  attester {url}: {view['error']}")
            continue
        beats = view.get("heartbeats", [])
        console.print(f"  attester {url}: {len(beats)} recent heartbeat(s)")
        for beat in beats[:5]:
            console.print(f"    #{beat['sequence']} sent {_when(int(beat['sent_at']))}")
    if not history:
        console.print("  rewards: no epoch report names this worker yet")
    for row in history:
        reward = format_amount(int(row["reward"]), 18)
        note = "" if row["eligible"] else " (below the minimum uptime or inactive: no reward)"
        console.print(
            f"  epoch {row['epoch']}: uptime {row['uptimeBps'] / 100:.2f}% "
            f"({row['accepted']}/{row['expected']} heartbeats), weight {row['weightBps']} bps, "
            f"reward {reward}{note}"
        )


@app.command(
    epilog="Example: veil worker verify --worker 0xWORKER --attester http://127.0.0.1:8700"
    " --policy policy.toml"
)
def verify(
    worker: str = typer.Option(..., "--worker", help="Registered worker address."),
    attester: str = typer.Option(..., "--attester", help="Where to fetch the evidence."),
    policy: Path = typer.Option(..., "--policy", help="Your own policy TOML."),
    at: str = AtOpt,
    deployment: Path = DeploymentOpt,
    rpc: str = RpcOpt,
) -> None:
    """Re-verify a registered worker from its published evidence, trusting no attester."""
    moment = parse_time(at)
    registry = RegistryClient.from_chain(open_chain(deployment, rpc))
    record = registry.worker(parse_address(worker, "--worker"))
    if not record.registered:
        raise InputError(f"worker {record.worker}: not registered")
    bundle = AttesterClient(attester).evidence("0x" + record.evidence_hash.hex())
    result = reverify(bundle, record, load_policy(policy), moment or int(time.time()))
    console.print(result.verdict.render())
    for problem in result.mismatches:
        console.print(f"mismatch: {problem}")
    console.print(f"re-verification: {'OK' if result.ok else 'FAILED'}")
    if not result.ok:
        raise typer.Exit(1)


def _read(path: Path, what: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as error:
        raise InputError(f"{what} {path}: cannot read ({error.strerror})") from None
