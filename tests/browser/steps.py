"""Steps that several browser journeys take on their way."""

from __future__ import annotations

import re
from collections.abc import Callable

from playwright.sync_api import Page, expect

from tests.conftest import Creator


def log_in(page: Page, user: Creator) -> None:
    """From the login page to the logged-in dashboard."""
    page.goto("/login")
    page.get_by_label("Email").fill(user.email)
    page.get_by_label("Password").fill(user.password)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("button", name="Log out")).to_be_visible()


def connect_the_sandbox(page: Page, live_url: Callable[[str], re.Pattern[str]]) -> None:
    """Connect a sandbox account through the consent page, back on /accounts."""
    page.goto("/accounts")
    page.get_by_test_id("platform-sandbox").get_by_role("button", name="Connect Sandbox").click()
    page.get_by_role("button", name=re.compile("allow", re.IGNORECASE)).click()
    expect(page).to_have_url(live_url("/accounts?notice=connected&platform=sandbox"))
