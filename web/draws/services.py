"""Configuring, reading, cancelling and exporting a creator's draws (the engine runs them: web.draws.engine)."""

from __future__ import annotations

import csv
import datetime
import io
import math
import uuid
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from uuid_utils.compat import uuid7

from web.accounts.services import Client
from web.certificates.beacon import configured_chain
from web.certificates.log import append_record, with_log_entry
from web.certificates.models import LogRecord
from web.credits.services import CreditsService
from web.draws.forms import FORMULA_STARTS, EntryList, parse_post_choice
from web.draws.history import record_history
from web.draws.models import EXCLUSION_REASONS, Draw, DrawBlacklistEntry, DrawHistory, DrawParticipant
from web.draws.rules import CANONICAL_ORDER, entry_salt
from web.fairness.log import blacklist_digest, subjects
from web.fairness.sampling import new_secret
from web.fairness.timestamps import rfc3339
from web.pagination import Page
from web.settings import Settings
from web.social.models import SocialAccount
from web.social.providers import PROVIDERS
from web.social.providers.base import NotFound, NotSupported, Post, ProviderError, RateLimited
from web.social.rules import DRAW_RULES, rule_support
from web.social.services import AccountUnavailable, SocialService

ACTIVE_STATUSES = ("pending", "processing")
# The creator's active blacklist, copied for a new draw (usernames are stored normalised).
FREEZE_BLACKLIST = sa.text(
    """
    INSERT INTO draw_blacklists (draw_id, platform, username)
    SELECT :draw_id, platform, username FROM blacklist WHERE user_id = :user_id AND is_active
    ON CONFLICT DO NOTHING
    """
)
FREE_ENTRIES = 10_000
ENTRIES_PER_EXTRA_CREDIT = 100_000
EXCLUDED_PER_PAGE = 50

EXCLUSION_LABELS = {
    "blacklisted": "On your blacklist",
    "duplicate": "Already entered",
    "keyword_missing": "Keyword missing",
    "too_few_mentions": "Too few mentions",
    "too_few_followers": "Too few followers",
    "suspicious": "Suspicious account",
    "business_account": "Business account",
    "not_liked": "Did not like the post",
    "not_following": "Does not follow you",
}
# The same reasons as a visitor of a public page reads them: the organiser's blacklist, not "yours".
PUBLIC_EXCLUSION_LABELS = {
    **EXCLUSION_LABELS,
    "blacklisted": "Excluded by the organiser's blacklist",
    "not_following": "Does not follow the organiser",
}
# Rules an uploaded list can check, and why the others cannot be.
LIST_CHECKS = {"comment_keywords", "min_mentions", "one_entry_per_user"}
LIST_COLUMN_CHECKS = {"min_followers": "followers_count", "exclude_businesses": "account_type"}
LIST_REASONS = {
    "require_comment": "An uploaded list has no post to comment on: each row is an entry.",
    "require_like": "An uploaded list has no post whose likes could be checked.",
    "require_follow": "An uploaded list has no account whose followers could be checked.",
    "exclude_suspicious": "An uploaded list does not say which accounts are suspicious.",
    "min_followers": "Add a followers_count column to the file to use this filter.",
    "exclude_businesses": "Add an account_type column to the file to use this filter.",
}


async def frozen_blacklist(db: AsyncSession, draw_id: uuid.UUID) -> tuple[str, int]:
    """The digest and size of the blacklist frozen for the draw (docs/fairness.md)."""
    pairs = (
        await db.execute(
            sa.select(DrawBlacklistEntry.platform, DrawBlacklistEntry.username).where(
                DrawBlacklistEntry.draw_id == draw_id
            )
        )
    ).all()
    return blacklist_digest([(platform, username) for platform, username in pairs])


def public_source(source: dict[str, Any]) -> dict[str, Any]:
    """A source as the public log and certificate name it (without our internal account id)."""
    return {key: value for key, value in source.items() if key != "account_id"}


def opened_draw_facts(draw: Draw) -> dict[str, Any]:
    """The draw as its opened record and its certificate describe it."""
    return {
        "title": draw.title,
        "platforms": sorted({str(source.get("platform")) for source in draw.sources}),
        "sources": [public_source(source) for source in draw.sources],
        "created_at": rfc3339(draw.created_at),
    }


def draw_cost(expected_entries: int) -> int:
    """1 credit up to 10,000 entries, and 1 more for each further started 100,000."""
    return 1 + math.ceil(max(0, expected_entries - FREE_ENTRIES) / ENTRIES_PER_EXTRA_CREDIT)


def utcnow() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


# Which rules the chosen sources can check


@dataclass(frozen=True)
class RuleChoice:
    key: str
    label: str
    available: bool
    reason: str | None


def rule_choices(platforms: Iterable[str], list_columns: frozenset[str] | None = None) -> list[RuleChoice]:
    """Each rule, available only when every chosen source can check it (with the first reason why not)."""
    reasons: dict[str, str] = {}
    for platform in sorted(set(platforms)):
        if platform == "list" or platform not in PROVIDERS:
            continue
        for support in rule_support(PROVIDERS[platform]):
            if not support.available:
                reasons.setdefault(support.rule.key, support.reason or "This platform cannot check it.")
    if list_columns is not None:
        for rule in DRAW_RULES:
            column = LIST_COLUMN_CHECKS.get(rule.key)
            if rule.key in LIST_CHECKS or (column is not None and column in list_columns):
                continue
            reasons.setdefault(rule.key, LIST_REASONS[rule.key])
    return [RuleChoice(rule.key, rule.label, rule.key not in reasons, reasons.get(rule.key)) for rule in DRAW_RULES]


# The sources of a new draw


@dataclass
class ChosenSources:
    """The posts and/or list a draw gathers its entries from, as stored in Draw.sources."""

    posts: list[dict[str, Any]] = field(default_factory=list)
    entry_list: EntryList | None = None

    @property
    def platforms(self) -> set[str]:
        platforms = {post["platform"] for post in self.posts}
        if self.entry_list is not None:
            platforms.add("list")
        return platforms

    @property
    def expected_entries(self) -> int:
        if self.entry_list is not None:
            return len(self.entry_list.entries)
        return sum(post["expected_entries"] or 0 for post in self.posts)

    @property
    def draw_platform(self) -> str:
        if self.entry_list is not None:
            return "list"
        platforms = self.platforms
        return platforms.pop() if len(platforms) == 1 else "multi"

    def as_json(self) -> list[dict[str, Any]]:
        if self.entry_list is not None:
            return [
                {
                    "kind": "list",
                    "platform": "list",
                    "rows": len(self.entry_list.entries),
                    "sha256": self.entry_list.sha256,
                }
            ]
        return list(self.posts)


@dataclass(frozen=True)
class DrawEvent:
    """One row of a draw's history as the page shows it."""

    action: str
    created_at: datetime.datetime
    details: dict[str, Any]
    ip: str | None
    user_agent: str | None
    by: str | None


async def choose_sources(
    social: SocialService, user_id: uuid.UUID, ticked: list[str], urls: list[str]
) -> tuple[list[dict[str, Any]], dict[str, str]]:
    """The posts ticked among recent posts or pasted as addresses, checked with the platforms; errors by field."""
    errors: dict[str, str] = {}
    posts: dict[tuple[str, str], dict[str, Any]] = {}
    recent: dict[uuid.UUID, list[Post]] = {}
    for value in ticked:
        choice = parse_post_choice(value)
        account = await social.account_of(user_id, choice[0]) if choice else None
        if choice is None or account is None or not account.is_active:
            errors.setdefault("post", "This post is not on one of your connected accounts. Reload the page.")
            continue
        try:
            if account.id not in recent:
                recent[account.id] = await social.recent_posts(account)
        except (AccountUnavailable, ProviderError) as exc:
            errors.setdefault("post", _platform_problem(account, exc))
            continue
        post = next((post for post in recent[account.id] if post.id == choice[1]), None)
        if post is None:
            errors.setdefault("post", "A ticked post is no longer among the account's recent posts: paste its address.")
            continue
        posts.setdefault((str(account.id), post.id), _post_source(account, post))
    accounts = await social.accounts_of(user_id) if urls else []
    for url in urls:
        found, problem = None, None
        for account in accounts:
            try:
                found = await social.resolve_post(account, url)
            except (NotFound, NotSupported):
                continue
            except (AccountUnavailable, ProviderError) as exc:
                problem = _platform_problem(account, exc)
                continue
            posts.setdefault((str(account.id), found.id), _post_source(account, found))
            break
        if found is None:
            errors.setdefault(
                "post_urls",
                problem or f"None of your connected accounts has a post at {url[:120]}. Check the address.",
            )
    return list(posts.values()), errors


def _post_source(account: SocialAccount, post: Post) -> dict[str, Any]:
    return {
        "kind": "post",
        "platform": account.platform,
        "account_id": str(account.id),
        "post_id": post.id,
        "post_url": post.url,
        "expected_entries": post.comments_count,
    }


def _platform_problem(account: SocialAccount, exc: Exception) -> str:
    if isinstance(exc, AccountUnavailable):
        return exc.message
    if isinstance(exc, RateLimited):
        return f"{PROVIDERS[account.platform].name} asks us to wait {int(exc.retry_after) + 1} s; try again then."
    message = exc.message if isinstance(exc, ProviderError) else str(exc)
    return f"{PROVIDERS[account.platform].name} could not be read: {message}"


class DrawService:
    def __init__(self, db: AsyncSession) -> None:
        self.db = db

    async def create(
        self,
        user_id: uuid.UUID,
        *,
        title: str,
        sources: ChosenSources,
        config: dict[str, Any],
        scheduled_at: datetime.datetime | None,
        client: Client,
        settings: Settings,
    ) -> Draw:
        """The pending draw, its frozen blacklist, its entries when uploaded, its opened record in the public log,
        and a nudge to idle workers: one transaction."""
        salt_key = new_secret()
        first_post = sources.posts[0] if sources.posts else None
        draw = Draw(
            id=uuid7(),
            user_id=user_id,
            social_account_id=uuid.UUID(first_post["account_id"]) if first_post else None,
            title=title,
            platform=sources.draw_platform,
            post_id=first_post["post_id"] if first_post and len(sources.posts) == 1 else None,
            post_url=first_post["post_url"] if first_post and len(sources.posts) == 1 else None,
            sources=sources.as_json(),
            config=config,
            status="pending",
            winners_count=config["winners_count"],
            alternates_count=config["alternates_count"],
            progress={"stage": "queued", "fetched": 0, "expected": sources.expected_entries or None},
            secret=salt_key,
            scheduled_at=scheduled_at,
        )
        self.db.add(draw)
        await self.db.flush()
        if sources.entry_list is not None:
            await self._insert_list(draw.id, sources.entry_list)
        opened = await self.open(draw, settings)
        draw.progress = with_log_entry(draw.progress, opened)
        record_history(
            self.db,
            draw,
            "created",
            {
                "opened": opened.record_hash,
                "log_seq": opened.seq,
                "cost": draw_cost(sources.expected_entries),
                "expected_entries": sources.expected_entries,
                "scheduled_at": scheduled_at.isoformat() if scheduled_at else None,
            },
            client,
        )
        await self.db.execute(sa.select(sa.func.pg_notify("draw_queue", str(draw.id))))
        await self.db.commit()
        return draw

    async def open(self, draw: Draw, settings: Settings) -> LogRecord:
        """Freeze the creator's blacklist for this draw and append the draw's opened record to the public log."""
        await self.db.execute(FREEZE_BLACKLIST, {"draw_id": draw.id, "user_id": draw.user_id})
        digest, count = await frozen_blacklist(self.db, draw.id)
        return await append_record(
            self.db,
            settings,
            "opened",
            draw.id,
            subjects=subjects(draw.sources),
            draw=opened_draw_facts(draw),
            config=draw.config,
            blacklist={"sha256": digest, "count": count},
            scheduled_at=rfc3339(draw.scheduled_at) if draw.scheduled_at else None,
            beacon={"chain_hash": configured_chain(settings).chain_hash},
        )

    async def _insert_list(self, draw_id: uuid.UUID, entry_list: EntryList) -> None:
        """COPY, inside the draw's transaction: a list of 100,000 rows goes in with the draw or not at all."""
        connection = await self.db.connection()
        raw = await connection.get_raw_connection()
        records = [
            (
                uuid7(),
                draw_id,
                entry.platform,
                entry.platform_user_id,
                entry.username,
                f"row-{entry.row}",
                entry.comment,
                entry.mentions_count,
                entry.followers_count,
                entry.is_business,
                0,
            )
            for entry in entry_list.entries
        ]
        await raw.driver_connection.copy_records_to_table(  # type: ignore[union-attr]
            "draw_participants",
            records=records,
            columns=[
                "id",
                "draw_id",
                "platform",
                "platform_user_id",
                "username",
                "comment_id",
                "comment",
                "mentions_count",
                "followers_count",
                "is_business",
                "source_index",
            ],
        )

    async def owned(self, user_id: uuid.UUID, draw_id: uuid.UUID) -> Draw | None:
        """The user's own draw, or None (another creator's draw does not exist for them)."""
        return await self.db.scalar(sa.select(Draw).where(Draw.id == draw_id, Draw.user_id == user_id))

    async def cancel(self, user_id: uuid.UUID, draw_id: uuid.UUID, client: Client, settings: Settings) -> Draw | None:
        """Stop a pending or processing draw; credits already taken go back once. None when not theirs."""
        draw = await self.db.scalar(
            sa.select(Draw).where(Draw.id == draw_id, Draw.user_id == user_id).with_for_update()
        )
        if draw is None or draw.status not in ACTIVE_STATUSES:
            await self.db.commit()
            return draw
        previous_status, refund = draw.status, draw.credits_used
        draw.status = "cancelled"
        draw.completed_at = utcnow()
        stage = str((draw.progress or {}).get("stage") or previous_status)
        cancelled = await append_record(self.db, settings, "cancelled", draw.id, stage=stage)
        draw.progress = with_log_entry(draw.progress, cancelled)
        record_history(
            self.db,
            draw,
            "cancelled",
            {"from_status": previous_status, "refunded": refund, "log_seq": cancelled.seq},
            client,
        )
        # Watchers and the worker running it learn at once (delivered when this transaction commits).
        await self.db.execute(sa.select(sa.func.pg_notify("draw_progress", str(draw.id))))
        if refund > 0:
            # The refund commits the cancellation with it: both happen, or neither.
            await CreditsService(self.db).refund(
                user_id, refund, idempotency_key=f"draw:{draw.id}:refund", description=f"Draw cancelled: {draw.title}"
            )
        else:
            await self.db.commit()
        return draw

    async def history(self, draw_id: uuid.UUID) -> list[DrawEvent]:
        rows = await self.db.scalars(
            sa.select(DrawHistory)
            .where(DrawHistory.draw_id == draw_id)
            .order_by(DrawHistory.created_at, DrawHistory.id)
        )
        return [
            DrawEvent(
                row.action,
                row.created_at,
                row.details,
                row.metadata_.get("ip"),
                row.metadata_.get("user_agent"),
                row.metadata_.get("by"),
            )
            for row in rows
        ]

    async def exclusion_counts(self, draw_id: uuid.UUID) -> dict[str, int]:
        rows = await self.db.execute(
            sa.select(DrawParticipant.exclusion_reason, sa.func.count())
            .where(DrawParticipant.draw_id == draw_id, DrawParticipant.exclusion_reason.is_not(None))
            .group_by(DrawParticipant.exclusion_reason)
        )
        counts = {str(reason): int(count) for reason, count in rows}
        return {reason: counts[reason] for reason in EXCLUSION_REASONS if reason in counts}

    async def excluded(self, draw_id: uuid.UUID, reason: str | None, page: int) -> Page:
        """Excluded entries, in the order they were collected; `reason` narrows them to one reason."""
        conditions = [DrawParticipant.draw_id == draw_id, DrawParticipant.exclusion_reason.is_not(None)]
        if reason is not None:
            conditions.append(DrawParticipant.exclusion_reason == reason)
        total = await self.db.scalar(sa.select(sa.func.count()).select_from(DrawParticipant).where(*conditions))
        pages = max(1, -(-int(total or 0) // EXCLUDED_PER_PAGE))
        page = min(max(1, page), pages)
        rows = await self.db.scalars(
            sa.select(DrawParticipant)
            .where(*conditions)
            .order_by(DrawParticipant.id)
            .limit(EXCLUDED_PER_PAGE)
            .offset((page - 1) * EXCLUDED_PER_PAGE)
        )
        return Page(list(rows), page, EXCLUDED_PER_PAGE, int(total or 0))

    async def by_certificate(self, certificate_hash: str) -> Draw | None:
        return await self.db.scalar(
            sa.select(Draw).where(Draw.certificate_hash == certificate_hash, Draw.certificate.is_not(None))
        )


def certified_newest_first(*columns: Any) -> sa.Select[Any]:
    """`columns` of the draws that issued a certificate, the chain's latest link first (the engine links each
    new certificate to the first row of this)."""
    return (
        sa.select(*columns).where(Draw.certificate_hash.is_not(None)).order_by(Draw.completed_at.desc(), Draw.id.desc())
    )


def safe_cell(value: str) -> str:
    """A cell a spreadsheet shows as text: one starting like a formula gets a leading apostrophe."""
    return "'" + value if value.startswith(FORMULA_STARTS) else value


def csv_line(cells: Iterable[str]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer).writerow(cells)
    return buffer.getvalue()


# Exports, streamed from a read connection of their own (the response outlives the request's session)

ENTRIES_IN_CANONICAL_ORDER = f"""
    SELECT platform, platform_user_id, username, comment_id, is_eligible, exclusion_reason, comment, commented_at,
           {entry_salt("p", "(SELECT secret FROM draws WHERE id = $1)")} AS salt
    FROM draw_participants p WHERE draw_id = $1 ORDER BY {CANONICAL_ORDER}
"""  # noqa: S608 - constants only
ELIGIBLE_IN_CANONICAL_ORDER = f"""
    SELECT platform, platform_user_id, username, comment_id
    FROM draw_participants WHERE draw_id = $1 AND is_eligible ORDER BY {CANONICAL_ORDER}
"""  # noqa: S608 - constants only


async def stream_rows(pool: Any, query: str, draw_id: uuid.UUID) -> AsyncIterator[Any]:
    """Rows through a server-side cursor, so that a million entries never sit in memory at once."""
    async with pool.acquire() as connection, connection.transaction(readonly=True):
        async for record in connection.cursor(query, draw_id, prefetch=2000):
            yield record


# The dashboard

RECENT_DRAWS = """
    SELECT id, title, platform, status, participants_count, created_at
    FROM draws WHERE user_id = $1
    ORDER BY created_at DESC LIMIT $2
"""


@dataclass(frozen=True)
class DrawSummary:
    id: uuid.UUID
    title: str
    platform: str
    status: str
    participants_count: int
    created_at: datetime.datetime


async def recent_draws(pool: Any, user_id: uuid.UUID, limit: int = 50) -> list[DrawSummary]:
    """The dashboard's list, read with plain SQL: only the columns it shows."""
    return [DrawSummary(**dict(row)) for row in await pool.fetch(RECENT_DRAWS, user_id, limit)]
