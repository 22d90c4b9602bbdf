"""The replay of a draw from its certificate: a public page, and an animated image the creator posts."""

from __future__ import annotations

import io
import re
from html import unescape
from typing import Any

import httpx
import pytest
from PIL import Image, ImageChops, ImageSequence
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.conftest import LiveServer
from tests.draws.test_announcements import insert_completed_draw
from web.certificates.animation import reveal_url


def frames_of(data: bytes) -> tuple[Image.Image, list[int]]:
    image = Image.open(io.BytesIO(data))
    durations = []
    for each in ImageSequence.Iterator(image):
        each.load()  # WebP reads a frame's duration with the frame
        durations.append(int(each.info["duration"]))
    return image, durations


def frame(image: Image.Image, number: int) -> Image.Image:
    image.seek(number)
    return image.convert("RGB")


@pytest.mark.parametrize(("extension", "media_type"), [("webp", "image/webp"), ("gif", "image/gif")])
async def test_the_reveal_image_is_a_short_animation_of_the_draw(
    make_user: Any, engine: AsyncEngine, client: httpx.AsyncClient, extension: str, media_type: str
) -> None:
    user = await make_user()
    draw = await insert_completed_draw(engine, user.id, [])

    response = await client.get(f"/certificates/{draw.certificate_hash}/reveal.{extension}")
    cached = await client.get(f"/certificates/{draw.certificate_hash}/reveal.{extension}")

    assert response.status_code == 200
    assert response.headers["content-type"] == media_type
    assert "set-cookie" not in response.headers
    assert cached.content == response.content
    image, durations = frames_of(response.content)
    assert image.format == extension.upper()
    assert image.size == (480, 480)
    assert len(durations) > 10
    assert 3_000 <= sum(durations) <= 8_000
    assert all(20 <= duration <= 2_000 for duration in durations)
    assert ImageChops.difference(frame(image, 0), frame(image, len(durations) - 1)).getbbox() is not None


async def test_unknown_or_unfinished_certificates_have_no_replay(
    make_user: Any, engine: AsyncEngine, client: httpx.AsyncClient
) -> None:
    user = await make_user()
    running = await insert_completed_draw(engine, user.id, [], status="processing")

    for path in ("/reveal", "/reveal.webp", "/reveal.gif"):
        assert (await client.get(f"/certificates/{'a' * 64}{path}")).status_code == 404
        assert (await client.get(f"/certificates/{running.certificate_hash}{path}")).status_code == 404
    assert (await client.get("/certificates/not-a-hash/reveal.webp")).status_code == 404


async def test_the_reveal_page_replays_the_winners_in_order_for_anyone(
    make_user: Any, engine: AsyncEngine, client: httpx.AsyncClient, live_server: LiveServer
) -> None:
    user = await make_user()
    draw = await insert_completed_draw(engine, user.id, [])
    assert draw.certificate is not None

    url = reveal_url(live_server.settings, draw.certificate_hash or "")
    page = await client.get(url.removeprefix(live_server.url))

    assert url == f"{live_server.url}/certificates/{draw.certificate_hash}/reveal"
    assert page.status_code == 200
    html = page.text
    shown = [unescape(name) for name in re.findall(r'data-testid="reveal-winner">@(.*?)</li>', html, re.S)]
    assert shown == [winner["username"] for winner in draw.certificate["winners"]]
    counts = draw.certificate["counts"]
    assert f'data-participants="{counts["participants"]}"' in html
    assert f'data-eligible="{counts["eligible"]}"' in html
    assert f'data-excluded="{sum(counts["excluded"].values())}"' in html
    assert f'href="/certificates/{draw.certificate_hash}"' in html
    assert f'href="/certificates/{draw.certificate_hash}/reveal.webp"' in html
    assert re.search(r'<script src="/static/js/reveal\.js\?v=\w+" defer></script>', html)
    assert "<script>" not in html
    script = await client.get("/static/js/reveal.js")
    assert script.status_code == 200 and "prefers-reduced-motion" in script.text
