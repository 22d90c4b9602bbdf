"""The public spectator link of a draw: `/watch/<token>` lets the creator's audience watch it live, without an account.

The creator makes the link on the draw's page and can revoke it; the token is random (128 bits) and the only way
to the page, so a revoked or unknown one finds nothing. The page shows what the certificate makes public — title,
platform, commitment, counts, the winners' and alternates' usernames — and never an entrant's comment or id, an
excluded username, the creator or the history: templates get `public_view()`, not the draw's row.
"""

from __future__ import annotations

import re
import secrets
import uuid
from typing import Any

import sqlalchemy as sa
from litestar import Controller, Request, Response, get, post
from litestar.di import NamedDependency
from litestar.exceptions import NotFoundException
from litestar.params import FromPath, FromQuery
from litestar.response import ServerSentEvent
from litestar.status_codes import HTTP_404_NOT_FOUND
from sqlalchemy.ext.asyncio import AsyncSession

from web.draws.events import progress_stream, read_snapshot
from web.draws.models import Draw
from web.draws.services import ACTIVE_STATUSES, PUBLIC_EXCLUSION_LABELS
from web.htmx import redirect, render, wants_fragment
from web.security import current_user, requires_login

TOKEN = re.compile(r"[A-Za-z0-9_-]{22}")
PUBLIC_PROGRESS = ("stage", "fetched", "expected", "excluded", "eligible", "percent", "paused_until", "message", "log")
PUBLIC_PICK = ("position", "username", "platform")
PAGE_HEADERS = {"cache-control": "no-store", "x-robots-tag": "noindex"}

SPECTATED_DRAW = "SELECT id FROM draws WHERE spectator_token = $1"
SPECTATOR_SNAPSHOT = """
    SELECT title, platform, status, progress, participants_count, eligible_count, scheduled_at, commitment,
           winners_count, alternates_count, winners, alternates, certificate_hash
    FROM draws WHERE spectator_token = $1
"""


def new_spectator_token() -> str:
    return secrets.token_urlsafe(16)


def public_view(row: dict[str, Any]) -> dict[str, Any]:
    """What a spectator may see of a draw, field by field."""
    progress = row["progress"] or {}
    shown_progress = {key: progress.get(key) for key in PUBLIC_PROGRESS}
    if row["status"] not in ACTIVE_STATUSES:
        # Once the draw is over, the message is the creator's (why it failed, what to reconnect).
        shown_progress["message"] = None
    completed = row["status"] == "completed"
    return {
        "title": row["title"],
        "platform": row["platform"],
        "status": row["status"],
        "commitment": row["commitment"],
        "winners_count": row["winners_count"],
        "alternates_count": row["alternates_count"],
        "scheduled_at": row["scheduled_at"],
        "participants_count": row["participants_count"],
        "eligible_count": row["eligible_count"],
        "progress": shown_progress,
        "certificate_hash": row["certificate_hash"] if completed else None,
        "winners": [_public_pick(pick) for pick in row["winners"] or ()] if completed else [],
        "alternates": [_public_pick(pick) for pick in row["alternates"] or ()] if completed else [],
    }


def _public_pick(pick: dict[str, Any]) -> dict[str, Any]:
    return {key: pick.get(key) for key in PUBLIC_PICK}


async def spectator_view(pool: Any, token: str) -> dict[str, Any] | None:
    """The public view of the draw this token opens, or None (no such token, or revoked)."""
    if not TOKEN.fullmatch(token):
        return None
    row = await read_snapshot(pool, SPECTATOR_SNAPSHOT, token)
    return public_view(row) if row is not None else None


class SpectatorLinks:
    """The creator's side: making and revoking the link of their own draw."""

    def __init__(self, db: AsyncSession) -> None:
        self.db = db

    async def open(self, user_id: uuid.UUID, draw_id: uuid.UUID) -> bool:
        """Give the draw a link unless it has one (a link already shared keeps working); False when not theirs."""
        found = await self.db.scalar(
            sa.update(Draw)
            .where(Draw.id == draw_id, Draw.user_id == user_id)
            .values(spectator_token=sa.func.coalesce(Draw.spectator_token, new_spectator_token()))
            .returning(Draw.id)
        )
        await self.db.commit()
        return found is not None

    async def revoke(self, user_id: uuid.UUID, draw_id: uuid.UUID) -> bool:
        """The link finds nothing from now on; pages watching it learn at once. False when not theirs."""
        found = await self.db.scalar(
            sa.update(Draw)
            .where(Draw.id == draw_id, Draw.user_id == user_id)
            .values(spectator_token=None)
            .returning(Draw.id)
        )
        if found is not None:
            # Delivered at commit: open streams re-read, find the token gone and end.
            await self.db.execute(sa.select(sa.func.pg_notify("draw_progress", str(found))))
        await self.db.commit()
        return found is not None


class SpectatorLinkController(Controller):
    path = "/draws/{draw_id:uuid}/spectator-link"
    guards = [requires_login]

    @post("/", name="draws:spectator-link")
    async def open_link(
        self, request: Request[Any, Any, Any], db_session: NamedDependency[AsyncSession], draw_id: FromPath[uuid.UUID]
    ) -> Response[Any]:
        user = current_user(request)
        assert user is not None
        if not await SpectatorLinks(db_session).open(user.id, draw_id):
            raise NotFoundException()
        return redirect(request, f"/draws/{draw_id}")

    @post("/revoke", name="draws:spectator-link-revoke")
    async def revoke_link(
        self, request: Request[Any, Any, Any], db_session: NamedDependency[AsyncSession], draw_id: FromPath[uuid.UUID]
    ) -> Response[Any]:
        user = current_user(request)
        assert user is not None
        if not await SpectatorLinks(db_session).revoke(user.id, draw_id):
            raise NotFoundException()
        return redirect(request, f"/draws/{draw_id}")


class WatchController(Controller):
    """The spectators' side: public, read-only."""

    path = "/watch/{token:str}"

    @get("/", name="watch:show")
    async def show(self, request: Request[Any, Any, Any], token: FromPath[str]) -> Response[Any]:
        draw = await spectator_view(request.app.state.read_pool, token)
        if draw is None:
            raise NotFoundException()
        page = render(request, "draws/watch.html", _context(draw, token, polling=False))
        page.headers.update(PAGE_HEADERS)
        return page

    @get("/live", name="watch:live")
    async def live(
        self, request: Request[Any, Any, Any], token: FromPath[str], poll: FromQuery[str | None] = None
    ) -> Response[Any]:
        """Everything on the page that changes: progress, then the winners."""
        draw = await spectator_view(request.app.state.read_pool, token)
        if draw is None:
            if wants_fragment(request):
                # The link was revoked while the page was open: reload it, to the not-found page.
                return Response(b"", status_code=HTTP_404_NOT_FOUND, headers={"HX-Refresh": "true"})
            raise NotFoundException()
        page = render(
            request, "draws/watch.html", _context(draw, token, polling=poll == "1"), fragment="draws/_watch_live.html"
        )
        page.headers.update(PAGE_HEADERS)
        return page

    @get("/events", name="watch:events", opt={"skip_session": True})
    async def events(self, request: Request[Any, Any, Any], token: FromPath[str]) -> ServerSentEvent:
        """Progress as server-sent events until the draw is finished or the link revoked."""
        pool = request.app.state.read_pool
        draw_id = await pool.fetchval(SPECTATED_DRAW, token) if TOKEN.fullmatch(token) else None
        if draw_id is None:
            raise NotFoundException()
        return progress_stream(request, draw_id, f"spectators:{token}", lambda: spectator_view(pool, token))


def _context(draw: dict[str, Any], token: str, *, polling: bool) -> dict[str, Any]:
    return {"draw": draw, "token": token, "polling": polling, "labels": PUBLIC_EXCLUSION_LABELS}
