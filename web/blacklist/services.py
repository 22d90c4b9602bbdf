"""A creator's blacklist: usernames that never win their draws, on one platform or on all of them."""

from __future__ import annotations

import unicodedata
import uuid
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession
from uuid_utils.compat import uuid7

from web.blacklist.models import BLACKLIST_PLATFORMS, BlacklistEntry
from web.forms import FieldError
from web.pagination import Page

USERNAME_MAX = 128
REASON_MAX = 500
PER_PAGE = 25


def normalize_username(value: str) -> str:
    """As platforms compare handles: no leading @, case-insensitive, one Unicode form."""
    return unicodedata.normalize("NFKC", value).strip().lstrip("@").strip().lower()


def clean_username(value: str) -> str:
    username = normalize_username(value)
    if not username:
        raise FieldError("Enter the username to block.")
    if len(username) > USERNAME_MAX:
        raise FieldError(f"A username has at most {USERNAME_MAX} characters.")
    if any(char.isspace() or not char.isprintable() for char in username):
        raise FieldError("A username has no spaces or invisible characters.")
    return username


def clean_platform(value: str) -> str:
    platform = value.strip().lower()
    if platform not in BLACKLIST_PLATFORMS:
        raise FieldError("Choose a platform from the list, or all platforms.")
    return platform


def clean_reason(value: str) -> str | None:
    reason = " ".join(value.split())
    if len(reason) > REASON_MAX:
        raise FieldError(f"The reason is too long (at most {REASON_MAX} characters).")
    if any(unicodedata.category(char) in {"Cc", "Cs", "Co", "Cn"} or char == "\ufffd" for char in reason):
        raise FieldError("The reason contains characters that are not allowed.")
    return reason or None


class AlreadyBlacklisted(Exception):
    pass


@dataclass(frozen=True)
class Added:
    entry: BlacklistEntry
    restored: bool


class BlacklistService:
    def __init__(self, db: AsyncSession) -> None:
        self.db = db

    async def add(self, user_id: uuid.UUID, username: str, platform: str, reason: str | None) -> Added:
        """Block a name; one removed earlier comes back (with the new reason). AlreadyBlacklisted if it is on."""
        table = BlacklistEntry.__table__
        statement = (
            pg_insert(BlacklistEntry)
            .values(id=uuid7(), user_id=user_id, username=username, platform=platform, reason=reason, is_active=True)
            .on_conflict_do_update(
                constraint="uq_blacklist_user_username_platform",
                set_={"is_active": True, "reason": reason, "updated_at": sa.func.now()},
                where=table.c.is_active.is_(False),
            )
            .returning(BlacklistEntry.id, sa.literal_column("xmax") != 0)
        )
        row = (await self.db.execute(statement)).first()
        if row is None:
            await self.db.rollback()
            raise AlreadyBlacklisted
        await self.db.commit()
        entry = await self.db.get_one(BlacklistEntry, row[0], populate_existing=True)
        return Added(entry, restored=bool(row[1]))

    async def remove(self, user_id: uuid.UUID, entry_id: uuid.UUID) -> BlacklistEntry | None:
        """Soft: the row stays, inactive, so that adding the name again restores it. None when not theirs."""
        entry = await self.db.scalar(
            sa.select(BlacklistEntry).where(
                BlacklistEntry.id == entry_id, BlacklistEntry.user_id == user_id, BlacklistEntry.is_active.is_(True)
            )
        )
        if entry is None:
            return None
        entry.is_active = False
        await self.db.commit()
        return entry

    async def listing(self, user_id: uuid.UUID, *, query: str = "", page: int = 1) -> Page:
        conditions = [BlacklistEntry.user_id == user_id, BlacklistEntry.is_active.is_(True)]
        if query:
            pattern = normalize_username(query).replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            conditions.append(BlacklistEntry.username.like(f"%{pattern}%", escape="\\"))
        total = int(
            await self.db.scalar(sa.select(sa.func.count()).select_from(BlacklistEntry).where(*conditions)) or 0
        )
        pages = max(1, -(-total // PER_PAGE))
        page = min(max(1, page), pages)
        rows = await self.db.scalars(
            sa.select(BlacklistEntry)
            .where(*conditions)
            .order_by(BlacklistEntry.username, BlacklistEntry.platform)
            .limit(PER_PAGE)
            .offset((page - 1) * PER_PAGE)
        )
        return Page(list(rows), page, PER_PAGE, total)
