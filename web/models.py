"""Every feature's models, imported once: the one metadata Alembic sees."""

from advanced_alchemy.base import orm_registry

from web.accounts.models import Session, User, UserActivity, VerificationToken
from web.admin.models import AdminNote, AuditLog, SystemMetric
from web.billing.models import (
    AppleNotification,
    Payment,
    StripeCustomer,
    StripeEvent,
    StripePrice,
    StripeProduct,
    Subscription,
)
from web.blacklist.models import BlacklistEntry
from web.certificates.models import LogCosignature, LogRecord
from web.credits.models import Credit
from web.draws.models import Announcement, Draw, DrawBlacklistEntry, DrawHistory, DrawParticipant
from web.mail import OutboxMessage
from web.ratelimit import RateLimitHit
from web.sandbox.models import SandboxAccount, SandboxGrant, SandboxPost, SandboxReply
from web.sandbox.stripe.models import SandboxStripeObject, SandboxStripeRequest, SandboxWebhookDelivery
from web.social.models import OAuthState, SocialAccount

metadata = orm_registry.metadata

__all__ = [
    "AdminNote",
    "Announcement",
    "AppleNotification",
    "AuditLog",
    "BlacklistEntry",
    "Credit",
    "Draw",
    "DrawBlacklistEntry",
    "DrawHistory",
    "DrawParticipant",
    "LogCosignature",
    "LogRecord",
    "OAuthState",
    "OutboxMessage",
    "Payment",
    "RateLimitHit",
    "SandboxAccount",
    "SandboxGrant",
    "SandboxPost",
    "SandboxReply",
    "SandboxStripeObject",
    "SandboxStripeRequest",
    "SandboxWebhookDelivery",
    "Session",
    "SocialAccount",
    "StripeCustomer",
    "StripeEvent",
    "StripePrice",
    "StripeProduct",
    "Subscription",
    "SystemMetric",
    "User",
    "UserActivity",
    "VerificationToken",
    "metadata",
]
