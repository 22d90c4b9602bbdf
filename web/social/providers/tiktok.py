"""TikTok through Login Kit v2 (OAuth 2.0 with PKCE), the Display API and, for comments, the Business API.

OAuth: consent at www.tiktok.com/v2/auth/authorize/ (the client id is called `client_key`,
scopes are comma-separated), tokens at open.tiktokapis.com/v2/oauth/token/ (form fields
client_key, client_secret; refresh tokens rotate), revocation at /v2/oauth/revoke/. TikTok's
PKCE takes the hex-encoded SHA-256 of the verifier as the challenge, not base64url.

Resources (https://open.tiktokapis.com/v2), answering `{"data": ..., "error": {"code", "message", "log_id"}}`:
- GET  /user/info/?fields=open_id,union_id,username,display_name,follower_count,is_verified
- POST /video/list/?fields=...   {"max_count", "cursor"}  -> data.videos, data.cursor, data.has_more
- POST /video/query/?fields=...  {"filters": {"video_ids": [...]}}
Comments are only in the Business API (https://business-api.tiktok.com/open_api/v1.3), for
Business accounts that granted comment access; the account's `open_id` is its `business_id`:
- GET  /business/comment/list/?business_id=&video_id=&cursor=&max_count=   (`Access-Token` header)
  -> {"code": 0, "message", "request_id", "data": {"comments", "cursor", "has_more"}}
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

import httpx
from authlib.common.urls import add_params_to_qs

from web.social.providers.base import (
    AsyncOAuth2Client,
    Capability,
    Comment,
    NotFound,
    Page,
    PermissionMissing,
    PlatformError,
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
    raise_for_token_response,
    required_text,
    retry_after_seconds,
    token_set_from,
)

VIDEO_FIELDS = "id,title,video_description,create_time,share_url,comment_count,like_count"
USER_FIELDS = "open_id,union_id,username,display_name,follower_count,is_verified"
BUSINESS_PREFIX = "/open_api/v1.3"
VIDEO_LIST_MAX = 20  # the Display API's largest page
COMMENTS_PAGE = 30  # the Business API's largest page of comments
# TikTok counts requests over a sliding minute.
DEFAULT_WAIT = 60.0
VIDEO_PATH = re.compile(r"^/@[\w.-]{1,64}/(?:video|photo)/(\d{1,30})/?$")
MENTION = re.compile(r"(?<![\w.@])@([A-Za-z0-9_.]{2,24})")
BUSINESS_RATE_LIMITED = {40100}
BUSINESS_EXPIRED = {40102}
BUSINESS_REVOKED = {40104, 40105}
BUSINESS_PERMISSION = {40001, 40006, 40007}
BUSINESS_NOT_FOUND = {40002}


def _client_key_post(
    auth: Any, method: str, uri: str, headers: dict[str, str], body: str
) -> tuple[str, dict[str, str], str]:
    """TikTok's token endpoint takes the client credentials as `client_key` and `client_secret` form fields."""
    body = add_params_to_qs(body or "", [("client_key", auth.client_id), ("client_secret", auth.client_secret)])
    headers["Content-Length"] = str(len(body))
    return uri, headers, body


class TikTokProvider(Provider):
    id = "tiktok"
    name = "TikTok"
    default_urls = {
        "auth": "https://www.tiktok.com",
        "api": "https://open.tiktokapis.com",
        "token": "https://open.tiktokapis.com",
        "business": "https://business-api.tiktok.com",
    }
    capabilities = frozenset(
        {Capability.PROFILE, Capability.RECENT_POSTS, Capability.RESOLVE_POST_URL, Capability.COMMENTS}
    )
    unavailable = {
        Capability.LIKERS: "TikTok's API gives a like count but not the list of who liked.",
        Capability.FOLLOWERS: "TikTok's API cannot tell whether someone follows you.",
        Capability.AUTHOR_FOLLOWERS: "TikTok's API does not tell how many followers a commenter has.",
        Capability.AUTHOR_ACCOUNT_TYPE: "TikTok's API does not tell whether a commenter is a business.",
        Capability.PUBLISH_REPLY: "Cleack does not post on TikTok: announce the winners from the TikTok app.",
    }
    scopes = ("user.info.basic", "user.info.profile", "user.info.stats", "video.list")
    scope_separator = ","
    client_id_param = "client_key"
    authorize_path = "/v2/auth/authorize/"
    token_path = "/v2/oauth/token/"
    revoke_path = "/v2/oauth/revoke/"
    token_auth_method = "client_key_post"
    api_prefix = "/v2"

    def pkce_challenge(self, verifier: str) -> str:
        return hashlib.sha256(verifier.encode("ascii")).hexdigest()

    def oauth_client(self, **kwargs: Any) -> AsyncOAuth2Client:
        client = super().oauth_client(**kwargs)
        client.register_client_auth_method(("client_key_post", _client_key_post))
        return client

    def token_response(self, response: httpx.Response) -> httpx.Response:
        raise_for_token_response(response, self.name)
        try:
            body = response.json()
        except ValueError:
            return response
        # TikTok may answer an OAuth error with HTTP 200.
        if isinstance(body, dict) and body.get("error") and not body.get("access_token"):
            error = str(body["error"])
            if error in {"invalid_client", "unauthorized_client"}:
                raise PlatformError(f"TikTok refused Cleack's client credentials ({error}).")
            raise TokenRevoked(f"TikTok refused the grant ({error}: {body.get('error_description') or ''}).")
        return response

    async def finish_token(self, data: Mapping[str, Any]) -> TokenSet:
        token = token_set_from(data, self.scope_separator)
        open_id = str(data.get("open_id") or "")
        return TokenSet(
            token.access_token,
            token.refresh_token,
            token.expires_at,
            token.scopes,
            {"open_id": open_id} if open_id else {},
        )

    async def revoke(self, token: TokenSet) -> None:
        try:
            await self.http.post(
                (self.config.token_base or self.config.api_base).rstrip("/") + self.revoke_path,
                data={
                    "client_key": self.config.client_id,
                    "client_secret": self.config.client_secret,
                    "token": token.access_token,
                },
            )
        except httpx.HTTPError:
            return

    async def profile(self, token: TokenSet) -> Profile:
        body = await self._display(token, "GET", "/user/info/", {"fields": USER_FIELDS})
        user = body.get("user")
        if not isinstance(user, dict):
            raise PlatformError("TikTok sent a profile without its user.")
        return Profile(
            platform_user_id=_text(user, "open_id"),
            username=str(user.get("username") or user.get("display_name") or _text(user, "open_id")),
            display_name=user.get("display_name") or None,
            account_type=None,
            followers_count=count_of(user.get("follower_count")),
        )

    async def recent_posts(self, token: TokenSet, limit: int = 20) -> list[Post]:
        body = await self._display(
            token, "POST", "/video/list/", {"fields": VIDEO_FIELDS}, {"max_count": max(1, min(limit, VIDEO_LIST_MAX))}
        )
        return [_post(item) for item in _videos(body)]

    async def resolve_post(self, token: TokenSet, url: str) -> Post:
        video_id = video_id_of(url)
        body = await self._display(
            token, "POST", "/video/query/", {"fields": VIDEO_FIELDS}, {"filters": {"video_ids": [video_id]}}
        )
        videos = _videos(body)
        if not videos:
            raise NotFound("This link is not one of your TikTok videos.")
        return _post(videos[0])

    async def comments(self, token: TokenSet, post_id: str, cursor: str | None = None) -> Page[Comment]:
        business_id = token.extra.get("open_id")
        if not business_id:
            raise TokenRevoked("This TikTok connection lacks its account id; reconnect it.")
        if not post_id.isdigit() or len(post_id) > 30:
            raise NotFound("TikTok has no such video.")
        params: dict[str, Any] = {
            "business_id": business_id,
            "video_id": post_id,
            "max_count": COMMENTS_PAGE,
            "cursor": int(cursor) if cursor and cursor.isdigit() else 0,
        }
        url = self.config.extra_bases.get("business", self.default_urls["business"]).rstrip("/")
        try:
            response = await self.http.get(
                f"{url}{BUSINESS_PREFIX}/business/comment/list/",
                params=params,
                headers={"Access-Token": token.access_token},
            )
        except httpx.HTTPError as exc:
            raise PlatformError(f"TikTok could not be reached: {type(exc).__name__}.") from exc
        data = _business_data(response)
        items = object_list(data.get("comments") or [], "TikTok", "page of comments")
        comments = []
        for item in items:
            text = str(item.get("text") or "")
            comments.append(
                Comment(
                    id=_text(item, "comment_id"),
                    author_id=_text(item, "user_id"),
                    author_username=str(item.get("username") or item.get("display_name") or _text(item, "user_id")),
                    text=text,
                    created_at=parse_time(_epoch(item.get("create_time"))),
                    mentions=tuple(dict.fromkeys(name.lower().rstrip(".") for name in MENTION.findall(text))),
                )
            )
        next_cursor = data.get("cursor")
        more = bool(data.get("has_more")) and next_cursor is not None
        return Page(comments, str(next_cursor) if more else None)

    async def _display(
        self,
        token: TokenSet,
        method: str,
        path: str,
        params: Mapping[str, Any],
        json: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        url = self.config.api_base.rstrip("/") + self.api_prefix + path
        try:
            response = await self.http.request(
                method,
                url,
                params=dict(params),
                json=dict(json) if json is not None else None,
                headers={"Authorization": f"Bearer {token.access_token}"},
            )
        except httpx.HTTPError as exc:
            raise PlatformError(f"TikTok could not be reached: {type(exc).__name__}.") from exc
        return _display_data(response)


def _display_data(response: httpx.Response) -> dict[str, Any]:
    """The `data` of a Display API answer, or the typed error its `error.code` (and status) names."""
    status = response.status_code
    try:
        body = response.json()
    except ValueError:
        body = None
    error = body.get("error") if isinstance(body, dict) else None
    code = str(error.get("code") or "") if isinstance(error, dict) else ""
    message = str(error.get("message") or "") if isinstance(error, dict) else ""
    if code == "rate_limit_exceeded" or status == 429:
        raise RateLimited("TikTok asks us to slow down.", retry_after_seconds(response, default=DEFAULT_WAIT))
    if code == "access_token_invalid" or (status == 401 and not code):
        raise TokenExpired("TikTok no longer accepts the access token.")
    if code in {"scope_not_authorized", "scope_permission_missed"} or status == 403:
        raise PermissionMissing(f"TikTok refused: {message or 'a permission is missing'}.", code or None)
    if status == 404:
        raise NotFound("TikTok has no such video.")
    if status >= 400 or (code and code != "ok"):
        raise PlatformError(f"TikTok failed ({code or f'HTTP {status}'}).", status)
    if not isinstance(body, dict) or not isinstance(body.get("data"), dict):
        raise PlatformError("TikTok sent an unreadable answer.", status)
    return body["data"]


def _business_data(response: httpx.Response) -> dict[str, Any]:
    """The `data` of a Business API answer; its numeric `code` (0 is success) says what failed."""
    status = response.status_code
    try:
        body = response.json()
    except ValueError:
        body = None
    if status == 429:
        raise RateLimited("TikTok asks us to slow down.", retry_after_seconds(response, default=DEFAULT_WAIT))
    if not isinstance(body, dict) or not isinstance(body.get("code"), int):
        raise PlatformError(f"TikTok sent an unreadable answer (HTTP {status}).", status)
    code = body["code"]
    message = str(body.get("message") or "")
    if code in BUSINESS_RATE_LIMITED:
        raise RateLimited("TikTok asks us to slow down.", retry_after_seconds(response, default=DEFAULT_WAIT))
    if code in BUSINESS_EXPIRED:
        raise TokenExpired("TikTok says the access token has expired.")
    if code in BUSINESS_REVOKED:
        raise TokenRevoked("TikTok no longer accepts this connection.")
    if code in BUSINESS_PERMISSION:
        raise PermissionMissing(
            f"TikTok refused to list comments: {message or 'a permission is missing'}. "
            "Comments can only be read for TikTok Business accounts."
        )
    if code in BUSINESS_NOT_FOUND:
        raise NotFound("TikTok has no such video for this account.")
    if code != 0 or status >= 400:
        raise PlatformError(f"TikTok failed (code {code}).", status)
    data = body.get("data")
    if not isinstance(data, dict):
        raise PlatformError("TikTok sent an unreadable answer.", status)
    return data


def video_id_of(url: str) -> str:
    """The video id in a tiktok.com/@user/video/{id} link (short vm.tiktok.com links hide it)."""
    parts = urlsplit(url.strip())
    host = (parts.hostname or "").removeprefix("www.").removeprefix("m.")
    if host in {"vm.tiktok.com", "vt.tiktok.com"}:
        raise NotFound("Open this short link in a browser and paste the full TikTok address instead.")
    found = VIDEO_PATH.match(parts.path) if host == "tiktok.com" else None
    if found is None:
        raise NotFound("This is not a link to a TikTok video.")
    return found.group(1)


def _videos(data: Mapping[str, Any]) -> list[dict[str, Any]]:
    return object_list(data.get("videos") or [], "TikTok", "list of videos")


def _post(item: Mapping[str, Any]) -> Post:
    return Post(
        id=_text(item, "id"),
        url=item.get("share_url") or None,
        text=str(item.get("video_description") or item.get("title") or ""),
        created_at=parse_time(_epoch(item.get("create_time"))),
        comments_count=count_of(item.get("comment_count")),
        likes_count=count_of(item.get("like_count")),
    )


def _epoch(value: Any) -> Any:
    """TikTok gives times as epoch seconds, sometimes as a string."""
    return int(value) if isinstance(value, str) and value.isdigit() else value


def _text(item: Mapping[str, Any], key: str) -> str:
    return required_text(item, key, "TikTok")
