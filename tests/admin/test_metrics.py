"""System metrics: one row per metric and day, computed from users, draws and payments, the same however often run."""

from __future__ import annotations

import asyncio
import datetime
import itertools
import uuid
from decimal import Decimal
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from web.accounts.models import User
from web.admin import metrics
from web.admin.models import METRIC_TYPES, SystemMetric
from web.billing.models import Payment
from web.db import session_factory
from web.draws.models import Draw
from web.settings import Settings
from web.worker import JOBS, PeriodicJob, WorkerContext, run_job_once

UTC = datetime.UTC
DAY_ONE = datetime.date(2025, 3, 10)
DAY_TWO = datetime.date(2025, 3, 11)
QUIET_DAY = datetime.date(2025, 3, 12)
REFUND_ONLY_DAY = datetime.date(2025, 3, 13)
references = itertools.count()


def at(day: datetime.date, hour: int = 12, minute: int = 0, second: int = 0, micro: int = 0) -> datetime.datetime:
    return datetime.datetime.combine(day, datetime.time(hour, minute, second, micro), tzinfo=UTC)


def just_before_midnight(day: datetime.date) -> datetime.datetime:
    return at(day, 23, 59, 59, 999_999)


# Seeding


async def add(engine: AsyncEngine, *rows: Any) -> None:
    async with session_factory(engine)() as session:
        session.add_all(rows)
        await session.commit()


def user(created_at: datetime.datetime) -> User:
    return User(email=f"u-{uuid.uuid4().hex[:10]}@example.com", password_hash="x", created_at=created_at)


def draw(
    owner: uuid.UUID,
    created_at: datetime.datetime,
    status: str = "pending",
    completed_at: datetime.datetime | None = None,
    participants: int = 0,
) -> Draw:
    return Draw(
        user_id=owner,
        title=f"Draw {uuid.uuid4().hex[:6]}",
        platform="list",
        status=status,
        created_at=created_at,
        completed_at=completed_at,
        participants_count=participants,
    )


def payment(
    owner: uuid.UUID,
    created_at: datetime.datetime,
    cents: int,
    kind: str = "credit_pack",
    status: str = "succeeded",
    currency: str = "usd",
) -> Payment:
    return Payment(
        user_id=owner,
        kind=kind,
        status=status,
        amount=cents,
        currency=currency,
        created_at=created_at,
        external_reference=f"ref-{next(references)}-{uuid.uuid4().hex[:6]}",
    )


@pytest.fixture
async def owner(engine: AsyncEngine) -> uuid.UUID:
    """Someone to own the draws and payments, signed up long before the days measured."""
    row = user(at(datetime.date(2024, 1, 1)))
    await add(engine, row)
    return row.id


@pytest.fixture
async def seeded(engine: AsyncEngine, owner: uuid.UUID) -> dict[datetime.date, dict[str, Decimal]]:
    """Two busy days, a quiet one and one with only a refund; returns what each metric must be."""
    await add(
        engine,
        # Sign-ups: 3 on day one (the first second and the last microsecond included), 1 on day two.
        user(at(DAY_ONE, 0, 0, 0)),
        user(at(DAY_ONE, 9)),
        user(just_before_midnight(DAY_ONE)),
        user(at(DAY_TWO, 0, 0, 0)),
        # Draws created on day one: 5.
        draw(owner, at(DAY_ONE, 8), "completed", at(DAY_ONE, 9), participants=10),
        draw(owner, at(DAY_ONE, 8), "completed", just_before_midnight(DAY_ONE), participants=25),
        draw(owner, at(DAY_ONE, 10), "failed", at(DAY_ONE, 11), participants=400),
        draw(owner, at(DAY_ONE, 10), "completed", at(DAY_TWO, 0, 0, 0), participants=100),
        draw(owner, just_before_midnight(DAY_ONE), "pending"),
        # Draws created on day two: 3; a cancelled one is neither completed nor failed.
        draw(owner, at(DAY_TWO, 1), "failed", at(DAY_TWO, 2)),
        draw(owner, at(DAY_TWO, 1), "cancelled", at(DAY_TWO, 3), participants=7),
        draw(owner, at(DAY_TWO, 5), "processing"),
        # Payments on day one: two charges and a refund count; pending and failed ones do not.
        payment(owner, at(DAY_ONE, 9), 1999),
        payment(owner, at(DAY_ONE, 10), 900, kind="subscription"),
        payment(owner, just_before_midnight(DAY_ONE), 500, kind="refund"),
        payment(owner, at(DAY_ONE, 11), 5000, status="pending"),
        payment(owner, at(DAY_ONE, 12), 700, status="failed"),
        # Day two: a charge later refunded still counts on its day, and so does its refund.
        payment(owner, at(DAY_TWO, 0, 0, 0), 1000, status="refunded"),
        payment(owner, at(DAY_TWO, 18), 1000, kind="refund"),
        payment(owner, at(DAY_TWO, 19), 4999, kind="subscription"),
        # A refund alone makes the day negative.
        payment(owner, at(REFUND_ONLY_DAY, 7), 300, kind="refund"),
    )
    return {
        DAY_ONE: {
            "daily_draws": Decimal(5),
            "user_signups": Decimal(3),
            "revenue": Decimal("23.99"),  # (1999 + 900 - 500) / 100
            "avg_participants_per_draw": Decimal("17.5"),  # (10 + 25) / 2; failed draws do not count
            "error_rate": Decimal("33.3333"),  # 1 failed of 3 finished
        },
        DAY_TWO: {
            "daily_draws": Decimal(3),
            "user_signups": Decimal(1),
            "revenue": Decimal("49.99"),  # (1000 - 1000 + 4999) / 100
            "avg_participants_per_draw": Decimal(100),
            "error_rate": Decimal(50),  # 1 failed of 2 finished; the cancelled one is not finished
        },
        QUIET_DAY: dict.fromkeys(METRIC_TYPES, Decimal(0)),
        REFUND_ONLY_DAY: {**dict.fromkeys(METRIC_TYPES, Decimal(0)), "revenue": Decimal("-3.00")},
    }


async def roll_up(engine: AsyncEngine, *days: datetime.date) -> None:
    async with session_factory(engine)() as session:
        for day in days:
            await metrics.roll_up_day(session, day)
        await session.commit()


async def stored(engine: AsyncEngine) -> dict[tuple[str, datetime.date], Decimal]:
    async with session_factory(engine)() as session:
        rows = await session.execute(sa.select(SystemMetric.metric_type, SystemMetric.day, SystemMetric.value))
        return {(metric, day): value for metric, day, value in rows.all()}


async def full_rows(engine: AsyncEngine) -> list[tuple[Any, ...]]:
    async with session_factory(engine)() as session:
        rows = await session.execute(
            sa.select(
                SystemMetric.id,
                SystemMetric.metric_type,
                SystemMetric.day,
                SystemMetric.value,
                SystemMetric.metadata_,
                SystemMetric.created_at,
            ).order_by(SystemMetric.day, SystemMetric.metric_type)
        )
        return [tuple(row) for row in rows.all()]


def expected_rows(expected: dict[datetime.date, dict[str, Decimal]]) -> dict[tuple[str, datetime.date], Decimal]:
    return {(metric, day): value for day, values in expected.items() for metric, value in values.items()}


# Rolling up days


async def test_each_metric_of_each_day_is_computed_from_the_tables(
    engine: AsyncEngine, seeded: dict[datetime.date, dict[str, Decimal]]
) -> None:
    await roll_up(engine, *seeded)

    assert await stored(engine) == expected_rows(seeded)
    for _, metric_type, day, _, metadata, _ in await full_rows(engine):
        assert metric_type in METRIC_TYPES
        assert metadata == {"date": day.isoformat()}


async def test_compute_day_returns_what_roll_up_day_stores(
    engine: AsyncEngine, seeded: dict[datetime.date, dict[str, Decimal]]
) -> None:
    async with session_factory(engine)() as session:
        for day, expected in seeded.items():
            assert await metrics.compute_day(session, day) == expected
            assert await metrics.roll_up_day(session, day) == expected
        await session.rollback()
    assert await stored(engine) == {}, "roll_up_day leaves the commit to its caller"


async def test_rolling_up_again_gives_the_same_rows(
    engine: AsyncEngine, seeded: dict[datetime.date, dict[str, Decimal]]
) -> None:
    await roll_up(engine, *seeded)
    first = await full_rows(engine)

    await roll_up(engine, *seeded)
    await roll_up(engine, DAY_ONE, DAY_ONE)

    assert len(first) == len(seeded) * len(METRIC_TYPES)
    assert await full_rows(engine) == first


async def test_rolling_up_again_after_new_data_replaces_the_values_in_place(
    engine: AsyncEngine, owner: uuid.UUID, seeded: dict[datetime.date, dict[str, Decimal]]
) -> None:
    await roll_up(engine, DAY_ONE, DAY_TWO)
    ids_before = {(metric, day): row_id for row_id, metric, day, *_ in await full_rows(engine)}

    await add(
        engine,
        draw(owner, at(DAY_ONE, 20), "failed", at(DAY_ONE, 21)),
        payment(owner, at(DAY_ONE, 22), 1, kind="credit_pack"),
    )
    await roll_up(engine, DAY_ONE, DAY_TWO)

    values = await stored(engine)
    assert values[("daily_draws", DAY_ONE)] == 6
    assert values[("error_rate", DAY_ONE)] == Decimal(50)  # 2 failed of 4 finished
    assert values[("revenue", DAY_ONE)] == Decimal("24.00")
    assert values[("avg_participants_per_draw", DAY_ONE)] == Decimal("17.5")
    assert {key: value for key, value in values.items() if key[1] == DAY_TWO} == {
        (metric, DAY_TWO): value for metric, value in seeded[DAY_TWO].items()
    }
    assert {(metric, day): row_id for row_id, metric, day, *_ in await full_rows(engine)} == ids_before


async def test_averages_and_rates_keep_four_decimals(engine: AsyncEngine, owner: uuid.UUID) -> None:
    day = datetime.date(2025, 6, 1)
    await add(
        engine,
        *(draw(owner, at(day, 1), "completed", at(day, 2), participants=count) for count in (1, 1, 2)),
        *(draw(owner, at(day, 1), "failed", at(day, 2)) for _ in range(4)),
    )
    await roll_up(engine, day)
    values = await stored(engine)
    assert values[("avg_participants_per_draw", day)] == Decimal("1.3333")
    assert values[("error_rate", day)] == Decimal("57.1429")  # 4 of 7


async def test_the_series_fills_missing_days_with_zero(engine: AsyncEngine) -> None:
    today = datetime.datetime.now(UTC).date()
    await add(engine, SystemMetric(metric_type="revenue", day=today - datetime.timedelta(days=2), value=Decimal("9.5")))
    async with session_factory(engine)() as session:
        series = {item.metric_type: item for item in await metrics.series(session, 30)}
    assert list(series) == list(METRIC_TYPES)
    revenue = series["revenue"]
    assert len(revenue.days) == len(revenue.values) == 30
    assert (
        revenue.days[0] == (today - datetime.timedelta(days=29)).isoformat() and revenue.days[-1] == today.isoformat()
    )
    assert revenue.values[-3] == 9.5 and revenue.total == 9.5
    assert series["daily_draws"].total == 0


# The periodic job


ROLL_UP_JOB = next(job for job in JOBS if job.name == "roll-up-system-metrics")
JOB_CONTEXT = WorkerContext(Settings(environment="test", secret_key="x" * 40), httpx.AsyncClient())


@pytest.fixture
async def recent(engine: AsyncEngine, owner: uuid.UUID) -> dict[tuple[str, datetime.date], Decimal]:
    """Activity yesterday and today, and what the job must store for those two days."""
    today = datetime.datetime.now(UTC).date()
    yesterday = today - datetime.timedelta(days=1)
    midnight = at(today, 0)
    await add(
        engine,
        user(at(yesterday, 10)),
        user(at(yesterday, 11)),
        draw(owner, at(yesterday, 9), "completed", at(yesterday, 10), participants=40),
        draw(owner, at(yesterday, 9), "failed", at(yesterday, 10)),
        payment(owner, at(yesterday, 12), 2500),
        draw(owner, midnight, "completed", midnight, participants=8),
        payment(owner, midnight, 1000),
        payment(owner, midnight, 250, kind="refund"),
        # The day before yesterday is final and left alone.
        draw(owner, at(today - datetime.timedelta(days=2), 9), "completed", at(today - datetime.timedelta(days=2), 9)),
    )
    return expected_rows(
        {
            yesterday: {
                "daily_draws": Decimal(2),
                "user_signups": Decimal(2),
                "revenue": Decimal("25.00"),
                "avg_participants_per_draw": Decimal(40),
                "error_rate": Decimal(50),
            },
            today: {
                "daily_draws": Decimal(1),
                "user_signups": Decimal(0),
                "revenue": Decimal("7.50"),
                "avg_participants_per_draw": Decimal(8),
                "error_rate": Decimal(0),
            },
        }
    )


async def test_the_periodic_job_rolls_up_yesterday_and_today(
    engine: AsyncEngine, recent: dict[tuple[str, datetime.date], Decimal]
) -> None:
    maker = session_factory(engine)

    assert await run_job_once(maker, ROLL_UP_JOB, JOB_CONTEXT) == {"days": 2}
    assert await stored(engine) == recent

    first = await full_rows(engine)
    assert await run_job_once(maker, ROLL_UP_JOB, JOB_CONTEXT) == {"days": 2}
    assert await full_rows(engine) == first


async def test_the_job_is_skipped_while_another_worker_holds_its_lock(
    engine: AsyncEngine, recent: dict[tuple[str, datetime.date], Decimal]
) -> None:
    maker = session_factory(engine)
    async with engine.connect() as other_worker, other_worker.begin():
        await other_worker.execute(sa.select(sa.func.pg_advisory_xact_lock(ROLL_UP_JOB.lock_key)))

        assert await run_job_once(maker, ROLL_UP_JOB, JOB_CONTEXT) is None
        assert await stored(engine) == {}

    assert await run_job_once(maker, ROLL_UP_JOB, JOB_CONTEXT) == {"days": 2}
    assert await stored(engine) == recent


async def test_a_second_concurrent_run_is_skipped_while_the_first_runs(
    engine: AsyncEngine, recent: dict[tuple[str, datetime.date], Decimal]
) -> None:
    maker = session_factory(engine)
    started, release = asyncio.Event(), asyncio.Event()

    async def held_open(db: Any, context: Any) -> dict[str, int]:
        started.set()
        await release.wait()
        return await ROLL_UP_JOB.run(db, context)

    slow = PeriodicJob(ROLL_UP_JOB.name, ROLL_UP_JOB.every, held_open)
    assert slow.lock_key == ROLL_UP_JOB.lock_key
    first = asyncio.create_task(run_job_once(maker, slow, JOB_CONTEXT))
    try:
        await asyncio.wait_for(started.wait(), timeout=10)

        assert await asyncio.gather(*(run_job_once(maker, ROLL_UP_JOB, JOB_CONTEXT) for _ in range(3))) == [None] * 3
        assert await stored(engine) == {}
    finally:
        release.set()
    assert await asyncio.wait_for(first, timeout=10) == {"days": 2}
    assert await stored(engine) == recent
    assert await run_job_once(maker, ROLL_UP_JOB, JOB_CONTEXT) == {"days": 2}, (
        "the lock goes with the first run's transaction"
    )


async def test_other_jobs_do_not_share_the_lock(engine: AsyncEngine) -> None:
    assert len({job.lock_key for job in JOBS}) == len(JOBS)
