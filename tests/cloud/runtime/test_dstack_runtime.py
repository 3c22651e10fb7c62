"""The dstack runtime against a small fake VMM that checks each request's shape."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from typing import Any

import pytest
from runtime_kit import ServerThread, deployment
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse
from starlette.routing import Route

from veil.cloud.compose_spec import app_compose, app_compose_hash
from veil.cloud.runtime import Deployment, RuntimeFailure
from veil.cloud.runtime.dstack import DstackRuntime, VmmClient

TOKEN = "vmm-token"
#: VmConfiguration fields (vmm_rpc.proto) and their JSON types.
CONFIG_FIELDS = {
    "name": str, "image": str, "compose_file": str, "vcpu": int, "memory": int,
    "disk_size": int, "ports": list, "encrypted_env": str, "app_id": str, "kms_urls": list,
    "gateway_urls": list, "stopped": bool, "gpus": dict, "user_config": str,
}  # fmt: skip


@dataclass
class FakeVmm:
    vms: dict[str, dict[str, Any]] = field(default_factory=dict)
    calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    gpus: list[dict[str, Any]] = field(default_factory=list)

    def _fail(self, message: str, status: int = 400) -> JSONResponse:
        return JSONResponse({"code": status, "message": message}, status)

    async def prpc(self, request: Request) -> JSONResponse:
        if request.headers.get("authorization") != f"Bearer {TOKEN}":
            return self._fail("unauthorized", 401)
        if "json" not in request.query_params:
            return self._fail("expected ?json")
        method = request.path_params["method"]
        body = json.loads(await request.body())
        self.calls.append((method, body))
        if method == "CreateVm":
            for key, value in body.items():
                if key not in CONFIG_FIELDS or not isinstance(value, CONFIG_FIELDS[key]):
                    return self._fail(f"bad field {key}")
            for port in body["ports"]:
                if set(port) != {"protocol", "host_address", "host_port", "vm_port"}:
                    return self._fail("bad port mapping")
            bytes.fromhex(body["encrypted_env"])
            vm_id = f"vm-{len(self.vms) + 1}"
            self.vms[vm_id] = {"config": body, "status": "running", "boot_progress": "booting",
                               "boot_error": ""}  # fmt: skip
            return JSONResponse({"id": vm_id})
        if method == "Status":
            vms = [{"id": vm_id, "name": vm["config"]["name"], "status": vm["status"],
                    "app_id": vm["config"]["app_id"], "configuration": vm["config"]}
                   for vm_id, vm in self.vms.items()]  # fmt: skip
            return JSONResponse({"vms": vms, "port_mapping_enabled": True, "total": len(vms)})
        if method == "ListGpus":
            return JSONResponse({"gpus": self.gpus, "allow_attach_all": False})
        vm = self.vms.get(body.get("id", ""))
        if vm is None:
            if method == "GetInfo":
                return JSONResponse({"found": False})
            return self._fail(f"vm {body.get('id')} not found", 404)
        if method == "GetInfo":
            info = {"id": body["id"], "name": vm["config"]["name"], "status": vm["status"],
                    "boot_progress": vm["boot_progress"], "boot_error": vm["boot_error"],
                    "app_id": vm["config"]["app_id"], "configuration": vm["config"]}  # fmt: skip
            return JSONResponse({"found": True, "info": info})
        if method == "StopVm":
            vm["status"] = "stopped"
        elif method == "StartVm":
            vm["status"], vm["boot_progress"] = "running", "booting"
        elif method == "RemoveVm":
            del self.vms[body["id"]]
        elif method == "UpgradeApp":
            vm["config"].update(body)
        else:
            return self._fail(f"unknown method {method}", 404)
        return JSONResponse({})

    async def logs(self, request: Request) -> PlainTextResponse:
        assert request.query_params["follow"] == "false"
        return PlainTextResponse(f"serial of {request.query_params['id']}\nline 2\n")

    def app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/prpc/{method}", self.prpc, methods=["POST"]),
                Route("/logs", self.logs),
            ]
        )


@pytest.fixture
def vmm() -> Iterator[tuple[FakeVmm, ServerThread]]:
    fake = FakeVmm()
    server = ServerThread(fake.app())
    yield fake, server
    server.close()


def _runtime(server: ServerThread) -> DstackRuntime:
    return DstackRuntime(VmmClient(server.url, token=TOKEN), image="dstack-0.5.3")


def test_create_boot_stop_start_remove(vmm):
    fake, server = vmm
    runtime = _runtime(server)
    item = deployment()
    status = runtime.start(item, {})
    assert status.state == "starting"
    assert fake.calls[0] == ("Status", {"brief": False})  # CVMs of an earlier agent first
    method, config = fake.calls[1]
    assert method == "CreateVm"
    assert config["name"] == "veil-dep-1" and config["image"] == "dstack-0.5.3"
    assert hashlib.sha256(config["compose_file"].encode()).hexdigest() == item.compose_hash
    assert (config["vcpu"], config["memory"], config["disk_size"]) == (1, 2048, 20)
    assert config["encrypted_env"] == item.encrypted_env
    assert config["app_id"] == item.app_id[2:] and config["kms_urls"] == [item.kms_url]
    (mapping,) = config["ports"]
    assert mapping["vm_port"] == 8080 and mapping["protocol"] == "tcp"
    assert status.ports == {"8080": f"127.0.0.1:{mapping['host_port']}"}
    assert runtime.status("dep-1").stage == "CVM running: booting"
    fake.vms["vm-1"]["boot_progress"] = "done"
    running = runtime.status("dep-1")
    assert running.state == "running" and running.boot_progress == 100 and not running.simulated
    assert runtime.logs("dep-1", "web") == ["serial of vm-1", "line 2"]
    runtime.stop("dep-1")
    assert runtime.status("dep-1").state == "stopped"
    runtime.start(item, {})
    assert fake.calls[-1] == ("StartVm", {"id": "vm-1"})
    runtime.remove("dep-1")
    assert fake.calls[-1] == ("RemoveVm", {"id": "vm-1"}) and fake.vms == {}
    assert runtime.deployments() == [] and runtime.status("dep-1") is None


def test_an_update_upgrades_the_app_and_restarts_the_cvm(vmm):
    fake, server = vmm
    runtime = _runtime(server)
    runtime.start(deployment(), {})
    runtime.start(deployment(), {})  # same revision: nothing sent
    assert [method for method, _ in fake.calls] == ["Status", "CreateVm"]
    runtime.start(deployment(encrypted_env="0102"), {})
    assert [method for method, _ in fake.calls[2:]] == ["UpgradeApp", "StopVm", "StartVm"]
    assert fake.calls[2][1]["encrypted_env"] == "0102" and fake.calls[2][1]["id"] == "vm-1"


def test_boot_errors_and_vanished_vms_fail_the_app(vmm):
    fake, server = vmm
    runtime = _runtime(server)
    runtime.start(deployment(), {})
    fake.vms["vm-1"]["boot_error"] = "failed to pull image ghcr.io/x: unauthorized"
    status = runtime.status("dep-1")
    assert status.state == "failed"
    assert status.error == "CVM boot error: failed to pull image ghcr.io/x: unauthorized"
    del fake.vms["vm-1"]
    assert runtime.status("dep-1").error == "CVM vm-1 is gone from the VMM"


def test_gpu_instances_take_free_slots(vmm):
    fake, server = vmm
    fake.gpus = [{"slot": "01:00.0", "is_free": False}, {"slot": "02:00.0", "is_free": True},
                 {"slot": "03:00.0", "is_free": True}]  # fmt: skip
    runtime = _runtime(server)
    item = _with_type(deployment(), "h100x2")
    runtime.start(item, {})
    config = fake.calls[-1][1]
    assert config["gpus"] == {"attach_mode": "listed",
                              "gpus": [{"slot": "02:00.0"}, {"slot": "03:00.0"}]}  # fmt: skip
    with pytest.raises(RuntimeFailure, match="4 GPUs asked, 0 free"):
        fake.gpus = []
        runtime.start(_with_type(deployment(deployment_id="dep-2"), "h100x4"), {})


def test_refusals(vmm):
    fake, server = vmm
    runtime = _runtime(server)
    item = deployment()
    tampered = Deployment(**{**item.__dict__, "compose_hash": "00" * 32})
    with pytest.raises(RuntimeFailure, match="refusing to boot it"):
        runtime.start(tampered, {})
    with pytest.raises(RuntimeFailure, match="decrypts its own env"):
        runtime.start(item, {"SECRET": "x"})
    with pytest.raises(RuntimeFailure, match="HTTP 401: unauthorized"):
        DstackRuntime(VmmClient(server.url, token="wrong"), image="i").start(item, {})
    with pytest.raises(RuntimeFailure, match=r"Status failed \(\[Errno 111\] Connection refused\)"):
        DstackRuntime(VmmClient("http://127.0.0.1:9"), image="i").start(item, {})
    assert fake.vms == {}


def _with_type(item: Deployment, kind: str) -> Deployment:
    document = app_compose("echo", item.compose, ["SECRET"])
    return Deployment(**{**item.__dict__, "instance_type": kind, "app_compose": document,
                         "compose_hash": app_compose_hash(document)})  # fmt: skip


def test_a_restarted_agent_adopts_its_cvms_instead_of_duplicating_them(vmm):
    fake, server = vmm
    first = _runtime(server)
    status = first.start(deployment(), {})
    fake.vms["vm-1"]["boot_progress"] = "done"
    successor = _runtime(server)  # the agent restarted: nothing in memory
    assert successor.deployments() == ["dep-1"]
    again = successor.start(deployment(), {})  # the same revision: no second CVM
    assert len(fake.vms) == 1 and again.ports == status.ports
    assert successor.status("dep-1").state == "running"
    successor.start(deployment(encrypted_env="0a"), {})  # a new revision: upgraded in place
    assert [m for m, _ in fake.calls[-3:]] == ["UpgradeApp", "StopVm", "StartVm"]
    assert len(fake.vms) == 1


LEASE_FACTS = {
    "VEIL_LEASE_ID": "0x" + "00" * 31 + "2a",
    "VEIL_MARKET": "0x" + "cd" * 20,
    "VEIL_CHAIN_ID": "31337",
}


def test_the_lease_facts_go_in_user_config_and_a_new_lease_upgrades_the_cvm(vmm):
    fake, server = vmm
    runtime = _runtime(server)
    runtime.start(deployment(deployment_id="dep-2"), {})
    assert fake.calls[-1][1]["user_config"] == ""  # an app without a lease: told nothing
    billed = replace(deployment(), platform_env=dict(LEASE_FACTS))
    runtime.start(billed, {})
    method, config = fake.calls[-1]
    assert method == "CreateVm" and json.loads(config["user_config"]) == LEASE_FACTS
    assert LEASE_FACTS["VEIL_MARKET"] not in config["encrypted_env"]  # public, not in the env
    runtime.start(billed, {})  # same revision, same lease: nothing sent
    assert fake.calls[-1][0] == "CreateVm"
    moved = replace(billed, platform_env={**LEASE_FACTS, "VEIL_LEASE_ID": "0x" + "00" * 31 + "2b"})
    runtime.start(moved, {})
    assert [m for m, _ in fake.calls[-3:]] == ["UpgradeApp", "StopVm", "StartVm"]
    upgrade = fake.calls[-3][1]
    assert json.loads(upgrade["user_config"])["VEIL_LEASE_ID"].endswith("2b")
    # a restarted agent reads the facts back from the VMM: the same lease changes nothing
    successor = _runtime(server)
    calls = len(fake.calls)
    successor.start(moved, {})
    assert [m for m, _ in fake.calls[calls:]] == ["Status"]
    successor.start(billed, {})
    assert [m for m, _ in fake.calls[-3:]] == ["UpgradeApp", "StopVm", "StartVm"]
