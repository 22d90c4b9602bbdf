"""The resource API over real HTTP: pages, ownership, the per-post switches, bad parameters, production."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.conftest import LiveServer, post_form
from tests.sandbox.dance import Tokens, bearer, connect
from web.app import create_app
from web.db import session_factory
from web.sandbox.pages import SWITCH_FIELDS
from web.sandbox.services import SandboxService, validate_behaviour
from web.settings import Settings

API = "/sandbox/api/v1"


async def add_post(engine: AsyncEngine, settings: Settings, username: str, comments: int, **behaviour: Any) -> str:
    async with session_factory(engine)() as db:
        service = SandboxService(db, settings)
        account = await service.ensure_account(username)
        post = await service.create_post(account, comments, behaviour=behaviour)
        await db.commit()
        return post.post_id


async def pages_of(client: httpx.AsyncClient, creator: Tokens, path: str) -> AsyncIterator[httpx.Response]:
    """Every page of one of the API's lists, 1,000 items at a time, following `paging.next_cursor`."""
    cursor: str | None = None
    while True:
        params = {"limit": "1000", **({"cursor": cursor} if cursor else {})}
        page = await client.get(f"{API}{path}", params=params, headers=bearer(creator))
        yield page
        cursor = page.json()["paging"]["next_cursor"]
        if cursor is None:
            return


@pytest.fixture
async def creator(client: httpx.AsyncClient, live_server: LiveServer) -> Tokens:
    return await connect(client, live_server, "api_creator")


async def test_all_pages_of_a_25000_comment_post_give_each_comment_once(
    client: httpx.AsyncClient, live_server: LiveServer, engine: AsyncEngine, creator: Tokens
) -> None:
    post_id = await add_post(engine, live_server.settings, "api_creator", 25_000)
    seen: list[str] = []
    async for page in pages_of(client, creator, f"/posts/{post_id}/comments"):
        assert page.status_code == 200
        assert int(page.headers["x-ratelimit-remaining"]) < int(page.headers["x-ratelimit-limit"])
        seen.extend(item["id"] for item in page.json()["data"])
    assert seen == [f"{post_id}_{index}" for index in range(25_000)]

    posts = (await client.get(f"{API}/me/posts", headers=bearer(creator))).json()["data"]
    [post] = [post for post in posts if post["id"] == post_id]
    assert post["comments_count"] == 25_000
    assert [item["created_at"] for item in posts] == sorted((item["created_at"] for item in posts), reverse=True)
    likers = [
        item["id"]
        async for page in pages_of(client, creator, f"/posts/{post_id}/likers")
        for item in page.json()["data"]
    ]
    assert len(likers) == len(set(likers)) == post["likes_count"]


async def test_a_newest_first_post_lists_every_comment_once_from_the_latest(
    client: httpx.AsyncClient, live_server: LiveServer, engine: AsyncEngine, creator: Tokens
) -> None:
    post_id = await add_post(engine, live_server.settings, "api_creator", 2_500, newest_first=True)
    seen = [
        item async for page in pages_of(client, creator, f"/posts/{post_id}/comments") for item in page.json()["data"]
    ]
    assert [item["id"] for item in seen] == [f"{post_id}_{index}" for index in reversed(range(2_500))]
    times = [item["created_at"] for item in seen]
    assert times == sorted(times, reverse=True) and times[0] > times[-1]


async def test_an_overlapping_post_repeats_the_end_of_each_page_on_the_next(
    client: httpx.AsyncClient, live_server: LiveServer, engine: AsyncEngine, creator: Tokens
) -> None:
    post_id = await add_post(engine, live_server.settings, "api_creator", 2_000, overlap=300)
    url = f"{API}/posts/{post_id}/comments"
    first = (await client.get(url, params={"limit": "1000"}, headers=bearer(creator))).json()
    assert first["paging"]["next_cursor"] == "700"
    second = (await client.get(url, params={"limit": "1000", "cursor": "700"}, headers=bearer(creator))).json()
    assert [item["id"] for item in second["data"][:300]] == [item["id"] for item in first["data"][700:]]
    assert second["paging"]["next_cursor"] == "1400"
    # A page smaller than the overlap still moves on by one.
    small = (await client.get(url, params={"limit": "100", "cursor": "1500"}, headers=bearer(creator))).json()
    assert small["paging"]["next_cursor"] == "1501"


def test_switches_are_checked_before_they_are_stored() -> None:
    assert validate_behaviour({"newest_first": True, "slow_ms": 5}) == {"newest_first": True, "slow_ms": 5}
    assert validate_behaviour({"newest_first": False}) == {}
    with pytest.raises(ValueError, match="newest_first is true or false"):
        validate_behaviour({"newest_first": 1})
    with pytest.raises(ValueError, match="slow_ms is a whole number from 0 to 10000"):
        validate_behaviour({"slow_ms": -1})
    with pytest.raises(ValueError, match="unknown switch 'reverse'"):
        validate_behaviour({"reverse": True})


async def test_followers_agree_with_the_profile_count(
    client: httpx.AsyncClient, live_server: LiveServer, creator: Tokens
) -> None:
    profile = (await client.get(f"{API}/me", headers=bearer(creator))).json()
    count = profile["followers_count"]
    last = await client.get(
        f"{API}/me/followers", params={"cursor": str(count - 5), "limit": "1000"}, headers=bearer(creator)
    )
    assert len(last.json()["data"]) == 5 and last.json()["paging"]["next_cursor"] is None


async def test_another_accounts_post_is_not_found(
    client: httpx.AsyncClient, live_server: LiveServer, engine: AsyncEngine, creator: Tokens
) -> None:
    theirs = await add_post(engine, live_server.settings, "someone_else", 10)
    for path in (f"/posts/{theirs}/comments", f"/posts/{theirs}/likers", "/posts/nope/comments"):
        answer = await client.get(API + path, headers=bearer(creator))
        assert answer.status_code == 404 and answer.json()["error"]["code"] == "not_found"
    reply = await client.post(f"{API}/posts/{theirs}/replies", json={"text": "hi"}, headers=bearer(creator))
    assert reply.status_code == 404
    url = f"{live_server.url}/sandbox/p/{theirs}"
    assert (await client.get(f"{API}/posts/resolve", params={"url": url}, headers=bearer(creator))).status_code == 404


async def test_resolve_and_publish_a_reply_shown_on_the_post_page(
    client: httpx.AsyncClient, live_server: LiveServer, engine: AsyncEngine, creator: Tokens
) -> None:
    post_id = await add_post(engine, live_server.settings, "api_creator", 30)
    url = f"{live_server.url}/sandbox/p/{post_id}"
    found = await client.get(f"{API}/posts/resolve", params={"url": url}, headers=bearer(creator))
    assert found.status_code == 200 and found.json()["id"] == post_id and found.json()["comments_count"] == 30
    elsewhere = await client.get(
        f"{API}/posts/resolve", params={"url": "https://instagram.com/p/x"}, headers=bearer(creator)
    )
    assert elsewhere.status_code == 404 and "/sandbox/p/" in elsewhere.json()["error"]["message"]

    published = await client.post(
        f"{API}/posts/{post_id}/replies", json={"text": "Winners: @a and @b 🎉"}, headers=bearer(creator)
    )
    assert published.status_code == 201 and published.json()["text"] == "Winners: @a and @b 🎉"
    page = await client.get(f"/sandbox/p/{post_id}")
    assert page.status_code == 200 and "Winners: @a and @b 🎉" in page.text
    assert page.text.count('class="note"') == 21, "the first twenty comments and the reply"


@pytest.mark.parametrize(
    ("method", "path", "kwargs"),
    [
        ("GET", "/posts/{post}/comments", {"params": {"limit": "0"}}),
        ("GET", "/posts/{post}/comments", {"params": {"limit": "1001"}}),
        ("GET", "/posts/{post}/comments", {"params": {"limit": "ten"}}),
        ("GET", "/posts/{post}/comments", {"params": {"cursor": "-5"}}),
        ("GET", "/posts/{post}/comments", {"params": {"cursor": "99999"}}),
        ("GET", "/posts/{post}/likers", {"params": {"cursor": "abc"}}),
        ("GET", "/me/followers", {"params": {"limit": "1e3"}}),
        ("GET", "/me/posts", {"params": {"limit": "500"}}),
        ("GET", "/posts/resolve", {}),
        ("POST", "/posts/{post}/replies", {"json": {"text": ""}}),
        ("POST", "/posts/{post}/replies", {"json": {"text": "x" * 2201}}),
        ("POST", "/posts/{post}/replies", {"json": ["text"]}),
        ("POST", "/posts/{post}/replies", {"content": b"not json"}),
    ],
)
async def test_every_bad_parameter_answers_400_in_json(
    client: httpx.AsyncClient,
    live_server: LiveServer,
    engine: AsyncEngine,
    creator: Tokens,
    method: str,
    path: str,
    kwargs: dict[str, Any],
) -> None:
    post_id = await add_post(engine, live_server.settings, "api_creator", 50)
    answer = await client.request(method, API + path.format(post=post_id), headers=bearer(creator), **kwargs)
    assert answer.status_code == 400 and answer.json()["error"]["code"] == "invalid_request"
    assert answer.json()["error"]["message"] and "x-ratelimit-limit" in answer.headers


@pytest.mark.parametrize("header", [None, "Bearer", "Basic abc", "Bearer sbx_at_forged"])
async def test_a_missing_or_unknown_token_answers_401_invalid_token(
    client: httpx.AsyncClient, header: str | None
) -> None:
    answer = await client.get(f"{API}/me", headers={"Authorization": header} if header else {})
    assert answer.status_code == 401 and answer.json()["error"]["code"] == "invalid_token"
    assert "x-ratelimit-remaining" in answer.headers


async def test_rate_limited_post_answers_429_with_retry_after_then_recovers(
    client: httpx.AsyncClient, live_server: LiveServer, engine: AsyncEngine, creator: Tokens
) -> None:
    post_id = await add_post(
        engine, live_server.settings, "api_creator", 100, rate_limit={"requests": 3, "window_seconds": 2}
    )
    url = f"{API}/posts/{post_id}/comments"
    answers = [await client.get(url, headers=bearer(creator)) for _ in range(4)]
    assert [answer.status_code for answer in answers] == [200, 200, 200, 429]
    assert [answer.headers["x-ratelimit-remaining"] for answer in answers[:3]] == ["2", "1", "0"]
    limited = answers[-1]
    assert limited.json()["error"]["code"] == "rate_limited"
    wait = int(limited.headers["retry-after"])
    assert 1 <= wait <= 3
    await asyncio.sleep(wait)
    assert (await client.get(url, headers=bearer(creator))).status_code == 200


async def test_failing_pages_fail_the_set_number_of_times_then_succeed(
    client: httpx.AsyncClient, live_server: LiveServer, engine: AsyncEngine, creator: Tokens
) -> None:
    post_id = await add_post(
        engine, live_server.settings, "api_creator", 500, fail_pages={"every": 3, "status": 503, "times": 2}
    )
    url = f"{API}/posts/{post_id}/comments"
    assert (await client.get(url, params={"limit": "100", "cursor": "100"}, headers=bearer(creator))).status_code == 200
    third = {"limit": "100", "cursor": "200"}
    statuses = [(await client.get(url, params=third, headers=bearer(creator))).status_code for _ in range(3)]
    assert statuses == [503, 503, 200]


async def test_a_slow_post_answers_after_its_delay(
    client: httpx.AsyncClient, live_server: LiveServer, engine: AsyncEngine, creator: Tokens
) -> None:
    post_id = await add_post(engine, live_server.settings, "api_creator", 10, slow_ms=400)
    began = time.monotonic()
    answer = await client.get(f"{API}/posts/{post_id}/comments", headers=bearer(creator))
    assert answer.status_code == 200 and time.monotonic() - began >= 0.4


async def test_malformed_pages_are_cut_short_or_lack_paging_then_recover(
    client: httpx.AsyncClient, live_server: LiveServer, engine: AsyncEngine, creator: Tokens
) -> None:
    post_id = await add_post(engine, live_server.settings, "api_creator", 1_000, malformed_every=2, times=1)
    url = f"{API}/posts/{post_id}/comments"
    second = await client.get(url, params={"limit": "100", "cursor": "100"}, headers=bearer(creator))
    with pytest.raises(ValueError):
        second.json()
    fourth = await client.get(url, params={"limit": "100", "cursor": "300"}, headers=bearer(creator))
    assert "paging" not in fourth.json()
    again = await client.get(url, params={"limit": "100", "cursor": "100"}, headers=bearer(creator))
    assert again.json()["paging"]["next_cursor"] == "200"


def post_fields(**values: str) -> dict[str, str]:
    """The add-a-post form as a browser sends it: every field, empty unless given."""
    names = ("caption", *(name for name, *_ in SWITCH_FIELDS))
    return {"account": "api_creator", **dict.fromkeys(names, ""), **values}


async def test_the_sandbox_pages_list_accounts_and_add_posts_with_switches(
    client: httpx.AsyncClient, live_server: LiveServer, creator: Tokens
) -> None:
    page = await client.get("/sandbox")
    assert page.status_code == 200 and "@api_creator" in page.text and "1,000,000" in page.text
    refused = await post_form(client, "/sandbox/posts", post_fields(comments="3000000", fail_every="7"))
    assert refused.status_code == 422
    assert "Comments: a whole number from 0 to 2,000,000." in refused.text
    assert "Fill in both fields of this switch, or neither." in refused.text
    added = await post_form(
        client,
        "/sandbox/posts",
        post_fields(comments="2,000,000", caption="Big one", slow_ms="5", fail_every="7", fail_status="502"),
    )
    assert added.status_code == 303
    post_page = await client.get(added.headers["location"])
    assert "Big one" in post_page.text and "2,000,000" in post_page.text
    listing = await client.get("/sandbox")
    assert '"status": 502' in listing.text or "&#34;status&#34;: 502" in listing.text
    assert "newest_first" not in listing.text.split('id="add-title"')[0]
    newest = await post_form(client, "/sandbox/posts", post_fields(comments="30", newest_first="on"))
    assert newest.status_code == 303
    listing = await client.get("/sandbox")
    assert "newest_first=true" in listing.text.split('id="add-title"')[0]
    assert (await client.post("/sandbox/posts", data={"account": "api_creator", "comments": "1"})).status_code == 403


async def test_production_has_no_sandbox(database_url: str, live_server: LiveServer) -> None:
    settings = live_server.settings.with_overrides(environment="production", base_url="https://cleack.example")
    app = create_app(settings)
    transport = httpx.ASGITransport(app=app)  # type: ignore[arg-type]  # Litestar types its ASGI events more narrowly
    async with httpx.AsyncClient(transport=transport, base_url="https://cleack.example") as client:
        for path in ("/sandbox", "/sandbox/p/abc", f"{API}/me", "/sandbox/oauth/authorize"):
            assert (await client.get(path)).status_code == 404
        assert (await client.post("/sandbox/oauth/token", data={"grant_type": "refresh_token"})).status_code == 404
