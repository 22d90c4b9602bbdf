"""The TikTok provider against a fake TikTok (Login Kit v2, Display API, Business API) over HTTP."""

from __future__ import annotations

import datetime
import hashlib
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest

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
from tests.fakes.tiktok import OPEN_ID, TikTokEmulator
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
from web.social.providers.tiktok import TikTokProvider

FIRST_VIDEO = "7350000000000000001"


@pytest.fixture(scope="module")
def tiktok() -> Iterator[TikTokEmulator]:
    emulator = TikTokEmulator()
    with serve(emulator):
        yield emulator


@pytest.fixture
async def provider(tiktok: TikTokEmulator) -> AsyncIterator[TikTokProvider]:
    tiktok.reset()
    config = emulated_config(tiktok, "tiktok", extra_bases={"business": tiktok.base_url})
    async with httpx.AsyncClient(timeout=10) as http:
        yield TikTokProvider(config, http)


async def test_the_consent_page_gets_the_client_key_and_a_hex_pkce_challenge() -> None:
    config = ProviderConfig(CLIENT_ID, CLIENT_SECRET, redirect_uri("tiktok"), "https://www.tiktok.com", "x")
    async with httpx.AsyncClient() as http:
        request = TikTokProvider(config, http).authorization_request()
    assert request.url.startswith("https://www.tiktok.com/v2/auth/authorize/?")
    assert request.code_verifier is not None
    assert query_of(request.url) == {
        "response_type": "code",
        "client_key": CLIENT_ID,
        "redirect_uri": "http://127.0.0.1:8000/accounts/callback/tiktok",
        "state": request.state,
        "scope": "user.info.basic,user.info.profile,user.info.stats,video.list",
        "code_challenge": hashlib.sha256(request.code_verifier.encode()).hexdigest(),
        "code_challenge_method": "S256",
    }


async def test_a_connection_sends_the_client_key_and_the_verifier(
    provider: TikTokProvider, tiktok: TikTokEmulator
) -> None:
    token = await connect(provider)
    assert token.access_token.startswith("act.") and token.refresh_token and token.refresh_token.startswith("rft.")
    assert token.expires_at is not None
    assert abs((token.expires_at - datetime.datetime.now(datetime.UTC)).total_seconds() - 86400) < 60
    assert token.scopes == ("user.info.basic", "user.info.profile", "user.info.stats", "video.list")
    assert token.extra == {"open_id": OPEN_ID}
    form = tiktok.requests_to("/v2/oauth/token/")[0].form
    assert form["client_key"] == CLIENT_ID and form["client_secret"] == CLIENT_SECRET
    assert "client_id" not in form
    assert form["code_verifier"] and form["redirect_uri"] == redirect_uri("tiktok")


async def test_a_wrong_verifier_is_refused(provider: TikTokProvider) -> None:
    request = provider.authorization_request()
    code = (await consent(provider.http, request.url))["code"]
    with pytest.raises(TokenRevoked, match="Code verifier or code challenge is invalid"):
        await provider.exchange_code(code, "x" * 64)


async def test_refresh_tokens_rotate(provider: TikTokProvider) -> None:
    token = await connect(provider)
    renewed = await provider.refresh(token)
    assert renewed.access_token != token.access_token and renewed.refresh_token != token.refresh_token
    assert renewed.extra == {"open_id": OPEN_ID}
    assert (await provider.profile(renewed)).username == "cleack.creator"
    with pytest.raises(TokenRevoked, match="invalid_grant"):
        await provider.refresh(token)


async def test_disconnecting_revokes_the_grant(provider: TikTokProvider, tiktok: TikTokEmulator) -> None:
    token = await connect(provider)
    await provider.revoke(token)
    assert tiktok.requests_to("/v2/oauth/revoke/")[0].form["token"] == token.access_token
    with pytest.raises(TokenExpired):
        await provider.profile(token)
    with pytest.raises(TokenRevoked):
        await provider.comments(token, FIRST_VIDEO)


async def test_profile_has_the_follower_count(provider: TikTokProvider) -> None:
    profile = await provider.profile(await connect(provider))
    assert profile.platform_user_id == OPEN_ID and profile.username == "cleack.creator"
    assert profile.display_name == "Cleack on TikTok" and profile.followers_count == 8800


async def test_recent_videos_and_a_video_link(provider: TikTokProvider) -> None:
    token = await connect(provider)
    videos = await provider.recent_posts(token, limit=50)
    assert [video.id for video in videos] == [FIRST_VIDEO, "7350000000000000002", "7350000000000000003"]
    assert videos[0].comments_count == 250 and videos[0].likes_count == 500
    assert videos[0].created_at == datetime.datetime(2026, 11, 11, 18, 0, tzinfo=datetime.UTC)
    assert videos[0].url == f"https://www.tiktok.com/@cleack.creator/video/{FIRST_VIDEO}"
    resolved = await provider.resolve_post(token, f"https://www.tiktok.com/@cleack.creator/video/{FIRST_VIDEO}?lang=en")
    assert resolved.id == FIRST_VIDEO and resolved.text == "Giveaway 1! Comment to enter #giveaway"
    with pytest.raises(NotFound, match="not one of your TikTok videos"):
        await provider.resolve_post(token, "https://www.tiktok.com/@someone/video/7350000000000009999")
    with pytest.raises(NotFound, match="full TikTok address"):
        await provider.resolve_post(token, "https://vm.tiktok.com/ZMabc123/")


async def test_comments_come_from_the_business_api_page_by_page(
    provider: TikTokProvider, tiktok: TikTokEmulator
) -> None:
    token = await connect(provider)
    pages = []
    cursor = None
    while True:
        page = await provider.comments(token, FIRST_VIDEO, cursor)
        pages.append(page)
        cursor = page.next_cursor
        if cursor is None:
            break
    assert [len(page.items) for page in pages] == [30] * 8 + [10]
    comments = [comment for page in pages for comment in page.items]
    assert len({comment.id for comment in comments}) == 250
    first = comments[0]
    assert first.author_id == "user-0" and first.author_username == "tiktoker_0"
    assert first.text == "Me please 0 @best.friend" and first.mentions == ("best.friend",)
    assert first.created_at == datetime.datetime(2026, 11, 10, 18, 0, tzinfo=datetime.UTC)
    call = tiktok.requests_to("/business/comment/list/")[1]
    assert call.headers["access-token"] == token.access_token
    assert call.query["business_id"] == OPEN_ID and call.query["cursor"] == "30"
    resumed = await provider.comments(token, FIRST_VIDEO, pages[3].next_cursor)
    assert [comment.id for comment in resumed.items] == [comment.id for comment in pages[4].items]


@pytest.mark.parametrize(
    ("kind", "error", "message"),
    [
        ("expired", TokenExpired, "expired"),
        ("revoked", TokenRevoked, "no longer accepts"),
        ("permission", PermissionMissing, "Business accounts"),
        ("not_found", NotFound, "no such video"),
        ("server_error", PlatformError, "code 50000"),
        ("malformed", PlatformError, "unreadable"),
    ],
)
async def test_business_api_failures_become_typed_errors(
    provider: TikTokProvider, tiktok: TikTokEmulator, kind: str, error: type[Exception], message: str
) -> None:
    token = await connect(provider)
    tiktok.fail(kind, path="/business/comment/list/")
    with pytest.raises(error, match=message):
        await provider.comments(token, FIRST_VIDEO)
    assert len((await provider.comments(token, FIRST_VIDEO)).items) == 30


async def test_business_api_rate_limits_wait_a_minute(provider: TikTokProvider, tiktok: TikTokEmulator) -> None:
    token = await connect(provider)
    tiktok.fail("rate_limited", path="/business/comment/list/")
    with pytest.raises(RateLimited) as limited:
        await provider.comments(token, FIRST_VIDEO)
    assert limited.value.retry_after == 60


@pytest.mark.parametrize(
    ("kind", "error", "message"),
    [
        ("expired", TokenExpired, "no longer accepts"),
        ("permission", PermissionMissing, "did not authorize"),
        ("server_error", PlatformError, "internal_error"),
        ("malformed", PlatformError, "unreadable"),
        ("rate_limited", RateLimited, "slow down"),
    ],
)
async def test_display_api_failures_become_typed_errors(
    provider: TikTokProvider, tiktok: TikTokEmulator, kind: str, error: type[Exception], message: str
) -> None:
    token = await connect(provider)
    tiktok.fail(kind, path="/v2/video/list/")
    with pytest.raises(error, match=message):
        await provider.recent_posts(token)
    assert len(await provider.recent_posts(token)) == 3


async def test_a_missing_scope_is_a_missing_permission(provider: TikTokProvider, tiktok: TikTokEmulator) -> None:
    narrowed = TokenSet(tiktok.book.issue("act.", OPEN_ID, ("user.info.basic",), 3600).value)
    with pytest.raises(PermissionMissing) as refused:
        await provider.recent_posts(narrowed)
    assert refused.value.permission == "scope_not_authorized"


@pytest.mark.parametrize(
    ("kind", "error"),
    [
        ("token_error", TokenRevoked),
        ("token_error_with_200", TokenRevoked),
        ("token_without_access", PlatformError),
        ("server_error", PlatformError),
        ("malformed", PlatformError),
        ("rate_limited", RateLimited),
    ],
)
async def test_a_refused_token_request_raises(
    provider: TikTokProvider, tiktok: TikTokEmulator, kind: str, error: type[Exception]
) -> None:
    request = provider.authorization_request()
    code = (await consent(provider.http, request.url))["code"]
    tiktok.fail(kind, path="/v2/oauth/token/")
    with pytest.raises(error):
        await provider.exchange_code(code, request.code_verifier)


async def test_capabilities_are_what_tiktok_really_allows(provider: TikTokProvider) -> None:
    assert provider.capabilities == {
        Capability.PROFILE,
        Capability.RECENT_POSTS,
        Capability.RESOLVE_POST_URL,
        Capability.COMMENTS,
    }
    assert provider.why_not(Capability.LIKERS) == "TikTok's API gives a like count but not the list of who liked."
    with pytest.raises(NotSupported, match="follows you"):
        await provider.followers(TokenSet("unused"))
    with pytest.raises(NotSupported, match="TikTok app"):
        await provider.publish_reply(TokenSet("unused"), FIRST_VIDEO, "Winners!")
