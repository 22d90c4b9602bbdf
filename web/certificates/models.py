"""The public log: every draw's opened, sealed and final records, and the witnesses' cosignatures of its heads."""

from __future__ import annotations

import datetime
import uuid
from typing import Any

import sqlalchemy as sa
from advanced_alchemy.base import orm_registry
from sqlalchemy.dialects import postgresql
from sqlalchemy.orm import Mapped, mapped_column

from web.base import JSONB, created_at_column, in_list
from web.fairness.log import KINDS


class LogRecord(orm_registry.generate_base()):  # type: ignore[misc]
    """One signed record; `head` is the log's head once it is appended (docs/fairness.md, the log)."""

    __tablename__ = "log_records"
    __table_args__ = (
        # One record of each kind per draw: a second seal of a draw cannot be appended.
        sa.UniqueConstraint("draw_id", "kind", name="uq_log_records_draw_kind"),
        in_list("kind", KINDS, "kind_valid"),
        sa.CheckConstraint("seq >= 1", name="seq_positive"),
        sa.Index("ix_log_records_subjects", "subjects", postgresql_using="gin"),
    )

    seq: Mapped[int] = mapped_column(sa.BigInteger, primary_key=True, autoincrement=False)
    kind: Mapped[str] = mapped_column(sa.String(16), nullable=False)
    # No foreign key: the log outlives the draws it records (a deleted account's draws stay in it).
    draw_id: Mapped[uuid.UUID] = mapped_column(nullable=False)
    record: Mapped[dict[str, Any]] = mapped_column(JSONB, nullable=False)
    record_hash: Mapped[str] = mapped_column(sa.String(64), nullable=False, unique=True)
    head: Mapped[str] = mapped_column(sa.String(64), nullable=False)
    # The subjects an opened record names (posts, files), to count the runs on each.
    subjects: Mapped[list[str]] = mapped_column(
        postgresql.ARRAY(sa.String(300)), nullable=False, default=list, server_default=sa.text("'{}'")
    )
    created_at: Mapped[datetime.datetime] = created_at_column()


class LogCosignature(orm_registry.generate_base()):  # type: ignore[misc]
    """A witness's cosignature of the log's checkpoint at `size`."""

    __tablename__ = "log_cosignatures"
    __table_args__ = (sa.Index("ix_log_cosignatures_witness_size", "witness", "size"),)

    id: Mapped[int] = mapped_column(sa.BigInteger, sa.Identity(), primary_key=True)
    # The witness's verifier key text (name+hash+key).
    witness: Mapped[str] = mapped_column(sa.String(300), nullable=False)
    size: Mapped[int] = mapped_column(sa.BigInteger, nullable=False)
    head: Mapped[str] = mapped_column(sa.String(64), nullable=False)
    checkpoint: Mapped[str] = mapped_column(sa.Text, nullable=False)
    cosignature: Mapped[str] = mapped_column(sa.Text, nullable=False)
    timestamp: Mapped[int] = mapped_column(sa.BigInteger, nullable=False)
    created_at: Mapped[datetime.datetime] = created_at_column(index=False)
