"""The process runtime: each compose service's `command` as a host process. SIMULATED.

Laptops and CI have no container engine and no TEE, yet the whole deploy path (provision,
KMS, env decryption, gateway) must run there. This runtime stands in for the CVM: it gives
each service its own process group, working directory and log file, so a boot failure is
diagnosed the way a customer needs (which service, which exit code, its last log lines),
not as a silent boot loop. It isolates nothing, and every status it reports says
`simulated: true`.

How an app sees the world here:
- `image` is ignored (nothing is pulled); the service's `command` is what runs, split like a
  shell would (no shell runs it). A service without a command cannot run and fails at once.
- `${VAR}`, `${VAR:-default}`, `${VAR-default}` and `$VAR` in the command and in the
  environment values are interpolated from the decrypted env and the port variables below
  (`$$` is a literal `$`), as docker compose interpolates from the app's `.env`.
- There is no network namespace, so a service cannot listen on its container port. The
  runtime picks a free host port per container port and tells the service: `PORT` is the
  host port of its first container port, `VEIL_PORT_<target>` the one of each (e.g.
  `VEIL_PORT_8080`). Write the command as `... --port ${PORT:-8080}` (the default is what
  docker and dstack runtimes use, and the control plane accepts a defaulted variable
  outside `allowed_envs`) or read `PORT` in the app. The chosen
  `host:port` per container port is what `status().ports` reports and the gateway reaches.
- The process environment is the decrypted env keys, then the compose environment (which
  wins on a clash, as the file is explicit), then
  `PATH`, `HOME` (the service's directory), `VEIL_APP_ID`, `VEIL_COMPOSE_HASH` (both also
  interpolated: a simulated app claims them in its own quotes), the deployment's
  `platform_env` (a billed app's `VEIL_LEASE_ID`, `VEIL_MARKET`, `VEIL_CHAIN_ID`, also
  interpolated), `VEIL_SERVICE` and `VEIL_SIMULATED=1`; nothing else of the worker's
  environment (its keys) leaks in. The decrypted env is held in memory only, never written
  under the state directory.

A service counts as up when every one of its ports accepts a TCP connection (a service
without ports: when it has stayed alive `settle` seconds). Dying before the app is up fails
the app with the diagnosis; dying afterwards restarts it, counted, up to `max_restarts`.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO

from veil.atomic import write_json
from veil.cloud.compose_spec import ComposeSpec, Service, parse_compose
from veil.cloud.runtime import AppStatus, Deployment
from veil.errors import InputError

SIMULATED_NOTICE = "SIMULATED: process runtime, no CVM isolation"
_VARIABLE = re.compile(
    r"\$(?:\$|\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?-)([^}]*))?\}|([A-Za-z_][A-Za-z0-9_]*))"
)
#: Lines of a dead service's log quoted in its boot error.
TAIL_LINES = 10


def interpolate(text: str, variables: dict[str, str]) -> str:
    """Compose-style `${VAR}` interpolation; an unset variable without default is empty."""

    def value(match: re.Match[str]) -> str:
        whole = match.group(0)
        if whole == "$$":
            return "$"
        name = match.group(1) or match.group(4)
        operator, default = match.group(2), match.group(3)
        current = variables.get(name)
        if operator == ":-" and not current:
            return default or ""
        if operator == "-" and current is None:
            return default or ""
        return current or ""

    return _VARIABLE.sub(value, text)


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


def _accepts(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.2):
            return True
    except OSError:
        return False


def _process_start(pid: int) -> str | None:
    """The kernel's start time of `pid` (clock ticks since boot): a pid's identity over reuse."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[-1].split()
    return fields[19] if len(fields) > 19 else None


def _stamp(moment: float) -> str:
    return datetime.fromtimestamp(moment, UTC).isoformat(timespec="milliseconds")


def _moment(line: str) -> float | None:
    head = line.split(" ", 1)[0]
    try:
        return datetime.fromisoformat(head).timestamp()
    except ValueError:
        return None


@dataclass
class _ServiceProcess:
    """One running (or dead) service of an app."""

    service: Service
    argv: list[str]
    env: dict[str, str]
    ports: dict[int, int]
    cwd: Path
    log_file: Path
    process: subprocess.Popen[bytes] | None = None
    reader: threading.Thread | None = None
    started_at: float = 0.0
    ready: bool = False

    @property
    def pid_file(self) -> Path:
        return self.cwd.parent.parent / "pids" / f"{self.service.name}.json"

    def launch(self) -> None:
        self.cwd.mkdir(parents=True, exist_ok=True)
        self.ready = False
        self.started_at = time.time()
        self.process = subprocess.Popen(
            self.argv,
            cwd=self.cwd,
            env=self.env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: stop reaches its children too
        )
        pid = self.process.pid
        write_json(self.pid_file, {"pid": pid, "start": _process_start(pid)})
        stream = self.process.stdout
        assert stream is not None
        self.reader = threading.Thread(
            target=self._copy_log, args=(stream,), name=f"log-{self.service.name}", daemon=True
        )
        self.reader.start()

    def _copy_log(self, stream: IO[bytes]) -> None:
        """Every output line, stamped with the time it arrived, appended to the log."""
        with self.log_file.open("ab") as log:
            for raw in iter(stream.readline, b""):
                line = raw.rstrip(b"\r\n").decode(errors="replace")
                log.write(f"{_stamp(time.time())} {line}\n".encode())
                log.flush()
        stream.close()

    def exit_code(self) -> int | None:
        return None if self.process is None else self.process.poll()

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def terminate(self, grace: float) -> None:
        """SIGTERM to the process group, SIGKILL after `grace` seconds."""
        process = self.process
        if process is None:
            return
        if process.poll() is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        # a child that outlived its parent in the group dies with the group
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGKILL)
        if self.reader is not None:
            self.reader.join(timeout=2)

    def tail(self, lines: int = TAIL_LINES) -> list[str]:
        if self.reader is not None:
            self.reader.join(timeout=1)  # the last words of a dead process are in the pipe
        if not self.log_file.exists():
            return []
        with self.log_file.open(errors="replace") as log:
            return [line.rstrip("\n") for line in deque(log, maxlen=lines)]


@dataclass
class _App:
    deployment: Deployment
    services: dict[str, _ServiceProcess]
    state: str = "starting"
    error: str | None = None
    restarts: int = 0
    up_since: float | None = None


@dataclass
class ProcessRuntime:
    """Runs deployments as host processes under `root` (the worker's state directory)."""

    root: Path
    host: str = "127.0.0.1"
    settle: float = 1.0
    boot_timeout: float = 60.0
    max_restarts: int = 5
    stop_grace: float = 5.0
    name: str = "process"
    simulated: bool = True
    keys_inside: bool = False
    _apps: dict[str, _App] = field(default_factory=dict, init=False)
    _lock: threading.RLock = field(default_factory=threading.RLock, init=False)

    def __post_init__(self) -> None:
        self.reclaim()

    def _app_dir(self, deployment_id: str) -> Path:
        return self.root / "apps" / deployment_id

    def reclaim(self) -> int:
        """Kill what a previous runtime on this root left running, and clear its files.

        A worker that crashed leaves its apps' process groups behind (each runs in its own
        session). Their pids are on disk with the kernel's start time, so a pid since reused
        by an unrelated process is left alone. The control plane sends the deployments
        again on the next sync and they start fresh. Returns the process groups killed.
        """
        killed = 0
        for record in sorted(self.root.glob("apps/*/pids/*.json")):
            try:
                entry = json.loads(record.read_text())
                pid, start = int(entry["pid"]), entry["start"]
            except (OSError, ValueError, KeyError, TypeError):
                continue
            if start is not None and _process_start(pid) == start:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(pid, signal.SIGKILL)
                    killed += 1
        for leftover in self.root.glob("apps/*"):
            shutil.rmtree(leftover, ignore_errors=True)
        return killed

    # --- lifecycle -----------------------------------------------------------------

    def start(self, deployment: Deployment, env: dict[str, str]) -> AppStatus:
        with self._lock:
            current = self._apps.get(deployment.deployment_id)
            if (
                current is not None
                and current.deployment.revision == deployment.revision
                and current.state in ("starting", "running")
            ):
                return self._status(current)
            if current is not None:
                self._halt(current)
            app = self._prepare(deployment, env)
            self._apps[deployment.deployment_id] = app
            if app.state == "starting":
                for name, service in app.services.items():
                    try:
                        service.launch()
                    except OSError as error:
                        self._fail(app, f"service {name}: cannot run {service.argv[0]!r}"
                                        f" ({error.strerror or error})")  # fmt: skip
                        break
            return self._status(app)

    def _prepare(self, deployment: Deployment, env: dict[str, str]) -> _App:
        """Parse the compose and build every service's argv, env and ports, or fail it."""
        base = self._app_dir(deployment.deployment_id)
        (base / "logs").mkdir(parents=True, exist_ok=True)
        app = _App(deployment, {})
        try:
            spec = parse_compose(deployment.compose)
        except InputError as error:
            app.state, app.error = "failed", str(error)
            return app
        for name, service in spec.services.items():
            built = self._service(deployment, spec, service, env, base)
            if isinstance(built, str):
                app.state, app.error = "failed", built
                app.services.clear()
                return app
            app.services[name] = built
        return app

    def _service(
        self,
        deployment: Deployment,
        spec: ComposeSpec,
        service: Service,
        env: dict[str, str],
        base: Path,
    ) -> _ServiceProcess | str:
        ports = {mapping.target: free_port(self.host) for mapping in service.ports}
        port_vars = {f"VEIL_PORT_{target}": str(port) for target, port in ports.items()}
        if ports:
            port_vars["PORT"] = str(next(iter(ports.values())))
        # what dstack tells an app about itself, so a simulated app can claim its identity
        identity = {
            **deployment.platform_env,
            "VEIL_APP_ID": deployment.app_id,
            "VEIL_COMPOSE_HASH": deployment.compose_hash,
        }
        variables = {**env, **port_vars, **identity}
        if service.command is None:
            return (f"service {service.name}: no command; the process runtime runs each"
                    f" service's command and ignores its image ({service.image})")  # fmt: skip
        if isinstance(service.command, str):
            try:
                argv = shlex.split(interpolate(service.command, variables))
            except ValueError as error:
                return f"service {service.name}: command: {error}"
        else:
            argv = [interpolate(part, variables) for part in service.command]
        if not argv:
            return f"service {service.name}: empty command"
        cwd = base / "services" / service.name
        process_env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(cwd),
            "LANG": os.environ.get("LANG", "C.UTF-8"),
            **env,
            **{key: interpolate(value, variables) for key, value in service.environment.items()},
            **port_vars,
            **identity,
            "VEIL_SERVICE": service.name,
            "VEIL_SIMULATED": "1",
        }
        return _ServiceProcess(
            service=service,
            argv=argv,
            env=process_env,
            ports=ports,
            cwd=cwd,
            log_file=base / "logs" / f"{service.name}.log",
        )

    def stop(self, deployment_id: str) -> None:
        with self._lock:
            app = self._apps.get(deployment_id)
            if app is not None:
                self._halt(app)
                if app.state != "failed":
                    app.state = "stopped"

    def remove(self, deployment_id: str) -> None:
        with self._lock:
            app = self._apps.pop(deployment_id, None)
            if app is not None:
                self._halt(app)
            shutil.rmtree(self._app_dir(deployment_id), ignore_errors=True)

    def close(self) -> None:
        """Stop every app (the worker is shutting down); their files stay."""
        with self._lock:
            for app in self._apps.values():
                self._halt(app)

    def _halt(self, app: _App) -> None:
        for service in app.services.values():
            service.terminate(self.stop_grace)
        app.up_since = None

    def _fail(self, app: _App, error: str) -> None:
        self._halt(app)
        app.state, app.error = "failed", error

    # --- observation ---------------------------------------------------------------

    def deployments(self) -> list[str]:
        with self._lock:
            return list(self._apps)

    def status(self, deployment_id: str) -> AppStatus | None:
        with self._lock:
            app = self._apps.get(deployment_id)
            if app is None:
                return None
            self._observe(app)
            return self._status(app)

    def _observe(self, app: _App) -> None:
        """Advance boot, diagnose deaths, restart crashed services: all on each look."""
        if app.state not in ("starting", "running"):
            return
        now = time.time()
        for name, service in app.services.items():
            code = service.exit_code()
            if code is not None:
                tail = service.tail()
                detail = f"; last log lines: {' | '.join(tail)}" if tail else "; no output"
                if app.state == "starting" and app.up_since is None:
                    self._fail(app, f"boot failed: service {name} exited with code {code}"
                                    f" before it was up{detail}")  # fmt: skip
                    return
                if app.restarts >= self.max_restarts:
                    self._fail(app, f"service {name} crashed {app.restarts + 1} times; last exit"
                                    f" code {code}{detail}")  # fmt: skip
                    return
                app.restarts += 1
                app.state = "starting"
                try:
                    service.launch()
                except OSError as error:
                    self._fail(app, f"service {name}: restart failed ({error})")
                    return
                continue
            if not service.ready:
                if service.ports:
                    service.ready = all(_accepts(self.host, p) for p in service.ports.values())
                else:
                    service.ready = now - service.started_at >= self.settle
        if all(service.ready for service in app.services.values()):
            app.state = "running"
            app.up_since = app.up_since or now
            return
        waited = now - min(service.started_at for service in app.services.values())
        if waited > self.boot_timeout:
            late = [name for name, service in app.services.items() if not service.ready]
            service = app.services[late[0]]
            tail = service.tail()
            detail = f"; last log lines: {' | '.join(tail)}" if tail else "; no output"
            ports = ", ".join(str(target) for target in service.ports) or "none"
            self._fail(app, f"boot timed out after {self.boot_timeout:g} s: service {late[0]}"
                            f" not up (ports {ports}){detail}")  # fmt: skip

    def _status(self, app: _App) -> AppStatus:
        deployment = app.deployment
        ready = sum(1 for service in app.services.values() if service.ready)
        total = len(app.services)
        if app.state == "running":
            percent, stage = 100, f"running ({total}/{total} services up)"
        elif app.state == "starting":
            percent = 10 + 80 * ready // max(total, 1)
            stage = f"starting services ({ready}/{total} up)"
        else:
            percent, stage = 0, app.state
        ports = {
            str(target): f"{self.host}:{port}"
            for service in app.services.values()
            for target, port in service.ports.items()
        }
        return AppStatus(
            deployment_id=deployment.deployment_id,
            app_id=deployment.app_id,
            state=app.state,
            boot_progress=percent,
            stage=f"{stage}; {SIMULATED_NOTICE}",
            error=app.error,
            ports=ports if app.state in ("starting", "running") else {},
            restarts=app.restarts,
            simulated=True,
            revision=deployment.revision,
        )

    def wait(self, deployment_id: str, states: tuple[str, ...], timeout: float) -> AppStatus:
        """Poll until the app is in one of `states` (tests, benches, the CLI's --wait)."""
        deadline = time.monotonic() + timeout
        while True:
            status = self.status(deployment_id)
            if status is None:
                raise InputError(f"deployment {deployment_id}: not held by this runtime")
            if status.state in states or time.monotonic() > deadline:
                return status
            time.sleep(0.05)

    def processes(self, deployment_id: str) -> dict[str, int | None]:
        """Each service's live pid (None when it is not running): what telemetry samples."""
        with self._lock:
            app = self._apps.get(deployment_id)
            if app is None:
                return {}
            return {
                name: service.process.pid if service.alive() and service.process else None
                for name, service in app.services.items()
            }

    def logs(self, deployment_id: str, service: str, since: float = 0.0) -> list[str]:
        file = self._app_dir(deployment_id) / "logs" / f"{service}.log"
        if not file.exists():
            raise InputError(f"deployment {deployment_id}: no log for service {service!r}")
        lines = []
        with file.open(errors="replace") as log:
            for line in log:
                moment = _moment(line)
                if moment is None or moment >= since:
                    lines.append(line.rstrip("\n"))
        return lines
