"""/billing for creators, /admin/billing for administrators, and the Stripe and App Store webhooks."""

from __future__ import annotations

import json
import logging
import uuid
from typing import Any

import stripe
from litestar import Controller, Request, Response, get, post
from litestar.di import NamedDependency
from litestar.exceptions import NotFoundException
from litestar.response import Template
from litestar.status_codes import (
    HTTP_400_BAD_REQUEST,
    HTTP_404_NOT_FOUND,
    HTTP_409_CONFLICT,
    HTTP_422_UNPROCESSABLE_ENTITY,
    HTTP_429_TOO_MANY_REQUESTS,
    HTTP_500_INTERNAL_SERVER_ERROR,
    HTTP_502_BAD_GATEWAY,
    HTTP_503_SERVICE_UNAVAILABLE,
)
from sqlalchemy.ext.asyncio import AsyncSession

from web import forms, ratelimit
from web.billing.apple import AppleNotConfigured, AppleNotificationRefused, NotificationFailed, receive_notification
from web.billing.events import EventFailed, receive_event
from web.billing.models import PAYMENT_STATUSES
from web.billing.services import BillingRefused, BillingService
from web.billing.stripe_api import PaymentsUnavailable, WebhookSignatureRefused, verify_webhook
from web.credits.services import CreditsService
from web.htmx import redirect, redirect_away, render, wants_fragment
from web.mail import send_mail
from web.security import requires_admin, requires_login
from web.settings import Settings

log = logging.getLogger(__name__)

ENTERPRISE_PER_USER = ratelimit.Limit("enterprise-contact", 3, 60 * 60)
PAYMENTS_DOWN = "Payments are not available right now. Nothing was charged; please try again in a few minutes."


def clean_price_id(value: str) -> str:
    value = value.strip()
    if not value:
        raise forms.FieldError("Choose a pack or a plan.")
    if len(value) > 255 or not value.isascii() or not value.replace("_", "").isalnum():
        raise forms.FieldError("This offer does not exist. Reload the page to see the current ones.")
    return value


def clean_request_key(value: str) -> str:
    try:
        return str(uuid.UUID(value))
    except ValueError as exc:
        raise forms.FieldError("This form has expired. Reload the page and try again.") from exc


CHECKOUT_FIELDS: dict[str, forms.Cleaner] = {"price_id": clean_price_id, "request_key": clean_request_key}
ENTERPRISE_FIELDS: dict[str, forms.Cleaner] = {
    "name": forms.clean_required_text("Your name", 120),
    "email": forms.clean_email,
    "company": forms.clean_required_text("Your company", 200),
    "message": forms.clean_required_text("A message", 2000),
}


class BillingController(Controller):
    path = "/billing"
    guards = [requires_login]

    async def _page(
        self,
        request: Request[Any, Any, Any],
        db: AsyncSession,
        *,
        status_code: int = 200,
        alert: str | None = None,
        enterprise: forms.Form | None = None,
    ) -> Template:
        settings: Settings = request.app.state.settings
        user = request.state.user
        billing = BillingService(db, settings)
        payments = await billing.payments(user.id, forms.clean_page(request.query_params.get("page")))
        return render(
            request,
            "billing/index.html",
            {
                "catalogue": await billing.catalogue(),
                "subscription": await billing.current_subscription(user.id),
                "payments": payments,
                "request_key": str(uuid.uuid4()),
                "enterprise": enterprise or forms.Form(values={"email": user.email, "name": user.full_name or ""}),
                "alert": alert,
                "notice_code": request.query_params.get("notice"),
                "payments_enabled": settings.payments_enabled,
            },
            fragment="billing/_payments.html",
            status_code=status_code,
        )

    @get("/", name="billing:index")
    async def index(self, request: Request[Any, Any, Any], db_session: NamedDependency[AsyncSession]) -> Template:
        return await self._page(request, db_session)

    @post("/checkout", name="billing:checkout")
    async def checkout(self, request: Request[Any, Any, Any], db_session: NamedDependency[AsyncSession]) -> Any:
        form = forms.validate(await forms.read_form(request), CHECKOUT_FIELDS)
        if not form.is_valid:
            message = form.errors.get("price_id") or form.errors.get("request_key")
            return await self._page(request, db_session, status_code=HTTP_422_UNPROCESSABLE_ENTITY, alert=message)
        user = request.state.user
        try:
            url = await BillingService(db_session, request.app.state.settings).start_checkout(
                user.id, user.email, form.cleaned["price_id"], form.cleaned["request_key"]
            )
        except BillingRefused as refused:
            await db_session.rollback()
            status = HTTP_409_CONFLICT if "already" in str(refused) else HTTP_422_UNPROCESSABLE_ENTITY
            return await self._page(request, db_session, status_code=status, alert=str(refused))
        except PaymentsUnavailable:
            return await self._page(request, db_session, status_code=HTTP_503_SERVICE_UNAVAILABLE, alert=PAYMENTS_DOWN)
        except stripe.StripeError as failure:
            log.warning("checkout refused by stripe: %s", failure.user_message or failure)
            await db_session.rollback()
            return await self._page(request, db_session, status_code=HTTP_502_BAD_GATEWAY, alert=PAYMENTS_DOWN)
        return redirect_away(request, url)

    @get("/return", name="billing:return")
    async def checkout_return(
        self, request: Request[Any, Any, Any], db_session: NamedDependency[AsyncSession]
    ) -> Template:
        """Back from Stripe: show "confirming…" until the webhook has landed; the redirect alone grants nothing."""
        session_id = forms.clean_search(request.query_params.get("session_id"), 255)
        billing = BillingService(db_session, request.app.state.settings)
        try:
            mine = bool(session_id) and await billing.checkout_belongs_to(request.state.user.id, session_id)
        except (PaymentsUnavailable, stripe.StripeError):
            mine = False
        if not mine:
            raise NotFoundException("No such checkout.")
        return await self._return_status(request, db_session, session_id, "billing/return.html")

    @get("/return/status", name="billing:return-status")
    async def checkout_status(
        self, request: Request[Any, Any, Any], db_session: NamedDependency[AsyncSession]
    ) -> Template:
        session_id = forms.clean_search(request.query_params.get("session_id"), 255)
        if not session_id:
            raise NotFoundException("No such checkout.")
        return await self._return_status(request, db_session, session_id, "billing/_return_status.html")

    async def _return_status(
        self, request: Request[Any, Any, Any], db: AsyncSession, session_id: str, template: str
    ) -> Template:
        user_id = request.state.user.id
        payment = await BillingService(db, request.app.state.settings).confirmed_payment(user_id, session_id)
        balance = await CreditsService(db).balance(user_id)
        return render(
            request,
            template,
            {"session_id": session_id, "payment": payment, "balance": balance, "refresh_nav": wants_fragment(request)},
            fragment="billing/_return_status.html",
        )

    @post("/portal", name="billing:portal")
    async def portal(self, request: Request[Any, Any, Any], db_session: NamedDependency[AsyncSession]) -> Any:
        try:
            url = await BillingService(db_session, request.app.state.settings).portal_url(request.state.user.id)
        except BillingRefused as refused:
            return await self._page(request, db_session, status_code=HTTP_409_CONFLICT, alert=str(refused))
        except (PaymentsUnavailable, stripe.StripeError):
            return await self._page(request, db_session, status_code=HTTP_503_SERVICE_UNAVAILABLE, alert=PAYMENTS_DOWN)
        return redirect_away(request, url)

    @post("/enterprise", name="billing:enterprise")
    async def enterprise(self, request: Request[Any, Any, Any], db_session: NamedDependency[AsyncSession]) -> Any:
        form = forms.validate(await forms.read_form(request), ENTERPRISE_FIELDS)
        if not form.is_valid:
            return await self._page(request, db_session, status_code=HTTP_422_UNPROCESSABLE_ENTITY, enterprise=form)
        settings: Settings = request.app.state.settings
        user = request.state.user
        try:
            if settings.rate_limits_enabled:
                await ratelimit.hit(db_session, ENTERPRISE_PER_USER, str(user.id))
        except ratelimit.RateLimited as limited:
            await db_session.commit()
            return await self._page(
                request, db_session, status_code=HTTP_429_TOO_MANY_REQUESTS, alert=limited.message, enterprise=form
            )
        cleaned = form.cleaned
        await send_mail(
            db_session,
            settings,
            to=settings.sales_email,
            subject=f"Enterprise enquiry from {cleaned['company']}"[:200],
            body=(
                f"Name: {cleaned['name']}\nEmail: {cleaned['email']}\nCompany: {cleaned['company']}\n"
                f"Cleack account: {user.email} ({user.id})\n\n{cleaned['message']}\n"
            ),
        )
        await db_session.commit()
        return redirect(request, "/billing?notice=enterprise_sent")


class AdminBillingController(Controller):
    path = "/admin/billing"
    guards = [requires_admin]
    include_in_schema = False

    @get("/", name="admin:billing")
    async def payments(self, request: Request[Any, Any, Any], db_session: NamedDependency[AsyncSession]) -> Template:
        status = request.query_params.get("status") or ""
        status = status if status in PAYMENT_STATUSES else ""
        page = await BillingService(db_session, request.app.state.settings).all_payments(
            status, forms.clean_page(request.query_params.get("page"))
        )
        return render(
            request,
            "billing/admin.html",
            {"payments": page, "status": status, "statuses": PAYMENT_STATUSES},
            fragment="billing/_admin_payments.html",
        )


def _webhook_answer(body: dict[str, Any], status_code: int = 200) -> Response[Any]:
    return Response(body, status_code=status_code, headers={"cache-control": "no-store"})


@post("/webhooks/stripe", name="webhooks:stripe", opt={"skip_session": True}, include_in_schema=False)
async def stripe_webhook(request: Request[Any, Any, Any]) -> Response[Any]:
    settings: Settings = request.app.state.settings
    payload = await request.body()
    try:
        event = verify_webhook(payload, request.headers.get("stripe-signature"), settings.stripe_webhook_secrets)
    except WebhookSignatureRefused as refused:
        return _webhook_answer({"error": "signature refused", "detail": str(refused)}, HTTP_400_BAD_REQUEST)
    try:
        outcome = await receive_event(request.app.state.db_engine_handle, settings, event)
    except EventFailed:
        return _webhook_answer({"error": "processing failed; retry later"}, HTTP_500_INTERNAL_SERVER_ERROR)
    return _webhook_answer({"received": True, "status": outcome.status, "duplicate": outcome.already_done})


@post("/webhooks/apple", name="webhooks:apple", opt={"skip_session": True}, include_in_schema=False)
async def apple_webhook(request: Request[Any, Any, Any]) -> Response[Any]:
    settings: Settings = request.app.state.settings
    try:
        body = json.loads(await request.body())
    except ValueError:
        body = None
    signed = body.get("signedPayload") if isinstance(body, dict) else None
    if not isinstance(signed, str) or not signed:
        return _webhook_answer({"error": "expected a JSON body with a signedPayload"}, HTTP_400_BAD_REQUEST)
    try:
        status = await receive_notification(request.app.state.db_engine_handle, settings, signed)
    except AppleNotConfigured:
        return _webhook_answer({"error": "App Store notifications are not configured"}, HTTP_404_NOT_FOUND)
    except AppleNotificationRefused as refused:
        return _webhook_answer({"error": "signature refused", "detail": str(refused)}, HTTP_400_BAD_REQUEST)
    except NotificationFailed:
        return _webhook_answer({"error": "processing failed; retry later"}, HTTP_500_INTERNAL_SERVER_ERROR)
    return _webhook_answer({"received": True, "status": status})
