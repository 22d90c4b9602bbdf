"""/blacklist: add with messages by field, search, soft removal, restoring, one creator's list only."""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.conftest import post_form
from web.blacklist.models import BlacklistEntry
from web.db import session_factory


async def rows(engine: AsyncEngine) -> list[tuple[str, str, bool, str | None]]:
    async with session_factory(engine)() as db:
        found = await db.scalars(sa.select(BlacklistEntry).order_by(BlacklistEntry.username))
        return [(row.username, row.platform, row.is_active, row.reason) for row in found]


async def test_a_username_is_added_normalised_listed_and_searchable(logged_in: Any, engine: AsyncEngine) -> None:
    client, _ = await logged_in()
    response = await post_form(client, "/blacklist", {"username": " @CheatER ", "platform": "sandbox", "reason": "bot"})
    assert response.status_code == 303
    page = await client.get(response.headers["location"])
    assert "@cheater is on your blacklist" in page.text and "@cheater" in page.text
    assert await rows(engine) == [("cheater", "sandbox", True, "bot")]
    await post_form(client, "/blacklist", {"username": "someone_else", "platform": "all", "reason": ""})
    found = await client.get("/blacklist?q=CHEAT", headers={"HX-Request": "true"})
    assert "@cheater" in found.text and "someone_else" not in found.text and "<html" not in found.text


@pytest.mark.parametrize(
    ("data", "field", "message"),
    [
        ({"username": "", "platform": "all", "reason": ""}, "username", "Enter the username to block."),
        ({"username": "@", "platform": "all", "reason": ""}, "username", "Enter the username to block."),
        ({"username": "two words", "platform": "all", "reason": ""}, "username", "no spaces"),
        ({"username": "x" * 129, "platform": "all", "reason": ""}, "username", "at most 128"),
        ({"username": "ann", "platform": "myspace", "reason": ""}, "platform", "Choose a platform"),
        ({"username": "ann", "platform": "all", "reason": "r" * 501}, "reason", "at most 500"),
    ],
)
async def test_bad_input_is_refused_by_its_field(
    logged_in: Any, engine: AsyncEngine, data: dict[str, str], field: str, message: str
) -> None:
    client, _ = await logged_in()
    response = await post_form(client, "/blacklist", data)
    assert response.status_code == 422
    assert message in response.text.split(f'id="{field}-error"')[1].split("</p>")[0]
    assert await rows(engine) == []


async def test_adding_twice_is_refused_and_removing_then_adding_restores(logged_in: Any, engine: AsyncEngine) -> None:
    client, _ = await logged_in()
    await post_form(client, "/blacklist", {"username": "ann", "platform": "all", "reason": "first"})
    again = await post_form(client, "/blacklist", {"username": "@ANN", "platform": "all", "reason": ""})
    assert again.status_code == 409 and "already on your blacklist" in again.text
    async with session_factory(engine)() as db:
        entry_id = await db.scalar(sa.select(BlacklistEntry.id))
    removed = await post_form(client, f"/blacklist/{entry_id}/remove", {})
    assert removed.status_code == 303
    assert await rows(engine) == [("ann", "all", False, "first")]
    assert "Your blacklist is empty." in (await client.get("/blacklist")).text
    restored = await post_form(client, "/blacklist", {"username": "Ann", "platform": "all", "reason": "again"})
    assert "notice=restored" in restored.headers["location"]
    assert await rows(engine) == [("ann", "all", True, "again")]


async def test_one_creator_neither_sees_nor_removes_anothers_entries(logged_in: Any, engine: AsyncEngine) -> None:
    owner, _ = await logged_in()
    stranger, _ = await logged_in()
    await post_form(owner, "/blacklist", {"username": "ann", "platform": "all", "reason": ""})
    async with session_factory(engine)() as db:
        entry_id = await db.scalar(sa.select(BlacklistEntry.id))
    assert "@ann" not in (await stranger.get("/blacklist")).text
    assert (await post_form(stranger, f"/blacklist/{entry_id}/remove", {})).status_code == 404
    # The same name on the stranger's own list is theirs, independent of the owner's.
    assert (
        await post_form(stranger, "/blacklist", {"username": "ann", "platform": "all", "reason": ""})
    ).status_code == 303
    assert [row[2] for row in await rows(engine)] == [True, True]


async def test_the_list_is_paginated(logged_in: Any) -> None:
    client, _ = await logged_in()
    for number in range(27):
        await post_form(client, "/blacklist", {"username": f"user{number:02d}", "platform": "all", "reason": ""})
    first = await client.get("/blacklist")
    assert "Page 1 of 2" in first.text and "@user24" in first.text and "@user25" not in first.text
    assert "@user26" in (await client.get("/blacklist?page=2")).text
