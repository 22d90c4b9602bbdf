"""Facebook Pages through the Graph API, and the Graph API plumbing Instagram shares.

The creator logs in with Facebook and shares one Page. The short-lived user token is exchanged
for a long-lived one (`fb_exchange_token`), which reads the Page and its Page access token from
/me/accounts. The Page token (which does not expire when it comes from a long-lived user token)
is what every Page call uses; the long-lived user token is kept, encrypted like any token, as
the refresh token, to read the Page token again. The Page id stays in `TokenSet.extra`.

Wire format (https://graph.facebook.com/{version}):
- GET  /{page-id}?fields=id,name,username,followers_count,fan_count
- GET  /{page-id}/published_posts?fields=id,message,permalink_url,created_time,comments.summary(true)...
- GET  /{post-id}/comments?fields=id,message,created_time,from{id,name},message_tags&filter=stream
- GET  /{post-id}/reactions?fields=id,name,type
- POST /{post-id}/comments  message=...
Lists answer `{"data": [...], "paging": {"cursors": {"after": ...}, "next": ...}}`; `next` is absent
on the last page. Errors answer `{"error": {"message", "type", "code", "error_subcode", "fbtrace_id"}}`.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from collections.abc import Mapping
from typing import Any, ClassVar
from urllib.parse import parse_qs, urlsplit

import httpx
from authlib.common.urls import add_params_to_uri

from web.social.providers.base import (
    AsyncOAuth2Client,
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
    ProviderError,
    RateLimited,
    TokenExpired,
    TokenRevoked,
    TokenSet,
    object_list,
    parse_time,
    retry_after_seconds,
)

GRAPH_VERSION = "v23.0"
PAGE_SIZE = 100
# Graph rate limits are counted over a rolling hour; when a header says 100% but gives no time, pause this long.
DEFAULT_GRAPH_WAIT = 15 * 60.0
RATE_LIMIT_CODES = {4, 17, 32, 613} | set(range(80001, 80015))
EXPIRED_SUBCODES = {463}
PERMISSION = re.compile(r"\b((?:pages|instagram|business|read|manage|publish)_[a-z_]+)\b")


class GraphProvider(Provider):
    """Calls to a Graph API host (graph.facebook.com or graph.instagram.com) and its error format."""

    graph_version: ClassVar[str] = GRAPH_VERSION
    uses_appsecret_proof: ClassVar[bool] = False

    def graph_url(self, path: str) -> str:
        return f"{self.config.api_base.rstrip('/')}/{self.graph_version}{path}"

    async def graph(
        self, access_token: str, method: str, path: str, params: Mapping[str, Any] | None = None
    ) -> dict[str, Any]:
        query: dict[str, Any] = {**(params or {}), "access_token": access_token}
        if self.uses_appsecret_proof:
            query["appsecret_proof"] = appsecret_proof(self.config.client_secret, access_token)
        try:
            if method == "GET":
                response = await self.http.get(self.graph_url(path), params=query)
            else:
                response = await self.http.request(method, self.graph_url(path), data=query)
        except httpx.HTTPError as exc:
            raise PlatformError(f"{self.name} could not be reached: {type(exc).__name__}.") from exc
        raise_for_graph_response(response, self.name)
        return graph_json(response, self.name)

    def token_response(self, response: httpx.Response) -> httpx.Response:
        raise_for_graph_response(response, self.name, token_endpoint=True)
        return response

    def oauth_client(self, **kwargs: Any) -> AsyncOAuth2Client:
        client = super().oauth_client(**kwargs)
        client.register_client_auth_method(("client_secret_query", _client_secret_query))
        return client

    async def token_get(self, client: AsyncOAuth2Client, url: str, **params: str) -> dict[str, Any]:
        """A token call the Graph way: GET, the app's credentials in the query string."""
        return await self._token_call(
            client.fetch_token(url, method="GET", auth=client.client_auth("client_secret_query"), **params)
        )

    async def graph_page(
        self, access_token: str, path: str, params: Mapping[str, Any], cursor: str | None
    ) -> tuple[list[dict[str, Any]], str | None]:
        query = {**params, "limit": PAGE_SIZE, **({"after": cursor} if cursor else {})}
        body = await self.graph(access_token, "GET", path, query)
        return graph_data(body, self.name), graph_next_cursor(body)

    async def publish_reply(self, token: TokenSet, post_id: str, text: str) -> str:
        """A comment under the post, as the account (a Page, or an Instagram professional account)."""
        body = await self.graph(
            token.access_token, "POST", f"/{graph_object_id(post_id, self.name)}/comments", {"message": text}
        )
        return graph_text(body, "id", self.name)


def _client_secret_query(
    auth: Any, method: str, uri: str, headers: dict[str, str], body: str
) -> tuple[str, dict[str, str], str]:
    return add_params_to_uri(uri, [("client_id", auth.client_id), ("client_secret", auth.client_secret)]), headers, body


def appsecret_proof(app_secret: str, access_token: str) -> str:
    """Graph's proof that a call comes from the app's server: HMAC-SHA256 of the token under the app secret."""
    return hmac.new(app_secret.encode(), access_token.encode(), hashlib.sha256).hexdigest()


def raise_for_graph_response(response: httpx.Response, platform: str, *, token_endpoint: bool = False) -> None:
    """Map a Graph API failure (its `error` object, or the HTTP status alone) to a typed error."""
    status = response.status_code
    try:
        body = response.json()
    except ValueError:
        body = None
    error = body.get("error") if isinstance(body, dict) else None
    if status < 400 and not isinstance(error, dict):
        return
    if not isinstance(error, dict):
        if status == 429:
            raise RateLimited(f"{platform} asks us to slow down.", graph_retry_after(response))
        if status >= 500 or not token_endpoint:
            raise PlatformError(f"{platform} failed (HTTP {status}).", status)
        # The Instagram token endpoint answers {"error_type", "code", "error_message"}.
        detail = str(body.get("error_message") or "") if isinstance(body, dict) else ""
        raise TokenRevoked(f"{platform} refused the grant{f' ({detail})' if detail else ''}.")
    code = _int(error.get("code"))
    subcode = _int(error.get("error_subcode"))
    message = str(error.get("message") or "")
    if code == 190 or code == 102:
        if subcode in EXPIRED_SUBCODES:
            raise TokenExpired(f"{platform} says the access token has expired.")
        raise TokenRevoked(f"{platform} no longer accepts this connection: {message or 'the token was withdrawn'}.")
    if code in RATE_LIMIT_CODES or status == 429:
        raise RateLimited(f"{platform} asks us to slow down.", graph_retry_after(response))
    if code == 10 or code == 3 or (code is not None and 200 <= code <= 299):
        found = PERMISSION.search(message)
        raise PermissionMissing(
            f"{platform} refused: a permission is missing ({message or 'no detail'}).",
            found.group(1) if found else None,
        )
    if code == 100 and "does not exist" in message:
        raise NotFound(f"{platform} has no such post (or it cannot be read).")
    if token_endpoint and status < 500:
        raise TokenRevoked(f"{platform} refused the grant ({message or f'code {code}'}).")
    raise PlatformError(f"{platform} failed: {message or f'code {code}'}.", status)


def graph_retry_after(response: httpx.Response) -> float:
    """Seconds to wait, from `Retry-After`, X-Business-Use-Case-Usage or X-App-Usage; a default otherwise."""
    if response.headers.get("retry-after"):
        return retry_after_seconds(response)
    business = _header_json(response, "x-business-use-case-usage")
    if isinstance(business, dict):
        minutes = [
            _int(entry.get("estimated_time_to_regain_access")) or 0
            for entries in business.values()
            if isinstance(entries, list)
            for entry in entries
            if isinstance(entry, dict)
        ]
        if minutes and max(minutes) > 0:
            return max(minutes) * 60.0
    app = _header_json(response, "x-app-usage")
    if isinstance(app, dict):
        return DEFAULT_GRAPH_WAIT
    return 60.0


def graph_json(response: httpx.Response, platform: str) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError as exc:
        raise PlatformError(f"{platform} sent an unreadable answer.", response.status_code) from exc
    if not isinstance(body, dict):
        raise PlatformError(f"{platform} sent an unreadable answer.", response.status_code)
    return body


def graph_data(body: Mapping[str, Any], platform: str) -> list[dict[str, Any]]:
    return object_list(body.get("data"), platform)


def graph_next_cursor(body: Mapping[str, Any]) -> str | None:
    """The `after` cursor of the next page; None on the last page (Graph leaves out `next` there)."""
    paging = body.get("paging")
    if not isinstance(paging, dict) or not paging.get("next"):
        return None
    cursors = paging.get("cursors")
    after = cursors.get("after") if isinstance(cursors, dict) else None
    if not after:
        after = parse_qs(urlsplit(str(paging["next"])).query).get("after", [None])[0]
    return str(after) if after else None


def graph_text(item: Mapping[str, Any], key: str, platform: str) -> str:
    value = item.get(key)
    if value is None or value == "":
        raise PlatformError(f"{platform} sent an object without `{key}`.")
    return str(value)


def graph_count(value: Any) -> int | None:
    if isinstance(value, dict):
        value = (value.get("summary") or {}).get("total_count")
    return value if isinstance(value, int) and value >= 0 else None


def graph_object_id(value: str, platform: str) -> str:
    """Graph ids are digits, joined by `_` for a Page's posts; anything else cannot name an object."""
    if not re.fullmatch(r"\d{1,40}(?:_\d{1,40})?", value or ""):
        raise NotFound(f"{platform} has no such post.")
    return value


def _int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _header_json(response: httpx.Response, name: str) -> Any:
    value = response.headers.get(name)
    if not value:
        return None
    try:
        return json.loads(value)
    except ValueError:
        return None


class FacebookProvider(GraphProvider):
    id = "facebook"
    name = "Facebook"
    default_urls = {
        "auth": "https://www.facebook.com",
        "api": "https://graph.facebook.com",
        "token": "https://graph.facebook.com",
    }
    capabilities = frozenset(
        {
            Capability.PROFILE,
            Capability.RECENT_POSTS,
            Capability.RESOLVE_POST_URL,
            Capability.COMMENTS,
            Capability.LIKERS,
            Capability.PUBLISH_REPLY,
        }
    )
    unavailable = {
        Capability.FOLLOWERS: "Facebook's API gives a Page's follower count but not the list of who follows it.",
        Capability.AUTHOR_FOLLOWERS: "Facebook's API does not tell how many followers a commenter has.",
        Capability.AUTHOR_ACCOUNT_TYPE: "Facebook's API does not tell whether a commenter is a business.",
    }
    scopes = ("pages_show_list", "pages_read_engagement", "pages_read_user_content", "pages_manage_engagement")
    scope_separator = ","
    # Facebook Login does not take PKCE for apps with a client secret; `state` and the exact redirect URI protect it.
    uses_pkce = False
    authorize_path = f"/{GRAPH_VERSION}/dialog/oauth"
    token_path = f"/{GRAPH_VERSION}/oauth/access_token"
    uses_appsecret_proof = True

    async def exchange_code(self, code: str, code_verifier: str | None) -> TokenSet:
        async with self.oauth_client() as client:
            short = await self.token_get(client, self.token_url, grant_type="authorization_code", code=code)
            long_lived = await self.token_get(
                client, self.token_url, grant_type="fb_exchange_token", fb_exchange_token=str(short["access_token"])
            )
        user_token = str(long_lived["access_token"])
        scopes = tuple(str(short.get("scope") or "").replace(",", " ").split()) or self.scopes
        return await self._page_token(user_token, scopes, page_id=None)

    async def refresh(self, token: TokenSet) -> TokenSet:
        """Read the Page token again with the long-lived user token (Page tokens have no refresh grant)."""
        if not token.refresh_token:
            raise TokenRevoked("Facebook gave no way to renew this Page's access; reconnect the Page.")
        return await self._page_token(token.refresh_token, token.scopes, page_id=token.extra.get("page_id"))

    async def revoke(self, token: TokenSet) -> None:
        if not token.refresh_token:
            return
        try:
            await self.graph(token.refresh_token, "DELETE", "/me/permissions")
        except ProviderError:
            return

    async def _page_token(self, user_token: str, scopes: tuple[str, ...], page_id: str | None) -> TokenSet:
        body = await self.graph(user_token, "GET", "/me/accounts", {"fields": "id,name,access_token,tasks"})
        pages = graph_data(body, self.name)
        page = next((item for item in pages if page_id is None or str(item.get("id")) == page_id), None)
        if page is None or not page.get("access_token"):
            raise PermissionMissing(
                "No Facebook Page was shared with Cleack: reconnect and choose the Page to use.", "pages_show_list"
            )
        return TokenSet(
            access_token=str(page["access_token"]),
            refresh_token=user_token,
            expires_at=None,
            scopes=scopes,
            extra={"page_id": graph_text(page, "id", self.name), "page_name": str(page.get("name") or "")},
        )

    def _page_id(self, token: TokenSet) -> str:
        page_id = token.extra.get("page_id")
        if not page_id:
            raise TokenRevoked("This Facebook connection has no Page; reconnect it.")
        return page_id

    async def profile(self, token: TokenSet) -> Profile:
        page_id = self._page_id(token)
        body = await self.graph(
            token.access_token, "GET", f"/{page_id}", {"fields": "id,name,username,followers_count,fan_count"}
        )
        name = graph_text(body, "name", self.name)
        return Profile(
            platform_user_id=graph_text(body, "id", self.name),
            username=str(body.get("username") or name),
            display_name=name,
            account_type="business",
            followers_count=graph_count(body.get("followers_count")) or graph_count(body.get("fan_count")),
        )

    async def recent_posts(self, token: TokenSet, limit: int = 20) -> list[Post]:
        body = await self.graph(
            token.access_token,
            "GET",
            f"/{self._page_id(token)}/published_posts",
            {"fields": POST_FIELDS, "limit": max(1, min(limit, PAGE_SIZE))},
        )
        return [self._post(item) for item in graph_data(body, self.name)]

    async def resolve_post(self, token: TokenSet, url: str) -> Post:
        page_id = self._page_id(token)
        candidate = post_id_from_url(url, page_id)
        if candidate is not None:
            try:
                return self._post(await self.graph(token.access_token, "GET", f"/{candidate}", {"fields": POST_FIELDS}))
            except NotFound:
                pass
        wanted = _normalized(url)
        cursor = None
        for _ in range(5):  # the posts of the last few months; older links are rarely used for a draw
            items, cursor = await self.graph_page(
                token.access_token, f"/{page_id}/published_posts", {"fields": POST_FIELDS}, cursor
            )
            for item in items:
                if item.get("permalink_url") and _normalized(str(item["permalink_url"])) == wanted:
                    return self._post(item)
            if cursor is None:
                break
        raise NotFound("This link is not one of your Facebook Page's posts.")

    async def comments(self, token: TokenSet, post_id: str, cursor: str | None = None) -> Page[Comment]:
        items, next_cursor = await self.graph_page(
            token.access_token,
            f"/{graph_object_id(post_id, self.name)}/comments",
            {"fields": "id,message,created_time,from{id,name},message_tags", "filter": "stream"},
            cursor,
        )
        comments = []
        for item in items:
            author = item.get("from")
            if not isinstance(author, dict):
                # Graph leaves out `from` for people who have not allowed apps to see them: no entry without an author.
                continue
            tags = item.get("message_tags") or []
            comments.append(
                Comment(
                    id=graph_text(item, "id", self.name),
                    author_id=graph_text(author, "id", self.name),
                    author_username=graph_text(author, "name", self.name),
                    text=str(item.get("message") or ""),
                    created_at=parse_time(item.get("created_time")),
                    mentions=tuple(
                        str(tag["name"])
                        for tag in tags
                        if isinstance(tag, dict) and tag.get("name") and tag.get("type", "user") == "user"
                    ),
                )
            )
        return Page(comments, next_cursor)

    async def likers(self, token: TokenSet, post_id: str, cursor: str | None = None) -> Page[PlatformUser]:
        items, next_cursor = await self.graph_page(
            token.access_token, f"/{graph_object_id(post_id, self.name)}/reactions", {"fields": "id,name,type"}, cursor
        )
        users = [
            PlatformUser(id=graph_text(item, "id", self.name), username=graph_text(item, "name", self.name))
            for item in items
        ]
        return Page(users, next_cursor)

    def _post(self, item: Mapping[str, Any]) -> Post:
        return Post(
            id=graph_text(item, "id", self.name),
            url=item.get("permalink_url"),
            text=str(item.get("message") or ""),
            created_at=parse_time(item.get("created_time")),
            comments_count=graph_count(item.get("comments")),
            likes_count=graph_count(item.get("reactions")),
        )


POST_FIELDS = "id,message,permalink_url,created_time,comments.summary(true).limit(0),reactions.summary(true).limit(0)"


def post_id_from_url(url: str, page_id: str) -> str | None:
    """The Graph id a Facebook post link names, when it names one (`pfbid…` links are matched by listing)."""
    parts = urlsplit(url.strip())
    if not (parts.hostname or "").endswith("facebook.com"):
        raise NotFound("This is not a Facebook link.")
    query = parse_qs(parts.query)
    story = (query.get("story_fbid") or [""])[0]
    owner = (query.get("id") or [page_id])[0]
    if story.isdigit() and owner.isdigit():
        return f"{owner}_{story}"
    found = re.search(r"/(?:posts|videos|photos)/(\d+)/?$", parts.path)
    if found:
        return f"{page_id}_{found.group(1)}"
    return None


def _normalized(url: str) -> str:
    parts = urlsplit(url.strip())
    host = (parts.hostname or "").removeprefix("www.").removeprefix("m.")
    return f"{host}{parts.path.rstrip('/')}"
