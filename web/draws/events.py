"""Live progress of draws, pushed to browsers as server-sent events.

The engine, in whatever worker process, NOTIFYs `draw_progress` with the draw's id after each
update. Each web process keeps ONE connection LISTENing on that channel and wakes the streams
watching that draw, so any web process serves any watcher. The streams of one draw that show the
same thing (its owner's, or its spectators') share one read and one rendering per change, so a
thousand spectators cost one query per update, not a thousand. A stream re-reads the draw when
woken and at each keep-alive, so a notification lost while the connection was re-established
costs at most one keep-alive interval.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from litestar import Litestar, Request
from litestar.response import ServerSentEvent, ServerSentEventMessage

from web.db import to_asyncpg_dsn
from web.draws.services import EXCLUSION_LABELS

log = logging.getLogger(__name__)

CHANNEL = "draw_progress"
KEEP_ALIVE_SECONDS = 15.0
RECONNECT_MAX_SECONDS = 15.0
FINISHED_STATUSES = ("completed", "failed", "cancelled")

JSON_COLUMNS = ("progress", "winners", "alternates")

DRAW_SNAPSHOT = """
    SELECT id, title, status, progress, participants_count, eligible_count, error, scheduled_at,
           executed_at, completed_at, certificate_hash
    FROM draws WHERE id = $1
"""


class Watch:
    """One stream's subscription to a draw."""

    def __init__(self, watched: _Watched) -> None:
        self._watched = watched
        self.woken = asyncio.Event()

    async def changed(self) -> bool:
        """Whether the draw may have changed before the next keep-alive is due."""
        try:
            await asyncio.wait_for(self.woken.wait(), KEEP_ALIVE_SECONDS)
        except TimeoutError:
            return False
        return True

    async def latest(self, view: str, make: Callable[[], Awaitable[Any]]) -> Any:
        """`make()`'s result, shared with this draw's other streams of the same view since the draw last changed."""
        self.woken.clear()
        return await self._watched.shared(view, make)


@dataclass
class _SharedRead:
    changes: int
    started: float
    result: asyncio.Future[Any]


@dataclass
class _Watched:
    """The streams watching one draw, how many changes were announced, and the latest read of each view."""

    streams: set[Watch] = field(default_factory=set)
    changes: int = 0
    reads: dict[str, _SharedRead] = field(default_factory=dict)

    def wake(self) -> None:
        self.changes += 1
        for stream in self.streams:
            stream.woken.set()

    async def shared(self, view: str, make: Callable[[], Awaitable[Any]]) -> Any:
        now = asyncio.get_running_loop().time()
        read = self.reads.get(view)
        # A read started before the latest change, or longer than a keep-alive ago, may miss what changed.
        if read is None or read.changes < self.changes or now - read.started > KEEP_ALIVE_SECONDS:
            read = _SharedRead(self.changes, now, asyncio.ensure_future(make()))
            self.reads[view] = read
            read.result.add_done_callback(lambda result: self._forget_failed(view, result))
        # One stream closing (its browser left) must not cancel the read the others wait for.
        return await asyncio.shield(read.result)

    def _forget_failed(self, view: str, result: asyncio.Future[Any]) -> None:
        if result.cancelled() or result.exception() is not None:
            read = self.reads.get(view)
            if read is not None and read.result is result:
                del self.reads[view]


class DrawWatchers:
    """The process's LISTEN connection and, per draw id, the streams waiting for news of it."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._watched: dict[str, _Watched] = {}
        self._connection: Any = None
        self._lock = asyncio.Lock()
        self._reconnecting: asyncio.Task[None] | None = None
        self._closed = False

    @property
    def listening(self) -> bool:
        return self._connection is not None and not self._connection.is_closed()

    @asynccontextmanager
    async def watch(self, draw_id: uuid.UUID) -> AsyncIterator[Watch]:
        """A subscription woken whenever the draw may have changed (and whenever the listener had to reconnect)."""
        key = str(draw_id)
        watched = self._watched.setdefault(key, _Watched())
        stream = Watch(watched)
        watched.streams.add(stream)
        try:
            try:
                await self._listen()
            except Exception as exc:  # OSError, timeouts, and asyncpg's own error classes
                log.warning("draw progress listener unavailable: %s", exc)
                self._reconnect_soon()
            yield stream
        finally:
            watched.streams.discard(stream)
            if not watched.streams and self._watched.get(key) is watched:
                del self._watched[key]

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
        watched = self._watched.get(payload)
        if watched is not None:
            watched.wake()

    def _lost(self, connection: Any) -> None:
        if connection is not self._connection:
            return
        self._connection = None
        if not self._closed:
            log.warning("draw progress listener lost its connection; reconnecting")
            self._wake_all()
            self._reconnect_soon()

    def _wake_all(self) -> None:
        for watched in self._watched.values():
            watched.wake()

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


async def read_snapshot(pool: Any, query: str, key: Any) -> dict[str, Any] | None:
    """The one row `query` finds for `key`, its JSON columns decoded, in one statement."""
    row = await pool.fetchrow(query, key)
    if row is None:
        return None
    snapshot = dict(row)
    for column in JSON_COLUMNS:
        if isinstance(snapshot.get(column), str):
            snapshot[column] = json.loads(snapshot[column])
    return snapshot


async def draw_snapshot(pool: Any, draw_id: uuid.UUID) -> dict[str, Any] | None:
    """What the owner's progress fragment shows."""
    snapshot = await read_snapshot(pool, DRAW_SNAPSHOT, draw_id)
    if snapshot is not None:
        snapshot["progress"] = snapshot["progress"] or {}
    return snapshot


async def progress_events(
    watchers: DrawWatchers,
    draw_id: uuid.UUID,
    view: str,
    read: Callable[[], Awaitable[dict[str, Any] | None]],
    render: Callable[[dict[str, Any]], str],
) -> AsyncIterator[ServerSentEventMessage]:
    """`progress` events (the rendered fragment) as the draw changes, keep-alive comments, `done` at the end.

    `read` gives what the `view` shows of the draw, or None once it is no longer to be seen (`done` then says `gone`).
    """

    async def rendered() -> tuple[str, str] | None:
        snapshot = await read()
        return None if snapshot is None else (snapshot["status"], render(snapshot))

    async with watchers.watch(draw_id) as stream:
        sent: str | None = None
        while True:
            shown = await stream.latest(view, rendered)
            if shown is None:
                yield ServerSentEventMessage(data="gone", event="done")
                return
            status, fragment = shown
            if fragment != sent:
                yield ServerSentEventMessage(data=fragment, event="progress")
                sent = fragment
            if status in FINISHED_STATUSES:
                yield ServerSentEventMessage(data=status, event="done")
                return
            if not await stream.changed():
                yield ServerSentEventMessage(comment="keep-alive")


def progress_stream(
    request: Request[Any, Any, Any],
    draw_id: uuid.UUID,
    view: str,
    read: Callable[[], Awaitable[dict[str, Any] | None]],
) -> ServerSentEvent:
    """The response streaming `draws/_progress.html` as `read` sees the draw, until it is finished."""
    engine = request.app.template_engine
    assert engine is not None
    template = engine.engine.get_template("draws/_progress.html")

    def fragment(snapshot: dict[str, Any]) -> str:
        return str(template.render(draw=snapshot, labels=EXCLUSION_LABELS))

    stream = progress_events(request.app.state.draw_watchers, draw_id, view, read, fragment)
    return ServerSentEvent(stream, headers={"cache-control": "no-store", "x-accel-buffering": "no"})
