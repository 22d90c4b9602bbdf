"""The sandbox platform's own state: its accounts, their posts, OAuth grants and published replies.

Comments, likers and followers are not stored: they are generated from the post's or the
account's id on every request, so a post may have millions of them.
"""

from __future__ import annotations

import datetime
import uuid
from typing import Any

import sqlalchemy as sa
from advanced_alchemy.types import DateTimeUTC
from sqlalchemy.orm import Mapped, mapped_column

from web.base import JSONB, UUIDv7Base, created_at_column, in_list

GRANT_KINDS = ("code", "access", "refresh")


class SandboxAccount(UUIDv7Base):
    __tablename__ = "sandbox_accounts"

    platform_user_id: Mapped[str] = mapped_column(sa.String(32), nullable=False, unique=True)
    username: Mapped[str] = mapped_column(sa.String(64), nullable=False, unique=True)
    display_name: Mapped[str] = mapped_column(sa.String(200), nullable=False)
    account_type: Mapped[str] = mapped_column(sa.String(16), nullable=False, default="creator")
    followers_count: Mapped[int] = mapped_column(sa.BigInteger, nullable=False, default=0)
    created_at: Mapped[datetime.datetime] = created_at_column(index=False)


class SandboxPost(UUIDv7Base):
    __tablename__ = "sandbox_posts"
    __table_args__ = (sa.CheckConstraint("comments_count >= 0 AND likes_count >= 0", name="counts_not_negative"),)

    post_id: Mapped[str] = mapped_column(sa.String(40), nullable=False, unique=True)
    account_id: Mapped[uuid.UUID] = mapped_column(
        sa.ForeignKey("sandbox_accounts.id", ondelete="CASCADE"), nullable=False, index=True
    )
    caption: Mapped[str] = mapped_column(sa.String(2200), nullable=False)
    comments_count: Mapped[int] = mapped_column(sa.BigInteger, nullable=False)
    likes_count: Mapped[int] = mapped_column(sa.BigInteger, nullable=False)
    # Switches for tests: rate limits, server errors, slow or malformed pages.
    behaviour: Mapped[dict[str, Any]] = mapped_column(
        JSONB, nullable=False, default=dict, server_default=sa.text("'{}'::jsonb")
    )
    posted_at: Mapped[datetime.datetime] = mapped_column(DateTimeUTC(timezone=True), nullable=False)


class SandboxGrant(UUIDv7Base):
    """An authorization code, access token or refresh token the sandbox issued (only its hash)."""

    __tablename__ = "sandbox_grants"
    __table_args__ = (
        sa.Index("ix_sandbox_grants_family_id", "family_id"),
        in_list("kind", GRANT_KINDS, "kind_valid"),
    )

    kind: Mapped[str] = mapped_column(sa.String(8), nullable=False)
    token_hash: Mapped[str] = mapped_column(sa.String(64), nullable=False, unique=True)
    # Every token issued from one authorization code: a replayed code revokes them all (RFC 9700).
    family_id: Mapped[uuid.UUID] = mapped_column(nullable=False)
    account_id: Mapped[uuid.UUID] = mapped_column(
        sa.ForeignKey("sandbox_accounts.id", ondelete="CASCADE"), nullable=False, index=True
    )
    client_id: Mapped[str] = mapped_column(sa.String(64), nullable=False)
    redirect_uri: Mapped[str | None] = mapped_column(sa.String(2000))
    code_challenge: Mapped[str | None] = mapped_column(sa.String(128))
    scope: Mapped[str] = mapped_column(sa.String(500), nullable=False, default="")
    created_at: Mapped[datetime.datetime] = created_at_column(index=False)
    expires_at: Mapped[datetime.datetime] = mapped_column(DateTimeUTC(timezone=True), nullable=False)
    used_at: Mapped[datetime.datetime | None] = mapped_column(DateTimeUTC(timezone=True))
    revoked_at: Mapped[datetime.datetime | None] = mapped_column(DateTimeUTC(timezone=True))


class SandboxReply(UUIDv7Base):
    __tablename__ = "sandbox_replies"

    post_id: Mapped[str] = mapped_column(
        sa.ForeignKey("sandbox_posts.post_id", ondelete="CASCADE"), nullable=False, index=True
    )
    account_id: Mapped[uuid.UUID] = mapped_column(
        sa.ForeignKey("sandbox_accounts.id", ondelete="CASCADE"), nullable=False
    )
    text: Mapped[str] = mapped_column(sa.String(2200), nullable=False)
    created_at: Mapped[datetime.datetime] = created_at_column(index=False)
