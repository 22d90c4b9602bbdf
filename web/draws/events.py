"""Live progress of draws, pushed to browsers as server-sent events.

The engine, in whatever worker process, NOTIFYs `draw_progress` with the draw's id after each
update. Each web process keeps ONE connection LISTENing on that channel and wakes the streams
watching that draw, so any web process serves any watcher. A stream re-reads the draw when woken
and at each keep-alive, so a notification lost while the connection was re-established costs at
most one keep-alive interval.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from litestar import Litestar
from litestar.response import ServerSentEventMessage

from web.db import to_asyncpg_dsn

log = logging.getLogger(__name__)

CHANNEL = "draw_progress"
KEEP_ALIVE_SECONDS = 15.0
RECONNECT_MAX_SECONDS = 15.0
FINISHED_STATUSES = ("completed", "failed", "cancelled")

DRAW_SNAPSHOT = """
    SELECT id, title, status, progress, participants_count, eligible_count, error, scheduled_at,
           executed_at, completed_at, certificate_hash
    FROM draws WHERE id = $1
"""


class DrawWatchers:
    """The process's LISTEN connection and, per draw id, the streams waiting for news of it."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._subscribers: dict[str, set[asyncio.Event]] = {}
        self._connection: Any = None
        self._lock = asyncio.Lock()
        self._reconnecting: asyncio.Task[None] | None = None
        self._closed = False

    @property
    def listening(self) -> bool:
        return self._connection is not None and not self._connection.is_closed()

    @asynccontextmanager
    async def watch(self, draw_id: uuid.UUID) -> AsyncIterator[asyncio.Event]:
        """An event set whenever the draw may have changed (and whenever the listener had to reconnect)."""
        key = str(draw_id)
        woken = asyncio.Event()
        self._subscribers.setdefault(key, set()).add(woken)
        try:
            try:
                await self._listen()
            except Exception as exc:  # OSError, timeouts, and asyncpg's own error classes
                log.warning("draw progress listener unavailable: %s", exc)
                self._reconnect_soon()
            yield woken
        finally:
            watchers = self._subscribers.get(key)
            if watchers is not None:
                watchers.discard(woken)
                if not watchers:
                    del self._subscribers[key]

    async def close(self) -> None:
        self._closed = True
        if self._reconnecting is not None:
            self._reconnecting.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reconnecting
        if self._connection is not None:
            connection, self._connection = self._connection, None
            with contextlib.suppress(Exception):
                await connection.close(timeout=2)

    async def _listen(self) -> None:
        if self.listening:
            return
        async with self._lock:
            if self.listening or self._closed:
                return
            import asyncpg

            dsn, kwargs = to_asyncpg_dsn(self.url)
            connection = await asyncpg.connect(dsn, timeout=10, **kwargs)
            await connection.add_listener(CHANNEL, self._notified)
            connection.add_termination_listener(self._lost)
            self._connection = connection

    def _notified(self, connection: Any, pid: int, channel: str, payload: str) -> None:
        for woken in self._subscribers.get(payload, ()):
            woken.set()

    def _lost(self, connection: Any) -> None:
        if connection is not self._connection:
            return
        self._connection = None
        if not self._closed:
            log.warning("draw progress listener lost its connection; reconnecting")
            self._wake_all()
            self._reconnect_soon()

    def _wake_all(self) -> None:
        for watchers in self._subscribers.values():
            for woken in watchers:
                woken.set()

    def _reconnect_soon(self) -> None:
        if self._closed or (self._reconnecting is not None and not self._reconnecting.done()):
            return
        self._reconnecting = asyncio.get_running_loop().create_task(self._reconnect())

    async def _reconnect(self) -> None:
        delay = 0.5
        while not self._closed and not self.listening:
            try:
                await self._listen()
            except Exception as exc:  # OSError, timeouts, and asyncpg's own error classes
                log.warning("draw progress listener: reconnection failed (%s); retrying in %.1f s", exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, RECONNECT_MAX_SECONDS)
            else:
                # Whatever was notified while disconnected is read now.
                self._wake_all()


def draw_watchers_lifespan(url: str) -> Callable[[Litestar], contextlib.AbstractAsyncContextManager[None]]:
    """The listener lives with the web process; it connects on the first watcher."""

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        app.state.draw_watchers = DrawWatchers(url)
        try:
            yield
        finally:
            await app.state.draw_watchers.close()

    return lifespan


async def draw_snapshot(pool: Any, draw_id: uuid.UUID) -> dict[str, Any] | None:
    """What the progress fragment shows, read in one statement."""
    row = await pool.fetchrow(DRAW_SNAPSHOT, draw_id)
    if row is None:
        return None
    snapshot = dict(row)
    progress = snapshot["progress"]
    snapshot["progress"] = json.loads(progress) if isinstance(progress, str) else progress or {}
    return snapshot


async def progress_events(
    watchers: DrawWatchers, pool: Any, draw_id: uuid.UUID, render: Callable[[dict[str, Any]], str]
) -> AsyncIterator[ServerSentEventMessage]:
    """`progress` events (the rendered fragment) as the draw changes, keep-alive comments, `done` at the end."""
    async with watchers.watch(draw_id) as woken:
        sent: str | None = None
        while True:
            woken.clear()
            snapshot = await draw_snapshot(pool, draw_id)
            if snapshot is None:
                return
            fragment = render(snapshot)
            if fragment != sent:
                yield ServerSentEventMessage(data=fragment, event="progress")
                sent = fragment
            if snapshot["status"] in FINISHED_STATUSES:
                yield ServerSentEventMessage(data=snapshot["status"], event="done")
                return
            try:
                await asyncio.wait_for(woken.wait(), KEEP_ALIVE_SECONDS)
            except TimeoutError:
                yield ServerSentEventMessage(comment="keep-alive")
