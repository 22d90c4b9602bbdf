"""Draws run by the engine against the live sandbox platform: a creator with a connected sandbox account, posts,
draws created directly in the database, and in-process engines and runners."""

from __future__ import annotations

import asyncio
import datetime
import secrets
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
import sqlalchemy as sa
from click.testing import CliRunner
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from uuid_utils.compat import uuid7

from tests.conftest import Creator, LiveServer
from tests.social.connect import callback, query_of, start
from web.certificates.log import with_log_entry
from web.cli import main
from web.db import session_factory
from web.draws.engine import DrawEngine
from web.draws.models import Draw, DrawHistory, DrawParticipant
from web.draws.rules import CANONICAL_ORDER
from web.draws.runner import DrawRunner, RunnerConfig
from web.draws.services import DrawService
from web.fairness import new_secret
from web.fairness.entries import Entry, derive_salt
from web.fairness.entries_csv import EntryRow
from web.sandbox.models import SandboxAccount, SandboxPost
from web.sandbox.services import SCOPES, SandboxService
from web.settings import Settings
from web.social.models import SocialAccount
from web.social.services import platform_http_client

RULES_OFF: dict[str, Any] = {
    "filters": {"min_followers": 0, "exclude_suspicious": False, "exclude_businesses": False},
    "rules": {
        "require_like": False,
        "require_comment": True,
        "require_follow": False,
        "comment_keywords": [],
        "min_mentions": 0,
        "one_entry_per_user": False,
    },
    "winners_count": 3,
    "alternates_count": 2,
}


@dataclass
class SandboxCreator:
    user: Creator
    account: SocialAccount
    sandbox_account: SandboxAccount
    settings: Settings
    # The creator's logged-in browser session.
    client: httpx.AsyncClient


@dataclass
class Engines:
    """In-process draw engines and runners, like a worker process has."""

    session_maker: async_sessionmaker[AsyncSession]
    engine: DrawEngine

    def runner(self, owner: str | None = None, lease_seconds: float = 30.0, poll_seconds: float = 0.2) -> DrawRunner:
        return DrawRunner(self.session_maker, self.engine, RunnerConfig(lease_seconds, poll_seconds), owner)


@pytest.fixture
async def engines(engine: AsyncEngine, live_server: LiveServer, database_url: str) -> AsyncIterator[Engines]:
    async with platform_http_client() as http:
        maker = session_factory(engine)
        yield Engines(maker, DrawEngine(maker, live_server.settings, http, database_url))


@pytest.fixture
def sandbox_creator(
    logged_in: Any, engine: AsyncEngine, live_server: LiveServer
) -> Callable[[], Awaitable[SandboxCreator]]:
    """A verified creator who connected a new sandbox account through the app's OAuth flow.

    The creator's consent is given through the sandbox's own service (its page is the sandbox's business):
    the app starts the connection, the sandbox issues the code for the app's PKCE challenge, and the
    browser lands on the app's callback, which exchanges the code over HTTP like with any platform.
    """

    async def make() -> SandboxCreator:
        client, user = await logged_in()
        username = f"creator_{secrets.token_hex(4)}"
        started = await start(client)
        params = query_of(started.headers["location"])
        async with session_factory(engine)() as db:
            sandbox = SandboxService(db, live_server.settings)
            sandbox_account = await sandbox.ensure_account(username)
            code = await sandbox.issue_code(
                sandbox_account, params["redirect_uri"], params["code_challenge"], " ".join(SCOPES)
            )
        landed = await callback(
            client, f"{params['redirect_uri']}?{urlencode({'code': code, 'state': params['state']})}"
        )
        assert landed.status_code == 303 and "notice=connected" in landed.headers["location"], landed.text
        async with session_factory(engine)() as db:
            account = await db.scalar(sa.select(SocialAccount).where(SocialAccount.user_id == user.id))
        assert account is not None and account.username == username
        return SandboxCreator(user, account, sandbox_account, live_server.settings, client)

    return make


async def create_post(
    engine: AsyncEngine, live_server: LiveServer, creator: SandboxCreator, comments: int, **behaviour: Any
) -> SandboxPost:
    async with session_factory(engine)() as db:
        sandbox = SandboxService(db, live_server.settings)
        account = await db.get(SandboxAccount, creator.sandbox_account.id)
        assert account is not None
        post = await sandbox.create_post(account, comments, behaviour=behaviour)
        await db.commit()
        return post


async def create_draw(
    engine: AsyncEngine,
    creator: SandboxCreator,
    posts: list[SandboxPost],
    config: dict[str, Any] | None = None,
    *,
    scheduled_at: datetime.datetime | None = None,
    draw_id: uuid.UUID | None = None,
    secret: bytes | None = None,
    sources: list[dict[str, Any]] | None = None,
) -> uuid.UUID:
    """A pending draw as the creation form leaves it (its blacklist frozen, its opened record in the public log),
    and the nudge that wakes idle workers."""
    config = config or RULES_OFF
    secret = secret or new_secret()
    draw = Draw(
        id=draw_id or uuid7(),
        user_id=creator.user.id,
        social_account_id=creator.account.id,
        title="Summer giveaway",
        platform="sandbox" if sources is None else "list",
        sources=sources
        or [
            {
                "kind": "post",
                "platform": "sandbox",
                "account_id": str(creator.account.id),
                "post_id": post.post_id,
                "post_url": f"/sandbox/p/{post.post_id}",
                "expected_entries": post.comments_count,
            }
            for post in posts
        ],
        config=config,
        status="pending",
        winners_count=config["winners_count"],
        alternates_count=config["alternates_count"],
        progress={"stage": "queued", "fetched": 0, "expected": sum(post.comments_count for post in posts)},
        secret=secret,
        scheduled_at=scheduled_at,
    )
    async with session_factory(engine)() as db:
        db.add(draw)
        await db.flush()
        draw.progress = with_log_entry(draw.progress, await DrawService(db).open(draw, creator.settings))
        await db.execute(sa.select(sa.func.pg_notify("draw_queue", str(draw.id))))
        await db.commit()
    return draw.id


def verify(*args: str | Path) -> Any:
    """`cleack verify` with these arguments, as a user runs it."""
    return CliRunner().invoke(main, ["verify", *map(str, args)])


async def save(client: httpx.AsyncClient, url: str, path: Path) -> Path:
    """Download `url` to `path`, as a visitor saves a public document."""
    response = await client.get(url)
    assert response.status_code == 200, response.text
    await asyncio.to_thread(path.write_bytes, response.content)
    return path


async def drawn(
    engines: Engines, engine: AsyncEngine, creator: SandboxCreator, posts: list[SandboxPost], config: dict[str, Any]
) -> Draw:
    """A draw of `posts` created as the form creates it and run to its certificate by a runner."""
    draw_id = await create_draw(engine, creator, posts, config)
    assert await engines.runner().run_next(asyncio.Event())
    draw = await load_draw(engine, draw_id)
    assert draw.status == "completed" and draw.certificate is not None, draw.error
    return draw


async def entry_rows(engine: AsyncEngine, draw_id: uuid.UUID) -> list[EntryRow]:
    """Every collected entry in canonical order, with its salt and verdict: the draw's entries.csv, as rows."""
    async with session_factory(engine)() as db:
        draw = await db.get(Draw, draw_id)
        assert draw is not None and draw.secret is not None
        participants = await db.scalars(
            sa.select(DrawParticipant).where(DrawParticipant.draw_id == draw_id).order_by(sa.text(CANONICAL_ORDER))
        )
        rows = []
        for participant in participants:
            entry = Entry(
                participant.platform, participant.platform_user_id, participant.username, participant.comment_id or ""
            )
            rows.append(
                EntryRow(
                    entry=entry,
                    eligible=bool(participant.is_eligible),
                    exclusion_reason=participant.exclusion_reason,
                    salt=derive_salt(draw.secret, entry),
                )
            )
        return rows


async def load_draw(engine: AsyncEngine, draw_id: uuid.UUID) -> Draw:
    async with session_factory(engine)() as db:
        draw = await db.get(Draw, draw_id)
        assert draw is not None
        return draw


async def history_actions(engine: AsyncEngine, draw_id: uuid.UUID) -> list[str]:
    async with session_factory(engine)() as db:
        rows = await db.scalars(
            sa.select(DrawHistory.action).where(DrawHistory.draw_id == draw_id).order_by(DrawHistory.created_at)
        )
        return list(rows)


async def entry_counts(engine: AsyncEngine, draw_id: uuid.UUID) -> tuple[int, int]:
    """(entries stored, distinct comment ids among them)."""
    async with session_factory(engine)() as db:
        row = (
            await db.execute(
                sa.select(sa.func.count(), sa.func.count(sa.distinct(DrawParticipant.comment_id))).where(
                    DrawParticipant.draw_id == draw_id
                )
            )
        ).one()
        return int(row[0]), int(row[1])


async def wait_for(check: Callable[[], Awaitable[bool]], within: float = 60.0, every: float = 0.05) -> None:
    deadline = asyncio.get_running_loop().time() + within
    while not await check():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("the condition did not come true in time")
        await asyncio.sleep(every)
