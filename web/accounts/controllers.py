"""Sign-up, verification, login, logout, password reset, settings and sessions."""

from __future__ import annotations

import uuid
from typing import Any, TypeAlias

from litestar import Controller, Request, Response, get, post
from litestar.datastructures import Cookie
from litestar.di import NamedDependency, Provide
from litestar.exceptions import NotFoundException
from litestar.params import FromPath, FromQuery
from litestar.response import Template
from litestar.status_codes import (
    HTTP_200_OK,
    HTTP_400_BAD_REQUEST,
    HTTP_403_FORBIDDEN,
    HTTP_422_UNPROCESSABLE_ENTITY,
    HTTP_429_TOO_MANY_REQUESTS,
)
from sqlalchemy.ext.asyncio import AsyncSession

from web import forms
from web.accounts.services import AccountService, Client, EmailTaken, LoginRefused, TokenRefused
from web.htmx import redirect, render, wants_fragment
from web.ratelimit import RateLimited
from web.security import current_user, requires_login, session_cookie_name
from web.settings import Settings

Accounts: TypeAlias = NamedDependency[AccountService]

SIGNUP_FIELDS: dict[str, forms.Cleaner] = {
    "full_name": forms.clean_name,
    "email": forms.clean_email,
    "password": forms.clean_new_password,
}
LOGIN_FIELDS: dict[str, forms.Cleaner] = {"email": forms.clean_email, "password": forms.clean_password}
FORGOT_FIELDS: dict[str, forms.Cleaner] = {"email": forms.clean_email}
RESET_FIELDS: dict[str, forms.Cleaner] = {"password": forms.clean_new_password}
PROFILE_FIELDS: dict[str, forms.Cleaner] = {"full_name": forms.clean_name}
PASSWORD_FIELDS: dict[str, forms.Cleaner] = {
    "current_password": forms.clean_password,
    "new_password": forms.clean_new_password,
}
# Fields whose inline check the browser may ask for, per form.
INLINE_FIELDS: dict[str, dict[str, forms.Cleaner]] = {
    "signup": SIGNUP_FIELDS,
    "login": {"email": forms.clean_email},
    "forgot": FORGOT_FIELDS,
    "reset": RESET_FIELDS,
    "profile": PROFILE_FIELDS,
    "password": {"new_password": forms.clean_new_password},
}

TOKEN_MESSAGES = {
    "invalid": "This link is not valid. Check that you copied all of it.",
    "used": "This link has already been used.",
    "expired": "This link has expired.",
}


def client_of(request: Request[Any, Any, Any]) -> Client:
    return Client(ip=request.client.host if request.client else None, user_agent=request.headers.get("user-agent"))


def safe_next(value: str | None) -> str:
    """Only paths on this site, so that a link cannot send a user elsewhere after login."""
    if value and value.startswith("/") and not value.startswith("//") and "\\" not in value:
        return value
    return "/draws"


def too_many_attempts(
    request: Request[Any, Any, Any], template: str, form: forms.Form, limited: RateLimited
) -> Template:
    return render(request, template, {"form": form, "alert": limited.message}, status_code=HTTP_429_TOO_MANY_REQUESTS)


def invalid_form(request: Request[Any, Any, Any], template: str, form: forms.Form) -> Template:
    return render(request, template, {"form": form}, status_code=HTTP_422_UNPROCESSABLE_ENTITY)


def provide_accounts(db_session: NamedDependency[AsyncSession], request: Request[Any, Any, Any]) -> AccountService:
    return AccountService(db_session, request.app.state.settings)


def session_cookie(settings: Settings, token: FromPath[str]) -> Cookie:
    return Cookie(
        key=session_cookie_name(settings),
        value=token,
        path="/",
        httponly=True,
        secure=settings.secure_cookies,
        samesite="lax",
        max_age=settings.session_absolute_hours * 3600,
    )


def expired_session_cookie(settings: Settings) -> Cookie:
    return Cookie(
        key=session_cookie_name(settings),
        value="",
        path="/",
        httponly=True,
        secure=settings.secure_cookies,
        samesite="lax",
        max_age=0,
    )


class AccountController(Controller):
    dependencies = {"accounts": Provide(provide_accounts, sync_to_thread=False)}

    @post("/forms/validate/{form_name:str}/{field_name:str}", name="forms:validate")
    async def validate_field(
        self, request: Request[Any, Any, Any], form_name: FromPath[str], field_name: FromPath[str]
    ) -> Template:
        """Inline validation: the message for one field, or nothing."""
        cleaners = INLINE_FIELDS.get(form_name, {})
        if field_name not in cleaners:
            raise NotFoundException()
        values = await forms.read_form(request)
        form = forms.validate(values, {field_name: cleaners[field_name]})
        return Template(
            template_name="components/_field_error.html",
            context={"name": field_name, "message": form.errors.get(field_name)},
        )

    # Sign-up

    @get("/signup", name="accounts:signup")
    async def signup_page(self, request: Request[Any, Any, Any]) -> Response[Any]:
        if current_user(request):
            return redirect(request, "/draws")
        return render(request, "accounts/signup.html", {"form": forms.Form()})

    @post("/signup")
    async def signup(self, request: Request[Any, Any, Any], accounts: Accounts) -> Response[Any]:
        form = forms.validate(await forms.read_form(request), SIGNUP_FIELDS)
        form.values["password"] = ""
        if form.is_valid:
            try:
                await accounts.sign_up(
                    form.cleaned["email"],
                    form.cleaned["password"],
                    form.cleaned["full_name"],
                    client_of(request),
                )
            except EmailTaken:
                form.error("email", "An account with this email already exists. Log in or reset your password.")
            except RateLimited as limited:
                return too_many_attempts(request, "accounts/signup.html", form, limited)
            else:
                return redirect(request, "/signup/sent")
        return invalid_form(request, "accounts/signup.html", form)

    @get("/signup/sent")
    async def signup_sent(self, request: Request[Any, Any, Any]) -> Template:
        return render(request, "accounts/signup_sent.html")

    # Email verification: the link opens a page whose button confirms, so mail scanners that
    # follow links do not use the token up.

    @get("/verify-email/{token:str}", name="accounts:verify")
    async def verify_page(self, request: Request[Any, Any, Any], token: FromPath[str]) -> Template:
        return render(request, "accounts/verify.html", {"token": token})

    @post("/verify-email/{token:str}")
    async def verify(self, request: Request[Any, Any, Any], token: FromPath[str], accounts: Accounts) -> Response[Any]:
        try:
            await accounts.verify_email(token, client_of(request))
        except TokenRefused as refused:
            return render(
                request,
                "accounts/verify.html",
                {"token": token, "refused": TOKEN_MESSAGES[refused.reason], "reason": refused.reason},
                status_code=HTTP_400_BAD_REQUEST,
            )
        return redirect(request, "/login?notice=verified")

    @post("/verify-email/resend")
    async def resend_verification(self, request: Request[Any, Any, Any], accounts: Accounts) -> Response[Any]:
        form = forms.validate(await forms.read_form(request), FORGOT_FIELDS)
        if not form.is_valid:
            return invalid_form(request, "accounts/login.html", form)
        try:
            await accounts.resend_verification(form.cleaned["email"], client_of(request))
        except RateLimited as limited:
            return too_many_attempts(request, "accounts/login.html", form, limited)
        return redirect(request, "/signup/sent")

    # Login and logout

    @get("/login", name="accounts:login")
    async def login_page(self, request: Request[Any, Any, Any], notice: FromQuery[str | None] = None) -> Response[Any]:
        if current_user(request):
            return redirect(request, "/draws")
        return render(
            request,
            "accounts/login.html",
            {
                "form": forms.Form(),
                "notice_code": notice,
                "next": safe_next(request.query_params.get("next")),
            },
        )

    @post("/login")
    async def login(self, request: Request[Any, Any, Any], accounts: Accounts) -> Response[Any]:
        values = await forms.read_form(request)
        next_url = safe_next(values.get("next"))
        form = forms.validate(values, LOGIN_FIELDS)
        form.values["password"] = ""
        context: dict[str, Any] = {"form": form, "next": next_url}
        if not form.is_valid:
            return render(request, "accounts/login.html", context, status_code=HTTP_422_UNPROCESSABLE_ENTITY)
        client = client_of(request)
        try:
            user = await accounts.authenticate(form.cleaned["email"], form.cleaned["password"], client)
        except RateLimited as limited:
            context["alert"] = limited.message
            return render(request, "accounts/login.html", context, status_code=HTTP_429_TOO_MANY_REQUESTS)
        except LoginRefused as refused:
            if refused.reason == "unverified":
                context["unverified"] = form.cleaned["email"]
                status = HTTP_403_FORBIDDEN
            elif refused.reason == "banned":
                context["alert"] = "This account has been suspended. Contact support if you think this is a mistake."
                status = HTTP_403_FORBIDDEN
            else:
                form.error("password", "Incorrect email or password.")
                status = HTTP_400_BAD_REQUEST
            return render(request, "accounts/login.html", context, status_code=status)
        settings = request.app.state.settings
        token = await accounts.start_session(user, client, replacing=request.state.get("session_id"))
        return redirect(request, next_url, cookies=[session_cookie(settings, token)])

    @post("/logout", name="accounts:logout")
    async def logout(self, request: Request[Any, Any, Any], accounts: Accounts) -> Response[Any]:
        session_id = request.state.get("session_id")
        if session_id is not None:
            await accounts.end_session(session_id)
        return redirect(
            request, "/login?notice=logged_out", cookies=[expired_session_cookie(request.app.state.settings)]
        )

    # Password reset

    @get("/forgot-password", name="accounts:forgot")
    async def forgot_page(self, request: Request[Any, Any, Any]) -> Template:
        return render(request, "accounts/forgot.html", {"form": forms.Form()})

    @post("/forgot-password")
    async def forgot(self, request: Request[Any, Any, Any], accounts: Accounts) -> Response[Any]:
        form = forms.validate(await forms.read_form(request), FORGOT_FIELDS)
        if not form.is_valid:
            return invalid_form(request, "accounts/forgot.html", form)
        try:
            await accounts.request_password_reset(form.cleaned["email"], client_of(request))
        except RateLimited as limited:
            return too_many_attempts(request, "accounts/forgot.html", form, limited)
        return render(request, "accounts/forgot.html", {"form": form, "sent": True})

    @get("/reset-password/{token:str}", name="accounts:reset")
    async def reset_page(self, request: Request[Any, Any, Any], token: FromPath[str], accounts: Accounts) -> Template:
        try:
            await accounts.check_reset_token(token)
        except TokenRefused as refused:
            return render(
                request,
                "accounts/reset.html",
                {"refused": TOKEN_MESSAGES[refused.reason], "token": token},
                status_code=HTTP_400_BAD_REQUEST,
            )
        return render(request, "accounts/reset.html", {"form": forms.Form(), "token": token})

    @post("/reset-password/{token:str}")
    async def reset(self, request: Request[Any, Any, Any], token: FromPath[str], accounts: Accounts) -> Response[Any]:
        form = forms.validate(await forms.read_form(request), RESET_FIELDS)
        form.values["password"] = ""
        if not form.is_valid:
            return render(
                request,
                "accounts/reset.html",
                {"form": form, "token": token},
                status_code=HTTP_422_UNPROCESSABLE_ENTITY,
            )
        try:
            await accounts.reset_password(token, form.cleaned["password"], client_of(request))
        except TokenRefused as refused:
            return render(
                request,
                "accounts/reset.html",
                {"refused": TOKEN_MESSAGES[refused.reason], "token": token},
                status_code=HTTP_400_BAD_REQUEST,
            )
        return redirect(
            request,
            "/login?notice=password_reset",
            cookies=[expired_session_cookie(request.app.state.settings)],
        )


class SettingsController(Controller):
    path = "/settings"
    guards = [requires_login]
    dependencies = {"accounts": Provide(provide_accounts, sync_to_thread=False)}

    @get("/", name="accounts:settings")
    async def settings_page(self, request: Request[Any, Any, Any], notice: FromQuery[str | None] = None) -> Template:
        user = request.state.user
        return render(
            request,
            "accounts/settings.html",
            {
                "profile": forms.Form(values={"full_name": user.full_name or ""}),
                "password": forms.Form(),
                "notice_code": notice,
            },
        )

    @post("/profile")
    async def update_profile(self, request: Request[Any, Any, Any], accounts: Accounts) -> Response[Any]:
        form = forms.validate(await forms.read_form(request), PROFILE_FIELDS)
        if not form.is_valid:
            return render(
                request,
                "accounts/settings.html",
                {"profile": form, "password": forms.Form()},
                status_code=HTTP_422_UNPROCESSABLE_ENTITY,
            )
        await accounts.update_profile(request.state.user, form.cleaned["full_name"])
        return redirect(request, "/settings?notice=profile_saved")

    @post("/password")
    async def change_password(self, request: Request[Any, Any, Any], accounts: Accounts) -> Response[Any]:
        form = forms.validate(await forms.read_form(request), PASSWORD_FIELDS)
        form.values = {}
        user = request.state.user
        context = {"profile": forms.Form(values={"full_name": user.full_name or ""}), "password": form}
        if form.is_valid:
            changed = await accounts.change_password(
                user,
                form.cleaned["current_password"],
                form.cleaned["new_password"],
                request.state.session_id,
                client_of(request),
            )
            if changed:
                return redirect(request, "/settings?notice=password_changed")
            form.error("current_password", "This is not your current password.")
            return render(request, "accounts/settings.html", context, status_code=HTTP_400_BAD_REQUEST)
        return render(request, "accounts/settings.html", context, status_code=HTTP_422_UNPROCESSABLE_ENTITY)

    @get("/sessions", name="accounts:sessions")
    async def sessions_page(
        self, request: Request[Any, Any, Any], accounts: Accounts, notice: FromQuery[str | None] = None
    ) -> Template:
        sessions = await accounts.sessions_of(request.state.user.id)
        return render(
            request,
            "accounts/sessions.html",
            {
                "sessions": sessions,
                "current_id": request.state.session_id,
                "notice": "Session revoked." if notice == "revoked" else None,
            },
            fragment="accounts/_sessions.html",
        )

    @post("/sessions/{session_id:uuid}/revoke")
    async def revoke_session(
        self, request: Request[Any, Any, Any], session_id: FromPath[uuid.UUID], accounts: Accounts
    ) -> Response[Any]:
        user = request.state.user
        if not await accounts.revoke_session(user.id, session_id, client_of(request)):
            raise NotFoundException("No such session.")
        if session_id == request.state.session_id:
            return redirect(
                request,
                "/login?notice=logged_out",
                cookies=[expired_session_cookie(request.app.state.settings)],
            )
        if not wants_fragment(request):
            return redirect(request, "/settings/sessions?notice=revoked")
        sessions = await accounts.sessions_of(user.id)
        return render(
            request,
            "accounts/sessions.html",
            {"sessions": sessions, "current_id": request.state.session_id, "notice": "Session revoked."},
            fragment="accounts/_sessions.html",
            status_code=HTTP_200_OK,
        )
