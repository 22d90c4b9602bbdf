"""What one worker's run of a draw holds (its lease, its live progress) and the ways a run ends early."""

from __future__ import annotations

import asyncio
import datetime
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from web.draws.models import Draw

PROGRESS_CHANNEL = "draw_progress"
QUEUE_CHANNEL = "draw_queue"
# The live page is refreshed at most this often while pages stream in (stage changes are written at once).
PROGRESS_INTERVAL = 0.25
# Guards every write of a run: this worker still holds the lease and nobody cancelled the draw.
LEASE_HELD = "SELECT 1 FROM draws WHERE id = $1 AND lease_owner = $2 AND status = 'processing' FOR UPDATE"


class DrawFailed(Exception):
    """The draw cannot complete; `message` is shown to the creator."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class RunStopped(Exception):
    """The draw was cancelled or another worker holds it now: stop without writing anything more."""


class RunYielded(Exception):
    """This worker is shutting down: the draw goes back to the queue where it stands."""


@dataclass
class Lease:
    """This worker's hold on one draw; `stopping` is the worker's own shutdown signal."""

    draw_id: uuid.UUID
    owner: str
    seconds: float
    stopping: asyncio.Event = field(default_factory=asyncio.Event)

    def check_shutdown(self) -> None:
        if self.stopping.is_set():
            raise RunYielded


def utcnow() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def expected_entries(sources: list[dict[str, Any]]) -> int:
    return sum(int(source.get("expected_entries") or source.get("rows") or 0) for source in sources)


def new_progress(expected: int | None) -> dict[str, Any]:
    """Draw.progress as draws.md describes it."""
    return {
        "stage": "fetching",
        "fetched": 0,
        "expected": expected,
        "excluded": {},
        "eligible": 0,
        "percent": 0,
        "paused_until": None,
        "message": None,
    }


class Progress:
    """The draw's live progress: changed in memory, written with pages (throttled) or at once on a stage change."""

    def __init__(self, draw: Draw, lease: Lease, session_maker: async_sessionmaker[AsyncSession]) -> None:
        self.lease = lease
        self.session_maker = session_maker
        self.state: dict[str, Any] = {
            **new_progress(expected_entries(draw.sources) or None),
            **(draw.progress or {}),
            "paused_until": None,
        }
        self.written_at = 0.0

    def update(self, **changes: Any) -> None:
        self.state.update(changes)

    @property
    def due(self) -> bool:
        return time.monotonic() - self.written_at >= PROGRESS_INTERVAL

    def mark_written(self) -> None:
        self.written_at = time.monotonic()

    async def publish(self) -> None:
        """Write now, under the lease, and NOTIFY the watchers; RunStopped when the draw is no longer ours."""
        async with self.session_maker() as db:
            written = await db.scalar(
                sa.update(Draw)
                .where(Draw.id == self.lease.draw_id, Draw.lease_owner == self.lease.owner, Draw.status == "processing")
                .values(progress=dict(self.state))
                .returning(Draw.id)
            )
            if written is None:
                await db.rollback()
                raise RunStopped
            await db.execute(sa.select(sa.func.pg_notify(PROGRESS_CHANNEL, str(self.lease.draw_id))))
            await db.commit()
        self.mark_written()
