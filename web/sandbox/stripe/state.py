"""The payments sandbox's behaviour: Stripe objects, what paying, renewing, cancelling and refunding do to
them, and the events each change sends."""

from __future__ import annotations

import copy
import datetime
import json
import time
import uuid
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from web.billing.periods import add_interval
from web.sandbox.stripe.models import SandboxStripeObject, SandboxWebhookDelivery
from web.sandbox.stripe.wire import API_VERSION, StripeError, as_list, new_id, no_such
from web.settings import Settings

CARD_DECLINED = "4000000000000002"


@dataclass(frozen=True)
class CatalogueItem:
    key: str
    name: str
    description: str
    metadata: dict[str, str]
    unit_amount: int
    interval: str | None


CATALOGUE = (
    CatalogueItem("pack5", "5 credits", "A pack of 5 draw credits.", {"credits": "5"}, 499, None),
    CatalogueItem("pack20", "20 credits", "A pack of 20 draw credits.", {"credits": "20"}, 1499, None),
    CatalogueItem("pack50", "50 credits", "A pack of 50 draw credits.", {"credits": "50"}, 2999, None),
    CatalogueItem(
        "monthly",
        "Monthly plan",
        "10 credits every month, billed monthly.",
        {"plan": "monthly", "credits_per_month": "10"},
        1499,
        "month",
    ),
    CatalogueItem(
        "annual",
        "Annual plan",
        "50 credits every month, billed once a year.",
        {"plan": "annual", "credits_per_month": "50"},
        9900,
        "year",
    ),
)
ENTERPRISE = CatalogueItem(
    "enterprise", "Enterprise", "Custom volumes and invoicing: talk to us.", {"plan": "enterprise"}, 0, None
)


def now() -> int:
    return int(time.time())


def _period_end(start: int, price: dict[str, Any]) -> int:
    recurring = price.get("recurring") or {}
    moment = datetime.datetime.fromtimestamp(start, datetime.UTC)
    return int(add_interval(moment, recurring.get("interval", "month"), recurring.get("interval_count", 1)).timestamp())


class StripeSandbox:
    def __init__(self, db: AsyncSession, settings: Settings) -> None:
        self.db = db
        self.settings = settings
        self.deliveries: list[uuid.UUID] = []

    # Storage

    async def find(self, object_id: str) -> dict[str, Any] | None:
        row = await self.db.get(SandboxStripeObject, object_id)
        return copy.deepcopy(row.data) if row is not None else None

    async def get(
        self, kind: str, object_id: str, *, param: str | None = None, status_code: int = 404
    ) -> dict[str, Any]:
        found = await self.find(object_id) if isinstance(object_id, str) else None
        if found is None or found.get("object") != kind or found.get("deleted"):
            raise no_such(kind.split(".")[-1], str(object_id), param, status_code)
        return found

    async def lock(self, kind: str, object_id: str) -> dict[str, Any]:
        """The object, its row locked until the transaction ends, so concurrent changes apply one after another."""
        row = await self.db.scalar(
            sa.select(SandboxStripeObject).where(SandboxStripeObject.id == object_id).with_for_update()
        )
        if row is None or row.data.get("object") != kind:
            raise no_such(kind.split(".")[-1], object_id)
        return copy.deepcopy(row.data)

    async def save(self, data: dict[str, Any]) -> dict[str, Any]:
        statement = pg_insert(SandboxStripeObject).values(
            id=data["id"], object_type=data["object"], data=data, created=data.get("created") or now()
        )
        await self.db.execute(statement.on_conflict_do_update(index_elements=["id"], set_={"data": data}))
        return data

    async def list(self, kind: str, filters: dict[str, Any], limit: int) -> list[dict[str, Any]]:
        statement = sa.select(SandboxStripeObject.data).where(SandboxStripeObject.object_type == kind)
        for key, value in filters.items():
            statement = statement.where(SandboxStripeObject.data[key].astext == value)
        rows = await self.db.scalars(
            statement.order_by(SandboxStripeObject.created.desc(), SandboxStripeObject.id).limit(limit)
        )
        return [row for row in rows if not row.get("deleted")]

    # Events

    async def emit(self, event_type: str, data: dict[str, Any], previous: dict[str, Any] | None = None) -> None:
        event: dict[str, Any] = {
            "id": new_id("evt"),
            "object": "event",
            "api_version": API_VERSION,
            "created": now(),
            "data": {"object": copy.deepcopy(data)},
            "livemode": False,
            "pending_webhooks": 1,
            "request": {"id": None, "idempotency_key": None},
            "type": event_type,
        }
        if previous:
            event["data"]["previous_attributes"] = previous
        await self.save(event)
        delivery_id = uuid.uuid4()
        self.db.add(
            SandboxWebhookDelivery(
                id=delivery_id,
                event_id=event["id"],
                url=f"{self.settings.base_url}/webhooks/stripe",
                payload=json.dumps(event, separators=(",", ":")),
                next_attempt_at=datetime.datetime.now(datetime.UTC),
            )
        )
        self.deliveries.append(delivery_id)

    # Catalogue

    async def ensure_catalogue(self) -> None:
        if await self.db.get(SandboxStripeObject, f"prod_cleack_{ENTERPRISE.key}") is not None:
            return
        created = now()
        for item in (*CATALOGUE, ENTERPRISE):
            product_id, price_id = f"prod_cleack_{item.key}", f"price_cleack_{item.key}"
            product = self.product_object(product_id, item.name, item.description, item.metadata, created)
            if item.unit_amount:
                product["default_price"] = price_id
                await self.save(product)
                await self.save(
                    self.price_object(price_id, product_id, item.unit_amount, "usd", item.interval, created)
                )
            else:
                await self.save(product)
        await self.db.flush()

    @staticmethod
    def product_object(
        product_id: str, name: str, description: str | None, metadata: dict[str, str], created: int
    ) -> dict[str, Any]:
        return {
            "id": product_id,
            "object": "product",
            "active": True,
            "created": created,
            "updated": created,
            "default_price": None,
            "description": description,
            "livemode": False,
            "metadata": metadata,
            "name": name,
            "type": "service",
        }

    @staticmethod
    def price_object(
        price_id: str, product_id: str, unit_amount: int, currency: str, interval: str | None, created: int
    ) -> dict[str, Any]:
        return {
            "id": price_id,
            "object": "price",
            "active": True,
            "created": created,
            "currency": currency,
            "livemode": False,
            "lookup_key": None,
            "metadata": {},
            "product": product_id,
            "recurring": {"interval": interval, "interval_count": 1, "usage_type": "licensed"} if interval else None,
            "type": "recurring" if interval else "one_time",
            "unit_amount": unit_amount,
        }

    # Checkout

    async def pay_checkout(self, session_id: str, card_number: str) -> dict[str, Any]:
        session = await self.lock("checkout.session", session_id)
        if session["status"] != "open":
            raise StripeError(400, "This Checkout Session is no longer open.", code="checkout_session_not_open")
        if card_number == CARD_DECLINED:
            raise StripeError(402, "Your card was declined.", type_="card_error", code="card_declined")
        line = session["line_items"]["data"][0]
        price = line["price"]
        customer = session["customer"]
        if session["mode"] == "payment":
            intent, _ = await self._charge(customer, session["amount_total"], session["currency"], "Credit pack")
            session.update(payment_intent=intent["id"])
        else:
            subscription = await self._start_subscription(customer, price, session.get("subscription_data") or {})
            invoice = await self._invoice(subscription, price, "subscription_create")
            session.update(subscription=subscription["id"], invoice=invoice["id"])
        session.update(status="complete", payment_status="paid")
        await self.save(session)
        await self.emit("checkout.session.completed", self.public(session))
        return session

    async def expire_checkout(self, session_id: str) -> dict[str, Any]:
        session = await self.lock("checkout.session", session_id)
        if session["status"] == "open":
            session["status"] = "expired"
            await self.save(session)
            await self.emit("checkout.session.expired", self.public(session))
        return session

    @staticmethod
    def public(session: dict[str, Any]) -> dict[str, Any]:
        """A Checkout Session as events and the API show it: line items only when expanded."""
        shown = {key: value for key, value in session.items() if key not in ("line_items", "subscription_data")}
        return shown

    async def _charge(
        self, customer: str, amount: int, currency: str, description: str
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        created = now()
        intent_id, charge_id = new_id("pi"), new_id("ch")
        charge = {
            "id": charge_id,
            "object": "charge",
            "amount": amount,
            "amount_captured": amount,
            "amount_refunded": 0,
            "captured": True,
            "created": created,
            "currency": currency,
            "customer": customer,
            "description": description,
            "failure_code": None,
            "failure_message": None,
            "livemode": False,
            "metadata": {},
            "paid": True,
            "payment_intent": intent_id,
            "refunded": False,
            "refunds": as_list([], f"/v1/charges/{charge_id}/refunds"),
            "status": "succeeded",
        }
        intent = {
            "id": intent_id,
            "object": "payment_intent",
            "amount": amount,
            "amount_received": amount,
            "created": created,
            "currency": currency,
            "customer": customer,
            "latest_charge": charge_id,
            "livemode": False,
            "metadata": {},
            "status": "succeeded",
        }
        await self.save(intent)
        await self.save(charge)
        await self.emit("payment_intent.succeeded", intent)
        await self.emit("charge.succeeded", charge)
        return intent, charge

    # Subscriptions

    async def _start_subscription(
        self, customer: str, price: dict[str, Any], subscription_data: dict[str, Any]
    ) -> dict[str, Any]:
        start = now()
        subscription_id = new_id("sub")
        subscription = {
            "id": subscription_id,
            "object": "subscription",
            "cancel_at": None,
            "cancel_at_period_end": False,
            "canceled_at": None,
            "created": start,
            "currency": price["currency"],
            "customer": customer,
            "ended_at": None,
            "items": as_list(
                [
                    {
                        "id": new_id("si"),
                        "object": "subscription_item",
                        "created": start,
                        "current_period_end": _period_end(start, price),
                        "current_period_start": start,
                        "metadata": {},
                        "price": price,
                        "quantity": 1,
                        "subscription": subscription_id,
                    }
                ],
                f"/v1/subscription_items?subscription={subscription_id}",
            ),
            "latest_invoice": None,
            "livemode": False,
            "metadata": dict(subscription_data.get("metadata") or {}),
            "start_date": start,
            "status": "active",
        }
        await self.save(subscription)
        await self.emit("customer.subscription.created", subscription)
        return subscription

    async def _invoice(
        self, subscription: dict[str, Any], price: dict[str, Any], reason: str, *, paid: bool = True
    ) -> dict[str, Any]:
        item = subscription["items"]["data"][0]
        amount = price["unit_amount"]
        invoice_id = new_id("in")
        payments: list[dict[str, Any]] = []
        if paid:
            intent, _ = await self._charge(subscription["customer"], amount, price["currency"], "Subscription")
            payments.append(
                {
                    "id": new_id("inpay"),
                    "object": "invoice_payment",
                    "amount_paid": amount,
                    "currency": price["currency"],
                    "invoice": invoice_id,
                    "is_default": True,
                    "payment": {"type": "payment_intent", "payment_intent": intent["id"]},
                    "status": "paid",
                }
            )
        invoice = {
            "id": invoice_id,
            "object": "invoice",
            "amount_due": amount,
            "amount_paid": amount if paid else 0,
            "amount_remaining": 0 if paid else amount,
            "attempt_count": 1,
            "attempted": True,
            "billing_reason": reason,
            "created": now(),
            "currency": price["currency"],
            "customer": subscription["customer"],
            "lines": as_list(
                [
                    {
                        "id": new_id("il"),
                        "object": "line_item",
                        "amount": amount,
                        "currency": price["currency"],
                        "description": "1 x subscription",
                        "period": {"start": item["current_period_start"], "end": item["current_period_end"]},
                        "pricing": {"type": "price_details", "price_details": {"price": price["id"]}},
                        "quantity": 1,
                    }
                ],
                f"/v1/invoices/{invoice_id}/lines",
            ),
            "livemode": False,
            "metadata": {},
            "parent": {
                "type": "subscription_details",
                "subscription_details": {"subscription": subscription["id"], "metadata": subscription["metadata"]},
            },
            "payments": as_list(payments, f"/v1/invoice_payments?invoice={invoice_id}"),
            "period_end": item["current_period_end"],
            "period_start": item["current_period_start"],
            "status": "paid" if paid else "open",
        }
        await self.save(invoice)
        subscription["latest_invoice"] = invoice_id
        await self.save(subscription)
        await self.emit("invoice.paid" if paid else "invoice.payment_failed", invoice)
        return invoice

    async def set_cancel_at_period_end(self, subscription_id: str, cancel: bool) -> dict[str, Any]:
        subscription = await self.lock("subscription", subscription_id)
        if subscription["status"] == "canceled":
            raise StripeError(400, "A canceled subscription can only update its cancellation_details and metadata.")
        previous = {
            "cancel_at_period_end": subscription["cancel_at_period_end"],
            "cancel_at": subscription["cancel_at"],
        }
        period_end = subscription["items"]["data"][0]["current_period_end"]
        subscription.update(
            cancel_at_period_end=cancel,
            cancel_at=period_end if cancel else None,
            canceled_at=now() if cancel else None,
        )
        await self.save(subscription)
        await self.emit("customer.subscription.updated", subscription, previous)
        return subscription

    async def cancel_now(self, subscription_id: str) -> dict[str, Any]:
        subscription = await self.lock("subscription", subscription_id)
        if subscription["status"] == "canceled":
            raise StripeError(400, "This subscription has already been canceled.")
        moment = now()
        subscription.update(status="canceled", ended_at=moment, canceled_at=subscription["canceled_at"] or moment)
        await self.save(subscription)
        await self.emit("customer.subscription.deleted", subscription)
        return subscription

    async def advance_subscription(self, subscription_id: str, *, pay: bool) -> dict[str, Any]:
        """The period ends: a renewal invoice, paid or failed, or the end of a subscription cancelled at period end."""
        subscription = await self.lock("subscription", subscription_id)
        if subscription["status"] == "canceled":
            raise StripeError(400, "This subscription has already been canceled.")
        if subscription["cancel_at_period_end"]:
            subscription.update(status="canceled", ended_at=subscription["cancel_at"] or now())
            await self.save(subscription)
            await self.emit("customer.subscription.deleted", subscription)
            return subscription
        item = subscription["items"]["data"][0]
        previous = {"status": subscription["status"], "items": copy.deepcopy(subscription["items"])}
        if pay:
            item["current_period_start"] = item["current_period_end"]
            item["current_period_end"] = _period_end(item["current_period_start"], item["price"])
            subscription["status"] = "active"
        else:
            subscription["status"] = "past_due"
        await self.save(subscription)
        await self._invoice(subscription, item["price"], "subscription_cycle", paid=pay)
        await self.emit("customer.subscription.updated", subscription, previous)
        return subscription

    # Refunds

    async def refund(self, charge_id: str, amount: int | None) -> dict[str, Any]:
        charge = await self.lock("charge", charge_id)
        remaining = charge["amount"] - charge["amount_refunded"]
        amount = remaining if amount is None else amount
        if remaining <= 0:
            raise StripeError(400, f"Charge {charge_id} has already been refunded.", code="charge_already_refunded")
        if not 0 < amount <= remaining:
            raise StripeError(
                400,
                f"Refund amount (${amount / 100:.2f}) is greater than unrefunded amount on charge "
                f"(${remaining / 100:.2f})",
                param="amount",
            )
        refund = {
            "id": new_id("re"),
            "object": "refund",
            "amount": amount,
            "charge": charge_id,
            "created": now(),
            "currency": charge["currency"],
            "metadata": {},
            "payment_intent": charge["payment_intent"],
            "reason": None,
            "status": "succeeded",
        }
        await self.save(refund)
        previous = {"amount_refunded": charge["amount_refunded"], "refunded": charge["refunded"]}
        charge["amount_refunded"] += amount
        charge["refunded"] = charge["amount_refunded"] == charge["amount"]
        charge["refunds"]["data"].insert(0, refund)
        await self.save(charge)
        await self.emit("charge.refunded", charge, previous)
        await self.emit("refund.created", refund)
        return refund
