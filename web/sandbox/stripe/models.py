"""The payments sandbox's own state, in PostgreSQL so that any web process can serve it."""

from __future__ import annotations

import datetime
from typing import Any

import sqlalchemy as sa
from advanced_alchemy.base import orm_registry
from advanced_alchemy.types import DateTimeUTC
from sqlalchemy.orm import Mapped, mapped_column

from web.base import JSONB, UUIDv7Base, created_at_column


class SandboxStripeObject(orm_registry.generate_base()):  # type: ignore[misc]
    """One Stripe object (customer, session, subscription, invoice, charge, event…) as the API shows it."""

    __tablename__ = "sandbox_stripe_objects"
    __table_args__ = (sa.Index("ix_sandbox_stripe_objects_object_type_created", "object_type", "created"),)

    id: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    object_type: Mapped[str] = mapped_column(sa.String(48), nullable=False)
    data: Mapped[dict[str, Any]] = mapped_column(JSONB, nullable=False)
    created: Mapped[int] = mapped_column(sa.BigInteger, nullable=False)


class SandboxStripeRequest(orm_registry.generate_base()):  # type: ignore[misc]
    """The first answer to an Idempotency-Key, replayed for every later request with that key."""

    __tablename__ = "sandbox_stripe_requests"

    idempotency_key: Mapped[str] = mapped_column(sa.String(255), primary_key=True)
    fingerprint: Mapped[str] = mapped_column(sa.String(64), nullable=False)
    status_code: Mapped[int] = mapped_column(nullable=False)
    response: Mapped[dict[str, Any]] = mapped_column(JSONB, nullable=False)
    created_at: Mapped[datetime.datetime] = created_at_column()


class SandboxWebhookDelivery(UUIDv7Base):
    """A signed event waiting to reach the app's webhook endpoint."""

    __tablename__ = "sandbox_webhook_deliveries"
    __table_args__ = (
        sa.Index("ix_sandbox_webhook_deliveries_pending", "next_attempt_at", postgresql_where="delivered_at IS NULL"),
    )

    event_id: Mapped[str] = mapped_column(sa.String(64), nullable=False, index=True)
    url: Mapped[str] = mapped_column(sa.String(2000), nullable=False)
    payload: Mapped[str] = mapped_column(sa.Text, nullable=False)
    attempts: Mapped[int] = mapped_column(nullable=False, default=0, server_default="0")
    next_attempt_at: Mapped[datetime.datetime] = mapped_column(DateTimeUTC(timezone=True), nullable=False)
    delivered_at: Mapped[datetime.datetime | None] = mapped_column(DateTimeUTC(timezone=True))
    last_status: Mapped[int | None] = mapped_column()
    last_error: Mapped[str | None] = mapped_column(sa.String(500))
    created_at: Mapped[datetime.datetime] = created_at_column(index=False)
