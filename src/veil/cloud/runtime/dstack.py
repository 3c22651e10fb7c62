"""The dstack runtime: one CVM per deployment, created and managed through the dstack VMM.

Production workers run dstack's VMM on the host. Its RPC API (`vmm/rpc/proto/vmm_rpc.proto`
in Dstack-TEE/dstack) takes JSON at `POST /prpc/<Method>?json`: `CreateVm(VmConfiguration)
-> Id`, `StartVm`/`StopVm`/`RemoveVm(Id)`, `UpgradeApp(UpdateVmRequest)`, `GetInfo(Id) ->
{found, info: VmInfo}`, `Status`, `ListGpus`; errors are `{code, message}`. The VMM may
listen on a unix socket (`unix:/path/vmm.sock`) or TCP, optionally behind a bearer token.

The CVM boots the app-compose document as its `compose_file`, so this runtime sends the
exact canonical text dstack's SDKs hash (`veil.tee.compose.canonical_app_compose`) and
refuses a deployment whose text would measure another compose hash than the control plane
registered. The CVM fetches its own keys from the KMS (`kms_urls`) and decrypts the
encrypted env inside (`keys_inside`): the worker never holds the plaintext. The public
facts the worker adds (`platform_env`: a billed app's `VEIL_LEASE_ID`, `VEIL_MARKET`,
`VEIL_CHAIN_ID`) go in the VM's `user_config` as a JSON object, which dstack stores,
unmeasured, at `/dstack/.host-shared/.user-config` in the CVM (`veil ai serve
--user-config` reads it there). An update
(new compose or env) is `UpgradeApp` then a stop and start, keeping the CVM's disk.

Status comes from `GetInfo`: `boot_error` fails the app with dstack's own diagnosis,
`boot_progress` is reported as the stage until it reads `done`. Each container port is
forwarded from a host port chosen here (`ports`, tcp on `host`), which is what the gateway
reaches.
"""

from __future__ import annotations

import hashlib
import json
import socket
import threading
from dataclasses import dataclass, field
from typing import Any

import httpx

from veil.cloud.compose_spec import parse_compose
from veil.cloud.instance_types import instance_type
from veil.cloud.runtime import AppStatus, Deployment, RuntimeFailure
from veil.errors import InputError
from veil.tee.compose import canonical_app_compose

VM_PREFIX = "veil-"


def user_config(deployment: Deployment) -> str:
    """The CVM's `user_config`: the deployment's `platform_env` as a JSON object, or "".

    dstack stores it at `/dstack/.host-shared/.user-config` in the CVM, outside the measured compose
    and outside the encrypted env: the channel for public facts the host may tell the app
    (a billed app's lease), which the app must not take as attested.
    """
    if not deployment.platform_env:
        return ""
    return json.dumps(deployment.platform_env, sort_keys=True, separators=(",", ":"))


def _read_user_config(text: str) -> dict[str, str]:
    """`user_config` read back from the VMM (an adopted CVM): what the CVM was told."""
    try:
        doc = json.loads(text) if text else {}
    except ValueError:
        return {}
    if not isinstance(doc, dict):
        return {}
    return {str(key): str(value) for key, value in doc.items()}


def _free_port(host: str) -> int:
    with socket.socket() as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


@dataclass
class VmmClient:
    """JSON RPC to a dstack VMM."""

    url: str
    token: str | None = None
    timeout: float = 60.0
    transport: httpx.BaseTransport | None = None

    def _client(self) -> httpx.Client:
        base, transport = self.url.rstrip("/"), self.transport
        if base.startswith("unix:"):
            transport = transport or httpx.HTTPTransport(uds=base.removeprefix("unix:"))
            base = "http://vmm"
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        return httpx.Client(
            base_url=base, timeout=self.timeout, transport=transport, headers=headers
        )

    def call(self, method: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        try:
            with self._client() as client:
                response = client.post(f"/prpc/{method}?json", json=body or {})
        except httpx.HTTPError as error:
            raise RuntimeFailure(f"dstack VMM {self.url}: {method} failed ({error})") from None
        try:
            answer = response.json() if response.content.strip() else {}
        except ValueError:
            answer = None
        if response.status_code != 200:
            detail = (
                answer.get("message") or answer.get("error")
                if isinstance(answer, dict)
                else response.text[:200]
            )
            raise RuntimeFailure(f"dstack VMM {method}: HTTP {response.status_code}: {detail}")
        if not isinstance(answer, dict):
            raise RuntimeFailure(f"dstack VMM {method}: answer is not a JSON object")
        return answer


@dataclass
class _Vm:
    vm_id: str
    deployment: Deployment
    ports: dict[str, str]
    stopped: bool = False


@dataclass
class DstackRuntime:
    vmm: VmmClient
    image: str
    host: str = "127.0.0.1"
    gateway_urls: tuple[str, ...] = ()
    name: str = "dstack"
    simulated: bool = False
    keys_inside: bool = True
    _vms: dict[str, _Vm] = field(default_factory=dict, init=False)
    _lock: threading.RLock = field(default_factory=threading.RLock, init=False)
    _adopted: bool = field(default=False, init=False)

    def adopt(self) -> int:
        """Take over the CVMs a previous agent created (named `veil-<deployment id>`).

        A CVM outlives the agent that created it; without this a restarted agent would
        create a second CVM for the same deployment. The running revision is read back from
        the VMM's configuration (compose file and encrypted env), so an unchanged deployment
        is left alone and a changed one is upgraded. Returns the CVMs adopted.
        """
        with self._lock:
            if self._adopted:
                return 0
            answer = self.vmm.call("Status", {"brief": False})
            adopted = 0
            for info in answer.get("vms") or []:
                name = str(info.get("name", ""))
                config = info.get("configuration") or {}
                deployment_id = name.removeprefix(VM_PREFIX)
                if not name.startswith(VM_PREFIX) or deployment_id in self._vms:
                    continue
                compose_file = str(config.get("compose_file", ""))
                try:
                    app_compose = json.loads(compose_file)
                except ValueError:
                    continue
                ports = {
                    str(
                        p.get("vm_port")
                    ): f"{p.get('host_address') or self.host}:{p.get('host_port')}"
                    for p in config.get("ports") or []
                }
                deployment = Deployment(
                    deployment_id=deployment_id,
                    app_id="0x" + str(info.get("app_id") or config.get("app_id") or "").lower(),
                    name=str(app_compose.get("name", "")),
                    desired="running",
                    compose=str(app_compose.get("docker_compose_file", "")),
                    app_compose=app_compose,
                    compose_hash=hashlib.sha256(compose_file.encode()).hexdigest(),
                    encrypted_env=str(config.get("encrypted_env", "")),
                    instance_type="",
                    platform_env=_read_user_config(str(config.get("user_config") or "")),
                )
                stopped = str(info.get("status")) in ("stopped", "exited")
                self._vms[deployment_id] = _Vm(str(info.get("id")), deployment, ports, stopped)
                adopted += 1
            self._adopted = True
            return adopted

    def configuration(self, deployment: Deployment) -> tuple[dict[str, Any], dict[str, str]]:
        """The VmConfiguration for CreateVm, and the host:port per container port."""
        compose_file = canonical_app_compose(deployment.app_compose)
        measured = hashlib.sha256(compose_file.encode()).hexdigest()
        if measured != deployment.compose_hash:
            raise RuntimeFailure(
                f"app {deployment.app_id}: the app-compose measures {measured}, not the"
                f" registered compose hash {deployment.compose_hash}; refusing to boot it"
            )
        try:
            spec = parse_compose(deployment.compose)
            kind = instance_type(deployment.instance_type)
        except InputError as error:
            raise RuntimeFailure(str(error)) from None
        mappings, ports = [], {}
        for service in spec.services.values():
            for mapping in service.ports:
                host_port = _free_port(self.host)
                mappings.append({"protocol": "tcp", "host_address": self.host,
                                 "host_port": host_port, "vm_port": mapping.target})  # fmt: skip
                ports[str(mapping.target)] = f"{self.host}:{host_port}"
        config: dict[str, Any] = {
            "name": VM_PREFIX + deployment.deployment_id,
            "image": self.image,
            "compose_file": compose_file,
            "vcpu": kind.vcpu,
            "memory": kind.memory_mb,
            "disk_size": kind.disk_gb,
            "ports": mappings,
            "encrypted_env": deployment.encrypted_env,
            "user_config": user_config(deployment),
            "app_id": deployment.app_id.removeprefix("0x").lower(),
            "kms_urls": [deployment.kms_url] if deployment.kms_url else [],
            "gateway_urls": list(self.gateway_urls),
            "stopped": False,
        }
        if kind.gpu_count:
            config["gpus"] = {"attach_mode": "listed", "gpus": self._gpu_slots(kind.gpu_count)}
        return config, ports

    def _gpu_slots(self, count: int) -> list[dict[str, str]]:
        listed = self.vmm.call("ListGpus").get("gpus") or []
        free = [gpu["slot"] for gpu in listed if gpu.get("is_free")]
        if len(free) < count:
            raise RuntimeFailure(f"dstack VMM: {count} GPUs asked, {len(free)} free")
        return [{"slot": slot} for slot in free[:count]]

    # --- lifecycle -----------------------------------------------------------------

    def start(self, deployment: Deployment, env: dict[str, str]) -> AppStatus:
        if env:
            raise RuntimeFailure("dstack runtime: the CVM decrypts its own env; pass none")
        self.adopt()
        with self._lock:
            vm = self._vms.get(deployment.deployment_id)
            if vm is None:
                config, ports = self.configuration(deployment)
                answer = self.vmm.call("CreateVm", config)
                vm_id = answer.get("id")
                if not isinstance(vm_id, str) or not vm_id:
                    raise RuntimeFailure("dstack VMM CreateVm: no id in the answer")
                vm = self._vms[deployment.deployment_id] = _Vm(vm_id, deployment, ports)
            elif (
                vm.deployment.revision != deployment.revision
                or vm.deployment.platform_env != deployment.platform_env
            ):
                config, _ports = self.configuration(deployment)
                self.vmm.call("UpgradeApp", {
                    "id": vm.vm_id,
                    "compose_file": config["compose_file"],
                    "encrypted_env": config["encrypted_env"],
                    "user_config": config["user_config"],
                })  # fmt: skip
                self.vmm.call("StopVm", {"id": vm.vm_id})
                self.vmm.call("StartVm", {"id": vm.vm_id})
                vm.deployment = deployment
            elif vm.stopped:
                self.vmm.call("StartVm", {"id": vm.vm_id})
            vm.stopped = False
            return self._status(vm, None)

    def stop(self, deployment_id: str) -> None:
        with self._lock:
            vm = self._vms.get(deployment_id)
            if vm is not None:
                self.vmm.call("StopVm", {"id": vm.vm_id})
                vm.stopped = True

    def remove(self, deployment_id: str) -> None:
        with self._lock:
            vm = self._vms.pop(deployment_id, None)
            if vm is not None:
                self.vmm.call("RemoveVm", {"id": vm.vm_id})

    def deployments(self) -> list[str]:
        self.adopt()
        with self._lock:
            return list(self._vms)

    # --- observation ---------------------------------------------------------------

    def status(self, deployment_id: str) -> AppStatus | None:
        vm = self._vms.get(deployment_id)
        if vm is None:
            return None
        answer = self.vmm.call("GetInfo", {"id": vm.vm_id})
        info = answer.get("info") if answer.get("found") else None
        return self._status(vm, info if isinstance(info, dict) else {"status": "missing"})

    def _status(self, vm: _Vm, info: dict[str, Any] | None) -> AppStatus:
        deployment = vm.deployment
        state, error, stage, percent = "starting", None, "creating the CVM", 10
        if info is not None:
            status = str(info.get("status", ""))
            progress = str(info.get("boot_progress", ""))
            boot_error = str(info.get("boot_error", ""))
            stage = f"CVM {status}: {progress}" if progress else f"CVM {status}"
            if boot_error:
                state, error, percent = "failed", f"CVM boot error: {boot_error}", 0
            elif status == "missing":
                state, error, percent = "failed", f"CVM {vm.vm_id} is gone from the VMM", 0
            elif status == "running" and progress == "done":
                state, percent = "running", 100
            elif status == "running":
                state, percent = "starting", 50
            elif status in ("stopped", "exited", "stopping"):
                state, percent = "stopped", 0
        return AppStatus(
            deployment_id=deployment.deployment_id,
            app_id=deployment.app_id,
            state=state,
            boot_progress=percent,
            stage=stage,
            error=error,
            ports=dict(vm.ports) if state in ("starting", "running") else {},
            simulated=False,
            revision=deployment.revision,
        )

    def logs(self, deployment_id: str, service: str, since: float = 0.0) -> list[str]:
        """The CVM's serial console (the VMM's `/logs`); `service` is not separable there."""
        vm = self._vms.get(deployment_id)
        if vm is None:
            raise InputError(f"deployment {deployment_id}: no CVM on this worker")
        try:
            with self.vmm._client() as client:
                response = client.get(
                    "/logs",
                    params={
                        "id": vm.vm_id,
                        "follow": "false",
                        "ansi": "false",
                        "lines": "200",
                    },
                )
        except httpx.HTTPError as error:
            raise RuntimeFailure(f"dstack VMM logs: {error}") from None
        return response.text.splitlines()
