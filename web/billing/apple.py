"""App Store subscriptions: App Store Server Notifications V2, verified with Apple's library.

A notification is kept under its notificationUUID and processed once, in one transaction, like Stripe's
events. The subscription is found by its originalTransactionId (`subscriptions.apple_subscription_id`);
its user by the appAccountToken the app set at purchase (the user's id). Each renewal transaction grants
its month once.
"""

from __future__ import annotations

import asyncio
import datetime
import functools
import logging
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import jwt
import sqlalchemy as sa
from appstoreserverlibrary.models.Environment import Environment
from appstoreserverlibrary.signed_data_verifier import SignedDataVerifier, VerificationException
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from web.accounts.models import User
from web.billing.inbox import apply_in_savepoint, record_outcome
from web.billing.models import AppleNotification, Payment, Subscription
from web.billing.periods import from_timestamp, month_index
from web.billing.services import (
    PLAN_CREDITS,
    NotOurs,
    grant_subscription_month,
    record_payment,
    sync_premium_role,
    take_back_credits,
)
from web.credits.models import Credit
from web.settings import Settings

log = logging.getLogger(__name__)

HANDLED = ("SUBSCRIBED", "DID_RENEW", "EXPIRED", "DID_CHANGE_RENEWAL_STATUS", "REFUND")


class AppleNotificationRefused(Exception):
    """Not a notification Apple signed for this app and environment."""


class AppleNotConfigured(Exception):
    """No bundle id or root certificates: App Store notifications are not accepted here."""


class NotificationFailed(Exception):
    """Processing raised; the error is stored on the notification."""


@dataclass(frozen=True)
class VerifiedNotification:
    notification: dict[str, Any]
    transaction: dict[str, Any] | None
    renewal: dict[str, Any] | None


def _der(data: bytes) -> bytes:
    if data.lstrip().startswith(b"-----BEGIN"):
        return x509.load_pem_x509_certificate(data).public_bytes(Encoding.DER)
    return data


@functools.lru_cache(maxsize=4)
def _verifier(paths: tuple[str, ...], bundle_id: str, environment: str, app_id: int | None) -> SignedDataVerifier:
    roots = [_der(Path(path).read_bytes()) for path in paths]
    return SignedDataVerifier(roots, False, Environment(environment), bundle_id, app_id)


def verifier_for(settings: Settings) -> SignedDataVerifier:
    if not settings.apple_bundle_id or not settings.apple_root_certificates:
        raise AppleNotConfigured
    return _verifier(
        settings.apple_root_certificates, settings.apple_bundle_id, settings.apple_environment, settings.apple_app_id
    )


def _claims(token: str) -> dict[str, Any]:
    """The claims of a token the verifier has already checked."""
    return dict(jwt.decode(token, options={"verify_signature": False}))


def verify(settings: Settings, signed_payload: str) -> VerifiedNotification:
    verifier = verifier_for(settings)
    try:
        verifier.verify_and_decode_notification(signed_payload)
        notification = _claims(signed_payload)
        data = notification.get("data") or {}
        transaction = renewal = None
        if data.get("signedTransactionInfo"):
            verifier.verify_and_decode_signed_transaction(data["signedTransactionInfo"])
            transaction = _claims(data["signedTransactionInfo"])
        if data.get("signedRenewalInfo"):
            verifier.verify_and_decode_renewal_info(data["signedRenewalInfo"])
            renewal = _claims(data["signedRenewalInfo"])
    except VerificationException as refused:
        raise AppleNotificationRefused(f"verification failed: {refused.status.name}") from refused
    except (jwt.PyJWTError, ValueError) as malformed:
        raise AppleNotificationRefused("not a signed notification") from malformed
    if not notification.get("notificationUUID") or not notification.get("notificationType"):
        raise AppleNotificationRefused("the notification has no id or type")
    return VerifiedNotification(notification, transaction, renewal)


async def receive_notification(engine: AsyncEngine, settings: Settings, signed_payload: str) -> str:
    """Verify and process one notification once; its status (processed, ignored)."""
    verified = await asyncio.to_thread(verify, settings, signed_payload)
    notification = verified.notification
    table = cast(sa.Table, AppleNotification.__table__)
    payload = {"notification": notification, "transaction": verified.transaction, "renewal": verified.renewal}
    async with engine.connect() as connection:
        await connection.begin()
        await connection.execute(
            pg_insert(table)
            .values(
                id=uuid.uuid4(),
                notification_uuid=str(notification["notificationUUID"])[:64],
                notification_type=str(notification["notificationType"])[:64],
                subtype=(str(notification["subtype"])[:64] if notification.get("subtype") else None),
                original_transaction_id=(verified.transaction or {}).get("originalTransactionId"),
                payload=payload,
            )
            .on_conflict_do_nothing(index_elements=["notification_uuid"])
        )
        row = (
            await connection.execute(
                sa.select(table.c.status)
                .where(table.c.notification_uuid == str(notification["notificationUUID"])[:64])
                .with_for_update()
            )
        ).one()
        if row.status in ("processed", "ignored"):
            await connection.commit()
            return str(row.status)
        status, error = "ignored", None
        if notification["notificationType"] in HANDLED and verified.transaction is not None:
            status, error = await apply_in_savepoint(
                connection,
                functools.partial(_apply, settings=settings, verified=verified),
                "app store notification failed",
                {"type": notification["notificationType"]},
            )
        key = table.c.notification_uuid == str(notification["notificationUUID"])[:64]
        await connection.execute(record_outcome(table, key, status, error))
        await connection.commit()
    if status == "failed":
        raise NotificationFailed(error)
    return status


def _moment(milliseconds: Any) -> datetime.datetime | None:
    return from_timestamp(int(milliseconds) // 1000) if milliseconds else None


def _plan(settings: Settings, product_id: str) -> str:
    plan = settings.apple_product_plans.get(product_id)
    if plan is None:
        raise NotOurs(f"App Store product {product_id} is not one of our plans (APPLE_PRODUCT_PLANS)")
    return plan


async def _apply(db: AsyncSession, settings: Settings, verified: VerifiedNotification) -> None:
    kind = verified.notification["notificationType"]
    transaction = verified.transaction or {}
    original_id = str(transaction["originalTransactionId"])
    await db.execute(sa.select(sa.func.pg_advisory_xact_lock(sa.func.hashtext(f"apple:{original_id}"))))
    subscription = await db.scalar(
        sa.select(Subscription).where(Subscription.apple_subscription_id == original_id).with_for_update()
    )
    if kind in ("SUBSCRIBED", "DID_RENEW"):
        subscription = await _subscribed(db, settings, verified, subscription)
        await _grant_transaction(db, subscription, transaction)
    elif subscription is None:
        raise NotOurs(f"no subscription for original transaction {original_id}")
    elif kind == "EXPIRED":
        subscription.status, subscription.auto_renew = "expired", False
        subscription.end_date = _moment(transaction.get("expiresDate")) or subscription.end_date
    elif kind == "DID_CHANGE_RENEWAL_STATUS":
        renewing = verified.notification.get("subtype") == "AUTO_RENEW_ENABLED"
        if subscription.status in ("active", "cancelled"):
            subscription.status = "active" if renewing else "cancelled"
            subscription.auto_renew = renewing
    elif kind == "REFUND":
        await _refund(db, subscription, transaction)
    await db.flush()
    await sync_premium_role(db, subscription.user_id)


async def _subscribed(
    db: AsyncSession, settings: Settings, verified: VerifiedNotification, subscription: Subscription | None
) -> Subscription:
    transaction = verified.transaction or {}
    plan = _plan(settings, str(transaction.get("productId")))
    signed_at = int(verified.notification.get("signedDate") or 0) // 1000
    auto_renew = (verified.renewal or {}).get("autoRenewStatus", 1) == 1
    expires = _moment(transaction.get("expiresDate"))
    if subscription is None:
        try:
            user_id = uuid.UUID(str(transaction.get("appAccountToken")))
        except ValueError as exc:
            raise NotOurs("the transaction carries no appAccountToken of ours") from exc
        if await db.get(User, user_id) is None:
            raise NotOurs(f"no user {user_id}")
        start = _moment(transaction.get("originalPurchaseDate") or transaction.get("purchaseDate"))
        subscription = Subscription(
            user_id=user_id,
            plan_type=plan,
            start_date=start,
            apple_subscription_id=str(transaction["originalTransactionId"]),
            credits_per_month=PLAN_CREDITS[plan],
        )
        db.add(subscription)
    # An older notification (by Apple's signing time) does not undo what a newer one said.
    if subscription.stripe_updated_at is None or subscription.stripe_updated_at <= signed_at:
        subscription.status = "active" if auto_renew else "cancelled"
        subscription.auto_renew = auto_renew
        subscription.end_date = (
            expires if subscription.end_date is None or not expires else max(expires, subscription.end_date)
        )
        subscription.stripe_updated_at = signed_at
    await db.flush()
    return subscription


async def _grant_transaction(db: AsyncSession, subscription: Subscription, transaction: dict[str, Any]) -> None:
    transaction_id = str(transaction["transactionId"])
    price = int(transaction.get("price") or 0) // 10  # Apple's prices are in thousandths of the currency unit.
    if price > 0:
        await record_payment(
            db,
            user_id=subscription.user_id,
            kind="subscription",
            status="succeeded",
            amount=price,
            currency=str(transaction.get("currency") or "usd").lower()[:3],
            credits=subscription.credits_per_month,
            description=f"{subscription.plan_type.capitalize()} plan (App Store)",
            external_reference=f"apple:{transaction_id}",
        )
    purchased = _moment(transaction.get("purchaseDate")) or subscription.start_date
    await grant_subscription_month(
        db, subscription, max(month_index(subscription.start_date, purchased), 0), paid_by=f"apple:{transaction_id}"
    )


async def _refund(db: AsyncSession, subscription: Subscription, transaction: dict[str, Any]) -> None:
    transaction_id = str(transaction["transactionId"])
    subscription.status, subscription.auto_renew = "expired", False
    purchased = _moment(transaction.get("purchaseDate")) or subscription.start_date
    month = max(month_index(subscription.start_date, purchased), 0)
    grant_key = (
        f"apple:{transaction_id}"
        if subscription.plan_type == "monthly"
        else f"subscription:{subscription.id}:month:{month}"
    )
    granted = await db.scalar(sa.select(Credit.amount).where(Credit.idempotency_key == grant_key)) or 0
    paid = await db.scalar(
        sa.select(Payment).where(Payment.external_reference == f"apple:{transaction_id}").with_for_update()
    )
    if paid is not None:
        await record_payment(
            db,
            user_id=subscription.user_id,
            kind="refund",
            status="succeeded",
            amount=paid.amount,
            currency=paid.currency,
            credits=granted or None,
            description=f"Refund: {paid.description}",
            external_reference=f"apple:refund:{transaction_id}",
        )
    await db.flush()
    taken, _ = await take_back_credits(
        db,
        subscription.user_id,
        granted,
        idempotency_key=f"apple:refund:{transaction_id}",
        description=f"Refunded: {subscription.plan_type} plan (App Store)",
    )
    if paid is not None:
        paid = await db.get_one(Payment, paid.id, with_for_update=True, populate_existing=True)
        paid.status = "refunded"
        paid.metadata_ = {
            **paid.metadata_,
            "refund": {"credits": granted, "credits_taken": taken, "credits_not_recovered": granted - taken},
        }
