"""X (Twitter) through the X API v2, with OAuth 2.0 Authorization Code and PKCE.

Cleack is a confidential client: the token endpoint takes HTTP Basic client authentication.
Refresh tokens (scope offline.access) rotate: every refresh answers a new one. X bills reads per
object returned, so a draw on a post with many replies costs its owner's X plan accordingly; and
recent search only reaches replies of the last seven days.

Wire format (https://api.x.com/2):
- GET  /users/me?user.fields=public_metrics,verified_type
- GET  /users/{id}/tweets?tweet.fields=created_at,public_metrics,conversation_id
- GET  /tweets/{id}?tweet.fields=...
- GET  /tweets/search/recent?query=conversation_id:{id}&expansions=author_id&...   (meta.next_token; next_token=)
- GET  /tweets/{id}/liking_users    (meta.next_token; pagination_token=)
- GET  /users/{id}/followers        (meta.next_token; pagination_token=)
- POST /tweets  {"text", "reply": {"in_reply_to_tweet_id"}}
Errors: 429 with x-rate-limit-reset (epoch seconds); 401 for a token X no longer takes; problem JSON
{"title", "detail", "type"} for 403 and 404; a 200 whose `errors` array says resource-not-found.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

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
    TokenSet,
    count_of,
    object_list,
    parse_time,
    raise_for_token_response,
    required_text,
    retry_after_seconds,
)

TWEET_FIELDS = "created_at,public_metrics,conversation_id,author_id"
REPLIES_PAGE = 100
LIKERS_PAGE = 100
FOLLOWERS_PAGE = 1000
STATUS_PATH = re.compile(r"^/(?:[A-Za-z0-9_]{1,15}|i/web|i)/status(?:es)?/(\d{1,20})(?:/.*)?$")
X_HOSTS = {"x.com", "twitter.com", "mobile.twitter.com", "mobile.x.com"}


class XProvider(Provider):
    id = "x"
    name = "X"
    default_urls = {"auth": "https://x.com", "api": "https://api.x.com", "token": "https://api.x.com"}
    capabilities = frozenset(
        {
            Capability.PROFILE,
            Capability.RECENT_POSTS,
            Capability.RESOLVE_POST_URL,
            Capability.COMMENTS,
            Capability.LIKERS,
            Capability.FOLLOWERS,
            Capability.AUTHOR_FOLLOWERS,
            Capability.PUBLISH_REPLY,
        }
    )
    unavailable = {
        Capability.AUTHOR_ACCOUNT_TYPE: (
            "X's API marks verified organisations only; it cannot tell business accounts from personal ones."
        ),
    }
    scopes = ("tweet.read", "users.read", "follows.read", "like.read", "tweet.write", "offline.access")
    authorize_path = "/i/oauth2/authorize"
    token_path = "/2/oauth2/token"
    revoke_path = "/2/oauth2/revoke"
    token_auth_method = "client_secret_basic"
    api_prefix = "/2"

    def token_response(self, response: httpx.Response) -> httpx.Response:
        raise_for_token_response(response, self.name)
        return response

    async def exchange_code(self, code: str, code_verifier: str | None) -> TokenSet:
        token = await super().exchange_code(code, code_verifier)
        return dataclasses.replace(token, extra={"user_id": await self._me_id(token)})

    async def refresh(self, token: TokenSet) -> TokenSet:
        refreshed = await super().refresh(token)
        return dataclasses.replace(refreshed, extra={**token.extra, **refreshed.extra})

    async def revoke(self, token: TokenSet) -> None:
        """Withdraw the refresh token (the grant) and the access token; failures are ignored."""
        pairs = [(token.refresh_token, "refresh_token"), (token.access_token, "access_token")]
        for value, hint in pairs:
            if not value:
                continue
            try:
                await self.http.post(
                    (self.config.token_base or self.config.api_base).rstrip("/") + self.revoke_path,
                    data={"token": value, "token_type_hint": hint},
                    auth=(self.config.client_id, self.config.client_secret),
                )
            except httpx.HTTPError:
                return

    async def profile(self, token: TokenSet) -> Profile:
        user = _object(await self._get(token, "/users/me", {"user.fields": "public_metrics,verified_type"}))
        metrics = user.get("public_metrics") or {}
        return Profile(
            platform_user_id=_text(user, "id"),
            username=_text(user, "username"),
            display_name=user.get("name") or None,
            account_type="business" if user.get("verified_type") == "business" else "personal",
            followers_count=count_of(metrics.get("followers_count")),
        )

    async def recent_posts(self, token: TokenSet, limit: int = 20) -> list[Post]:
        user_id = token.extra.get("user_id") or await self._me_id(token)
        body = await self._get(
            token,
            f"/users/{_numeric(user_id)}/tweets",
            {"tweet.fields": TWEET_FIELDS, "max_results": max(5, min(limit, 100))},
        )
        return [_post(item) for item in _list(body)][:limit]

    async def resolve_post(self, token: TokenSet, url: str) -> Post:
        return _post(_object(await self._get(token, f"/tweets/{status_id_of(url)}", {"tweet.fields": TWEET_FIELDS})))

    async def comments(self, token: TokenSet, post_id: str, cursor: str | None = None) -> Page[Comment]:
        params: dict[str, Any] = {
            "query": f"conversation_id:{_numeric(post_id)}",
            "expansions": "author_id",
            "user.fields": "public_metrics,username",
            "tweet.fields": "created_at,entities,author_id",
            "max_results": REPLIES_PAGE,
        }
        if cursor:
            params["next_token"] = cursor
        body = await self._get(token, "/tweets/search/recent", params)
        includes = body.get("includes")
        listed = includes.get("users") if isinstance(includes, dict) else None
        users = {str(user.get("id")): user for user in listed or [] if isinstance(user, dict)}
        comments = []
        for item in _list(body):
            if str(item.get("id")) == post_id:
                continue
            author_id = _text(item, "author_id")
            author = users.get(author_id)
            if author is None:
                raise PlatformError("X sent a reply without its author.")
            entities = item.get("entities")
            mentions = entities.get("mentions") if isinstance(entities, dict) else None
            metrics = author.get("public_metrics") or {}
            comments.append(
                Comment(
                    id=_text(item, "id"),
                    author_id=author_id,
                    author_username=_text(author, "username"),
                    text=str(item.get("text") or ""),
                    created_at=parse_time(item.get("created_at")),
                    mentions=tuple(
                        str(mention["username"])
                        for mention in mentions or []
                        if isinstance(mention, dict) and mention.get("username")
                    ),
                    author_followers_count=count_of(metrics.get("followers_count")),
                )
            )
        return Page(comments, _next_token(body))

    async def likers(self, token: TokenSet, post_id: str, cursor: str | None = None) -> Page[PlatformUser]:
        params: dict[str, Any] = {"max_results": LIKERS_PAGE, **({"pagination_token": cursor} if cursor else {})}
        body = await self._get(token, f"/tweets/{_numeric(post_id)}/liking_users", params)
        return Page([_user(item) for item in _list(body)], _next_token(body))

    async def followers(self, token: TokenSet, cursor: str | None = None) -> Page[PlatformUser]:
        user_id = token.extra.get("user_id") or await self._me_id(token)
        params: dict[str, Any] = {"max_results": FOLLOWERS_PAGE, **({"pagination_token": cursor} if cursor else {})}
        body = await self._get(token, f"/users/{_numeric(user_id)}/followers", params)
        return Page([_user(item) for item in _list(body)], _next_token(body))

    async def publish_reply(self, token: TokenSet, post_id: str, text: str) -> str:
        body = await self._send(
            token, "POST", "/tweets", json={"text": text, "reply": {"in_reply_to_tweet_id": _numeric(post_id)}}
        )
        return _text(_object(body), "id")

    async def _me_id(self, token: TokenSet) -> str:
        return _text(_object(await self._get(token, "/users/me", {})), "id")

    async def _get(self, token: TokenSet, path: str, params: Mapping[str, Any]) -> dict[str, Any]:
        return await self._send(token, "GET", path, params=dict(params))

    async def _send(self, token: TokenSet, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        url = self.config.api_base.rstrip("/") + self.api_prefix + path
        try:
            response = await self.http.request(
                method, url, headers={"Authorization": f"Bearer {token.access_token}"}, **kwargs
            )
        except httpx.HTTPError as exc:
            raise PlatformError(f"X could not be reached: {type(exc).__name__}.") from exc
        return _checked(response)


def _checked(response: httpx.Response) -> dict[str, Any]:
    """The answer's JSON, or the typed error its status, problem body or `errors` array describes."""
    status = response.status_code
    try:
        body = response.json()
    except ValueError:
        body = None
    problem = body if isinstance(body, dict) else {}
    detail = str(problem.get("detail") or problem.get("title") or "")
    if status == 429:
        raise RateLimited("X asks us to slow down.", retry_after_seconds(response, default=15 * 60.0))
    if status == 401:
        raise TokenExpired("X no longer accepts the access token.")
    if status == 403:
        reason = str(problem.get("reason") or "")
        if reason == "client-not-enrolled":
            raise PermissionMissing("Cleack's X API access level does not include this.", reason)
        raise PermissionMissing(f"X refused: {detail or 'a permission is missing'}.")
    if status == 404:
        raise NotFound(f"X has no such post{f' ({detail})' if detail else ''}.")
    if status >= 400:
        raise PlatformError(f"X failed (HTTP {status}){f': {detail}' if detail else ''}.", status)
    if body is None or not isinstance(body, dict):
        raise PlatformError("X sent an unreadable answer.", status)
    errors = body.get("errors")
    if "data" not in body and isinstance(errors, list) and errors:
        kinds = {str(error.get("type") or "") for error in errors if isinstance(error, dict)}
        if any(kind.endswith("/resource-not-found") for kind in kinds):
            raise NotFound("X has no such post (it may have been deleted).")
        if any(kind.endswith("/not-authorized-for-resource") for kind in kinds):
            raise PermissionMissing("X does not let this account read that post (it may be protected).")
        if "meta" not in body:
            raise PlatformError("X could not answer this request.", status)
    return body


def status_id_of(url: str) -> str:
    """The post id in an x.com or twitter.com status link."""
    parts = urlsplit(url.strip())
    host = (parts.hostname or "").removeprefix("www.")
    found = STATUS_PATH.match(parts.path) if host in X_HOSTS else None
    if found is None:
        raise NotFound("This is not a link to a post on X.")
    return found.group(1)


def _object(body: Mapping[str, Any]) -> dict[str, Any]:
    data = body.get("data")
    if not isinstance(data, dict):
        raise PlatformError("X sent a malformed answer.")
    return data


def _list(body: Mapping[str, Any]) -> list[dict[str, Any]]:
    return object_list(body.get("data", []), "X")  # X leaves out `data` when a page is empty


def _next_token(body: Mapping[str, Any]) -> str | None:
    meta = body.get("meta")
    if not isinstance(meta, dict):
        raise PlatformError("X sent a page without its meta.")
    token = meta.get("next_token")
    return str(token) if token else None


def _text(item: Mapping[str, Any], key: str) -> str:
    return required_text(item, key, "X")


def _numeric(value: str) -> str:
    if not value or not value.isdigit() or len(value) > 20:
        raise NotFound("X has no such post.")
    return value


def _post(item: Mapping[str, Any]) -> Post:
    post_id = _text(item, "id")
    metrics = item.get("public_metrics") or {}
    return Post(
        id=post_id,
        url=f"https://x.com/i/web/status/{post_id}",
        text=str(item.get("text") or ""),
        created_at=parse_time(item.get("created_at")),
        comments_count=count_of(metrics.get("reply_count")),
        likes_count=count_of(metrics.get("like_count")),
    )


def _user(item: Mapping[str, Any]) -> PlatformUser:
    return PlatformUser(id=_text(item, "id"), username=_text(item, "username"))
