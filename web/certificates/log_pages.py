"""The public log, for anyone: its records newest first, one record, a range as JSON, the witnessed head."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from litestar import Controller, Request, Response, get
from litestar.di import NamedDependency
from litestar.exceptions import NotFoundException
from litestar.params import FromPath
from sqlalchemy.ext.asyncio import AsyncSession

from web.certificates.log import draw_records, log_size, records_between
from web.certificates.models import LogCosignature, LogRecord
from web.fairness.canonical import canonical_json
from web.forms import clean_page
from web.htmx import render
from web.pagination import Page

RECORDS_PER_PAGE = 50
# A range fetched as JSON at once, for `cleack verify --log`.
RANGE_MAX = 1000


def _position(text: str | None, default: int) -> int:
    """A record number from the query; the default when absent or not a plain positive number."""
    if text and text.isascii() and text.isdigit() and len(text) <= 18:
        return max(1, int(text))
    return default


class LogController(Controller):
    path = "/log"

    @get("/", name="log:index")
    async def index(self, request: Request[Any, Any, Any], db_session: NamedDependency[AsyncSession]) -> Response[Any]:
        """Every record of the public log, newest first, and the latest witnessed head."""
        page = clean_page(request.query_params.get("page"))
        size = await log_size(db_session)
        rows = await db_session.scalars(
            sa.select(LogRecord)
            .order_by(LogRecord.seq.desc())
            .limit(RECORDS_PER_PAGE)
            .offset((page - 1) * RECORDS_PER_PAGE)
        )
        witnessed = await db_session.scalar(sa.select(LogCosignature).order_by(LogCosignature.id.desc()).limit(1))
        records = Page(list(rows), page, RECORDS_PER_PAGE, size)
        return render(
            request,
            "log/index.html",
            {"records": records, "witnessed": witnessed, "size": size},
            fragment="log/_records.html",
        )

    @get("/records.json", name="log:records-json", opt={"skip_session": True, "exclude_from_csrf": True})
    async def records_json(
        self, request: Request[Any, Any, Any], db_session: NamedDependency[AsyncSession]
    ) -> Response[Any]:
        """Records `from` … `to` (at most 1,000), oldest first, whole: what `cleack verify --log` reads."""
        size = await log_size(db_session)
        first = _position(request.query_params.get("from"), 1)
        last = min(_position(request.query_params.get("to"), size), size, first + RANGE_MAX - 1)
        records = await records_between(db_session, first, last) if first <= last else []
        return Response(
            content=b"[" + b",".join(canonical_json(record) for record in records) + b"]",
            media_type="application/json",
            headers={
                "content-disposition": f'inline; filename="cleack-log-{first}-{last}.json"',
                "cache-control": "public, max-age=60",
                "access-control-allow-origin": "*",
            },
        )

    @get("/{seq:int}", name="log:record")
    async def record(
        self, request: Request[Any, Any, Any], db_session: NamedDependency[AsyncSession], seq: FromPath[int]
    ) -> Response[Any]:
        """One record, with the other records of its draw."""
        row = await db_session.get(LogRecord, seq) if 1 <= seq < 1 << 62 else None
        if row is None:
            raise NotFoundException()
        siblings = await draw_records(db_session, row.draw_id)
        certified = next((sibling for sibling in siblings if sibling.kind == "certified"), None)
        return render(
            request,
            "log/record.html",
            {"row": row, "draw_records": siblings, "certified": certified, "canonical": canonical_json},
        )
