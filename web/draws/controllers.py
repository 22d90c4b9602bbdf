"""The creator's dashboard of draws."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, get
from litestar.response import Template

from web.draws.services import recent_draws
from web.htmx import render
from web.security import requires_login


class DrawsController(Controller):
    path = "/draws"
    guards = [requires_login]

    @get("/", name="draws:index")
    async def dashboard(self, request: Request[Any, Any, Any]) -> Template:
        user = request.state.user
        draws = await recent_draws(request.app.state.read_pool, user.id)
        return render(request, "draws/index.html", {"draws": draws, "balance": user.credit_balance})
