"""Webhook deliveries from the payments sandbox, signed exactly as Stripe signs them.

The web process that made an event sends it at once from a background task, retrying with backoff
for a little while; whatever is still undelivered after that is sent by the worker's periodic job.
A delivery is claimed by pushing its next attempt into the future, so two senders never overlap.
"""

from __future__ import annotations

import asyncio
import datetime
import hashlib
import hmac
import logging
import time
import uuid
from collections.abc import Iterable
from typing import cast

import httpx
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from web.sandbox.stripe.models import SandboxWebhookDelivery
from web.settings import Settings

log = logging.getLogger(__name__)

IN_PROCESS_ATTEMPTS = 5
MAX_BACKOFF_SECONDS = 3600
_running: set[asyncio.Task[None]] = set()


def signature_header(secret: str, payload: str, timestamp: int | None = None) -> str:
    timestamp = int(time.time()) if timestamp is None else timestamp
    mac = hmac.new(secret.encode(), f"{timestamp}.{payload}".encode(), hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={mac}"


def backoff_seconds(attempts: int) -> int:
    return int(min(2**attempts, MAX_BACKOFF_SECONDS))


async def attempt_delivery(
    session_maker: async_sessionmaker[AsyncSession], http: httpx.AsyncClient, settings: Settings, delivery_id: uuid.UUID
) -> bool | None:
    """One attempt: True when delivered, False when refused or unreachable, None when not due or taken."""
    table = cast(sa.Table, SandboxWebhookDelivery.__table__)
    now = datetime.datetime.now(datetime.UTC)
    async with session_maker() as db:
        claimed = (
            await db.execute(
                sa.update(table)
                .where(table.c.id == delivery_id, table.c.delivered_at.is_(None), table.c.next_attempt_at <= now)
                .values(
                    attempts=table.c.attempts + 1,
                    next_attempt_at=sa.func.clock_timestamp()
                    + sa.func.make_interval(
                        0, 0, 0, 0, 0, 0, sa.func.least(sa.func.power(2, table.c.attempts), MAX_BACKOFF_SECONDS)
                    ),
                )
                .returning(table.c.url, table.c.payload)
            )
        ).one_or_none()
        await db.commit()
    if claimed is None:
        return None
    url, payload = claimed
    status: int | None = None
    error: str | None = None
    try:
        response = await http.post(
            url,
            content=payload.encode(),
            headers={
                "content-type": "application/json; charset=utf-8",
                "stripe-signature": signature_header(settings.stripe_webhook_secrets[0], payload),
                "user-agent": "Stripe/1.0 (+https://stripe.com/docs/webhooks)",
            },
            timeout=30,
        )
        status = response.status_code
        if not 200 <= status < 300:
            error = response.text[:500]
    except httpx.HTTPError as exc:
        error = f"{type(exc).__name__}: {exc}"[:500]
    delivered = status is not None and 200 <= status < 300
    async with session_maker() as db:
        await db.execute(
            sa.update(table)
            .where(table.c.id == delivery_id)
            .values(
                delivered_at=datetime.datetime.now(datetime.UTC) if delivered else None,
                last_status=status,
                last_error=error,
            )
        )
        await db.commit()
    return delivered


async def _deliver_in_order(
    session_maker: async_sessionmaker[AsyncSession], settings: Settings, delivery_ids: list[uuid.UUID]
) -> None:
    async with httpx.AsyncClient() as http:
        for delivery_id in delivery_ids:
            for attempt in range(IN_PROCESS_ATTEMPTS):
                result = await attempt_delivery(session_maker, http, settings, delivery_id)
                if result is not False:
                    break
                if attempt < IN_PROCESS_ATTEMPTS - 1:
                    await asyncio.sleep(backoff_seconds(attempt + 1) / 2)


def deliver_soon(
    session_maker: async_sessionmaker[AsyncSession], settings: Settings, delivery_ids: Iterable[uuid.UUID]
) -> None:
    """Send these committed deliveries from a background task of this process."""
    ids = list(delivery_ids)
    if not ids:
        return
    task = asyncio.get_running_loop().create_task(_deliver_in_order(session_maker, settings, ids))
    _running.add(task)
    task.add_done_callback(_finished)


def _finished(task: asyncio.Task[None]) -> None:
    _running.discard(task)
    if not task.cancelled() and task.exception() is not None:
        log.error("sandbox webhook delivery task failed", exc_info=task.exception())


async def redeliver_pending(
    session_maker: async_sessionmaker[AsyncSession], http: httpx.AsyncClient, settings: Settings, limit: int = 100
) -> dict[str, int]:
    """Send every delivery whose next attempt is due; for the worker."""
    async with session_maker() as db:
        due = list(
            await db.scalars(
                sa.select(SandboxWebhookDelivery.id)
                .where(
                    SandboxWebhookDelivery.delivered_at.is_(None),
                    SandboxWebhookDelivery.next_attempt_at <= datetime.datetime.now(datetime.UTC),
                )
                .order_by(SandboxWebhookDelivery.created_at)
                .limit(limit)
            )
        )
    delivered = failed = 0
    for delivery_id in due:
        result = await attempt_delivery(session_maker, http, settings, delivery_id)
        delivered += result is True
        failed += result is False
    return {"delivered": delivered, "failed": failed}
