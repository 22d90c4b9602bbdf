"""The winners' announcement: drafted from the result, edited, published under the sandbox post or scheduled."""

from __future__ import annotations

import datetime
import re
import uuid
from html import unescape
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.conftest import LiveServer, post_form
from tests.fairness.draws import make_draw
from tests.social.connect import connect_sandbox
from web.db import session_factory
from web.draws.models import Announcement, Draw
from web.social.models import SocialAccount
from web.social.services import SocialService
from web.worker import JOBS, WorkerContext, run_job_once

# Scheduled announcements go out through the workers' periodic job.
PUBLISH_JOB = next(job for job in JOBS if job.name == "publish-scheduled-announcements")

UTC = datetime.UTC


async def insert_completed_draw(
    engine: AsyncEngine, user_id: uuid.UUID, sources: list[dict[str, Any]], *, status: str = "completed"
) -> Draw:
    """A finished draw as the engine leaves it: winners, counts and a signed certificate."""
    certificate = make_draw(30, issued_at=datetime.datetime.now(UTC)).certificate
    moment = datetime.datetime.now(UTC)
    platform = sources[0]["platform"] if sources else "list"
    draw = Draw(
        user_id=user_id,
        title="Winter giveaway",
        platform=platform,
        sources=sources,
        config=certificate["config"],
        status=status,
        winners_count=3,
        alternates_count=2,
        winners=[{**winner, "selected_at": moment.isoformat()} for winner in certificate["winners"]],
        alternates=certificate["alternates"],
        participants_count=certificate["counts"]["participants"],
        eligible_count=certificate["counts"]["eligible"],
        commitment=certificate["commitment"],
        merkle_root=certificate["merkle_root"],
        certificate=certificate,
        certificate_hash=certificate["certificate_hash"],
        executed_at=moment,
        completed_at=moment,
    )
    async with session_factory(engine)() as session:
        session.add(draw)
        await session.commit()
    return draw


async def sandbox_post_draw(
    engine: AsyncEngine, live_server: LiveServer, user_id: uuid.UUID, post_id: str | None = None
) -> tuple[Draw, str]:
    """A completed draw on the creator's connected sandbox account's first post (or on `post_id`)."""
    async with session_factory(engine)() as session:
        account = await session.scalar(sa.select(SocialAccount).where(SocialAccount.user_id == user_id))
        assert account is not None
        async with httpx.AsyncClient() as http:
            posts = await SocialService(session, live_server.settings, http).recent_posts(account)
    chosen = post_id or posts[-1].id
    source = {"kind": "post", "platform": "sandbox", "account_id": str(account.id), "post_id": chosen}
    return await insert_completed_draw(engine, user_id, [source]), chosen


@pytest.fixture
async def creator(logged_in: Any) -> tuple[httpx.AsyncClient, Any]:
    client, user = await logged_in()
    connected = await connect_sandbox(client)
    assert connected.status_code == 303, connected.text
    return client, user


def textarea(html: str) -> str:
    found = re.search(r'<textarea id="content"[^>]*>(.*?)</textarea>', html, re.S)
    assert found, "the page has the announcement field"
    return unescape(found.group(1))


async def announcement_of(engine: AsyncEngine, draw: Draw) -> Announcement | None:
    async with session_factory(engine)() as session:
        return await session.scalar(sa.select(Announcement).where(Announcement.draw_id == draw.id))


async def test_the_draft_names_the_winners_and_links_the_certificate(
    creator: tuple[httpx.AsyncClient, Any], engine: AsyncEngine, live_server: LiveServer
) -> None:
    client, user = creator
    draw, _ = await sandbox_post_draw(engine, live_server, user.id)

    page = await client.get(f"/draws/{draw.id}/announcement")

    assert page.status_code == 200
    draft = textarea(page.text)
    names = [f"@{winner['username']}" for winner in draw.winners]
    assert all(name in draft for name in names)
    assert draft.index(names[0]) < draft.index(names[1]) < draft.index(names[2])
    assert f"{live_server.url}/certificates/{draw.certificate_hash}" in draft
    assert "Thank you" in draft and len(draft) <= 500
    assert f"{len(draft)} / 500 characters" in page.text
    assert 'data-testid="announcement-status">draft<' in page.text
    assert await announcement_of(engine, draw) is None


async def test_the_creator_edits_and_publishes_it_under_the_sandbox_post(
    creator: tuple[httpx.AsyncClient, Any], engine: AsyncEngine, live_server: LiveServer
) -> None:
    client, user = creator
    draw, post_id = await sandbox_post_draw(engine, live_server, user.id)
    text = (
        f"Bravo @{draw.winners[0]['username']}! Check the draw: {live_server.url}/certificates/{draw.certificate_hash}"
    )

    saved = await post_form(client, f"/draws/{draw.id}/announcement", {"content": text + "\r\n", "action": "save"})
    page = await client.get(saved.headers["location"])
    counter = await post_form(client, f"/draws/{draw.id}/announcement/count", {"content": text})

    assert saved.status_code == 303
    assert textarea(page.text) == text and "The draft is saved." in page.text
    assert f"{len(text)} / 500 characters" in counter.text
    published = await post_form(client, f"/draws/{draw.id}/announcement", {"content": text, "action": "publish"})
    assert published.status_code == 303
    shown = await client.get(published.headers["location"])
    assert "The announcement is published under your post." in shown.text
    assert 'data-testid="announcement-status">published<' in shown.text
    announcement = await announcement_of(engine, draw)
    assert announcement is not None and announcement.status == "published" and announcement.platform == "sandbox"
    assert announcement.metadata_["reply_id"]
    post_page = await client.get(f"/sandbox/p/{post_id}")
    assert unescape(post_page.text).count(text) == 1
    again = await post_form(client, f"/draws/{draw.id}/announcement", {"content": "changed", "action": "save"})
    assert again.status_code == 409
    assert "already published" in again.text


@pytest.mark.parametrize(
    ("data", "field", "message"),
    [
        ({"content": "x" * 501, "action": "save"}, "content", "at most 500 characters; this one has 501"),
        ({"content": "   ", "action": "publish"}, "content", "it is empty"),
        ({"content": "Soon!", "action": "schedule", "scheduled_for": "2020-01-01T10:00"}, "scheduled_for", "past"),
        ({"content": "Soon!", "action": "schedule", "scheduled_for": ""}, "scheduled_for", "Choose when"),
        ({"content": "Soon!", "action": "schedule", "scheduled_for": "tomorrow"}, "scheduled_for", "date and a time"),
    ],
)
async def test_bad_input_is_refused_next_to_its_field(
    creator: tuple[httpx.AsyncClient, Any],
    engine: AsyncEngine,
    live_server: LiveServer,
    data: dict[str, str],
    field: str,
    message: str,
) -> None:
    client, user = creator
    draw, _ = await sandbox_post_draw(engine, live_server, user.id)

    answer = await post_form(client, f"/draws/{draw.id}/announcement", {"timezone": "UTC", **data})

    assert answer.status_code == 422
    error = re.search(rf'<p class="field-error" id="{field}-error"[^>]*>(.*?)</p>', answer.text, re.S)
    assert error and message in unescape(error.group(1))
    assert await announcement_of(engine, draw) is None


async def test_another_user_finds_nothing_and_forms_need_their_token(
    creator: tuple[httpx.AsyncClient, Any], engine: AsyncEngine, live_server: LiveServer, logged_in: Any
) -> None:
    _, user = creator
    draw, _ = await sandbox_post_draw(engine, live_server, user.id)
    stranger, _ = await logged_in()

    assert (await stranger.get(f"/draws/{draw.id}/announcement")).status_code == 404
    posted = await post_form(stranger, f"/draws/{draw.id}/announcement", {"content": "Mine!", "action": "publish"})
    assert posted.status_code == 404
    forged = await stranger.post(f"/draws/{draw.id}/announcement", data={"content": "x", "action": "publish"})
    assert forged.status_code == 403
    assert await announcement_of(engine, draw) is None


async def test_a_draw_still_running_has_no_announcement(
    creator: tuple[httpx.AsyncClient, Any], engine: AsyncEngine
) -> None:
    client, user = creator
    draw = await insert_completed_draw(engine, user.id, [], status="processing")

    assert (await client.get(f"/draws/{draw.id}/announcement")).status_code == 404


async def test_a_scheduled_announcement_is_published_once_by_the_job(
    creator: tuple[httpx.AsyncClient, Any], engine: AsyncEngine, live_server: LiveServer
) -> None:
    client, user = creator
    draw, post_id = await sandbox_post_draw(engine, live_server, user.id)
    later = (datetime.datetime.now(UTC) + datetime.timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M")
    text = "The winners are drawn, congratulations to all three!"

    scheduled = await post_form(
        client,
        f"/draws/{draw.id}/announcement",
        {"content": text, "action": "schedule", "scheduled_for": later, "timezone": "UTC"},
    )

    assert scheduled.status_code == 303
    announcement = await announcement_of(engine, draw)
    assert announcement is not None and announcement.status == "scheduled"
    async with httpx.AsyncClient() as http:
        context = WorkerContext(live_server.settings, http)
        maker = session_factory(engine)
        assert await run_job_once(maker, PUBLISH_JOB, context) == {"published": 0, "failed": 0}
        async with session_factory(engine)() as session:
            await session.execute(
                sa.update(Announcement)
                .where(Announcement.id == announcement.id)
                .values(scheduled_for=datetime.datetime.now(UTC) - datetime.timedelta(minutes=1))
            )
            await session.commit()
        first = await run_job_once(maker, PUBLISH_JOB, context)
        second = await run_job_once(maker, PUBLISH_JOB, context)

    assert first == {"published": 1, "failed": 0}
    assert second == {"published": 0, "failed": 0}
    post_page = await client.get(f"/sandbox/p/{post_id}")
    assert unescape(post_page.text).count(text) == 1
    published = await announcement_of(engine, draw)
    assert published is not None and published.status == "published" and published.published_at is not None


async def test_a_failed_publication_keeps_the_reason_and_can_be_retried(
    creator: tuple[httpx.AsyncClient, Any], engine: AsyncEngine, live_server: LiveServer
) -> None:
    client, user = creator
    draw, _ = await sandbox_post_draw(engine, live_server, user.id, post_id="no-such-post")

    first = await post_form(client, f"/draws/{draw.id}/announcement", {"content": "Bravo!", "action": "publish"})
    page = await client.get(first.headers["location"])

    assert first.status_code == 303
    assert 'data-testid="announcement-status">failed<' in page.text
    assert 'data-testid="announcement-error"' in page.text
    assert "Try again" in page.text
    failed = await announcement_of(engine, draw)
    assert failed is not None and failed.status == "failed" and failed.metadata_["error"]
    retried = await post_form(client, f"/draws/{draw.id}/announcement", {"content": "Bravo!", "action": "publish"})
    assert retried.status_code == 303
    assert (await announcement_of(engine, draw)).status == "failed"  # type: ignore[union-attr]


async def test_a_list_draw_offers_the_text_to_copy_and_says_why(
    creator: tuple[httpx.AsyncClient, Any], engine: AsyncEngine
) -> None:
    client, user = creator
    draw = await insert_completed_draw(engine, user.id, [{"kind": "list", "platform": "list", "rows": 30}])

    page = await client.get(f"/draws/{draw.id}/announcement")
    refused = await post_form(client, f"/draws/{draw.id}/announcement", {"content": "Bravo!", "action": "publish"})

    assert page.status_code == 200
    assert "cannot be published automatically" in page.text and "uploaded list" in page.text
    assert 'data-testid="publish"' not in page.text
    assert textarea(page.text).startswith("🎉 Congratulations")
    assert refused.status_code == 422
    assert "uploaded list" in refused.text
