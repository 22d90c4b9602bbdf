"""Browser rig: a real Chromium (Debian's) driven by Playwright's sync API against the live server.

The browser is Debian's `chromium-headless-shell`: the same Chromium build as the `chromium`
package, as the headless shell that Playwright itself runs headless tests on. The full
`chromium` binary in its headless mode now and then stops producing frames for a page, and
every action that waits for an element to be stable (on animation frames) then hangs.

Playwright's sync API and pytest-asyncio do not share a thread well. Between two sync calls,
Playwright leaves its own event loop marked as the thread's running loop (see
`playwright._impl._greenlets.wait_for_future`), and from then on pytest-asyncio can run no
coroutine in that thread: `Runner.run() cannot be called from a running event loop`. So:

- Playwright lives for this package only (package-scoped `playwright`, `browser`, ... below,
  instead of pytest-playwright's session-scoped ones). It stops once the last browser test is
  done, which clears the running loop, and the async tests collected after this package run
  on pytest-asyncio's session loop as usual.
- Browser tests request no async fixture. The root conftest's autouse `empty_database` and the
  `make_user` factory are replaced here by sync versions that run their coroutine in a worker
  thread with its own event loop (and their own database connection, never the session
  engine, whose pooled connections belong to the session loop).
"""

from __future__ import annotations

import asyncio
import datetime
import json
import re
import shutil
import threading
import uuid
from collections.abc import Callable, Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from pathlib import Path
from typing import Any, TypeVar

import pytest
from playwright.sync_api import Browser, BrowserType, Page, Playwright, expect, sync_playwright

from tests.conftest import ARTIFACTS, PASSWORD, TABLES, Creator, LiveServer
from web.db import connect, create_engine, session_factory
from web.worker import run_worker

CHROMIUM = Path("/usr/bin/chromium-headless-shell")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
SCREENSHOTS = ARTIFACTS / "screenshots"

T = TypeVar("T")

# What a user waits for is on screen well within this; a slow machine still passes.
expect.set_options(timeout=10_000)


def run_in_own_loop(make_coroutine: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run a coroutine to completion in a worker thread with its own event loop."""
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="browser-rig") as pool:
        return pool.submit(lambda: asyncio.run(make_coroutine())).result()


# Database fixtures, sync versions of the root conftest's


@pytest.fixture(autouse=True)
def empty_database(database_url: str) -> None:
    """Every test starts from empty tables (the schema stays); sync, see the module docstring."""

    async def truncate() -> None:
        async with connect(database_url) as conn:
            await conn.execute(f"TRUNCATE {TABLES} CASCADE")

    run_in_own_loop(truncate)


@pytest.fixture
def make_user(database_url: str, live_server: LiveServer) -> Callable[..., Creator]:
    """A verified user made directly through the accounts service: `user = make_user()`."""
    from web.accounts.services import AccountService

    def make(email: str | None = None, password: str = PASSWORD, role: str = "user") -> Creator:
        address = email or f"creator-{uuid.uuid4().hex[:8]}@example.com"

        async def create() -> Creator:
            engine = create_engine(database_url, pool_size=1)
            try:
                async with session_factory(engine)() as session:
                    user = await AccountService(session, live_server.settings).create_verified(
                        address, password, role=role
                    )
                    return Creator(user.id, address, password)
            finally:
                await engine.dispose()

        return run_in_own_loop(create)

    return make


@pytest.fixture
def seed_metrics(database_url: str) -> Callable[[dict[str, list[float]]], None]:
    """Store daily system metrics, each list running from the oldest day to today (UTC): `seed_metrics({...})`."""

    def seed(series: dict[str, list[float]]) -> None:
        today = datetime.datetime.now(datetime.UTC).date()
        rows = []
        for metric_type, values in series.items():
            first = today - datetime.timedelta(days=len(values) - 1)
            for offset, value in enumerate(values):
                day = first + datetime.timedelta(days=offset)
                metadata = json.dumps({"date": day.isoformat(), "seeded": True})
                rows.append((uuid.uuid4(), metric_type, day, Decimal(str(value)), metadata))

        async def insert() -> None:
            async with connect(database_url) as conn:
                await conn.executemany(
                    "INSERT INTO system_metrics (id, metric_type, day, value, metadata, created_at)"
                    " VALUES ($1, $2, $3, $4, $5::jsonb, clock_timestamp())",
                    rows,
                )

        run_in_own_loop(insert)

    return seed


# The worker


@pytest.fixture
def worker(database_url: str, live_server: LiveServer) -> Iterator[None]:
    """The draw runner in a thread of its own, as `cleack worker` runs it."""
    loop = asyncio.new_event_loop()
    stop = asyncio.Event()

    async def work() -> None:
        engine = create_engine(database_url, pool_size=4)
        try:
            await run_worker(session_factory(engine), live_server.settings, stop)
        finally:
            await engine.dispose()

    thread = threading.Thread(target=loop.run_until_complete, args=(work(),), daemon=True)
    thread.start()
    yield
    loop.call_soon_threadsafe(stop.set)
    thread.join(timeout=30)


# Playwright, for this package only


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args: dict[str, Any]) -> dict[str, Any]:
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: apt-get install -y chromium-headless-shell")
    return {**browser_type_launch_args, "executable_path": str(CHROMIUM), "args": CHROMIUM_ARGS}


@pytest.fixture(scope="package")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as pw:
        yield pw


@pytest.fixture(scope="package")
def browser_type(playwright: Playwright, browser_name: str) -> BrowserType:
    return getattr(playwright, browser_name)


@pytest.fixture(scope="package")
def launch_browser(browser_type_launch_args: dict[str, Any], browser_type: BrowserType) -> Callable[..., Browser]:
    def launch(**kwargs: Any) -> Browser:
        return browser_type.launch(**{**browser_type_launch_args, **kwargs})

    return launch


@pytest.fixture(scope="package")
def browser(launch_browser: Callable[..., Browser]) -> Iterator[Browser]:
    browser = launch_browser()
    yield browser
    browser.close()


@pytest.fixture(scope="package")
def browser_context_args(live_server: LiveServer) -> dict[str, Any]:
    # Relative URLs in page.goto() and in expectations go to the live server.
    return {"base_url": live_server.url, "viewport": {"width": 1280, "height": 900}, "locale": "en-GB"}


@pytest.fixture
def live_url(live_server: LiveServer) -> Callable[[str], re.Pattern[str]]:
    """A pattern for expect(page).to_have_url(): this path (and query) on the live server, exactly."""

    def pattern(path: str) -> re.Pattern[str]:
        return re.compile("^" + re.escape(live_server.url + path) + "$")

    return pattern


# Screenshots, kept as artefacts of each journey


@pytest.fixture
def screenshot(request: pytest.FixtureRequest) -> Callable[[Page, str], Path]:
    """`screenshot(page, "step")` saves test-artifacts/screenshots/<test>/<nn>-<step>.png.

    Transitions are fast-forwarded (htmx fades swapped content in), so each shot shows the settled page.
    """
    folder = SCREENSHOTS / re.sub(r"[^\w.-]+", "-", request.node.name).strip("-")
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    taken = 0

    def take(page: Page, step: str) -> Path:
        nonlocal taken
        taken += 1
        path = folder / f"{taken:02d}-{step}.png"
        page.screenshot(path=path, full_page=True, animations="disabled")
        return path

    return take
