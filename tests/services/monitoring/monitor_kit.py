"""Signed telemetry shipments for the monitoring tests."""

from __future__ import annotations

import json
from typing import Any

from cloud_kit import CloudKit
from eth_account.messages import encode_defunct

from veil.cloud.worker_auth import telemetry_message

MACHINE = {
    "cpu_pct": 12.5,
    "cpu_count": 4,
    "memory_used_bytes": 2 << 30,
    "memory_total_bytes": 8 << 30,
    "disk_used_bytes": 10 << 30,
    "disk_total_bytes": 100 << 30,
    "net_rx_bytes": 1000,
    "net_tx_bytes": 2000,
    "gpus": [],
}


def app_entry(
    deployment: dict[str, Any],
    *,
    cpu: float = 25.0,
    memory: int = 64 << 20,
    restarts: int = 0,
    logs: list[tuple[str, int, str]] = (),  # type: ignore[assignment]
) -> dict[str, Any]:
    return {
        "deployment_id": deployment["deployment_id"],
        "app_id": deployment["app_id"],
        "state": "running",
        "restarts": restarts,
        "services": {
            "web": {"up": True, "cpu_pct": cpu, "memory_bytes": memory, "processes": 1},
        },
        "logs": [{"service": s, "at": at, "line": line} for s, at, line in logs],
    }


def ship(
    kit: CloudKit,
    worker: Any,
    apps: list[dict[str, Any]],
    *,
    machine: dict[str, Any] | None = None,
    timestamp: int | None = None,
    signer: Any = None,
) -> Any:
    body = {
        "worker": worker.address,
        "at": int(kit.clock()),
        "machine": machine or MACHINE,
        "apps": apps,
    }
    raw = json.dumps(body).encode()
    stamp = int(kit.clock()) if timestamp is None else timestamp
    signature = (
        (signer or worker)
        .sign_message(encode_defunct(text=telemetry_message(stamp, raw)))
        .signature.hex()
    )
    return kit.client.post(
        "/v1/workers/telemetry",
        content=raw,
        headers={
            "Content-Type": "application/json",
            "X-Veil-Worker": worker.address,
            "X-Veil-Timestamp": str(stamp),
            "X-Veil-Signature": signature,
        },
    )
