"""Draws, the entries they collected, their history and announcements."""

from __future__ import annotations

import datetime
import uuid
from typing import Any

import sqlalchemy as sa
from advanced_alchemy.base import orm_registry
from advanced_alchemy.types import DateTimeUTC
from sqlalchemy.orm import Mapped, mapped_column

from web.base import JSONB, UUIDv7AuditBase, UUIDv7Base, created_at_column, in_list, user_fk
from web.fairness.entries import EXCLUSION_REASONS
from web.social.models import PLATFORMS

DRAW_STATUSES = ("pending", "processing", "completed", "failed", "cancelled")
DRAW_PLATFORMS = (*PLATFORMS, "list", "multi")
HISTORY_ACTIONS = ("created", "started", "sealed", "completed", "failed", "cancelled", "retried")
ANNOUNCEMENT_STATUSES = ("draft", "scheduled", "published", "failed")
ENGAGEMENT_KINDS = ("like", "follow")


class Draw(UUIDv7AuditBase):
    __tablename__ = "draws"
    __table_args__ = (
        sa.Index("ix_draws_status", "status"),
        sa.Index("ix_draws_platform", "platform"),
        sa.Index("ix_draws_created_at", "created_at"),
        sa.Index("ix_draws_executed_at", "executed_at"),
        sa.Index("ix_draws_scheduled_at", "scheduled_at"),
        sa.Index("ix_draws_completed_at", "completed_at"),
        in_list("status", DRAW_STATUSES, "status_valid"),
        in_list("platform", DRAW_PLATFORMS, "platform_valid"),
        sa.CheckConstraint("credits_used >= 0", name="credits_used_not_negative"),
        sa.CheckConstraint("winners_count >= 1", name="winners_count_positive"),
        sa.CheckConstraint("alternates_count >= 0", name="alternates_count_not_negative"),
        sa.CheckConstraint("participants_count >= 0 AND eligible_count >= 0", name="counts_not_negative"),
    )

    user_id: Mapped[uuid.UUID] = user_fk()
    social_account_id: Mapped[uuid.UUID | None] = mapped_column(
        sa.ForeignKey("social_accounts.id", ondelete="SET NULL"), index=True
    )
    title: Mapped[str] = mapped_column(sa.String(200), nullable=False)
    platform: Mapped[str] = mapped_column(sa.String(16), nullable=False)
    post_id: Mapped[str | None] = mapped_column(sa.String(200))
    post_url: Mapped[str | None] = mapped_column(sa.String(2000))
    sources: Mapped[list[dict[str, Any]]] = mapped_column(
        JSONB, nullable=False, default=list, server_default=sa.text("'[]'::jsonb")
    )
    config: Mapped[dict[str, Any]] = mapped_column(
        JSONB, nullable=False, default=dict, server_default=sa.text("'{}'::jsonb")
    )
    status: Mapped[str] = mapped_column(sa.String(16), nullable=False, default="pending", server_default="pending")
    winners_count: Mapped[int] = mapped_column(nullable=False, default=1, server_default="1")
    alternates_count: Mapped[int] = mapped_column(nullable=False, default=0, server_default="0")
    winners: Mapped[list[dict[str, Any]]] = mapped_column(
        JSONB, nullable=False, default=list, server_default=sa.text("'[]'::jsonb")
    )
    alternates: Mapped[list[dict[str, Any]]] = mapped_column(
        JSONB, nullable=False, default=list, server_default=sa.text("'[]'::jsonb")
    )
    participants_count: Mapped[int] = mapped_column(nullable=False, default=0, server_default="0")
    eligible_count: Mapped[int] = mapped_column(nullable=False, default=0, server_default="0")
    progress: Mapped[dict[str, Any]] = mapped_column(
        JSONB, nullable=False, default=dict, server_default=sa.text("'{}'::jsonb")
    )
    credits_used: Mapped[int] = mapped_column(nullable=False, default=0, server_default="0")
    commitment: Mapped[str | None] = mapped_column(sa.String(64))
    secret: Mapped[bytes | None] = mapped_column(sa.LargeBinary)
    merkle_root: Mapped[str | None] = mapped_column(sa.String(64))
    certificate: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    certificate_hash: Mapped[str | None] = mapped_column(sa.String(64), unique=True)
    # The secret of the public `/watch/<token>` page; None while the creator has no spectator link.
    spectator_token: Mapped[str | None] = mapped_column(sa.String(64), unique=True)
    video_url: Mapped[str | None] = mapped_column(sa.String(2000))
    error: Mapped[str | None] = mapped_column(sa.String(1000))
    scheduled_at: Mapped[datetime.datetime | None] = mapped_column(DateTimeUTC(timezone=True))
    executed_at: Mapped[datetime.datetime | None] = mapped_column(DateTimeUTC(timezone=True))
    completed_at: Mapped[datetime.datetime | None] = mapped_column(DateTimeUTC(timezone=True))
    lease_owner: Mapped[str | None] = mapped_column(sa.String(128))
    lease_expires_at: Mapped[datetime.datetime | None] = mapped_column(DateTimeUTC(timezone=True))
    fetch_cursor: Mapped[dict[str, Any] | None] = mapped_column(JSONB)


class DrawParticipant(UUIDv7Base):
    __tablename__ = "draw_participants"
    __table_args__ = (
        # A comment fetched twice (a page re-read, a platform repeating itself) is one entry. Led by draw_id and then
        # the person, it serves every lookup of a draw's entries, finds a person's earlier entries as a page is
        # stored, and lists the entries in canonical order: no other index slows down storing them.
        sa.Index("uq_draw_participants_entry", "draw_id", "platform", "platform_user_id", "comment_id", unique=True),
        sa.CheckConstraint(
            "exclusion_reason IS NULL OR exclusion_reason IN ("
            + ", ".join(f"'{reason}'" for reason in EXCLUSION_REASONS)
            + ")",
            name="exclusion_reason_valid",
        ),
        sa.CheckConstraint("mentions_count >= 0", name="mentions_not_negative"),
        # Room in each page for a re-judged row's new version (see migration 0006).
        {"postgresql_with": {"fillfactor": 85}},
    )

    # No foreign key: a million entries would each pay for its check. Entries are only written under the draw's
    # lease, whose check locks the draw's row, and the draws_delete_entries trigger deletes them with their draw
    # (migration 0007).
    draw_id: Mapped[uuid.UUID] = mapped_column(nullable=False)
    # Identifiers compare byte by byte ("C"), as the canonical order does (docs/fairness.md).
    platform: Mapped[str] = mapped_column(sa.String(32, collation="C"), nullable=False)
    platform_user_id: Mapped[str] = mapped_column(sa.String(128, collation="C"), nullable=False)
    username: Mapped[str] = mapped_column(sa.String(128), nullable=False)
    comment_id: Mapped[str | None] = mapped_column(sa.String(128, collation="C"))
    comment: Mapped[str | None] = mapped_column(sa.Text)
    commented_at: Mapped[datetime.datetime | None] = mapped_column(DateTimeUTC(timezone=True))
    mentions_count: Mapped[int] = mapped_column(nullable=False, default=0, server_default="0")
    followers_count: Mapped[int | None] = mapped_column(sa.BigInteger)
    is_business: Mapped[bool | None] = mapped_column()
    is_eligible: Mapped[bool | None] = mapped_column()
    exclusion_reason: Mapped[str | None] = mapped_column(sa.String(32))
    # Which of the draw's sources the entry came from (None for an uploaded list's rows).
    source_index: Mapped[int | None] = mapped_column(sa.SmallInteger)
    # The entry's Merkle leaf (web.fairness.entries.leaf_hash), computed as the engine stores it.
    leaf_hash: Mapped[bytes | None] = mapped_column(sa.LargeBinary)


class DrawEngagement(orm_registry.generate_base()):  # type: ignore[misc]
    """Who liked a source post, or follows a source's account, as fetched for a draw's rules."""

    __tablename__ = "draw_engagements"
    __table_args__ = (in_list("kind", ENGAGEMENT_KINDS, "kind_valid"),)

    # No foreign key, as for DrawParticipant: deleted with their draw by the draws_delete_entries trigger.
    draw_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(sa.String(8), primary_key=True)
    # A like belongs to the post of that source; a follow to the first source on that account.
    source_index: Mapped[int] = mapped_column(sa.SmallInteger, primary_key=True)
    platform_user_id: Mapped[str] = mapped_column(sa.String(128, collation="C"), primary_key=True)


class DrawBlacklistEntry(orm_registry.generate_base()):  # type: ignore[misc]
    """The creator's blacklist as it stood when the draw was created: later changes do not apply to the draw."""

    __tablename__ = "draw_blacklists"

    draw_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("draws.id", ondelete="CASCADE"), primary_key=True)
    platform: Mapped[str] = mapped_column(sa.String(16), primary_key=True)
    username: Mapped[str] = mapped_column(sa.String(128), primary_key=True)


class DrawHistory(UUIDv7Base):
    __tablename__ = "draw_history"
    __table_args__ = (
        sa.Index("ix_draw_history_action", "action"),
        in_list("action", HISTORY_ACTIONS, "action_valid"),
    )

    draw_id: Mapped[uuid.UUID] = mapped_column(
        sa.ForeignKey("draws.id", ondelete="CASCADE"), nullable=False, index=True
    )
    user_id: Mapped[uuid.UUID] = user_fk()
    action: Mapped[str] = mapped_column(sa.String(16), nullable=False)
    details: Mapped[dict[str, Any]] = mapped_column(
        JSONB, nullable=False, default=dict, server_default=sa.text("'{}'::jsonb")
    )
    metadata_: Mapped[dict[str, Any]] = mapped_column(
        "metadata", JSONB, nullable=False, default=dict, server_default=sa.text("'{}'::jsonb")
    )
    created_at: Mapped[datetime.datetime] = created_at_column()


class Announcement(UUIDv7AuditBase):
    __tablename__ = "announcements"
    __table_args__ = (
        sa.Index("ix_announcements_status", "status"),
        sa.Index("ix_announcements_created_at", "created_at"),
        in_list("status", ANNOUNCEMENT_STATUSES, "status_valid"),
        sa.CheckConstraint("char_length(content) <= 500", name="content_length"),
    )

    draw_id: Mapped[uuid.UUID] = mapped_column(
        sa.ForeignKey("draws.id", ondelete="CASCADE"), nullable=False, index=True
    )
    user_id: Mapped[uuid.UUID] = user_fk()
    platform: Mapped[str | None] = mapped_column(sa.String(16))
    content: Mapped[str] = mapped_column(sa.String(500), nullable=False)
    status: Mapped[str] = mapped_column(sa.String(16), nullable=False, default="draft", server_default="draft")
    metadata_: Mapped[dict[str, Any]] = mapped_column(
        "metadata", JSONB, nullable=False, default=dict, server_default=sa.text("'{}'::jsonb")
    )
    scheduled_for: Mapped[datetime.datetime | None] = mapped_column(DateTimeUTC(timezone=True))
    published_at: Mapped[datetime.datetime | None] = mapped_column(DateTimeUTC(timezone=True))
