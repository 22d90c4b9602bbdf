"""Watching a draw: the SSE stream fed by NOTIFY, the polling fragment, cancelling with one refund, owners only."""

from __future__ import annotations

import asyncio
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.conftest import post_form
from tests.draws.conftest import read_events, update_draw, wait_for_event
from web.credits.models import Credit
from web.db import session_factory
from web.draws.models import DrawHistory


async def test_the_stream_sends_progress_when_notified_and_ends_at_completion(
    list_draw: Any, database_url: str
) -> None:
    client, _, draw_id = await list_draw()
    events: list[tuple[str, str]] = []
    async with client.stream("GET", f"/draws/{draw_id}/events") as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        reader = asyncio.create_task(read_events(response, events))
        await wait_for_event(events, lambda event: event[0] == "progress" and 'data-status="pending"' in event[1])
        await update_draw(
            database_url,
            draw_id,
            status="processing",
            progress={
                "stage": "fetching",
                "fetched": 1234,
                "expected": 5000,
                "excluded": {"duplicate": 7},
                "eligible": 0,
                "percent": 24,
                "paused_until": None,
                "message": None,
            },
        )
        await wait_for_event(events, lambda event: "1,234" in event[1] and "Already entered" in event[1])
        await update_draw(
            database_url,
            draw_id,
            progress={
                "stage": "paused",
                "fetched": 2000,
                "expected": 5000,
                "excluded": {},
                "eligible": 0,
                "percent": 40,
                "paused_until": "2026-11-22T10:15:00+00:00",
                "message": None,
            },
        )
        await wait_for_event(events, lambda event: "paused until 2026-11-22 10:15:00" in event[1])
        await update_draw(database_url, draw_id, status="completed", progress={"stage": "done", "percent": 100})
        await asyncio.wait_for(reader, 10)
    assert events[-1] == ("done", "completed")
    assert 'data-status="completed"' in events[-2][1]


async def test_the_polling_fragment_polls_only_while_the_draw_runs(list_draw: Any, database_url: str) -> None:
    client, _, draw_id = await list_draw()
    running = await client.get(f"/draws/{draw_id}/live?poll=1", headers={"HX-Request": "true"})
    assert running.status_code == 200
    assert 'hx-trigger="every 2s"' in running.text and "<html" not in running.text
    await update_draw(database_url, draw_id, status="failed", error="Not enough credits: this draw needs 2, you have 1")
    finished = await client.get(f"/draws/{draw_id}/live?poll=1", headers={"HX-Request": "true"})
    assert "every 2s" not in finished.text
    assert "Not enough credits: this draw needs 2, you have 1" in finished.text


async def test_cancelling_a_pending_draw_records_it_and_refunds_nothing(
    list_draw: Any, engine: AsyncEngine, draw_row: Any
) -> None:
    client, _, draw_id = await list_draw()
    response = await post_form(client, f"/draws/{draw_id}/cancel", {})
    assert response.status_code == 303 and response.headers["location"] == f"/draws/{draw_id}"
    assert (await draw_row(draw_id)).status == "cancelled"
    async with session_factory(engine)() as db:
        history = list(await db.scalars(sa.select(DrawHistory).where(DrawHistory.action == "cancelled")))
        refunds = await db.scalar(
            sa.select(sa.func.count()).select_from(Credit).where(Credit.transaction_type == "refund")
        )
    assert len(history) == 1 and history[0].metadata_["ip"] == "127.0.0.1" and history[0].metadata_["user_agent"]
    assert refunds == 0


async def test_two_cancels_at_once_refund_the_debit_exactly_once(
    list_draw: Any, engine: AsyncEngine, database_url: str
) -> None:
    client, user, draw_id = await list_draw(credits=5)
    async with session_factory(engine)() as db:
        from web.credits.services import CreditsService

        await CreditsService(db).debit(user.id, 1, idempotency_key=f"draw:{draw_id}:debit")
        balance_after_debit = await CreditsService(db).balance(user.id)
    await update_draw(database_url, draw_id, status="processing", credits_used=1)
    answers = await asyncio.gather(*(post_form(client, f"/draws/{draw_id}/cancel", {}) for _ in range(4)))
    assert all(answer.status_code == 303 for answer in answers)
    async with session_factory(engine)() as db:
        refunds = list(await db.scalars(sa.select(Credit).where(Credit.transaction_type == "refund")))
        cancelled = await db.scalar(
            sa.select(sa.func.count()).select_from(DrawHistory).where(DrawHistory.action == "cancelled")
        )
        balance = await CreditsService(db).balance(user.id)
    assert [(row.amount, row.idempotency_key) for row in refunds] == [(1, f"draw:{draw_id}:refund")]
    assert cancelled == 1 and balance == balance_after_debit + 1


async def test_a_finished_draw_cannot_be_cancelled(list_draw: Any, database_url: str, draw_row: Any) -> None:
    client, _, draw_id = await list_draw()
    await update_draw(database_url, draw_id, status="completed")
    assert (await post_form(client, f"/draws/{draw_id}/cancel", {})).status_code == 303
    assert (await draw_row(draw_id)).status == "completed"


async def test_another_creator_can_neither_see_nor_watch_nor_cancel_nor_export_a_draw(
    list_draw: Any, logged_in: Any, draw_row: Any
) -> None:
    _, _, draw_id = await list_draw()
    stranger, _ = await logged_in()
    for path in ("", "/live", "/events", "/excluded", "/entries.csv", "/winners.csv"):
        assert (await stranger.get(f"/draws/{draw_id}{path}")).status_code == 404, path
    assert (await post_form(stranger, f"/draws/{draw_id}/cancel", {})).status_code == 404
    assert (await draw_row(draw_id)).status == "pending"
