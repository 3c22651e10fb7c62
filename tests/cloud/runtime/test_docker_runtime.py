"""The docker runtime's exact command lines and files, with a scripted docker (none here)."""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass, field, replace
from pathlib import Path

import pytest
from runtime_kit import deployment

from veil.cloud.runtime import RuntimeFailure
from veil.cloud.runtime.docker import DockerRuntime, project_name

COMPOSE = """services:
  web:
    image: ghcr.io/example/web:1.2
    environment:
      GREETING: hello ${NAME}
    ports: ["8080"]
  worker:
    image: ghcr.io/example/worker:1.2
"""


@dataclass
class ScriptedDocker:
    """Answers each `docker compose <subcommand>` from a script and records every call."""

    answers: dict[str, list[subprocess.CompletedProcess[str]]] = field(default_factory=dict)
    calls: list[tuple[list[str], dict[str, str]]] = field(default_factory=list)

    def answer(self, subcommand: str, stdout: str = "", code: int = 0, stderr: str = "") -> None:
        done = subprocess.CompletedProcess([], code, stdout, stderr)
        self.answers.setdefault(subcommand, []).append(done)

    def __call__(self, argv: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
        self.calls.append((argv, env))
        queue = self.answers.get(argv[8], [])
        if len(queue) > 1:
            return queue.pop(0)
        return queue[0] if queue else subprocess.CompletedProcess(argv, 0, "", "")


@pytest.fixture
def docker(tmp_path: Path) -> tuple[DockerRuntime, ScriptedDocker]:
    script = ScriptedDocker()
    return DockerRuntime(tmp_path, runner=script, background=False), script


def _prefix(tmp_path: Path) -> list[str]:
    base = tmp_path / "apps" / "dep-1"
    files = [str(base / "docker-compose.yaml"), str(base / "docker-compose.veil.yaml")]
    return ["docker", "compose", "-p", "veil-dep-1", "-f", files[0], "-f", files[1]]


def test_up_argv_files_and_env(docker, tmp_path: Path):
    runtime, script = docker
    item = deployment(COMPOSE)
    status = runtime.start(item, {"NAME": "veil", "SECRET": "only-in-env"})
    assert status.state == "starting" and status.simulated is False
    argv, env = script.calls[0]
    assert argv == [*_prefix(tmp_path), "up", "--detach", "--remove-orphans", "--pull", "missing"]
    assert env["SECRET"] == "only-in-env" and env["NAME"] == "veil"
    base = tmp_path / "apps" / "dep-1"
    assert (base / "docker-compose.yaml").read_text() == COMPOSE  # unchanged, as measured
    override = json.loads((base / "docker-compose.veil.yaml").read_text())
    assert override == {"services": {"web": {"environment": ["NAME", "SECRET"]},
                                     "worker": {"environment": ["NAME", "SECRET"]}}}  # fmt: skip
    for file in base.iterdir():
        assert "only-in-env" not in file.read_text()


def test_status_from_ps_and_ports(docker, tmp_path: Path):
    runtime, script = docker
    item = deployment(COMPOSE)
    runtime.start(item, {})
    rows = [
        {"Service": "web", "State": "running", "ExitCode": 0, "Health": ""},
        {"Service": "worker", "State": "running", "ExitCode": 0, "Health": "starting"},
    ]
    script.answer("ps", "\n".join(json.dumps(row) for row in rows))
    assert runtime.status("dep-1").state == "starting"  # health check not passed yet
    rows[1]["Health"] = "healthy"
    script.answers["ps"] = []
    script.answer("ps", json.dumps(rows))  # the older array form
    script.answer("port", "0.0.0.0:49153\n")
    status = runtime.status("dep-1")
    assert status.state == "running" and status.ports == {"8080": "127.0.0.1:49153"}
    assert status.boot_progress == 100
    assert [*_prefix(tmp_path), "ps", "--all", "--format", "json"] in [c[0] for c in script.calls]
    assert [*_prefix(tmp_path), "port", "web", "8080"] in [c[0] for c in script.calls]


def test_an_exited_container_fails_with_its_logs(docker, tmp_path: Path):
    runtime, script = docker
    runtime.start(deployment(COMPOSE), {})
    script.answer("ps", json.dumps([
        {"Service": "web", "State": "exited", "ExitCode": 137},
        {"Service": "worker", "State": "running", "ExitCode": 0},
    ]))  # fmt: skip
    script.answer("logs", "2026-11-30T07:00:00Z web  | out of memory\n")
    status = runtime.status("dep-1")
    assert status.state == "failed"
    assert status.error == (
        "service web exited with code 137; last log lines:"
        " 2026-11-30T07:00:00Z web  | out of memory"
    )
    logs_call = next(argv for argv, _ in script.calls if argv[8] == "logs")
    assert logs_call == [*_prefix(tmp_path), "logs", "--no-color", "--timestamps", "--tail", "10",
                         "web"]  # fmt: skip


def test_up_failure_stop_remove_and_logs_since(docker, tmp_path: Path):
    runtime, script = docker
    script.answer("up", code=1, stderr="Error response from daemon: pull access denied")
    status = runtime.start(deployment(COMPOSE), {})
    assert status.state == "failed"
    assert "docker compose up exited 1: Error response from daemon: pull access denied" in (
        status.error
    )
    runtime.stop("dep-1")
    assert script.calls[-1][0] == [*_prefix(tmp_path), "stop"]
    assert runtime.status("dep-1").state == "stopped"
    runtime.logs("dep-1", "web", since=1_800_000_000)
    assert script.calls[-1][0] == [
        *_prefix(tmp_path),
        "logs",
        "--no-color",
        "--timestamps",
        "--since",
        "2027-01-15T08:00:00+00:00",
        "web",
    ]
    runtime.remove("dep-1")
    assert script.calls[-1][0] == [*_prefix(tmp_path), "down", "--volumes", "--remove-orphans"]
    assert runtime.deployments() == [] and not (tmp_path / "apps" / "dep-1").exists()


def test_bad_compose_and_missing_docker(tmp_path: Path):
    runtime = DockerRuntime(tmp_path, docker="/nonexistent/docker", background=False)
    with pytest.raises(RuntimeFailure, match="compose:"):
        runtime.start(deployment("services: 1"), {})
    status = runtime.start(deployment(COMPOSE), {})
    assert status.state == "failed" and "/nonexistent/docker" in status.error


def test_project_names_are_what_compose_accepts():
    assert project_name("Dep_1.x") == "veil-dep_1-x"


def test_a_restarted_agent_adopts_its_projects(tmp_path: Path):
    script = ScriptedDocker()
    first = DockerRuntime(tmp_path, runner=script, background=False)
    item = deployment(COMPOSE, encrypted_env="abcd")
    first.start(item, {"SECRET": "never-on-disk"})
    successor = DockerRuntime(tmp_path, runner=script, background=False)
    assert successor.deployments() == ["dep-1"]
    script.answer("ps", json.dumps([{"Service": "web", "State": "running"},
                                    {"Service": "worker", "State": "running"}]))  # fmt: skip
    script.answer("port", "0.0.0.0:40001")
    status = successor.status("dep-1")
    assert status.state == "running" and status.revision == item.revision
    record = (tmp_path / "apps" / "dep-1" / "deployment.json").read_text()
    assert "never-on-disk" not in record and '"encrypted_env": "abcd"' in record
    successor.remove("dep-1")
    assert script.calls[-1][0][8:] == ["down", "--volumes", "--remove-orphans"]


def test_the_lease_facts_reach_every_service_by_name_and_win_a_clash(docker, tmp_path: Path):
    runtime, script = docker
    facts = {"VEIL_LEASE_ID": "0x" + "00" * 31 + "2a", "VEIL_MARKET": "0x" + "cd" * 20,
             "VEIL_CHAIN_ID": "31337"}  # fmt: skip
    item = replace(deployment(COMPOSE), platform_env=facts)
    runtime.start(item, {"SECRET": "only-in-env", "VEIL_CHAIN_ID": "1"})
    _argv, env = script.calls[0]
    assert {key: env[key] for key in facts} == facts and env["SECRET"] == "only-in-env"
    override = json.loads((tmp_path / "apps" / "dep-1" / "docker-compose.veil.yaml").read_text())
    keys = ["SECRET", "VEIL_CHAIN_ID", "VEIL_LEASE_ID", "VEIL_MARKET"]
    assert override == {"services": {"web": {"environment": keys},
                                     "worker": {"environment": keys}}}  # fmt: skip
    # an app without a lease is told nothing
    runtime.start(deployment(COMPOSE, deployment_id="dep-2"), {})
    _argv, env = script.calls[-1]
    assert not {"VEIL_LEASE_ID", "VEIL_MARKET", "VEIL_CHAIN_ID"} & set(env)
