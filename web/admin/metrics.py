"""System metrics: one row per metric and day, rolled up from the tables (running it again changes nothing)."""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from decimal import Decimal

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from web.accounts.models import User
from web.admin.models import METRIC_TYPES, SystemMetric
from web.billing.models import Payment
from web.draws.models import Draw

METRIC_LABELS = {
    "daily_draws": "Draws created",
    "user_signups": "Sign-ups",
    "revenue": "Revenue (USD)",
    "avg_participants_per_draw": "Average entries per completed draw",
    "error_rate": "Failed draws (% of finished)",
}


def _bounds(day: datetime.date) -> tuple[datetime.datetime, datetime.datetime]:
    start = datetime.datetime.combine(day, datetime.time.min, tzinfo=datetime.UTC)
    return start, start + datetime.timedelta(days=1)


async def compute_day(db: AsyncSession, day: datetime.date) -> dict[str, Decimal]:
    start, end = _bounds(day)
    draws_created = await db.scalar(
        sa.select(sa.func.count()).select_from(Draw).where(Draw.created_at >= start, Draw.created_at < end)
    )
    signups = await db.scalar(
        sa.select(sa.func.count()).select_from(User).where(User.created_at >= start, User.created_at < end)
    )
    # Amounts are in cents; refunds are their own rows and count against the day they happen.
    revenue_cents = await db.scalar(
        sa.select(
            sa.func.coalesce(sa.func.sum(sa.case((Payment.kind == "refund", -Payment.amount), else_=Payment.amount)), 0)
        ).where(
            Payment.created_at >= start,
            Payment.created_at < end,
            Payment.status.in_(("succeeded", "refunded")),
        )
    )
    finished = (
        await db.execute(
            sa.select(
                sa.func.count().filter(Draw.status == "completed"),
                sa.func.count().filter(Draw.status == "failed"),
                sa.func.avg(Draw.participants_count).filter(Draw.status == "completed"),
            ).where(Draw.completed_at >= start, Draw.completed_at < end)
        )
    ).one()
    completed, failed, average = int(finished[0]), int(finished[1]), finished[2]
    error_rate = Decimal(100 * failed) / (completed + failed) if completed + failed else Decimal(0)
    return {
        "daily_draws": Decimal(int(draws_created or 0)),
        "user_signups": Decimal(int(signups or 0)),
        "revenue": (Decimal(int(revenue_cents or 0)) / 100).quantize(Decimal("0.01")),
        "avg_participants_per_draw": Decimal(average or 0).quantize(Decimal("0.0001")),
        "error_rate": error_rate.quantize(Decimal("0.0001")),
    }


async def roll_up_day(db: AsyncSession, day: datetime.date) -> dict[str, Decimal]:
    """Compute `day` and store it, replacing what an earlier run stored for that day."""
    values = await compute_day(db, day)
    for metric_type, value in values.items():
        statement = pg_insert(SystemMetric).values(
            {
                SystemMetric.metric_type: metric_type,
                SystemMetric.day: day,
                SystemMetric.value: value,
                SystemMetric.metadata_: {"date": day.isoformat()},
            }
        )
        await db.execute(
            statement.on_conflict_do_update(
                constraint="uq_system_metrics_type_day", set_={"value": statement.excluded.value}
            )
        )
    return values


async def roll_up_recent(db: AsyncSession) -> dict[str, int]:
    """Yesterday is final; today is refreshed as it goes."""
    today = datetime.datetime.now(datetime.UTC).date()
    for day in (today - datetime.timedelta(days=1), today):
        await roll_up_day(db, day)
    return {"days": 2}


@dataclass(frozen=True)
class Series:
    metric_type: str
    label: str
    days: list[str]
    values: list[float]

    @property
    def total(self) -> float:
        return sum(self.values)


async def series(db: AsyncSession, days: int) -> list[Series]:
    """Each metric over the last `days` days, a missing day counting as zero."""
    today = datetime.datetime.now(datetime.UTC).date()
    first = today - datetime.timedelta(days=days - 1)
    rows = await db.execute(
        sa.select(SystemMetric.metric_type, SystemMetric.day, SystemMetric.value).where(SystemMetric.day >= first)
    )
    stored = {(metric, day): float(value) for metric, day, value in rows.all()}
    calendar = [first + datetime.timedelta(days=offset) for offset in range(days)]
    return [
        Series(
            metric,
            METRIC_LABELS[metric],
            [day.isoformat() for day in calendar],
            [stored.get((metric, day), 0.0) for day in calendar],
        )
        for metric in METRIC_TYPES
    ]
