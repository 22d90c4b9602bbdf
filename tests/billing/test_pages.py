"""/billing forms refuse bad input with a message, each user sees only their own, admins see everyone's."""

from __future__ import annotations

from typing import Any

import httpx
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.billing.conftest import MONTHLY, PACK_5, pay, scalar, session_id_of, start_checkout, wait_until
from tests.conftest import Mailbox, post_form

VALID_KEY = "3f2504e0-4f89-41d3-9a0c-0305e82c3301"


async def test_billing_needs_a_login(client: httpx.AsyncClient) -> None:
    page = await client.get("/billing")
    assert page.status_code == 303 and page.headers["location"].startswith("/login")


async def test_every_bad_checkout_input_is_refused_with_a_message(logged_in: Any, catalogue: None) -> None:
    client, _ = await logged_in()
    cases = [
        ({"request_key": VALID_KEY}, 422, "This field was not sent"),
        ({"price_id": "", "request_key": VALID_KEY}, 422, "Choose a pack or a plan."),
        ({"price_id": "price_nope", "request_key": VALID_KEY}, 422, "This offer is no longer available"),
        ({"price_id": "price'; drop", "request_key": VALID_KEY}, 422, "This offer does not exist"),
        ({"price_id": PACK_5, "request_key": "not-a-key"}, 422, "This form has expired"),
        ({"price_id": PACK_5}, 422, "This field was not sent"),
    ]
    for data, status, message in cases:
        response = await post_form(client, "/billing/checkout", data)
        assert response.status_code == status, data
        assert message in response.text, data
    unprotected = await client.post("/billing/checkout", data={"price_id": PACK_5, "request_key": VALID_KEY})
    assert unprotected.status_code == 403


async def test_a_second_subscription_is_refused_while_one_is_in_force(
    logged_in: Any, catalogue: None, engine: AsyncEngine
) -> None:
    client, user = await logged_in()
    checkout_url = await start_checkout(client, MONTHLY)
    await pay(client, checkout_url)
    await wait_until(lambda: scalar(engine, "SELECT count(*) FROM subscriptions WHERE user_id = :id", id=user.id))
    again = await post_form(client, "/billing/checkout", {"price_id": MONTHLY, "request_key": VALID_KEY})
    assert again.status_code == 409
    assert "You already have a subscription" in again.text


async def test_the_portal_needs_something_to_manage(logged_in: Any, catalogue: None) -> None:
    client, _ = await logged_in()
    response = await post_form(client, "/billing/portal", {})
    assert response.status_code == 409
    assert "You have no subscription or payment to manage yet." in response.text


async def test_the_enterprise_form_checks_each_field_mails_sales_and_is_rate_limited(
    logged_in: Any, mailbox: Mailbox, live_server: Any
) -> None:
    client, user = await logged_in()
    bad = await post_form(
        client, "/billing/enterprise", {"name": "", "email": "not-an-email", "company": "Acme", "message": " "}
    )
    assert bad.status_code == 422
    assert "Enter your name." in bad.text
    assert "Enter a valid email address" in bad.text
    assert "Enter a message." in bad.text
    assert 'value="Acme"' in bad.text
    too_long = await post_form(
        client, "/billing/enterprise", {"name": "A", "email": "a@example.com", "company": "x" * 201, "message": "Hi"}
    )
    assert too_long.status_code == 422 and "too long" in too_long.text

    good = {"name": "Ada", "email": "ada@example.com", "company": "Acme", "message": "We run 40 draws a month."}
    sent = await post_form(client, "/billing/enterprise", good)
    assert sent.status_code == 303 and sent.headers["location"] == "/billing?notice=enterprise_sent"
    (message,) = mailbox.wait_for(live_server.settings.sales_email)
    assert "Acme" in message["Subject"]
    body = message.get_payload(decode=True)
    assert isinstance(body, bytes)
    assert "We run 40 draws a month." in body.decode()
    assert user.email in body.decode()
    for _ in range(2):
        assert (await post_form(client, "/billing/enterprise", good)).status_code == 303
    limited = await post_form(client, "/billing/enterprise", good)
    assert limited.status_code == 429 and "Too many attempts" in limited.text


async def test_nobody_sees_another_users_payments_or_checkout(
    logged_in: Any, catalogue: None, engine: AsyncEngine
) -> None:
    buyer, _ = await logged_in()
    other, _ = await logged_in()
    checkout_url = await start_checkout(buyer, PACK_5)
    await pay(buyer, checkout_url)
    session_id = session_id_of(checkout_url)
    await wait_until(lambda: scalar(engine, "SELECT count(*) FROM payments"))

    assert (await other.get(f"/billing/return?session_id={session_id}")).status_code == 404
    status = await other.get(f"/billing/return/status?session_id={session_id}")
    assert "Payment confirmed" not in status.text
    assert "No payment yet." in (await other.get("/billing")).text
    assert (await buyer.get("/billing")).text.count('data-testid="payment-row"') == 1
    assert (await other.get("/admin/billing")).status_code == 404
    assert (await buyer.get("/billing/return?session_id=cs_test_unknown")).status_code == 404
    assert (await buyer.get("/billing/return")).status_code == 404


async def test_admins_see_every_payment_filtered_by_status_and_on_the_users_page(
    logged_in: Any, catalogue: None, engine: AsyncEngine
) -> None:
    buyer, user = await logged_in()
    admin, _ = await logged_in(role="admin")
    checkout_url = await start_checkout(buyer, PACK_5)
    await pay(buyer, checkout_url)
    await wait_until(lambda: scalar(engine, "SELECT count(*) FROM payments"))

    listing = await admin.get("/admin/billing")
    assert listing.status_code == 200
    assert user.email in listing.text and listing.text.count('data-testid="admin-payment-row"') == 1
    assert 'href="/admin/billing"' in listing.text
    failed_only = await admin.get("/admin/billing?status=failed")
    assert "No payment failed." in failed_only.text
    fragment = await admin.get("/admin/billing?status=succeeded", headers={"HX-Request": "true"})
    assert fragment.text.lstrip().startswith("<section") and user.email in fragment.text
    assert (await admin.get("/admin/billing?status=bogus&page=x")).status_code == 200
    page = await admin.get(f"/admin/users/{user.id}")
    assert page.text.count('data-testid="user-payment-row"') == 1 and "5 credits" in page.text
