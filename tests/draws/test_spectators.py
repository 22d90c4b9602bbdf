"""The spectator link: the creator makes and revokes it; anyone with it watches the draw live, and sees no entrant."""

from __future__ import annotations

import asyncio
import contextlib
import re
import uuid
from typing import Any

import httpx
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.conftest import LiveServer, hx_location, post_form
from tests.draws.conftest import draw_fields, read_events, submit_draw, update_draw, wait_for_event
from tests.draws.sandbox_draws import Engines, engines, load_draw
from web.db import create_read_pool
from web.draws.events import DrawWatchers, progress_events
from web.draws.spectators import spectator_view

__all__ = ["engines"]  # a fixture used below

WATCH_URL = re.compile(r'value="(http://[^"]+/watch/([A-Za-z0-9_-]{22}))"')
# Each comment carries a marker that must never reach a spectator; two entries break the rules.
ENTRIES = (
    "username,comment\n"
    + "".join(f"fan{number:02d},I want to win marker-{number:02d} @friend\n" for number in range(1, 11))
    + "nokeyword_nora,just passing by marker-nora\n"
    + "fan01,win again marker-again\n"
).encode()
RUNNING = {
    "stage": "fetching",
    "fetched": 1234,
    "expected": 5000,
    "excluded": {"duplicate": 7, "keyword_missing": 3},
    "eligible": 0,
    "percent": 24,
    "paused_until": None,
    "message": None,
}


async def ruled_draw(logged_in: Any, grant: Any) -> tuple[httpx.AsyncClient, Any, str]:
    """A creator's draw from an uploaded list, one entry per person, with a keyword."""
    client, user = await logged_in()
    await grant(user.id, 5)
    fields = draw_fields(comment_keywords="win", one_entry_per_user="on")
    response = await submit_draw(client, fields, ENTRIES)
    assert response.status_code == 303, response.text
    return client, user, response.headers["location"].rsplit("/", 1)[1]


async def open_link(client: httpx.AsyncClient, draw_id: str) -> tuple[str, str]:
    """Create the link from the draw's page: (the address shown, its token)."""
    response = await post_form(client, f"/draws/{draw_id}/spectator-link", {})
    assert response.status_code == 303 and response.headers["location"] == f"/draws/{draw_id}"
    found = WATCH_URL.search((await client.get(f"/draws/{draw_id}")).text)
    assert found, "the draw page shows the link"
    return found.group(1), found.group(2)


async def test_the_creator_creates_a_link_that_anyone_opens_without_an_account(
    list_draw: Any, client: httpx.AsyncClient, live_server: LiveServer, draw_row: Any
) -> None:
    owner, _, draw_id = await list_draw()
    before = await owner.get(f"/draws/{draw_id}")
    assert "Create a spectator link" in before.text and "/watch/" not in before.text

    address, token = await open_link(owner, draw_id)

    assert address == f"{live_server.url}/watch/{token}"
    page = (await owner.get(f"/draws/{draw_id}")).text
    assert 'id="spectator-url"' in page and "readonly" in page and "Turn the link off" in page
    draw = await draw_row(draw_id)
    assert draw.spectator_token == token
    watched = await client.get(f"/watch/{token}")
    assert watched.status_code == 200
    assert "Spring giveaway" in watched.text
    assert 'data-testid="draw-log-record" data-kind="opened"' in watched.text, "the opened record shows at once"
    assert 'data-status="pending"' in watched.text and f'sse-connect="/watch/{token}/events"' in watched.text
    assert watched.headers["x-robots-tag"] == "noindex"


async def test_creating_the_link_again_keeps_the_one_already_shared(list_draw: Any) -> None:
    owner, _, draw_id = await list_draw()
    _, token = await open_link(owner, draw_id)

    again = await post_form(owner, f"/draws/{draw_id}/spectator-link", {}, headers={"HX-Request": "true"})

    assert again.status_code == 200 and hx_location(again) == f"/draws/{draw_id}"
    assert f"/watch/{token}" in (await owner.get(f"/draws/{draw_id}")).text


async def test_a_revoked_link_is_not_found_anywhere(list_draw: Any, client: httpx.AsyncClient, draw_row: Any) -> None:
    owner, _, draw_id = await list_draw()
    _, token = await open_link(owner, draw_id)

    revoked = await post_form(owner, f"/draws/{draw_id}/spectator-link/revoke", {})

    assert revoked.status_code == 303 and revoked.headers["location"] == f"/draws/{draw_id}"
    assert (await draw_row(draw_id)).spectator_token is None
    for path in ("", "/live", "/live?poll=1", "/events"):
        response = await client.get(f"/watch/{token}{path}")
        assert response.status_code == 404, path
        assert "Page not found" in response.text
    # A page left open on the link reloads, to the same answer.
    fragment = await client.get(f"/watch/{token}/live?poll=1", headers={"HX-Request": "true"})
    assert fragment.status_code == 404 and fragment.headers["HX-Refresh"] == "true"
    page = (await owner.get(f"/draws/{draw_id}")).text
    assert "Create a spectator link" in page and token not in page
    _, new_token = await open_link(owner, draw_id)
    assert new_token != token


async def test_an_unknown_token_is_not_found(client: httpx.AsyncClient) -> None:
    for token in ("A" * 22, "short", "x" * 300, "%00"):
        assert (await client.get(f"/watch/{token}")).status_code == 404, token
        assert (await client.get(f"/watch/{token}/events")).status_code == 404, token


async def test_another_creator_can_neither_create_nor_revoke_the_link(
    list_draw: Any, logged_in: Any, draw_row: Any
) -> None:
    owner, _, draw_id = await list_draw()
    stranger, _ = await logged_in()
    for as_htmx in (False, True):
        headers = {"HX-Request": "true"} if as_htmx else {}
        created = await post_form(stranger, f"/draws/{draw_id}/spectator-link", {}, headers=headers)
        assert created.status_code == 404 and "HX-Location" not in created.headers
    assert (await draw_row(draw_id)).spectator_token is None

    _, token = await open_link(owner, draw_id)
    revoked = await post_form(stranger, f"/draws/{draw_id}/spectator-link/revoke", {})
    assert revoked.status_code == 404
    assert (await draw_row(draw_id)).spectator_token == token
    assert token not in (await stranger.get(f"/draws/{draw_id}")).text


async def test_an_anonymous_visitor_is_sent_to_log_in_and_no_link_is_made(
    list_draw: Any, client: httpx.AsyncClient, draw_row: Any
) -> None:
    _, _, draw_id = await list_draw()
    for path in ("spectator-link", "spectator-link/revoke"):
        response = await post_form(client, f"/draws/{draw_id}/{path}", {})
        assert response.status_code == 303
        assert response.headers["location"] == f"/login?next=/draws/{draw_id}/{path}"
    assert (await draw_row(draw_id)).spectator_token is None


async def test_spectators_see_the_progress_while_the_draw_runs(
    list_draw: Any, client: httpx.AsyncClient, database_url: str
) -> None:
    owner, _, draw_id = await list_draw()
    _, token = await open_link(owner, draw_id)

    await update_draw(database_url, draw_id, status="processing", progress=RUNNING)

    page = await client.get(f"/watch/{token}")
    assert 'data-status="processing"' in page.text and "Collecting entries" in page.text
    assert '<progress class="progress-bar" max="100" value="24"' in page.text
    figures = ("1,234", "of about 5,000", "Already entered: <strong>7</strong>", "Keyword missing: <strong>3</strong>")
    for shown in figures:
        assert shown in page.text, shown
    assert "Cancel the draw" not in page.text and "History" not in page.text
    polled = await client.get(f"/watch/{token}/live?poll=1", headers={"HX-Request": "true"})
    assert polled.status_code == 200 and "<html" not in polled.text
    assert f'hx-get="/watch/{token}/live?poll=1" hx-trigger="every 2s"' in polled.text and "1,234" in polled.text


async def test_spectators_see_the_winners_and_certificate_but_no_entrant_data(
    logged_in: Any, grant: Any, client: httpx.AsyncClient, engines: Engines, engine: AsyncEngine
) -> None:
    owner, user, draw_id = await ruled_draw(logged_in, grant)
    _, token = await open_link(owner, draw_id)

    assert await engines.runner().run_next(asyncio.Event())

    draw = await load_draw(engine, uuid.UUID(draw_id))
    assert draw.status == "completed" and len(draw.winners) == 2 and len(draw.alternates) == 1
    page = await client.get(f"/watch/{token}")
    assert page.status_code == 200
    assert 'data-testid="winners"' in page.text and 'data-testid="alternates"' in page.text
    for pick in draw.winners + draw.alternates:
        assert f"@{pick['username']}" in page.text
    assert f'href="/certificates/{draw.certificate_hash}"' in page.text
    assert "Drawn at random among 10 eligible entries out of 12" in page.text
    assert "sse-connect" not in page.text and "every 2s" not in page.text
    # The owner's page shows the winners' comments and the excluded entries; the spectator's none of it.
    owner_page = (await owner.get(f"/draws/{draw_id}")).text
    assert "marker-" in owner_page and "nokeyword_nora" in owner_page
    for private in ("marker-", "nokeyword_nora", user.email, "127.0.0.1", "entries.csv", "winners.csv", str(draw_id)):
        assert private not in page.text, private
    fragment = await client.get(f"/watch/{token}/live", headers={"HX-Request": "true"})
    assert "@" + draw.winners[0]["username"] in fragment.text and "marker-" not in fragment.text


async def test_a_failed_draw_tells_spectators_nothing_of_the_creators_account(
    list_draw: Any, client: httpx.AsyncClient, database_url: str
) -> None:
    owner, _, draw_id = await list_draw()
    _, token = await open_link(owner, draw_id)
    reason = "Not enough credits: this draw needs 2, you have 1."

    await update_draw(
        database_url, draw_id, status="failed", error=reason, progress={"stage": "done", "message": reason}
    )

    page = await client.get(f"/watch/{token}")
    assert 'data-status="failed"' in page.text
    assert "This draw could not be completed: no winners were drawn." in page.text
    assert "you have 1" not in page.text
    assert "you have 1" in (await owner.get(f"/draws/{draw_id}")).text


async def test_the_spectator_stream_pushes_progress_and_ends_at_completion(
    list_draw: Any, client: httpx.AsyncClient, database_url: str
) -> None:
    owner, _, draw_id = await list_draw()
    _, token = await open_link(owner, draw_id)
    events: list[tuple[str, str]] = []
    async with client.stream("GET", f"/watch/{token}/events") as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        reader = asyncio.create_task(read_events(response, events))
        await wait_for_event(events, lambda event: event[0] == "progress" and 'data-status="pending"' in event[1])
        await update_draw(database_url, draw_id, status="processing", progress=RUNNING)
        await wait_for_event(events, lambda event: "1,234" in event[1] and "Already entered" in event[1])
        await update_draw(database_url, draw_id, status="completed", progress={"stage": "done", "percent": 100})
        await asyncio.wait_for(reader, 10)
    assert events[-1] == ("done", "completed")
    assert 'data-status="completed"' in events[-2][1]


async def test_revoking_the_link_ends_the_streams_of_those_watching(
    list_draw: Any, new_client: Any, database_url: str
) -> None:
    owner, _, draw_id = await list_draw()
    _, token = await open_link(owner, draw_id)
    events: list[tuple[str, str]] = []
    async with new_client().stream("GET", f"/watch/{token}/events") as response:
        reader = asyncio.create_task(read_events(response, events))
        await wait_for_event(events, lambda event: event[0] == "progress")

        assert (await post_form(owner, f"/draws/{draw_id}/spectator-link/revoke", {})).status_code == 303

        await asyncio.wait_for(reader, 10)
    assert events[-1] == ("done", "gone")
    assert [event for event, _ in events] == ["progress", "done"]


async def test_many_spectators_at_once_all_get_each_update(list_draw: Any, new_client: Any, database_url: str) -> None:
    owner, _, draw_id = await list_draw()
    _, token = await open_link(owner, draw_id)
    received: list[list[tuple[str, str]]] = [[] for _ in range(25)]
    async with contextlib.AsyncExitStack() as stack, asyncio.TaskGroup() as streams:
        for events in received:
            response = await stack.enter_async_context(new_client().stream("GET", f"/watch/{token}/events"))
            streams.create_task(read_events(response, events))
        for events in received:
            await wait_for_event(events, lambda event: 'data-status="pending"' in event[1])

        await update_draw(database_url, draw_id, status="processing", progress=RUNNING)

        for events in received:
            await wait_for_event(events, lambda event: "1,234" in event[1])
        await update_draw(database_url, draw_id, status="completed", progress={"stage": "done", "percent": 100})
    assert all(events[-1] == ("done", "completed") for events in received)


async def test_the_spectators_of_a_draw_share_one_read_per_update(list_draw: Any, database_url: str) -> None:
    owner, _, draw_id = await list_draw()
    _, token = await open_link(owner, draw_id)
    pool = await create_read_pool(database_url)
    watchers = DrawWatchers(database_url)
    reads = 0

    async def read() -> dict[str, Any] | None:
        nonlocal reads
        reads += 1
        return await spectator_view(pool, token)

    def render(view: dict[str, Any]) -> str:
        return f"{view['status']} {view['progress'].get('fetched')}"

    async def watch(into: list[str]) -> None:
        async for message in progress_events(watchers, uuid.UUID(draw_id), f"spectators:{token}", read, render):
            into.append(str(message.data))

    seen: list[list[str]] = [[] for _ in range(200)]
    try:
        async with asyncio.timeout(20), asyncio.TaskGroup() as streams:
            for into in seen:
                streams.create_task(watch(into))
            while not all(into == ["pending 0"] for into in seen):  # noqa: ASYNC110
                await asyncio.sleep(0.02)
            await update_draw(database_url, draw_id, status="processing", progress=RUNNING)
            while not all(len(into) == 2 for into in seen):  # noqa: ASYNC110
                await asyncio.sleep(0.02)
            await update_draw(database_url, draw_id, status="completed", progress={"stage": "done", "fetched": 12})
    finally:
        await watchers.close()
        await pool.close()
    assert all(into == ["pending 0", "processing 1234", "completed 12", "completed"] for into in seen)
    assert reads == 3
