"""The admin area, in a real Chromium, as an administrator goes through it.

Links and forms are boosted (htmx), so the test waits for what shows on screen and for the URL.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page, ViewportSize, expect

from tests.browser.steps import log_in
from tests.conftest import Creator

pytestmark = pytest.mark.browser

Shoot = Callable[[Page, str], Path]
Url = Callable[[str], re.Pattern[str]]

METRIC_TYPES = ("daily_draws", "user_signups", "revenue", "avg_participants_per_draw", "error_rate")
SEEDED_DAYS = 30
PHONE: ViewportSize = {"width": 390, "height": 844}
DESKTOP: ViewportSize = {"width": 1280, "height": 900}

CHARTS_DRAWN = """() => {
  const canvases = Array.from(document.querySelectorAll("canvas.metric-chart"));
  return canvases.length === 5 && typeof window.Chart !== "undefined"
    && canvases.every((canvas) => window.Chart.getChart(canvas) !== undefined);
}"""

CHARTS = """() => Array.from(document.querySelectorAll("canvas.metric-chart")).map((canvas) => {
  const chart = window.Chart.getChart(canvas);
  const box = canvas.getBoundingClientRect();
  return {
    id: canvas.id,
    type: chart.config.type,
    width: box.width,
    height: box.height,
    labels: chart.data.labels.length,
    values: chart.data.datasets[0].data,
  };
})"""


def metric_history() -> dict[str, list[float]]:
    """Thirty plausible days of each metric, oldest first, so the charts have a shape to draw."""
    days = range(SEEDED_DAYS)
    return {
        "daily_draws": [round(40 + day * 1.5 + 12 * math.sin(day / 2.5)) for day in days],
        "user_signups": [round(12 + day * 0.6 + 5 * math.cos(day / 3)) for day in days],
        "revenue": [round(180 + day * 9 + 60 * math.sin(day / 4), 2) for day in days],
        "avg_participants_per_draw": [round(320 + 45 * math.sin(day / 5) + day * 2, 1) for day in days],
        "error_rate": [round(max(0.0, 2.5 + 1.8 * math.sin(day / 1.7)), 2) for day in days],
    }


def charts_on_screen(page: Page, days: int) -> list[dict[str, Any]]:
    """The five charts, each drawn by Chart.js into a canvas with a real size, over `days` days."""
    page.wait_for_function(CHARTS_DRAWN)
    charts = page.evaluate(CHARTS)
    assert [chart["id"] for chart in charts] == [f"chart-{metric}" for metric in METRIC_TYPES]
    for chart in charts:
        assert chart["type"] == "line", chart["id"]
        assert chart["width"] > 200 and chart["height"] > 150, chart
        assert chart["labels"] == days and len(chart["values"]) == days, chart["id"]
    return charts


def test_admin_watches_the_metrics_finds_a_user_acts_on_them_and_reads_the_audit_log(
    page: Page,
    make_user: Callable[..., Creator],
    seed_metrics: Callable[[dict[str, list[float]]], None],
    screenshot: Shoot,
    live_url: Url,
) -> None:
    history = metric_history()
    seed_metrics(history)
    admin = make_user(email="root@example.com", role="admin")
    target = make_user(email="mallory.spam@example.com")
    for email in ("alice@example.com", "bob@example.net"):
        make_user(email=email)

    # The dashboard: three statistics and five charts, over 30 days by default.
    log_in(page, admin)
    expect(page).to_have_url(live_url("/draws"))
    page.goto("/admin")
    expect(page.get_by_role("heading", name="Administration")).to_be_visible()
    expect(page.get_by_test_id("total-users")).to_have_text("4")
    expect(page.get_by_test_id("active-today")).to_have_text("1")
    expect(page.get_by_test_id("new-this-week")).to_have_text("4")
    expect(page.get_by_role("link", name="30 days")).to_have_attribute("aria-current", "page")
    charts = charts_on_screen(page, 30)
    assert {chart["id"]: chart["values"] for chart in charts} == {
        f"chart-{metric}": pytest.approx(values) for metric, values in history.items()
    }
    screenshot(page, "dashboard-30-days")

    # 90 days: the 60 days before the seeded ones count as zero.
    page.get_by_role("link", name="90 days").click()
    expect(page).to_have_url(live_url("/admin?days=90"))
    expect(page.get_by_role("heading", name="System metrics, last 90 days")).to_be_visible()
    expect(page.get_by_role("link", name="90 days")).to_have_attribute("aria-current", "page")
    charts = charts_on_screen(page, 90)
    draws = next(chart for chart in charts if chart["id"] == "chart-daily_draws")
    assert draws["values"] == [0] * 60 + history["daily_draws"]
    screenshot(page, "dashboard-90-days")

    # The numbers behind a chart, for those who cannot see it.
    page.get_by_text("Show the numbers").first.click()
    expect(page.locator(".chart-table").first.get_by_role("row")).to_have_count(91)

    # Users: the live search narrows the list as the admin types part of an email.
    page.get_by_role("navigation", name="Administration").get_by_role("link", name="Users", exact=True).click()
    expect(page).to_have_url(live_url("/admin/users"))
    users = page.locator("#users tbody tr")
    expect(users).to_have_count(4)
    page.get_by_label("Search by email or name").press_sequentially("mallory")
    expect(users).to_have_count(1)
    expect(page).to_have_url(live_url("/admin/users?q=mallory"))
    expect(page.locator("#users")).to_contain_text("1 user matching “mallory”")
    screenshot(page, "users-search")
    page.get_by_role("link", name=target.email).click()

    # The user's page.
    expect(page.get_by_role("heading", name=target.email)).to_be_visible()
    expect(page.get_by_test_id("role")).to_have_text("user")
    balance = int(page.get_by_test_id("user-balance").inner_text())

    # Granting credits. (Both forms have a field named "reason" with the id "reason": scope by form.)
    grant = page.locator("form[action$='/grant']")
    grant.get_by_label("Bonus credits to grant").fill("5")
    grant.locator("input[name='reason']").fill("Sorry for the outage on Tuesday")
    grant.get_by_role("button", name="Grant credits").click()
    expect(page.get_by_role("status")).to_have_text("The credits were granted.")
    expect(page.get_by_test_id("user-balance")).to_have_text(str(balance + 5))
    expect(page.get_by_role("row", name=re.compile("Sorry for the outage on Tuesday"))).to_contain_text("+5")

    # A flagged note.
    page.get_by_label("New note").fill("Several giveaways look like bots entering. Check again next week.")
    page.get_by_label("Flag this user for follow-up").check()
    page.get_by_role("button", name="Add note").click()
    expect(page.get_by_role("status")).to_have_text("The note was added.")
    note = page.locator(".note-flagged")
    expect(note).to_have_count(1)
    expect(note).to_contain_text("Several giveaways look like bots entering.")
    expect(note).to_contain_text(admin.email)
    expect(note.get_by_role("button", name="Remove the flag")).to_be_visible()
    # After the redirect the page keeps the scroll position of the form: back to the top for the shot.
    page.evaluate("window.scrollTo(0, 0)")
    screenshot(page, "user-granted-and-noted")

    # The user now shows under "Flagged users", and only they do.
    page.get_by_role("link", name="← Users").click()
    page.get_by_role("navigation", name="Administration").get_by_role("link", name="Flagged users").click()
    expect(page).to_have_url(live_url("/admin/users?flagged=1"))
    expect(page.get_by_role("heading", name="Flagged users")).to_be_visible()
    expect(users).to_have_count(1)
    expect(users).to_contain_text(target.email)
    screenshot(page, "flagged-users")
    page.get_by_role("link", name=target.email).click()

    # Banning.
    ban = page.locator("form[action$='/ban']")
    ban.locator("input[name='reason']").fill("Runs bot accounts in giveaways")
    ban.get_by_role("button", name="Ban this user").click()
    expect(page.get_by_role("status")).to_have_text("The user is banned and their sessions have ended.")
    expect(page.get_by_test_id("role")).to_have_text("banned")
    expect(page.get_by_role("heading", name="Banned", exact=True)).to_be_visible()
    expect(page.get_by_role("button", name="Unban")).to_be_visible()
    screenshot(page, "user-banned")

    # The audit log lists each action, newest first.
    page.get_by_role("link", name="← Users").click()
    page.get_by_role("navigation", name="Administration").get_by_role("link", name="Audit log").click()
    expect(page).to_have_url(live_url("/admin/audit"))
    entries = page.locator("#audit tbody tr")
    actions = [row.locator("td").nth(2).inner_text() for row in entries.all()]
    assert [action for action in actions if action != "user_viewed"] == [
        "user_banned",
        "note_added",
        "credits_granted",
    ]
    for row in entries.all():
        expect(row.locator("td").nth(1)).to_have_text(admin.email)
        expect(row.locator("td").nth(3)).to_have_text(target.email)
    expect(entries.filter(has_text="credits_granted")).to_contain_text("Sorry for the outage on Tuesday")
    expect(entries.filter(has_text="user_banned")).to_contain_text("previous_role user")
    screenshot(page, "audit-log")

    # Filtering by action.
    page.get_by_label("Action").select_option("user_banned")
    page.get_by_role("button", name="Filter").click()
    expect(page).to_have_url(re.compile(r"/admin/audit\?action=user_banned"))
    expect(entries).to_have_count(1)
    expect(entries).to_contain_text("Runs bot accounts in giveaways")
    expect(page.locator("#audit")).to_contain_text("1 entry")
    screenshot(page, "audit-log-filtered")

    # The dashboard on a phone: the statistics stack, the charts take the full width.
    page.set_viewport_size(PHONE)
    page.goto("/admin")
    for chart in charts_on_screen(page, 30):
        assert chart["width"] <= PHONE["width"], chart
    boxes = [page.locator(".stats-row .stat").nth(index).bounding_box() for index in range(3)]
    assert all(box is not None for box in boxes)
    assert boxes[0]["y"] < boxes[1]["y"] < boxes[2]["y"]  # type: ignore[index]
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    screenshot(page, "dashboard-phone")

    # And in dark mode, the charts take their colours from the stylesheet.
    page.set_viewport_size(DESKTOP)
    page.emulate_media(color_scheme="dark")
    page.goto("/admin")
    charts_on_screen(page, 30)
    screenshot(page, "dashboard-dark")


def test_back_and_forth_the_dashboard_redraws_its_charts_within_the_csp(
    page: Page, make_user: Callable[..., Creator], seed_metrics: Callable[[dict[str, list[float]]], None], live_url: Url
) -> None:
    refused: list[str] = []
    page.on(
        "console", lambda message: refused.append(message.text) if "Content Security Policy" in message.text else None
    )
    seed_metrics(metric_history())
    log_in(page, make_user(role="admin"))
    expect(page).to_have_url(live_url("/draws"))
    subnav = page.get_by_role("navigation", name="Administration")

    # Users loaded on its own (no Chart.js in that page), then its Dashboard tab.
    page.goto("/admin/users")
    subnav.get_by_role("link", name="Dashboard").click()
    expect(page).to_have_url(live_url("/admin"))
    charts_on_screen(page, 30)
    page.get_by_role("link", name="90 days").click()
    expect(page).to_have_url(live_url("/admin?days=90"))
    charts_on_screen(page, 90)
    subnav.get_by_role("link", name="Users", exact=True).click()
    expect(page).to_have_url(live_url("/admin/users"))

    # Back: htmx puts the saved pages back, and the charts are drawn again.
    page.go_back()
    expect(page).to_have_url(live_url("/admin?days=90"))
    charts_on_screen(page, 90)
    page.go_back()
    expect(page).to_have_url(live_url("/admin"))
    charts_on_screen(page, 30)
    # The charts of the pages left were let go of, and no inline style came back with the saved pages.
    assert page.evaluate("Object.keys(Chart.instances).length") == len(METRIC_TYPES)
    assert refused == []


def test_the_admin_link_in_the_header_leads_to_drawn_charts(
    page: Page, make_user: Callable[..., Creator], seed_metrics: Callable[[dict[str, list[float]]], None], live_url: Url
) -> None:
    seed_metrics(metric_history())
    log_in(page, make_user(role="admin"))
    expect(page).to_have_url(live_url("/draws"))
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Admin").click()
    expect(page).to_have_url(live_url("/admin"))
    expect(page.get_by_role("heading", name="Administration")).to_be_visible()
    page.wait_for_function(CHARTS_DRAWN, timeout=3_000)
