"""Connections to the creator's social-platform accounts."""

from __future__ import annotations

import datetime
import uuid
from typing import Any

import sqlalchemy as sa
from advanced_alchemy.types import DateTimeUTC
from sqlalchemy.orm import Mapped, mapped_column

from web.base import JSONB, UUIDv7AuditBase, UUIDv7Base, created_at_column, in_list, user_fk

PLATFORMS = ("sandbox", "instagram", "facebook", "tiktok", "x")
ACCOUNT_TYPES = ("business", "personal", "creator")


class SocialAccount(UUIDv7AuditBase):
    __tablename__ = "social_accounts"
    __table_args__ = (
        sa.UniqueConstraint("user_id", "platform", name="uq_social_accounts_user_platform"),
        sa.Index("ix_social_accounts_platform", "platform"),
        sa.Index("ix_social_accounts_platform_user_id", "platform_user_id"),
        in_list("platform", PLATFORMS, "platform_valid"),
        sa.CheckConstraint(
            "account_type IS NULL OR account_type IN ('business', 'personal', 'creator')",
            name="account_type_valid",
        ),
        sa.CheckConstraint("followers_count IS NULL OR followers_count >= 0", name="followers_not_negative"),
    )

    user_id: Mapped[uuid.UUID] = user_fk()
    platform: Mapped[str] = mapped_column(sa.String(16), nullable=False)
    platform_user_id: Mapped[str] = mapped_column(sa.String(128), nullable=False)
    username: Mapped[str] = mapped_column(sa.String(128), nullable=False)
    display_name: Mapped[str | None] = mapped_column(sa.String(200))
    account_type: Mapped[str | None] = mapped_column(sa.String(16))
    followers_count: Mapped[int | None] = mapped_column(sa.BigInteger)
    # Encrypted at the application level (authenticated encryption); never plaintext.
    access_token: Mapped[bytes | None] = mapped_column(sa.LargeBinary)
    refresh_token: Mapped[bytes | None] = mapped_column(sa.LargeBinary)
    token_expires_at: Mapped[datetime.datetime | None] = mapped_column(DateTimeUTC(timezone=True))
    scopes: Mapped[str | None] = mapped_column(sa.String(1000))
    # What the platform said alongside the token that is not secret (e.g. the Facebook Page it acts for).
    token_extra: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    is_active: Mapped[bool] = mapped_column(nullable=False, default=True, server_default=sa.true())
    needs_reconnect: Mapped[bool] = mapped_column(nullable=False, default=False, server_default=sa.false())
    last_error: Mapped[str | None] = mapped_column(sa.String(500))


class OAuthState(UUIDv7Base):
    """One started connection: its `state` is bound to the browser session and used once."""

    __tablename__ = "oauth_states"
    __table_args__ = (
        sa.Index("ix_oauth_states_expires_at", "expires_at"),
        in_list("platform", PLATFORMS, "platform_valid"),
    )

    state_hash: Mapped[str] = mapped_column(sa.String(64), nullable=False, unique=True)
    session_id: Mapped[uuid.UUID] = mapped_column(
        sa.ForeignKey("sessions.id", ondelete="CASCADE"), nullable=False, index=True
    )
    user_id: Mapped[uuid.UUID] = user_fk()
    platform: Mapped[str] = mapped_column(sa.String(16), nullable=False)
    # The PKCE verifier, encrypted like the tokens.
    code_verifier: Mapped[bytes | None] = mapped_column(sa.LargeBinary)
    created_at: Mapped[datetime.datetime] = created_at_column(index=False)
    expires_at: Mapped[datetime.datetime] = mapped_column(DateTimeUTC(timezone=True), nullable=False)
    used_at: Mapped[datetime.datetime | None] = mapped_column(DateTimeUTC(timezone=True))
