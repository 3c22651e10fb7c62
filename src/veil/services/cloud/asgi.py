"""The ASGI entry uvicorn imports in each worker process (`--workers N`).

Settings travel in `$VEIL_CLOUD_CONFIG` (JSON written by `veil cloud serve`), so every
worker process builds the same app; the parent upgrades the database before spawning
them, so their own upgrade finds nothing to do.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from fastapi import FastAPI

from veil.services.cloud.app import create_app
from veil.services.cloud.service import CloudConfig

CONFIG_ENV = "VEIL_CLOUD_CONFIG"


def config_from_json(data: dict[str, Any]) -> CloudConfig:
    settings = dict(data)
    deployment = settings.pop("deployment", None)
    rpc = settings.pop("rpc", None)
    config = CloudConfig(**settings)
    if deployment:
        config.is_active = registry_check(Path(deployment), rpc)
        config.network = network_watcher(Path(deployment), rpc)
    return config


def network_watcher(deployment: Path, rpc: str | None) -> Any:
    """The chain reader behind /metrics' network families and the console's Network page."""
    from veil.chain import deployment as deployments
    from veil.chain.client import Chain
    from veil.network.metrics import NetworkWatcher

    return NetworkWatcher(Chain.open(deployments.load(deployment), rpc))


def registry_check(deployment: Path, rpc: str | None) -> Any:
    """`isActive(worker)` on the deployment's ComputeRegistry."""
    from veil.chain import deployment as deployments
    from veil.chain.client import Chain
    from veil.compute.registry import RegistryClient

    registry = RegistryClient.from_chain(Chain.open(deployments.load(deployment), rpc))

    def is_active(worker: str) -> bool:
        return bool(registry.contract.functions.isActive(worker).call())

    return is_active


def app() -> FastAPI:
    """uvicorn factory (`--factory veil.services.cloud.asgi:app`)."""
    return create_app(config_from_json(json.loads(os.environ[CONFIG_ENV])))
