"""/blacklist: the usernames that never win the creator's draws."""

from __future__ import annotations

import uuid
from typing import Any, TypeAlias
from urllib.parse import urlencode

from litestar import Controller, Request, Response, get, post
from litestar.di import NamedDependency, Provide
from litestar.exceptions import NotFoundException
from litestar.params import FromPath, FromQuery
from litestar.response import Template
from litestar.status_codes import HTTP_409_CONFLICT, HTTP_422_UNPROCESSABLE_ENTITY
from sqlalchemy.ext.asyncio import AsyncSession

from web import forms
from web.blacklist.models import BLACKLIST_PLATFORMS
from web.blacklist.services import (
    AlreadyBlacklisted,
    BlacklistService,
    clean_platform,
    clean_reason,
    clean_username,
)
from web.htmx import redirect, render
from web.security import current_user, requires_login
from web.social.providers import PROVIDERS

Blacklist: TypeAlias = NamedDependency[BlacklistService]

ADD_FIELDS: dict[str, forms.Cleaner] = {
    "username": clean_username,
    "platform": clean_platform,
    "reason": clean_reason,
}
NOTICES = {
    "added": "@{username} is on your blacklist: they will never win your draws{where}.",
    "restored": "@{username} is back on your blacklist{where}.",
    "removed": "@{username} is no longer on your blacklist{where}.",
}


def provide_blacklist(db_session: NamedDependency[AsyncSession]) -> BlacklistService:
    return BlacklistService(db_session)


def platform_label(platform: str) -> str:
    return "all platforms" if platform == "all" else PROVIDERS[platform].name if platform in PROVIDERS else platform


def _notice_url(notice: str, username: str, platform: str) -> str:
    return "/blacklist?" + urlencode({"notice": notice, "username": username, "platform": platform})


class BlacklistController(Controller):
    path = "/blacklist"
    guards = [requires_login]
    dependencies = {"blacklist": Provide(provide_blacklist, sync_to_thread=False)}

    @get("", name="blacklist:index")
    async def index(
        self,
        request: Request[Any, Any, Any],
        blacklist: Blacklist,
        q: FromQuery[str | None] = None,
        page: FromQuery[str | None] = None,
        notice: FromQuery[str | None] = None,
        username: FromQuery[str | None] = None,
        platform: FromQuery[str | None] = None,
    ) -> Template:
        message = None
        if notice in NOTICES and username and platform in BLACKLIST_PLATFORMS:
            where = "" if platform == "all" else f" on {platform_label(platform)}"
            message = NOTICES[notice].format(username=forms.clean_search(username, 128), where=where)
        form = forms.Form(values={"platform": "all"})
        return await self._page(request, blacklist, form, q, page, notice=message)

    @post("", name="blacklist:add")
    async def add(self, request: Request[Any, Any, Any], blacklist: Blacklist) -> Response[Any]:
        user = current_user(request)
        assert user is not None
        values = await forms.read_form(request)
        values.setdefault("reason", "")
        form = forms.validate(values, ADD_FIELDS)
        if not form.is_valid:
            return await self._page(request, blacklist, form, None, None, status_code=HTTP_422_UNPROCESSABLE_ENTITY)
        try:
            added = await blacklist.add(
                user.id, form.cleaned["username"], form.cleaned["platform"], form.cleaned["reason"]
            )
        except AlreadyBlacklisted:
            form.error(
                "username",
                f"@{form.cleaned['username']} is already on your blacklist for "
                f"{platform_label(form.cleaned['platform'])}.",
            )
            return await self._page(request, blacklist, form, None, None, status_code=HTTP_409_CONFLICT)
        notice = "restored" if added.restored else "added"
        return redirect(request, _notice_url(notice, added.entry.username, added.entry.platform))

    @post("/{entry_id:uuid}/remove", name="blacklist:remove")
    async def remove(
        self, request: Request[Any, Any, Any], blacklist: Blacklist, entry_id: FromPath[uuid.UUID]
    ) -> Response[Any]:
        user = current_user(request)
        assert user is not None
        entry = await blacklist.remove(user.id, entry_id)
        if entry is None:
            raise NotFoundException()
        return redirect(request, _notice_url("removed", entry.username, entry.platform))

    async def _page(
        self,
        request: Request[Any, Any, Any],
        blacklist: BlacklistService,
        form: forms.Form,
        query: str | None,
        page: str | None,
        *,
        notice: str | None = None,
        status_code: int = 200,
    ) -> Template:
        user = current_user(request)
        assert user is not None
        term = forms.clean_search(query, 128)
        context = {
            "form": form,
            "query": term,
            "entries": await blacklist.listing(user.id, query=term, page=forms.clean_page(page)),
            "platforms": [(platform, platform_label(platform)) for platform in BLACKLIST_PLATFORMS],
            "platform_label": platform_label,
            "notice": notice,
        }
        return render(
            request, "blacklist/index.html", context, fragment="blacklist/_list.html", status_code=status_code
        )
