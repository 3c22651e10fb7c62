"""Where a worker runs an app: the runtime protocol and the records it speaks in.

The worker's app loop (`veil.cloud.agent`) only ever talks to a `Runtime`, so the same
loop drives three very different engines: `process` (host processes, laptops and CI,
SIMULATED), `docker` (docker compose inside a CVM) and `dstack` (a CVM per app through the
dstack VMM). A `Deployment` is what the control plane asks for (layout of
`POST /v1/workers/sync`), an `AppStatus` is what the worker reports back.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from veil.errors import InputError, VeilError

#: States reported to the control plane, in the order an app normally passes them.
STATES = ("pulling", "starting", "running", "stopped", "failed")
_APP_ID = re.compile(r"^(0x)?[0-9a-fA-F]{40}$")
_DEPLOYMENT_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")


class RuntimeFailure(VeilError):
    """A runtime could not act on a deployment (bad compose, engine refused, VMM down)."""


@dataclass(frozen=True)
class Deployment:
    """One app the control plane wants on this worker."""

    deployment_id: str
    app_id: str
    name: str
    desired: str
    compose: str
    app_compose: dict[str, Any]
    compose_hash: str
    encrypted_env: str
    instance_type: str
    kms_url: str | None = None
    #: Public facts the worker tells the app about its place, as dstack tells an app its
    #: own identity: today the lease that pays for it (`VEIL_LEASE_ID`, `VEIL_MARKET`,
    #: `VEIL_CHAIN_ID`, see `veil.cloud.agent.lease_env`). Every runtime hands them to
    #: every service beside the decrypted env, never inside it: they are not secret, the
    #: customer did not write them, and they come from the worker's own chain reads.
    #: Not in the sync entry (`to_json`): the worker adds them.
    platform_env: dict[str, str] = field(default_factory=dict, hash=False)

    @property
    def revision(self) -> tuple[str, str]:
        """What makes a running copy outdated: another compose or another env."""
        return (self.compose_hash, self.encrypted_env)

    def to_json(self) -> dict[str, Any]:
        """The sync answer's entry, as `from_json` reads it back."""
        return {
            "deployment_id": self.deployment_id,
            "app_id": self.app_id,
            "name": self.name,
            "desired": self.desired,
            "compose": self.compose,
            "app_compose": self.app_compose,
            "compose_hash": self.compose_hash,
            "encrypted_env": self.encrypted_env,
            "instance_type": self.instance_type,
            "kms_url": self.kms_url,
        }

    @classmethod
    def from_json(cls, doc: Any) -> Deployment:
        """Read one entry of the sync answer; an InputError names the bad field."""
        if not isinstance(doc, dict):
            raise InputError("deployment: expected a JSON object")
        where = f"deployment {doc.get('deployment_id')!r}"

        def text(key: str, *, optional: bool = False) -> str | None:
            value = doc.get(key)
            if value is None and optional:
                return None
            if not isinstance(value, str):
                raise InputError(f"{where}: {key} must be a string")
            return value

        deployment_id = text("deployment_id") or ""
        if not _DEPLOYMENT_ID.match(deployment_id):
            raise InputError(f"{where}: deployment_id is not a safe identifier")
        app_id = text("app_id") or ""
        if not _APP_ID.match(app_id):
            raise InputError(f"{where}: app_id {app_id!r} is not 20 bytes of hex")
        desired = text("desired")
        if desired not in ("running", "stopped"):
            raise InputError(f"{where}: desired must be running or stopped, not {desired!r}")
        app_compose = doc.get("app_compose")
        if not isinstance(app_compose, dict):
            raise InputError(f"{where}: app_compose must be a JSON object")
        return cls(
            deployment_id=deployment_id,
            app_id=app_id if app_id.startswith("0x") else "0x" + app_id,
            name=text("name") or "",
            desired=desired,
            compose=text("compose") or "",
            app_compose=app_compose,
            compose_hash=(text("compose_hash") or "").removeprefix("0x").lower(),
            encrypted_env=(text("encrypted_env", optional=True) or "").removeprefix("0x"),
            instance_type=text("instance_type") or "",
            kms_url=text("kms_url", optional=True),
        )


@dataclass
class AppStatus:
    """What a runtime knows about one deployment, as the sync body reports it."""

    deployment_id: str
    app_id: str
    state: str
    #: Percent, 0-100 (the control plane's field); `stage` says in words where boot is.
    boot_progress: int = 0
    stage: str = ""
    error: str | None = None
    ports: dict[str, str] = field(default_factory=dict)
    restarts: int = 0
    simulated: bool = False
    revision: tuple[str, str] = ("", "")

    def to_json(self) -> dict[str, Any]:
        return {
            "deployment_id": self.deployment_id,
            "app_id": self.app_id,
            "state": self.state,
            "boot_progress": self.boot_progress,
            "stage": self.stage,
            "error": self.error,
            "ports": dict(self.ports),
            "restarts": self.restarts,
            "simulated": self.simulated,
        }


class Runtime(Protocol):
    """An engine that runs deployments; every method is safe to call repeatedly."""

    name: str
    #: True when the process runtime fakes isolation: every status then says so.
    simulated: bool
    #: True when the app's own CVM fetches its keys from the KMS (dstack): the worker
    #: then never sees the decrypted env and passes the encrypted one through.
    keys_inside: bool

    def start(self, deployment: Deployment, env: dict[str, str]) -> AppStatus:
        """Start the deployment (replacing an older revision of it); returns at once."""
        ...

    def stop(self, deployment_id: str) -> None:
        """Stop its processes, keep its files (a later start resumes it)."""
        ...

    def remove(self, deployment_id: str) -> None:
        """Stop it and delete everything it left on the worker."""
        ...

    def status(self, deployment_id: str) -> AppStatus | None:
        """Its current state, or None when this runtime does not hold it."""
        ...

    def deployments(self) -> list[str]:
        """Ids of every deployment this runtime holds (running or not)."""
        ...

    def logs(self, deployment_id: str, service: str, since: float = 0.0) -> list[str]:
        """Log lines of one service written at or after unix time `since`."""
        ...


RUNTIMES = ("process", "docker", "dstack")


def open_runtime(
    kind: str,
    state_dir: Path,
    *,
    host: str = "127.0.0.1",
    vmm_url: str | None = None,
    vmm_token: str | None = None,
    vmm_image: str | None = None,
) -> Runtime:
    """The runtime named on the command line; refuses a missing option in one line."""
    if kind == "process":
        from veil.cloud.runtime.process import ProcessRuntime

        return ProcessRuntime(state_dir / "runtime", host=host)
    if kind == "docker":
        from veil.cloud.runtime.docker import DockerRuntime

        return DockerRuntime(state_dir / "runtime", host=host)
    if kind == "dstack":
        from veil.cloud.runtime.dstack import DstackRuntime, VmmClient

        if not vmm_url or not vmm_image:
            raise InputError("--runtime dstack: needs --vmm URL and --vmm-image NAME")
        return DstackRuntime(VmmClient(vmm_url, token=vmm_token), image=vmm_image, host=host)
    raise InputError(f"--runtime {kind}: expected {', '.join(RUNTIMES)}")
