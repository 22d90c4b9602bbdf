"""/accounts: connect, reconnect and disconnect platform accounts, and see what each can check."""

from __future__ import annotations

import uuid
from typing import Any, TypeAlias

from litestar import Controller, Request, Response, get, post
from litestar.di import NamedDependency, Provide
from litestar.exceptions import NotFoundException
from litestar.params import FromPath, FromQuery
from litestar.response import Template
from litestar.status_codes import HTTP_502_BAD_GATEWAY
from sqlalchemy.ext.asyncio import AsyncSession

from web.accounts.controllers import client_of
from web.htmx import redirect, redirect_away, render
from web.security import current_user, requires_login
from web.social.providers import PROVIDERS
from web.social.providers.base import NotSupported, ProviderError, RateLimited
from web.social.services import REFUSALS, AccountUnavailable, ConnectionRefused, SocialService

Social: TypeAlias = NamedDependency[SocialService]

NOTICES = {
    "connected": "{platform} is connected.",
    "disconnected": "{platform} is disconnected. Its access was withdrawn and its tokens erased.",
}


def provide_social(db_session: NamedDependency[AsyncSession], request: Request[Any, Any, Any]) -> SocialService:
    return SocialService(db_session, request.app.state.settings, request.app.state.http)


def _platform_name(platform: str | None) -> str:
    provider = PROVIDERS.get(platform or "")
    return provider.name if provider else "The platform"


class SocialAccountsController(Controller):
    path = "/accounts"
    guards = [requires_login]
    dependencies = {"social": Provide(provide_social, sync_to_thread=False)}

    @get("", name="social:accounts")
    async def accounts_page(
        self,
        request: Request[Any, Any, Any],
        social: Social,
        notice: FromQuery[str | None] = None,
        refused: FromQuery[str | None] = None,
        platform: FromQuery[str | None] = None,
    ) -> Template:
        user = current_user(request)
        assert user is not None
        name = _platform_name(platform)
        return render(
            request,
            "social/accounts.html",
            {
                "cards": await social.platform_cards(user.id),
                "notice": NOTICES[notice].format(platform=name) if notice in NOTICES else None,
                "alert": REFUSALS[refused].format(platform=name) if refused in REFUSALS else None,
            },
        )

    @post("/{platform:str}/connect", name="social:connect")
    async def connect(self, request: Request[Any, Any, Any], social: Social, platform: FromPath[str]) -> Response[Any]:
        """Start (or restart, to reconnect) the OAuth dance; a POST, so that no link can start it unseen."""
        user = current_user(request)
        assert user is not None
        if platform not in PROVIDERS:
            raise NotFoundException()
        try:
            url = await social.start_connection(user.id, request.state.session_id, platform)
        except ConnectionRefused as refusal:
            return redirect(request, f"/accounts?refused={refusal.reason}&platform={platform}")
        return redirect_away(request, url)

    @get("/callback/{platform:str}", name="social:callback")
    async def callback(self, request: Request[Any, Any, Any], social: Social, platform: FromPath[str]) -> Response[Any]:
        """Where the platform sends the browser back; CSRF-exempt, protected by the single-use `state`."""
        user = current_user(request)
        assert user is not None
        if platform not in PROVIDERS:
            raise NotFoundException()
        params = {key: request.query_params[key] for key in ("state", "code", "error") if key in request.query_params}
        try:
            await social.complete_connection(user.id, request.state.session_id, platform, params, client_of(request))
        except ConnectionRefused as refusal:
            return redirect(request, f"/accounts?refused={refusal.reason}&platform={platform}")
        return redirect(request, f"/accounts?notice=connected&platform={platform}")

    @post("/{account_id:uuid}/disconnect", name="social:disconnect")
    async def disconnect(
        self, request: Request[Any, Any, Any], social: Social, account_id: FromPath[uuid.UUID]
    ) -> Response[Any]:
        user = current_user(request)
        assert user is not None
        account = await social.disconnect(user.id, account_id, client_of(request))
        if account is None:
            raise NotFoundException()
        return redirect(request, f"/accounts?notice=disconnected&platform={account.platform}")

    @get("/{account_id:uuid}/posts", name="social:posts")
    async def recent_posts(
        self, request: Request[Any, Any, Any], social: Social, account_id: FromPath[uuid.UUID]
    ) -> Template:
        """The account's recent posts (an htmx fragment, also a page of its own)."""
        user = current_user(request)
        assert user is not None
        account = await social.account_of(user.id, account_id)
        if account is None or not account.is_active:
            raise NotFoundException()
        context: dict[str, Any] = {"account": account, "posts": [], "problem": None}
        status_code = 200
        try:
            context["posts"] = await social.recent_posts(account)
        except AccountUnavailable as exc:
            context["problem"] = exc.message
            status_code = HTTP_502_BAD_GATEWAY
        except RateLimited as exc:
            context["problem"] = f"{_platform_name(account.platform)} asks us to wait {int(exc.retry_after) + 1} s."
            status_code = HTTP_502_BAD_GATEWAY
        except NotSupported as exc:
            context["problem"] = exc.message
        except ProviderError as exc:
            context["problem"] = f"{_platform_name(account.platform)} could not list the posts: {exc.message}"
            status_code = HTTP_502_BAD_GATEWAY
        return render(request, "social/posts.html", context, fragment="social/_posts.html", status_code=status_code)
