"""The Instagram provider against a fake Instagram speaking its wire format over HTTP."""

from __future__ import annotations

import datetime
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest

from tests.fakes.instagram import LONG_LIFETIME, USER_ID, InstagramEmulator
from tests.fakes.server import (
    CLIENT_ID,
    CLIENT_SECRET,
    connect,
    consent,
    emulated_config,
    query_of,
    redirect_uri,
    serve,
)
from web.social.providers.base import (
    Capability,
    NotFound,
    NotSupported,
    PermissionMissing,
    PlatformError,
    ProviderConfig,
    RateLimited,
    TokenExpired,
    TokenRevoked,
    TokenSet,
)
from web.social.providers.instagram import InstagramProvider


@pytest.fixture(scope="module")
def instagram() -> Iterator[InstagramEmulator]:
    emulator = InstagramEmulator()
    with serve(emulator):
        yield emulator


@pytest.fixture
async def provider(instagram: InstagramEmulator) -> AsyncIterator[InstagramProvider]:
    instagram.reset()
    config = emulated_config(instagram, "instagram")
    async with httpx.AsyncClient(timeout=10) as http:
        yield InstagramProvider(config, http)


async def test_the_consent_page_is_asked_for_business_scopes_with_the_exact_redirect_uri() -> None:
    config = ProviderConfig(CLIENT_ID, CLIENT_SECRET, redirect_uri("instagram"), "https://www.instagram.com", "x")
    async with httpx.AsyncClient() as http:
        request = InstagramProvider(config, http).authorization_request()
    assert request.url.startswith("https://www.instagram.com/oauth/authorize?")
    params = query_of(request.url)
    assert params == {
        "response_type": "code",
        "client_id": CLIENT_ID,
        "redirect_uri": "http://127.0.0.1:8000/accounts/callback/instagram",
        "state": request.state,
        "scope": "instagram_business_basic,instagram_business_manage_comments",
    }
    assert request.code_verifier is None and len(request.state) >= 32


async def test_a_connection_ends_with_a_sixty_day_token(
    provider: InstagramProvider, instagram: InstagramEmulator
) -> None:
    token = await connect(provider)

    assert token.access_token.startswith("IGAAlong")
    assert token.refresh_token is None
    assert token.expires_at is not None
    lifetime = token.expires_at - datetime.datetime.now(datetime.UTC)
    assert abs(lifetime.total_seconds() - LONG_LIFETIME) < 60
    assert token.scopes == ("instagram_business_basic", "instagram_business_manage_comments")
    assert token.extra == {"user_id": USER_ID}
    exchange = instagram.requests_to("/oauth/access_token")[0]
    assert exchange.method == "POST"
    assert exchange.form["client_secret"] == CLIENT_SECRET
    assert exchange.form["redirect_uri"] == redirect_uri("instagram")
    long_lived = instagram.requests_to("/access_token")[-1]
    assert long_lived.method == "GET" and long_lived.query["grant_type"] == "ig_exchange_token"
    assert long_lived.query["client_secret"] == CLIENT_SECRET


async def test_a_spent_code_is_refused(provider: InstagramProvider) -> None:
    request = provider.authorization_request()
    code = (await consent(provider.http, request.url))["code"]
    await provider.exchange_code(code, None)
    with pytest.raises(TokenRevoked, match="Invalid authorization code"):
        await provider.exchange_code(code, None)


async def test_refresh_renews_the_token_for_another_sixty_days(
    provider: InstagramProvider, instagram: InstagramEmulator
) -> None:
    token = await connect(provider)
    renewed = await provider.refresh(token)
    assert renewed.access_token != token.access_token
    assert renewed.expires_at is not None and renewed.scopes == token.scopes and renewed.extra == token.extra
    call = instagram.requests_to("/refresh_access_token")[0]
    assert call.query["grant_type"] == "ig_refresh_token" and "client_secret" not in call.query
    assert (await provider.profile(renewed)).username == "cleack.creator"


async def test_refreshing_an_expired_or_withdrawn_token_asks_for_reconnection(
    provider: InstagramProvider, instagram: InstagramEmulator
) -> None:
    token = await connect(provider)
    instagram.book.expire(token.access_token)
    with pytest.raises(TokenExpired):
        await provider.refresh(token)
    other = await connect(provider)
    instagram.book.revoke(other.access_token)
    with pytest.raises(TokenRevoked):
        await provider.refresh(other)


async def test_profile_reads_the_professional_account(provider: InstagramProvider) -> None:
    profile = await provider.profile(await connect(provider))
    assert profile.platform_user_id == USER_ID
    assert profile.username == "cleack.creator"
    assert profile.display_name == "Cleack Creator"
    assert profile.account_type == "business"
    assert profile.followers_count == 1520


async def test_recent_posts_come_with_their_counts(provider: InstagramProvider) -> None:
    posts = await provider.recent_posts(await connect(provider), limit=10)
    assert [post.id for post in posts] == ["17900000000000001", "17900000000000002", "17900000000000003"]
    first = posts[0]
    assert first.url == "https://www.instagram.com/p/C0ffee1x/"
    assert first.comments_count == 250 and first.likes_count == 1001
    assert first.created_at == datetime.datetime(2026, 11, 2, 12, 0, tzinfo=datetime.UTC)


async def test_a_post_link_is_resolved_by_its_shortcode(provider: InstagramProvider) -> None:
    token = await connect(provider)
    for link in (
        "https://www.instagram.com/p/C0ffee2x/",
        "https://instagram.com/reel/C0ffee2x?igsh=abc",
        "https://www.instagram.com/cleack.creator/p/C0ffee2x/",
    ):
        assert (await provider.resolve_post(token, link)).id == "17900000000000002"
    with pytest.raises(NotFound, match="not one of your recent Instagram posts"):
        await provider.resolve_post(token, "https://www.instagram.com/p/SomeoneElse/")
    with pytest.raises(NotFound, match="not a link to an Instagram post"):
        await provider.resolve_post(token, "https://example.com/p/C0ffee2x/")


async def test_comments_are_read_page_by_page_and_resume_from_a_saved_cursor(provider: InstagramProvider) -> None:
    token = await connect(provider)
    pages = []
    cursor = None
    while True:
        page = await provider.comments(token, "17900000000000001", cursor)
        pages.append(page)
        cursor = page.next_cursor
        if cursor is None:
            break
    assert [len(page.items) for page in pages] == [100, 100, 50]
    comments = [comment for page in pages for comment in page.items]
    assert len({comment.id for comment in comments}) == 250
    first = comments[0]
    assert first.author_id == "17841500000000000" and first.author_username == "fan_0"
    assert first.text == "Comment 0 on 1 @friend_0 @other.friend"
    assert first.mentions == ("friend_0", "other.friend")
    assert first.created_at == datetime.datetime(2026, 11, 1, 12, 0, tzinfo=datetime.UTC)
    assert comments[1].mentions == ()

    resumed = await provider.comments(token, "17900000000000001", pages[0].next_cursor)
    assert [comment.id for comment in resumed.items] == [comment.id for comment in pages[1].items]
    assert (await provider.comments(token, "17900000000000003")).items == []


async def test_comments_of_an_unknown_post_are_not_found(provider: InstagramProvider) -> None:
    token = await connect(provider)
    with pytest.raises(NotFound):
        await provider.comments(token, "17999999999999999")
    with pytest.raises(NotFound):
        await provider.comments(token, "../me")


async def test_the_winners_are_announced_under_the_post(
    provider: InstagramProvider, instagram: InstagramEmulator
) -> None:
    comment_id = await provider.publish_reply(await connect(provider), "17900000000000002", "Congrats @fan_3!")
    assert instagram.published[-1] == {
        "id": comment_id,
        "media_id": "17900000000000002",
        "message": "Congrats @fan_3!",
    }


@pytest.mark.parametrize(
    ("kind", "error", "message"),
    [
        ("expired", TokenExpired, "expired"),
        ("revoked", TokenRevoked, "no longer accepts"),
        ("not_found", NotFound, "no such post"),
        ("permission", PermissionMissing, "permission is missing"),
        ("server_error", PlatformError, "unknown error"),
        ("malformed", PlatformError, "unreadable"),
    ],
)
async def test_platform_failures_become_typed_errors(
    provider: InstagramProvider, instagram: InstagramEmulator, kind: str, error: type[Exception], message: str
) -> None:
    token = await connect(provider)
    instagram.fail(kind, path="/comments")
    with pytest.raises(error, match=message):
        await provider.comments(token, "17900000000000001")
    assert len((await provider.comments(token, "17900000000000001")).items) == 100


async def test_rate_limits_wait_for_what_the_usage_headers_say(
    provider: InstagramProvider, instagram: InstagramEmulator
) -> None:
    token = await connect(provider)
    instagram.fail("rate_limited_business", path="/comments")
    with pytest.raises(RateLimited) as business:
        await provider.comments(token, "17900000000000001")
    assert business.value.retry_after == 7 * 60
    instagram.fail("rate_limited", path="/me/media")
    with pytest.raises(RateLimited) as app:
        await provider.recent_posts(token)
    assert app.value.retry_after == 15 * 60


async def test_a_server_error_is_a_platform_error_with_its_status(
    provider: InstagramProvider, instagram: InstagramEmulator
) -> None:
    token = await connect(provider)
    instagram.fail("server_error", path="/me")
    with pytest.raises(PlatformError) as failure:
        await provider.profile(token)
    assert failure.value.status_code == 500


@pytest.mark.parametrize(
    ("kind", "error"),
    [
        ("token_error", TokenRevoked),
        ("token_without_access", PlatformError),
        ("server_error", PlatformError),
        ("malformed", PlatformError),
        ("rate_limited", RateLimited),
    ],
)
async def test_a_refused_code_exchange_raises(
    provider: InstagramProvider, instagram: InstagramEmulator, kind: str, error: type[Exception]
) -> None:
    request = provider.authorization_request()
    code = (await consent(provider.http, request.url))["code"]
    instagram.fail(kind, path="/oauth/access_token")
    with pytest.raises(error):
        await provider.exchange_code(code, None)


async def test_a_refused_long_lived_exchange_raises(provider: InstagramProvider, instagram: InstagramEmulator) -> None:
    request = provider.authorization_request()
    code = (await consent(provider.http, request.url))["code"]
    instagram.fail("token_without_access", path="/access_token")
    with pytest.raises(PlatformError, match="no access token"):
        await provider.exchange_code(code, None)


async def test_capabilities_are_what_instagram_really_allows(provider: InstagramProvider) -> None:
    assert provider.capabilities == {
        Capability.PROFILE,
        Capability.RECENT_POSTS,
        Capability.RESOLVE_POST_URL,
        Capability.COMMENTS,
        Capability.PUBLISH_REPLY,
    }
    assert provider.why_not(Capability.LIKERS) == "Instagram's API gives a like count but not the list of who liked."
    assert provider.why_not(Capability.FOLLOWERS) == "Instagram's API cannot tell whether someone follows you."
    token = TokenSet("unused")
    with pytest.raises(NotSupported, match="list of who liked"):
        await provider.likers(token, "17900000000000001")
    with pytest.raises(NotSupported, match="follows you"):
        await provider.followers(token)
