"""Which worker runs which draw: claims and leases in PostgreSQL, a heartbeat, LISTEN for new work.

A runner claims one due draw at a time with `FOR UPDATE SKIP LOCKED`, so any number of worker
processes share the queue without two of them taking the same draw. The claim holds a lease
(`lease_owner`, `lease_expires_at`) that a heartbeat renews while the draw runs; a worker that
dies stops renewing, and once the lease has expired another worker takes the draw over and
continues from its saved state (`retried` in the history). Idle runners wait on
`NOTIFY draw_queue` and poll as well, for scheduled draws coming due and for lost notifications.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import logging
import os
import secrets
import socket
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from web.certificates.log import with_log_entry
from web.credits.services import InsufficientCredits
from web.db import to_asyncpg_dsn
from web.draws.engine import DrawEngine, append_failed
from web.draws.history import record_history
from web.draws.lease import PROGRESS_CHANNEL, QUEUE_CHANNEL, Lease, utcnow
from web.draws.models import Draw, DrawHistory

log = logging.getLogger(__name__)

DEFAULT_LEASE_SECONDS = 30.0
DEFAULT_POLL_SECONDS = 5.0
# A draw whose workers kept dying on it is failed (and refunded) rather than retried forever.
MAX_TAKEOVERS = 5
RECONNECT_MAX_SECONDS = 15.0


@dataclass(frozen=True)
class RunnerConfig:
    lease_seconds: float = DEFAULT_LEASE_SECONDS
    poll_seconds: float = DEFAULT_POLL_SECONDS

    @property
    def heartbeat_seconds(self) -> float:
        return self.lease_seconds / 3

    @classmethod
    def from_environment(cls) -> RunnerConfig:
        """CLEACK_DRAW_LEASE_SECONDS and CLEACK_DRAW_POLL_SECONDS, for operators and tests."""
        return cls(
            lease_seconds=max(1.0, float(os.environ.get("CLEACK_DRAW_LEASE_SECONDS") or DEFAULT_LEASE_SECONDS)),
            poll_seconds=max(0.1, float(os.environ.get("CLEACK_DRAW_POLL_SECONDS") or DEFAULT_POLL_SECONDS)),
        )


def worker_identity() -> str:
    """hostname:pid:random, unique even when a pid is reused."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"[:128]


def claimable() -> sa.ColumnElement[bool]:
    """Pending and due, or processing under a lease nobody renewed."""
    return sa.or_(
        sa.and_(Draw.status == "pending", sa.or_(Draw.scheduled_at.is_(None), Draw.scheduled_at <= sa.func.now())),
        sa.and_(Draw.status == "processing", Draw.lease_expires_at < sa.func.now()),
    )


class QueueListener:
    """The process's one connection LISTENing on draw_queue; reconnects when it drops."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.woken = asyncio.Event()
        self._connection: Any = None

    @property
    def listening(self) -> bool:
        return self._connection is not None and not self._connection.is_closed()

    async def ensure(self) -> None:
        if self.listening:
            return
        import asyncpg

        dsn, kwargs = to_asyncpg_dsn(self.url)
        connection = await asyncpg.connect(dsn, timeout=10, **kwargs)
        await connection.add_listener(QUEUE_CHANNEL, self._notified)
        connection.add_termination_listener(self._lost)
        self._connection = connection
        # Whatever was queued while nobody listened is looked for now.
        self.woken.set()

    def _notified(self, connection: Any, pid: int, channel: str, payload: str) -> None:
        self.woken.set()

    def _lost(self, connection: Any) -> None:
        if connection is self._connection:
            self._connection = None
            self.woken.set()

    async def close(self) -> None:
        if self._connection is not None:
            connection, self._connection = self._connection, None
            with contextlib.suppress(Exception):
                await connection.close(timeout=2)


class DrawRunner:
    """Claims due draws one at a time and runs each under a renewed lease until `stop` is set."""

    def __init__(
        self,
        session_maker: async_sessionmaker[AsyncSession],
        engine: DrawEngine,
        config: RunnerConfig | None = None,
        owner: str | None = None,
    ) -> None:
        self.session_maker = session_maker
        self.engine = engine
        self.config = config or RunnerConfig.from_environment()
        self.owner = owner or worker_identity()

    async def run(self, stop: asyncio.Event) -> None:
        listener = QueueListener(self.engine.url)
        reconnect_delay = 0.5
        log.info("draw runner started", extra={"worker": self.owner})
        try:
            while not stop.is_set():
                try:
                    await listener.ensure()
                    reconnect_delay = 0.5
                except Exception as exc:  # OSError, timeouts, and asyncpg's own error classes
                    log.warning("draw queue listener unavailable (%s); polling meanwhile", exc)
                    reconnect_delay = min(reconnect_delay * 2, RECONNECT_MAX_SECONDS)
                listener.woken.clear()
                try:
                    ran = await self.run_next(stop)
                except Exception:
                    log.exception("draw runner: claiming or running failed", extra={"worker": self.owner})
                    ran = False
                if ran:
                    continue
                wait = (
                    self.config.poll_seconds if listener.listening else min(reconnect_delay, self.config.poll_seconds)
                )
                with contextlib.suppress(Exception):
                    wait = min(wait, await self.seconds_until_next_due())
                await _wait_any(listener.woken, stop, seconds=wait)
        finally:
            await listener.close()
            log.info("draw runner stopped", extra={"worker": self.owner})

    async def seconds_until_next_due(self) -> float:
        async with self.session_maker() as db:
            due = await db.scalar(
                sa.select(sa.extract("epoch", sa.func.min(Draw.scheduled_at) - sa.func.now())).where(
                    Draw.status == "pending", Draw.scheduled_at > sa.func.now()
                )
            )
            await db.commit()
        return float("inf") if due is None else max(0.0, float(due))

    async def run_next(self, stop: asyncio.Event) -> bool:
        """Claim and run one draw; False when none was due."""
        lease = await self.claim(stop)
        if lease is None:
            return False
        await self.run_claimed(lease)
        return True

    async def claim(self, stop: asyncio.Event | None = None) -> Lease | None:
        """Take the next due draw: start it (debit, `started`) or take it over (`retried`), in one transaction."""
        lease: Lease | None = None
        async with self.session_maker() as db:
            draw = await db.scalar(
                sa.select(Draw)
                .where(claimable())
                .order_by(sa.func.coalesce(Draw.scheduled_at, Draw.created_at), Draw.id)
                .limit(1)
                .with_for_update(skip_locked=True)
            )
            if draw is None:
                await db.commit()
                return None
            lease = Lease(draw.id, self.owner, self.config.lease_seconds, stop or asyncio.Event())
            if draw.status == "pending":
                try:
                    await self.engine.start(db, draw, lease)
                except InsufficientCredits as exc:
                    await self.refuse_unpaid(lease.draw_id, exc)
                    return None
                log.info("draw started", extra={"draw": str(lease.draw_id), "worker": self.owner})
                return lease
            takeovers = await db.scalar(
                sa.select(sa.func.count())
                .select_from(DrawHistory)
                .where(DrawHistory.draw_id == draw.id, DrawHistory.action == "retried")
            )
            await self.engine.take_over(db, draw, lease)
            log.info("draw taken over", extra={"draw": str(draw.id), "worker": self.owner})
        if (takeovers or 0) + 1 > MAX_TAKEOVERS:
            await self.engine.fail(
                lease, "The draw could not be completed after several attempts; your credits were given back."
            )
            return None
        return lease

    async def refuse_unpaid(self, draw_id: Any, exc: InsufficientCredits) -> None:
        """Not enough credits when the draw starts: it fails, and nothing was taken."""
        message = f"Not enough credits: this draw needs {exc.needed}, you have {exc.balance}."
        async with self.session_maker() as db:
            draw = await db.scalar(
                sa.select(Draw).where(Draw.id == draw_id, Draw.status == "pending").with_for_update(skip_locked=True)
            )
            if draw is None:
                await db.commit()
                return
            failed = await append_failed(db, self.engine.settings, draw, "queued", message)
            draw.status = "failed"
            draw.error = message
            draw.completed_at = utcnow()
            draw.progress = {**with_log_entry(draw.progress, failed), "stage": "done", "message": message}
            record_history(db, draw, "failed", {"error": message, "refunded": 0, "log_seq": failed.seq})
            await db.execute(sa.select(sa.func.pg_notify(PROGRESS_CHANNEL, str(draw.id))))
            await db.commit()

    async def run_claimed(self, lease: Lease) -> str:
        """Run the draw while a heartbeat renews the lease; a lost lease stops the run at once."""
        lost = asyncio.Event()
        run = asyncio.create_task(self.engine.run(lease))
        heartbeat = asyncio.create_task(self.heartbeat(lease, run, lost))
        try:
            outcome = await run
        except asyncio.CancelledError:
            if not lost.is_set():
                run.cancel()
                raise
            outcome = "lost"
        except Exception:
            log.exception("draw run crashed; another attempt will take it over", extra={"draw": str(lease.draw_id)})
            outcome = "crashed"
        finally:
            heartbeat.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await heartbeat
        if outcome in ("yielded", "crashed"):
            await self.release(lease)
        log.info("draw run ended", extra={"draw": str(lease.draw_id), "outcome": outcome})
        return outcome

    async def heartbeat(self, lease: Lease, run: asyncio.Task[str], lost: asyncio.Event) -> None:
        while True:
            await asyncio.sleep(self.config.heartbeat_seconds)
            try:
                held = await self.renew(lease)
            except Exception as exc:  # the database is unreachable for now; the lease may still be ours
                log.warning("lease renewal failed (%s)", exc, extra={"draw": str(lease.draw_id)})
                continue
            if not held:
                lost.set()
                run.cancel()
                return

    async def renew(self, lease: Lease) -> bool:
        async with self.session_maker() as db:
            renewed = await db.scalar(
                sa.update(Draw)
                .where(Draw.id == lease.draw_id, Draw.lease_owner == lease.owner, Draw.status == "processing")
                .values(lease_expires_at=sa.func.now() + datetime.timedelta(seconds=lease.seconds))
                .returning(Draw.id)
            )
            await db.commit()
        return renewed is not None

    async def release(self, lease: Lease) -> None:
        """Give the draw back now, so that another worker takes it over without waiting for the lease to expire."""
        with contextlib.suppress(Exception):
            async with self.session_maker() as db:
                released = await db.scalar(
                    sa.update(Draw)
                    .where(Draw.id == lease.draw_id, Draw.lease_owner == lease.owner, Draw.status == "processing")
                    .values(lease_expires_at=sa.func.now() - datetime.timedelta(seconds=1))
                    .returning(Draw.id)
                )
                if released is not None:
                    await db.execute(sa.select(sa.func.pg_notify(QUEUE_CHANNEL, str(lease.draw_id))))
                await db.commit()


async def _wait_any(*events: asyncio.Event, seconds: float) -> None:
    waiters = [asyncio.create_task(event.wait()) for event in events]
    try:
        await asyncio.wait(waiters, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()
