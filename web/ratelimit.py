"""Fixed-window rate limits kept in PostgreSQL, so every web process shares them."""

from __future__ import annotations

import datetime
import hashlib
import math
import time
from dataclasses import dataclass

import sqlalchemy as sa
from advanced_alchemy.base import orm_registry
from advanced_alchemy.types import DateTimeUTC
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column


class RateLimitHit(orm_registry.generate_base()):  # type: ignore[misc]
    __tablename__ = "rate_limit_hits"

    bucket: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    window_start: Mapped[datetime.datetime] = mapped_column(DateTimeUTC(timezone=True), primary_key=True)
    hits: Mapped[int] = mapped_column(nullable=False)


@dataclass(frozen=True)
class Limit:
    name: str
    max_hits: int
    window_seconds: int


LOGIN_PER_ACCOUNT = Limit("login-account", 10, 15 * 60)
LOGIN_PER_ADDRESS = Limit("login-address", 30, 15 * 60)
SIGNUP_PER_ADDRESS = Limit("signup-address", 10, 60 * 60)
RESET_PER_ACCOUNT = Limit("reset-account", 3, 60 * 60)
RESET_PER_ADDRESS = Limit("reset-address", 10, 60 * 60)
VERIFY_MAIL_PER_ACCOUNT = Limit("verify-mail-account", 3, 60 * 60)


class RateLimited(Exception):
    def __init__(self, retry_after: int) -> None:
        super().__init__(f"retry after {retry_after}s")
        self.retry_after = retry_after

    @property
    def message(self) -> str:
        minutes = max(1, math.ceil(self.retry_after / 60))
        unit = "minute" if minutes == 1 else "minutes"
        return f"Too many attempts. Please wait {minutes} {unit} and try again."


async def hit(db: AsyncSession, limit: Limit, key: str) -> None:
    """Count one attempt against `limit` for `key`; raise RateLimited once over the limit."""
    now = time.time()
    start = now - (now % limit.window_seconds)
    window_start = datetime.datetime.fromtimestamp(start, datetime.UTC)
    bucket = hashlib.sha256(f"{limit.name}:{key.lower()}".encode()).hexdigest()
    statement = sa.text(
        "INSERT INTO rate_limit_hits (bucket, window_start, hits) VALUES (:bucket, :window_start, 1) "
        "ON CONFLICT (bucket, window_start) DO UPDATE SET hits = rate_limit_hits.hits + 1 RETURNING hits"
    )
    hits = (await db.execute(statement, {"bucket": bucket, "window_start": window_start})).scalar_one()
    if hits > limit.max_hits:
        raise RateLimited(int(start + limit.window_seconds - now) + 1)


async def purge_expired(db: AsyncSession, older_than_seconds: int = 24 * 3600) -> int:
    cutoff = datetime.datetime.now(datetime.UTC) - datetime.timedelta(seconds=older_than_seconds)
    result = await db.execute(sa.delete(RateLimitHit).where(RateLimitHit.window_start < cutoff))
    return result.rowcount or 0  # type: ignore[attr-defined]
