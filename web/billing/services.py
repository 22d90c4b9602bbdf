"""Billing: the catalogue mirrored from Stripe, customers, checkout, subscriptions, payments and their credits.

Stripe is the source of truth. The mirror is written by the webhook handlers and by `cleack sync-stripe`,
each guarded so that an older view of an object never overwrites a newer one (`stripe_updated_at`).
Credits move only through the ledger, each grant under an idempotency key tied to what paid for it.
"""

from __future__ import annotations

import datetime
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
import stripe
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from web.accounts.models import User
from web.billing.models import PLAN_TYPES, Payment, StripeCustomer, StripePrice, StripeProduct, Subscription
from web.billing.periods import add_months, from_timestamp, month_index
from web.billing.stripe_api import as_dict, open_stripe
from web.credits.models import Credit
from web.credits.services import CreditsService, InsufficientCredits
from web.pagination import Page
from web.settings import Settings

PLAN_CREDITS = {"monthly": 10, "annual": 50}
IN_FORCE = ("active", "cancelled")
PER_PAGE = 20


class BillingRefused(Exception):
    """A billing action that cannot go ahead, with a message for the user."""


class NotOurs(Exception):
    """An event about something that belongs to no user of ours (made elsewhere in the Stripe account)."""


@dataclass(frozen=True)
class Offer:
    product: StripeProduct
    price: StripePrice

    @property
    def amount(self) -> str:
        return f"${(self.price.unit_amount or 0) / 100:,.2f}"


@dataclass
class Catalogue:
    packs: list[Offer] = field(default_factory=list)
    plans: list[Offer] = field(default_factory=list)
    enterprise: StripeProduct | None = None

    def offer(self, price_id: str) -> Offer | None:
        return next((offer for offer in (*self.packs, *self.plans) if offer.price.stripe_price_id == price_id), None)


def epoch_now() -> int:
    return int(time.time())


async def lock_object(db: AsyncSession, object_id: str) -> None:
    """Serialize work on one Stripe object across transactions and processes, until this transaction ends."""
    await db.execute(sa.select(sa.func.pg_advisory_xact_lock(sa.func.hashtext(f"stripe:{object_id}"))))


# The catalogue


def _positive_int(value: Any) -> int | None:
    text = str(value or "").strip()
    return int(text) if text.isdigit() and 0 < int(text) <= 1_000_000 else None


async def upsert_product(db: AsyncSession, product: dict[str, Any], observed_at: int, *, deleted: bool = False) -> None:
    metadata = product.get("metadata") or {}
    plan = metadata.get("plan") if metadata.get("plan") in PLAN_TYPES else None
    credits = _positive_int(metadata.get("credits_per_month") if plan else metadata.get("credits"))
    if plan in PLAN_CREDITS and credits is None:
        credits = PLAN_CREDITS[plan]
    values = {
        "name": (product.get("name") or product["id"])[:255],
        "description": (product.get("description") or None) and product["description"][:2000],
        "active": bool(product.get("active", True)) and not deleted,
        "credits": credits,
        "plan_type": plan,
        "metadata": metadata,
        "stripe_updated_at": observed_at,
    }
    statement = pg_insert(StripeProduct).values(id=uuid.uuid4(), stripe_product_id=product["id"], **values)
    await db.execute(
        statement.on_conflict_do_update(
            index_elements=["stripe_product_id"],
            set_={**values, "updated_at": sa.func.now()},
            where=sa.or_(StripeProduct.stripe_updated_at.is_(None), StripeProduct.stripe_updated_at <= observed_at),
        )
    )


async def upsert_price(db: AsyncSession, price: dict[str, Any], observed_at: int, *, deleted: bool = False) -> None:
    recurring = price.get("recurring") or {}
    values = {
        "stripe_product_id": price["product"] if isinstance(price["product"], str) else price["product"]["id"],
        "active": bool(price.get("active", True)) and not deleted,
        "currency": str(price.get("currency") or "usd")[:3],
        "unit_amount": price.get("unit_amount"),
        "type": "recurring" if price.get("type") == "recurring" else "one_time",
        "recurring_interval": recurring.get("interval"),
        "recurring_interval_count": recurring.get("interval_count"),
        "metadata": price.get("metadata") or {},
        "stripe_updated_at": observed_at,
    }
    statement = pg_insert(StripePrice).values(id=uuid.uuid4(), stripe_price_id=price["id"], **values)
    await db.execute(
        statement.on_conflict_do_update(
            index_elements=["stripe_price_id"],
            set_={**values, "updated_at": sa.func.now()},
            where=sa.or_(StripePrice.stripe_updated_at.is_(None), StripePrice.stripe_updated_at <= observed_at),
        )
    )


async def ensure_product(db: AsyncSession, client: stripe.StripeClient, product_id: str) -> StripeProduct:
    """The mirrored product, fetched from Stripe first if no event about it has arrived yet."""
    found = await db.scalar(sa.select(StripeProduct).where(StripeProduct.stripe_product_id == product_id))
    if found is None:
        try:
            await upsert_product(db, as_dict(await client.v1.products.retrieve_async(product_id)), epoch_now())
        except stripe.InvalidRequestError as missing:
            if missing.code != "resource_missing":
                raise
            # Deleted since: kept as a withdrawn product that any later event about it may still fill in.
            await upsert_product(db, {"id": product_id, "active": False, "metadata": {}}, 0, deleted=True)
        found = await db.scalar(sa.select(StripeProduct).where(StripeProduct.stripe_product_id == product_id))
    assert found is not None
    return found


async def ensure_price(db: AsyncSession, client: stripe.StripeClient, price: dict[str, Any]) -> StripeProduct:
    """Mirror a price seen inside another object (and its product), and return its product."""
    product_id = price["product"] if isinstance(price["product"], str) else price["product"]["id"]
    product = await ensure_product(db, client, product_id)
    exists = await db.scalar(sa.select(StripePrice.id).where(StripePrice.stripe_price_id == price["id"]))
    if exists is None:
        await upsert_price(db, price, epoch_now())
    return product


async def sync_catalogue(db: AsyncSession, settings: Settings) -> dict[str, int]:
    """Mirror every product and price from Stripe (`cleack sync-stripe`)."""
    observed_at = epoch_now()
    counts = {"products": 0, "prices": 0}
    if settings.payments_sandbox_enabled and not settings.stripe_api_base:
        return await _sync_from_sandbox(db, settings, observed_at)
    async with open_stripe(settings) as client:
        products = await client.v1.products.list_async({"limit": 100})
        async for product in products.auto_paging_iter():
            await upsert_product(db, as_dict(product), observed_at)
            counts["products"] += 1
        prices = await client.v1.prices.list_async({"limit": 100})
        async for price in prices.auto_paging_iter():
            await ensure_product(db, client, as_dict(price)["product"])
            await upsert_price(db, as_dict(price), observed_at)
            counts["prices"] += 1
    await db.commit()
    return counts


async def _sync_from_sandbox(db: AsyncSession, settings: Settings, observed_at: int) -> dict[str, int]:
    """The sandbox's catalogue, read from its tables: the web server that serves its API may not be up yet."""
    from web.sandbox.stripe.state import StripeSandbox

    sandbox = StripeSandbox(db, settings)
    await sandbox.ensure_catalogue()
    products = await sandbox.list("product", {}, 1000)
    prices = await sandbox.list("price", {}, 1000)
    for product in products:
        await upsert_product(db, product, observed_at)
    for price in prices:
        await upsert_price(db, price, observed_at)
    await db.commit()
    return {"products": len(products), "prices": len(prices)}


# Subscriptions


def _stripe_status(subscription: dict[str, Any]) -> tuple[str, bool]:
    """Our status and auto-renewal, from Stripe's subscription."""
    status = subscription.get("status")
    ending = bool(subscription.get("cancel_at_period_end") or subscription.get("cancel_at"))
    if status in ("active", "trialing"):
        return ("cancelled", False) if ending else ("active", True)
    if status in ("canceled", "incomplete_expired"):
        return "expired", False
    return "past_due", not ending


async def user_for_customer(db: AsyncSession, customer: Any, metadata: dict[str, Any] | None = None) -> uuid.UUID:
    customer_id = customer if isinstance(customer, str) else (customer or {}).get("id")
    user_id = await db.scalar(sa.select(StripeCustomer.user_id).where(StripeCustomer.stripe_customer_id == customer_id))
    if user_id is not None:
        return user_id
    claimed = (metadata or {}).get("user_id")
    try:
        candidate = uuid.UUID(str(claimed))
    except ValueError as exc:
        raise NotOurs(f"no user for customer {customer_id}") from exc
    if await db.get(User, candidate) is None:
        raise NotOurs(f"no user for customer {customer_id}")
    return candidate


async def apply_subscription(
    db: AsyncSession, client: stripe.StripeClient, subscription: dict[str, Any], observed_at: int
) -> Subscription:
    """Upsert our row from Stripe's subscription, unless we already hold a newer view of it."""
    user_id = await user_for_customer(db, subscription["customer"], subscription.get("metadata"))
    item = subscription["items"]["data"][0]
    product = await ensure_price(db, client, item["price"])
    plan = product.plan_type if product.plan_type in PLAN_CREDITS else "monthly"
    status, auto_renew = _stripe_status(subscription)
    end = subscription.get("ended_at") if status == "expired" else None
    values = {
        "user_id": user_id,
        "plan_type": plan,
        "status": status,
        "start_date": from_timestamp(subscription["start_date"]),
        "end_date": from_timestamp(end or subscription.get("cancel_at") or item.get("current_period_end")),
        "auto_renew": auto_renew,
        "credits_per_month": product.credits or PLAN_CREDITS[plan],
        "stripe_price_id": item["price"]["id"],
        "stripe_updated_at": observed_at,
    }
    statement = pg_insert(Subscription).values(id=uuid.uuid4(), stripe_subscription_id=subscription["id"], **values)
    await db.execute(
        statement.on_conflict_do_update(
            index_elements=["stripe_subscription_id"],
            set_={**values, "updated_at": sa.func.now()},
            where=sa.or_(Subscription.stripe_updated_at.is_(None), Subscription.stripe_updated_at <= observed_at),
        )
    )
    row = await db.scalar(
        sa.select(Subscription)
        .where(Subscription.stripe_subscription_id == subscription["id"])
        .execution_options(populate_existing=True)
    )
    assert row is not None
    await sync_premium_role(db, row.user_id)
    return row


async def sync_premium_role(db: AsyncSession, user_id: uuid.UUID, now: datetime.datetime | None = None) -> None:
    """'premium' while a subscription is in force, back to 'user' after; admins and banned users keep their role."""
    now = now or datetime.datetime.now(datetime.UTC)
    in_force = await db.scalar(
        sa.select(sa.func.count())
        .select_from(Subscription)
        .where(
            Subscription.user_id == user_id,
            Subscription.status.in_(IN_FORCE),
            sa.or_(Subscription.end_date.is_(None), Subscription.end_date > now),
        )
    )
    new_role, old_role = ("premium", "user") if in_force else ("user", "premium")
    await db.execute(sa.update(User).where(User.id == user_id, User.role == old_role).values(role=new_role))


# Payments and credits


async def record_payment(db: AsyncSession, **values: Any) -> tuple[Payment, bool]:
    """One row per charge, refund or failure; a retry finds the row its external reference already made."""
    statement = (
        pg_insert(Payment)
        .values(id=uuid.uuid4(), **values)
        .on_conflict_do_nothing(index_elements=["external_reference"])
    )
    created = bool((await db.execute(statement.returning(Payment.id))).first())
    row = await db.scalar(
        sa.select(Payment)
        .where(Payment.external_reference == values["external_reference"])
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    assert row is not None
    return row, created


async def grant_subscription_month(
    db: AsyncSession, subscription: Subscription, month: int, *, paid_by: str | None = None
) -> bool:
    """The credits of one month of a subscription, once: monthly plans per payment (`paid_by`, like
    `invoice:in_…`), annual plans per month of the subscription."""
    if subscription.credits_per_month <= 0 or month < 0:
        return False
    if subscription.plan_type == "monthly" and paid_by:
        key = paid_by
    else:
        key = f"subscription:{subscription.id}:month:{month}"
    label = "Monthly plan" if subscription.plan_type == "monthly" else f"Annual plan, month {month % 12 + 1} of 12"
    await db.commit()
    entry = await CreditsService(db).grant(
        subscription.user_id,
        subscription.credits_per_month,
        transaction_type="subscription",
        idempotency_key=key,
        description=f"{label}: {subscription.credits_per_month} credits",
        metadata={"subscription_id": str(subscription.id), "month": month, "paid_by": paid_by},
    )
    return entry.created


async def take_back_credits(
    db: AsyncSession, user_id: uuid.UUID, wanted: int, *, idempotency_key: str, description: str
) -> tuple[int, bool]:
    """Debit up to `wanted` credits, never more than the balance; returns what was taken and if it is new."""
    existing = await db.scalar(sa.select(Credit).where(Credit.idempotency_key == idempotency_key))
    if existing is not None:
        return -existing.amount, False
    credits = CreditsService(db)
    for _ in range(5):
        take = min(wanted, await credits.balance(user_id))
        if take <= 0:
            return 0, True
        await db.commit()
        try:
            entry = await credits.debit(user_id, take, idempotency_key=idempotency_key, description=description)
        except InsufficientCredits:
            continue
        return -entry.row.amount, entry.created
    return 0, True


async def grant_due_subscription_credits(db: AsyncSession, now: datetime.datetime) -> dict[str, int]:
    """The periodic job: each month of an annual plan gets its credits once; ended subscriptions expire."""
    granted = 0
    annual = await db.scalars(
        sa.select(Subscription).where(
            Subscription.plan_type == "annual",
            Subscription.status.in_(IN_FORCE),
            Subscription.start_date <= now,
        )
    )
    for subscription in list(annual):
        current = month_index(subscription.start_date, now)
        months = range(max(0, current - 11), current + 1)
        keys = {f"subscription:{subscription.id}:month:{month}": month for month in months}
        done = set(await db.scalars(sa.select(Credit.idempotency_key).where(Credit.idempotency_key.in_(keys))))
        for key, month in keys.items():
            paid_for = (
                subscription.end_date is None or add_months(subscription.start_date, month) < subscription.end_date
            )
            if key in done or not paid_for:
                continue
            granted += await grant_subscription_month(db, subscription, month)
    expired = list(
        await db.scalars(
            sa.update(Subscription)
            .where(Subscription.status == "cancelled", Subscription.end_date <= now)
            .values(status="expired", auto_renew=False)
            .returning(Subscription.user_id)
        )
    )
    for user_id in set(expired):
        await sync_premium_role(db, user_id, now)
    await db.commit()
    return {"granted": granted, "expired": len(expired)}


# What the pages show


class BillingService:
    def __init__(self, db: AsyncSession, settings: Settings) -> None:
        self.db = db
        self.settings = settings

    async def catalogue(self) -> Catalogue:
        rows = await self.db.execute(
            sa.select(StripeProduct, StripePrice)
            .outerjoin(
                StripePrice,
                sa.and_(StripePrice.stripe_product_id == StripeProduct.stripe_product_id, StripePrice.active.is_(True)),
            )
            .where(StripeProduct.active.is_(True))
            .order_by(StripePrice.unit_amount, StripeProduct.name)
        )
        catalogue = Catalogue()
        for product, price in rows:
            if product.plan_type == "enterprise":
                catalogue.enterprise = product
            elif price is None or price.unit_amount is None:
                continue
            elif product.plan_type in PLAN_CREDITS and price.type == "recurring":
                catalogue.plans.append(Offer(product, price))
            elif product.plan_type is None and product.credits and price.type == "one_time":
                catalogue.packs.append(Offer(product, price))
        return catalogue

    async def current_subscription(self, user_id: uuid.UUID) -> Subscription | None:
        """The subscription in force (or waiting for a payment), else none."""
        return await self.db.scalar(
            sa.select(Subscription)
            .where(Subscription.user_id == user_id, Subscription.status.in_((*IN_FORCE, "past_due")))
            .order_by(Subscription.start_date.desc())
            .limit(1)
        )

    async def payments(self, user_id: uuid.UUID, page: int) -> Page:
        condition = Payment.user_id == user_id
        total = await self.db.scalar(sa.select(sa.func.count()).select_from(Payment).where(condition))
        rows = await self.db.scalars(
            sa.select(Payment)
            .where(condition)
            .order_by(Payment.created_at.desc(), Payment.id.desc())
            .limit(PER_PAGE)
            .offset((page - 1) * PER_PAGE)
        )
        return Page(list(rows), page, PER_PAGE, int(total or 0))

    async def all_payments(self, status: str, page: int) -> Page:
        statement = sa.select(Payment, User.email).join(User, User.id == Payment.user_id)
        if status:
            statement = statement.where(Payment.status == status)
        total = await self.db.scalar(sa.select(sa.func.count()).select_from(statement.subquery()))
        rows = await self.db.execute(
            statement.order_by(Payment.created_at.desc(), Payment.id.desc())
            .limit(PER_PAGE)
            .offset((page - 1) * PER_PAGE)
        )
        return Page([tuple(row) for row in rows], page, PER_PAGE, int(total or 0))

    async def confirmed_payment(self, user_id: uuid.UUID, checkout_session_id: str) -> Payment | None:
        return await self.db.scalar(
            sa.select(Payment).where(
                Payment.user_id == user_id,
                Payment.stripe_checkout_session_id == checkout_session_id,
                Payment.status.in_(("succeeded", "refunded")),
            )
        )

    # Actions that go to Stripe

    async def _customer_id(self, client: stripe.StripeClient, user_id: uuid.UUID, email: str) -> str:
        found = await self.db.scalar(
            sa.select(StripeCustomer.stripe_customer_id).where(StripeCustomer.user_id == user_id)
        )
        if found is not None:
            return found
        # The same key for every attempt: two concurrent first purchases get one Stripe customer.
        customer = await client.v1.customers.create_async(
            {"email": email, "metadata": {"user_id": str(user_id)}},
            {"idempotency_key": f"customer:{user_id}"},
        )
        await self.db.execute(
            pg_insert(StripeCustomer)
            .values(id=uuid.uuid4(), user_id=user_id, stripe_customer_id=customer.id, email=email)
            .on_conflict_do_nothing()
        )
        await self.db.commit()
        found = await self.db.scalar(
            sa.select(StripeCustomer.stripe_customer_id).where(StripeCustomer.user_id == user_id)
        )
        assert found is not None
        return found

    async def start_checkout(self, user_id: uuid.UUID, email: str, price_id: str, request_key: str) -> str:
        """A Stripe Checkout Session for one pack or plan; its address. Nothing is granted until the webhook."""
        offer = (await self.catalogue()).offer(price_id)
        if offer is None:
            raise BillingRefused("This offer is no longer available. Reload the page to see the current ones.")
        subscribing = offer.price.type == "recurring"
        if subscribing and await self.current_subscription(user_id) is not None:
            raise BillingRefused("You already have a subscription. Manage or cancel it from “Manage subscription”.")
        base = self.settings.base_url
        # Typed loosely: the subscription_data key is added below for plans only.
        params: Any = {
            "mode": "subscription" if subscribing else "payment",
            "line_items": [{"price": price_id, "quantity": 1}],
            "client_reference_id": str(user_id),
            "metadata": {"user_id": str(user_id), "price_id": price_id},
            "success_url": f"{base}/billing/return?session_id={{CHECKOUT_SESSION_ID}}",
            "cancel_url": f"{base}/billing?notice=checkout_cancelled",
        }
        if subscribing:
            params["subscription_data"] = {"metadata": {"user_id": str(user_id)}}
        async with open_stripe(self.settings) as client:
            params["customer"] = await self._customer_id(client, user_id, email)
            session = await client.v1.checkout.sessions.create_async(
                params, {"idempotency_key": f"checkout:{user_id}:{request_key}"}
            )
        return str(session.url)

    async def checkout_belongs_to(self, user_id: uuid.UUID, session_id: str) -> bool:
        async with open_stripe(self.settings) as client:
            try:
                session = await client.v1.checkout.sessions.retrieve_async(session_id)
            except stripe.InvalidRequestError:
                return False
        return session.client_reference_id == str(user_id)

    async def portal_url(self, user_id: uuid.UUID) -> str:
        customer_id = await self.db.scalar(
            sa.select(StripeCustomer.stripe_customer_id).where(StripeCustomer.user_id == user_id)
        )
        if customer_id is None:
            raise BillingRefused("You have no subscription or payment to manage yet.")
        async with open_stripe(self.settings) as client:
            portal = await client.v1.billing_portal.sessions.create_async(
                {"customer": customer_id, "return_url": f"{self.settings.base_url}/billing"}
            )
        return str(portal.url)
