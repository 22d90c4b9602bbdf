"""Notifications from payment platforms (Stripe events, App Store notifications): each stored under its unique id,
then applied in a savepoint of the transaction that holds its row locked, so that it takes effect exactly once."""

from __future__ import annotations

import datetime
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from web.billing.services import NotOurs

log = logging.getLogger(__name__)


async def apply_in_savepoint(
    connection: AsyncConnection, apply: Callable[[AsyncSession], Awaitable[None]], failure: str, extra: dict[str, Any]
) -> tuple[str, str | None]:
    """(status, error): `processed`; `ignored` when it concerns nothing of ours; `failed`, rolled back, on an error."""
    savepoint = await connection.begin_nested()
    db = AsyncSession(bind=connection, join_transaction_mode="create_savepoint", expire_on_commit=False)
    try:
        await apply(db)
        await db.commit()
    except NotOurs as unrelated:
        await db.close()
        await savepoint.rollback()
        return "ignored", str(unrelated)
    except Exception as exc:
        log.exception(failure, extra=extra)
        await db.close()
        await savepoint.rollback()
        return "failed", f"{type(exc).__name__}: {exc}"[:4000]
    await db.close()
    await savepoint.commit()
    return "processed", None


def record_outcome(table: sa.Table, key: sa.ColumnElement[bool], status: str, error: str | None) -> sa.Update:
    """The row's status after one more attempt; a failed one stays unprocessed, for the next delivery or a replay."""
    return (
        sa.update(table)
        .where(key)
        .values(
            status=status,
            error=error,
            attempts=table.c.attempts + 1,
            processed_at=datetime.datetime.now(datetime.UTC) if status != "failed" else None,
        )
    )
