"""Column helpers shared by every feature's models."""

from __future__ import annotations

import datetime
from typing import Any

import sqlalchemy as sa
from advanced_alchemy.base import UUIDv7AuditBase, UUIDv7Base
from advanced_alchemy.types import DateTimeUTC
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

__all__ = ["JSONB", "UUIDv7AuditBase", "UUIDv7Base", "created_at_column", "in_list", "user_fk"]


def user_fk(*, nullable: bool = False, ondelete: str = "CASCADE", index: bool = True) -> Mapped[Any]:
    return mapped_column(sa.ForeignKey("users.id", ondelete=ondelete), nullable=nullable, index=index)


def created_at_column(*, index: bool = True) -> Mapped[datetime.datetime]:
    """Set by the database at insert time, so append-only rows sort in commit order."""
    return mapped_column(
        DateTimeUTC(timezone=True), server_default=sa.text("clock_timestamp()"), nullable=False, index=index
    )


def in_list(column: str, values: tuple[str, ...], name: str) -> sa.CheckConstraint:
    quoted = ", ".join(f"'{value}'" for value in values)
    return sa.CheckConstraint(f"{column} IN ({quoted})", name=name)
