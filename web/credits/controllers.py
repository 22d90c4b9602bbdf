"""The creator's balance and ledger."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, get
from litestar.di import NamedDependency
from litestar.response import Template
from sqlalchemy.ext.asyncio import AsyncSession

from web.credits.services import CreditsService
from web.forms import clean_page
from web.htmx import render
from web.security import requires_login


class CreditsController(Controller):
    path = "/credits"
    guards = [requires_login]

    @get("/", name="credits:index")
    async def index(self, request: Request[Any, Any, Any], db_session: NamedDependency[AsyncSession]) -> Template:
        page_number = clean_page(request.query_params.get("page"))
        user = request.state.user
        ledger = await CreditsService(db_session).ledger(user.id, page=page_number)
        return render(
            request,
            "credits/index.html",
            {"ledger": ledger, "balance": user.credit_balance},
            fragment="credits/_ledger.html",
        )
