"""The X provider against a fake X speaking OAuth 2.0 with PKCE and the X API v2 over HTTP."""

from __future__ import annotations

import base64
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
from tests.fakes.x import LIFETIME, RATE_LIMIT_RESET_IN, USER_ID, XEmulator
from web.social.providers.base import (
    Capability,
    NotFound,
    PermissionMissing,
    PlatformError,
    ProviderConfig,
    RateLimited,
    TokenExpired,
    TokenRevoked,
    TokenSet,
)
from web.social.providers.x import XProvider

FIRST_POST = "1860000000000000001"


@pytest.fixture(scope="module")
def x() -> Iterator[XEmulator]:
    emulator = XEmulator()
    with serve(emulator):
        yield emulator


@pytest.fixture
async def provider(x: XEmulator) -> AsyncIterator[XProvider]:
    x.reset()
    config = emulated_config(x, "x")
    async with httpx.AsyncClient(timeout=10) as http:
        yield XProvider(config, http)


async def test_the_consent_page_gets_scopes_pkce_and_the_exact_redirect_uri() -> None:
    config = ProviderConfig(CLIENT_ID, CLIENT_SECRET, redirect_uri("x"), "https://x.com", "https://api.x.com")
    async with httpx.AsyncClient() as http:
        request = XProvider(config, http).authorization_request()
    assert request.url.startswith("https://x.com/i/oauth2/authorize?")
    params = query_of(request.url)
    assert request.code_verifier is not None and 43 <= len(request.code_verifier) <= 128
    digest = hashlib.sha256(request.code_verifier.encode()).digest()
    assert params == {
        "response_type": "code",
        "client_id": CLIENT_ID,
        "redirect_uri": "http://127.0.0.1:8000/accounts/callback/x",
        "state": request.state,
        "scope": "tweet.read users.read follows.read like.read tweet.write offline.access",
        "code_challenge": base64.urlsafe_b64encode(digest).rstrip(b"=").decode(),
        "code_challenge_method": "S256",
    }


async def test_a_connection_authenticates_the_client_and_proves_the_verifier(provider: XProvider, x: XEmulator) -> None:
    token = await connect(provider)
    assert token.access_token.startswith("xat-") and token.refresh_token and token.refresh_token.startswith("xrt-")
    assert token.expires_at is not None
    assert abs((token.expires_at - datetime.datetime.now(datetime.UTC)).total_seconds() - LIFETIME) < 60
    assert "offline.access" in token.scopes
    assert token.extra == {"user_id": USER_ID}
    exchange = x.requests_to("/2/oauth2/token")[0]
    assert exchange.headers["authorization"].startswith("Basic ")
    assert "client_secret" not in exchange.form
    assert exchange.form["redirect_uri"] == redirect_uri("x") and exchange.form["code_verifier"]


async def test_a_wrong_verifier_is_refused(provider: XProvider) -> None:
    request = provider.authorization_request()
    code = (await consent(provider.http, request.url))["code"]
    with pytest.raises(TokenRevoked, match="invalid_request"):
        await provider.exchange_code(code, "a-verifier-that-was-never-used-for-this-code-000000")


async def test_refresh_tokens_rotate_and_a_spent_one_is_refused(provider: XProvider) -> None:
    token = await connect(provider)
    renewed = await provider.refresh(token)
    assert renewed.access_token != token.access_token
    assert renewed.refresh_token and renewed.refresh_token != token.refresh_token
    assert renewed.extra == {"user_id": USER_ID}
    assert (await provider.profile(renewed)).username == "cleack_creator"
    with pytest.raises(TokenRevoked, match="Value passed for the token was invalid"):
        await provider.refresh(token)


async def test_disconnecting_revokes_both_tokens(provider: XProvider, x: XEmulator) -> None:
    token = await connect(provider)
    await provider.revoke(token)
    hints = [request.form["token_type_hint"] for request in x.requests_to("/2/oauth2/revoke")]
    assert hints == ["refresh_token", "access_token"]
    with pytest.raises(TokenExpired):
        await provider.profile(token)
    with pytest.raises(TokenRevoked):
        await provider.refresh(token)


async def test_profile_has_the_follower_count(provider: XProvider) -> None:
    profile = await provider.profile(await connect(provider))
    assert profile.platform_user_id == USER_ID and profile.username == "cleack_creator"
    assert profile.display_name == "Cleack Creator" and profile.followers_count == 2500
    assert profile.account_type == "personal"


async def test_recent_posts_and_a_post_link(provider: XProvider) -> None:
    token = await connect(provider)
    posts = await provider.recent_posts(token, limit=3)
    assert [post.id for post in posts] == [FIRST_POST, "1860000000000000002", "1860000000000000003"]
    assert posts[0].comments_count == 250 and posts[0].likes_count == 120
    assert posts[0].url == f"https://x.com/i/web/status/{FIRST_POST}"
    for link in (
        f"https://x.com/cleack_creator/status/{FIRST_POST}",
        f"https://twitter.com/cleack_creator/status/{FIRST_POST}?s=20",
        f"https://mobile.twitter.com/i/web/status/{FIRST_POST}",
    ):
        assert (await provider.resolve_post(token, link)).id == FIRST_POST
    with pytest.raises(NotFound, match="deleted"):
        await provider.resolve_post(token, "https://x.com/cleack_creator/status/1999999999999999999")
    with pytest.raises(NotFound, match="not a link to a post on X"):
        await provider.resolve_post(token, "https://example.com/cleack_creator/status/1")


async def test_replies_are_read_page_by_page_and_resume_from_a_saved_next_token(
    provider: XProvider, x: XEmulator
) -> None:
    token = await connect(provider)
    pages = []
    cursor = None
    while True:
        page = await provider.comments(token, FIRST_POST, cursor)
        pages.append(page)
        cursor = page.next_cursor
        if cursor is None:
            break
    # The conversation's first post comes back from search too; it is not a reply.
    assert [len(page.items) for page in pages] == [100, 100, 50]
    replies = [reply for page in pages for reply in page.items]
    assert len({reply.id for reply in replies}) == 250 and FIRST_POST not in {reply.id for reply in replies}
    newest = replies[0]
    assert newest.author_username == "fan_49" and newest.author_followers_count == 147
    assert newest.mentions == ("cleack_creator", "pal_one")
    assert replies[1].mentions == ("cleack_creator",)
    assert newest.created_at == datetime.datetime(2026, 11, 20, 12, 10, tzinfo=datetime.UTC)
    search = x.requests_to("/search/recent")[1]
    assert search.query["query"] == f"conversation_id:{FIRST_POST}" and search.query["max_results"] == "100"
    assert search.query["next_token"] == pages[0].next_cursor
    resumed = await provider.comments(token, FIRST_POST, pages[1].next_cursor)
    assert [reply.id for reply in resumed.items] == [reply.id for reply in pages[2].items]
    assert (await provider.comments(token, "1860000000000000003")).items == []


async def test_likers_and_followers_are_listed_page_by_page(provider: XProvider, x: XEmulator) -> None:
    token = await connect(provider)
    first = await provider.likers(token, FIRST_POST)
    rest = await provider.likers(token, FIRST_POST, first.next_cursor)
    assert (len(first.items), len(rest.items), rest.next_cursor) == (100, 20, None)
    assert first.items[0].username == "fan_0"
    followers = []
    cursor = None
    while True:
        page = await provider.followers(token, cursor)
        followers.extend(page.items)
        cursor = page.next_cursor
        if cursor is None:
            break
    assert len({user.id for user in followers}) == 2500
    assert x.requests_to("/followers")[-1].query["pagination_token"]


async def test_the_winners_are_announced_as_a_reply(provider: XProvider, x: XEmulator) -> None:
    tweet_id = await provider.publish_reply(await connect(provider), FIRST_POST, "Congratulations @fan_3!")
    assert x.published[-1] == {
        "id": tweet_id,
        "text": "Congratulations @fan_3!",
        "reply": {"in_reply_to_tweet_id": FIRST_POST},
    }


async def test_a_rate_limit_waits_until_the_reset_time(provider: XProvider, x: XEmulator) -> None:
    token = await connect(provider)
    x.fail("rate_limited", path="/search/recent")
    with pytest.raises(RateLimited) as limited:
        await provider.comments(token, FIRST_POST)
    assert RATE_LIMIT_RESET_IN - 3 <= limited.value.retry_after <= RATE_LIMIT_RESET_IN


@pytest.mark.parametrize(
    ("kind", "error", "message"),
    [
        ("expired", TokenExpired, "no longer accepts"),
        ("permission", PermissionMissing, "access level"),
        ("not_found", NotFound, "Could not find"),
        ("server_error", PlatformError, "HTTP 503"),
        ("malformed", PlatformError, "unreadable"),
    ],
)
async def test_platform_failures_become_typed_errors(
    provider: XProvider, x: XEmulator, kind: str, error: type[Exception], message: str
) -> None:
    token = await connect(provider)
    x.fail(kind, path="/liking_users")
    with pytest.raises(error, match=message):
        await provider.likers(token, FIRST_POST)
    assert len((await provider.likers(token, FIRST_POST)).items) == 100


async def test_a_missing_scope_is_a_missing_permission(provider: XProvider, x: XEmulator) -> None:
    narrowed = TokenSet(x.book.issue("xat-", USER_ID, ("tweet.read", "users.read"), 3600).value)
    with pytest.raises(PermissionMissing, match=r"like\.read"):
        await provider.likers(narrowed, FIRST_POST)


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
async def test_a_refused_token_request_raises(
    provider: XProvider, x: XEmulator, kind: str, error: type[Exception]
) -> None:
    request = provider.authorization_request()
    code = (await consent(provider.http, request.url))["code"]
    x.fail(kind, path="/2/oauth2/token")
    with pytest.raises(error):
        await provider.exchange_code(code, request.code_verifier)


async def test_wrong_client_credentials_are_a_platform_error(x: XEmulator) -> None:
    config = ProviderConfig(CLIENT_ID, "wrong-secret", redirect_uri("x"), x.base_url, x.base_url, x.base_url)
    async with httpx.AsyncClient(timeout=10) as http:
        provider = XProvider(config, http)
        with pytest.raises(PlatformError, match="client credentials"):
            await provider.refresh(TokenSet("xat-any", refresh_token="xrt-any"))


async def test_capabilities_are_what_the_x_api_allows() -> None:
    assert XProvider.capabilities == frozenset(Capability) - {Capability.AUTHOR_ACCOUNT_TYPE}
    assert "business accounts" in XProvider.why_not(Capability.AUTHOR_ACCOUNT_TYPE)


async def test_replies_leave_the_author_account_type_unknown(provider: XProvider) -> None:
    page = await provider.comments(await connect(provider), FIRST_POST)
    assert page.items and all(reply.author_is_business is None for reply in page.items)
