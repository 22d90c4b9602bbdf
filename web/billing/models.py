"""Subscriptions, the Stripe mirror, payments and received Stripe events."""

from __future__ import annotations

import datetime
import uuid
from typing import Any

import sqlalchemy as sa
from advanced_alchemy.types import DateTimeUTC
from sqlalchemy.orm import Mapped, mapped_column

from web.base import JSONB, UUIDv7AuditBase, UUIDv7Base, created_at_column, in_list, user_fk

PLAN_TYPES = ("monthly", "annual", "enterprise")
SUBSCRIPTION_STATUSES = ("active", "cancelled", "expired", "past_due")
PAYMENT_STATUSES = ("pending", "succeeded", "failed", "refunded")
PAYMENT_KINDS = ("credit_pack", "subscription", "refund")
EVENT_STATUSES = ("received", "processed", "failed", "ignored")


class Subscription(UUIDv7AuditBase):
    __tablename__ = "subscriptions"
    __table_args__ = (
        sa.Index("ix_subscriptions_status", "status"),
        sa.Index("ix_subscriptions_end_date", "end_date"),
        in_list("plan_type", PLAN_TYPES, "plan_type_valid"),
        in_list("status", SUBSCRIPTION_STATUSES, "status_valid"),
        sa.CheckConstraint("credits_per_month >= 0", name="credits_per_month_not_negative"),
    )

    user_id: Mapped[uuid.UUID] = user_fk()
    plan_type: Mapped[str] = mapped_column(sa.String(16), nullable=False)
    status: Mapped[str] = mapped_column(sa.String(16), nullable=False, default="active", server_default="active")
    start_date: Mapped[datetime.datetime] = mapped_column(DateTimeUTC(timezone=True), nullable=False)
    end_date: Mapped[datetime.datetime | None] = mapped_column(DateTimeUTC(timezone=True))
    auto_renew: Mapped[bool] = mapped_column(nullable=False, default=True, server_default=sa.true())
    credits_per_month: Mapped[int] = mapped_column(nullable=False, default=0, server_default="0")
    stripe_subscription_id: Mapped[str | None] = mapped_column(sa.String(255), unique=True)
    stripe_price_id: Mapped[str | None] = mapped_column(sa.String(255))
    apple_subscription_id: Mapped[str | None] = mapped_column(sa.String(255), unique=True)
    stripe_updated_at: Mapped[int | None] = mapped_column(sa.BigInteger)


class StripeCustomer(UUIDv7AuditBase):
    __tablename__ = "stripe_customers"

    user_id: Mapped[uuid.UUID] = mapped_column(
        sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False, unique=True
    )
    stripe_customer_id: Mapped[str] = mapped_column(sa.String(255), nullable=False, unique=True)
    email: Mapped[str | None] = mapped_column(sa.String(254))


class StripeProduct(UUIDv7AuditBase):
    __tablename__ = "stripe_products"
    __table_args__ = (sa.CheckConstraint("credits IS NULL OR credits > 0", name="credits_positive"),)

    stripe_product_id: Mapped[str] = mapped_column(sa.String(255), nullable=False, unique=True)
    name: Mapped[str] = mapped_column(sa.String(255), nullable=False)
    description: Mapped[str | None] = mapped_column(sa.String(2000))
    active: Mapped[bool] = mapped_column(nullable=False, default=True, server_default=sa.true())
    credits: Mapped[int | None] = mapped_column()
    plan_type: Mapped[str | None] = mapped_column(sa.String(16))
    metadata_: Mapped[dict[str, Any]] = mapped_column(
        "metadata", JSONB, nullable=False, default=dict, server_default=sa.text("'{}'::jsonb")
    )
    stripe_updated_at: Mapped[int | None] = mapped_column(sa.BigInteger)


class StripePrice(UUIDv7AuditBase):
    __tablename__ = "stripe_prices"
    __table_args__ = (
        sa.CheckConstraint("unit_amount IS NULL OR unit_amount >= 0", name="unit_amount_not_negative"),
        sa.CheckConstraint("type IN ('one_time', 'recurring')", name="type_valid"),
        sa.CheckConstraint(
            "recurring_interval IS NULL OR recurring_interval IN ('day', 'week', 'month', 'year')",
            name="recurring_interval_valid",
        ),
    )

    stripe_price_id: Mapped[str] = mapped_column(sa.String(255), nullable=False, unique=True)
    stripe_product_id: Mapped[str] = mapped_column(
        sa.ForeignKey("stripe_products.stripe_product_id", ondelete="CASCADE"), nullable=False, index=True
    )
    active: Mapped[bool] = mapped_column(nullable=False, default=True, server_default=sa.true())
    currency: Mapped[str] = mapped_column(sa.String(3), nullable=False)
    unit_amount: Mapped[int | None] = mapped_column(sa.BigInteger)
    type: Mapped[str] = mapped_column(sa.String(16), nullable=False)
    recurring_interval: Mapped[str | None] = mapped_column(sa.String(8))
    recurring_interval_count: Mapped[int | None] = mapped_column()
    metadata_: Mapped[dict[str, Any]] = mapped_column(
        "metadata", JSONB, nullable=False, default=dict, server_default=sa.text("'{}'::jsonb")
    )
    stripe_updated_at: Mapped[int | None] = mapped_column(sa.BigInteger)


class Payment(UUIDv7AuditBase):
    __tablename__ = "payments"
    __table_args__ = (
        sa.Index("ix_payments_status", "status"),
        sa.Index("ix_payments_created_at", "created_at"),
        sa.CheckConstraint("amount > 0", name="positive_amount"),
        in_list("status", PAYMENT_STATUSES, "status_valid"),
        in_list("kind", PAYMENT_KINDS, "kind_valid"),
    )

    user_id: Mapped[uuid.UUID] = user_fk()
    kind: Mapped[str] = mapped_column(sa.String(16), nullable=False)
    status: Mapped[str] = mapped_column(sa.String(16), nullable=False)
    amount: Mapped[int] = mapped_column(sa.BigInteger, nullable=False)
    currency: Mapped[str] = mapped_column(sa.String(3), nullable=False, default="usd", server_default="usd")
    credits: Mapped[int | None] = mapped_column()
    description: Mapped[str | None] = mapped_column(sa.String(500))
    stripe_payment_intent_id: Mapped[str | None] = mapped_column(sa.String(255), index=True)
    stripe_checkout_session_id: Mapped[str | None] = mapped_column(sa.String(255), index=True)
    stripe_invoice_id: Mapped[str | None] = mapped_column(sa.String(255), index=True)
    stripe_charge_id: Mapped[str | None] = mapped_column(sa.String(255), index=True)
    # One row per charge, refund or failure that Stripe reports; the reference makes retries idempotent.
    external_reference: Mapped[str] = mapped_column(sa.String(255), nullable=False, unique=True)
    metadata_: Mapped[dict[str, Any]] = mapped_column(
        "metadata", JSONB, nullable=False, default=dict, server_default=sa.text("'{}'::jsonb")
    )


class StripeEvent(UUIDv7Base):
    __tablename__ = "stripe_events"
    __table_args__ = (
        sa.Index("ix_stripe_events_type", "type"),
        sa.Index("ix_stripe_events_status", "status"),
        in_list("status", EVENT_STATUSES, "status_valid"),
    )

    stripe_event_id: Mapped[str] = mapped_column(sa.String(255), nullable=False, unique=True)
    type: Mapped[str] = mapped_column(sa.String(128), nullable=False)
    api_version: Mapped[str | None] = mapped_column(sa.String(64))
    livemode: Mapped[bool] = mapped_column(nullable=False, default=False, server_default=sa.false())
    payload: Mapped[dict[str, Any]] = mapped_column(JSONB, nullable=False)
    status: Mapped[str] = mapped_column(sa.String(16), nullable=False, default="received", server_default="received")
    attempts: Mapped[int] = mapped_column(nullable=False, default=0, server_default="0")
    error: Mapped[str | None] = mapped_column(sa.Text)
    stripe_created: Mapped[int] = mapped_column(sa.BigInteger, nullable=False)
    received_at: Mapped[datetime.datetime] = created_at_column(index=False)
    processed_at: Mapped[datetime.datetime | None] = mapped_column(DateTimeUTC(timezone=True))


APPLE_NOTIFICATION_STATUSES = ("received", "processed", "failed", "ignored")


class AppleNotification(UUIDv7Base):
    """An App Store Server Notification, kept under Apple's notificationUUID so it is processed once."""

    __tablename__ = "apple_notifications"
    __table_args__ = (in_list("status", APPLE_NOTIFICATION_STATUSES, "status_valid"),)

    notification_uuid: Mapped[str] = mapped_column(sa.String(64), nullable=False, unique=True)
    notification_type: Mapped[str] = mapped_column(sa.String(64), nullable=False)
    subtype: Mapped[str | None] = mapped_column(sa.String(64))
    original_transaction_id: Mapped[str | None] = mapped_column(sa.String(64), index=True)
    payload: Mapped[dict[str, Any]] = mapped_column(JSONB, nullable=False)
    status: Mapped[str] = mapped_column(sa.String(16), nullable=False, default="received", server_default="received")
    attempts: Mapped[int] = mapped_column(nullable=False, default=0, server_default="0")
    error: Mapped[str | None] = mapped_column(sa.Text)
    received_at: Mapped[datetime.datetime] = created_at_column(index=False)
    processed_at: Mapped[datetime.datetime | None] = mapped_column(DateTimeUTC(timezone=True))
