"""Background work shared by every worker process: periodic jobs, run once across all of them, and draws."""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import logging
import zlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import httpx
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from web import ratelimit
from web.accounts.models import Session, VerificationToken
from web.admin.metrics import roll_up_recent
from web.billing.services import grant_due_subscription_credits
from web.draws.announcements import publish_scheduled_announcements
from web.draws.engine import DrawEngine
from web.draws.runner import DrawRunner
from web.sandbox.stripe.delivery import redeliver_pending
from web.settings import Settings
from web.social.models import OAuthState
from web.social.services import SocialService, platform_http_client

log = logging.getLogger(__name__)

TICK_SECONDS = 30.0


@dataclass(frozen=True)
class WorkerContext:
    """What jobs need besides their database session."""

    settings: Settings
    http: httpx.AsyncClient


@dataclass(frozen=True)
class PeriodicJob:
    name: str
    every: datetime.timedelta
    run: Callable[[AsyncSession, WorkerContext], Awaitable[dict[str, int]]]

    @property
    def lock_key(self) -> int:
        return zlib.crc32(f"cleack:job:{self.name}".encode())


async def purge_expired_auth_state(db: AsyncSession, context: WorkerContext) -> dict[str, int]:
    """Sessions and one-time tokens past their expiry, and old rate-limit windows."""
    now = datetime.datetime.now(datetime.UTC)
    sessions = await db.execute(sa.delete(Session).where(Session.expires_at < now))
    tokens = await db.execute(
        sa.delete(VerificationToken).where(VerificationToken.expires_at < now - datetime.timedelta(days=7))
    )
    windows = await ratelimit.purge_expired(db)
    states = await db.execute(sa.delete(OAuthState).where(OAuthState.expires_at < now))
    return {
        "sessions": int(sessions.rowcount or 0),  # type: ignore[attr-defined]
        "tokens": int(tokens.rowcount or 0),  # type: ignore[attr-defined]
        "rate_limit_windows": windows,
        "oauth_states": int(states.rowcount or 0),  # type: ignore[attr-defined]
    }


async def roll_up_system_metrics(db: AsyncSession, context: WorkerContext) -> dict[str, int]:
    return await roll_up_recent(db)


async def refresh_platform_tokens(db: AsyncSession, context: WorkerContext) -> dict[str, int]:
    return await SocialService(db, context.settings, context.http).refresh_expiring()


async def grant_subscription_credits(db: AsyncSession, context: WorkerContext) -> dict[str, int]:
    return await grant_due_subscription_credits(db, datetime.datetime.now(datetime.UTC))


async def redeliver_sandbox_webhooks(db: AsyncSession, context: WorkerContext) -> dict[str, int]:
    if not context.settings.payments_sandbox_enabled:
        return {}
    return await redeliver_pending(async_sessionmaker(db.bind, expire_on_commit=False), context.http, context.settings)


JOBS = (
    PeriodicJob("purge-expired-auth-state", datetime.timedelta(minutes=10), purge_expired_auth_state),
    PeriodicJob("roll-up-system-metrics", datetime.timedelta(minutes=15), roll_up_system_metrics),
    PeriodicJob("refresh-platform-tokens", datetime.timedelta(minutes=10), refresh_platform_tokens),
    PeriodicJob("grant-subscription-credits", datetime.timedelta(hours=1), grant_subscription_credits),
    PeriodicJob("redeliver-sandbox-webhooks", datetime.timedelta(minutes=1), redeliver_sandbox_webhooks),
    PeriodicJob("publish-scheduled-announcements", datetime.timedelta(minutes=1), publish_scheduled_announcements),
)


async def run_job_once(
    session_maker: async_sessionmaker[AsyncSession], job: PeriodicJob, context: WorkerContext
) -> dict[str, int] | None:
    """Run `job` unless another worker holds its lock right now; None when skipped."""
    async with session_maker() as db:
        locked = await db.scalar(sa.select(sa.func.pg_try_advisory_xact_lock(job.lock_key)))
        if not locked:
            return None
        result = await job.run(db, context)
        await db.commit()
        log.info("periodic job done", extra={"job": job.name, "result": result})
        return result


async def run_worker(session_maker: async_sessionmaker[AsyncSession], settings: Settings, stop: asyncio.Event) -> None:
    """Periodic jobs and the draw runner side by side, until `stop`; a draw in progress stops after its page."""
    async with platform_http_client() as http:
        context = WorkerContext(settings, http)
        await asyncio.gather(_run_jobs(session_maker, context, stop), _run_draws(session_maker, context, stop))


async def _run_draws(
    session_maker: async_sessionmaker[AsyncSession], context: WorkerContext, stop: asyncio.Event
) -> None:
    bind = session_maker.kw["bind"]
    url = bind.url.render_as_string(hide_password=False)
    engine = DrawEngine(session_maker, context.settings, context.http, url)
    await DrawRunner(session_maker, engine).run(stop)


async def _run_jobs(
    session_maker: async_sessionmaker[AsyncSession], context: WorkerContext, stop: asyncio.Event
) -> None:
    last_run: dict[str, datetime.datetime] = {}
    log.info("worker started")
    while not stop.is_set():
        now = datetime.datetime.now(datetime.UTC)
        for job in JOBS:
            due = last_run.get(job.name)
            if due is not None and now - due < job.every:
                continue
            try:
                await run_job_once(session_maker, job, context)
            except Exception:
                log.exception("periodic job failed", extra={"job": job.name})
            last_run[job.name] = now
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=TICK_SECONDS)
    log.info("worker stopped")
