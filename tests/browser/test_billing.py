"""Buying credits and subscribing, in a real Chromium, through the payments sandbox's hosted checkout.

The return page shows "Confirming…" and polls; the credits appear once the sandbox's webhook has landed.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import run_in_own_loop
from tests.browser.steps import log_in
from tests.conftest import Creator, LiveServer
from web.billing.services import sync_catalogue
from web.credits.services import WELCOME_BONUS
from web.db import create_engine, session_factory

pytestmark = pytest.mark.browser

Shoot = Callable[[Page, str], Path]


@pytest.fixture
def catalogue(live_server: LiveServer, database_url: str) -> None:
    settings = live_server.settings.with_overrides(stripe_api_base=f"{live_server.url}/sandbox/stripe")

    async def mirror() -> None:
        engine = create_engine(database_url, pool_size=1)
        try:
            async with session_factory(engine)() as db:
                await sync_catalogue(db, settings)
        finally:
            await engine.dispose()

    run_in_own_loop(mirror)


def test_a_creator_buys_a_pack_then_subscribes_through_the_sandbox_checkout(
    page: Page, make_user: Callable[..., Creator], catalogue: None, screenshot: Shoot, live_url: Any
) -> None:
    creator = make_user()
    log_in(page, creator)
    page.get_by_role("link", name="Billing").click()
    expect(page.get_by_role("heading", name="Billing", level=1)).to_be_visible()
    expect(page.get_by_test_id("pack")).to_have_count(3)
    screenshot(page, "billing")

    page.get_by_role("button", name="Buy 20 credits").click()
    expect(page).to_have_url(re.compile(r"/sandbox/stripe/checkout/cs_test_"))
    expect(page.get_by_test_id("checkout-amount")).to_contain_text("$14.99")
    expect(page.get_by_test_id("checkout-item")).to_contain_text("20 credits")
    screenshot(page, "checkout")
    page.get_by_role("button", name="Pay $14.99").click()

    expect(page).to_have_url(re.compile(r"/billing/return\?session_id=cs_test_"))
    status = page.get_by_test_id("checkout-status")
    expect(status).to_contain_text(re.compile("Confirming…|Payment confirmed"))
    screenshot(page, "confirming")
    expect(status).to_contain_text("Payment confirmed")
    expect(page.get_by_test_id("confirmed-balance")).to_have_text(str(WELCOME_BONUS + 20))
    # The header's balance, drawn before the credits arrived, follows too.
    expect(page.get_by_test_id("nav-balance")).to_have_text(str(WELCOME_BONUS + 20))
    screenshot(page, "confirmed")

    page.goto("/billing")
    expect(page.get_by_test_id("payment-row")).to_have_count(1)
    page.get_by_test_id("plan-monthly").get_by_role("button", name="Subscribe").click()
    expect(page).to_have_url(re.compile(r"/sandbox/stripe/checkout/cs_test_"))
    expect(page.get_by_test_id("checkout-amount")).to_contain_text("$14.99")
    page.get_by_label("Card number").fill("4000 0000 0000 0002")
    page.get_by_role("button", name="Pay $14.99").click()
    expect(page.get_by_text("Your card was declined.")).to_be_visible()
    screenshot(page, "declined")
    page.get_by_label("Card number").fill("4242 4242 4242 4242")
    page.get_by_role("button", name="Pay $14.99").click()
    expect(page.get_by_test_id("checkout-status")).to_contain_text("Payment confirmed")
    expect(page.get_by_test_id("confirmed-balance")).to_have_text(str(WELCOME_BONUS + 30))

    page.goto("/billing")
    expect(page.get_by_test_id("subscription-status")).to_have_text("active")
    expect(page.get_by_test_id("subscription-term")).to_contain_text("Renews automatically on")
    page.get_by_role("button", name="Manage subscription").click()
    expect(page).to_have_url(re.compile(r"/sandbox/stripe/portal/bps_"))
    page.get_by_role("button", name="Cancel at the end of the period").click()
    expect(page.get_by_role("button", name="Resume the subscription")).to_be_visible()
    page.get_by_role("link", name="Return to Cleack").click()
    expect(page.get_by_test_id("subscription-term")).to_contain_text("Cancelled, valid until")
    screenshot(page, "cancelled")


def test_cancelling_the_checkout_comes_back_with_nothing_charged(
    page: Page, make_user: Callable[..., Creator], catalogue: None, live_url: Any
) -> None:
    log_in(page, make_user())
    page.goto("/billing")
    page.get_by_role("button", name="Buy 5 credits").click()
    expect(page).to_have_url(re.compile(r"/sandbox/stripe/checkout/"))
    page.get_by_role("button", name="Cancel and return to Cleack").click()
    expect(page).to_have_url(live_url("/billing?notice=checkout_cancelled"))
    expect(page.get_by_text("The checkout was cancelled; nothing was charged.")).to_be_visible()
    expect(page.get_by_test_id("payment-row")).to_have_count(0)
