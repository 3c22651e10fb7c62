"""What a worker measures about its apps and itself, and how it ships that with the logs.

dstack's guest agent exports a few machine gauges and nothing per container; customers
want to see *their* service's CPU, memory, disk, network and restarts, and its GPU. The
worker samples each service's process tree (psutil: the process and all its children, so
a shell wrapper or a forking server counts whole), the machine, and every GPU through NVML
(`nvidia-ml-py`, imported as `pynvml`). NVML is only consulted where it loads: on a machine
without an NVIDIA driver `nvmlInit` fails and the sample simply has no GPUs. The tests run
the same code path against a fake `pynvml` module object, which is how it is exercised on
machines without a GPU; on a GPU host the real module takes its place unchanged.

Shipping: `POST /v1/workers/telemetry`, signed like the sync (EIP-191 by the worker key over
`veil-worker-telemetry:{timestamp}:{sha256(body) hex}`, a distinct tag so a signed sync can
never be replayed as telemetry). The body carries, per deployment, one metrics sample and the
log lines written since the last shipment (per service, with the time each line arrived).
CPU percentages are over the interval since the previous sample of the same process, so the
first sample of a process reads 0.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

import httpx
import psutil
from eth_account.signers.local import LocalAccount

from veil.cloud.worker_auth import TELEMETRY, signed_headers
from veil.errors import VeilError

log = logging.getLogger("veil.cloud.telemetry")

#: At most this many log lines per service per shipment (the rest go in the next one).
MAX_LINES_PER_SERVICE = 2000
#: A log line longer than this is cut (a runaway binary blob must not fill the database).
MAX_LINE_CHARS = 4000


class TelemetryError(VeilError):
    """The control plane could not be reached or refused the telemetry."""


# --- GPUs ---------------------------------------------------------------------------


def load_nvml() -> Any:
    """The real `pynvml` when the NVIDIA driver answers; None on a machine without one."""
    try:
        import pynvml
    except ImportError:
        return None
    try:
        pynvml.nvmlInit()
    except Exception:  # NVMLError_LibraryNotFound, DriverNotLoaded, ...: no GPU here
        return None
    return pynvml


def sample_gpus(nvml: Any) -> list[dict[str, Any]]:
    """Utilisation, memory, temperature and power of every GPU NVML sees."""
    if nvml is None:
        return []
    gpus = []
    try:
        count = int(nvml.nvmlDeviceGetCount())
        for index in range(count):
            handle = nvml.nvmlDeviceGetHandleByIndex(index)
            rates = nvml.nvmlDeviceGetUtilizationRates(handle)
            memory = nvml.nvmlDeviceGetMemoryInfo(handle)
            name = nvml.nvmlDeviceGetName(handle)
            entry: dict[str, Any] = {
                "index": index,
                "name": name.decode() if isinstance(name, bytes) else str(name),
                "util_pct": float(rates.gpu),
                "memory_used_bytes": int(memory.used),
                "memory_total_bytes": int(memory.total),
            }
            try:
                entry["temperature_c"] = int(
                    nvml.nvmlDeviceGetTemperature(handle, nvml.NVML_TEMPERATURE_GPU)
                )
                entry["power_w"] = float(nvml.nvmlDeviceGetPowerUsage(handle)) / 1000.0
            except Exception:  # not every board reports these
                pass
            gpus.append(entry)
    except Exception as error:
        log.warning("NVML: %s", error)
    return gpus


# --- processes and the machine ------------------------------------------------------


@dataclass
class _Seen:
    cpu_seconds: float
    at: float


@dataclass
class ProcessSampler:
    """Per-service samples of a process tree, with CPU % over the time between samples."""

    clock: Callable[[], float] = time.monotonic
    _seen: dict[tuple[int, float], _Seen] = field(default_factory=dict, init=False)

    def service(self, pid: int | None) -> dict[str, Any]:
        """CPU %, resident memory, bytes read/written, threads of `pid` and its children."""
        empty: dict[str, Any] = {
            "up": False,
            "cpu_pct": 0.0,
            "memory_bytes": 0,
            "read_bytes": 0,
            "write_bytes": 0,
            "processes": 0,
        }
        if pid is None:
            return empty
        try:
            root = psutil.Process(pid)
            tree = [root, *root.children(recursive=True)]
        except psutil.Error:
            return empty
        cpu = 0.0
        memory = read = written = alive = 0
        for process in tree:
            try:
                with process.oneshot():
                    times = process.cpu_times()
                    cpu += times.user + times.system + times.children_user + times.children_system
                    memory += process.memory_info().rss
                    try:
                        io = process.io_counters()
                        read += io.read_bytes
                        written += io.write_bytes
                    except (psutil.Error, AttributeError):
                        pass
                    alive += 1
            except psutil.Error:
                continue
        now = self.clock()
        key = (pid, root.create_time())
        before = self._seen.get(key)
        self._seen[key] = _Seen(cpu, now)
        percent = 0.0
        if before is not None and now > before.at:
            percent = max(0.0, (cpu - before.cpu_seconds) / (now - before.at) * 100.0)
        return {
            "up": alive > 0,
            "cpu_pct": round(percent, 2),
            "memory_bytes": memory,
            "read_bytes": read,
            "write_bytes": written,
            "processes": alive,
        }

    def forget(self, live: Iterable[int]) -> None:
        keep = set(live)
        for key in [key for key in self._seen if key[0] not in keep]:
            del self._seen[key]


def sample_machine(disk_path: str, nvml: Any) -> dict[str, Any]:
    """The whole machine: CPU %, memory, the disk holding the apps, network, GPUs."""
    memory = psutil.virtual_memory()
    disk = psutil.disk_usage(disk_path)
    net = psutil.net_io_counters()
    return {
        "cpu_pct": float(psutil.cpu_percent(interval=None)),
        "cpu_count": psutil.cpu_count() or 1,
        "memory_used_bytes": int(memory.total - memory.available),
        "memory_total_bytes": int(memory.total),
        "disk_used_bytes": int(disk.used),
        "disk_total_bytes": int(disk.total),
        "net_rx_bytes": int(net.bytes_recv),
        "net_tx_bytes": int(net.bytes_sent),
        "gpus": sample_gpus(nvml),
    }


# --- logs ---------------------------------------------------------------------------


def _moment(line: str) -> float | None:
    try:
        return datetime.fromisoformat(line.split(" ", 1)[0]).timestamp()
    except ValueError:
        return None


@dataclass
class _Cursor:
    """Where shipping stopped in one service's log: the last time and lines at that time."""

    moment: float = 0.0
    at_moment: int = 0


class LogSource(Protocol):
    def logs(self, deployment_id: str, service: str, since: float = 0.0) -> list[str]: ...


@dataclass
class LogFollower:
    """New lines of each service's timestamped log since the previous call."""

    _cursors: dict[tuple[str, str], _Cursor] = field(default_factory=dict, init=False)

    def new_lines(
        self, source: LogSource, deployment_id: str, service: str
    ) -> list[dict[str, Any]]:
        cursor = self._cursors.setdefault((deployment_id, service), _Cursor())
        try:
            lines = source.logs(deployment_id, service, cursor.moment)
        except VeilError:
            return []
        out: list[dict[str, Any]] = []
        skip = cursor.at_moment
        for raw in lines:
            moment = _moment(raw)
            if moment is None:
                continue
            if moment == cursor.moment and skip > 0:
                skip -= 1  # shipped last time (same millisecond)
                continue
            text = raw.split(" ", 1)[1] if " " in raw else ""
            out.append(
                {"service": service, "at": int(moment * 1000), "line": text[:MAX_LINE_CHARS]}
            )
            if moment == cursor.moment:
                cursor.at_moment += 1
            else:
                cursor.moment, cursor.at_moment = moment, 1
            if len(out) >= MAX_LINES_PER_SERVICE:
                break
        return out

    def forget(self, live: Iterable[str]) -> None:
        keep = set(live)
        for key in [key for key in self._cursors if key[0] not in keep]:
            del self._cursors[key]


# --- what the agent calls -----------------------------------------------------------


class ProcessTable(Protocol):
    """A runtime that can name each service's process (the process runtime can)."""

    def processes(self, deployment_id: str) -> Mapping[str, int | None]: ...


@dataclass
class TelemetryShipper:
    """Samples and ships after each sync round; failures are logged, never fatal."""

    url: str
    worker: LocalAccount
    disk_path: str = "/"
    nvml: Any = None
    timeout: float = 10.0
    clock: Callable[[], float] = time.time
    transport: httpx.BaseTransport | None = None
    sampler: ProcessSampler = field(default_factory=ProcessSampler)
    follower: LogFollower = field(default_factory=LogFollower)
    _restarts: dict[str, int] = field(default_factory=dict, init=False)

    def body(self, runtime: Any, apps: Mapping[str, str]) -> dict[str, Any]:
        """The shipment for `apps` (deployment id -> app id) held by `runtime`."""
        entries = []
        pids: list[int] = []
        for deployment_id, app_id in apps.items():
            table = getattr(runtime, "processes", None)
            processes: Mapping[str, int | None] = table(deployment_id) if table else {}
            status = runtime.status(deployment_id)
            services = {}
            logs: list[dict[str, Any]] = []
            for name, pid in processes.items():
                services[name] = self.sampler.service(pid)
                if pid is not None:
                    pids.append(pid)
                logs.extend(self.follower.new_lines(runtime, deployment_id, name))
            logs.sort(key=lambda item: item["at"])
            entries.append(
                {
                    "deployment_id": deployment_id,
                    "app_id": app_id,
                    "state": status.state if status is not None else "unknown",
                    "restarts": status.restarts if status is not None else 0,
                    "services": services,
                    "logs": logs,
                }
            )
        self.sampler.forget(pids)
        self.follower.forget(apps)
        return {
            "worker": self.worker.address,
            "at": int(self.clock()),
            "machine": sample_machine(self.disk_path, self.nvml),
            "apps": entries,
        }

    def send(self, body: dict[str, Any]) -> dict[str, Any]:
        raw = json.dumps(body, separators=(",", ":")).encode()
        headers = signed_headers(self.worker, TELEMETRY, int(self.clock()), raw)
        target = self.url.rstrip("/") + "/v1/workers/telemetry"
        try:
            with httpx.Client(timeout=self.timeout, transport=self.transport) as client:
                response = client.post(target, content=raw, headers=headers)
        except httpx.HTTPError as error:
            raise TelemetryError(f"control plane {self.url}: unreachable ({error})") from None
        if response.status_code != 200:
            raise TelemetryError(
                f"control plane refused telemetry: HTTP {response.status_code}"
                f" {response.text[:200]}"
            )
        answer: dict[str, Any] = response.json()
        return answer

    def ship(self, runtime: Any, apps: Mapping[str, str]) -> None:
        try:
            self.send(self.body(runtime, apps))
        except VeilError as error:
            log.warning("telemetry: %s", error)
