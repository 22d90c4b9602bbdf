"""POST /webhooks/stripe: signatures, exactly-once processing whatever the deliveries, failures and replays."""

from __future__ import annotations

import asyncio
import json
import random
import time
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.billing.conftest import (
    MONTHLY,
    PACK_5,
    Deliver,
    balance,
    quiet_events,
    scalar,
    serve,
    settings_on_new_port,
    start_checkout,
)
from tests.conftest import LiveServer, free_port
from web.billing.events import replay_event
from web.billing.stripe_api import WebhookSignatureRefused, verify_webhook
from web.credits.services import WELCOME_BONUS
from web.sandbox.stripe.delivery import signature_header

UNKNOWN = {
    "id": "evt_unknown_type_1",
    "object": "event",
    "type": "customer.tax_id.created",
    "created": 1_700_000_000,
    "api_version": "2026-10-28.endive",
    "livemode": False,
    "data": {"object": {"id": "txi_1", "object": "tax_id"}},
}


async def stored_events(engine: AsyncEngine) -> list[Any]:
    async with engine.connect() as connection:
        return list(
            await connection.execute(
                sa.text("SELECT stripe_event_id, type, status, attempts, error FROM stripe_events")
            )
        )


async def test_a_bad_signature_is_refused_with_400_and_nothing_is_stored(deliver: Deliver, engine: AsyncEngine) -> None:
    refused = await deliver(UNKNOWN, secret="whsec_not_ours")
    assert refused.status_code == 400
    assert refused.json()["error"] == "signature refused"
    unsigned = await deliver(UNKNOWN, signature="t=1,v0=nothing")
    assert unsigned.status_code == 400
    assert await stored_events(engine) == []


async def test_a_missing_signature_or_a_body_that_is_no_event_is_refused(
    client: httpx.AsyncClient, live_server: LiveServer
) -> None:
    missing = await client.post("/webhooks/stripe", content=json.dumps(UNKNOWN))
    assert missing.status_code == 400
    body = "not json"
    header = signature_header(live_server.settings.stripe_webhook_secrets[0], body)
    garbage = await client.post("/webhooks/stripe", content=body, headers={"stripe-signature": header})
    assert garbage.status_code == 400


async def test_a_stale_timestamp_is_refused_with_400(deliver: Deliver, engine: AsyncEngine) -> None:
    stale = await deliver(UNKNOWN, timestamp=int(time.time()) - 301)
    assert stale.status_code == 400
    assert "tolerance" in stale.json()["detail"].lower()
    fresh_enough = await deliver(UNKNOWN, timestamp=int(time.time()) - 250)
    assert fresh_enough.status_code == 200


async def test_an_unknown_event_type_is_answered_200_and_stored_as_ignored(
    deliver: Deliver, engine: AsyncEngine
) -> None:
    first = await deliver(UNKNOWN)
    assert first.status_code == 200 and first.json()["status"] == "ignored"
    second = await deliver(UNKNOWN)
    assert second.status_code == 200 and second.json()["duplicate"] is True
    assert [(row.stripe_event_id, row.status, row.attempts) for row in await stored_events(engine)] == [
        ("evt_unknown_type_1", "ignored", 1)
    ]


def test_every_configured_secret_is_accepted_while_one_is_rotated() -> None:
    payload = json.dumps(UNKNOWN).encode()
    header = signature_header("whsec_new", payload.decode())
    assert verify_webhook(payload, header, ("whsec_old", "whsec_new"))["id"] == UNKNOWN["id"]
    with pytest.raises(WebhookSignatureRefused):
        verify_webhook(payload, header, ("whsec_old",))


async def test_a_failing_handler_answers_500_keeps_the_error_and_a_replay_then_works(
    engine: AsyncEngine, live_server: LiveServer
) -> None:
    # A price whose product the mirror does not know yet, on a server that cannot reach Stripe: the handler fails.
    event = {
        "id": "evt_price_while_stripe_is_down",
        "object": "event",
        "type": "price.created",
        "created": int(time.time()),
        "api_version": "2026-10-28.endive",
        "livemode": False,
        "data": {
            "object": {
                "id": "price_cleack_pack5",
                "object": "price",
                "active": True,
                "currency": "usd",
                "unit_amount": 499,
                "type": "one_time",
                "recurring": None,
                "product": "prod_cleack_pack5",
                "metadata": {},
            }
        },
    }
    payload = json.dumps(event)
    cut_off = settings_on_new_port(live_server.settings, stripe_api_base=f"http://127.0.0.1:{free_port()}/v1-down")
    with serve(cut_off) as url:
        async with httpx.AsyncClient(base_url=url, timeout=30) as cut_off_client:
            for _ in range(2):
                header = signature_header(cut_off.stripe_webhook_secrets[0], payload)
                failed = await cut_off_client.post(
                    "/webhooks/stripe", content=payload, headers={"stripe-signature": header}
                )
                assert failed.status_code == 500
    (row,) = await stored_events(engine)
    assert row.status == "failed" and row.attempts == 2 and "APIConnectionError" in row.error
    assert await scalar(engine, "SELECT count(*) FROM stripe_prices") == 0

    outcome = await replay_event(engine, live_server.settings, "evt_price_while_stripe_is_down")
    assert outcome.status == "processed"
    (row,) = await stored_events(engine)
    assert row.status == "processed" and row.attempts == 3 and row.error is None
    assert (
        await scalar(engine, "SELECT unit_amount FROM stripe_prices WHERE stripe_price_id = 'price_cleack_pack5'")
        == 499
    )
    assert (
        await scalar(engine, "SELECT credits FROM stripe_products WHERE stripe_product_id = 'prod_cleack_pack5'") == 5
    )


async def test_every_event_type_delivered_twice_shuffled_and_concurrently_is_processed_once(
    logged_in: Any,
    catalogue: None,
    quiet_sandbox: Any,
    deliver: Deliver,
    engine: AsyncEngine,
) -> None:
    client, user = await logged_in()
    pack_url, plan_url = (
        await start_checkout(client, PACK_5),
        await start_checkout(client, MONTHLY, request_key="1d2f3a4b-5c6d-4e7f-8a9b-0c1d2e3f4a5b"),
    )
    async with quiet_sandbox() as sandbox:
        pack = await sandbox.pay_checkout(pack_url.rsplit("/", 1)[-1], "4242424242424242")
        plan = await sandbox.pay_checkout(plan_url.rsplit("/", 1)[-1], "4242424242424242")
    async with quiet_sandbox() as sandbox:
        await sandbox.advance_subscription(plan["subscription"], pay=True)
        await sandbox.advance_subscription(plan["subscription"], pay=False)
        await sandbox.advance_subscription(plan["subscription"], pay=True)
        charge = (await sandbox.get("payment_intent", pack["payment_intent"]))["latest_charge"]
        await sandbox.refund(charge, None)
        await sandbox.set_cancel_at_period_end(plan["subscription"], True)
        await sandbox.set_cancel_at_period_end(plan["subscription"], False)
        await sandbox.cancel_now(plan["subscription"])
        product = sandbox.product_object("prod_extra", "99 credits", None, {"credits": "99"}, int(time.time()))
        await sandbox.save(product)
        await sandbox.emit("product.created", product)
        price = sandbox.price_object("price_extra", "prod_extra", 5999, "usd", None, int(time.time()))
        await sandbox.save(price)
        await sandbox.emit("price.created", price)
        price["active"] = False
        await sandbox.save(price)
        await sandbox.emit("price.updated", price)
        await sandbox.emit("price.deleted", price)
        product.update(active=False, deleted=True)
        await sandbox.save(product)
        await sandbox.emit("product.deleted", product)
    events = await quiet_events(engine)
    types = {event["type"] for event in events}
    assert {
        "checkout.session.completed",
        "invoice.paid",
        "invoice.payment_failed",
        "customer.subscription.created",
        "customer.subscription.updated",
        "customer.subscription.deleted",
        "charge.refunded",
        "product.created",
        "product.deleted",
        "price.created",
        "price.updated",
        "price.deleted",
    } <= types

    deliveries = [*events, *events]
    random.Random(5).shuffle(deliveries)
    answers: list[httpx.Response] = []
    for start in range(0, len(deliveries), 8):
        answers += await asyncio.gather(*(deliver(event) for event in deliveries[start : start + 8]))
    assert {answer.status_code for answer in answers} == {200}

    sent = {event["id"] for event in events}
    rows = [row for row in await stored_events(engine) if row.stripe_event_id in sent]
    assert len(rows) == len(events)
    assert all(row.attempts == 1 and row.status in ("processed", "ignored") for row in rows)
    # The welcome bonus; the pack's 5 credits, taken back by the refund; three paid invoices of 10.
    assert await balance(engine, user.id) == WELCOME_BONUS + 30
    grants = await scalar(
        engine, "SELECT count(*) FROM credits WHERE user_id = :id AND transaction_type = 'subscription'", id=user.id
    )
    assert grants == 3
    async with engine.connect() as connection:
        payments = sorted(
            tuple(row)
            for row in await connection.execute(
                sa.text("SELECT kind, status FROM payments WHERE user_id = :id"), {"id": user.id}
            )
        )
    assert payments == sorted(
        [
            ("credit_pack", "refunded"),
            ("refund", "succeeded"),
            ("subscription", "succeeded"),
            ("subscription", "succeeded"),
            ("subscription", "succeeded"),
            ("subscription", "failed"),
        ]
    )
    # Whatever the order, the mirror ends where Stripe is.
    assert await scalar(engine, "SELECT status FROM subscriptions WHERE user_id = :id", id=user.id) == "expired"
    assert await scalar(engine, "SELECT role FROM users WHERE id = :id", id=user.id) == "user"
    assert await scalar(engine, "SELECT active FROM stripe_products WHERE stripe_product_id = 'prod_extra'") is False
    assert await scalar(engine, "SELECT active FROM stripe_prices WHERE stripe_price_id = 'price_extra'") is False


async def test_an_older_catalogue_event_never_overwrites_a_newer_one(deliver: Deliver, engine: AsyncEngine) -> None:
    def product_event(event_id: str, created: int, name: str) -> dict[str, Any]:
        return {
            "id": event_id,
            "object": "event",
            "type": "product.updated",
            "created": created,
            "data": {"object": {"id": "prod_order", "object": "product", "name": name, "active": True, "metadata": {}}},
        }

    now = int(time.time())
    assert (await deliver(product_event("evt_new", now, "New name"))).status_code == 200
    assert (await deliver(product_event("evt_old", now - 60, "Old name"))).status_code == 200
    assert await scalar(engine, "SELECT name FROM stripe_products WHERE stripe_product_id = 'prod_order'") == "New name"
