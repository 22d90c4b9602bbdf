"""Billing rig: the payments sandbox of the live server, signed event deliveries, and a quiet sandbox.

The quiet sandbox is the same emulator driven in-process with a webhook address nobody listens on: its
events are recorded but never sent, so a test can deliver them itself (twice, shuffled, concurrently).
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
import uvicorn
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.conftest import LiveServer, free_port, post_form
from web.app import create_app
from web.billing.services import sync_catalogue
from web.db import session_factory
from web.sandbox.stripe.delivery import signature_header
from web.sandbox.stripe.models import SandboxStripeObject, SandboxWebhookDelivery
from web.sandbox.stripe.state import StripeSandbox
from web.settings import Settings

QUIET_BASE_URL = "http://127.0.0.1:9"
PACK_5, PACK_20 = "price_cleack_pack5", "price_cleack_pack20"
MONTHLY, ANNUAL = "price_cleack_monthly", "price_cleack_annual"
REQUEST_KEY = "6f1c2c3e-5b7a-4c1e-9d7e-0a1b2c3d4e5f"


@contextmanager
def serve(settings: Settings) -> Iterator[str]:
    """Another instance of the app on a real socket, with settings of its own."""
    port = settings.port
    server = uvicorn.Server(
        uvicorn.Config(create_app(settings), host="127.0.0.1", port=port, log_config=None, lifespan="on")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the server did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def settings_on_new_port(base: Settings, **changes: Any) -> Settings:
    port = free_port()
    return base.with_overrides(port=port, base_url=f"http://127.0.0.1:{port}", **changes)


@pytest.fixture
async def catalogue(engine: AsyncEngine, live_server: LiveServer) -> None:
    """The sandbox's packs and plans mirrored, through its HTTP API as `cleack sync-stripe` does."""
    settings = live_server.settings.with_overrides(stripe_api_base=f"{live_server.url}/sandbox/stripe")
    async with session_factory(engine)() as db:
        await sync_catalogue(db, settings)


@pytest.fixture
async def stripe_api(live_server: LiveServer) -> AsyncIterator[httpx.AsyncClient]:
    """The sandbox's Stripe API, with the sandbox's secret key."""
    async with httpx.AsyncClient(
        base_url=f"{live_server.url}/sandbox/stripe",
        headers={"authorization": f"Bearer {live_server.settings.stripe_api_key}"},
        timeout=30,
    ) as client:
        yield client


Deliver = Callable[..., Awaitable[httpx.Response]]


@pytest.fixture
def deliver(client: httpx.AsyncClient, live_server: LiveServer) -> Deliver:
    """POST an event to /webhooks/stripe, signed as Stripe signs (or not, as the test asks)."""

    async def send(
        event: dict[str, Any], *, secret: str | None = None, timestamp: int | None = None, signature: str | None = None
    ) -> httpx.Response:
        payload = json.dumps(event)
        header = signature or signature_header(
            secret or live_server.settings.stripe_webhook_secrets[0], payload, timestamp
        )
        return await client.post(
            "/webhooks/stripe",
            content=payload,
            headers={"stripe-signature": header, "content-type": "application/json"},
        )

    return send


@pytest.fixture
def quiet_sandbox(engine: AsyncEngine, live_server: LiveServer) -> Callable[[], Any]:
    """`async with quiet_sandbox() as sandbox:` the emulator in-process; committed on the way out, events kept."""
    from contextlib import asynccontextmanager

    settings = live_server.settings.with_overrides(base_url=QUIET_BASE_URL)

    @asynccontextmanager
    async def open_sandbox() -> AsyncIterator[StripeSandbox]:
        async with session_factory(engine)() as db:
            sandbox = StripeSandbox(db, settings)
            await sandbox.ensure_catalogue()
            yield sandbox
            await db.commit()

    return open_sandbox


async def quiet_events(engine: AsyncEngine) -> list[dict[str, Any]]:
    """Every event the quiet sandbox recorded, oldest first."""
    async with engine.connect() as connection:
        rows = await connection.execute(
            sa.select(SandboxStripeObject.data)
            .join(SandboxWebhookDelivery, SandboxWebhookDelivery.event_id == SandboxStripeObject.id)
            .where(SandboxWebhookDelivery.url.startswith(QUIET_BASE_URL))
            .order_by(SandboxWebhookDelivery.created_at)
        )
        return [row[0] for row in rows]


async def wait_until(check: Callable[[], Awaitable[Any]], within: float = 15.0) -> Any:
    deadline = time.monotonic() + within
    while True:
        value = await check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError("the condition did not come true in time")
        await asyncio.sleep(0.1)


async def scalar(engine: AsyncEngine, statement: Any, **params: Any) -> Any:
    async with engine.connect() as connection:
        return await connection.scalar(sa.text(statement) if isinstance(statement, str) else statement, params)


async def balance(engine: AsyncEngine, user_id: Any) -> int:
    return int(await scalar(engine, "SELECT credit_balance FROM users WHERE id = :id", id=user_id))


async def start_checkout(client: httpx.AsyncClient, price_id: str, request_key: str = REQUEST_KEY) -> str:
    """Press Buy or Subscribe on /billing: the address of the hosted checkout page."""
    response = await post_form(client, "/billing/checkout", {"price_id": price_id, "request_key": request_key})
    assert response.status_code == 303, response.text
    return str(response.headers["location"])


async def pay(client: httpx.AsyncClient, checkout_url: str, card: str = "4242 4242 4242 4242") -> httpx.Response:
    """Pay on the sandbox's hosted checkout page, as the customer would."""
    page = await client.get(checkout_url)
    assert page.status_code == 200
    return await post_form(client, f"{httpx.URL(checkout_url).path}/pay", {"card_number": card})


def session_id_of(checkout_url: str) -> str:
    return checkout_url.rstrip("/").rsplit("/", 1)[-1]
