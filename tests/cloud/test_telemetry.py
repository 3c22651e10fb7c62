"""Worker telemetry: process-tree sampling, GPUs through an NVML module object, new log lines
without duplicates, and signed shipping that the control plane accepts."""

from __future__ import annotations

import subprocess
import sys
import time
import types
from typing import Any

import pytest

from veil.cloud import telemetry
from veil.cloud.telemetry import LogFollower, ProcessSampler, sample_gpus, sample_machine
from veil.errors import VeilError


def _busy(children: int = 0) -> subprocess.Popen[bytes]:
    code = (
        "import os, time\n"
        f"for _ in range({children}):\n"
        "    if os.fork() == 0:\n"
        "        break\n"
        "end = time.time() + 30\n"
        "while time.time() < end: pass\n"
    )
    return subprocess.Popen([sys.executable, "-c", code])


def test_cpu_of_a_busy_process_tree_counts_every_process() -> None:
    process = _busy(children=1)
    try:
        time.sleep(0.3)
        sampler = ProcessSampler()
        first = sampler.service(process.pid)
        assert first["up"] and first["cpu_pct"] == 0.0  # no interval yet
        assert first["processes"] == 2 and first["memory_bytes"] > 1 << 20
        time.sleep(1.0)
        second = sampler.service(process.pid)
        assert second["cpu_pct"] > 5.0  # two spinning processes on a loaded 2-core machine
    finally:
        process.kill()
        process.wait()


def test_a_dead_or_missing_process_reads_down() -> None:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    sampler = ProcessSampler()
    assert sampler.service(process.pid)["up"] is False
    assert sampler.service(None) == {
        "up": False, "cpu_pct": 0.0, "memory_bytes": 0, "read_bytes": 0,
        "write_bytes": 0, "processes": 0,
    }  # fmt: skip


class FakeNvml(types.ModuleType):
    """What `pynvml` exposes, for two H100s; a GPU host runs the same calls on the real one."""

    NVML_TEMPERATURE_GPU = 0

    def __init__(self, fail_init: bool = False, broken: bool = False) -> None:
        super().__init__("pynvml")
        self.fail_init = fail_init
        self.broken = broken

    def nvmlInit(self) -> None:
        if self.fail_init:
            raise RuntimeError("NVML Shared Library Not Found")

    def nvmlDeviceGetCount(self) -> int:
        if self.broken:
            raise RuntimeError("GPU is lost")
        return 2

    def nvmlDeviceGetHandleByIndex(self, index: int) -> int:
        return index

    def nvmlDeviceGetUtilizationRates(self, handle: int) -> Any:
        return types.SimpleNamespace(gpu=[35, 90][handle], memory=10)

    def nvmlDeviceGetMemoryInfo(self, handle: int) -> Any:
        return types.SimpleNamespace(used=(handle + 1) * 10 << 30, total=80 << 30, free=0)

    def nvmlDeviceGetName(self, handle: int) -> bytes:
        return b"NVIDIA H100 80GB HBM3"

    def nvmlDeviceGetTemperature(self, handle: int, sensor: int) -> int:
        return 61

    def nvmlDeviceGetPowerUsage(self, handle: int) -> int:
        return 312_500  # milliwatts


def test_gpus_through_nvml() -> None:
    gpus = sample_gpus(FakeNvml())
    assert [g["util_pct"] for g in gpus] == [35.0, 90.0]
    assert gpus[1]["memory_used_bytes"] == 20 << 30 and gpus[0]["memory_total_bytes"] == 80 << 30
    assert gpus[0]["name"] == "NVIDIA H100 80GB HBM3" and gpus[0]["power_w"] == 312.5
    assert gpus[0]["temperature_c"] == 61
    assert sample_gpus(None) == []
    assert sample_gpus(FakeNvml(broken=True)) == []  # a lost GPU does not break the sample


def test_nvml_is_used_only_where_it_loads(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pynvml", FakeNvml(fail_init=True))
    assert telemetry.load_nvml() is None
    working = FakeNvml()
    monkeypatch.setitem(sys.modules, "pynvml", working)
    assert telemetry.load_nvml() is working


def test_machine_sample_has_real_numbers(tmp_path: Any) -> None:
    machine = sample_machine(str(tmp_path), FakeNvml())
    assert machine["memory_total_bytes"] > machine["memory_used_bytes"] > 0
    assert machine["disk_total_bytes"] > 0 and machine["cpu_count"] >= 1
    assert len(machine["gpus"]) == 2


class Lines:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def logs(self, deployment_id: str, service: str, since: float = 0.0) -> list[str]:
        if service == "missing":
            raise VeilError("no log")
        return [line for line in self.lines if _at(line) >= since]


def _at(line: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(line.split(" ", 1)[0]).timestamp()


def test_log_follower_ships_each_line_once_even_within_one_millisecond() -> None:
    source = Lines()
    follower = LogFollower()
    source.lines += ["2026-01-01T00:00:00.001+00:00 a", "2026-01-01T00:00:00.001+00:00 b"]
    assert [x["line"] for x in follower.new_lines(source, "d", "web")] == ["a", "b"]
    source.lines += ["2026-01-01T00:00:00.001+00:00 c", "2026-01-01T00:00:00.002+00:00 d"]
    shipped = follower.new_lines(source, "d", "web")
    assert [x["line"] for x in shipped] == ["c", "d"]
    assert shipped[1]["at"] == 1767225600002 and shipped[1]["service"] == "web"
    assert follower.new_lines(source, "d", "web") == []
    assert follower.new_lines(source, "d", "missing") == []
    follower.forget([])
    assert len(follower.new_lines(source, "d", "web")) == 4  # a forgotten app starts over
