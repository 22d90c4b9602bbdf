"""The Stripe client: the same code for Stripe and the payments sandbox, only the address and keys differ."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import stripe

from web.settings import Settings

TIMEOUT_SECONDS = 20


class PaymentsUnavailable(Exception):
    """Payments are not configured here (production without Stripe keys)."""


@asynccontextmanager
async def open_stripe(settings: Settings) -> AsyncIterator[stripe.StripeClient]:
    if not settings.payments_enabled:
        raise PaymentsUnavailable
    http_client = stripe.HTTPXClient(timeout=TIMEOUT_SECONDS)
    base = settings.stripe_api_url
    client = stripe.StripeClient(
        settings.stripe_api_key,
        base_addresses={"api": base} if base else None,
        http_client=http_client,
        max_network_retries=2,
    )
    try:
        yield client
    finally:
        await http_client.close_async()


def as_dict(value: Any) -> dict[str, Any]:
    """A Stripe object (or a webhook's plain JSON) as plain dicts and lists."""
    if isinstance(value, stripe.StripeObject):
        return value.to_dict()
    if isinstance(value, dict):
        return value
    return dict(json.loads(json.dumps(value)))


class WebhookSignatureRefused(Exception):
    """Not signed by Stripe with any of our endpoint secrets, or signed too long ago."""


def verify_webhook(payload: bytes, signature: str | None, secrets: tuple[str, ...]) -> dict[str, Any]:
    """The event, once its signature matches one of the secrets (several while a secret is being rotated)."""
    if not signature:
        raise WebhookSignatureRefused("No Stripe-Signature header.")
    if not secrets:
        raise WebhookSignatureRefused("No webhook secret is configured.")
    reason = ""
    for secret in secrets:
        try:
            stripe.Webhook.construct_event(payload, signature, secret, tolerance=300, api_key="-")
        except stripe.SignatureVerificationError as refused:
            reason = refused.user_message or str(refused)
            continue
        except ValueError as malformed:
            raise WebhookSignatureRefused("The body is not a JSON event.") from malformed
        event = json.loads(payload)
        if (
            not isinstance(event, dict)
            or not isinstance(event.get("id"), str)
            or not isinstance(event.get("type"), str)
        ):
            raise WebhookSignatureRefused("The body is not a Stripe event.")
        return event
    raise WebhookSignatureRefused(reason)
