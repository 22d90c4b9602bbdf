"""The app's sandbox provider reads this server correctly: every call and every typed error."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.conftest import LiveServer
from tests.sandbox.dance import Tokens, connect
from tests.sandbox.test_api import add_post
from web.db import session_factory
from web.sandbox.services import SandboxService
from web.social.providers import provider_config
from web.social.providers.base import NotFound, PlatformError, RateLimited, TokenExpired, TokenRevoked, TokenSet
from web.social.providers.sandbox import SandboxProvider


@pytest.fixture
async def provider(live_server: LiveServer) -> AsyncIterator[SandboxProvider]:
    config = provider_config(live_server.settings, "sandbox")
    assert config is not None
    async with httpx.AsyncClient(timeout=30) as http:
        yield SandboxProvider(config, http)


@pytest.fixture
async def token(client: httpx.AsyncClient, live_server: LiveServer) -> TokenSet:
    tokens: Tokens = await connect(client, live_server, "client_creator")
    return TokenSet(tokens.access_token, tokens.refresh_token)


async def test_profile_posts_resolve_comments_likers_followers_and_reply(
    provider: SandboxProvider, token: TokenSet, live_server: LiveServer, engine: AsyncEngine
) -> None:
    profile = await provider.profile(token)
    assert profile.username == "client_creator" and profile.account_type == "creator"
    assert profile.followers_count and profile.followers_count > 0
    posts = await provider.recent_posts(token)
    assert sorted(post.comments_count or 0 for post in posts) == [100, 10_000, 1_000_000]
    small = next(post for post in posts if post.comments_count == 10_000)
    assert small.url and (await provider.resolve_post(token, small.url)).id == small.id

    comments, cursor, pages = [], None, 0
    while True:
        page = await provider.comments(token, small.id, cursor)
        comments.extend(page.items)
        pages += 1
        cursor = page.next_cursor
        if cursor is None:
            break
    assert pages == 10 and len({comment.id for comment in comments}) == 10_000
    assert any(comment.mentions for comment in comments) and any(comment.author_is_business for comment in comments)
    assert all(comment.created_at is not None for comment in comments)

    likers = await provider.likers(token, small.id)
    assert len(likers.items) == 1_000 and likers.next_cursor == "1000"
    followers = await provider.followers(token)
    assert len({user.id for user in followers.items}) == 1_000
    reply_id = await provider.publish_reply(token, small.id, "Congratulations to the winners!")
    assert reply_id


async def test_typed_errors(
    provider: SandboxProvider, token: TokenSet, client: httpx.AsyncClient, live_server: LiveServer, engine: AsyncEngine
) -> None:
    with pytest.raises(NotFound):
        await provider.resolve_post(token, "https://example.com/p/1")
    with pytest.raises(NotFound):
        await provider.comments(token, "missing")
    limited = await add_post(
        engine, live_server.settings, "client_creator", 10, rate_limit={"requests": 1, "window_seconds": 60}
    )
    await provider.comments(token, limited)
    with pytest.raises(RateLimited) as caught:
        await provider.comments(token, limited)
    assert 1 <= caught.value.retry_after <= 61
    garbled = await add_post(engine, live_server.settings, "client_creator", 3_000, malformed_every=1, times=1)
    with pytest.raises(PlatformError):
        await provider.comments(token, garbled)
    failing = await add_post(
        engine, live_server.settings, "client_creator", 10, fail_pages={"every": 1, "status": 502, "times": 1}
    )
    with pytest.raises(PlatformError) as failed:
        await provider.comments(token, failing)
    assert failed.value.status_code == 502
    assert len((await provider.comments(token, failing)).items) == 10

    async with session_factory(engine)() as db:
        service = SandboxService(db, live_server.settings)
        account = await service.account("client_creator")
        assert account is not None
        await service.expire_access_tokens(account.id)
    with pytest.raises(TokenExpired):
        await provider.profile(token)
    refreshed = await provider.refresh(token)
    assert (await provider.profile(refreshed)).username == "client_creator"
    await provider.revoke(refreshed)
    with pytest.raises(TokenRevoked):
        await provider.profile(refreshed)
    with pytest.raises(TokenRevoked):
        await provider.refresh(refreshed)
