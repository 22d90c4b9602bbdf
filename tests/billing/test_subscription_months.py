"""An annual plan grants 50 credits in each month of its year, once per month, through the periodic job."""

from __future__ import annotations

import datetime
from typing import Any

import httpx
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.billing.conftest import ANNUAL, balance, pay, scalar, session_id_of, start_checkout, wait_until
from web.billing.periods import add_months, month_index
from web.billing.services import grant_due_subscription_credits
from web.credits.services import WELCOME_BONUS
from web.db import session_factory
from web.worker import JOBS


async def test_an_annual_plan_grants_each_month_of_its_year_exactly_once(
    logged_in: Any, catalogue: None, engine: AsyncEngine, stripe_api: httpx.AsyncClient
) -> None:
    client, user = await logged_in()
    checkout_url = await start_checkout(client, ANNUAL)
    await pay(client, checkout_url)

    async def landed() -> bool:
        page = await client.get(f"/billing/return/status?session_id={session_id_of(checkout_url)}")
        return "Payment confirmed" in page.text

    await wait_until(landed)
    assert await balance(engine, user.id) == WELCOME_BONUS + 50
    start = await scalar(engine, "SELECT start_date FROM subscriptions WHERE user_id = :id", id=user.id)

    async def run_job(now: datetime.datetime) -> dict[str, int]:
        async with session_factory(engine)() as db:
            return await grant_due_subscription_credits(db, now)

    # The job runs many times a month; each month is granted once, months already past are caught up.
    for month in (0, 1, 1, 2, 4, 4, 7, 11, 11):
        await run_job(add_months(start, month) + datetime.timedelta(hours=2))
    assert await balance(engine, user.id) == WELCOME_BONUS + 12 * 50
    # After the year, until a renewal is paid, nothing more.
    assert (await run_job(add_months(start, 13)))["granted"] == 0
    assert await balance(engine, user.id) == WELCOME_BONUS + 12 * 50

    subscription_id = await scalar(
        engine, "SELECT stripe_subscription_id FROM subscriptions WHERE user_id = :id", id=user.id
    )
    await stripe_api.post(f"/v1/test_helpers/subscriptions/{subscription_id}/advance", data={"outcome": "paid"})

    async def renewed() -> bool:
        return await balance(engine, user.id) == WELCOME_BONUS + 13 * 50

    await wait_until(renewed)
    await run_job(add_months(start, 12) + datetime.timedelta(hours=1))
    assert await balance(engine, user.id) == WELCOME_BONUS + 13 * 50
    await run_job(add_months(start, 13) + datetime.timedelta(hours=1))
    assert await balance(engine, user.id) == WELCOME_BONUS + 14 * 50
    keys = await scalar(
        engine,
        "SELECT count(DISTINCT idempotency_key) FROM credits WHERE user_id = :id AND transaction_type = 'subscription'",
        id=user.id,
    )
    assert keys == 14


def test_the_job_is_one_of_the_workers_periodic_jobs() -> None:
    assert "grant-subscription-credits" in {job.name for job in JOBS}


def test_months_keep_their_day_and_clamp_at_the_end_of_short_months() -> None:
    start = datetime.datetime(2026, 1, 31, 12, tzinfo=datetime.UTC)
    assert add_months(start, 1) == datetime.datetime(2026, 2, 28, 12, tzinfo=datetime.UTC)
    assert month_index(start, datetime.datetime(2026, 2, 28, 11, tzinfo=datetime.UTC)) == 0
    assert month_index(start, datetime.datetime(2026, 2, 28, 12, tzinfo=datetime.UTC)) == 1
    assert month_index(start, datetime.datetime(2027, 1, 31, 12, tzinfo=datetime.UTC)) == 12
    assert month_index(start, start - datetime.timedelta(seconds=1)) == -1
