"""create_app(): plugins, middleware, routes, error handlers — the whole wiring on one screen."""

from __future__ import annotations

import gc
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import Any
from urllib.parse import quote

from advanced_alchemy.extensions.litestar import AsyncSessionConfig, SQLAlchemyAsyncConfig, SQLAlchemyPlugin
from litestar import Litestar, Request, Response
from litestar.enums import RequestEncodingType
from litestar.exceptions import (
    HTTPException,
    NotAuthorizedException,
    NotFoundException,
    PermissionDeniedException,
)
from litestar.plugins.htmx import HTMXPlugin, HTMXRequest
from litestar.plugins.jinja import JinjaTemplateEngine
from litestar.response import Template
from litestar.static_files import create_static_files_router
from litestar.status_codes import HTTP_500_INTERNAL_SERVER_ERROR
from litestar.template.config import TemplateConfig
from litestar.types import ASGIApp, Receive, Scope, Send

from web.accounts.controllers import AccountController, SettingsController
from web.accounts.services import resolve_session
from web.admin.controllers import AdminController
from web.billing.controllers import AdminBillingController, BillingController, apple_webhook, stripe_webhook
from web.blacklist.controllers import BlacklistController
from web.certificates.controllers import RevealController, SandboxBeaconController, signing_key_set
from web.certificates.log_pages import LogController
from web.certificates.pages import CertificatesController
from web.credits.controllers import CreditsController
from web.credits.services import WELCOME_BONUS
from web.db import create_engine, create_read_pool
from web.draws.announcements import AnnouncementsController
from web.draws.controllers import DrawsController
from web.draws.events import draw_watchers_lifespan
from web.draws.spectators import SpectatorLinkController, WatchController
from web.htmx import redirect
from web.logs import configure_logging
from web.pages import dev_outbox, healthz, home, not_found
from web.sandbox.api import SandboxApi
from web.sandbox.oauth import SandboxOAuth
from web.sandbox.pages import SandboxPages
from web.sandbox.stripe.controllers import StripeSandboxApi, StripeSandboxPages
from web.security import csrf_config, security_headers_hook, session_cookie_name
from web.settings import PROJECT_ROOT, Settings, load_settings
from web.social.controllers import SocialAccountsController
from web.social.services import platform_http_client

log = logging.getLogger(__name__)

NOTICES = {
    "verified": "Your email is confirmed and your welcome credits are in your account. Log in to start.",
    "logged_out": "You are logged out.",
    "password_reset": "Your password has been changed. Log in with the new one.",
    "password_changed": "Your password has been changed. Your other sessions were logged out.",
    "profile_saved": "Your profile has been saved.",
    "banned": "The user is banned and their sessions have ended.",
    "unbanned": "The user can log in again.",
    "granted": "The credits were granted.",
    "already_granted": "These credits had already been granted; nothing more was added.",
    "note_added": "The note was added.",
    "flagged": "The note is flagged.",
    "unflagged": "The note is no longer flagged.",
    "checkout_cancelled": "The checkout was cancelled; nothing was charged.",
    "enterprise_sent": "Thank you: your message is with our sales team, who will write back soon.",
}
STATIC_VERSION = "3"


def _template_globals(settings: Settings) -> Any:
    def callback(engine: JinjaTemplateEngine) -> None:
        # Re-reading templates from disk when they change is for development only.
        engine.engine.auto_reload = settings.is_development
        engine.engine.globals.update(
            settings=settings,
            notices=NOTICES,
            welcome_bonus=WELCOME_BONUS,
            static=lambda path: f"/static/{path}?v={STATIC_VERSION}",
        )

    return callback


class SessionMiddleware:
    """Attach the logged-in user (or None) to the request from the session cookie, before any guard."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            await self.load(Request(scope))
        await self.app(scope, receive, send)

    @staticmethod
    async def load(request: Request[Any, Any, Any]) -> None:
        request.state.user = None
        request.state.session_id = None
        if request.route_handler.opt.get("skip_session"):
            return
        settings: Settings = request.app.state.settings
        token = request.cookies.get(session_cookie_name(settings))
        if not token or len(token) > 128:
            return
        active = await resolve_session(request.app.state.read_pool, settings, token)
        if active is not None:
            request.state.user = active.user
            request.state.session_id = active.session_id


def shared_resources_lifespan(url: str) -> Callable[[Litestar], AbstractAsyncContextManager[None]]:
    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        app.state.read_pool = await create_read_pool(url)
        app.state.http = platform_http_client()
        # Everything built at start-up lives as long as the process: keep the garbage collector off it.
        gc.freeze()
        try:
            yield
        finally:
            await app.state.http.aclose()
            await app.state.read_pool.close()

    return lifespan


def _error_page(request: Request[Any, Any, Any], status_code: int, title: str, message: str) -> Response[Any]:
    if request.url.path.startswith(("/healthz", "/webhooks/")):
        return Response({"error": title, "detail": message}, status_code=status_code)
    return Template(
        template_name="errors/error.html",
        context={"status_code": status_code, "title": title, "message": message},
        status_code=status_code,
    )


def handle_not_authorized(request: Request[Any, Any, Any], exc: NotAuthorizedException) -> Response[Any]:
    return redirect(request, f"/login?next={quote(request.url.path)}")


def handle_not_found(request: Request[Any, Any, Any], exc: NotFoundException) -> Response[Any]:
    return _error_page(request, 404, "Page not found", "There is nothing at this address.")


def handle_forbidden(request: Request[Any, Any, Any], exc: PermissionDeniedException) -> Response[Any]:
    if "CSRF" in str(exc.detail):
        return _error_page(
            request,
            403,
            "This form has expired",
            "For your security the form could not be accepted. Go back, reload the page and try again.",
        )
    return _error_page(request, 403, "Not allowed", "You are not allowed to do this.")


def handle_http_error(request: Request[Any, Any, Any], exc: HTTPException) -> Response[Any]:
    titles = {400: "Bad request", 405: "Not allowed here", 413: "Too large", 429: "Too many requests"}
    message = exc.detail if exc.status_code < 500 and exc.detail else "Something went wrong on our side."
    return _error_page(request, exc.status_code, titles.get(exc.status_code, "Error"), str(message))


def handle_undecodable_form(request: Request[Any, Any, Any], exc: UnicodeDecodeError) -> Response[Any]:
    """Litestar decodes each multipart field strictly, even while the CSRF middleware looks for its token."""
    if request.content_type[0] != RequestEncodingType.MULTI_PART:
        return handle_server_error(request, exc)
    return _error_page(
        request,
        400,
        "Bad request",
        "This form could not be read: its text is not valid UTF-8. Go back, reload the page and try again.",
    )


def handle_server_error(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    log.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return _error_page(
        request,
        HTTP_500_INTERNAL_SERVER_ERROR,
        "Something went wrong",
        "We could not complete this request. Nothing was lost; please try again in a moment.",
    )


def create_app(settings: Settings | None = None, database_url: str | None = None) -> Litestar:
    settings = settings or load_settings()
    configure_logging(settings.log_level)
    url = database_url or settings.database_url
    if not url:
        raise RuntimeError("create_app needs a database URL (cleack run starts the embedded server for you)")
    engine = create_engine(url)
    alchemy = SQLAlchemyAsyncConfig(
        engine_instance=engine,
        session_config=AsyncSessionConfig(expire_on_commit=False),
        before_send_handler="autocommit_include_redirects",
        create_all=False,
    )
    return Litestar(
        route_handlers=[
            home,
            healthz,
            dev_outbox,
            not_found,
            AccountController,
            SettingsController,
            CreditsController,
            DrawsController,
            SpectatorLinkController,
            WatchController,
            AnnouncementsController,
            CertificatesController,
            LogController,
            RevealController,
            signing_key_set,
            SandboxBeaconController,
            BlacklistController,
            SocialAccountsController,
            AdminController,
            BillingController,
            AdminBillingController,
            stripe_webhook,
            apple_webhook,
            StripeSandboxApi,
            StripeSandboxPages,
            SandboxOAuth,
            SandboxApi,
            SandboxPages,
            create_static_files_router(
                path="/static",
                directories=[PROJECT_ROOT / "static"],
                name="static",
                opt={"skip_session": True},
            ),
        ],
        plugins=[SQLAlchemyPlugin(config=alchemy), HTMXPlugin()],
        request_class=HTMXRequest,
        template_config=TemplateConfig(
            directory=Path(PROJECT_ROOT / "templates"),
            engine=JinjaTemplateEngine,
            engine_callback=_template_globals(settings),
        ),
        csrf_config=csrf_config(settings),
        middleware=[SessionMiddleware],
        before_send=[security_headers_hook(settings)],
        exception_handlers={
            NotAuthorizedException: handle_not_authorized,
            NotFoundException: handle_not_found,
            PermissionDeniedException: handle_forbidden,
            HTTPException: handle_http_error,
            UnicodeDecodeError: handle_undecodable_form,
            Exception: handle_server_error,
        },
        state=_initial_state(settings, engine),
        lifespan=[shared_resources_lifespan(url), draw_watchers_lifespan(url)],
        debug=False,
        logging_config=None,
        request_max_body_size=1024 * 1024,
    )


def _initial_state(settings: Settings, engine: Any) -> Any:
    from litestar.datastructures import State

    return State(
        {
            "settings": settings,
            "db_engine_handle": engine,
        }
    )
