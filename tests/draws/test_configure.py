"""/draws/new: every refused setting answers 4xx with a message by its field; a valid one creates a pending draw."""

from __future__ import annotations

import asyncio
import datetime
import hashlib
import re
import uuid
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.conftest import LiveServer, post_form
from tests.draws.conftest import draw_fields, list_csv, submit_draw
from web.certificates.models import LogRecord
from web.credits.services import CreditsService
from web.db import connect, session_factory
from web.draws.models import Draw, DrawHistory, DrawParticipant
from web.draws.services import draw_cost
from web.fairness.log import blacklist_digest
from web.social.models import SocialAccount


def field_error(html: str, name: str) -> str:
    match = re.search(rf'id="{re.escape(name)}-error"[^>]*>([^<]*)<', html)
    assert match, f"no message element for {name}"
    return match.group(1).strip()


@pytest.mark.parametrize(
    ("expected_entries", "cost"),
    [(0, 1), (10_000, 1), (10_001, 2), (110_000, 2), (110_001, 3), (1_000_000, 11)],
)
def test_the_cost_is_one_credit_up_to_ten_thousand_and_one_more_per_started_hundred_thousand(
    expected_entries: int, cost: int
) -> None:
    assert draw_cost(expected_entries) == cost


async def test_the_form_needs_a_login(client: Any) -> None:
    response = await client.get("/draws/new")
    assert response.status_code == 303
    assert response.headers["location"].startswith("/login")


async def test_the_configure_page_offers_the_rules_and_the_upload(logged_in: Any) -> None:
    client, _ = await logged_in()
    page = await client.get("/draws/new")
    assert page.status_code == 200
    for name in ("title", "post_urls", "entries_file", "winners_count", "alternates_count", "start_at", "timezone"):
        assert f'name="{name}"' in page.text
    assert 'data-testid="rule-require_like"' in page.text


async def test_a_valid_list_draw_is_created_pending_with_its_opened_record_history_and_entries(
    logged_in: Any, grant: Any, engine: AsyncEngine, database_url: str
) -> None:
    client, user = await logged_in()
    await grant(user.id, 2)
    async with connect(database_url) as listener:
        queued: asyncio.Queue[str] = asyncio.Queue()
        await listener.add_listener("draw_queue", lambda *args: queued.put_nowait(args[3]))
        uploaded = "\ufeffusername,comment,platform\n@Alice,I want to win @bob,sandbox\nbob,win,\n".encode()
        response = await submit_draw(
            client,
            draw_fields(comment_keywords="win, friend", one_entry_per_user="on", min_mentions="1"),
            uploaded,
            url="/draws/new",
        )
        assert response.status_code == 303, response.text
        draw_id = uuid.UUID(response.headers["location"].rsplit("/", 1)[1])
        assert await asyncio.wait_for(queued.get(), 5) == str(draw_id)
    async with session_factory(engine)() as db:
        draw = await db.get_one(Draw, draw_id)
        assert draw.status == "pending" and draw.platform == "list" and draw.user_id == user.id
        assert draw.secret is not None and len(draw.secret) == 32, "the key of the entries' salts"
        assert draw.commitment is None
        file_digest = hashlib.sha256(uploaded).hexdigest()
        assert draw.sources == [{"kind": "list", "platform": "list", "rows": 2, "sha256": file_digest}]
        assert draw.config == {
            "filters": {"min_followers": 0, "exclude_suspicious": False, "exclude_businesses": False},
            "rules": {
                "require_like": False,
                "require_comment": False,
                "require_follow": False,
                "comment_keywords": ["win", "friend"],
                "min_mentions": 1,
                "one_entry_per_user": True,
            },
            "winners_count": 2,
            "alternates_count": 1,
        }
        history = list(await db.scalars(sa.select(DrawHistory).where(DrawHistory.draw_id == draw_id)))
        assert [row.action for row in history] == ["created"]
        opened = await db.scalar(sa.select(LogRecord).where(LogRecord.draw_id == draw_id))
        assert opened is not None and opened.kind == "opened"
        assert history[0].details["opened"] == opened.record_hash == opened.record["record_hash"]
        assert opened.record["subjects"] == [f"file:{file_digest}"] and opened.record["config"] == draw.config
        assert opened.record["blacklist"] == {"sha256": blacklist_digest([])[0], "count": 0}
        assert history[0].metadata_["ip"] == "127.0.0.1" and history[0].metadata_["user_agent"]
        entries = list(
            await db.scalars(
                sa.select(DrawParticipant)
                .where(DrawParticipant.draw_id == draw_id)
                .order_by(DrawParticipant.comment_id)
            )
        )
    assert [(e.platform, e.username, e.platform_user_id, e.comment_id, e.mentions_count) for e in entries] == [
        ("sandbox", "Alice", "alice", "row-1", 1),
        ("list", "bob", "bob", "row-2", 0),
    ]
    assert all(entry.is_eligible is None for entry in entries)
    page = await client.get(f"/draws/{draw_id}")
    assert f'<a href="/log/{opened.seq}">record {opened.seq}</a>' in page.text


async def test_a_scheduled_draw_keeps_its_start_time_in_utc(logged_in: Any, grant: Any, draw_row: Any) -> None:
    client, user = await logged_in()
    await grant(user.id, 1)
    start = (datetime.datetime.now(datetime.UTC) + datetime.timedelta(days=3)).astimezone(
        __import__("zoneinfo").ZoneInfo("Europe/Paris")
    )
    response = await submit_draw(
        client,
        draw_fields(start_at=start.strftime("%Y-%m-%dT%H:%M"), timezone="Europe/Paris"),
        list_csv(3),
    )
    assert response.status_code == 303, response.text
    draw = await draw_row(response.headers["location"].rsplit("/", 1)[1])
    assert draw.scheduled_at == start.replace(second=0, microsecond=0).astimezone(datetime.UTC)


def _past() -> str:
    return (datetime.datetime.now(datetime.UTC) - datetime.timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M")


def _far() -> str:
    return (datetime.datetime.now(datetime.UTC) + datetime.timedelta(days=91)).strftime("%Y-%m-%dT%H:%M")


REFUSED_SETTINGS = [
    ("empty title", {"title": "  "}, "title", "Enter the title."),
    ("title too long", {"title": "x" * 201}, "title", "The title is too long"),
    ("no winners", {"winners_count": "0"}, "winners_count", "Choose between 1 and 100 winners."),
    ("too many winners", {"winners_count": "101"}, "winners_count", "Choose between 1 and 100 winners."),
    ("winners not a number", {"winners_count": "three"}, "winners_count", "Choose between 1 and 100 winners."),
    ("negative alternates", {"alternates_count": "-1"}, "alternates_count", "Choose between 0 and 50 alternates."),
    ("too many alternates", {"alternates_count": "51"}, "alternates_count", "Choose between 0 and 50 alternates."),
    (
        "keyword list too long",
        {"comment_keywords": ",".join(f"word{n}" for n in range(21))},
        "comment_keywords",
        "Use at most 20 keywords",
    ),
    ("keyword too long", {"comment_keywords": "x" * 51}, "comment_keywords", "A keyword has at most 50"),
    ("mentions out of range", {"min_mentions": "999"}, "min_mentions", "is a whole number from 0 to 20"),
    ("start in the past", {"start_at": _past()}, "start_at", "The start time is in the past."),
    ("start too far", {"start_at": _far()}, "start_at", "at most 90 days ahead"),
    ("start unreadable", {"start_at": "next friday"}, "start_at", "Enter the start time as a date and a time"),
    ("unknown time zone", {"timezone": "Mars/Olympus"}, "timezone", "Choose a time zone from the list."),
    ("not a post address", {"post_urls": "javascript:alert(1)"}, "post_urls", "is not a post address"),
    ("like rule on a list", {"require_like": "on"}, "require_like", "An uploaded list has no post whose likes"),
    ("follow rule on a list", {"require_follow": "on"}, "require_follow", "no account whose followers"),
    ("followers filter without the column", {"min_followers": "10"}, "min_followers", "Add a followers_count"),
]


@pytest.mark.parametrize(
    ("case", "overrides", "field", "message"), REFUSED_SETTINGS, ids=[c[0] for c in REFUSED_SETTINGS]
)
async def test_a_refused_setting_answers_422_with_its_message_by_the_field(
    logged_in: Any, grant: Any, engine: AsyncEngine, case: str, overrides: dict[str, str], field: str, message: str
) -> None:
    client, user = await logged_in()
    await grant(user.id, 5)
    response = await submit_draw(client, draw_fields(**overrides), list_csv(5))
    assert response.status_code == 422, case
    assert message in field_error(response.text, field)
    async with session_factory(engine)() as db:
        assert await db.scalar(sa.select(sa.func.count()).select_from(Draw)) == 0


REFUSED_LISTS = [
    ("not UTF-8", "username\nJos\xe9\n".encode("latin-1"), "The file is not UTF-8 text"),
    ("empty", b"", "The file is empty"),
    ("header only", b"username,comment\n", "only its header line"),
    ("no username column", b"name,comment\nann,hi\n", "unknown column(s) name"),
    ("bad rows", b"username,followers_count\nann,12\n,3\nbob,many\n@,1\n", "3 row(s) of the file have problems"),
    ("too many rows", list_csv(100_001), "more than 100,000 rows"),
]


@pytest.mark.parametrize(("case", "content", "message"), REFUSED_LISTS, ids=[c[0] for c in REFUSED_LISTS])
async def test_a_refused_list_answers_422_with_its_message_by_the_upload(
    logged_in: Any, grant: Any, case: str, content: bytes, message: str
) -> None:
    client, user = await logged_in()
    await grant(user.id, 5)
    response = await submit_draw(client, draw_fields(), content)
    assert response.status_code == 422, case
    assert message in field_error(response.text, "entries_file")


async def test_every_bad_row_is_listed_with_its_line_number(logged_in: Any, grant: Any) -> None:
    client, user = await logged_in()
    await grant(user.id, 5)
    content = b"username,followers_count,account_type\nann,12,business\n,3,\nbob,many,\ncarl,1,robot\n=cmd,1,\n"
    response = await submit_draw(client, draw_fields(), content)
    assert response.status_code == 422
    problems = re.findall(r"<li>(Line \d+: [^<]*)</li>", response.text)
    assert [problem.split(":")[0] for problem in problems] == ["Line 3", "Line 4", "Line 5", "Line 6"]
    assert "the username is empty" in problems[0] and "many" in problems[1]
    assert "robot" in problems[2] and "starts with =" in problems[3]


async def test_an_oversized_list_is_refused_by_its_field(logged_in: Any, grant: Any) -> None:
    client, user = await logged_in()
    await grant(user.id, 5)
    content = b"username,comment\n" + b"someone," + b"x" * (10 * 1024 * 1024) + b"\n"
    response = await submit_draw(client, draw_fields(), content)
    assert response.status_code == 422
    assert "larger than 10 MB" in field_error(response.text, "entries_file")


async def test_no_source_is_refused_by_the_posts_field(logged_in: Any, grant: Any) -> None:
    client, user = await logged_in()
    await grant(user.id, 5)
    response = await submit_draw(client, draw_fields())
    assert response.status_code == 422
    assert "Choose at least one post" in field_error(response.text, "post")


async def test_a_balance_below_the_cost_is_refused_by_the_cost(logged_in: Any, engine: AsyncEngine) -> None:
    client, user = await logged_in()
    async with session_factory(engine)() as db:
        credits = CreditsService(db)
        balance = await credits.balance(user.id)
        if balance > 1:
            await credits.debit(user.id, balance - 1, idempotency_key=f"test:{uuid.uuid4()}")
    response = await submit_draw(client, draw_fields(), list_csv(10_001))
    assert response.status_code == 422
    assert "This draw costs 2 credits and you have 1" in field_error(response.text, "cost")
    async with session_factory(engine)() as db:
        assert await db.scalar(sa.select(sa.func.count()).select_from(Draw)) == 0


async def test_an_unknown_account_and_another_creators_account_are_refused(
    logged_in: Any, grant: Any, make_user: Any, engine: AsyncEngine
) -> None:
    client, user = await logged_in()
    await grant(user.id, 5)
    other = await make_user()
    async with session_factory(engine)() as db:
        account = SocialAccount(
            id=uuid.uuid4(), user_id=other.id, platform="sandbox", platform_user_id="42", username="other"
        )
        db.add(account)
        await db.commit()
    for value in (f"{uuid.uuid4()}:post-1", f"{account.id}:post-1", "not-a-choice"):
        response = await submit_draw(client, draw_fields(), posts=[value])
        assert response.status_code == 422
        assert "not on one of your connected accounts" in field_error(response.text, "post")
    # The other creator's account is not even listed for posts.
    assert (await client.get(f"/draws/new/posts?account={account.id}")).status_code == 404


async def test_posts_and_a_list_together_are_refused(logged_in: Any, grant: Any, engine: AsyncEngine) -> None:
    client, user = await logged_in()
    await grant(user.id, 5)
    response = await submit_draw(client, draw_fields(post_urls="https://example.com/p/1"), list_csv(3))
    assert response.status_code == 422
    assert "None of your connected accounts has a post" in field_error(response.text, "post_urls")


async def test_previewing_shows_the_cost_without_creating_anything(
    logged_in: Any, grant: Any, engine: AsyncEngine
) -> None:
    client, user = await logged_in()
    await grant(user.id, 5)
    response = await submit_draw(client, {**draw_fields(), "action": "preview"}, list_csv(10_500))
    assert response.status_code == 200
    assert "Cost: 2 credits" in response.text
    htmx = await submit_draw(client, draw_fields(), list_csv(50), url="/draws/new/preview")
    assert htmx.status_code == 200 and "Cost: 1 credit" in htmx.text
    assert 'id="draw-rules"' in htmx.text and "hx-swap-oob" in htmx.text
    async with session_factory(engine)() as db:
        assert await db.scalar(sa.select(sa.func.count()).select_from(Draw)) == 0


async def test_a_form_without_its_csrf_token_is_refused(logged_in: Any, grant: Any, live_server: LiveServer) -> None:
    client, user = await logged_in()
    await grant(user.id, 5)
    response = await client.post("/draws/new", data=draw_fields(), files={"entries_file": ("e.csv", list_csv(2))})
    assert response.status_code == 403
    assert (await post_form(client, "/draws/new", draw_fields())).status_code == 422
