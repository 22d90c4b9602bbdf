"""A creator shares the spectator link of a draw; their audience, without an account, watches it live to the winners."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.browser.steps import connect_the_sandbox, log_in
from tests.conftest import Creator

pytestmark = pytest.mark.browser

Shoot = Callable[[Page, str], Path]
Url = Callable[[str], re.Pattern[str]]


def launch_a_draw_on_the_big_sandbox_post(page: Page, user: Creator, live_url: Url, title: str) -> None:
    log_in(page, user)
    connect_the_sandbox(page, live_url)
    page.goto("/draws/new")
    page.get_by_label("Title").fill(title)
    posts = page.get_by_test_id("posts-sandbox")
    big_post = posts.locator(".post-choice").filter(has_text=re.compile(r"10,0\d\d comments|9,9\d\d comments"))
    expect(big_post).to_have_count(1)
    big_post.get_by_role("checkbox").check()
    page.wait_for_load_state("networkidle")
    page.get_by_label("Winners (1 to 100)").fill("3")
    page.get_by_label("Alternates (0 to 50)").fill("2")
    page.get_by_role("button", name="Launch the draw").click()
    expect(page).to_have_url(re.compile(r"/draws/[0-9a-f-]{36}$"))


def test_the_audience_watches_the_draw_live_through_the_spectator_link_until_the_winners(
    page: Page,
    browser: Browser,
    browser_context_args: dict[str, Any],
    make_user: Callable[..., Creator],
    screenshot: Shoot,
    live_url: Url,
    request: pytest.FixtureRequest,
) -> None:
    user = make_user()
    launch_a_draw_on_the_big_sandbox_post(page, user, live_url, "Winter giveaway, live")
    expect(page.get_by_test_id("draw-status")).to_have_text("pending")

    page.get_by_role("button", name="Create a spectator link").click()
    link = page.get_by_test_id("spectator-url")
    expect(link).to_have_value(re.compile(r"^http://127\.0\.0\.1:\d+/watch/[A-Za-z0-9_-]{22}$"))
    expect(page.get_by_role("button", name="Turn the link off")).to_be_visible()
    screenshot(page, "creator-link")
    address = link.input_value()

    audience = browser.new_context(**browser_context_args)
    try:
        spectator = audience.new_page()
        spectator.goto(address)
        expect(spectator.get_by_test_id("watch-title")).to_have_text("Winter giveaway, live")
        expect(spectator.get_by_test_id("draw-log-record").first).to_contain_text("opened")
        expect(spectator.get_by_test_id("draw-status")).to_have_text("pending")
        expect(spectator.get_by_role("link", name="Log in")).to_be_visible()
        screenshot(spectator, "spectator-waiting")
        # Set on the page as loaded: still there at the end, so the page was updated in place, never reloaded.
        spectator.evaluate("window.loadedOnce = true")

        request.getfixturevalue("worker")

        expect(spectator.get_by_test_id("draw-status")).to_have_text("processing", timeout=30_000)
        expect(spectator.get_by_test_id("fetched")).not_to_have_text(re.compile(r"^0\b"), timeout=30_000)
        screenshot(spectator, "spectator-progress")

        winners = spectator.get_by_test_id("winners").locator("li")
        expect(winners).to_have_count(3, timeout=120_000)
        expect(spectator.get_by_test_id("alternates").locator("li")).to_have_count(2)
        expect(spectator.get_by_test_id("draw-status")).to_have_text("completed")
        expect(winners.first).to_contain_text(re.compile(r"@\S+"))
        assert spectator.evaluate("window.loadedOnce") is True
        screenshot(spectator, "spectator-winners")

        spectator.get_by_test_id("certificate-link").click()
        expect(spectator.get_by_test_id("verdict")).to_contain_text("Every check passed")

        page.reload()
        page.get_by_role("button", name="Turn the link off").click()
        expect(page.get_by_role("button", name="Create a spectator link")).to_be_visible()
        spectator.goto(address)
        expect(spectator.get_by_role("heading", name="Page not found")).to_be_visible()
        screenshot(spectator, "spectator-link-revoked")
    finally:
        audience.close()
