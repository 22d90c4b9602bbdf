"""The Facebook Pages provider against a fake Facebook speaking the Graph API's wire format over HTTP."""

from __future__ import annotations

import datetime
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest

from tests.fakes.facebook import PAGE_ID, FacebookEmulator
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
from web.social.providers.facebook import FacebookProvider

FIRST_POST = f"{PAGE_ID}_200000000000001"


@pytest.fixture(scope="module")
def facebook() -> Iterator[FacebookEmulator]:
    emulator = FacebookEmulator()
    with serve(emulator):
        yield emulator


@pytest.fixture
async def provider(facebook: FacebookEmulator) -> AsyncIterator[FacebookProvider]:
    facebook.reset()
    facebook.pages_shared = True
    config = emulated_config(facebook, "facebook")
    async with httpx.AsyncClient(timeout=10) as http:
        yield FacebookProvider(config, http)


async def test_the_login_dialog_is_asked_for_page_permissions_with_the_exact_redirect_uri() -> None:
    config = ProviderConfig(CLIENT_ID, CLIENT_SECRET, redirect_uri("facebook"), "https://www.facebook.com", "x")
    async with httpx.AsyncClient() as http:
        request = FacebookProvider(config, http).authorization_request()
    assert request.url.startswith("https://www.facebook.com/v23.0/dialog/oauth?")
    assert query_of(request.url) == {
        "response_type": "code",
        "client_id": CLIENT_ID,
        "redirect_uri": "http://127.0.0.1:8000/accounts/callback/facebook",
        "state": request.state,
        "scope": "pages_show_list,pages_read_engagement,pages_read_user_content,pages_manage_engagement",
    }
    assert request.code_verifier is None


async def test_a_connection_keeps_the_page_token_and_the_page_id(
    provider: FacebookProvider, facebook: FacebookEmulator
) -> None:
    token = await connect(provider)

    assert token.access_token.startswith("EAApage")
    assert token.refresh_token is not None and token.refresh_token.startswith("EAAuserLong")
    assert token.expires_at is None
    assert token.extra == {"page_id": PAGE_ID, "page_name": "Cleack Page"}
    calls = facebook.requests_to("/oauth/access_token")
    assert [call.query.get("grant_type") for call in calls] == ["authorization_code", "fb_exchange_token"]
    assert all(call.query["client_secret"] == CLIENT_SECRET for call in calls)
    assert calls[0].query["redirect_uri"] == redirect_uri("facebook")


async def test_a_login_without_a_shared_page_is_refused(provider: FacebookProvider, facebook: FacebookEmulator) -> None:
    facebook.pages_shared = False
    with pytest.raises(PermissionMissing, match="No Facebook Page was shared"):
        await connect(provider)


async def test_refresh_reads_the_page_token_again_with_the_user_token(
    provider: FacebookProvider, facebook: FacebookEmulator
) -> None:
    token = await connect(provider)
    renewed = await provider.refresh(token)
    assert renewed.access_token != token.access_token
    assert renewed.refresh_token == token.refresh_token and renewed.extra == token.extra
    assert (await provider.profile(renewed)).username == "cleackpage"
    facebook.book.expire(token.refresh_token or "")
    with pytest.raises(TokenExpired):
        await provider.refresh(token)
    with pytest.raises(TokenRevoked):
        await provider.refresh(TokenSet(token.access_token))


async def test_disconnecting_withdraws_the_permissions(provider: FacebookProvider, facebook: FacebookEmulator) -> None:
    token = await connect(provider)
    await provider.revoke(token)
    assert facebook.requests_to("/me/permissions")[0].method == "DELETE"
    with pytest.raises(TokenRevoked):
        await provider.profile(token)


async def test_profile_is_the_page(provider: FacebookProvider) -> None:
    profile = await provider.profile(await connect(provider))
    assert profile.platform_user_id == PAGE_ID
    assert profile.username == "cleackpage" and profile.display_name == "Cleack Page"
    assert profile.account_type == "business" and profile.followers_count == 4200


async def test_recent_posts_come_with_comment_and_reaction_counts(provider: FacebookProvider) -> None:
    posts = await provider.recent_posts(await connect(provider))
    assert [post.id for post in posts] == [FIRST_POST, f"{PAGE_ID}_200000000000002", f"{PAGE_ID}_200000000000003"]
    assert posts[0].comments_count == 250 and posts[0].likes_count == 120
    assert posts[0].url == "https://www.facebook.com/cleackpage/posts/pfbid0Post1Abc"
    assert posts[0].created_at == datetime.datetime(2026, 11, 2, 9, 0, tzinfo=datetime.UTC)


async def test_a_post_link_is_resolved(provider: FacebookProvider) -> None:
    token = await connect(provider)
    by_permalink = await provider.resolve_post(token, "https://m.facebook.com/cleackpage/posts/pfbid0Post2Abc/")
    assert by_permalink.id == f"{PAGE_ID}_200000000000002"
    by_story = await provider.resolve_post(
        token, f"https://www.facebook.com/permalink.php?story_fbid=200000000000003&id={PAGE_ID}"
    )
    assert by_story.id == f"{PAGE_ID}_200000000000003"
    by_number = await provider.resolve_post(token, "https://www.facebook.com/cleackpage/posts/200000000000001")
    assert by_number.id == FIRST_POST
    with pytest.raises(NotFound, match="not one of your Facebook Page's posts"):
        await provider.resolve_post(token, "https://www.facebook.com/cleackpage/posts/pfbid0Unknown")
    with pytest.raises(NotFound, match="not a Facebook link"):
        await provider.resolve_post(token, "https://example.com/cleackpage/posts/1")


async def test_comments_are_read_page_by_page_and_resume_from_a_saved_cursor(provider: FacebookProvider) -> None:
    token = await connect(provider)
    pages = []
    cursor = None
    while True:
        page = await provider.comments(token, FIRST_POST, cursor)
        pages.append(page)
        cursor = page.next_cursor
        if cursor is None:
            break
    assert [len(page.items) for page in pages] == [100, 100, 50]
    comments = [comment for page in pages for comment in page.items]
    assert len({comment.id for comment in comments}) == 250
    assert comments[0].author_id == "250000000000000" and comments[0].author_username == "Fan 0"
    assert comments[0].text == "Count me in 0 Friend One" and comments[0].mentions == ("Friend One",)
    assert comments[1].mentions == ()
    resumed = await provider.comments(token, FIRST_POST, pages[1].next_cursor)
    assert [comment.id for comment in resumed.items] == [comment.id for comment in pages[2].items]


async def test_likers_are_the_people_who_reacted(provider: FacebookProvider) -> None:
    token = await connect(provider)
    first = await provider.likers(token, FIRST_POST)
    second = await provider.likers(token, FIRST_POST, first.next_cursor)
    assert len(first.items) == 100 and len(second.items) == 20 and second.next_cursor is None
    assert first.items[0].id == "250000000000000" and first.items[0].username == "Fan 0"


async def test_the_winners_are_announced_under_the_post(provider: FacebookProvider, facebook: FacebookEmulator) -> None:
    comment_id = await provider.publish_reply(await connect(provider), FIRST_POST, "The winner is Fan 7!")
    assert facebook.published[-1] == {"id": comment_id, "post_id": FIRST_POST, "message": "The winner is Fan 7!"}


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
    provider: FacebookProvider, facebook: FacebookEmulator, kind: str, error: type[Exception], message: str
) -> None:
    token = await connect(provider)
    facebook.fail(kind, path="/reactions")
    with pytest.raises(error, match=message):
        await provider.likers(token, FIRST_POST)
    assert len((await provider.likers(token, FIRST_POST)).items) == 100


async def test_a_missing_page_permission_names_it(provider: FacebookProvider, facebook: FacebookEmulator) -> None:
    token = await connect(provider)
    narrowed = TokenSet(
        facebook.book.issue("EAApage", PAGE_ID, ("pages_show_list",), None, kind="page").value, extra=token.extra
    )
    with pytest.raises(PermissionMissing) as refused:
        await provider.publish_reply(narrowed, FIRST_POST, "hello")
    assert refused.value.permission == "pages_manage_engagement"


async def test_rate_limits_wait_for_what_the_usage_headers_say(
    provider: FacebookProvider, facebook: FacebookEmulator
) -> None:
    token = await connect(provider)
    facebook.fail("rate_limited", path="/comments")
    with pytest.raises(RateLimited) as app:
        await provider.comments(token, FIRST_POST)
    assert app.value.retry_after == 15 * 60
    facebook.fail("rate_limited_business", path="/comments")
    with pytest.raises(RateLimited) as business:
        await provider.comments(token, FIRST_POST)
    assert business.value.retry_after == 7 * 60


@pytest.mark.parametrize(
    ("kind", "error"),
    [
        ("token_error", TokenRevoked),
        ("token_without_access", PlatformError),
        ("server_error", PlatformError),
        ("malformed", PlatformError),
    ],
)
async def test_a_refused_code_exchange_raises(
    provider: FacebookProvider, facebook: FacebookEmulator, kind: str, error: type[Exception]
) -> None:
    request = provider.authorization_request()
    code = (await consent(provider.http, request.url))["code"]
    facebook.fail(kind, path="/oauth/access_token")
    with pytest.raises(error):
        await provider.exchange_code(code, None)


async def test_a_spent_code_is_refused(provider: FacebookProvider) -> None:
    request = provider.authorization_request()
    code = (await consent(provider.http, request.url))["code"]
    await provider.exchange_code(code, None)
    with pytest.raises(TokenRevoked, match="authorization code has been used"):
        await provider.exchange_code(code, None)


async def test_capabilities_are_what_facebook_really_allows(provider: FacebookProvider) -> None:
    assert Capability.COMMENTS in provider.capabilities and Capability.LIKERS in provider.capabilities
    assert Capability.FOLLOWERS not in provider.capabilities
    assert "not the list of who follows it" in provider.why_not(Capability.FOLLOWERS)
    with pytest.raises(NotSupported, match="who follows it"):
        await provider.followers(TokenSet("unused", extra={"page_id": PAGE_ID}))
