"""Demo data for development: a verified creator with a few credits to explore with."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from web.accounts.services import AccountService
from web.billing.services import sync_catalogue
from web.credits.services import CreditsService
from web.sandbox.services import SandboxService, username_for_email
from web.settings import Settings

DEMO_EMAIL = "demo@cleack.local"
DEMO_PASSWORD = "cleack-demo-2026"  # noqa: S105 - printed on the terminal on purpose, development only
DEMO_EXTRA_CREDITS = 10


async def load_demo_data(db: AsyncSession, settings: Settings) -> tuple[str, str]:
    user = await AccountService(db, settings).create_verified(DEMO_EMAIL, DEMO_PASSWORD, full_name="Demo Creator")
    await CreditsService(db).grant(
        user.id,
        DEMO_EXTRA_CREDITS,
        transaction_type="bonus",
        idempotency_key=f"demo-credits:{user.id}",
        description="Demo credits",
    )
    if settings.payments_sandbox_enabled:
        # The payments sandbox's packs and plans, mirrored as `cleack sync-stripe` would.
        await sync_catalogue(db, settings)
    if settings.sandbox_enabled:
        # The demo creator's account on the sandbox platform ("demo"), with its three giveaway posts.
        await SandboxService(db, settings).ensure_account(username_for_email(DEMO_EMAIL))
    return DEMO_EMAIL, DEMO_PASSWORD
