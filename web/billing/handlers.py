"""One small handler per Stripe event type.

Each re-reads its object from the API (so that events arriving late or out of order apply today's state)
or, for the catalogue, compares the event's time with the mirror's `stripe_updated_at`. Each runs inside
the event's transaction; whatever it grants is keyed, so running it again changes nothing.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
import stripe
from sqlalchemy.ext.asyncio import AsyncSession

from web.billing.models import Payment
from web.billing.periods import from_timestamp, month_index
from web.billing.services import (
    NotOurs,
    apply_subscription,
    ensure_price,
    ensure_product,
    epoch_now,
    grant_subscription_month,
    lock_object,
    record_payment,
    take_back_credits,
    upsert_price,
    upsert_product,
    user_for_customer,
)
from web.billing.stripe_api import as_dict
from web.credits.services import CreditsService
from web.settings import Settings


@dataclass(frozen=True)
class EventContext:
    db: AsyncSession
    stripe: stripe.StripeClient
    settings: Settings
    event: dict[str, Any]

    @property
    def object(self) -> dict[str, Any]:
        return dict(self.event["data"]["object"])

    @property
    def created(self) -> int:
        return int(self.event.get("created") or 0)


Handler = Callable[[EventContext], Awaitable[None]]
HANDLERS: dict[str, Handler] = {}


def handles(*event_types: str) -> Callable[[Handler], Handler]:
    def register(handler: Handler) -> Handler:
        for event_type in event_types:
            HANDLERS[event_type] = handler
        return handler

    return register


# Checkout


@handles("checkout.session.completed")
async def checkout_completed(context: EventContext) -> None:
    session_id = context.object["id"]
    await lock_object(context.db, session_id)
    session = as_dict(await context.stripe.v1.checkout.sessions.retrieve_async(session_id, {"expand": ["line_items"]}))
    if session.get("payment_status") != "paid":
        return
    if session["mode"] == "subscription":
        await _subscription_checkout(context, session)
    elif session["mode"] == "payment":
        await _pack_checkout(context, session)


async def _pack_checkout(context: EventContext, session: dict[str, Any]) -> None:
    db = context.db
    user_id = await user_for_customer(db, session["customer"], session.get("metadata"))
    line = session["line_items"]["data"][0]
    product = await ensure_price(db, context.stripe, line["price"])
    if not product.credits or product.plan_type is not None:
        raise NotOurs(f"price {line['price']['id']} is not a credit pack")
    credits = product.credits * int(line.get("quantity") or 1)
    charge_id = await _charge_of(context, session.get("payment_intent"))
    paid, _ = await record_payment(
        db,
        user_id=user_id,
        kind="credit_pack",
        status="succeeded",
        amount=session["amount_total"],
        currency=session["currency"],
        credits=credits,
        description=product.name,
        stripe_checkout_session_id=session["id"],
        stripe_payment_intent_id=session.get("payment_intent"),
        stripe_charge_id=charge_id,
        external_reference=session.get("payment_intent") or session["id"],
    )
    await db.commit()
    await CreditsService(db).grant(
        user_id,
        credits,
        transaction_type="purchase",
        idempotency_key=f"checkout:{session['id']}",
        description=f"{product.name} bought",
        metadata={"checkout_session": session["id"]},
    )
    await _settle_earlier_refunds(context, charge_id, paid)


async def _charge_of(context: EventContext, payment_intent_id: str | None) -> str | None:
    """The charge behind a payment, locked first: refunds of it then wait for the payment to be recorded."""
    if not payment_intent_id:
        return None
    intent = as_dict(await context.stripe.v1.payment_intents.retrieve_async(payment_intent_id))
    charge_id = intent.get("latest_charge")
    charge_id = charge_id if isinstance(charge_id, str) or charge_id is None else charge_id["id"]
    if charge_id:
        await lock_object(context.db, charge_id)
    return charge_id


async def _settle_earlier_refunds(context: EventContext, charge_id: str | None, paid: Payment) -> None:
    """A refund whose event came before the payment's own: apply it now."""
    if charge_id is None:
        return
    charge = as_dict(await context.stripe.v1.charges.retrieve_async(charge_id))
    if charge.get("amount_refunded"):
        await _apply_refunds(context, charge, paid)


async def _subscription_checkout(context: EventContext, session: dict[str, Any]) -> None:
    subscription_id = session.get("subscription")
    if not subscription_id:
        return
    await lock_object(context.db, subscription_id)
    subscription = as_dict(await context.stripe.v1.subscriptions.retrieve_async(subscription_id))
    await apply_subscription(context.db, context.stripe, subscription, epoch_now())
    if session.get("invoice"):
        invoice = as_dict(await context.stripe.v1.invoices.retrieve_async(session["invoice"]))
        if invoice.get("status") == "paid":
            await _paid_invoice(context, invoice, checkout_session_id=session["id"])


# Invoices


def _invoice_subscription(invoice: dict[str, Any]) -> str | None:
    details = (invoice.get("parent") or {}).get("subscription_details") or {}
    subscription = details.get("subscription")
    return subscription if isinstance(subscription, str) or subscription is None else subscription.get("id")


def _invoice_payment_intent(invoice: dict[str, Any]) -> str | None:
    for invoice_payment in (invoice.get("payments") or {}).get("data") or []:
        payment = invoice_payment.get("payment") or {}
        if payment.get("payment_intent"):
            intent = payment["payment_intent"]
            return intent if isinstance(intent, str) else intent.get("id")
    return None


@handles("invoice.paid")
async def invoice_paid(context: EventContext) -> None:
    invoice = as_dict(await context.stripe.v1.invoices.retrieve_async(context.object["id"]))
    if invoice.get("status") == "paid":
        await _paid_invoice(context, invoice)


async def _paid_invoice(context: EventContext, invoice: dict[str, Any], checkout_session_id: str | None = None) -> None:
    db = context.db
    subscription_id = _invoice_subscription(invoice)
    if subscription_id is None:
        raise NotOurs(f"invoice {invoice['id']} belongs to no subscription")
    await lock_object(db, subscription_id)
    subscription = await apply_subscription(
        db, context.stripe, as_dict(await context.stripe.v1.subscriptions.retrieve_async(subscription_id)), epoch_now()
    )
    charge_id = await _charge_of(context, _invoice_payment_intent(invoice))
    period_start = from_timestamp(invoice["lines"]["data"][0]["period"]["start"]) if invoice["lines"]["data"] else None
    month = month_index(subscription.start_date, period_start) if period_start else 0
    if invoice.get("amount_paid", 0) > 0:
        payment, _ = await record_payment(
            db,
            user_id=subscription.user_id,
            kind="subscription",
            status="succeeded",
            amount=invoice["amount_paid"],
            currency=invoice["currency"],
            credits=subscription.credits_per_month,
            description=f"{subscription.plan_type.capitalize()} plan",
            stripe_invoice_id=invoice["id"],
            stripe_payment_intent_id=_invoice_payment_intent(invoice),
            stripe_checkout_session_id=checkout_session_id,
            external_reference=invoice["id"],
        )
        if checkout_session_id and payment.stripe_checkout_session_id is None:
            payment.stripe_checkout_session_id = checkout_session_id
        payment.stripe_charge_id = charge_id
    await grant_subscription_month(db, subscription, max(month, 0), paid_by=f"invoice:{invoice['id']}")
    if invoice.get("amount_paid", 0) > 0:
        await _settle_earlier_refunds(context, charge_id, payment)


@handles("invoice.payment_failed")
async def invoice_payment_failed(context: EventContext) -> None:
    db = context.db
    invoice = as_dict(await context.stripe.v1.invoices.retrieve_async(context.object["id"]))
    subscription_id = _invoice_subscription(invoice)
    if subscription_id is None:
        raise NotOurs(f"invoice {invoice['id']} belongs to no subscription")
    await lock_object(db, subscription_id)
    subscription = await apply_subscription(
        db, context.stripe, as_dict(await context.stripe.v1.subscriptions.retrieve_async(subscription_id)), epoch_now()
    )
    if invoice.get("amount_due", 0) > 0:
        await record_payment(
            db,
            user_id=subscription.user_id,
            kind="subscription",
            status="failed",
            amount=invoice["amount_due"],
            currency=invoice["currency"],
            description=f"{subscription.plan_type.capitalize()} plan: payment failed",
            stripe_invoice_id=invoice["id"],
            external_reference=f"{invoice['id']}:attempt:{invoice.get('attempt_count') or 1}",
        )


# Subscriptions


@handles("customer.subscription.created", "customer.subscription.updated", "customer.subscription.deleted")
async def subscription_changed(context: EventContext) -> None:
    subscription_id = context.object["id"]
    await lock_object(context.db, subscription_id)
    subscription = as_dict(await context.stripe.v1.subscriptions.retrieve_async(subscription_id))
    await apply_subscription(context.db, context.stripe, subscription, epoch_now())


# Refunds


@handles("charge.refunded")
async def charge_refunded(context: EventContext) -> None:
    db = context.db
    charge_id = context.object["id"]
    await lock_object(db, charge_id)
    charge = as_dict(await context.stripe.v1.charges.retrieve_async(charge_id))
    paid = await db.scalar(
        sa.select(Payment)
        .where(
            Payment.kind != "refund",
            sa.or_(
                Payment.stripe_payment_intent_id == charge.get("payment_intent"), Payment.stripe_charge_id == charge_id
            ),
        )
        .with_for_update()
    )
    if paid is None:
        # Not ours, or its payment's own event has not come yet: that one will apply the refund then.
        raise NotOurs(f"charge {charge_id} paid for nothing recorded")
    await _apply_refunds(context, charge, paid)


async def _apply_refunds(context: EventContext, charge: dict[str, Any], paid: Payment) -> None:
    db = context.db
    charge_id = charge["id"]
    refunds = sorted(
        (refund for refund in charge["refunds"]["data"] if refund.get("status") == "succeeded"),
        key=lambda refund: (refund["created"], refund["id"]),
    )
    refunded_before = 0
    for refund in refunds:
        # Credits follow the money: a refund of half the price takes back half the credits.
        share = (paid.credits or 0) * (refunded_before + refund["amount"]) // paid.amount - (
            (paid.credits or 0) * refunded_before // paid.amount
        )
        refunded_before += refund["amount"]
        _, created = await record_payment(
            db,
            user_id=paid.user_id,
            kind="refund",
            status="succeeded",
            amount=refund["amount"],
            currency=refund.get("currency") or paid.currency,
            credits=share or None,
            description=f"Refund: {paid.description or paid.kind}",
            stripe_charge_id=charge_id,
            stripe_payment_intent_id=charge.get("payment_intent"),
            stripe_invoice_id=paid.stripe_invoice_id,
            external_reference=refund["id"],
        )
        if not created:
            continue
        taken, _ = await take_back_credits(
            db,
            paid.user_id,
            share,
            idempotency_key=f"refund:{refund['id']}",
            description=f"Refunded: {paid.description or paid.kind}",
        )
        paid = await db.get_one(Payment, paid.id, with_for_update=True, populate_existing=True)
        paid.metadata_ = {
            **paid.metadata_,
            "refunds": {
                **paid.metadata_.get("refunds", {}),
                refund["id"]: {
                    "amount": refund["amount"],
                    "credits": share,
                    "credits_taken": taken,
                    "credits_not_recovered": share - taken,
                },
            },
        }
    paid.stripe_charge_id = charge_id
    if charge.get("refunded"):
        paid.status = "refunded"


# The catalogue


# Deleted products and prices never come back: their deletion outranks any other version.
DELETED_FOR_GOOD = 2**62


@handles("product.created", "product.updated")
async def product_changed(context: EventContext) -> None:
    # A product carries its own version time, finer than the event's when two changes share a second.
    await upsert_product(context.db, context.object, int(context.object.get("updated") or context.created))


@handles("product.deleted")
async def product_deleted(context: EventContext) -> None:
    await upsert_product(context.db, context.object, DELETED_FOR_GOOD, deleted=True)


@handles("price.created", "price.updated")
async def price_changed(context: EventContext) -> None:
    price = context.object
    await ensure_product(context.db, context.stripe, price["product"])
    await upsert_price(context.db, price, context.created)


@handles("price.deleted")
async def price_deleted(context: EventContext) -> None:
    price = context.object
    await ensure_product(context.db, context.stripe, price["product"])
    await upsert_price(context.db, price, DELETED_FOR_GOOD, deleted=True)
