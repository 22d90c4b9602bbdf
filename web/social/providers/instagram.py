"""Instagram professional accounts (business or creator) through the Instagram API with Instagram Login.

OAuth: consent at www.instagram.com/oauth/authorize, the code exchanged at
api.instagram.com/oauth/access_token for a short-lived token (one hour), itself exchanged at
graph.instagram.com/access_token (`ig_exchange_token`) for a long-lived one (60 days), which is
renewed at graph.instagram.com/refresh_access_token (`ig_refresh_token`): there is no refresh token.

Resources (https://graph.instagram.com/{version}):
- GET  /me?fields=user_id,username,name,account_type,followers_count
- GET  /me/media?fields=id,caption,permalink,timestamp,comments_count,like_count
- GET  /{media-id}/comments?fields=id,text,timestamp,from{id,username}   (cursor paging)
- POST /{media-id}/comments  message=...
Paging and errors are the Graph API's (see facebook.py).
"""

from __future__ import annotations

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
    PlatformError,
    Post,
    Profile,
    TokenSet,
    parse_time,
    token_set_from,
)
from web.social.providers.facebook import (
    PAGE_SIZE,
    GraphProvider,
    graph_count,
    graph_data,
    graph_object_id,
    graph_text,
    raise_for_graph_response,
)

INSTAGRAM_GRAPH_VERSION = "v23.0"
MENTION = re.compile(r"(?<![\w.@])@([A-Za-z0-9_](?:[A-Za-z0-9_.]{0,28}[A-Za-z0-9_])?)")
SHORTCODE = re.compile(r"^/(?:[A-Za-z0-9_.]+/)?(?:p|reel|reels|tv)/([A-Za-z0-9_-]+)/?$")
ACCOUNT_TYPES = {"BUSINESS": "business", "MEDIA_CREATOR": "creator", "CREATOR": "creator", "PERSONAL": "personal"}
MEDIA_FIELDS = "id,caption,permalink,timestamp,comments_count,like_count"


class InstagramProvider(GraphProvider):
    id = "instagram"
    name = "Instagram"
    default_urls = {
        "auth": "https://www.instagram.com",
        "token": "https://api.instagram.com",
        "api": "https://graph.instagram.com",
    }
    capabilities = frozenset(
        {
            Capability.PROFILE,
            Capability.RECENT_POSTS,
            Capability.RESOLVE_POST_URL,
            Capability.COMMENTS,
            Capability.PUBLISH_REPLY,
        }
    )
    unavailable = {
        Capability.LIKERS: "Instagram's API gives a like count but not the list of who liked.",
        Capability.FOLLOWERS: "Instagram's API cannot tell whether someone follows you.",
        Capability.AUTHOR_FOLLOWERS: "Instagram's API does not tell how many followers a commenter has.",
        Capability.AUTHOR_ACCOUNT_TYPE: "Instagram's API does not tell whether a commenter is a business.",
    }
    scopes = ("instagram_business_basic", "instagram_business_manage_comments")
    scope_separator = ","
    # Instagram's authorization endpoint takes no PKCE parameters; `state`, the exact redirect URI and the
    # app secret (sent only from the server) protect the exchange.
    uses_pkce = False
    authorize_path = "/oauth/authorize"
    token_path = "/oauth/access_token"
    graph_version = INSTAGRAM_GRAPH_VERSION

    def token_response(self, response: httpx.Response) -> httpx.Response:
        raise_for_graph_response(response, self.name, token_endpoint=True)
        try:
            body = response.json()
        except ValueError:
            return response
        # The code exchange answers {"data": [{"access_token", "user_id", "permissions"}]}.
        if isinstance(body, dict) and isinstance(body.get("data"), list) and body["data"]:
            first = body["data"][0]
            if isinstance(first, dict):
                return httpx.Response(response.status_code, json=first, request=response.request)
        return response

    async def finish_token(self, data: Mapping[str, Any]) -> TokenSet:
        """Trade the one-hour token for a 60-day one straight away."""
        async with self.oauth_client() as client:
            long_lived = await self.token_get(
                client,
                self._graph_root("/access_token"),
                grant_type="ig_exchange_token",
                access_token=str(data["access_token"]),
            )
        token = token_set_from(long_lived)
        scopes = tuple(str(data.get("permissions") or data.get("scope") or "").replace(",", " ").split())
        user_id = str(data.get("user_id") or "")
        return TokenSet(
            token.access_token, None, token.expires_at, scopes or self.scopes, {"user_id": user_id} if user_id else {}
        )

    async def refresh(self, token: TokenSet) -> TokenSet:
        """Long-lived tokens renew themselves for another 60 days while still valid."""
        async with self.oauth_client() as client:
            data = await self._token_call(
                client.fetch_token(
                    self._graph_root("/refresh_access_token"),
                    method="GET",
                    grant_type="ig_refresh_token",
                    access_token=token.access_token,
                    auth=client.client_auth("none"),
                )
            )
        renewed = token_set_from(data)
        return TokenSet(renewed.access_token, None, renewed.expires_at, token.scopes, token.extra)

    def _graph_root(self, path: str) -> str:
        return self.config.api_base.rstrip("/") + path

    async def profile(self, token: TokenSet) -> Profile:
        body = await self.graph(
            token.access_token, "GET", "/me", {"fields": "user_id,username,name,account_type,followers_count"}
        )
        account_type = str(body.get("account_type") or "").upper()
        return Profile(
            platform_user_id=str(body.get("user_id") or graph_text(body, "id", self.name)),
            username=graph_text(body, "username", self.name),
            display_name=body.get("name") or None,
            account_type=ACCOUNT_TYPES.get(account_type),
            followers_count=graph_count(body.get("followers_count")),
        )

    async def recent_posts(self, token: TokenSet, limit: int = 20) -> list[Post]:
        body = await self.graph(
            token.access_token, "GET", "/me/media", {"fields": MEDIA_FIELDS, "limit": max(1, min(limit, PAGE_SIZE))}
        )
        return [self._post(item) for item in graph_data(body, self.name)]

    async def resolve_post(self, token: TokenSet, url: str) -> Post:
        """Instagram has no lookup by link: find the shortcode among the account's recent media."""
        shortcode = shortcode_of(url)
        cursor = None
        for _ in range(5):  # up to 500 recent posts
            items, cursor = await self.graph_page(token.access_token, "/me/media", {"fields": MEDIA_FIELDS}, cursor)
            for item in items:
                if item.get("permalink") and shortcode_of(str(item["permalink"]), strict=False) == shortcode:
                    return self._post(item)
            if cursor is None:
                break
        raise NotFound("This link is not one of your recent Instagram posts.")

    async def comments(self, token: TokenSet, post_id: str, cursor: str | None = None) -> Page[Comment]:
        items, next_cursor = await self.graph_page(
            token.access_token,
            f"/{graph_object_id(post_id, self.name)}/comments",
            {"fields": "id,text,timestamp,from{id,username}"},
            cursor,
        )
        comments = []
        for item in items:
            author = item.get("from")
            if not isinstance(author, dict):
                raise PlatformError("Instagram sent a comment without its author.")
            text = str(item.get("text") or "")
            comments.append(
                Comment(
                    id=graph_text(item, "id", self.name),
                    author_id=graph_text(author, "id", self.name),
                    author_username=graph_text(author, "username", self.name),
                    text=text,
                    created_at=parse_time(item.get("timestamp")),
                    mentions=mentions_in(text),
                )
            )
        return Page(comments, next_cursor)

    def _post(self, item: Mapping[str, Any]) -> Post:
        return Post(
            id=graph_text(item, "id", self.name),
            url=item.get("permalink"),
            text=str(item.get("caption") or ""),
            created_at=parse_time(item.get("timestamp")),
            comments_count=graph_count(item.get("comments_count")),
            likes_count=graph_count(item.get("like_count")),
        )


def shortcode_of(url: str, *, strict: bool = True) -> str | None:
    """The shortcode of an Instagram post link (/p/…, /reel/…, /tv/…)."""
    parts = urlsplit(url.strip())
    host = (parts.hostname or "").removeprefix("www.")
    found = SHORTCODE.match(parts.path) if host in {"instagram.com", "instagr.am"} else None
    if found is None:
        if strict:
            raise NotFound("This is not a link to an Instagram post.")
        return None
    return found.group(1)


def mentions_in(text: str) -> tuple[str, ...]:
    return tuple(dict.fromkeys(name.lower() for name in MENTION.findall(text)))
