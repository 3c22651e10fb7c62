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
    operator_key = settings.pop("operator_key", None)
    config = CloudConfig(**settings)
    if deployment:
        config.is_active = registry_check(Path(deployment), rpc)
        config.network = network_watcher(Path(deployment), rpc)
        config.escrow, config.operator = market_billing(Path(deployment), rpc, operator_key)
    return config


def network_watcher(deployment: Path, rpc: str | None) -> Any:
    """The chain reader behind /metrics' network families and the console's Network page."""
    from veil.chain import deployment as deployments
    from veil.chain.client import Chain
    from veil.network.metrics import NetworkWatcher

    return NetworkWatcher(Chain.open(deployments.load(deployment), rpc))


def market_billing(deployment: Path, rpc: str | None, operator_key: str | None) -> Any:
    """(Escrow, operator account) when the deployment has a Market and an operator key is
    given, else (None, None): billing needs both the market and a key that submits the
    customers' signed lease requests (and pays their gas)."""
    from eth_account import Account

    from veil.chain import deployment as deployments
    from veil.chain.client import Chain
    from veil.errors import InputError
    from veil.market.escrow import Escrow

    record = deployments.load(deployment)
    if "Market" not in record.contracts:
        return None, None
    if not operator_key:
        return None, None  # `veil cloud serve` says that apps run unbilled, and why
    try:
        operator = Account.from_key(operator_key)
    except (ValueError, TypeError):
        raise InputError("--operator-key: not a private key (0x + 64 hex digits)") from None
    return Escrow(Chain.open(record, rpc)), operator


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
