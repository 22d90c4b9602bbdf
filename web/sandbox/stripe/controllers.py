"""The payments sandbox under /sandbox/stripe: the Stripe API calls the app makes, the hosted checkout page and
the customer portal. Refused (404) unless the payments sandbox is on."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urlsplit

import sqlalchemy as sa
from litestar import Controller, Request, Response, delete, get, post
from litestar.connection import ASGIConnection
from litestar.di import NamedDependency
from litestar.exceptions import NotFoundException
from litestar.handlers import BaseRouteHandler
from litestar.params import FromPath
from litestar.response import Redirect, Template
from litestar.status_codes import HTTP_303_SEE_OTHER
from sqlalchemy.ext.asyncio import AsyncSession

from web.db import session_factory
from web.forms import read_form
from web.sandbox.stripe.delivery import deliver_soon
from web.sandbox.stripe.models import SandboxStripeRequest
from web.sandbox.stripe.state import StripeSandbox, now
from web.sandbox.stripe.wire import (
    StripeError,
    as_bool,
    as_int,
    as_list,
    as_metadata,
    decode_form,
    expansions,
    invalid,
    missing,
    new_id,
)
from web.settings import Settings

Work = Callable[[StripeSandbox, dict[str, Any]], Awaitable[dict[str, Any]]]
API = {"skip_session": True, "exclude_from_csrf": True}
CURRENCIES = ("usd", "eur", "gbp")
# Objects the app only reads, by their path under /v1.
READ_ONLY_KINDS = {"invoices": "invoice", "charges": "charge", "payment_intents": "payment_intent"}


async def requires_payments_sandbox(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    if not connection.app.state.settings.payments_sandbox_enabled:
        raise NotFoundException()


def _authenticated(request: Request[Any, Any, Any], settings: Settings) -> None:
    header = request.headers.get("authorization", "")
    scheme, _, credentials = header.partition(" ")
    key = ""
    if scheme.lower() == "bearer":
        key = credentials.strip()
    elif scheme.lower() == "basic":
        try:
            key = base64.b64decode(credentials, validate=True).decode().partition(":")[0]
        except ValueError:
            key = ""
    if not key:
        raise StripeError(
            401,
            "You did not provide an API key. You need to provide your API key in the Authorization header, "
            "using Bearer auth (e.g. 'Authorization: Bearer YOUR_SECRET_KEY').",
        )
    if not hmac.compare_digest(key.encode(), settings.stripe_api_key.encode()):
        raise StripeError(401, f"Invalid API Key provided: {key[:8]}{'*' * 8}{key[-4:]}", code="api_key_invalid")


async def _handle(request: Request[Any, Any, Any], db: AsyncSession, work: Work) -> Response[Any]:
    """Authenticate, honour the Idempotency-Key, run `work`, commit, then send the events it made."""
    settings: Settings = request.app.state.settings
    body = (await request.body()).decode("utf-8", "replace")
    params = decode_form(body if request.method == "POST" else request.url.query or "")
    key = request.headers.get("idempotency-key") if request.method == "POST" else None
    sandbox = StripeSandbox(db, settings)
    try:
        _authenticated(request, settings)
        if key is not None:
            if len(key) > 255:
                raise invalid("Idempotency-Key", "Idempotency keys are at most 255 characters long.")
            fingerprint = hashlib.sha256(f"{request.method} {request.url.path}\n{body}".encode()).hexdigest()
            await db.execute(sa.select(sa.func.pg_advisory_xact_lock(sa.func.hashtext(f"stripe-idem:{key}"))))
            earlier = await db.get(SandboxStripeRequest, key)
            if earlier is not None:
                first_fingerprint, status_code, response = earlier.fingerprint, earlier.status_code, earlier.response
                await db.rollback()
                if first_fingerprint != fingerprint:
                    raise StripeError(
                        400,
                        "Keys for idempotent requests can only be used with the same parameters they were first "
                        "used with. Try using a key other than '" + key + "' if you meant to execute a different "
                        "request.",
                        type_="idempotency_error",
                        code="idempotency_key_in_use",
                    )
                return Response(response, status_code=status_code, headers={"idempotent-replayed": "true"})
        await sandbox.ensure_catalogue()
        result = await work(sandbox, params)
        if key is not None:
            db.add(SandboxStripeRequest(idempotency_key=key, fingerprint=fingerprint, status_code=200, response=result))
        await db.commit()
    except StripeError as error:
        await db.rollback()
        return error.response()
    deliver_soon(session_factory(request.app.state.db_engine_handle), settings, sandbox.deliveries)
    return Response(result, status_code=200, headers={"request-id": new_id("req")})


def _text(params: dict[str, Any], name: str, *, required: bool = False, max_length: int = 5000) -> str | None:
    value = params.get(name)
    if value is None or value == "":
        if required:
            raise missing(name)
        return None
    if not isinstance(value, str) or len(value) > max_length:
        raise invalid(name, f"Invalid string: {name}")
    return value


def _url(params: dict[str, Any], name: str, *, required: bool = True) -> str | None:
    value = _text(params, name, required=required, max_length=5000)
    if value is not None and urlsplit(value).scheme not in ("http", "https"):
        raise invalid(name, "Not a valid URL")
    return value


def _with_line_items(session: dict[str, Any], expand: set[str]) -> dict[str, Any]:
    shown = StripeSandbox.public(session)
    if "line_items" in expand:
        shown["line_items"] = session["line_items"]
    return shown


class StripeSandboxApi(Controller):
    """Stripe's API, as far as the app uses it, plus test helpers."""

    path = "/sandbox/stripe/v1"
    guards = [requires_payments_sandbox]
    opt = API
    include_in_schema = False

    # Products and prices

    @get("/products")
    async def list_products(self, request: Request[Any, Any, Any], db_session: NamedDependency[AsyncSession]) -> Any:
        async def work(sandbox: StripeSandbox, params: dict[str, Any]) -> dict[str, Any]:
            filters = {"active": params["active"] == "true"} if params.get("active") in ("true", "false") else {}
            rows = await sandbox.list("product", {}, as_int(params, "limit", default=10, minimum=1) or 10)
            if filters:
                rows = [row for row in rows if row["active"] == filters["active"]]
            return as_list(rows, "/v1/products")

        return await _handle(request, db_session, work)

    @get("/products/{object_id:str}")
    async def get_product(
        self, request: Request[Any, Any, Any], object_id: FromPath[str], db_session: NamedDependency[AsyncSession]
    ) -> Any:
        return await _handle(request, db_session, lambda sandbox, params: sandbox.get("product", object_id))

    @post("/products")
    async def create_product(self, request: Request[Any, Any, Any], db_session: NamedDependency[AsyncSession]) -> Any:
        async def work(sandbox: StripeSandbox, params: dict[str, Any]) -> dict[str, Any]:
            product = sandbox.product_object(
                _text(params, "id", max_length=60) or new_id("prod"),
                _text(params, "name", required=True, max_length=250) or "",
                _text(params, "description"),
                as_metadata(params),
                now(),
            )
            if await sandbox.find(product["id"]) is not None:
                raise StripeError(400, f"Product already exists: {product['id']}", code="resource_already_exists")
            await sandbox.save(product)
            await sandbox.emit("product.created", product)
            return product

        return await _handle(request, db_session, work)

    @post("/products/{object_id:str}")
    async def update_product(
        self, request: Request[Any, Any, Any], object_id: FromPath[str], db_session: NamedDependency[AsyncSession]
    ) -> Any:
        async def work(sandbox: StripeSandbox, params: dict[str, Any]) -> dict[str, Any]:
            product = await sandbox.lock("product", object_id)
            previous = {key: product[key] for key in ("name", "description", "active", "metadata")}
            product["name"] = _text(params, "name", max_length=250) or product["name"]
            product["description"] = _text(params, "description") or product["description"]
            active = as_bool(params, "active")
            product["active"] = product["active"] if active is None else active
            product["metadata"] = {**product["metadata"], **as_metadata(params)}
            product["updated"] = max(now(), product["updated"] + 1)
            await sandbox.save(product)
            await sandbox.emit("product.updated", product, previous)
            return product

        return await _handle(request, db_session, work)

    @delete("/products/{object_id:str}", status_code=200)
    async def delete_product(
        self, request: Request[Any, Any, Any], object_id: FromPath[str], db_session: NamedDependency[AsyncSession]
    ) -> Any:
        async def work(sandbox: StripeSandbox, params: dict[str, Any]) -> dict[str, Any]:
            product = await sandbox.lock("product", object_id)
            product.update(deleted=True, active=False, updated=max(now(), product["updated"] + 1))
            await sandbox.save(product)
            await sandbox.emit("product.deleted", product)
            return {"id": object_id, "object": "product", "deleted": True}

        return await _handle(request, db_session, work)

    @get("/prices")
    async def list_prices(self, request: Request[Any, Any, Any], db_session: NamedDependency[AsyncSession]) -> Any:
        async def work(sandbox: StripeSandbox, params: dict[str, Any]) -> dict[str, Any]:
            filters = {"product": params["product"]} if isinstance(params.get("product"), str) else {}
            rows = await sandbox.list("price", filters, as_int(params, "limit", default=10, minimum=1) or 10)
            if params.get("active") in ("true", "false"):
                rows = [row for row in rows if row["active"] == (params["active"] == "true")]
            return as_list(rows, "/v1/prices")

        return await _handle(request, db_session, work)

    @get("/prices/{object_id:str}")
    async def get_price(
        self, request: Request[Any, Any, Any], object_id: FromPath[str], db_session: NamedDependency[AsyncSession]
    ) -> Any:
        return await _handle(request, db_session, lambda sandbox, params: sandbox.get("price", object_id))

    @post("/prices")
    async def create_price(self, request: Request[Any, Any, Any], db_session: NamedDependency[AsyncSession]) -> Any:
        async def work(sandbox: StripeSandbox, params: dict[str, Any]) -> dict[str, Any]:
            product_id = _text(params, "product", required=True, max_length=60) or ""
            await sandbox.get("product", product_id, param="product", status_code=400)
            currency = (_text(params, "currency", required=True, max_length=3) or "").lower()
            if currency not in CURRENCIES:
                raise invalid("currency", f"Invalid currency: {currency}.")
            unit_amount = as_int(params, "unit_amount")
            if unit_amount is None:
                raise missing("unit_amount")
            recurring = params.get("recurring")
            interval = recurring.get("interval") if isinstance(recurring, dict) else None
            if recurring is not None and interval not in ("day", "week", "month", "year"):
                raise invalid("recurring[interval]", "Invalid recurring[interval]: must be day, week, month or year.")
            price = sandbox.price_object(new_id("price"), product_id, unit_amount, currency, interval, now())
            price["metadata"] = as_metadata(params)
            await sandbox.save(price)
            await sandbox.emit("price.created", price)
            return price

        return await _handle(request, db_session, work)

    @post("/prices/{object_id:str}")
    async def update_price(
        self, request: Request[Any, Any, Any], object_id: FromPath[str], db_session: NamedDependency[AsyncSession]
    ) -> Any:
        async def work(sandbox: StripeSandbox, params: dict[str, Any]) -> dict[str, Any]:
            price = await sandbox.lock("price", object_id)
            previous = {"active": price["active"], "metadata": price["metadata"]}
            active = as_bool(params, "active")
            price["active"] = price["active"] if active is None else active
            price["metadata"] = {**price["metadata"], **as_metadata(params)}
            await sandbox.save(price)
            await sandbox.emit("price.updated", price, previous)
            return price

        return await _handle(request, db_session, work)

    # Customers

    @post("/customers")
    async def create_customer(self, request: Request[Any, Any, Any], db_session: NamedDependency[AsyncSession]) -> Any:
        async def work(sandbox: StripeSandbox, params: dict[str, Any]) -> dict[str, Any]:
            customer = {
                "id": new_id("cus"),
                "object": "customer",
                "created": now(),
                "description": _text(params, "description"),
                "email": _text(params, "email", max_length=512),
                "livemode": False,
                "metadata": as_metadata(params),
                "name": _text(params, "name", max_length=256),
            }
            await sandbox.save(customer)
            await sandbox.emit("customer.created", customer)
            return customer

        return await _handle(request, db_session, work)

    @get("/customers/{object_id:str}")
    async def get_customer(
        self, request: Request[Any, Any, Any], object_id: FromPath[str], db_session: NamedDependency[AsyncSession]
    ) -> Any:
        return await _handle(request, db_session, lambda sandbox, params: sandbox.get("customer", object_id))

    # Checkout and the customer portal

    @post("/checkout/sessions")
    async def create_checkout_session(
        self, request: Request[Any, Any, Any], db_session: NamedDependency[AsyncSession]
    ) -> Any:
        async def work(sandbox: StripeSandbox, params: dict[str, Any]) -> dict[str, Any]:
            mode = _text(params, "mode", required=True)
            if mode not in ("payment", "subscription"):
                raise invalid("mode", f"Invalid mode: must be one of payment, setup, or subscription (got {mode}).")
            success_url, cancel_url = _url(params, "success_url"), _url(params, "cancel_url", required=False)
            customer_id = _text(params, "customer", max_length=60)
            if customer_id is None:
                raise missing("customer")
            await sandbox.get("customer", customer_id, param="customer", status_code=400)
            items = params.get("line_items")
            if not isinstance(items, list) or not items:
                raise missing("line_items")
            if len(items) != 1 or not isinstance(items[0], dict):
                raise invalid("line_items", "The sandbox takes exactly one line item.")
            price_id = _text(items[0], "price", max_length=60)
            if price_id is None:
                raise missing("line_items[0][price]")
            price = await sandbox.get("price", price_id, param="line_items[0][price]", status_code=400)
            if not price["active"]:
                raise invalid("line_items[0][price]", f"The price specified is inactive: {price_id}.")
            quantity = as_int(items[0], "quantity", default=1, minimum=1) or 1
            if (price["type"] == "recurring") != (mode == "subscription"):
                raise invalid(
                    "line_items[0][price]",
                    "You must provide at least one recurring price in `subscription` mode when using prices."
                    if mode == "subscription"
                    else "You specified `payment` mode but passed a recurring price.",
                )
            product = await sandbox.get("product", price["product"])
            session_id = new_id("cs_test")
            amount = price["unit_amount"] * quantity
            created = now()
            session = {
                "id": session_id,
                "object": "checkout.session",
                "amount_subtotal": amount,
                "amount_total": amount,
                "cancel_url": cancel_url,
                "client_reference_id": _text(params, "client_reference_id", max_length=200),
                "created": created,
                "currency": price["currency"],
                "customer": customer_id,
                "expires_at": created + 24 * 3600,
                "invoice": None,
                "livemode": False,
                "metadata": as_metadata(params),
                "mode": mode,
                "payment_intent": None,
                "payment_status": "unpaid",
                "status": "open",
                "subscription": None,
                "success_url": success_url,
                "url": f"{request.app.state.settings.base_url}/sandbox/stripe/checkout/{session_id}",
                "line_items": as_list(
                    [
                        {
                            "id": new_id("li"),
                            "object": "item",
                            "amount_subtotal": amount,
                            "amount_total": amount,
                            "currency": price["currency"],
                            "description": product["name"],
                            "price": price,
                            "quantity": quantity,
                        }
                    ],
                    f"/v1/checkout/sessions/{session_id}/line_items",
                ),
                "subscription_data": {"metadata": as_metadata(params.get("subscription_data") or {})},
            }
            await sandbox.save(session)
            return StripeSandbox.public(session)

        return await _handle(request, db_session, work)

    @get("/checkout/sessions/{object_id:str}")
    async def get_checkout_session(
        self, request: Request[Any, Any, Any], object_id: FromPath[str], db_session: NamedDependency[AsyncSession]
    ) -> Any:
        async def work(sandbox: StripeSandbox, params: dict[str, Any]) -> dict[str, Any]:
            return _with_line_items(await sandbox.get("checkout.session", object_id), expansions(params))

        return await _handle(request, db_session, work)

    @post("/billing_portal/sessions")
    async def create_portal_session(
        self, request: Request[Any, Any, Any], db_session: NamedDependency[AsyncSession]
    ) -> Any:
        async def work(sandbox: StripeSandbox, params: dict[str, Any]) -> dict[str, Any]:
            customer_id = _text(params, "customer", required=True, max_length=60) or ""
            await sandbox.get("customer", customer_id, param="customer", status_code=400)
            session_id = new_id("bps")
            portal = {
                "id": session_id,
                "object": "billing_portal.session",
                "created": now(),
                "customer": customer_id,
                "livemode": False,
                "return_url": _url(params, "return_url", required=False),
                "url": f"{request.app.state.settings.base_url}/sandbox/stripe/portal/{session_id}",
            }
            await sandbox.save(portal)
            return portal

        return await _handle(request, db_session, work)

    # Subscriptions, invoices, charges, refunds

    @get("/subscriptions/{object_id:str}")
    async def get_subscription(
        self, request: Request[Any, Any, Any], object_id: FromPath[str], db_session: NamedDependency[AsyncSession]
    ) -> Any:
        return await _handle(request, db_session, lambda sandbox, params: sandbox.get("subscription", object_id))

    @post("/subscriptions/{object_id:str}")
    async def update_subscription(
        self, request: Request[Any, Any, Any], object_id: FromPath[str], db_session: NamedDependency[AsyncSession]
    ) -> Any:
        async def work(sandbox: StripeSandbox, params: dict[str, Any]) -> dict[str, Any]:
            cancel = as_bool(params, "cancel_at_period_end")
            if cancel is None:
                return await sandbox.get("subscription", object_id)
            return await sandbox.set_cancel_at_period_end(object_id, cancel)

        return await _handle(request, db_session, work)

    @delete("/subscriptions/{object_id:str}", status_code=200)
    async def cancel_subscription(
        self, request: Request[Any, Any, Any], object_id: FromPath[str], db_session: NamedDependency[AsyncSession]
    ) -> Any:
        return await _handle(request, db_session, lambda sandbox, params: sandbox.cancel_now(object_id))

    @get([f"/{path}/{{object_id:str}}" for path in READ_ONLY_KINDS])
    async def get_payment_object(
        self, request: Request[Any, Any, Any], object_id: FromPath[str], db_session: NamedDependency[AsyncSession]
    ) -> Any:
        """An invoice, a charge or a payment intent: the object kind its path names."""
        kind = READ_ONLY_KINDS[request.url.path.removeprefix(self.path).split("/")[1]]
        return await _handle(request, db_session, lambda sandbox, params: sandbox.get(kind, object_id))

    @post("/refunds")
    async def create_refund(self, request: Request[Any, Any, Any], db_session: NamedDependency[AsyncSession]) -> Any:
        async def work(sandbox: StripeSandbox, params: dict[str, Any]) -> dict[str, Any]:
            charge_id = _text(params, "charge", max_length=60)
            if charge_id is None:
                intent_id = _text(params, "payment_intent", max_length=60)
                if intent_id is None:
                    raise missing("charge")
                charge_id = (await sandbox.get("payment_intent", intent_id, param="payment_intent", status_code=400))[
                    "latest_charge"
                ]
            await sandbox.get("charge", charge_id, param="charge", status_code=400)
            return await sandbox.refund(charge_id, as_int(params, "amount", minimum=1))

        return await _handle(request, db_session, work)

    @get("/events/{object_id:str}")
    async def get_event(
        self, request: Request[Any, Any, Any], object_id: FromPath[str], db_session: NamedDependency[AsyncSession]
    ) -> Any:
        return await _handle(request, db_session, lambda sandbox, params: sandbox.get("event", object_id))

    @post("/test_helpers/subscriptions/{object_id:str}/advance")
    async def advance_subscription(
        self, request: Request[Any, Any, Any], object_id: FromPath[str], db_session: NamedDependency[AsyncSession]
    ) -> Any:
        """End the current period now: `outcome=paid` renews (invoice.paid), `outcome=failed` does not."""

        async def work(sandbox: StripeSandbox, params: dict[str, Any]) -> dict[str, Any]:
            outcome = params.get("outcome", "paid")
            if outcome not in ("paid", "failed"):
                raise invalid("outcome", "outcome is paid or failed.")
            return await sandbox.advance_subscription(object_id, pay=outcome == "paid")

        return await _handle(request, db_session, work)


class StripeSandboxPages(Controller):
    """The pages a customer sees on Stripe's side: hosted checkout and the customer portal."""

    path = "/sandbox/stripe"
    guards = [requires_payments_sandbox]
    include_in_schema = False

    @get("/checkout/{session_id:str}", name="sandbox:stripe:checkout")
    async def checkout_page(
        self, session_id: FromPath[str], db_session: NamedDependency[AsyncSession], request: Request[Any, Any, Any]
    ) -> Template:
        sandbox = StripeSandbox(db_session, request.app.state.settings)
        session = await self._session(sandbox, session_id)
        return Template("sandbox/stripe/checkout.html", context={"session": session, "error": None})

    @post("/checkout/{session_id:str}/pay")
    async def pay(
        self, session_id: FromPath[str], db_session: NamedDependency[AsyncSession], request: Request[Any, Any, Any]
    ) -> Response[Any]:
        settings: Settings = request.app.state.settings
        sandbox = StripeSandbox(db_session, settings)
        session = await self._session(sandbox, session_id)
        card = ((await read_form(request)).get("card_number") or "").replace(" ", "")
        error = None
        if session["status"] != "open":
            error = "This checkout has already been completed or has expired."
        elif not (card.isascii() and card.isdigit() and 12 <= len(card) <= 19):
            error = "Enter a test card number, like 4242 4242 4242 4242."
        if error is None:
            try:
                session = await sandbox.pay_checkout(session_id, card)
                await db_session.commit()
            except StripeError as refused:
                await db_session.rollback()
                error = refused.body["error"]["message"]
        if error is not None:
            return Template(
                "sandbox/stripe/checkout.html", context={"session": session, "error": error}, status_code=402
            )
        deliver_soon(session_factory(request.app.state.db_engine_handle), settings, sandbox.deliveries)
        return Redirect(session["success_url"].replace("{CHECKOUT_SESSION_ID}", session_id), status_code=303)

    @post("/checkout/{session_id:str}/cancel")
    async def cancel(
        self, session_id: FromPath[str], db_session: NamedDependency[AsyncSession], request: Request[Any, Any, Any]
    ) -> Response[Any]:
        sandbox = StripeSandbox(db_session, request.app.state.settings)
        session = await self._session(sandbox, session_id)
        return Redirect(session["cancel_url"] or session["success_url"], status_code=HTTP_303_SEE_OTHER)

    @staticmethod
    async def _session(sandbox: StripeSandbox, session_id: str) -> dict[str, Any]:
        found = await sandbox.find(session_id)
        if found is None or found.get("object") != "checkout.session":
            raise NotFoundException("No such checkout session.")
        return found

    @get("/portal/{portal_id:str}", name="sandbox:stripe:portal")
    async def portal_page(
        self, portal_id: FromPath[str], db_session: NamedDependency[AsyncSession], request: Request[Any, Any, Any]
    ) -> Template:
        sandbox = StripeSandbox(db_session, request.app.state.settings)
        portal = await self._portal(sandbox, portal_id)
        subscriptions = await sandbox.list("subscription", {"customer": portal["customer"]}, 20)
        customer = await sandbox.find(portal["customer"])
        return Template(
            "sandbox/stripe/portal.html",
            context={"portal": portal, "customer": customer, "subscriptions": subscriptions, "now": time.time()},
        )

    @post("/portal/{portal_id:str}/subscriptions/{subscription_id:str}/{action:str}")
    async def portal_action(
        self,
        portal_id: FromPath[str],
        subscription_id: FromPath[str],
        action: FromPath[str],
        db_session: NamedDependency[AsyncSession],
        request: Request[Any, Any, Any],
    ) -> Response[Any]:
        settings: Settings = request.app.state.settings
        sandbox = StripeSandbox(db_session, settings)
        portal = await self._portal(sandbox, portal_id)
        subscription = await sandbox.find(subscription_id)
        if subscription is None or subscription.get("customer") != portal["customer"]:
            raise NotFoundException("No such subscription.")
        changes = {
            "cancel": lambda: sandbox.set_cancel_at_period_end(subscription_id, True),
            "resume": lambda: sandbox.set_cancel_at_period_end(subscription_id, False),
            "cancel-now": lambda: sandbox.cancel_now(subscription_id),
        }
        if action not in changes:
            raise NotFoundException()
        try:
            await changes[action]()
            await db_session.commit()
        except StripeError:
            await db_session.rollback()
        deliver_soon(session_factory(request.app.state.db_engine_handle), settings, sandbox.deliveries)
        return Redirect(f"/sandbox/stripe/portal/{portal_id}", status_code=HTTP_303_SEE_OTHER)

    @staticmethod
    async def _portal(sandbox: StripeSandbox, portal_id: str) -> dict[str, Any]:
        found = await sandbox.find(portal_id)
        if found is None or found.get("object") != "billing_portal.session":
            raise NotFoundException("No such portal session.")
        return found
