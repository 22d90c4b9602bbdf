"""Usernames a creator never wants to see win."""

from __future__ import annotations

import uuid

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from web.base import UUIDv7AuditBase, in_list, user_fk
from web.social.models import PLATFORMS

BLACKLIST_PLATFORMS = (*PLATFORMS, "all")


class BlacklistEntry(UUIDv7AuditBase):
    __tablename__ = "blacklist"
    __table_args__ = (
        sa.UniqueConstraint("user_id", "username", "platform", name="uq_blacklist_user_username_platform"),
        sa.Index("ix_blacklist_platform", "platform"),
        sa.Index("ix_blacklist_username", "username"),
        in_list("platform", BLACKLIST_PLATFORMS, "platform_valid"),
    )

    user_id: Mapped[uuid.UUID] = user_fk()
    username: Mapped[str] = mapped_column(sa.String(128), nullable=False)
    platform: Mapped[str] = mapped_column(sa.String(16), nullable=False)
    reason: Mapped[str | None] = mapped_column(sa.String(500))
    is_active: Mapped[bool] = mapped_column(nullable=False, default=True, server_default=sa.true())
