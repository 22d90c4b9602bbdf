"""The payments sandbox speaks Stripe's wire format: auth, errors, idempotency; and it is refused in production."""

from __future__ import annotations

import base64

import httpx

from tests.billing.conftest import serve, settings_on_new_port
from tests.conftest import LiveServer
from web.sandbox.stripe.wire import decode_form


async def test_the_api_wants_the_sandbox_key(live_server: LiveServer) -> None:
    async with httpx.AsyncClient(base_url=f"{live_server.url}/sandbox/stripe", timeout=30) as anonymous:
        missing = await anonymous.get("/v1/products")
        assert missing.status_code == 401
        assert missing.json()["error"]["type"] == "invalid_request_error"
        wrong = await anonymous.get("/v1/products", headers={"authorization": "Bearer sk_test_wrong"})
        assert wrong.status_code == 401 and wrong.json()["error"]["code"] == "api_key_invalid"
        basic = base64.b64encode(f"{live_server.settings.stripe_api_key}:".encode()).decode()
        listed = await anonymous.get("/v1/products", headers={"authorization": f"Basic {basic}"})
        assert listed.status_code == 200 and listed.json()["object"] == "list"
    assert live_server.settings.stripe_api_key.startswith("sk_test_sandbox")


async def test_errors_come_as_stripe_error_objects(stripe_api: httpx.AsyncClient) -> None:
    unknown = await stripe_api.get("/v1/customers/cus_nobody")
    assert unknown.status_code == 404
    assert unknown.json() == {
        "error": {
            "type": "invalid_request_error",
            "code": "resource_missing",
            "message": "No such customer: 'cus_nobody'",
            "param": None,
        }
    }
    for path, kind in (("invoices", "invoice"), ("charges", "charge"), ("payment_intents", "payment_intent")):
        missing = await stripe_api.get(f"/v1/{path}/none")
        assert missing.status_code == 404 and missing.json()["error"]["code"] == "resource_missing"
        assert missing.json()["error"]["message"] == f"No such {kind}: 'none'"
    customer = (await stripe_api.post("/v1/customers", data={"email": "a@example.com"})).json()
    assert customer["id"].startswith("cus_") and customer["object"] == "customer"
    assert (await stripe_api.get(f"/v1/charges/{customer['id']}")).status_code == 404, "a customer is not a charge"
    no_items = await stripe_api.post(
        "/v1/checkout/sessions",
        data={"mode": "payment", "customer": customer["id"], "success_url": "http://example.com/ok"},
    )
    assert no_items.status_code == 400 and no_items.json()["error"]["param"] == "line_items"
    recurring_in_payment = await stripe_api.post(
        "/v1/checkout/sessions",
        data={
            "mode": "payment",
            "customer": customer["id"],
            "success_url": "http://example.com/ok",
            "line_items[0][price]": "price_cleack_monthly",
            "line_items[0][quantity]": "1",
        },
    )
    assert recurring_in_payment.status_code == 400
    assert recurring_in_payment.json()["error"]["param"] == "line_items[0][price]"


async def test_an_idempotency_key_replays_the_first_answer_and_refuses_other_parameters(
    stripe_api: httpx.AsyncClient,
) -> None:
    first = await stripe_api.post("/v1/customers", data={"email": "a@example.com"}, headers={"idempotency-key": "k1"})
    again = await stripe_api.post("/v1/customers", data={"email": "a@example.com"}, headers={"idempotency-key": "k1"})
    assert again.json()["id"] == first.json()["id"]
    assert again.headers["idempotent-replayed"] == "true"
    other = await stripe_api.post("/v1/customers", data={"email": "b@example.com"}, headers={"idempotency-key": "k1"})
    assert other.status_code == 400 and other.json()["error"]["type"] == "idempotency_error"


def test_bracket_notation_is_read_as_stripe_reads_it() -> None:
    body = (
        "line_items[0][price]=p1&line_items[0][quantity]=2&metadata[user]=u&expand[]=line_items&expand[]=x&mode=payment"
    )
    assert decode_form(body) == {
        "line_items": [{"price": "p1", "quantity": "2"}],
        "metadata": {"user": "u"},
        "expand": ["line_items", "x"],
        "mode": "payment",
    }


async def test_the_sandbox_is_not_served_in_production(live_server: LiveServer) -> None:
    production = settings_on_new_port(live_server.settings, environment="production", stripe_secret_key=None)
    assert not production.payments_sandbox_enabled
    with serve(production) as url:
        async with httpx.AsyncClient(base_url=url, timeout=30) as client:
            api = await client.get(
                "/sandbox/stripe/v1/products", headers={"authorization": f"Bearer {production.stripe_api_key}"}
            )
            assert api.status_code == 404
            assert (await client.get("/sandbox/stripe/checkout/cs_test_x")).status_code == 404
