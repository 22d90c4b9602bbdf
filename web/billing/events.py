"""Received Stripe events: stored under their unique id and processed exactly once, in one transaction.

Concurrent deliveries of one event meet on its row: the insert does nothing for all but the first, and the
row lock makes the others wait, then find it processed. A handler's error rolls back everything it did,
and the row keeps the error (failed, attempts + 1) so that the 500 makes Stripe retry, or
`cleack replay-stripe-event` runs it again.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from web.billing.handlers import HANDLERS, EventContext
from web.billing.inbox import apply_in_savepoint, record_outcome
from web.billing.models import StripeEvent
from web.billing.stripe_api import open_stripe
from web.settings import Settings

log = logging.getLogger(__name__)


class EventFailed(Exception):
    """The event's handler raised; the error is stored on the event."""


@dataclass(frozen=True)
class Outcome:
    status: str
    already_done: bool


async def receive_event(engine: AsyncEngine, settings: Settings, event: dict[str, Any]) -> Outcome:
    return await _process(engine, settings, event, replay=False)


async def replay_event(engine: AsyncEngine, settings: Settings, stripe_event_id: str) -> Outcome:
    async with engine.connect() as connection:
        payload = await connection.scalar(
            sa.select(StripeEvent.payload).where(StripeEvent.stripe_event_id == stripe_event_id)
        )
    if payload is None:
        raise LookupError(f"no stored event {stripe_event_id}")
    return await _process(engine, settings, payload, replay=True)


async def _process(engine: AsyncEngine, settings: Settings, event: dict[str, Any], *, replay: bool) -> Outcome:
    table = cast(sa.Table, StripeEvent.__table__)
    async with engine.connect() as connection:
        await connection.begin()
        await connection.execute(
            pg_insert(table)
            .values(
                id=uuid.uuid4(),
                stripe_event_id=event["id"],
                type=str(event["type"])[:128],
                api_version=event.get("api_version"),
                livemode=bool(event.get("livemode")),
                payload=event,
                stripe_created=int(event.get("created") or 0),
            )
            .on_conflict_do_nothing(index_elements=["stripe_event_id"])
        )
        row = (
            await connection.execute(
                sa.select(table.c.status, table.c.payload)
                .where(table.c.stripe_event_id == event["id"])
                .with_for_update()
            )
        ).one()
        if row.status in ("processed", "ignored") and not replay:
            await connection.commit()
            return Outcome(row.status, already_done=True)
        # What we stored first is what we process, whatever a later delivery carries.
        stored = dict(row.payload)
        handler = HANDLERS.get(stored["type"])
        status, error = "ignored", None
        if handler is not None:

            async def apply(db: AsyncSession) -> None:
                async with open_stripe(settings) as client:
                    await handler(EventContext(db, client, settings, stored))

            extra = {"event": stored["id"], "type": stored["type"]}
            status, error = await apply_in_savepoint(connection, apply, "stripe event failed", extra)
        await connection.execute(record_outcome(table, table.c.stripe_event_id == stored["id"], status, error))
        await connection.commit()
    if status == "failed":
        raise EventFailed(error)
    return Outcome(status, already_done=False)
