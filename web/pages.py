"""Public pages, the health check and the development outbox."""

from __future__ import annotations

import asyncio
from typing import Any

import sqlalchemy as sa
from litestar import Request, Response, get
from litestar.di import NamedDependency
from litestar.exceptions import NotFoundException
from litestar.params import FromPath
from litestar.response import Template
from litestar.status_codes import HTTP_200_OK, HTTP_503_SERVICE_UNAVAILABLE
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from web.htmx import render
from web.mail import recent_outbox

HEALTH_TIMEOUT_SECONDS = 2.0


@get("/", name="home", sync_to_thread=False)
def home(request: Request[Any, Any, Any]) -> Template:
    return render(request, "home/index.html")


@get("/{path:path}", name="not_found", sync_to_thread=False, include_in_schema=False)
def not_found(path: FromPath[str]) -> None:
    """Unknown addresses pass through the middleware like any page, so the 404 knows who is logged in."""
    raise NotFoundException()


@get("/healthz", name="healthz", opt={"skip_session": True})
async def healthz(request: Request[Any, Any, Any]) -> Response[dict[str, str]]:
    engine: AsyncEngine = request.app.state.db_engine_handle
    try:
        async with asyncio.timeout(HEALTH_TIMEOUT_SECONDS):
            async with engine.connect() as connection:
                await connection.execute(sa.text("SELECT 1"))
    except (TimeoutError, OSError, DBAPIError, OperationalError):
        return Response(
            {"status": "error", "database": "unavailable"},
            status_code=HTTP_503_SERVICE_UNAVAILABLE,
            headers={"cache-control": "no-store"},
        )
    return Response({"status": "ok", "database": "ok"}, status_code=HTTP_200_OK, headers={"cache-control": "no-store"})


@get("/dev/outbox", name="dev:outbox")
async def dev_outbox(request: Request[Any, Any, Any], db_session: NamedDependency[AsyncSession]) -> Template:
    if not request.app.state.settings.dev_outbox_enabled:
        raise NotFoundException()
    return render(request, "dev/outbox.html", {"messages": await recent_outbox(db_session)})
