"""The docker runtime: `docker compose` inside the CVM, one compose project per deployment.

This is what runs on a worker that is itself a dstack CVM (the agent inside it starts the
apps). Each deployment gets a directory with the customer's compose file, unchanged, and
an override file `docker-compose.veil.yaml` that lists, per service, the decrypted env keys
WITHOUT values (`environment: [KEY, ...]`): docker compose then takes each value from the
environment of the `docker compose up` process, the same environment it interpolates
`${VAR}` from. So the plaintext secrets exist only in that process's environment and the
containers', never in a file on the worker's disk. The deployment's `platform_env` (a
billed app's `VEIL_LEASE_ID`, `VEIL_MARKET`, `VEIL_CHAIN_ID`) goes the same way to every
service.

Ports: a compose port without a published port is published by docker on an ephemeral
host port; `docker compose port` tells which, and that `host:port` is what the status
reports for the gateway. State comes from `docker compose ps --all --format json`; a
container that exited non-zero fails the app with its exit code and last log lines.

Every docker invocation goes through `runner` (argv, env) so the tests assert the exact
command lines without a docker engine.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from veil.atomic import write_json, write_text
from veil.cloud.compose_spec import ComposeSpec, parse_compose
from veil.cloud.runtime import AppStatus, Deployment, RuntimeFailure
from veil.errors import InputError

Runner = Callable[[list[str], dict[str, str]], subprocess.CompletedProcess[str]]
COMPOSE_FILE = "docker-compose.yaml"
OVERRIDE_FILE = "docker-compose.veil.yaml"
RECORD_FILE = "deployment.json"


def run_command(argv: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, env=env, capture_output=True, text=True, timeout=600)


def project_name(deployment_id: str) -> str:
    """Compose project names allow [a-z0-9_-] only, starting with a letter or digit."""
    return "veil-" + re.sub(r"[^a-z0-9_-]", "-", deployment_id.lower())


def override_text(spec: ComposeSpec, env_keys: list[str]) -> str:
    """The override file: every service receives the decrypted keys by name only."""
    keys = sorted(set(env_keys))
    document: dict[str, Any] = {
        "services": {name: {"environment": list(keys)} for name in sorted(spec.services)}
    }
    return json.dumps(document, indent=2) + "\n"  # JSON is YAML, and unambiguous


@dataclass
class _Project:
    deployment: Deployment
    spec: ComposeSpec
    state: str = "pulling"
    error: str | None = None
    worker: threading.Thread | None = None


@dataclass
class DockerRuntime:
    root: Path
    docker: str = "docker"
    host: str = "127.0.0.1"
    runner: Runner = run_command
    background: bool = True
    name: str = "docker"
    simulated: bool = False
    keys_inside: bool = False
    _projects: dict[str, _Project] = field(default_factory=dict, init=False)
    _lock: threading.RLock = field(default_factory=threading.RLock, init=False)

    def __post_init__(self) -> None:
        self.adopt()

    def adopt(self) -> int:
        """Take over the compose projects a previous agent started on this root.

        Containers outlive the agent; the deployment record beside each project (the
        control plane's entry minus nothing secret: the env in it is the encrypted one)
        lets a restarted agent report them, leave an unchanged one alone and remove one
        the control plane no longer lists.
        """
        adopted = 0
        for record in sorted(self.root.glob(f"apps/*/{RECORD_FILE}")):
            try:
                deployment = Deployment.from_json(json.loads(record.read_text()))
                spec = parse_compose(deployment.compose)
            except (OSError, ValueError, InputError):
                continue
            with self._lock:
                self._projects.setdefault(
                    deployment.deployment_id, _Project(deployment, spec, state="starting")
                )
            adopted += 1
        return adopted

    def _dir(self, deployment_id: str) -> Path:
        return self.root / "apps" / deployment_id

    def compose_argv(self, deployment_id: str, *args: str) -> list[str]:
        base = self._dir(deployment_id)
        return [
            self.docker, "compose", "-p", project_name(deployment_id),
            "-f", str(base / COMPOSE_FILE), "-f", str(base / OVERRIDE_FILE), *args,
        ]  # fmt: skip

    def _env(self, secrets: dict[str, str] | None = None) -> dict[str, str]:
        """docker's own environment (PATH, DOCKER_HOST...) plus the app's secrets."""
        keep = ("PATH", "HOME", "DOCKER_HOST", "DOCKER_CONFIG", "DOCKER_CONTEXT", "XDG_RUNTIME_DIR")
        env = {key: os.environ[key] for key in keep if key in os.environ}
        return {**env, **(secrets or {})}

    def _run(self, argv: list[str], env: dict[str, str] | None = None) -> str:
        try:
            done = self.runner(argv, env if env is not None else self._env())
        except (OSError, subprocess.SubprocessError) as error:
            raise RuntimeFailure(f"docker: {' '.join(argv[:3])}...: {error}") from None
        if done.returncode != 0:
            last = (done.stderr or done.stdout or "").strip().splitlines()[-3:]
            command = argv[8] if len(argv) > 8 else " ".join(argv)
            raise RuntimeFailure(
                f"docker compose {command} exited {done.returncode}: {' | '.join(last)}"
            )
        return done.stdout

    # --- lifecycle -----------------------------------------------------------------

    def start(self, deployment: Deployment, env: dict[str, str]) -> AppStatus:
        try:
            spec = parse_compose(deployment.compose)
        except InputError as error:
            raise RuntimeFailure(str(error)) from None
        base = self._dir(deployment.deployment_id)
        write_text(base / COMPOSE_FILE, deployment.compose)
        # the worker's public facts (a billed app's lease) travel like the secrets, by name
        # in the override and by value in `up`'s environment, and win a clash with them
        given = {**env, **deployment.platform_env}
        write_text(base / OVERRIDE_FILE, override_text(spec, list(given)))
        write_json(base / RECORD_FILE, deployment.to_json())
        project = _Project(deployment, spec)
        argv = self.compose_argv(
            deployment.deployment_id, "up", "--detach", "--remove-orphans", "--pull", "missing"
        )
        process_env = self._env(given)

        def up() -> None:
            try:
                self._run(argv, process_env)
            except RuntimeFailure as error:
                project.state, project.error = "failed", str(error)
                return
            if project.state == "pulling":
                project.state = "starting"

        with self._lock:
            self._projects[deployment.deployment_id] = project
        if self.background:
            project.worker = threading.Thread(target=up, daemon=True)
            project.worker.start()
        else:
            up()
        return self._status(project)

    def stop(self, deployment_id: str) -> None:
        project = self._projects.get(deployment_id)
        if project is None:
            return
        self._run(self.compose_argv(deployment_id, "stop"))
        project.state = "stopped"

    def remove(self, deployment_id: str) -> None:
        with self._lock:
            project = self._projects.pop(deployment_id, None)
        if project is not None:
            self._run(self.compose_argv(deployment_id, "down", "--volumes", "--remove-orphans"))
        shutil.rmtree(self._dir(deployment_id), ignore_errors=True)

    def deployments(self) -> list[str]:
        with self._lock:
            return list(self._projects)

    # --- observation ---------------------------------------------------------------

    def containers(self, deployment_id: str) -> list[dict[str, Any]]:
        """`docker compose ps --all --format json`: NDJSON (compose >= 2.21) or one array."""
        out = self._run(self.compose_argv(deployment_id, "ps", "--all", "--format", "json"))
        text = out.strip()
        if not text:
            return []
        if text.startswith("["):
            rows = json.loads(text)
        else:
            rows = [json.loads(line) for line in text.splitlines() if line.strip()]
        return [row for row in rows if isinstance(row, dict)]

    def status(self, deployment_id: str) -> AppStatus | None:
        project = self._projects.get(deployment_id)
        if project is None:
            return None
        if project.state == "starting" or project.state == "running":
            self._observe(project)
        return self._status(project)

    def _observe(self, project: _Project) -> None:
        deployment_id = project.deployment.deployment_id
        try:
            rows = self.containers(deployment_id)
        except (RuntimeFailure, ValueError) as error:
            project.error = f"docker compose ps: {error}"
            return
        by_service = {str(row.get("Service")): row for row in rows}
        for name in project.spec.services:
            row = by_service.get(name)
            if row is None:
                project.state = "starting"
                return
            state = str(row.get("State", "")).lower()
            code = int(row.get("ExitCode") or 0)
            if state in ("exited", "dead") and code != 0:
                tail = self.logs(deployment_id, name, tail=10)
                detail = f"; last log lines: {' | '.join(tail)}" if tail else ""
                project.state = "failed"
                project.error = f"service {name} exited with code {code}{detail}"
                return
            health = str(row.get("Health", "")).lower()
            if state != "running" or health in ("starting", "unhealthy"):
                project.state = "starting"
                return
        project.state = "running"
        project.error = None

    def ports(self, deployment_id: str) -> dict[str, str]:
        """Each container port's `host:port`, as `docker compose port` reports it."""
        project = self._projects[deployment_id]
        found: dict[str, str] = {}
        for name, service in project.spec.services.items():
            for mapping in service.ports:
                out = self._run(self.compose_argv(deployment_id, "port", name, str(mapping.target)))
                published = out.strip().rsplit(":", 1)[-1]
                if published.isdigit():
                    found[str(mapping.target)] = f"{self.host}:{published}"
        return found

    def _status(self, project: _Project) -> AppStatus:
        deployment = project.deployment
        ports: dict[str, str] = {}
        if project.state == "running":
            try:
                ports = self.ports(deployment.deployment_id)
            except RuntimeFailure as error:
                project.error = str(error)
        percent = {"pulling": 10, "starting": 50, "running": 100}.get(project.state, 0)
        return AppStatus(
            deployment_id=deployment.deployment_id,
            app_id=deployment.app_id,
            state=project.state,
            boot_progress=percent,
            stage=f"docker compose: {project.state}",
            error=project.error,
            ports=ports,
            simulated=False,
            revision=deployment.revision,
        )

    def logs(
        self, deployment_id: str, service: str, since: float = 0.0, *, tail: int | None = None
    ) -> list[str]:
        args = ["logs", "--no-color", "--timestamps"]
        if since:
            args += ["--since", datetime.fromtimestamp(since, UTC).isoformat()]
        if tail is not None:
            args += ["--tail", str(tail)]
        try:
            out = self._run(self.compose_argv(deployment_id, *args, service))
        except RuntimeFailure:
            return []
        return [line for line in out.splitlines() if line.strip()]
