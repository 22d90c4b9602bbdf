"""Users, their sessions, one-time tokens and activity."""

from __future__ import annotations

import datetime
import uuid
from typing import Any

import sqlalchemy as sa
from advanced_alchemy.types import DateTimeUTC
from sqlalchemy.orm import Mapped, deferred, mapped_column

from web.base import JSONB, UUIDv7AuditBase, UUIDv7Base, created_at_column, in_list, user_fk

ROLES = ("user", "premium", "admin", "banned")
TOKEN_PURPOSES = ("email_verification", "password_reset")


class User(UUIDv7AuditBase):
    __tablename__ = "users"
    __table_args__ = (
        sa.Index("uq_users_email_lower", sa.text("lower(email)"), unique=True),
        sa.Index("ix_users_email", "email"),
        sa.Index("ix_users_created_at", "created_at"),
        sa.Index("ix_users_email_verified", "email_verified"),
        sa.Index("ix_users_role", "role"),
        in_list("role", ROLES, "role_valid"),
        sa.CheckConstraint("credit_balance >= 0", name="credit_balance_not_negative"),
        sa.CheckConstraint("length(email) <= 254", name="email_length"),
    )

    email: Mapped[str] = mapped_column(sa.String(254), nullable=False)
    password_hash: Mapped[str] = deferred(mapped_column(sa.String(255), nullable=False))
    full_name: Mapped[str | None] = mapped_column(sa.String(120))
    avatar_url: Mapped[str | None] = mapped_column(sa.String(500))
    role: Mapped[str] = mapped_column(sa.String(16), nullable=False, default="user", server_default="user")
    email_verified: Mapped[bool] = mapped_column(nullable=False, default=False, server_default=sa.false())
    email_verified_at: Mapped[datetime.datetime | None] = mapped_column(DateTimeUTC(timezone=True))
    # Kept in step with the credits ledger inside the same transaction; see credits.services.
    credit_balance: Mapped[int] = mapped_column(nullable=False, default=0, server_default="0")
    last_login_at: Mapped[datetime.datetime | None] = mapped_column(DateTimeUTC(timezone=True))

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"

    @property
    def is_banned(self) -> bool:
        return self.role == "banned"


class Session(UUIDv7Base):
    __tablename__ = "sessions"
    __table_args__ = (
        sa.Index("ix_sessions_expires_at", "expires_at"),
        sa.CheckConstraint("expires_at > created_at", name="future_expiration"),
    )

    user_id: Mapped[uuid.UUID] = user_fk()
    # SHA-256 of the cookie token; the token itself is never stored.
    token_hash: Mapped[bytes] = mapped_column(sa.LargeBinary(32), nullable=False, unique=True)
    created_at: Mapped[datetime.datetime] = created_at_column(index=False)
    expires_at: Mapped[datetime.datetime] = mapped_column(DateTimeUTC(timezone=True), nullable=False)
    last_seen_at: Mapped[datetime.datetime] = mapped_column(DateTimeUTC(timezone=True), nullable=False)
    ip_address: Mapped[str | None] = mapped_column(sa.String(64))
    user_agent: Mapped[str | None] = mapped_column(sa.String(512))


class VerificationToken(UUIDv7Base):
    __tablename__ = "verification_tokens"
    __table_args__ = (
        in_list("purpose", TOKEN_PURPOSES, "purpose_valid"),
        sa.Index("ix_verification_tokens_expires_at", "expires_at"),
    )

    user_id: Mapped[uuid.UUID] = user_fk()
    identifier: Mapped[str] = mapped_column(sa.String(254), nullable=False)
    purpose: Mapped[str] = mapped_column(sa.String(32), nullable=False)
    token_hash: Mapped[bytes] = mapped_column(sa.LargeBinary(32), nullable=False, unique=True)
    created_at: Mapped[datetime.datetime] = created_at_column(index=False)
    expires_at: Mapped[datetime.datetime] = mapped_column(DateTimeUTC(timezone=True), nullable=False)
    used_at: Mapped[datetime.datetime | None] = mapped_column(DateTimeUTC(timezone=True))


class UserActivity(UUIDv7Base):
    __tablename__ = "user_activity"
    __table_args__ = (sa.Index("ix_user_activity_action", "action"),)

    user_id: Mapped[uuid.UUID] = user_fk()
    action: Mapped[str] = mapped_column(sa.String(64), nullable=False)
    data: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    ip_address: Mapped[str | None] = mapped_column(sa.String(64))
    created_at: Mapped[datetime.datetime] = created_at_column()
