"""The sandbox platform: Cleack's own stand-in for a social network, served under /sandbox.

It speaks OAuth 2.0 with PKCE and a small JSON API shaped like the real platforms' (cursor
paging, rate-limit headers, typed errors), so the whole product runs without platform
credentials. Wire format:

- GET  {auth}/sandbox/oauth/authorize   consent page; redirects back with `code` and `state`
- POST {api}/sandbox/oauth/token        grant_type=authorization_code (code, redirect_uri,
                                        code_verifier) or refresh_token; client_secret_post
- POST {api}/sandbox/oauth/revoke       token
- GET  {api}/sandbox/api/v1/me
- GET  {api}/sandbox/api/v1/me/posts?limit=N
- GET  {api}/sandbox/api/v1/posts/resolve?url=URL
- GET  {api}/sandbox/api/v1/posts/{id}/comments?cursor=C&limit=N
- GET  {api}/sandbox/api/v1/posts/{id}/likers?cursor=C&limit=N
- GET  {api}/sandbox/api/v1/me/followers?cursor=C&limit=N
- POST {api}/sandbox/api/v1/posts/{id}/replies   JSON {"text": ...}

Lists answer `{"data": [...], "paging": {"next_cursor": "..." | null}}`; errors answer
`{"error": {"code": ..., "message": ...}}` with 400, 401 (`token_expired` or `invalid_token`),
403 (`insufficient_scope`), 404 (`not_found`), 429 (`rate_limited`, with `Retry-After`) or 5xx.
"""

from __future__ import annotations

from typing import Any, ClassVar

import httpx

from web.social.providers.base import (
    Capability,
    Comment,
    NotFound,
    Page,
    PermissionMissing,
    PlatformError,
    PlatformUser,
    Post,
    Profile,
    Provider,
    RateLimited,
    TokenExpired,
    TokenRevoked,
    TokenSet,
    count_of,
    object_list,
    parse_time,
    required_text,
    retry_after_seconds,
)

PAGE_SIZE = 1000


class SandboxProvider(Provider):
    id = "sandbox"
    name = "Sandbox"
    capabilities = frozenset(Capability)
    scopes = ("profile", "posts.read", "comments.read", "likes.read", "followers.read", "replies.write")
    authorize_path = "/sandbox/oauth/authorize"
    token_path = "/sandbox/oauth/token"
    revoke_path = "/sandbox/oauth/revoke"
    api_prefix: ClassVar[str] = "/sandbox/api/v1"

    async def profile(self, token: TokenSet) -> Profile:
        body = await self._get(token, "/me")
        return Profile(
            platform_user_id=_text(body, "id"),
            username=_text(body, "username"),
            display_name=body.get("display_name"),
            account_type=body.get("account_type"),
            followers_count=count_of(body.get("followers_count")),
        )

    async def recent_posts(self, token: TokenSet, limit: int = 20) -> list[Post]:
        body = await self._get(token, "/me/posts", {"limit": limit})
        return [_post(item) for item in _data(body)]

    async def resolve_post(self, token: TokenSet, url: str) -> Post:
        return _post(await self._get(token, "/posts/resolve", {"url": url}))

    async def comments(self, token: TokenSet, post_id: str, cursor: str | None = None) -> Page[Comment]:
        body = await self._get(token, f"/posts/{_path_id(post_id)}/comments", _paging(cursor))
        items = []
        for item in _data(body):
            author = item.get("author")
            if not isinstance(author, dict):
                raise PlatformError("Sandbox sent a comment without its author.")
            items.append(
                Comment(
                    id=_text(item, "id"),
                    author_id=_text(author, "id"),
                    author_username=_text(author, "username"),
                    text=str(item.get("text") or ""),
                    created_at=parse_time(item.get("created_at")),
                    mentions=tuple(str(mention) for mention in item.get("mentions") or ()),
                    author_followers_count=count_of(author.get("followers_count")),
                    author_is_business=author.get("account_type") == "business",
                )
            )
        return Page(items, _next(body))

    async def likers(self, token: TokenSet, post_id: str, cursor: str | None = None) -> Page[PlatformUser]:
        body = await self._get(token, f"/posts/{_path_id(post_id)}/likers", _paging(cursor))
        return Page([_user(item) for item in _data(body)], _next(body))

    async def followers(self, token: TokenSet, cursor: str | None = None) -> Page[PlatformUser]:
        body = await self._get(token, "/me/followers", _paging(cursor))
        return Page([_user(item) for item in _data(body)], _next(body))

    async def publish_reply(self, token: TokenSet, post_id: str, text: str) -> str:
        response = await self._send(token, "POST", f"/posts/{_path_id(post_id)}/replies", json={"text": text})
        return _text(_json(response), "id")

    async def _get(self, token: TokenSet, path: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        return _json(await self._send(token, "GET", path, params=params))

    async def _send(self, token: TokenSet, method: str, path: str, **kwargs: Any) -> httpx.Response:
        url = self.config.api_base.rstrip("/") + self.api_prefix + path
        try:
            response = await self.http.request(
                method, url, headers={"Authorization": f"Bearer {token.access_token}"}, **kwargs
            )
        except httpx.HTTPError as exc:
            raise PlatformError(f"Sandbox could not be reached: {type(exc).__name__}.") from exc
        if response.status_code >= 400:
            _raise_error(response)
        return response


def _raise_error(response: httpx.Response) -> None:
    status = response.status_code
    try:
        error = response.json().get("error") or {}
    except ValueError:
        error = {}
    code = str(error.get("code") or "") if isinstance(error, dict) else ""
    message = str(error.get("message") or "") if isinstance(error, dict) else ""
    if status == 429:
        raise RateLimited("Sandbox asks us to slow down.", retry_after_seconds(response))
    if status == 401:
        if code == "token_expired":
            raise TokenExpired("Sandbox says the access token has expired.")
        raise TokenRevoked("Sandbox no longer accepts this connection.")
    if status == 403:
        raise PermissionMissing(f"Sandbox refused: {message or 'a permission is missing'}.", error.get("scope"))
    if status == 404:
        raise NotFound(message or "Sandbox has no such post.")
    raise PlatformError(f"Sandbox failed (HTTP {status}).", status)


def _json(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError as exc:
        raise PlatformError("Sandbox sent an unreadable answer.", response.status_code) from exc
    if not isinstance(body, dict):
        raise PlatformError("Sandbox sent an unreadable answer.", response.status_code)
    return body


def _data(body: dict[str, Any]) -> list[dict[str, Any]]:
    return object_list(body.get("data"), "Sandbox")


def _next(body: dict[str, Any]) -> str | None:
    paging = body.get("paging")
    if not isinstance(paging, dict):
        raise PlatformError("Sandbox sent a page without paging.")
    cursor = paging.get("next_cursor")
    return str(cursor) if cursor else None


def _text(item: dict[str, Any], key: str) -> str:
    return required_text(item, key, "Sandbox")


def _post(item: dict[str, Any]) -> Post:
    return Post(
        id=_text(item, "id"),
        url=item.get("url"),
        text=str(item.get("caption") or ""),
        created_at=parse_time(item.get("created_at")),
        comments_count=count_of(item.get("comments_count")),
        likes_count=count_of(item.get("likes_count")),
    )


def _user(item: dict[str, Any]) -> PlatformUser:
    return PlatformUser(id=_text(item, "id"), username=_text(item, "username"))


def _paging(cursor: str | None) -> dict[str, Any]:
    return {"limit": PAGE_SIZE, **({"cursor": cursor} if cursor else {})}


def _path_id(post_id: str) -> str:
    if not post_id or "/" in post_id or len(post_id) > 200:
        raise NotFound("Sandbox has no such post.")
    return post_id
