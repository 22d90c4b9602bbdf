"""Background work shared by every worker process: periodic jobs, run once across all of them."""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import logging
import zlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from web import ratelimit
from web.accounts.models import Session, VerificationToken
from web.admin.metrics import roll_up_recent

log = logging.getLogger(__name__)

TICK_SECONDS = 30.0


@dataclass(frozen=True)
class PeriodicJob:
    name: str
    every: datetime.timedelta
    run: Callable[[AsyncSession], Awaitable[dict[str, int]]]

    @property
    def lock_key(self) -> int:
        return zlib.crc32(f"cleack:job:{self.name}".encode())


async def purge_expired_auth_state(db: AsyncSession) -> dict[str, int]:
    """Sessions and one-time tokens past their expiry, and old rate-limit windows."""
    now = datetime.datetime.now(datetime.UTC)
    sessions = await db.execute(sa.delete(Session).where(Session.expires_at < now))
    tokens = await db.execute(
        sa.delete(VerificationToken).where(VerificationToken.expires_at < now - datetime.timedelta(days=7))
    )
    windows = await ratelimit.purge_expired(db)
    return {
        "sessions": int(sessions.rowcount or 0),  # type: ignore[attr-defined]
        "tokens": int(tokens.rowcount or 0),  # type: ignore[attr-defined]
        "rate_limit_windows": windows,
    }


JOBS = (
    PeriodicJob("purge-expired-auth-state", datetime.timedelta(minutes=10), purge_expired_auth_state),
    PeriodicJob("roll-up-system-metrics", datetime.timedelta(minutes=15), roll_up_recent),
)


async def run_job_once(session_maker: async_sessionmaker[AsyncSession], job: PeriodicJob) -> dict[str, int] | None:
    """Run `job` unless another worker holds its lock right now; None when skipped."""
    async with session_maker() as db:
        locked = await db.scalar(sa.select(sa.func.pg_try_advisory_xact_lock(job.lock_key)))
        if not locked:
            return None
        result = await job.run(db)
        await db.commit()
        log.info("periodic job done", extra={"job": job.name, "result": result})
        return result


async def run_worker(session_maker: async_sessionmaker[AsyncSession], stop: asyncio.Event) -> None:
    last_run: dict[str, datetime.datetime] = {}
    log.info("worker started")
    while not stop.is_set():
        now = datetime.datetime.now(datetime.UTC)
        for job in JOBS:
            due = last_run.get(job.name)
            if due is not None and now - due < job.every:
                continue
            try:
                await run_job_once(session_maker, job)
            except Exception:
                log.exception("periodic job failed", extra={"job": job.name})
            last_run[job.name] = now
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=TICK_SECONDS)
    log.info("worker stopped")
