"""Deployments the runtime, agent and gateway tests share, built around echo_app.py."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from veil.cloud.compose_spec import app_compose, app_compose_hash
from veil.cloud.runtime import Deployment

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from server_thread import ServerThread

__all__ = ["APP_ID", "ServerThread", "deployment", "deployment_json", "echo_compose"]

ECHO_APP = str(Path(__file__).with_name("echo_app.py"))
APP_ID = "0x" + "ab" * 20


def echo_compose(extra_env: dict[str, str] | None = None, command: Any = None) -> str:
    """Compose text for one `web` service running echo_app.py on `${PORT}`."""
    service = {
        "image": "python:3.12-slim",
        "command": command if command is not None else [sys.executable, ECHO_APP, "${PORT:-8080}"],
        "environment": {"GREETING": "hello ${NAME:-world}", **(extra_env or {})},
        "ports": ["8080"],
    }
    return json.dumps({"services": {"web": service}})


def deployment(
    compose: str | None = None,
    *,
    deployment_id: str = "dep-1",
    app_id: str = APP_ID,
    desired: str = "running",
    encrypted_env: str = "00",
) -> Deployment:
    text = compose if compose is not None else echo_compose()
    document = app_compose("echo", text, ["SECRET", "NAME"])
    return Deployment(
        deployment_id=deployment_id,
        app_id=app_id,
        name="echo",
        desired=desired,
        compose=text,
        app_compose=document,
        compose_hash=app_compose_hash(document),
        encrypted_env=encrypted_env,
        instance_type="tdx.small",
        kms_url="http://127.0.0.1:1",
    )


def deployment_json(item: Deployment) -> dict[str, Any]:
    return {
        "deployment_id": item.deployment_id,
        "app_id": item.app_id,
        "name": item.name,
        "desired": item.desired,
        "compose": item.compose,
        "app_compose": item.app_compose,
        "compose_hash": item.compose_hash,
        "encrypted_env": item.encrypted_env,
        "instance_type": item.instance_type,
        "kms_url": item.kms_url,
    }
