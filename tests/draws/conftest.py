"""Helpers for the draw pages: credits, uploaded lists, draws created through the form."""

from __future__ import annotations

import asyncio
import json
import re
import uuid
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.conftest import csrf_token
from web.credits.services import CreditsService
from web.db import connect, session_factory
from web.draws.models import Draw

DRAW_URL = re.compile(r"^/draws/([0-9a-f-]{36})$")
UPDATABLE = {"status", "progress", "error", "credits_used"}


def list_csv(rows: int, header: str = "username,comment", start: int = 1) -> bytes:
    lines = [header] + [f"entrant{number},I want to win @friend{number}" for number in range(start, start + rows)]
    return ("\n".join(lines) + "\n").encode()


def draw_fields(**overrides: str) -> dict[str, str]:
    fields = {"title": "Spring giveaway", "winners_count": "2", "alternates_count": "1", "timezone": "UTC"}
    fields.update(overrides)
    return {name: value for name, value in fields.items() if value is not None}


async def submit_draw(
    client: httpx.AsyncClient,
    fields: dict[str, str],
    csv_bytes: bytes | None = None,
    posts: list[str] | None = None,
    url: str = "/draws/new",
) -> httpx.Response:
    data: dict[str, Any] = {**fields, "_csrf_token": await csrf_token(client)}
    if posts:
        data["post"] = posts
    files = {"entries_file": ("entries.csv", csv_bytes, "text/csv")} if csv_bytes is not None else None
    if files is None:
        # Multipart like the browser's form, even without a file.
        files = {"entries_file": ("", b"", "application/octet-stream")}
    return await client.post(url, data=data, files=files)


@pytest.fixture
def grant(engine: AsyncEngine) -> Any:
    async def give(user_id: uuid.UUID, amount: int) -> None:
        async with session_factory(engine)() as db:
            await CreditsService(db).grant(
                user_id, amount, transaction_type="bonus", idempotency_key=f"test:{uuid.uuid4()}"
            )

    return give


@pytest.fixture
def draw_row(engine: AsyncEngine) -> Any:
    async def read(draw_id: uuid.UUID | str) -> Draw:
        async with session_factory(engine)() as db:
            draw = await db.scalar(sa.select(Draw).where(Draw.id == uuid.UUID(str(draw_id))))
            assert draw is not None
            return draw

    return read


@pytest.fixture
def list_draw(logged_in: Any, grant: Any) -> Any:
    """A creator with credits and a draw made from an uploaded list: `client, user, draw_id = await list_draw()`."""

    async def make(rows: int = 20, credits: int = 5, csv_bytes: bytes | None = None) -> tuple[Any, Any, str]:
        client, user = await logged_in()
        await grant(user.id, credits)
        response = await submit_draw(client, draw_fields(), csv_bytes or list_csv(rows))
        assert response.status_code == 303, response.text
        match = DRAW_URL.match(response.headers["location"])
        assert match, response.headers["location"]
        return client, user, match.group(1)

    return make


# Watching draws live


async def update_draw(database_url: str, draw_id: str, **values: Any) -> None:
    """What the engine does: change the row, then NOTIFY draw_progress."""
    async with connect(database_url) as conn:
        for column, value in values.items():
            assert column in UPDATABLE
            cast = "::jsonb" if isinstance(value, dict | list) else ""
            stored = json.dumps(value) if cast else value
            await conn.execute(f"UPDATE draws SET {column} = $2{cast} WHERE id = $1", uuid.UUID(draw_id), stored)  # noqa: S608
        await conn.execute("SELECT pg_notify('draw_progress', $1)", draw_id)


async def read_events(response: httpx.Response, into: list[tuple[str, str]]) -> None:
    event, data = "", []
    async for line in response.aiter_lines():
        if line.startswith("event:"):
            event = line[6:].strip()
        elif line.startswith("data:"):
            data.append(line[5:].removeprefix(" "))
        elif line == "" and event:
            into.append((event, "\n".join(data)))
            event, data = "", []


async def wait_for_event(events: list[tuple[str, str]], predicate: Any) -> None:
    async with asyncio.timeout(10):
        while not any(predicate(event) for event in events):  # noqa: ASYNC110
            await asyncio.sleep(0.05)
