"""The sandbox's resource API under /sandbox/api/v1, read with a bearer token (see the client's wire format in
web/social/providers/sandbox.py).

Lists answer `{"data": [...], "paging": {"next_cursor": "..." | null}}`; the cursor is the offset of the next item.
Errors answer `{"error": {"code", "message"}}`. Every answer carries X-RateLimit-Limit, -Remaining and -Reset
(epoch seconds): the post's own limit when it has one, otherwise the account's (ACCOUNT_REQUESTS per
ACCOUNT_WINDOW seconds), or the caller's address's when no valid token came.

Per-post switches for tests, in `sandbox_posts.behaviour` (set on the /sandbox page or by
SandboxService.create_post); all counts live in PostgreSQL, so they hold across web processes:
- `{"rate_limit": {"requests": 5, "window_seconds": 2}}`: past `requests` calls about the post within a fixed
  window, 429 `rate_limited` with Retry-After until the window ends.
- `{"fail_pages": {"every": 7, "status": 503, "times": 1}}`: every 7th page of comments or likers (the 7th, 14th,
  ... for the limit asked) answers `status` `times` times, then succeeds.
- `{"slow_ms": 300}`: every answer about the post waits that long first.
- `{"malformed_every": 5, "times": 1}`: every 5th page answers 200 with something unreadable `times` times, then
  succeeds: JSON cut short on the 5th, 15th, ... page, a page without `paging` on the 10th, 20th, ...
- `{"newest_first": true}`: comments are listed newest first (X and some Graph API edges do), so a person's
  earlier comment can come pages after their later one.
- `{"overlap": 50}`: each page of comments starts 50 comments before the previous one ended, as offset paging
  does when comments arrive meanwhile: the same comment comes twice.
Attempts at a failing or malformed page are counted per post, list, offset and UTC day.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import msgspec
from litestar import Controller, Request, Response, get, post
from litestar.connection import ASGIConnection
from litestar.di import NamedDependency
from litestar.exceptions import NotFoundException
from litestar.handlers import BaseRouteHandler
from litestar.params import FromPath, FromQuery
from sqlalchemy.ext.asyncio import AsyncSession

from web.sandbox import generator
from web.sandbox.models import SandboxAccount, SandboxGrant, SandboxPost
from web.sandbox.services import REPLY_MAX, ApiError, SandboxService, Window, post_url
from web.settings import Settings

ACCOUNT_REQUESTS = 10_000
ACCOUNT_WINDOW = 60
PAGE_DEFAULT = 100
PAGE_MAX = 1_000
POSTS_DEFAULT = 20
POSTS_MAX = 100
ATTEMPT_WINDOW = 24 * 3600
JSON_TYPE = "application/json"


async def requires_sandbox(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    """Outside development and tests every /sandbox address is absent."""
    if not connection.app.state.settings.sandbox_enabled:
        raise NotFoundException()


@dataclass
class Call:
    """One authenticated API request: who asks, and about which post."""

    service: SandboxService
    settings: Settings
    grant: SandboxGrant
    account: SandboxAccount
    post: SandboxPost | None = None


Work = Callable[[Call], Awaitable[Response[Any]]]


def _json(body: Any, status_code: int = 200, headers: dict[str, str] | None = None) -> Response[bytes]:
    return Response(msgspec.json.encode(body), status_code=status_code, media_type=JSON_TYPE, headers=headers or {})


def _error(error: ApiError, window: Window | None) -> Response[bytes]:
    headers = {**(window.headers() if window else {}), **error.headers}
    return _json({"error": {"code": error.code, "message": error.message}}, error.status_code, headers)


async def _serve(
    request: Request[Any, Any, Any], db: AsyncSession, scope: str, work: Work, post_id: str | None = None
) -> Response[Any]:
    """Authenticate, count the request, apply the post's switches, then run `work`."""
    settings: Settings = request.app.state.settings
    service = SandboxService(db, settings)
    window: Window | None = None
    try:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        try:
            if scheme.lower() != "bearer" or not token.strip() or len(token) > 200:
                raise ApiError(401, "invalid_token", "Send the access token as `Authorization: Bearer <token>`.")
            grant, account = await service.authenticate(token.strip())
        except ApiError:
            address = request.client.host if request.client else "unknown"
            window = await service.count("sandbox-api-anonymous", address, ACCOUNT_REQUESTS, ACCOUNT_WINDOW)
            await db.commit()
            raise
        window = await service.count("sandbox-api", str(account.id), ACCOUNT_REQUESTS, ACCOUNT_WINDOW)
        call = Call(service, settings, grant, account)
        if post_id is not None:
            call.post = await _owned_post(call, post_id)
            limits = call.post.behaviour.get("rate_limit")
            if limits:
                post_window = await service.count(
                    "sandbox-post", call.post.post_id, limits["requests"], limits["window_seconds"]
                )
                # The post's own limit is the one that binds, unless the account's is spent.
                window = window if window.exceeded else post_window
        # Counts are kept whatever the answer, and no lock is held while the answer is made.
        await db.commit()
        if window.exceeded:
            raise ApiError(
                429, "rate_limited", "Too many requests; wait and retry.", {"Retry-After": str(window.retry_after())}
            )
        if scope not in grant.scope.split():
            raise ApiError(403, "insufficient_scope", f"This token was not granted `{scope}`.")
        if call.post is not None and call.post.behaviour.get("slow_ms"):
            await asyncio.sleep(call.post.behaviour["slow_ms"] / 1000)
        response = await work(call)
    except ApiError as error:
        return _error(error, window)
    response.headers.update(window.headers())
    return response


async def _owned_post(call: Call, post_id: str) -> SandboxPost:
    found = await call.service.post(post_id) if len(post_id) <= 40 else None
    if found is None or found.account_id != call.account.id:
        raise ApiError(404, "not_found", f"This account has no post {post_id[:40]!r}.")
    return found


def _whole_number(raw: str | None, name: str, default: int, low: int, high: int) -> int:
    if raw is None:
        return default
    if not (raw.isascii() and raw.isdigit() and len(raw) <= 9) or not low <= int(raw) <= high:
        raise ApiError(400, "invalid_request", f"`{name}` is a whole number from {low:,} to {high:,}.")
    return int(raw)


def _offset(cursor: str | None, total: int) -> int:
    if cursor is None:
        return 0
    if not (cursor.isascii() and cursor.isdigit() and len(cursor) <= 12) or int(cursor) > total:
        raise ApiError(400, "invalid_request", "This cursor is not one this list gave; start again without it.")
    return int(cursor)


async def _page_switches(call: Call, name: str, offset: int, limit: int) -> Response[Any] | None:
    """A failing or malformed answer for this page when the post's switches say so, else None."""
    assert call.post is not None
    behaviour = call.post.behaviour
    number = offset // limit + 1
    failing = behaviour.get("fail_pages")
    if failing and number % failing["every"] == 0:
        attempts = await _attempt(call, f"fail:{name}:{offset}", failing["times"])
        if not attempts.exceeded:
            status = failing["status"]
            raise ApiError(status, "server_error", f"The sandbox failed on purpose (attempt {attempts.hits}).")
    every = behaviour.get("malformed_every")
    if every and number % every == 0:
        attempts = await _attempt(call, f"malformed:{name}:{offset}", behaviour.get("times", 1))
        if not attempts.exceeded:
            if (number // every) % 2:
                return Response(b'{"data": [{"id": "', media_type=JSON_TYPE)
            return _json({"data": []})
    return None


async def _attempt(call: Call, key: str, times: int) -> Window:
    assert call.post is not None
    attempts = await call.service.count("sandbox-page", f"{call.post.post_id}:{key}", times, ATTEMPT_WINDOW)
    await call.service.db.commit()
    return attempts


def _page(items: list[dict[str, Any]], end: int, total: int, overlap: int = 0) -> Response[bytes]:
    """A list's page; with `overlap`, the next page starts that many items back (never before this one's second)."""
    start = end - len(items)
    after = max(start + 1, end - overlap) if overlap else end
    return _json({"data": items, "paging": {"next_cursor": str(after) if end < total else None}})


def _post_json(settings: Settings, found: SandboxPost) -> dict[str, Any]:
    return {
        "id": found.post_id,
        "url": post_url(settings, found.post_id),
        "caption": found.caption,
        "created_at": generator.iso(generator.seconds_of(found.posted_at)),
        "comments_count": found.comments_count,
        "likes_count": found.likes_count,
    }


class SandboxApi(Controller):
    path = "/sandbox/api/v1"
    guards = [requires_sandbox]
    opt = {"skip_session": True}

    @get("/me")
    async def me(self, request: Request[Any, Any, Any], db_session: NamedDependency[AsyncSession]) -> Response[Any]:
        async def work(call: Call) -> Response[Any]:
            account = call.account
            return _json(
                {
                    "id": account.platform_user_id,
                    "username": account.username,
                    "display_name": account.display_name,
                    "account_type": account.account_type,
                    "followers_count": account.followers_count,
                }
            )

        return await _serve(request, db_session, "profile", work)

    @get("/me/posts")
    async def my_posts(
        self,
        request: Request[Any, Any, Any],
        db_session: NamedDependency[AsyncSession],
        limit: FromQuery[str | None] = None,
    ) -> Response[Any]:
        async def work(call: Call) -> Response[Any]:
            count = _whole_number(limit, "limit", POSTS_DEFAULT, 1, POSTS_MAX)
            posts = await call.service.posts_of(call.account.id, count)
            return _json(
                {"data": [_post_json(call.settings, found) for found in posts], "paging": {"next_cursor": None}}
            )

        return await _serve(request, db_session, "posts.read", work)

    @get("/posts/resolve")
    async def resolve(
        self,
        request: Request[Any, Any, Any],
        db_session: NamedDependency[AsyncSession],
        url: FromQuery[str | None] = None,
    ) -> Response[Any]:
        async def work(call: Call) -> Response[Any]:
            if not url:
                raise ApiError(400, "invalid_request", "Send the post's address as `url`.")
            prefix = post_url(call.settings, "")
            post_id = url.strip().removeprefix(prefix).rstrip("/")
            if not url.strip().startswith(prefix) or not post_id.isalnum() or not post_id.isascii():
                raise ApiError(404, "not_found", f"This is not a sandbox post address; they look like {prefix}<id>.")
            return _json(_post_json(call.settings, await _owned_post(call, post_id)))

        return await _serve(request, db_session, "posts.read", work)

    @get("/posts/{post_id:str}/comments")
    async def comments(
        self,
        request: Request[Any, Any, Any],
        db_session: NamedDependency[AsyncSession],
        post_id: FromPath[str],
        cursor: FromQuery[str | None] = None,
        limit: FromQuery[str | None] = None,
    ) -> Response[Any]:
        async def work(call: Call) -> Response[Any]:
            assert call.post is not None
            total = call.post.comments_count
            count = _whole_number(limit, "limit", PAGE_DEFAULT, 1, PAGE_MAX)
            offset = _offset(cursor, total)
            broken = await _page_switches(call, "comments", offset, count)
            if broken is not None:
                return broken
            posted_at = generator.seconds_of(call.post.posted_at)
            newest_first = bool(call.post.behaviour.get("newest_first"))
            items = generator.comments_page(
                call.post.post_id, total, posted_at, offset, count, newest_first=newest_first
            )
            return _page(items, offset + len(items), total, call.post.behaviour.get("overlap", 0))

        return await _serve(request, db_session, "comments.read", work, post_id)

    @get("/posts/{post_id:str}/likers")
    async def likers(
        self,
        request: Request[Any, Any, Any],
        db_session: NamedDependency[AsyncSession],
        post_id: FromPath[str],
        cursor: FromQuery[str | None] = None,
        limit: FromQuery[str | None] = None,
    ) -> Response[Any]:
        async def work(call: Call) -> Response[Any]:
            assert call.post is not None
            total = call.post.likes_count
            count = _whole_number(limit, "limit", PAGE_DEFAULT, 1, PAGE_MAX)
            offset = _offset(cursor, total)
            broken = await _page_switches(call, "likers", offset, count)
            if broken is not None:
                return broken
            items = generator.likers_page(call.post.post_id, call.post.comments_count, offset, count)
            return _page(items, offset + len(items), total)

        return await _serve(request, db_session, "likes.read", work, post_id)

    @get("/me/followers")
    async def followers(
        self,
        request: Request[Any, Any, Any],
        db_session: NamedDependency[AsyncSession],
        cursor: FromQuery[str | None] = None,
        limit: FromQuery[str | None] = None,
    ) -> Response[Any]:
        async def work(call: Call) -> Response[Any]:
            total = call.account.followers_count
            count = _whole_number(limit, "limit", PAGE_DEFAULT, 1, PAGE_MAX)
            offset = _offset(cursor, total)
            items = generator.followers_page(call.account.platform_user_id, total, offset, count)
            return _page(items, offset + len(items), total)

        return await _serve(request, db_session, "followers.read", work)

    @post("/posts/{post_id:str}/replies", status_code=201)
    async def reply(
        self, request: Request[Any, Any, Any], db_session: NamedDependency[AsyncSession], post_id: FromPath[str]
    ) -> Response[Any]:
        async def work(call: Call) -> Response[Any]:
            assert call.post is not None
            try:
                body = json.loads(await request.body())
            except ValueError:
                body = None
            text = body.get("text") if isinstance(body, dict) else None
            if not isinstance(text, str) or not text.strip() or len(text) > REPLY_MAX:
                raise ApiError(
                    400, "invalid_request", f'Send JSON {{"text": ...}} with 1 to {REPLY_MAX:,} characters of text.'
                )
            published = await call.service.publish_reply(call.account, call.post, text)
            created_at = generator.iso(generator.seconds_of(published.created_at))
            return _json({"id": str(published.id), "text": published.text, "created_at": created_at}, 201)

        return await _serve(request, db_session, "replies.write", work, post_id)
