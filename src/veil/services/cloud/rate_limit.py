"""Fixed-window rate limits counted in the database, so replicas share one count.

Applied where a request costs the service something and needs no account: issuing and
verifying SIWE nonces (each nonce is a row; each verify recovers a signature). A client
is its peer address. A window's row is created by the first request and bumped by a
conditional UPDATE, so concurrent replicas never lose a count.
"""

from __future__ import annotations

from fastapi import Request
from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError

from veil.services.cloud.api_errors import ApiError
from veil.services.cloud.models import RateWindow
from veil.services.cloud.service import CloudState


def hit(state: CloudState, key: str, limit: int, window: int) -> int:
    """Count one request; 0 when allowed, else the seconds until the window ends."""
    now = state.now()
    start = now - now % window
    for _ in range(3):
        with state.sessions() as session, session.begin():
            bumped = session.execute(
                update(RateWindow)
                .where(RateWindow.key == key, RateWindow.window_start == start)
                .values(count=RateWindow.count + 1)
            )
            if bumped.rowcount == 0:  # type: ignore[attr-defined]
                try:
                    with session.begin_nested():
                        session.add(RateWindow(key=key, window_start=start, count=1))
                except IntegrityError:
                    continue  # another replica created it first: bump it next time round
                session.execute(delete(RateWindow).where(RateWindow.window_start < start))
            count = session.scalar(
                select(RateWindow.count).where(
                    RateWindow.key == key, RateWindow.window_start == start
                )
            )
        return 0 if (count or 0) <= limit else start + window - now
    return 0


def limit_client(request: Request, state: CloudState, what: str) -> None:
    """Refuse with 429 `rate_limited` (and Retry-After) past `auth_rate` per minute."""
    limit = state.config.auth_rate
    if limit <= 0:
        return
    client = request.client.host if request.client else "unknown"
    wait = hit(state, f"{what}:{client}"[:100], limit, 60)
    if wait:
        raise ApiError(
            429,
            "rate_limited",
            f"more than {limit} {what} requests a minute from {client}; retry in {wait} s",
            headers={"Retry-After": str(wait)},
        )
