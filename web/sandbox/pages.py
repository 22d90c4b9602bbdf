"""The sandbox's public pages: what it is, its accounts and posts, a form to add a post, and each post's page."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, Response, get, post
from litestar.di import NamedDependency
from litestar.exceptions import NotFoundException
from litestar.params import FromPath
from litestar.response import Template
from litestar.status_codes import HTTP_422_UNPROCESSABLE_ENTITY
from sqlalchemy.ext.asyncio import AsyncSession

from web import forms
from web.htmx import redirect, render
from web.sandbox import generator
from web.sandbox.api import requires_sandbox
from web.sandbox.models import SandboxAccount
from web.sandbox.services import SandboxService, post_url, validate_behaviour
from web.settings import Settings

FIRST_COMMENTS = 20
CAPTION_MAX = 2_200
# Switch fields of the form: (field, label, low, high).
SWITCH_FIELDS = (
    ("rate_limit_requests", "Requests allowed", 1, 10_000),
    ("rate_limit_window", "Per window of (seconds)", 1, 3_600),
    ("fail_every", "Fail every nth page", 1, 10_000),
    ("fail_status", "With status", 500, 599),
    ("fail_times", "Times before succeeding", 1, 100),
    ("slow_ms", "Delay every answer by (ms)", 1, 10_000),
    ("malformed_every", "Garble every nth page", 1, 10_000),
    ("malformed_times", "Times before succeeding", 1, 100),
    ("overlap", "Repeat on the next page the last n comments", 1, 999),
)
# Fields that only mean something together.
PAIRED = (("rate_limit_requests", "rate_limit_window"), ("fail_every", "fail_status"))


def _whole(label: str, low: int, high: int, *, optional: bool) -> forms.Cleaner:
    def clean(value: str) -> int | None:
        text = value.strip().replace(",", "").replace("_", "").replace(" ", "")
        if not text and optional:
            return None
        if not (text.isascii() and text.isdigit()) or not low <= int(text) <= high:
            raise forms.FieldError(f"{label}: a whole number from {low:,} to {high:,}.")
        return int(text)

    return clean


def _caption(value: str) -> str:
    return forms.clean_required_text("The caption", CAPTION_MAX)(value) if value.strip() else ""


def _behaviour(cleaned: dict[str, Any]) -> dict[str, Any]:
    behaviour: dict[str, Any] = {}
    if cleaned["rate_limit_requests"] is not None:
        behaviour["rate_limit"] = {
            "requests": cleaned["rate_limit_requests"],
            "window_seconds": cleaned["rate_limit_window"],
        }
    if cleaned["fail_every"] is not None:
        behaviour["fail_pages"] = {
            "every": cleaned["fail_every"],
            "status": cleaned["fail_status"],
            "times": cleaned["fail_times"] or 1,
        }
    if cleaned["slow_ms"] is not None:
        behaviour["slow_ms"] = cleaned["slow_ms"]
    if cleaned["malformed_every"] is not None:
        behaviour["malformed_every"] = cleaned["malformed_every"]
        behaviour["times"] = cleaned["malformed_times"] or 1
    if cleaned["overlap"] is not None:
        behaviour["overlap"] = cleaned["overlap"]
    if cleaned["newest_first"]:
        behaviour["newest_first"] = True
    return validate_behaviour(behaviour)


async def _index(service: SandboxService, form: forms.Form) -> dict[str, Any]:
    accounts = [
        {"account": account, "posts": await service.posts_of(account.id)} for account in await service.accounts()
    ]
    return {"accounts": accounts, "form": form, "switch_fields": SWITCH_FIELDS}


class SandboxPages(Controller):
    path = "/sandbox"
    guards = [requires_sandbox]

    @get("", name="sandbox:index")
    async def index(self, request: Request[Any, Any, Any], db_session: NamedDependency[AsyncSession]) -> Template:
        service = SandboxService(db_session, request.app.state.settings)
        return render(request, "sandbox/index.html", await _index(service, forms.Form()))

    @post("/posts")
    async def add_post(
        self, request: Request[Any, Any, Any], db_session: NamedDependency[AsyncSession]
    ) -> Response[Any]:
        settings: Settings = request.app.state.settings
        service = SandboxService(db_session, settings)
        cleaners: dict[str, forms.Cleaner] = {
            "account": lambda value: value.strip(),
            "comments": _whole("Comments", 0, generator.MAX_COMMENTS, optional=False),
            "caption": _caption,
            **{name: _whole(label, low, high, optional=True) for name, label, low, high in SWITCH_FIELDS},
            "newest_first": forms.clean_checkbox,
        }
        form = forms.validate(await forms.read_form(request), cleaners)
        account: SandboxAccount | None = None
        if "account" not in form.errors:
            account = await service.account(form.cleaned["account"]) if form.cleaned["account"] else None
            if account is None:
                form.error("account", "Choose one of the sandbox accounts.")
        for first, second in PAIRED:
            if first in form.cleaned and second in form.cleaned:
                if (form.cleaned[first] is None) != (form.cleaned[second] is None):
                    missing = second if form.cleaned[second] is None else first
                    form.error(missing, "Fill in both fields of this switch, or neither.")
        if not form.is_valid or account is None:
            context = await _index(service, form)
            return render(request, "sandbox/index.html", context, status_code=HTTP_422_UNPROCESSABLE_ENTITY)
        created = await service.create_post(
            account, form.cleaned["comments"], form.cleaned["caption"] or None, _behaviour(form.cleaned)
        )
        await db_session.commit()
        return redirect(request, f"/sandbox/p/{created.post_id}")

    @get("/p/{post_id:str}", name="sandbox:post")
    async def post_page(
        self, request: Request[Any, Any, Any], db_session: NamedDependency[AsyncSession], post_id: FromPath[str]
    ) -> Template:
        settings: Settings = request.app.state.settings
        service = SandboxService(db_session, settings)
        found = await service.post(post_id) if len(post_id) <= 40 else None
        if found is None:
            raise NotFoundException()
        account = await db_session.get(SandboxAccount, found.account_id)
        posted_at = generator.seconds_of(found.posted_at)
        comments = generator.comments_page(found.post_id, found.comments_count, posted_at, 0, FIRST_COMMENTS)
        return render(
            request,
            "sandbox/post.html",
            {
                "post": found,
                "account": account,
                "url": post_url(settings, found.post_id),
                "comments": comments,
                "replies": await service.replies_to(found.post_id),
            },
        )
