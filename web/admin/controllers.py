"""The admin area: administrators only; everyone else is told it does not exist."""

from __future__ import annotations

import uuid
from typing import Any, TypeAlias

from litestar import Controller, Request, Response, get, post
from litestar.di import NamedDependency, Provide
from litestar.exceptions import NotFoundException
from litestar.params import FromPath
from litestar.response import Template
from litestar.status_codes import HTTP_409_CONFLICT, HTTP_422_UNPROCESSABLE_ENTITY
from sqlalchemy.ext.asyncio import AsyncSession

from web import forms
from web.admin import metrics
from web.admin.services import Actor, AdminActionRefused, AdminService
from web.htmx import redirect, render
from web.security import requires_admin

MAX_GRANT = 10_000
CHART_RANGES = (30, 90)

Admin: TypeAlias = NamedDependency[AdminService]


def provide_admin(db_session: NamedDependency[AsyncSession]) -> AdminService:
    return AdminService(db_session)


def actor_of(request: Request[Any, Any, Any]) -> Actor:
    return Actor(request.state.user.id, request.client.host if request.client else None)


def clean_amount(value: str) -> int:
    value = value.strip()
    if not value:
        raise forms.FieldError("Enter a number of credits.")
    if not value.isascii() or not value.isdigit():
        raise forms.FieldError("Enter a whole number of credits, like 5.")
    # Python refuses to convert thousands of digits, and no such number is in range anyway.
    amount = int(value) if len(value.lstrip("0")) <= len(str(MAX_GRANT)) else MAX_GRANT + 1
    if not 1 <= amount <= MAX_GRANT:
        raise forms.FieldError(f"Grant between 1 and {MAX_GRANT:,} credits.")
    return amount


def clean_request_key(value: str) -> str:
    try:
        return str(uuid.UUID(value))
    except ValueError as exc:
        raise forms.FieldError("This form has expired. Reload the page and try again.") from exc


GRANT_FIELDS: dict[str, forms.Cleaner] = {
    "amount": clean_amount,
    "reason": forms.clean_required_text("A reason", 200),
    "request_key": clean_request_key,
}
REASON_FIELDS: dict[str, forms.Cleaner] = {"reason": forms.clean_required_text("A reason", 500)}
NOTE_FIELDS: dict[str, forms.Cleaner] = {
    "note": forms.clean_required_text("A note", 5000),
    "flagged": forms.clean_checkbox,
}


class AdminController(Controller):
    path = "/admin"
    guards = [requires_admin]
    dependencies = {"admin": Provide(provide_admin, sync_to_thread=False)}
    include_in_schema = False

    @get("/", name="admin:dashboard")
    async def dashboard(self, request: Request[Any, Any, Any], admin: Admin) -> Template:
        days = forms.clean_page(request.query_params.get("days"))
        days = days if days in CHART_RANGES else CHART_RANGES[0]
        return render(
            request,
            "admin/dashboard.html",
            {
                "statistics": await admin.statistics(),
                "series": await metrics.series(admin.db, days),
                "days": days,
                "ranges": CHART_RANGES,
            },
        )

    @get("/users", name="admin:users")
    async def users(self, request: Request[Any, Any, Any], admin: Admin) -> Template:
        query = forms.clean_search(request.query_params.get("q"))
        flagged = request.query_params.get("flagged") == "1"
        page = await admin.users(query, forms.clean_page(request.query_params.get("page")), flagged_only=flagged)
        return render(
            request,
            "admin/users.html",
            {"users": page, "query": query, "flagged": flagged},
            fragment="admin/_users.html",
        )

    @get("/users/{user_id:uuid}", name="admin:user")
    async def user(self, request: Request[Any, Any, Any], user_id: FromPath[uuid.UUID], admin: Admin) -> Template:
        page = await self._user_page(request, admin, user_id)
        # Recorded here only: a refused action shows the page again but is no new view, and changes nothing.
        await admin.record_and_commit(actor_of(request), "user_viewed", user_id)
        return page

    async def _user_page(
        self,
        request: Request[Any, Any, Any],
        admin: AdminService,
        user_id: uuid.UUID,
        *,
        status_code: int = 200,
        **context: Any,
    ) -> Template:
        detail = await admin.user_detail(user_id)
        if detail is None:
            raise NotFoundException("No such user.")
        forms_in_page = {
            "grant": forms.Form(values={"request_key": str(uuid.uuid4())}),
            "ban": forms.Form(),
            "note": forms.Form(),
        }
        forms_in_page.update({key: value for key, value in context.pop("forms", {}).items()})
        return render(
            request,
            "admin/user.html",
            {"detail": detail, "forms": forms_in_page, "notice_code": request.query_params.get("notice"), **context},
            status_code=status_code,
        )

    async def _refused(
        self, request: Request[Any, Any, Any], admin: AdminService, user_id: uuid.UUID, name: str, form: forms.Form
    ) -> Template:
        return await self._user_page(
            request, admin, user_id, status_code=HTTP_422_UNPROCESSABLE_ENTITY, forms={name: form}
        )

    @post("/users/{user_id:uuid}/ban")
    async def ban(self, request: Request[Any, Any, Any], user_id: FromPath[uuid.UUID], admin: Admin) -> Response[Any]:
        return await self._ban_or_unban(request, user_id, admin, banning=True)

    @post("/users/{user_id:uuid}/unban")
    async def unban(self, request: Request[Any, Any, Any], user_id: FromPath[uuid.UUID], admin: Admin) -> Response[Any]:
        return await self._ban_or_unban(request, user_id, admin, banning=False)

    async def _ban_or_unban(
        self, request: Request[Any, Any, Any], user_id: uuid.UUID, admin: AdminService, *, banning: bool
    ) -> Response[Any]:
        form = forms.validate(await forms.read_form(request), REASON_FIELDS)
        if not form.is_valid:
            return await self._refused(request, admin, user_id, "ban", form)
        action = admin.ban if banning else admin.unban
        try:
            await action(actor_of(request), user_id, form.cleaned["reason"])
        except LookupError as exc:
            raise NotFoundException("No such user.") from exc
        except AdminActionRefused as refused:
            await admin.db.rollback()
            form.error("reason", str(refused))
            return await self._user_page(request, admin, user_id, status_code=HTTP_409_CONFLICT, forms={"ban": form})
        return redirect(request, f"/admin/users/{user_id}?notice={'banned' if banning else 'unbanned'}")

    @post("/users/{user_id:uuid}/grant")
    async def grant(self, request: Request[Any, Any, Any], user_id: FromPath[uuid.UUID], admin: Admin) -> Response[Any]:
        form = forms.validate(await forms.read_form(request), GRANT_FIELDS)
        if not form.is_valid:
            return await self._refused(request, admin, user_id, "grant", form)
        try:
            entry = await admin.grant_credits(
                actor_of(request),
                user_id,
                form.cleaned["amount"],
                form.cleaned["reason"],
                form.cleaned["request_key"],
            )
        except LookupError as exc:
            raise NotFoundException("No such user.") from exc
        notice = "granted" if entry.created else "already_granted"
        return redirect(request, f"/admin/users/{user_id}?notice={notice}")

    @post("/users/{user_id:uuid}/notes")
    async def add_note(
        self, request: Request[Any, Any, Any], user_id: FromPath[uuid.UUID], admin: Admin
    ) -> Response[Any]:
        form = forms.validate(await forms.read_form(request), NOTE_FIELDS)
        if not form.is_valid:
            return await self._refused(request, admin, user_id, "note", form)
        try:
            await admin.add_note(actor_of(request), user_id, form.cleaned["note"], form.cleaned["flagged"])
        except LookupError as exc:
            raise NotFoundException("No such user.") from exc
        return redirect(request, f"/admin/users/{user_id}?notice=note_added")

    @post("/notes/{note_id:uuid}/flag")
    async def flag_note(
        self, request: Request[Any, Any, Any], note_id: FromPath[uuid.UUID], admin: Admin
    ) -> Response[Any]:
        return await self._set_flag(request, note_id, admin, flagged=True)

    @post("/notes/{note_id:uuid}/unflag")
    async def unflag_note(
        self, request: Request[Any, Any, Any], note_id: FromPath[uuid.UUID], admin: Admin
    ) -> Response[Any]:
        return await self._set_flag(request, note_id, admin, flagged=False)

    async def _set_flag(
        self, request: Request[Any, Any, Any], note_id: uuid.UUID, admin: AdminService, *, flagged: bool
    ) -> Response[Any]:
        try:
            note = await admin.set_note_flag(actor_of(request), note_id, flagged)
        except LookupError as exc:
            raise NotFoundException("No such note.") from exc
        return redirect(request, f"/admin/users/{note.user_id}?notice={'flagged' if flagged else 'unflagged'}")

    @get("/audit", name="admin:audit")
    async def audit(self, request: Request[Any, Any, Any], admin: Admin) -> Template:
        params = request.query_params
        filters = {
            "action": forms.clean_search(params.get("action"), 64),
            "admin_email": forms.clean_search(params.get("admin"), 254),
            "user_email": forms.clean_search(params.get("user"), 254),
        }
        page = await admin.audit_log(page=forms.clean_page(params.get("page")), **filters)
        return render(
            request,
            "admin/audit.html",
            {"entries": page, "filters": filters, "actions": await admin.audit_actions()},
            fragment="admin/_audit.html",
        )
