"""Billing: leases on the market escrow follow deployments; webhooks tell customers.

Who does what, and why:
- The lease's provider is the provider of the worker the app is placed on, so a lease
  can only be asked for after placement. The customer signs an EIP-712 `OpenLease` for
  exactly what `GET /v1/apps/{id}/lease-request` describes, and `POST /v1/apps/{id}/lease`
  has the control plane submit it (`openLeaseFor`) with its operator key: the operator
  pays the gas, the customer's signature alone moves the customer's money.
- A lease belongs to one app on one instance type and one provider (its market
  deployment id is `veil-cloud:{app}:{created}:{type}:{provider}`). Until it exists the
  sync does not hand the deployment to the worker (status reason `awaiting_lease`). An
  update of the compose, a restart or a move within one provider keeps the lease; another
  instance type or a move to another provider needs a new one (the old one is closed by
  the customer, or pauses when its runway ends: it is no longer gating a running app).
- Closing is the customer's (or the provider's) act on the chain: the control plane
  operator is not a party of the lease and cannot close it. `veil cloud delete` closes
  the app's lease with the customer's key, which refunds the unspent balance at once;
  a lease nobody closes is paused when its runway ends and anyone may close it after the
  grace period.
- Whether an app may run is read by the worker from the chain (`veil.cloud.lease_gate`),
  not from here: the control plane only tells it which lease to look at.
- A watcher (one replica at a time, under a PostgreSQL advisory lock like the scheduler)
  compares each open lease with what it saw last and queues `lease.low_balance` (24 h and
  1 h of runway), `lease.paused`, `lease.resumed`, `lease.closed` deliveries. Deliveries
  are rows: each pass posts the due ones once and reschedules failures with exponential
  backoff, so retries survive restarts and never block a pass.
"""

from __future__ import annotations

import json
import logging
import re
import secrets
import threading
from typing import Any

from eth_account import Account
from eth_account.messages import encode_typed_data
from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel, Field
from sqlalchemy import select, text, update
from sqlalchemy.orm import Session

from veil.errors import InputError, VeilError
from veil.market import runway, usage, webhooks
from veil.market.typed_data import OPEN_LEASE_TYPES, OpenLease, deployment_key
from veil.services.cloud.api_errors import ApiError
from veil.services.cloud.apps import READ, WRITE, owned_app
from veil.services.cloud.auth import Principal, state_of
from veil.services.cloud.database import is_postgres
from veil.services.cloud.models import App, BillingWebhook, Lease, Worker
from veil.services.cloud.models import WebhookDelivery as DeliveryRow
from veil.services.cloud.scheduler import active_deployment, emit
from veil.services.cloud.service import CloudState

log = logging.getLogger("veil.cloud.billing")
router = APIRouter(tags=["billing"])
#: pg advisory lock id of the billing watcher (the scheduler's is ..02, migrations ..01).
BILLING_LOCK = 0x7665696C_00000010
#: Attempts per webhook delivery before it is given up (backoff 1 s, 2 s, 4 s, ... 1 h).
DELIVERY_ATTEMPTS = 12
AWAITING_LEASE = "awaiting_lease: the customer has not opened the market lease"
UNBILLED = "this control plane has no market deployment: apps run unbilled"
_GPU_ONE = re.compile(r"^(h100|h200|b200)x1$")
MAX_WEBHOOKS = 10
#: How long a claimed delivery is held by the replica posting it.
CLAIM_SECONDS = 60


def price_name(instance_type: str) -> str:
    """The price list's name of an instance type: one GPU is priced as `h100`, not `h100x1`."""
    return instance_type[:-2] if _GPU_ONE.match(instance_type) else instance_type


def lease_deployment_text(app: App, provider: str) -> str:
    """The market deployment id's text: one lease per app (since its creation), instance
    type and provider, so an update of the compose keeps paying the same lease while a
    new price (another type) or another payee (another provider) needs a new one."""
    kind = price_name(app.instance_type)
    return f"veil-cloud:{app.app_id}:{app.created_at}:{kind}:{provider.lower()}"


def _hex32(value: int | bytes) -> str:
    raw = value if isinstance(value, bytes) else value.to_bytes(32, "big")
    return "0x" + raw.hex()


def open_lease_for(session: Session, app: App, provider: str) -> Lease | None:
    key = lease_deployment_text(app, provider)
    return session.scalars(
        select(Lease).where(
            Lease.app_id == app.app_id, Lease.deployment_key == key, Lease.closed_at.is_(None)
        )
    ).first()


def sync_lease(state: CloudState, session: Session, app: App, provider: str) -> str | None:
    """For the sync: the lease the worker must check, "" when billing is off, None when the
    app waits for its customer's lease (the deployment is then withheld)."""
    if state.config.escrow is None:
        return ""
    lease = open_lease_for(session, app, provider)
    return lease.lease_id if lease is not None else None


def _escrow(state: CloudState) -> Any:
    # 404, not 503: a control plane without a market is configured so, not down, and
    # clients retry a 503 (the fuzz test found the statement answering 503)
    if state.config.escrow is None:
        raise ApiError(404, "billing_disabled", UNBILLED)
    return state.config.escrow


def _placed_provider(session: Session, app: App) -> str:
    deployment = active_deployment(session, app.app_id)
    if deployment is None:
        raise ApiError(409, "not_placed", f"app {app.app_id} is not placed on a worker yet")
    worker = session.get(Worker, deployment.worker)
    if worker is None:
        raise ApiError(409, "not_placed", f"app {app.app_id}: its worker is unknown")
    return worker.provider


def _request(
    state: CloudState, session: Session, app: App, amount: int, deadline: int | None
) -> OpenLease:
    escrow = _escrow(state)
    provider = _placed_provider(session, app)
    try:
        request: OpenLease = escrow.open_request(
            app.owner,
            provider,
            deployment_key(lease_deployment_text(app, provider)),
            price_name(app.instance_type),
            amount,
            deadline=deadline,
        )
    except VeilError as error:
        raise ApiError(409, "not_priced", str(error)) from None
    return request


def _amount(value: str, what: str) -> int:
    if not value.isdigit() or int(value) <= 0:
        raise ApiError(400, "invalid_amount", f"{what}: a positive integer of wei, got {value!r}")
    return int(value)


@router.get("/v1/apps/{app_id}/lease-request")
def lease_request(
    app_id: str,
    request: Request,
    amount: str = Query(..., max_length=80, description="Initial funding in wei."),
    who: Principal = Depends(READ),
) -> dict[str, Any]:
    """The EIP-712 `OpenLease` the customer signs for this app's current placement, with
    the price and the customer's free escrow balance (deposit first if it is short)."""
    state = state_of(request)
    wei = _amount(amount, "amount")
    with state.sessions() as session:
        app = owned_app(session, who, app_id)
        req = _request(state, session, app, wei, None)
        existing = open_lease_for(session, app, req.provider)
    escrow = state.config.escrow
    return {
        "market": escrow.market.address,
        "domain": escrow.domain(),
        "types": OPEN_LEASE_TYPES,
        "primary_type": "OpenLease",
        "message": _message_json(req),
        "lease_id": _hex32(escrow.lease_id(req.customer, req.deployment)),
        "open": existing is not None,
        "price_wei_per_second": str(req.max_rate),
        "free_balance_wei": str(escrow.free_balance(req.customer)),
    }


def _message_json(req: OpenLease) -> dict[str, Any]:
    return {
        "customer": req.customer,
        "provider": req.provider,
        "deployment": "0x" + req.deployment.hex(),
        "instanceType": "0x" + req.instance_type.hex(),
        "amount": str(req.amount),
        "maxRate": str(req.max_rate),
        "deadline": req.deadline,
    }


class LeaseIn(BaseModel):
    amount: str = Field(max_length=80)
    max_rate: str = Field(max_length=80)
    deadline: int = Field(ge=0)
    signature: str = Field(max_length=140)


@router.post("/v1/apps/{app_id}/lease")
def open_lease(
    app_id: str, body: LeaseIn, request: Request, who: Principal = Depends(WRITE)
) -> dict[str, Any]:
    """Submit the customer's signed `OpenLease` for this app (the operator pays the gas)."""
    state = state_of(request)
    escrow = _escrow(state)
    amount = _amount(body.amount, "amount")
    max_rate = _amount(body.max_rate, "max_rate")
    with state.sessions() as session:
        app = owned_app(session, who, app_id)
        req = _request(state, session, app, amount, body.deadline)
        if open_lease_for(session, app, req.provider) is not None:
            raise ApiError(409, "lease_open", f"app {app.app_id} already has an open lease")
        app_snapshot = (app.app_id, app.instance_type)
    req = OpenLease(
        req.customer, req.provider, req.deployment, req.instance_type, amount, max_rate,
        body.deadline,
    )  # fmt: skip
    try:
        signature = bytes.fromhex(body.signature.removeprefix("0x"))
        typed = encode_typed_data(
            domain_data=escrow.domain(), message_types=OPEN_LEASE_TYPES,
            message_data=req.message(),
        )  # fmt: skip
        signer = Account.recover_message(typed, signature=signature)
    except Exception:
        raise ApiError(400, "bad_signature", "signature is not a 65-byte signature") from None
    if signer.lower() != who.address.lower():
        raise ApiError(400, "bad_signature", f"the request is signed by {signer}, not the owner")
    free = escrow.free_balance(who.address)
    if free < amount:
        raise ApiError(
            402,
            "insufficient_funds",
            f"escrow free balance {free} wei is short of {amount} wei by {amount - free} "
            "(deposit first: veil cloud topup AMOUNT)",
        )
    if state.config.operator is None:
        raise ApiError(404, "billing_disabled", "this control plane has no --operator-key")
    try:
        lease_id = escrow.open_lease_for(state.config.operator, req, signature)
    except VeilError as error:
        raise ApiError(502, "chain_refused", str(error)) from None
    now = state.now()
    with state.sessions() as session, session.begin():
        current = session.get(App, app_snapshot[0])
        if current is None:  # deleted meanwhile: the lease is open on the chain
            raise ApiError(409, "app_gone", f"app {app_snapshot[0]} was deleted: close the lease")
        session.add(
            Lease(
                lease_id=_hex32(lease_id),
                app_id=current.app_id,
                owner=current.owner,
                provider=req.provider,
                deployment_key=lease_deployment_text(current, req.provider),
                instance_type=app_snapshot[1],
                rate=str(escrow.lease(lease_id).rate),
                amount=str(amount),
                tx="",
                opened_at=now,
            )
        )
        emit(session, current.app_id, "billed", now, lease=_hex32(lease_id), provider=req.provider)
    return _billing(state, who, app_id)


def _billing(state: CloudState, who: Principal, app_id: str) -> dict[str, Any]:
    with state.sessions() as session:
        app = owned_app(session, who, app_id)
        if state.config.escrow is None:
            return {"app_id": app.app_id, "billed": False, "reason": UNBILLED}
        lease = session.scalars(
            select(Lease).where(Lease.app_id == app.app_id).order_by(Lease.opened_at.desc())
        ).first()
    if lease is None:
        return {
            "app_id": app.app_id,
            "billed": False,
            "reason": "awaiting_lease: sign and submit the lease (veil cloud deploy does)",
        }
    try:
        figures = state.config.escrow.billing(int(lease.lease_id, 16)).to_json()
    except InputError as error:  # the lease recorded here is not on this market's chain
        raise ApiError(409, "lease_not_on_chain", str(error)) from None
    return {
        "app_id": app.app_id,
        "billed": True,
        "lease_id": lease.lease_id,
        "provider": lease.provider,
        "instance_type": lease.instance_type,
        **figures,
    }


@router.get("/v1/apps/{app_id}/billing")
def billing(app_id: str, request: Request, who: Principal = Depends(READ)) -> dict[str, Any]:
    """Rate, cost so far, balance and runway of the app's lease, read from the chain."""
    return _billing(state_of(request), who, app_id)


@router.get("/v1/billing/statement")
def statement(
    request: Request,
    month: str = Query(..., max_length=7, description="YYYY-MM (UTC)."),
    format: str = Query("json", pattern="^(json|csv)$"),
    who: Principal = Depends(READ),
) -> Response:
    """The caller's monthly statement from the chain's events: per-second usage records,
    per-lease totals, funding flows; unsettled seconds up to now included."""
    state = state_of(request)
    escrow = _escrow(state)
    try:
        usage.month_bounds(month)
    except VeilError as error:
        raise ApiError(400, "invalid_month", str(error)) from None
    doc = escrow.statement(who.address, month)
    if format == "csv":
        return Response(usage.statement_csv(doc), media_type="text/csv")
    return Response(json.dumps(doc), media_type="application/json")


# --- webhooks ---------------------------------------------------------------------


class WebhookIn(BaseModel):
    url: str = Field(min_length=8, max_length=500, pattern=r"^https?://")


@router.post("/v1/webhooks")
def add_webhook(
    body: WebhookIn, request: Request, who: Principal = Depends(WRITE)
) -> dict[str, Any]:
    """Send this account's billing events to `url`; `secret` (shown only here) signs them."""
    state = state_of(request)
    with state.sessions() as session, session.begin():
        count = len(
            session.scalars(
                select(BillingWebhook.id).where(BillingWebhook.owner == who.address)
            ).all()
        )
        if count >= MAX_WEBHOOKS:
            raise ApiError(409, "too_many_webhooks", f"at most {MAX_WEBHOOKS} webhooks")
        hook = BillingWebhook(
            id="whk_" + secrets.token_hex(12),
            owner=who.address,
            url=body.url,
            secret="whsec_" + secrets.token_hex(24),
            created_at=state.now(),
        )
        session.add(hook)
        return {"id": hook.id, "url": hook.url, "secret": hook.secret}


@router.get("/v1/webhooks")
def list_webhooks(request: Request, who: Principal = Depends(READ)) -> list[dict[str, Any]]:
    with state_of(request).sessions() as session:
        hooks = session.scalars(
            select(BillingWebhook).where(BillingWebhook.owner == who.address)
        ).all()
        return [{"id": h.id, "url": h.url, "created_at": h.created_at} for h in hooks]


@router.get("/v1/webhooks/deliveries")
def list_deliveries(request: Request, who: Principal = Depends(READ)) -> list[dict[str, Any]]:
    """The account's last 100 deliveries with their attempts and outcome."""
    with state_of(request).sessions() as session:
        rows = session.scalars(
            select(DeliveryRow)
            .where(DeliveryRow.owner == who.address)
            .order_by(DeliveryRow.created_at.desc(), DeliveryRow.id)
            .limit(100)
        ).all()
        return [
            {
                "id": r.id,
                "webhook_id": r.webhook_id,
                "type": r.kind,
                "lease_id": r.lease_id,
                "status": r.status,
                "attempts": r.attempts,
                "last_status": r.last_status,
                "last_error": r.last_error,
                "next_attempt_at": r.next_attempt_at,
                "delivered_at": r.delivered_at,
            }
            for r in rows
        ]


class BillingWatcher:
    """One pass (`tick`): observe open leases on the chain, queue events, post due ones."""

    def __init__(self, state: CloudState) -> None:
        self.state = state
        self.post = state.config.webhook_post or webhooks.httpx_post()

    def tick(self) -> dict[str, int]:
        state = self.state
        if state.config.escrow is None:
            return {"events": 0, "delivered": 0}
        with state.sessions() as session, session.begin():
            if (
                is_postgres(session.connection())
                and not session.execute(
                    text("SELECT pg_try_advisory_xact_lock(:k)"), {"k": BILLING_LOCK}
                ).scalar()
            ):
                return {"events": 0, "delivered": 0}
            queued = self._observe(session)
        return {"events": queued, "delivered": self._deliver_due()}

    def _observe(self, session: Session) -> int:
        escrow = self.state.config.escrow
        now_chain = escrow.now()
        now = self.state.now()
        queued = 0
        for row in session.scalars(select(Lease).where(Lease.closed_at.is_(None))).all():
            lease = escrow.lease(int(row.lease_id, 16))
            after = webhooks.LeaseSnapshot(
                runway.state(lease, now_chain), runway.runway(lease, now_chain)
            )
            before = (
                None
                if row.last_state is None
                else webhooks.LeaseSnapshot(row.last_state, int(row.last_runway or 0))
            )
            for event in webhooks.lease_events(before, after):
                queued += self._queue(session, row, event, now)
                emit(session, row.app_id, "billing", now, event=event["type"], lease=row.lease_id)
            row.last_state, row.last_runway = after.state, after.runway_seconds
            if after.state == runway.STATE_CLOSED:
                row.closed_at = now
        return queued

    def _queue(self, session: Session, row: Lease, event: dict[str, Any], now: int) -> int:
        hooks = session.scalars(
            select(BillingWebhook).where(BillingWebhook.owner == row.owner)
        ).all()
        kind = event["type"]
        data = {k: v for k, v in event.items() if k != "type"}
        data.update(lease_id=row.lease_id, app_id=row.app_id, provider=row.provider)
        for hook in hooks:
            delivery = "dlv_" + secrets.token_hex(12)
            session.add(
                DeliveryRow(
                    id=delivery,
                    webhook_id=hook.id,
                    owner=row.owner,
                    kind=kind,
                    lease_id=row.lease_id,
                    body=webhooks.envelope(kind, data, now, delivery).decode(),
                    status="pending",
                    attempts=0,
                    next_attempt_at=now,
                    last_error="",
                    created_at=now,
                )
            )
        return len(hooks)

    def _deliver_due(self) -> int:
        """Post each due delivery once, outside any transaction (a slow receiver must not
        hold the database); a delivery is claimed first by a conditional UPDATE, so two
        replicas never post the same attempt."""
        now = self.state.now()
        with self.state.sessions() as session:
            due = [
                (r.id, r.next_attempt_at)
                for r in session.scalars(
                    select(DeliveryRow)
                    .where(DeliveryRow.status == "pending", DeliveryRow.next_attempt_at <= now)
                    .order_by(DeliveryRow.next_attempt_at)
                    .limit(100)
                ).all()
            ]
        delivered = 0
        for delivery_id, planned in due:
            with self.state.sessions() as session, session.begin():
                claimed = session.execute(
                    update(DeliveryRow)
                    .where(DeliveryRow.id == delivery_id, DeliveryRow.next_attempt_at == planned)
                    .values(next_attempt_at=now + CLAIM_SECONDS)
                )
                if claimed.rowcount != 1:  # type: ignore[attr-defined]
                    continue
                row = session.get(DeliveryRow, delivery_id)
                hook = session.get(BillingWebhook, row.webhook_id) if row else None
                target = (hook.url, hook.secret, row.kind, row.body) if row and hook else None
            result = None
            if target is not None:
                url, secret, kind, body = target
                result = webhooks.deliver(
                    url, kind, body.encode(), secret.encode(), delivery_id=delivery_id,
                    post=self.post, attempts=1, clock=self.state.config.clock,
                )  # fmt: skip
            with self.state.sessions() as session, session.begin():
                row = session.get(DeliveryRow, delivery_id)
                if row is None:
                    continue
                if result is None:
                    row.status, row.last_error = "failed", "webhook deleted"
                    continue
                row.attempts += 1
                row.last_status, row.last_error = result.status, result.error
                if result.delivered:
                    row.status, row.delivered_at = "delivered", now
                    delivered += 1
                elif row.attempts >= DELIVERY_ATTEMPTS or (
                    result.status is not None and result.status not in webhooks.RETRY_STATUS
                ):
                    row.status = "failed"
                else:
                    row.next_attempt_at = now + max(1, int(webhooks.backoff(row.attempts - 1)))
        return delivered

    def run(self, stop: threading.Event, interval: float) -> None:
        while not stop.is_set():
            try:
                self.tick()
            except Exception:  # a chain or database hiccup must not end the watcher
                log.exception("billing watcher pass failed")
            stop.wait(interval)


def start_watcher(state: CloudState, stop: threading.Event) -> threading.Thread | None:
    """The watcher's thread, when a market is configured."""
    if state.config.escrow is None:
        return None
    watcher = BillingWatcher(state)
    thread = threading.Thread(
        target=watcher.run,
        args=(stop, state.config.billing_interval),
        name="veil-cloud-billing",
        daemon=True,
    )
    thread.start()
    return thread
