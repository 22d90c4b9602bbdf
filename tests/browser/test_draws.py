"""A creator connects the sandbox, configures a draw on its ~10,000-comment post and watches it live to the winners."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from tests.browser.steps import connect_the_sandbox, log_in
from tests.conftest import Creator

pytestmark = pytest.mark.browser

Shoot = Callable[[Page, str], Path]
Url = Callable[[str], re.Pattern[str]]


STATIC = Path(__file__).resolve().parents[2] / "static"
CHECKING_SCRIPTS = re.compile(r'src="/static/(js/(?:verify|vendor/noble-curves-[0-9.]+\.min)\.js)(?:\?v=\w+)?"')


def save_page_with_its_scripts(html: str, folder: Path) -> Path:
    """What "Save page as…" leaves: the HTML, and the scripts it names copied beside it, referred to by file name."""
    for script in CHECKING_SCRIPTS.findall(html):
        (folder / Path(script).name).write_bytes((STATIC / script).read_bytes())
    page = folder / "certificate.html"
    page.write_text(CHECKING_SCRIPTS.sub(lambda found: f'src="{Path(found.group(1)).name}"', html), encoding="utf-8")
    return page


def test_a_creator_configures_a_draw_on_the_sandbox_post_and_watches_it_to_the_winners(
    page: Page, make_user: Callable[..., Creator], screenshot: Shoot, live_url: Url, worker: None, tmp_path: Path
) -> None:
    user = make_user()
    log_in(page, user)
    connect_the_sandbox(page, live_url)

    page.goto("/draws")
    page.get_by_test_id("new-draw").click()
    expect(page).to_have_url(live_url("/draws/new"))
    page.get_by_label("Title").fill("Ten thousand comments")
    posts = page.get_by_test_id("posts-sandbox")
    big_post = posts.locator(".post-choice").filter(has_text=re.compile(r"10,0\d\d comments|9,9\d\d comments"))
    expect(big_post).to_have_count(1)
    big_post.get_by_role("checkbox").check()
    page.wait_for_load_state("networkidle")
    screenshot(page, "post-ticked")
    expect(page.get_by_test_id("draw-cost")).to_contain_text("Cost: 1 credit")
    page.get_by_test_id("rule-one_entry_per_user").get_by_role("checkbox").check()
    page.get_by_label("Winners (1 to 100)").fill("3")
    page.get_by_label("Alternates (0 to 50)").fill("2")
    screenshot(page, "configure")
    page.get_by_role("button", name="Launch the draw").click()

    expect(page).to_have_url(re.compile(r"/draws/[0-9a-f-]{36}$"))
    expect(page.get_by_test_id("draw-log-record").first).to_contain_text("opened")
    expect(page.get_by_test_id("draw-status")).to_have_text("processing", timeout=30_000)
    expect(page.get_by_test_id("fetched")).not_to_have_text(re.compile(r"^0\b"), timeout=30_000)
    screenshot(page, "live-progress")

    expect(page.get_by_test_id("winners")).to_be_visible(timeout=120_000)
    expect(page.get_by_test_id("winners").locator("tbody tr")).to_have_count(3)
    expect(page.get_by_test_id("alternates").locator("tbody tr")).to_have_count(2)
    expect(page.get_by_test_id("draw-status")).to_have_text("completed")
    screenshot(page, "winners")

    page.get_by_test_id("certificate-link").click()
    expect(page.get_by_test_id("recheck")).to_be_visible()
    screenshot(page, "certificate")
    expect(page.get_by_test_id("verdict")).to_contain_text("Every check passed")
    browser_check = page.get_by_test_id("browser-check")
    expect(browser_check).to_contain_text("Checked in your browser: every check passed", timeout=15_000)
    expect(browser_check).to_contain_text("sandbox")  # the development beacon is said not to be public randomness
    expect(page.get_by_test_id("timeline")).to_contain_text("Witnessed")

    # The page saved to disk, with its two checking scripts beside it as a browser saves them, checks itself offline.
    saved = save_page_with_its_scripts(page.content(), tmp_path)
    assert page.context.browser is not None
    offline = page.context.browser.new_context()
    offline.route("**/*", lambda route: route.continue_() if route.request.url.startswith("file:") else route.abort())
    offline.set_offline(True)
    copy = offline.new_page()
    copy.goto(saved.as_uri())
    expect(copy.get_by_test_id("browser-check")).to_contain_text(
        "Checked in your browser: every check passed", timeout=15_000
    )
    offline.close()
