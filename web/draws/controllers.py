"""The creator's dashboard of draws."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, get
from litestar.di import NamedDependency
from litestar.response import Template
from sqlalchemy.ext.asyncio import AsyncSession

from web.draws.services import DrawService
from web.htmx import render
from web.security import requires_login


class DrawsController(Controller):
    path = "/draws"
    guards = [requires_login]

    @get("/", name="draws:index")
    async def dashboard(self, request: Request[Any, Any, Any], db_session: NamedDependency[AsyncSession]) -> Template:
        user = request.state.user
        draws = await DrawService(db_session).recent_for(user.id)
        return render(request, "draws/index.html", {"draws": draws, "balance": user.credit_balance})
