"""Buying and subscribing through the payments sandbox: credits arrive by webhook, never on the redirect."""

from __future__ import annotations

from typing import Any

import httpx
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.billing.conftest import (
    ANNUAL,
    MONTHLY,
    PACK_5,
    PACK_20,
    balance,
    pay,
    scalar,
    session_id_of,
    start_checkout,
    wait_until,
)
from tests.conftest import post_form
from web.credits.services import WELCOME_BONUS, CreditsService
from web.db import session_factory


async def confirmed(client: httpx.AsyncClient, session_id: str) -> str | None:
    fragment = await client.get(f"/billing/return/status?session_id={session_id}", headers={"HX-Request": "true"})
    assert fragment.status_code == 200
    return fragment.text if "Payment confirmed" in fragment.text else None


async def test_buying_a_pack_credits_it_when_the_webhook_lands_not_on_the_redirect(
    logged_in: Any, catalogue: None, engine: AsyncEngine
) -> None:
    client, user = await logged_in()
    page = await client.get("/billing")
    assert page.status_code == 200
    assert "5 credits" in page.text and "$4.99" in page.text and "$14.99" in page.text and "$99.00" in page.text

    checkout_url = await start_checkout(client, PACK_5)
    assert "/sandbox/stripe/checkout/cs_test_" in checkout_url
    checkout = await client.get(checkout_url)
    assert "$4.99" in checkout.text and "5 credits" in checkout.text

    # Back from checkout without paying: the return page waits, and nothing is granted.
    waiting = await client.get(f"/billing/return?session_id={session_id_of(checkout_url)}")
    assert waiting.status_code == 200
    assert "Confirming…" in waiting.text and 'hx-trigger="every 1s"' in waiting.text
    assert await balance(engine, user.id) == WELCOME_BONUS

    paid = await pay(client, checkout_url)
    assert paid.status_code == 303
    assert paid.headers["location"].endswith(f"/billing/return?session_id={session_id_of(checkout_url)}")
    fragment = await wait_until(lambda: confirmed(client, session_id_of(checkout_url)))
    assert "5 credits added" in fragment
    assert await balance(engine, user.id) == WELCOME_BONUS + 5

    history = await client.get("/billing")
    assert "$4.99" in history.text or "4.99 USD" in history.text
    assert history.text.count('data-testid="payment-row"') == 1
    assert await scalar(engine, "SELECT count(*) FROM stripe_customers WHERE user_id = :id", id=user.id) == 1


async def test_the_same_checkout_form_sent_twice_opens_one_checkout_session(logged_in: Any, catalogue: None) -> None:
    client, _ = await logged_in()
    first = await start_checkout(client, PACK_20)
    second = await start_checkout(client, PACK_20)
    assert first == second
    other = await start_checkout(client, PACK_20, request_key="0c0e6a4e-55d5-4a8f-8f1f-3f4a5b6c7d8e")
    assert other != first


async def test_a_declined_card_charges_nothing_and_says_why(
    logged_in: Any, catalogue: None, engine: AsyncEngine
) -> None:
    client, user = await logged_in()
    checkout_url = await start_checkout(client, PACK_5)
    declined = await pay(client, checkout_url, card="4000 0000 0000 0002")
    assert declined.status_code == 402
    assert "Your card was declined." in declined.text
    assert await scalar(engine, "SELECT count(*) FROM payments WHERE user_id = :id", id=user.id) == 0


async def test_a_monthly_subscription_grants_each_paid_invoice_and_ends_as_the_customer_asks(
    logged_in: Any, catalogue: None, engine: AsyncEngine, stripe_api: httpx.AsyncClient
) -> None:
    client, user = await logged_in()
    checkout_url = await start_checkout(client, MONTHLY)
    await pay(client, checkout_url)
    await wait_until(lambda: confirmed(client, session_id_of(checkout_url)))
    assert await balance(engine, user.id) == WELCOME_BONUS + 10
    assert await scalar(engine, "SELECT role FROM users WHERE id = :id", id=user.id) == "premium"
    page = await client.get("/billing")
    assert "Renews automatically on" in page.text and "Manage subscription" in page.text

    subscription_id = await scalar(
        engine, "SELECT stripe_subscription_id FROM subscriptions WHERE user_id = :id", id=user.id
    )
    renewed = await stripe_api.post(
        f"/v1/test_helpers/subscriptions/{subscription_id}/advance", data={"outcome": "paid"}
    )
    assert renewed.status_code == 200
    await wait_until(lambda: _balance_is(engine, user.id, WELCOME_BONUS + 20))

    failed = await stripe_api.post(
        f"/v1/test_helpers/subscriptions/{subscription_id}/advance", data={"outcome": "failed"}
    )
    assert failed.status_code == 200
    await wait_until(lambda: _status_is(engine, user.id, "past_due"))
    assert (
        await scalar(engine, "SELECT count(*) FROM payments WHERE user_id = :id AND status = 'failed'", id=user.id) == 1
    )
    assert await scalar(engine, "SELECT role FROM users WHERE id = :id", id=user.id) == "user"
    await stripe_api.post(f"/v1/test_helpers/subscriptions/{subscription_id}/advance", data={"outcome": "paid"})
    await wait_until(lambda: _status_is(engine, user.id, "active"))
    assert await balance(engine, user.id) == WELCOME_BONUS + 30

    # The customer portal: cancel at the end of the period.
    portal = await post_form(client, "/billing/portal", {})
    assert portal.status_code == 303 and "/sandbox/stripe/portal/bps_" in portal.headers["location"]
    portal_page = await client.get(portal.headers["location"])
    assert "Cancel at the end of the period" in portal_page.text
    portal_path = httpx.URL(portal.headers["location"]).path
    cancelled = await post_form(client, f"{portal_path}/subscriptions/{subscription_id}/cancel", {})
    assert cancelled.status_code == 303
    await wait_until(lambda: _status_is(engine, user.id, "cancelled"))
    page = await client.get("/billing")
    assert "Cancelled, valid until" in page.text
    assert await scalar(engine, "SELECT auto_renew FROM subscriptions WHERE user_id = :id", id=user.id) is False
    assert await scalar(engine, "SELECT role FROM users WHERE id = :id", id=user.id) == "premium"

    # The period ends: the subscription is over, the role goes back, the credits stay.
    await stripe_api.post(f"/v1/test_helpers/subscriptions/{subscription_id}/advance", data={"outcome": "paid"})
    await wait_until(lambda: _status_is(engine, user.id, "expired"))
    assert await scalar(engine, "SELECT role FROM users WHERE id = :id", id=user.id) == "user"
    assert await balance(engine, user.id) == WELCOME_BONUS + 30


async def _balance_is(engine: AsyncEngine, user_id: Any, expected: int) -> bool:
    return await balance(engine, user_id) == expected


async def _status_is(engine: AsyncEngine, user_id: Any, expected: str) -> bool:
    return await scalar(engine, "SELECT status FROM subscriptions WHERE user_id = :id", id=user_id) == expected


async def test_an_admin_keeps_their_role_through_a_subscription(
    logged_in: Any, catalogue: None, engine: AsyncEngine, stripe_api: httpx.AsyncClient
) -> None:
    client, user = await logged_in(role="admin")
    checkout_url = await start_checkout(client, ANNUAL)
    await pay(client, checkout_url)
    await wait_until(lambda: confirmed(client, session_id_of(checkout_url)))
    assert await balance(engine, user.id) == WELCOME_BONUS + 50
    assert await scalar(engine, "SELECT role FROM users WHERE id = :id", id=user.id) == "admin"
    subscription_id = await scalar(
        engine, "SELECT stripe_subscription_id FROM subscriptions WHERE user_id = :id", id=user.id
    )
    await stripe_api.delete(f"/v1/subscriptions/{subscription_id}")
    await wait_until(lambda: _status_is(engine, user.id, "expired"))
    assert await scalar(engine, "SELECT role FROM users WHERE id = :id", id=user.id) == "admin"


async def test_a_refund_takes_back_the_unspent_credits_and_never_goes_below_zero(
    logged_in: Any, catalogue: None, engine: AsyncEngine, stripe_api: httpx.AsyncClient
) -> None:
    client, user = await logged_in()
    checkout_url = await start_checkout(client, PACK_20)
    await pay(client, checkout_url)
    await wait_until(lambda: confirmed(client, session_id_of(checkout_url)))
    async with session_factory(engine)() as db:
        await CreditsService(db).debit(user.id, WELCOME_BONUS + 15, idempotency_key="draw:spent", description="A draw")
    assert await balance(engine, user.id) == 5

    intent = await scalar(engine, "SELECT stripe_payment_intent_id FROM payments WHERE user_id = :id", id=user.id)
    refund = await stripe_api.post("/v1/refunds", data={"payment_intent": intent})
    assert refund.status_code == 200 and refund.json()["object"] == "refund"
    await wait_until(
        lambda: scalar(engine, "SELECT count(*) FROM payments WHERE user_id = :id AND kind = 'refund'", id=user.id)
    )
    assert await balance(engine, user.id) == 0
    async with engine.connect() as connection:
        paid = (
            await connection.execute(
                sa.text("SELECT status, metadata FROM payments WHERE user_id = :id AND kind = 'credit_pack'"),
                {"id": user.id},
            )
        ).one()
    assert paid.status == "refunded"
    (details,) = paid.metadata["refunds"].values()
    assert details == {"amount": 1499, "credits": 20, "credits_taken": 5, "credits_not_recovered": 15}
    page = await client.get("/billing")
    assert "Refund: 20 credits" in page.text
    again = await stripe_api.post("/v1/refunds", data={"payment_intent": intent})
    assert again.status_code == 400 and again.json()["error"]["code"] == "charge_already_refunded"


async def test_a_partial_refund_takes_back_its_share_of_the_credits_and_no_more(
    logged_in: Any, catalogue: None, engine: AsyncEngine, stripe_api: httpx.AsyncClient
) -> None:
    client, user = await logged_in()
    checkout_url = await start_checkout(client, PACK_20)
    await pay(client, checkout_url)
    await wait_until(lambda: confirmed(client, session_id_of(checkout_url)))
    intent = await scalar(engine, "SELECT stripe_payment_intent_id FROM payments WHERE user_id = :id", id=user.id)
    await stripe_api.post("/v1/refunds", data={"payment_intent": intent, "amount": "750"})
    await wait_until(
        lambda: scalar(engine, "SELECT count(*) FROM payments WHERE user_id = :id AND kind = 'refund'", id=user.id)
    )
    # Half the price back: half the pack's credits taken back, the bonus untouched.
    assert await balance(engine, user.id) == WELCOME_BONUS + 10
    assert await scalar(
        engine, "SELECT status FROM payments WHERE kind = 'credit_pack' AND user_id = :id", id=user.id
    ) == ("succeeded")
