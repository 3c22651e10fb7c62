"""The worker's app loop: sync with the control plane, fetch keys, run apps, report.

Beside its heartbeats, a worker runs this loop every few seconds:

1. `POST /v1/workers/sync`, signed with the worker key (EIP-191 over
   `veil-worker-sync:{timestamp}:{sha256(body) hex}`), reporting every app it holds (state,
   boot progress, boot error, ports, the app's attestation once running);
2. the answer lists what it should run; the loop converges the runtime to it: whatever is
   not listed is removed, a `stopped` deployment is stopped, a `running` one that is not
   running in that revision (compose hash and encrypted env) is started.

A billed app (its entry names a `lease_id`) is also told its lease, the way dstack tells
an app its identity: `VEIL_LEASE_ID`, `VEIL_MARKET` and `VEIL_CHAIN_ID` (`lease_env`),
the market and chain being those the worker's lease gate reads. They travel as the
deployment's `platform_env`, beside the decrypted env and never in it (public facts, not
the customer's secrets); each runtime hands them over where it passes env (process and
docker: every service's environment; dstack: the CVM's `user_config`). A running app
whose lease is replaced (its customer closed the old one and opened another) is restarted
so it reads the new one; an app the worker adopted after a restart is taken to hold the
lease of the first entry it sees.

Before starting an app the worker obtains the app's keys from the KMS with a quote whose
event log carries the app's compose hash (`veil.cloud.kms.request_app_keys`), decrypts the
env (`veil.cloud.envcrypt.decrypt_env`, keeping only `allowed_envs`), and hands the
plaintext straight to the runtime: it lives only in the app's process environment, never in
a file or a log line. Under the dstack runtime the CVM fetches its own keys, so the worker
passes the encrypted env through and never sees it.

Between changes the sync is a long-poll: the control plane holds it (up to `interval`
seconds) until this worker's deployment list differs from the version it last answered, so
a commit reaches the worker in about a tenth of a second rather than at the next sync; a
control plane that does not hold (an older one) is paced by the same interval.

A failed key fetch or start is reported as `failed` with the reason and retried after
`retry_after` seconds, or at once when the control plane sends a new revision; a control
plane that cannot be reached leaves running apps alone (the next sync reports them).
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol

import httpx
from eth_account.signers.local import LocalAccount

from veil.cloud.lease_gate import LeaseGate
from veil.cloud.runtime import AppStatus, Deployment, Runtime
from veil.cloud.worker_auth import SYNC, signed_headers
from veil.compute.quote_source import QuoteSource, Simulator
from veil.errors import InputError, VeilError
from veil.tee.policy import bound_report_data

log = logging.getLogger("veil.cloud.agent")

#: Tag of the report data in an app's attestation: binds the app id and the worker.
APP_ATTESTATION_TAG = "veil-app-attestation"


class ControlPlaneError(VeilError):
    """The control plane could not be reached or refused the sync."""


class EnvOpener(Protocol):
    """Fetch an app's keys with a quote from `source` and return its decrypted env."""

    def __call__(self, deployment: Deployment, source: QuoteSource) -> dict[str, str]: ...


def kms_env_opener(worker: LocalAccount) -> EnvOpener:
    """The real opener: KMS key release to this worker's quote, then dstack env decryption."""

    def open_env(deployment: Deployment, source: QuoteSource) -> dict[str, str]:
        from veil.cloud.envcrypt import decrypt_env
        from veil.cloud.kms import request_app_keys

        if not deployment.encrypted_env:
            return {}
        if not deployment.kms_url:
            raise InputError(f"app {deployment.app_id}: has an encrypted env but no kms_url")
        keys = request_app_keys(deployment.kms_url, deployment.app_id, worker, source)
        allowed = deployment.app_compose.get("allowed_envs")
        return decrypt_env(
            deployment.encrypted_env,
            keys.env_crypt_key,
            allowed=allowed if isinstance(allowed, list) else [],
        )

    return open_env


def lease_env(lease: str | None, gate: LeaseGate | None) -> dict[str, str]:
    """What a billed app is told about its lease: `VEIL_LEASE_ID` (0x + 64 hex),
    `VEIL_MARKET`, `VEIL_CHAIN_ID`; nothing for an app without a lease.

    The app needs them to sign per-token vouchers (`veil ai serve` reads them), and
    without this the customer would copy the lease id into the env and redeploy. They
    come from what the worker itself trusts: the lease named in the sync entry (the one
    the gate reads before letting the app run) and the market and chain its gate reads,
    so an app is never pointed at a market its worker does not check. A worker without a
    gate (no Market in its deployment) tells nothing: it could not vouch for the market.
    """
    lease_id = _lease_id(lease)
    if lease_id is None or gate is None or not gate.market or gate.chain_id <= 0:
        return {}
    return {
        "VEIL_LEASE_ID": f"{lease_id:#066x}",
        "VEIL_MARKET": gate.market,
        "VEIL_CHAIN_ID": str(gate.chain_id),
    }


def _lease_id(lease: str | None) -> int | None:
    """A sync entry's lease (hex) as a number; None for no lease or one unreadable."""
    if not lease:
        return None
    try:
        lease_id = int(lease, 16)
    except ValueError:
        return None
    return lease_id if 0 <= lease_id < 2**256 else None


def app_quote_source(source: QuoteSource, deployment: Deployment) -> QuoteSource:
    """The quote source for one app: the simulator then claims the app's compose and id.

    On hardware the CVM's RTMR3 already carries its compose hash, so the source is used as
    it is; the simulator has to be told what it pretends to run.
    """
    if isinstance(source, Simulator):
        app = replace(
            source.app,
            compose_hash=bytes.fromhex(deployment.compose_hash),
            app_id=bytes.fromhex(deployment.app_id[2:]),
        )
        return replace(source, app=app)
    return source


@dataclass
class SyncClient:
    """`POST /v1/workers/sync`, signed with the worker key."""

    url: str
    worker: LocalAccount
    timeout: float = 10.0
    clock: Callable[[], float] = time.time
    transport: httpx.BaseTransport | None = None
    #: The `version` of the last answer: sent back as `known` when long-polling.
    version: str = field(default="", init=False)

    def sync(self, body: dict[str, Any], wait: float = 0.0) -> list[dict[str, Any]]:
        """One sync; with `wait`, the control plane may hold it until the answer changes."""
        raw = json.dumps(body, separators=(",", ":")).encode()
        params = {"wait": f"{wait:g}", "known": self.version} if wait > 0 and self.version else {}
        headers = signed_headers(self.worker, SYNC, int(self.clock()), raw)
        target = self.url.rstrip("/") + "/v1/workers/sync"
        try:
            timeout = self.timeout + (wait if params else 0.0)
            with httpx.Client(timeout=timeout, transport=self.transport) as client:
                response = client.post(target, content=raw, headers=headers, params=params)
        except httpx.HTTPError as error:
            raise ControlPlaneError(f"control plane {self.url}: unreachable ({error})") from None
        try:
            answer = response.json()
        except ValueError:
            answer = None
        if response.status_code != 200:
            if isinstance(answer, dict) and "code" in answer:
                raise ControlPlaneError(
                    f"control plane refused the sync: {answer.get('code')}:"
                    f" {answer.get('message')} (request {answer.get('request_id')})"
                )
            raise ControlPlaneError(f"control plane: sync answered HTTP {response.status_code}")
        if not isinstance(answer, dict) or not isinstance(answer.get("deployments"), list):
            raise ControlPlaneError("control plane: the sync answer has no deployments list")
        version = answer.get("version")
        self.version = version if isinstance(version, str) else ""
        return list(answer["deployments"])


@dataclass
class SyncRound:
    """What one sync did, for the worker's console and the tests."""

    number: int
    deployments: int = 0
    started: list[str] = field(default_factory=list)
    stopped: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    #: Deployments held stopped because their lease is not running on the chain.
    held: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors

    @property
    def changed(self) -> bool:
        return bool(self.started or self.stopped or self.removed)


@dataclass
class _Failure:
    revision: tuple[str, str]
    status: AppStatus
    at: float


@dataclass
class AppLoop:
    """Converges a runtime to what the control plane wants on this worker."""

    client: SyncClient
    runtime: Runtime
    source: QuoteSource
    provider: str
    capacity: dict[str, int]
    address: str | None = None
    open_env: EnvOpener | None = None
    interval: float = 3.0
    retry_after: float = 30.0
    #: How often a booting app's state is looked at between syncs (the process runtime's
    #: look is a few syscalls; docker's is a `docker compose ps`, so raise it there).
    watch: float = 0.1
    #: Hold idle syncs at the control plane (`wait`) instead of sleeping between them.
    long_poll: bool = True
    clock: Callable[[], float] = time.time
    #: Ships metrics and log lines after each round (veil.cloud.telemetry); None: off.
    telemetry: Any = None
    #: Reads each billed app's lease from the chain (`veil.cloud.lease_gate`); None: the
    #: worker has no market to read and runs what the control plane lists.
    lease_gate: LeaseGate | None = None
    _failures: dict[str, _Failure] = field(default_factory=dict, init=False)
    _holds: dict[str, str] = field(default_factory=dict, init=False)
    _leases: dict[str, str] = field(default_factory=dict, init=False)
    _attestations: dict[str, tuple[tuple[str, str], dict[str, Any]]] = field(
        default_factory=dict, init=False
    )
    _deployments: dict[str, Deployment] = field(default_factory=dict, init=False)
    #: The `platform_env` each app was last started with (a lease change restarts it).
    _told: dict[str, dict[str, str]] = field(default_factory=dict, init=False)

    def __post_init__(self) -> None:
        if self.open_env is None:
            self.open_env = kms_env_opener(self.client.worker)

    @property
    def worker(self) -> str:
        return self.client.worker.address

    @property
    def simulated(self) -> bool:
        return self.runtime.simulated or isinstance(self.source, Simulator)

    # --- report ----------------------------------------------------------------------

    def report(self) -> dict[str, Any]:
        """The sync body: this worker, its capacity, and every app it holds."""
        apps = []
        for deployment_id in self.runtime.deployments():
            status = self.runtime.status(deployment_id)
            if status is None:
                continue
            entry = status.to_json()
            entry["attestation"] = self._attestation(deployment_id, status)
            hold = self._holds.get(deployment_id)
            if hold and entry.get("state") == "stopped":
                entry["error"] = hold
            failure = self._failures.get(deployment_id)
            if failure is not None and failure.revision != status.revision:
                # the old revision still serves, but the update did not happen: say why
                entry["error"] = f"update not applied: {failure.status.error}"
            apps.append(entry)
        held = {entry["deployment_id"] for entry in apps}
        for deployment_id, failure in self._failures.items():
            if deployment_id not in held:
                apps.append({**failure.status.to_json(), "attestation": None})
        return {
            "worker": self.worker,
            "provider": self.provider,
            "runtime": self.runtime.name,
            "simulated": self.simulated,
            "capacity": dict(self.capacity),
            "address": self.address,
            "apps": apps,
        }

    def _attestation(self, deployment_id: str, status: AppStatus) -> dict[str, Any] | None:
        """The running app's quote and identity, taken once per revision."""
        deployment = self._deployments.get(deployment_id)
        if status.state != "running" or deployment is None or self.runtime.keys_inside:
            return None  # a dstack CVM is attested through its own guest agent
        cached = self._attestations.get(deployment_id)
        if cached is not None and cached[0] == deployment.revision:
            return cached[1]
        source = app_quote_source(self.source, deployment)
        worker = bytes.fromhex(self.worker[2:])
        report_data = bound_report_data(
            APP_ATTESTATION_TAG, bytes.fromhex(deployment.app_id[2:]) + worker
        )
        try:
            evidence = json.loads(source.evidence(report_data))
        except VeilError as error:
            log.warning("app %s: no attestation (%s)", deployment.app_id, error)
            return None
        vm_config = evidence.get("vm_config") or "{}"
        try:
            os_image_hash = json.loads(vm_config).get("os_image_hash")
        except (ValueError, AttributeError):
            os_image_hash = None
        attestation = {
            "quote": evidence.get("quote"),
            "event_log": evidence.get("event_log"),
            "vm_config": vm_config,
            "compose_hash": deployment.compose_hash,
            "os_image_hash": os_image_hash,
            "worker": self.worker,
            "simulated": bool(evidence.get("simulated", False)),
        }
        self._attestations[deployment_id] = (deployment.revision, attestation)
        return attestation

    # --- converge --------------------------------------------------------------------

    def converge(self, entries: list[dict[str, Any]], outcome: SyncRound) -> None:
        wanted: dict[str, Deployment] = {}
        unreadable = False
        leases = {
            str(entry.get("deployment_id")): str(entry.get("lease_id") or "")
            for entry in entries
            if isinstance(entry, dict)
        }
        for entry in entries:
            try:
                deployment = Deployment.from_json(entry)
            except InputError as error:
                outcome.errors.append(str(error))
                unreadable = True
                continue
            facts = lease_env(leases.get(deployment.deployment_id), self.lease_gate)
            wanted[deployment.deployment_id] = replace(deployment, platform_env=facts)
        outcome.deployments = len(wanted)
        if not unreadable:  # never remove an app because its entry could not be read
            for deployment_id in self.runtime.deployments():
                if deployment_id not in wanted:
                    self.runtime.remove(deployment_id)
                    outcome.removed.append(deployment_id)
            for deployment_id in list(self._failures):
                if deployment_id not in wanted:
                    del self._failures[deployment_id]
            for deployment_id in list(self._attestations):
                if deployment_id not in wanted:
                    del self._attestations[deployment_id]
            for deployment_id in list(self._told):
                if deployment_id not in wanted:
                    del self._told[deployment_id]
        # an unreadable answer removed nothing, so keep knowing what might still run
        self._deployments = {**self._deployments, **wanted} if unreadable else wanted
        self._leases = {**self._leases, **leases} if unreadable else leases
        for deployment in wanted.values():
            self._converge_one(
                self._gated(deployment, leases.get(deployment.deployment_id), outcome), outcome
            )

    def _gated(self, deployment: Deployment, lease: str | None, outcome: SyncRound) -> Deployment:
        """The deployment as the chain allows it: a billed app whose lease is not running
        is wanted stopped (disk kept), whatever the control plane asked."""
        self._holds.pop(deployment.deployment_id, None)
        if self.lease_gate is None or not lease or deployment.desired != "running":
            return deployment
        verdict = self.lease_gate.check(lease)
        if verdict.run:
            return deployment
        self._holds[deployment.deployment_id] = verdict.reason
        outcome.held.append(deployment.deployment_id)
        return replace(deployment, desired="stopped")

    def _converge_one(self, deployment: Deployment, outcome: SyncRound) -> None:
        deployment_id = deployment.deployment_id
        status = self.runtime.status(deployment_id)
        if deployment.desired == "stopped":
            self._failures.pop(deployment_id, None)
            if status is not None and status.state in ("pulling", "starting", "running"):
                self.runtime.stop(deployment_id)
                outcome.stopped.append(deployment_id)
            return
        current = status is not None and status.revision == deployment.revision
        if current and status is not None and status.state in ("pulling", "starting", "running"):
            if not self._told_otherwise(deployment):
                return
            # its env says another lease: only a restart makes the app read the new one
            self.runtime.stop(deployment_id)
        if current and status is not None and status.state == "failed":
            return  # a boot that failed waits for a new revision; its diagnosis is reported
        failure = self._failures.get(deployment_id)
        if (
            failure is not None
            and failure.revision == deployment.revision
            and self.clock() - failure.at < self.retry_after
        ):
            return
        try:
            env: dict[str, str] = {}
            if not self.runtime.keys_inside:
                assert self.open_env is not None
                env = self.open_env(deployment, app_quote_source(self.source, deployment))
            self.runtime.start(deployment, env)
        except VeilError as error:
            reason = f"{deployment.app_id}: {error}"
            self._failures[deployment_id] = _Failure(
                deployment.revision,
                AppStatus(
                    deployment_id=deployment_id,
                    app_id=deployment.app_id,
                    state="failed",
                    stage="keys" if not self.runtime.keys_inside else "start",
                    error=str(error),
                    simulated=self.simulated,
                    revision=deployment.revision,
                ),
                self.clock(),
            )
            outcome.errors.append(reason)
            return
        self._failures.pop(deployment_id, None)
        self._told[deployment_id] = dict(deployment.platform_env)
        outcome.started.append(deployment_id)

    def _told_otherwise(self, deployment: Deployment) -> bool:
        """Whether the running app was started with other facts than the entry's now."""
        told = self._told.setdefault(deployment.deployment_id, dict(deployment.platform_env))
        return told != deployment.platform_env

    # --- loop ------------------------------------------------------------------------

    def round(self, number: int, wait: float = 0.0) -> SyncRound:
        outcome = SyncRound(number)
        try:
            report = self.report()
            entries = self.client.sync(report, wait=wait) if wait else self.client.sync(report)
        except VeilError as error:
            outcome.errors.append(str(error))
            # the chain, not the control plane, says whether billed apps may run: keep
            # applying it while the control plane is away
            for deployment in self._deployments.values():
                gated = self._gated(deployment, self._leases.get(deployment.deployment_id), outcome)
                if gated is not deployment:
                    self._converge_one(gated, outcome)
            return outcome
        self.converge(entries, outcome)
        if self.telemetry is not None:
            held = set(self.runtime.deployments())
            apps = {d: dep.app_id for d, dep in self._deployments.items() if d in held}
            self.telemetry.ship(self.runtime, apps)
        return outcome

    def run(
        self,
        iterations: int | None = None,
        stop: threading.Event | None = None,
        on_round: Callable[[SyncRound], None] = lambda _r: None,
    ) -> list[SyncRound]:
        """Sync rounds until `iterations` or `stop`.

        Between rounds the loop watches its apps while one is booting (every `watch`
        seconds) and syncs as soon as a state changes, so the control plane hears "running"
        or a boot error when it happens, not up to `interval` later. When nothing boots, the
        next sync long-polls for up to `interval`.
        """
        stop = stop or threading.Event()
        rounds: list[SyncRound] = []
        number = 0
        wait = 0.0
        while not stop.is_set() and (iterations is None or number < iterations):
            number += 1
            before = self.client.version
            began = time.monotonic()
            outcome = self.round(number, wait=wait)
            rounds.append(outcome)
            on_round(outcome)
            for problem in outcome.errors:
                log.warning("sync %d: %s", number, problem)
            if iterations is not None and number >= iterations:
                break
            booting = any(state in ("pulling", "starting") for state, _ in self._states().values())
            # a control plane that answers no version cannot hold: plain pauses then
            held = self.long_poll and bool(self.client.version)
            # a held sync applies its report on arrival, so what this round changed (a
            # removal, a stop) is told at once; only a boot in progress needs watching
            if held and outcome.ok and not booting:
                if wait and self.client.version == before:
                    # answered early with nothing new (a shorter cap): never spin
                    stop.wait(max(0.0, wait - (time.monotonic() - began)))
                wait = self.interval
                continue
            wait = 0.0
            self._pause(stop)
        return rounds

    def billed_endpoints(self) -> dict[int, list[str]]:
        """Each running billed app's lease id and the host:port addresses its runtime
        published: where the provider's side of per-token billing fetches vouchers
        (`veil.inference.keeper`). Apps held by their lease's state are not running."""
        endpoints: dict[int, list[str]] = {}
        for deployment_id in self.runtime.deployments():
            lease_id = _lease_id(self._leases.get(deployment_id))
            status = self.runtime.status(deployment_id)
            if lease_id is None or status is None or status.state != "running":
                continue
            if status.ports:
                endpoints[lease_id] = sorted(status.ports.values())
        return endpoints

    def _states(self) -> dict[str, tuple[str, str | None]]:
        states = {}
        for deployment_id in self.runtime.deployments():
            status = self.runtime.status(deployment_id)
            if status is not None:
                states[deployment_id] = (status.state, status.error)
        return states

    def _pause(self, stop: threading.Event) -> None:
        """Wait `interval`, or less when a booting app changes state."""
        deadline = time.monotonic() + self.interval
        before = self._states()
        while not stop.is_set():
            booting = any(state in ("pulling", "starting") for state, _ in before.values())
            left = deadline - time.monotonic()
            if left <= 0:
                return
            if not booting:
                stop.wait(left)
                return
            stop.wait(min(self.watch, left))
            now = self._states()
            if now != before:
                return


def machine_capacity(
    state_dir: Path, gpu_model: int, gpu_count: int, disk_gb: int | None = None
) -> dict[str, int]:
    """What this machine offers apps: its CPUs, memory, and the free disk under state_dir
    (or `disk_gb`, what the operator chooses to offer: free disk changes with everything
    else on the machine, and a provider may keep some of it back)."""
    import os
    import shutil

    pages = os.sysconf("SC_PHYS_PAGES") if hasattr(os, "sysconf") else 0
    page_size = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 0
    state_dir.mkdir(parents=True, exist_ok=True)
    return {
        "vcpu": os.cpu_count() or 1,
        "memory_mb": pages * page_size // (1024 * 1024),
        "disk_gb": shutil.disk_usage(state_dir).free // (1024**3) if disk_gb is None else disk_gb,
        "gpu_model": int(gpu_model) if gpu_count else 0,
        "gpu_count": gpu_count,
    }
