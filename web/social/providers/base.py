"""The one interface every social platform implements.

A provider knows a platform's OAuth endpoints and its resource API: it turns the platform's
wire format into the small value types below, and the platform's failures into the typed
errors below. It keeps no state: tokens come in as arguments, and what a provider fetched
page by page can be resumed from the cursor it returned.
"""

from __future__ import annotations

import datetime
import enum
import hashlib
import secrets
import warnings
from base64 import urlsafe_b64encode
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Generic, TypeVar

import httpx
from authlib.deprecate import AuthlibDeprecationWarning

# Authlib announces a move to the httpx2 fork; the httpx client it wraps is the one this project pins.
with warnings.catch_warnings():
    warnings.simplefilter("ignore", AuthlibDeprecationWarning)
    from authlib.integrations.httpx_client import AsyncOAuth2Client

T = TypeVar("T")


# What a platform can do


class Capability(enum.StrEnum):
    RECENT_POSTS = "recent_posts"
    RESOLVE_POST_URL = "resolve_post_url"
    COMMENTS = "comments"
    LIKERS = "likers"
    FOLLOWERS = "followers"  # the creator's followers, listed page by page (a follow check)
    AUTHOR_FOLLOWERS = "author_followers"  # each comment author's follower count
    AUTHOR_ACCOUNT_TYPE = "author_account_type"  # whether each comment author is a business account
    PROFILE = "profile"
    PUBLISH_REPLY = "publish_reply"  # post the winners' announcement under the post


# Failures, typed so that callers can act on them


class ProviderError(Exception):
    """Base of every failure a provider reports; `message` is safe to show to the creator."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class RateLimited(ProviderError):
    def __init__(self, message: str, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = max(0.0, retry_after)


class TokenExpired(ProviderError):
    """The access token is past its lifetime: refresh it and try again."""


class TokenRevoked(ProviderError):
    """The creator or the platform withdrew the grant: the account must be reconnected."""


class NotFound(ProviderError):
    pass


class PermissionMissing(ProviderError):
    def __init__(self, message: str, permission: str | None = None) -> None:
        super().__init__(message)
        self.permission = permission


class PlatformError(ProviderError):
    """The platform failed or answered something we cannot read; worth retrying later."""

    def __init__(self, message: str, status_code: int | None = None) -> None:
        super().__init__(message)
        self.status_code = status_code


class NotSupported(ProviderError):
    """The platform's API offers no way to do this."""


# Values


@dataclass(frozen=True)
class TokenSet:
    access_token: str
    refresh_token: str | None = None
    expires_at: datetime.datetime | None = None
    scopes: tuple[str, ...] = ()
    # Platform-specific extras worth keeping (e.g. the Page id a Facebook token belongs to).
    extra: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Profile:
    platform_user_id: str
    username: str
    display_name: str | None = None
    account_type: str | None = None  # business, personal or creator
    followers_count: int | None = None


@dataclass(frozen=True)
class Post:
    id: str
    url: str | None
    text: str
    created_at: datetime.datetime | None
    comments_count: int | None = None
    likes_count: int | None = None


@dataclass(frozen=True)
class Comment:
    id: str
    author_id: str
    author_username: str
    text: str
    created_at: datetime.datetime | None
    mentions: tuple[str, ...] = ()
    author_followers_count: int | None = None
    author_is_business: bool | None = None


@dataclass(frozen=True)
class PlatformUser:
    id: str
    username: str


@dataclass(frozen=True)
class Page(Generic[T]):
    items: list[T]
    next_cursor: str | None  # None when this was the last page


@dataclass(frozen=True)
class ProviderConfig:
    """Where a platform lives and how Cleack is registered with it (from configuration)."""

    client_id: str
    client_secret: str
    redirect_uri: str
    auth_base: str  # where the creator's browser goes to consent
    api_base: str  # resource endpoints
    token_base: str | None = None  # token endpoints, when not on api_base
    # Further named bases a platform needs (e.g. TikTok's "business" API), from `default_urls` or configuration.
    extra_bases: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class AuthorizationRequest:
    url: str
    state: str
    code_verifier: str | None


# The interface


class Provider:
    """One platform. Subclasses set the class attributes and implement their capabilities."""

    id: ClassVar[str]
    name: ClassVar[str]
    # Production addresses ("auth", "api" and optionally "token"); each can be overridden by configuration.
    default_urls: ClassVar[Mapping[str, str]] = {}
    capabilities: ClassVar[frozenset[Capability]]
    # For each capability the platform lacks, why: shown next to the draw rules it rules out.
    unavailable: ClassVar[Mapping[Capability, str]] = {}
    scopes: ClassVar[tuple[str, ...]] = ()
    scope_separator: ClassVar[str] = " "
    uses_pkce: ClassVar[bool] = True
    authorize_path: ClassVar[str]
    token_path: ClassVar[str]
    revoke_path: ClassVar[str | None] = None
    # How the client authenticates at the token endpoint: client_secret_post or client_secret_basic.
    token_auth_method: ClassVar[str] = "client_secret_post"
    # The name the platform's consent page gives the client id (TikTok says client_key).
    client_id_param: ClassVar[str] = "client_id"

    def __init__(self, config: ProviderConfig, http: httpx.AsyncClient) -> None:
        self.config = config
        self.http = http

    def can(self, capability: Capability) -> bool:
        return capability in self.capabilities

    @classmethod
    def why_not(cls, capability: Capability) -> str:
        return cls.unavailable.get(capability, f"{cls.name}'s API does not offer this.")

    # OAuth 2.0 (authorization code, with PKCE where the platform allows it)

    def oauth_client(self, **kwargs: Any) -> AsyncOAuth2Client:
        client = AsyncOAuth2Client(
            client_id=self.config.client_id,
            client_secret=self.config.client_secret,
            token_endpoint_auth_method=self.token_auth_method,
            redirect_uri=self.config.redirect_uri,
            scope=self.scope_separator.join(self.scopes) or None,
            code_challenge_method="S256" if self.uses_pkce else None,
            timeout=self.http.timeout,
            **kwargs,
        )
        client.register_compliance_hook("access_token_response", self.token_response)
        client.register_compliance_hook("refresh_token_response", self.token_response)
        return client

    def token_response(self, response: httpx.Response) -> httpx.Response:
        """A token endpoint's raw answer before Authlib reads it: platforms raise their typed errors or reshape it."""
        return response

    def authorization_request(self) -> AuthorizationRequest:
        state = secrets.token_urlsafe(32)
        verifier = secrets.token_urlsafe(64) if self.uses_pkce else None
        params: dict[str, str] = {
            "response_type": "code",
            self.client_id_param: self.config.client_id,
            "redirect_uri": self.config.redirect_uri,
            "state": state,
        }
        if self.scopes:
            params["scope"] = self.scope_separator.join(self.scopes)
        if verifier is not None:
            params["code_challenge"] = self.pkce_challenge(verifier)
            params["code_challenge_method"] = "S256"
        params.update(self.extra_authorize_params())
        url = httpx.URL(self.config.auth_base.rstrip("/") + self.authorize_path, params=params)
        return AuthorizationRequest(str(url), state, verifier)

    def extra_authorize_params(self) -> dict[str, str]:
        return {}

    def pkce_challenge(self, verifier: str) -> str:
        return code_challenge(verifier)

    async def exchange_code(self, code: str, code_verifier: str | None) -> TokenSet:
        async with self.oauth_client() as client:
            data = await self._token_call(
                client.fetch_token(
                    self.token_url,
                    grant_type="authorization_code",
                    code=code,
                    code_verifier=code_verifier,
                )
            )
        return await self.finish_token(data)

    async def refresh(self, token: TokenSet) -> TokenSet:
        if not token.refresh_token:
            raise TokenExpired(f"{self.name} gave no refresh token; reconnect the account.")
        async with self.oauth_client() as client:
            data = await self._token_call(client.refresh_token(self.token_url, refresh_token=token.refresh_token))
        refreshed = await self.finish_token(data)
        if refreshed.refresh_token is None:
            # Platforms that keep the refresh token do not repeat it.
            refreshed = TokenSet(
                refreshed.access_token, token.refresh_token, refreshed.expires_at, refreshed.scopes, refreshed.extra
            )
        return refreshed

    async def revoke(self, token: TokenSet) -> None:
        """Withdraw the grant at the platform; failures are ignored (the local copy is gone anyway)."""
        if self.revoke_path is None:
            return
        try:
            await self.http.post(
                (self.config.token_base or self.config.api_base).rstrip("/") + self.revoke_path,
                data={"token": token.access_token, "client_id": self.config.client_id},
                auth=(self.config.client_id, self.config.client_secret),
            )
        except httpx.HTTPError:
            return

    @property
    def token_url(self) -> str:
        return (self.config.token_base or self.config.api_base).rstrip("/") + self.token_path

    async def _token_call(self, call: Any) -> dict[str, Any]:
        """Run one token-endpoint call; an error answer (even one Authlib takes for a token) raises."""
        try:
            data = dict(await call)
        except ProviderError:
            raise
        except httpx.HTTPError as exc:
            raise PlatformError(f"{self.name} could not be reached: {type(exc).__name__}.") from exc
        except Exception as exc:  # authlib raises OAuthError and friends for `error` answers
            error = getattr(exc, "error", None) or "error"
            if error in {"invalid_grant", "invalid_token"}:
                raise TokenRevoked(f"{self.name} refused the grant ({error}).") from exc
            raise PlatformError(f"{self.name} refused the token request ({error}).") from exc
        if "error" in data or not data.get("access_token"):
            error = str(data.get("error") or "no access token")
            if error in {"invalid_grant", "invalid_token"}:
                raise TokenRevoked(f"{self.name} refused the grant ({error}).")
            raise PlatformError(f"{self.name} refused the token request ({error}).")
        return data

    async def finish_token(self, data: Mapping[str, Any]) -> TokenSet:
        """Turn a token answer into a TokenSet; platforms with extra steps (long-lived tokens) override."""
        return token_set_from(data, self.scope_separator)

    # Resource API: override what the platform offers (and list it in `capabilities`)

    async def profile(self, token: TokenSet) -> Profile:
        raise NotSupported(self.why_not(Capability.PROFILE))

    async def recent_posts(self, token: TokenSet, limit: int = 20) -> list[Post]:
        raise NotSupported(self.why_not(Capability.RECENT_POSTS))

    async def resolve_post(self, token: TokenSet, url: str) -> Post:
        raise NotSupported(self.why_not(Capability.RESOLVE_POST_URL))

    async def comments(self, token: TokenSet, post_id: str, cursor: str | None = None) -> Page[Comment]:
        raise NotSupported(self.why_not(Capability.COMMENTS))

    async def likers(self, token: TokenSet, post_id: str, cursor: str | None = None) -> Page[PlatformUser]:
        raise NotSupported(self.why_not(Capability.LIKERS))

    async def followers(self, token: TokenSet, cursor: str | None = None) -> Page[PlatformUser]:
        raise NotSupported(self.why_not(Capability.FOLLOWERS))

    async def publish_reply(self, token: TokenSet, post_id: str, text: str) -> str:
        """Publish `text` under the post; returns the platform's id of what was published."""
        raise NotSupported(self.why_not(Capability.PUBLISH_REPLY))


def code_challenge(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def token_set_from(data: Mapping[str, Any], scope_separator: str = " ") -> TokenSet:
    expires_at = None
    if data.get("expires_in") is not None:
        try:
            seconds = int(data["expires_in"])
        except (TypeError, ValueError) as exc:
            raise PlatformError("the platform sent an unreadable token lifetime") from exc
        expires_at = datetime.datetime.now(datetime.UTC) + datetime.timedelta(seconds=seconds)
    scope = data.get("scope") or ""
    scopes = tuple(part for part in str(scope).replace(",", " ").replace(scope_separator, " ").split() if part)
    return TokenSet(
        access_token=str(data["access_token"]),
        refresh_token=str(data["refresh_token"]) if data.get("refresh_token") else None,
        expires_at=expires_at,
        scopes=scopes,
    )


def raise_for_response(response: httpx.Response, platform: str, *, retry_after: float | None = None) -> None:
    """Map an HTTP answer's failure to a typed error (platforms refine this with their error bodies)."""
    status = response.status_code
    if status < 400:
        return
    if status == 429:
        raise RateLimited(
            f"{platform} asks us to slow down.",
            retry_after if retry_after is not None else retry_after_seconds(response),
        )
    if status == 401:
        raise TokenExpired(f"{platform} no longer accepts the access token.")
    if status == 403:
        raise PermissionMissing(f"{platform} refused: a permission is missing.")
    if status == 404:
        raise NotFound(f"{platform} has no such object.")
    raise PlatformError(f"{platform} failed (HTTP {status}).", status)


def raise_for_token_response(response: httpx.Response, platform: str) -> None:
    """Map a token endpoint's failure (RFC 6749 `error` bodies, or none) to a typed error; success passes."""
    status = response.status_code
    if status < 400:
        return
    if status == 429:
        raise RateLimited(f"{platform} asks us to slow down.", retry_after_seconds(response))
    if status >= 500:
        raise PlatformError(f"{platform} failed (HTTP {status}).", status)
    try:
        body = response.json()
    except ValueError:
        body = None
    if not isinstance(body, dict):
        raise PlatformError(f"{platform} refused the token request (HTTP {status}).", status)
    error = body.get("error")
    if isinstance(error, dict):
        error = error.get("code") or error.get("type")
    error = str(error or body.get("error_type") or "error")
    description = str(body.get("error_description") or body.get("error_message") or body.get("message") or "")
    if error in {"invalid_client", "unauthorized_client"}:
        raise PlatformError(f"{platform} refused Cleack's client credentials ({error}).", status)
    detail = f"{error}: {description}" if description else error
    raise TokenRevoked(f"{platform} refused the grant ({detail}).")


def retry_after_seconds(response: httpx.Response, default: float = 60.0) -> float:
    """Seconds to wait from `Retry-After` (seconds or an HTTP date) or an epoch `*-reset` header."""
    value = response.headers.get("retry-after")
    if value:
        try:
            return max(0.0, float(value))
        except ValueError:
            from email.utils import parsedate_to_datetime

            try:
                when = parsedate_to_datetime(value)
            except (TypeError, ValueError):
                return default
            return max(0.0, (when - datetime.datetime.now(datetime.UTC)).total_seconds())
    for header in ("x-rate-limit-reset", "x-ratelimit-reset"):
        reset = response.headers.get(header)
        if reset and reset.isdigit():
            return max(0.0, int(reset) - datetime.datetime.now(datetime.UTC).timestamp())
    return default


# Reading a platform's JSON: a missing or mistyped field is the platform's fault, and said so by its name.


def required_text(item: Mapping[str, Any], key: str, platform: str) -> str:
    value = item.get(key)
    if value is None or value == "":
        raise PlatformError(f"{platform} sent an object without `{key}`.")
    return str(value)


def object_list(value: Any, platform: str, what: str = "page") -> list[dict[str, Any]]:
    if not isinstance(value, list) or not all(isinstance(item, dict) for item in value):
        raise PlatformError(f"{platform} sent a malformed {what}.")
    return value


def count_of(value: Any) -> int | None:
    """A count as platforms send it: a non-negative integer, or nothing usable."""
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


def parse_time(value: Any) -> datetime.datetime | None:
    """RFC 3339 / ISO 8601 (with Z or an offset like +0000) or epoch seconds; None when absent or unreadable."""
    if value is None or value == "":
        return None
    if isinstance(value, int | float):
        return datetime.datetime.fromtimestamp(value, datetime.UTC)
    text = str(value).replace("Z", "+00:00")
    if len(text) > 5 and text[-5] in "+-" and text[-3] != ":":
        text = text[:-2] + ":" + text[-2:]
    try:
        parsed = datetime.datetime.fromisoformat(text)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=datetime.UTC)
