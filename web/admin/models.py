"""What administrators write and what the system measures."""

from __future__ import annotations

import datetime
import uuid
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from web.base import JSONB, UUIDv7Base, created_at_column, in_list, user_fk

METRIC_TYPES = ("daily_draws", "user_signups", "revenue", "avg_participants_per_draw", "error_rate")


class AdminNote(UUIDv7Base):
    __tablename__ = "admin_notes"
    __table_args__ = (
        sa.Index("ix_admin_notes_is_flagged", "is_flagged"),
        sa.CheckConstraint("char_length(note) BETWEEN 1 AND 5000", name="note_length"),
    )

    user_id: Mapped[uuid.UUID] = user_fk()
    # The note outlives the admin who wrote it.
    admin_id: Mapped[uuid.UUID | None] = user_fk(nullable=True, ondelete="SET NULL")
    note: Mapped[str] = mapped_column(sa.Text, nullable=False)
    is_flagged: Mapped[bool] = mapped_column(nullable=False, default=False, server_default=sa.false())
    created_at: Mapped[datetime.datetime] = created_at_column(index=False)


class AuditLog(UUIDv7Base):
    __tablename__ = "audit_logs"
    __table_args__ = (sa.Index("ix_audit_logs_action", "action"),)

    # The audit trail is kept when either party's account is deleted.
    admin_id: Mapped[uuid.UUID | None] = user_fk(nullable=True, ondelete="SET NULL")
    user_id: Mapped[uuid.UUID | None] = user_fk(nullable=True, ondelete="SET NULL")
    action: Mapped[str] = mapped_column(sa.String(64), nullable=False)
    details: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    ip_address: Mapped[str | None] = mapped_column(sa.String(64))
    created_at: Mapped[datetime.datetime] = created_at_column()


class SystemMetric(UUIDv7Base):
    __tablename__ = "system_metrics"
    __table_args__ = (
        sa.UniqueConstraint("metric_type", "day", name="uq_system_metrics_type_day"),
        in_list("metric_type", METRIC_TYPES, "metric_type_valid"),
    )

    metric_type: Mapped[str] = mapped_column(sa.String(32), nullable=False)
    day: Mapped[datetime.date] = mapped_column(sa.Date, nullable=False, index=True)
    value: Mapped[Decimal] = mapped_column(sa.Numeric(14, 4), nullable=False)
    metadata_: Mapped[dict[str, Any]] = mapped_column(
        "metadata", JSONB, nullable=False, default=dict, server_default=sa.text("'{}'::jsonb")
    )
    created_at: Mapped[datetime.datetime] = created_at_column(index=False)
