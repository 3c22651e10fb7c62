"""What a customer can rent: CPU TDX sizes and GPU models × count.

One catalogue for the scheduler (capacity to reserve) and the market (price per
second per type), so a name means the same machine share in both.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from veil.errors import InputError

#: GPU models by the registry's accelerator ids (`veil.compute.attestation.GpuModel`).
GPU_MODELS = {"h100": 1, "h200": 2, "b200": 3}
#: GPUs per instance a customer may ask for.
MAX_GPUS = 8


@dataclass(frozen=True)
class InstanceType:
    name: str
    vcpu: int
    memory_mb: int
    disk_gb: int
    gpu_model: int = 0  # 0 = CPU only (GpuModel.CPU_TDX)
    gpu_count: int = 0


CPU_TYPES = {
    "tdx.small": InstanceType("tdx.small", vcpu=1, memory_mb=2_048, disk_gb=20),
    "tdx.medium": InstanceType("tdx.medium", vcpu=2, memory_mb=4_096, disk_gb=40),
    "tdx.large": InstanceType("tdx.large", vcpu=4, memory_mb=8_192, disk_gb=80),
}
#: Host share that comes with each GPU (Phala Cloud sizes GPU CVMs the same way).
_PER_GPU = {"vcpu": 12, "memory_mb": 131_072, "disk_gb": 400}
_GPU_NAME = re.compile(r"^(h100|h200|b200)(?:x([1-9]))?$")


def instance_type(name: str) -> InstanceType:
    """`tdx.small|medium|large`, or `h100|h200|b200` optionally `x<count>` (e.g. `h200x2`)."""
    if name in CPU_TYPES:
        return CPU_TYPES[name]
    match = _GPU_NAME.match(name)
    if match is None:
        known = ", ".join([*CPU_TYPES, "h100[xN]", "h200[xN]", "b200[xN]"])
        raise InputError(f"unknown instance type {name!r} (known: {known})")
    count = int(match.group(2) or 1)
    if count > MAX_GPUS:
        raise InputError(f"instance type {name!r}: at most {MAX_GPUS} GPUs")
    return InstanceType(
        name=name,
        vcpu=_PER_GPU["vcpu"] * count,
        memory_mb=_PER_GPU["memory_mb"] * count,
        disk_gb=_PER_GPU["disk_gb"] * count,
        gpu_model=GPU_MODELS[match.group(1)],
        gpu_count=count,
    )
