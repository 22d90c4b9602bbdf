"""Connecting and disconnecting the sandbox platform account, in a real Chromium."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from tests.browser.steps import log_in
from tests.conftest import Creator

pytestmark = pytest.mark.browser

Shoot = Callable[[Page, str], Path]
Url = Callable[[str], re.Pattern[str]]


def test_a_creator_connects_the_sandbox_account_sees_its_posts_and_disconnects_it(
    page: Page, make_user: Callable[..., Creator], screenshot: Shoot, live_url: Url
) -> None:
    user = make_user()
    log_in(page, user)

    page.get_by_role("link", name="Accounts").click()
    expect(page).to_have_url(live_url("/accounts"))
    sandbox = page.get_by_test_id("platform-sandbox")
    expect(sandbox.get_by_test_id("state")).to_have_text("Not connected")
    screenshot(page, "accounts-before")

    sandbox.get_by_role("button", name="Connect Sandbox").click()
    expect(page).to_have_url(re.compile(r"/sandbox/oauth/authorize\?"))
    screenshot(page, "consent")
    page.get_by_role("button", name=re.compile("allow", re.IGNORECASE)).click()

    expect(page).to_have_url(live_url("/accounts?notice=connected&platform=sandbox"))
    expect(page.get_by_test_id("accounts-notice")).to_have_text("Sandbox is connected.")
    sandbox = page.get_by_test_id("platform-sandbox")
    expect(sandbox.get_by_test_id("state")).to_have_text("Connected")
    posts = sandbox.get_by_test_id("recent-posts").locator(".post-item")
    expect(posts).to_have_count(3)
    expect(sandbox.get_by_test_id("recent-posts")).to_contain_text("comments")
    screenshot(page, "connected-with-posts")

    sandbox.get_by_role("button", name="Disconnect").click()
    expect(page).to_have_url(live_url("/accounts?notice=disconnected&platform=sandbox"))
    expect(page.get_by_test_id("accounts-notice")).to_contain_text("Sandbox is disconnected.")
    expect(page.get_by_test_id("platform-sandbox").get_by_test_id("state")).to_have_text("Not connected")
    screenshot(page, "disconnected")


def test_declining_on_the_consent_page_connects_nothing(
    page: Page, make_user: Callable[..., Creator], live_url: Url
) -> None:
    user = make_user()
    log_in(page, user)
    page.goto("/accounts")
    page.get_by_test_id("platform-sandbox").get_by_role("button", name="Connect Sandbox").click()
    page.get_by_role("button", name=re.compile("deny", re.IGNORECASE)).click()
    expect(page).to_have_url(live_url("/accounts?refused=denied&platform=sandbox"))
    expect(page.get_by_test_id("accounts-alert")).to_have_text(
        "You declined the connection on Sandbox. Nothing was connected."
    )
    expect(page.get_by_test_id("platform-sandbox").get_by_test_id("state")).to_have_text("Not connected")
