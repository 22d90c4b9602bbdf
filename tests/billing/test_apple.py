"""POST /webhooks/apple: App Store Server Notifications V2, verified against a locally made certificate chain."""

from __future__ import annotations

import datetime
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.billing.conftest import balance, scalar, serve, settings_on_new_port
from tests.conftest import LiveServer
from tests.fakes.apple import AppleSigner
from web.credits.services import WELCOME_BONUS

BUNDLE = "com.cleack.app"
MONTHLY, ANNUAL = "com.cleack.monthly", "com.cleack.annual"


@pytest.fixture(scope="module")
def apple_signer() -> AppleSigner:
    return AppleSigner.create(BUNDLE)


@pytest.fixture(scope="module")
def apple_url(
    apple_signer: AppleSigner, live_server: LiveServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """The app, configured for App Store notifications from the local chain's root."""
    root = apple_signer.write_root(tmp_path_factory.mktemp("apple"))
    settings = settings_on_new_port(
        live_server.settings,
        apple_bundle_id=BUNDLE,
        apple_environment="Sandbox",
        apple_root_certificates=(str(root),),
        apple_product_plans={MONTHLY: "monthly", ANNUAL: "annual"},
    )
    with serve(settings) as url:
        yield url


@pytest.fixture
async def apple(apple_url: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=apple_url, timeout=30) as client:
        yield client


async def notify(client: httpx.AsyncClient, signed_payload: str) -> httpx.Response:
    return await client.post("/webhooks/apple", json={"signedPayload": signed_payload})


def transaction(signer: AppleSigner, user_id: Any, transaction_id: str, *, months_in: int = 0, **extra: Any) -> str:
    start = datetime.datetime.now(datetime.UTC) - datetime.timedelta(minutes=5)
    purchased = start + datetime.timedelta(days=31 * months_in)
    return signer.transaction(
        original_transaction_id="2000000111",
        transaction_id=transaction_id,
        product_id=extra.pop("product_id", MONTHLY),
        app_account_token=str(user_id),
        purchased=purchased,
        expires=purchased + datetime.timedelta(days=31),
        **extra,
    )


async def test_a_subscription_bought_in_the_app_store_grants_each_renewal_once(
    apple: httpx.AsyncClient, apple_signer: AppleSigner, make_user: Any, engine: AsyncEngine
) -> None:
    user = await make_user()
    subscribed = apple_signer.notification("SUBSCRIBED", transaction=transaction(apple_signer, user.id, "2000000111"))
    first = await notify(apple, subscribed)
    assert first.status_code == 200 and first.json()["status"] == "processed"
    assert (await notify(apple, subscribed)).json()["status"] == "processed"
    assert await balance(engine, user.id) == WELCOME_BONUS + 10
    assert await scalar(engine, "SELECT role FROM users WHERE id = :id", id=user.id) == "premium"
    assert await scalar(engine, "SELECT apple_subscription_id FROM subscriptions WHERE user_id = :id", id=user.id) == (
        "2000000111"
    )

    renewal = transaction(apple_signer, user.id, "2000000222", months_in=1)
    # The same renewal told twice, in two notifications: one grant.
    for _ in range(2):
        answer = await notify(apple, apple_signer.notification("DID_RENEW", transaction=renewal))
        assert answer.status_code == 200
    assert await balance(engine, user.id) == WELCOME_BONUS + 20
    assert await scalar(engine, "SELECT count(*) FROM payments WHERE user_id = :id", id=user.id) == 2

    turned_off = apple_signer.notification(
        "DID_CHANGE_RENEWAL_STATUS",
        transaction=renewal,
        renewal=apple_signer.renewal(original_transaction_id="2000000111", product_id=MONTHLY, auto_renew=False),
        subtype="AUTO_RENEW_DISABLED",
    )
    assert (await notify(apple, turned_off)).status_code == 200
    assert await scalar(engine, "SELECT status FROM subscriptions WHERE user_id = :id", id=user.id) == "cancelled"
    assert await scalar(engine, "SELECT auto_renew FROM subscriptions WHERE user_id = :id", id=user.id) is False

    expired = apple_signer.notification("EXPIRED", transaction=renewal, subtype="VOLUNTARY")
    assert (await notify(apple, expired)).status_code == 200
    assert await scalar(engine, "SELECT status FROM subscriptions WHERE user_id = :id", id=user.id) == "expired"
    assert await scalar(engine, "SELECT role FROM users WHERE id = :id", id=user.id) == "user"
    assert await balance(engine, user.id) == WELCOME_BONUS + 20


async def test_an_app_store_refund_takes_back_the_credits_still_unspent(
    apple: httpx.AsyncClient, apple_signer: AppleSigner, make_user: Any, engine: AsyncEngine
) -> None:
    user = await make_user()
    bought = transaction(apple_signer, user.id, "2000000333")
    await notify(apple, apple_signer.notification("SUBSCRIBED", transaction=bought))
    assert await balance(engine, user.id) == WELCOME_BONUS + 10
    refund = apple_signer.notification("REFUND", transaction=bought)
    assert (await notify(apple, refund)).json()["status"] == "processed"
    assert (await notify(apple, apple_signer.notification("REFUND", transaction=bought))).status_code == 200
    assert await balance(engine, user.id) == WELCOME_BONUS
    assert await scalar(engine, "SELECT status FROM payments WHERE external_reference = 'apple:2000000333'") == (
        "refunded"
    )
    assert await scalar(engine, "SELECT status FROM subscriptions WHERE user_id = :id", id=user.id) == "expired"


async def test_notifications_not_signed_by_the_configured_chain_are_refused(
    apple: httpx.AsyncClient, apple_signer: AppleSigner, make_user: Any, engine: AsyncEngine
) -> None:
    user = await make_user()
    stranger = AppleSigner.create(BUNDLE)
    forged = stranger.notification("SUBSCRIBED", transaction=transaction(stranger, user.id, "2000000444"))
    assert (await notify(apple, forged)).status_code == 400
    other_app = apple_signer.notification(
        "SUBSCRIBED", transaction=transaction(apple_signer, user.id, "2000000555"), bundle_id="com.other.app"
    )
    assert (await notify(apple, other_app)).status_code == 400
    assert (await apple.post("/webhooks/apple", content=b"{not json")).status_code == 400
    assert (await apple.post("/webhooks/apple", json={"signedPayload": "a.b.c"})).status_code == 400
    assert (await apple.post("/webhooks/apple", json={})).status_code == 400
    assert await scalar(engine, "SELECT count(*) FROM apple_notifications") == 0
    assert await balance(engine, user.id) == WELCOME_BONUS


async def test_a_notification_for_nobody_we_know_is_kept_and_ignored(
    apple: httpx.AsyncClient, apple_signer: AppleSigner, engine: AsyncEngine
) -> None:
    unknown = apple_signer.notification("SUBSCRIBED", transaction=transaction(apple_signer, uuid.uuid4(), "2000000666"))
    answer = await notify(apple, unknown)
    assert answer.status_code == 200 and answer.json()["status"] == "ignored"
    assert await scalar(engine, "SELECT status FROM apple_notifications") == "ignored"


async def test_app_store_notifications_are_refused_where_apple_is_not_configured(client: httpx.AsyncClient) -> None:
    answer = await client.post("/webhooks/apple", json={"signedPayload": "a.b.c"})
    assert answer.status_code == 404


def test_the_root_certificate_file_can_be_pem_too(apple_signer: AppleSigner, tmp_path: Path) -> None:
    from cryptography.hazmat.primitives import serialization

    from web.billing.apple import verify
    from web.settings import Settings

    pem = tmp_path / "root.pem"
    pem.write_bytes(apple_signer.root.public_bytes(serialization.Encoding.PEM))
    settings = Settings(
        secret_key="x" * 40,
        apple_bundle_id=BUNDLE,
        apple_environment="Sandbox",
        apple_root_certificates=(str(pem),),
    )
    signed = apple_signer.notification("SUBSCRIBED", transaction=transaction(apple_signer, uuid.uuid4(), "1"))
    assert verify(settings, signed).notification["notificationType"] == "SUBSCRIBED"
