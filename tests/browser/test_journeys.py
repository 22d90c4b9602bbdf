"""The main account journeys, in a real Chromium, as a user goes through them.

The pages use hx-boost: links and forms go through htmx, and redirects come back as
HX-Location. So the tests wait for what appears on screen and for the URL, never for page loads.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Browser, Page, Request, expect

from tests.conftest import PASSWORD, Creator, Mailbox

pytestmark = pytest.mark.browser

Shoot = Callable[[Page, str], Path]
Url = Callable[[str], re.Pattern[str]]


def field_error(page: Page, name: str) -> Any:
    """The message shown next to a field (the element its aria-describedby points at)."""
    return page.locator(f"#{name}-error")


def log_in(page: Page, email: str, password: str) -> None:
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Log in").click()


def test_sign_up_verify_log_in_see_the_dashboard_and_log_out(
    page: Page, mailbox: Mailbox, screenshot: Shoot, live_url: Url
) -> None:
    email = "ada@example.com"

    page.goto("/")
    page.get_by_role("link", name="Sign up free").click()
    expect(page).to_have_url(live_url("/signup"))
    expect(page.get_by_role("heading", name="Create your Cleack account")).to_be_visible()
    page.get_by_label("Your name").fill("Ada Lovelace")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    screenshot(page, "signup-filled")
    page.get_by_role("button", name="Create account").click()

    expect(page).to_have_url(live_url("/signup/sent"))
    expect(page.get_by_role("heading", name="Check your email")).to_be_visible()
    screenshot(page, "check-your-email")

    link = mailbox.last_link(email)
    assert re.fullmatch(r"http://127\.0\.0\.1:\d+/verify-email/[\w-]+", link), link
    page.goto(link)
    expect(page.get_by_role("heading", name="Confirm your email")).to_be_visible()
    screenshot(page, "confirm-your-email")
    page.get_by_role("button", name="Confirm my email").click()

    expect(page).to_have_url(live_url("/login?notice=verified"))
    expect(page.get_by_role("status")).to_have_text(
        "Your email is confirmed and your welcome credits are in your account. Log in to start."
    )
    screenshot(page, "login-after-verification")
    log_in(page, email, PASSWORD)

    expect(page).to_have_url(live_url("/draws"))
    expect(page.get_by_role("heading", name="Your draws")).to_be_visible()
    expect(page.get_by_text("Hello Ada Lovelace! You have 3 credits.")).to_be_visible()
    expect(page.get_by_test_id("draws-empty")).to_contain_text("No draws yet")
    expect(page.get_by_test_id("nav-balance")).to_have_text("3")
    screenshot(page, "dashboard-empty")

    page.get_by_role("button", name="Log out").click()
    expect(page).to_have_url(live_url("/login?notice=logged_out"))
    expect(page.get_by_role("status")).to_have_text("You are logged out.")
    expect(page.get_by_test_id("nav-balance")).to_have_count(0)
    screenshot(page, "logged-out")

    page.goto("/draws")
    expect(page).to_have_url(live_url("/login?next=/draws"))
    expect(page.get_by_role("heading", name="Log in")).to_be_visible()
    screenshot(page, "draws-asks-to-log-in")


def test_password_reset_by_mail_replaces_the_old_password(
    page: Page, make_user: Callable[..., Creator], mailbox: Mailbox, screenshot: Shoot, live_url: Url
) -> None:
    user = make_user(email="grace@example.com")
    new_password = "a brand new passphrase 42"

    page.goto("/login")
    page.get_by_role("link", name="Forgot your password?").click()
    expect(page).to_have_url(live_url("/forgot-password"))
    page.get_by_label("Email").fill(user.email)
    page.get_by_role("button", name="Send the link").click()
    expect(page.get_by_role("status")).to_contain_text(
        f"If an account exists for {user.email}, we sent it a link to choose a new password."
    )
    screenshot(page, "reset-link-sent")

    link = mailbox.last_link(user.email)
    assert re.fullmatch(r"http://127\.0\.0\.1:\d+/reset-password/[\w-]+", link), link
    page.goto(link)
    expect(page.get_by_role("heading", name="Choose a new password")).to_be_visible()
    page.get_by_label("New password").fill(new_password)
    screenshot(page, "new-password-filled")
    page.get_by_role("button", name="Save the new password").click()

    expect(page).to_have_url(live_url("/login?notice=password_reset"))
    expect(page.get_by_role("status")).to_have_text("Your password has been changed. Log in with the new one.")
    screenshot(page, "login-after-reset")

    log_in(page, user.email, user.password)
    expect(field_error(page, "password")).to_have_text("Incorrect email or password.")
    expect(page.get_by_label("Password")).to_have_attribute("aria-invalid", "true")
    expect(page.get_by_label("Email")).to_have_value(user.email)
    expect(page).to_have_url(live_url("/login"))
    expect(page.get_by_test_id("nav-balance")).to_have_count(0)
    screenshot(page, "old-password-refused")

    log_in(page, user.email, new_password)
    expect(page).to_have_url(live_url("/draws"))
    expect(page.get_by_role("heading", name="Your draws")).to_be_visible()
    expect(page.get_by_test_id("nav-balance")).to_have_text("3")
    screenshot(page, "dashboard-with-new-password")


def test_signup_fields_are_checked_as_you_type_and_on_submit(page: Page, screenshot: Shoot, live_url: Url) -> None:
    posts: list[str] = []

    def record(request: Request) -> None:
        if request.method == "POST":
            posts.append(urlsplit(request.url).path)

    page.on("request", record)
    page.goto("/signup")
    expect(field_error(page, "password")).to_have_text("")

    # Typing a short password: the message appears next to the field, and nothing is submitted.
    page.get_by_label("Password").press_sequentially("short")
    expect(field_error(page, "password")).to_have_text("Use at least 10 characters.")
    expect(page).to_have_url(live_url("/signup"))
    assert "/signup" not in posts
    assert "/forms/validate/signup/password" in posts
    screenshot(page, "inline-password-message")

    # Fixing it clears the message.
    page.get_by_label("Password").press_sequentially(" but now long enough")
    expect(field_error(page, "password")).to_have_text("")

    # Submitting with an invalid email: what was typed stays, the errors sit next to the fields.
    page.get_by_label("Your name").fill("Alan Turing")
    page.get_by_label("Email").fill("alan.example.com")
    page.get_by_label("Password").fill("tiny")
    with page.expect_response(
        lambda response: response.request.method == "POST" and response.url.endswith("/signup")
    ) as submitted:
        page.get_by_role("button", name="Create account").click()
    assert submitted.value.status == 422

    expect(page).to_have_url(live_url("/signup"))
    expect(field_error(page, "email")).to_have_text("Enter a valid email address, like name@example.com.")
    expect(field_error(page, "password")).to_have_text("Use at least 10 characters.")
    expect(page.get_by_label("Email")).to_have_attribute("aria-invalid", "true")
    expect(page.get_by_label("Password")).to_have_attribute("aria-invalid", "true")
    expect(page.get_by_label("Your name")).to_have_value("Alan Turing")
    expect(page.get_by_label("Email")).to_have_value("alan.example.com")
    # The password is never sent back into the page: the user types it again.
    expect(page.get_by_label("Password")).to_have_value("")
    expect(page.get_by_role("heading", name="Check your email")).to_have_count(0)
    screenshot(page, "submitted-with-errors")


def test_sign_up_works_without_javascript(
    browser: Browser, browser_context_args: dict[str, Any], mailbox: Mailbox, screenshot: Shoot, live_url: Url
) -> None:
    context = browser.new_context(**browser_context_args, java_script_enabled=False)
    try:
        page = context.new_page()
        page.goto("/signup")
        page.get_by_label("Your name").fill("Katherine Johnson")
        page.get_by_label("Email").fill("katherine@example.com")
        page.get_by_label("Password").fill(PASSWORD)
        screenshot(page, "signup-filled-no-js")
        page.get_by_role("button", name="Create account").click()

        expect(page).to_have_url(live_url("/signup/sent"))
        expect(page.get_by_role("heading", name="Check your email")).to_be_visible()
        screenshot(page, "check-your-email-no-js")
        assert "/verify-email/" in mailbox.last_link("katherine@example.com")
    finally:
        context.close()
