"""Alerts as signed webhooks: an app went down or came back, an app's services restarted,
a provider's worker went offline.

An account registers URLs (`POST /v1/alerts/webhooks`, answered once with the signing
secret); every few seconds the control plane compares what it knows with its previous look
and posts what changed to the owner's URLs (the provider's, for a worker). Deliveries are
signed by billing's own signer (`veil.market.webhooks.sign`, Stripe's scheme): header
`Veil-Signature: t=<unix>,v1=<hex HMAC-SHA256 of "<t>.<body>">`, with `Veil-Event` and
`Veil-Delivery` (an id to deduplicate retries); a failed delivery is retried with
exponential backoff (0.5 s, 1 s, 2 s, ...) up to `attempts` times.

Low runway is billing's `lease.low_balance` event, sent by `veil.market.webhooks` where
billing runs; this module does not duplicate it. Each replica evaluates on its own, so with
several replicas a receiver may see an event once per replica: deduplicate on the event's
`data` (or run alerts on one replica).
"""

from __future__ import annotations

import json
import logging
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, Field
from sqlalchemy import delete, select, text

from veil.market.webhooks import SIGNATURE_HEADER, sign
from veil.services.cloud.api_errors import ApiError
from veil.services.cloud.apps import READ, WRITE
from veil.services.cloud.auth import Principal, state_of
from veil.services.cloud.models import AlertWebhook
from veil.services.cloud.service import CloudState

log = logging.getLogger("veil.services.cloud.alerts")
router = APIRouter(tags=["alerts"])

APP_DOWN = "app.down"
APP_RECOVERED = "app.recovered"
APP_RESTARTED = "app.restarted"
WORKER_OFFLINE = "worker.offline"
WORKER_ONLINE = "worker.online"
MAX_WEBHOOKS = 10


# --- registering URLs ---------------------------------------------------------------


class WebhookIn(BaseModel):
    url: str = Field(min_length=8, max_length=500, pattern=r"^https?://")


def _out(hook: AlertWebhook, secret: bool = False) -> dict[str, Any]:
    body: dict[str, Any] = {"id": hook.id, "url": hook.url, "created_at": hook.created_at}
    if secret:
        body["secret"] = hook.secret
    return body


@router.post("/v1/alerts/webhooks")
def add_webhook(
    body: WebhookIn, request: Request, who: Principal = Depends(WRITE)
) -> dict[str, Any]:
    """Send this account's alerts to `url`; the answer's `secret` (shown once) signs them."""
    state = state_of(request)
    with state.sessions() as session, session.begin():
        count = len(
            session.scalars(select(AlertWebhook.id).where(AlertWebhook.owner == who.address)).all()
        )
        if count >= MAX_WEBHOOKS:
            raise ApiError(409, "too_many_webhooks", f"at most {MAX_WEBHOOKS} webhooks per account")
        hook = AlertWebhook(
            id="whk_" + secrets.token_hex(8),
            owner=who.address,
            url=body.url,
            secret=secrets.token_hex(32),
            created_at=state.now(),
        )
        session.add(hook)
        return _out(hook, secret=True)


@router.get("/v1/alerts/webhooks")
def list_webhooks(request: Request, who: Principal = Depends(READ)) -> list[dict[str, Any]]:
    with state_of(request).sessions() as session:
        hooks = session.scalars(select(AlertWebhook).where(AlertWebhook.owner == who.address)).all()
        return [_out(hook) for hook in hooks]


@router.delete("/v1/alerts/webhooks/{hook_id}")
def delete_webhook(
    hook_id: str, request: Request, who: Principal = Depends(WRITE)
) -> dict[str, Any]:
    with state_of(request).sessions() as session, session.begin():
        gone = session.execute(
            delete(AlertWebhook).where(
                AlertWebhook.id == hook_id, AlertWebhook.owner == who.address
            )
        )
        if gone.rowcount != 1:  # type: ignore[attr-defined]
            raise ApiError(404, "webhook_not_found", f"no webhook {hook_id} on this account")
    return {"id": hook_id, "deleted": True}


# --- evaluating and delivering ------------------------------------------------------

_APPS = text(
    "SELECT a.app_id, a.owner, a.name, a.status, a.status_reason, a.desired FROM apps a "
    "WHERE a.deleted_at IS NULL"
)
_RESTARTS = text(
    "SELECT app_id, MAX(restarts) AS restarts FROM app_metrics WHERE at >= :since GROUP BY app_id"
)
_WORKERS = text("SELECT address, provider, online, last_seen FROM workers")


@dataclass
class Alert:
    owner: str
    kind: str
    data: dict[str, Any]


@dataclass
class Alerts:
    """Compares each look with the previous one; the first look only learns the state."""

    attempts: int = 4
    backoff: float = 0.5
    timeout: float = 10.0
    transport: httpx.BaseTransport | None = None
    clock: Callable[[], float] = time.time
    _apps: dict[str, tuple[str, str]] | None = field(default=None, init=False)
    _restarts: dict[str, int] = field(default_factory=dict, init=False)
    _workers: dict[str, bool] | None = field(default=None, init=False)

    def evaluate(self, state: CloudState) -> list[Alert]:
        with state.engine.connect() as connection:
            apps = connection.execute(_APPS).all()
            restarts = {
                row.app_id: int(row.restarts)
                for row in connection.execute(_RESTARTS, {"since": state.now() - 600})
            }
            workers = connection.execute(_WORKERS).all()
        alerts: list[Alert] = []
        first = self._apps is None
        before_apps = self._apps or {}
        self._apps = {}
        for row in apps:
            self._apps[row.app_id] = (row.status, row.owner)
            was = before_apps.get(row.app_id, ("", ""))[0]
            if first or row.desired == "stopped":
                continue
            data = {"app_id": row.app_id, "name": row.name, "status": row.status}
            if was == "running" and row.status != "running":
                alerts.append(Alert(row.owner, APP_DOWN, {**data, "reason": row.status_reason}))
            elif was and was != "running" and row.status == "running":
                alerts.append(Alert(row.owner, APP_RECOVERED, data))
        owners = {row.app_id: row.owner for row in apps}
        for app_id, count in restarts.items():
            seen = self._restarts.get(app_id)
            self._restarts[app_id] = count
            if seen is not None and count > seen and app_id in owners and not first:
                data = {"app_id": app_id, "restarts": count, "new": count - seen}
                alerts.append(Alert(owners[app_id], APP_RESTARTED, data))
        before_workers = self._workers
        self._workers = {row.address: bool(row.online) for row in workers}
        if before_workers is not None:
            for row in workers:
                was_online = before_workers.get(row.address)
                if was_online and not row.online:
                    data = {"worker": row.address, "last_seen": row.last_seen}
                    alerts.append(Alert(row.provider, WORKER_OFFLINE, data))
                elif was_online is False and row.online:
                    alerts.append(Alert(row.provider, WORKER_ONLINE, {"worker": row.address}))
        return alerts

    def envelope(self, alert: Alert) -> tuple[str, bytes]:
        delivery = "evt_" + secrets.token_hex(12)
        body = {"id": delivery, "type": alert.kind, "created": int(self.clock()),
                "data": alert.data}  # fmt: skip
        return delivery, json.dumps(body, separators=(",", ":"), sort_keys=True).encode()

    def deliver(self, url: str, secret: str, kind: str, delivery: str, body: bytes) -> bool:
        """POST until a 2xx or `attempts` tries; each try signed with its own timestamp."""
        with httpx.Client(timeout=self.timeout, transport=self.transport) as client:
            for attempt in range(self.attempts):
                headers = {
                    "Content-Type": "application/json",
                    SIGNATURE_HEADER: sign(secret.encode(), body, int(self.clock())),
                    "Veil-Event": kind,
                    "Veil-Delivery": delivery,
                }
                try:
                    if client.post(url, content=body, headers=headers).is_success:
                        return True
                except httpx.HTTPError as error:
                    log.info("alert %s to %s: %s", delivery, url, error)
                if attempt + 1 < self.attempts:
                    time.sleep(self.backoff * 2**attempt)
        log.warning("alert %s to %s: not delivered after %d tries", delivery, url, self.attempts)
        return False

    def tick(self, state: CloudState) -> list[Alert]:
        """One look; deliveries run in their own threads (a slow receiver delays no one)."""
        alerts = self.evaluate(state)
        if not alerts:
            return alerts
        owners = {alert.owner for alert in alerts}
        with state.sessions() as session:
            hooks = session.scalars(
                select(AlertWebhook).where(AlertWebhook.owner.in_(owners))
            ).all()
            targets = [(hook.owner, hook.url, hook.secret) for hook in hooks]
        for alert in alerts:
            delivery, body = self.envelope(alert)
            for owner, url, secret in targets:
                if owner == alert.owner:
                    threading.Thread(
                        target=self.deliver,
                        args=(url, secret, alert.kind, delivery, body),
                        name="veil-alert",
                        daemon=True,
                    ).start()
        return alerts
