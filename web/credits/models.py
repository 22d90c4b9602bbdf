"""The credits ledger: one signed row per movement, with the balance after it."""

from __future__ import annotations

import datetime
import uuid
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from web.base import JSONB, UUIDv7Base, created_at_column, in_list, user_fk

TRANSACTION_TYPES = ("purchase", "usage", "refund", "bonus", "subscription")


class Credit(UUIDv7Base):
    __tablename__ = "credits"
    __table_args__ = (
        in_list("transaction_type", TRANSACTION_TYPES, "transaction_type_valid"),
        sa.CheckConstraint("amount <> 0", name="amount_not_zero"),
        sa.CheckConstraint("balance >= 0", name="balance_not_negative"),
        sa.Index("ix_credits_transaction_type", "transaction_type"),
        sa.Index("ix_credits_user_id_created_at", "user_id", "created_at"),
    )

    user_id: Mapped[uuid.UUID] = user_fk()
    amount: Mapped[int] = mapped_column(nullable=False)
    balance: Mapped[int] = mapped_column(nullable=False)
    transaction_type: Mapped[str] = mapped_column(sa.String(16), nullable=False)
    description: Mapped[str] = mapped_column(sa.String(200), nullable=False, default="", server_default="")
    metadata_: Mapped[dict[str, Any]] = mapped_column(
        "metadata", JSONB, nullable=False, default=dict, server_default=sa.text("'{}'::jsonb")
    )
    idempotency_key: Mapped[str] = mapped_column(sa.String(200), nullable=False, unique=True)
    created_at: Mapped[datetime.datetime] = created_at_column()
