"""Connecting, using and disconnecting the creator's platform accounts.

OAuth follows RFC 9700: a `state` bound to the browser session and used once, PKCE (S256)
wherever the platform allows it, the exact redirect URI from configuration. Tokens are kept
only encrypted (web.security.TokenCipher), bound to their row and column, and are refreshed
shortly before they expire. A grant the platform withdrew marks the account as needing
reconnection, which the creator sees on /accounts.
"""

from __future__ import annotations

import datetime
import hashlib
import logging
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import TypeVar

import httpx
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from web.accounts.services import AccountService, Client
from web.security import TokenCipher, TokenDecryptionError
from web.settings import Settings
from web.social.models import OAuthState, SocialAccount
from web.social.providers import PROVIDERS, available_platforms, provider_class, provider_for
from web.social.providers.base import (
    Post,
    Provider,
    ProviderError,
    RateLimited,
    TokenExpired,
    TokenRevoked,
    TokenSet,
)
from web.social.rules import RuleSupport, rule_support

log = logging.getLogger(__name__)

T = TypeVar("T")

STATE_LIFETIME = datetime.timedelta(minutes=10)
# Refresh a token when it has less than this left, so that a draw never starts on a dying token.
REFRESH_MARGIN = datetime.timedelta(minutes=10)
# The periodic job (every 10 minutes) refreshes what expires within this, so each token gets several tries.
REFRESH_HORIZON = datetime.timedelta(minutes=40)


def utcnow() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


# Why a connection attempt ended without connecting anything (shown on /accounts).
REFUSALS = {
    "denied": "You declined the connection on {platform}. Nothing was connected.",
    "invalid_state": "This connection attempt is not valid or has expired. Nothing was connected; please start again.",
    "platform_error": "{platform} refused the connection. Nothing was connected; please try again.",
    "no_code": "{platform} did not send an authorization. Nothing was connected; please try again.",
    "exchange_failed": "{platform} did not complete the connection. Nothing was connected; please try again.",
    "unavailable": "{platform} cannot be connected here.",
}


class ConnectionRefused(Exception):
    """A connection attempt ended without storing anything but its spent `state`."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class AccountUnavailable(Exception):
    """The account cannot be used until the creator reconnects it."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass(frozen=True)
class PlatformCard:
    """One platform on /accounts: its connection (if any) and what draws can check through it."""

    platform: str
    name: str
    configured: bool
    account: SocialAccount | None
    rules: list[RuleSupport]

    @property
    def state(self) -> str:
        if self.account is None or not self.account.is_active:
            return "not_connected"
        if self.account.needs_reconnect:
            return "needs_reconnect"
        return "connected"


class SocialService:
    def __init__(self, db: AsyncSession, settings: Settings, http: httpx.AsyncClient) -> None:
        self.db = db
        self.settings = settings
        self.http = http
        self.cipher = TokenCipher.from_settings(settings)

    # Reading

    async def platform_cards(self, user_id: uuid.UUID) -> list[PlatformCard]:
        accounts = {account.platform: account for account in await self.accounts_of(user_id, active_only=False)}
        configured = set(available_platforms(self.settings))
        return [
            PlatformCard(
                platform, provider.name, platform in configured, accounts.get(platform), rule_support(provider)
            )
            for platform, provider in PROVIDERS.items()
            if platform in configured or platform in accounts
        ]

    async def accounts_of(self, user_id: uuid.UUID, *, active_only: bool = True) -> list[SocialAccount]:
        query = sa.select(SocialAccount).where(SocialAccount.user_id == user_id)
        if active_only:
            query = query.where(SocialAccount.is_active.is_(True))
        return list(await self.db.scalars(query.order_by(SocialAccount.platform)))

    async def account_of(self, user_id: uuid.UUID, account_id: uuid.UUID) -> SocialAccount | None:
        """The user's own account, or None (another user's account does not exist for them)."""
        return await self.db.scalar(
            sa.select(SocialAccount).where(SocialAccount.id == account_id, SocialAccount.user_id == user_id)
        )

    # Connecting

    async def start_connection(self, user_id: uuid.UUID, session_id: uuid.UUID, platform: str) -> str:
        """Remember a fresh `state` (and PKCE verifier) for this browser session; the platform's consent URL."""
        if platform not in available_platforms(self.settings):
            raise ConnectionRefused("unavailable")
        provider = self._provider(platform)
        request = provider.authorization_request()
        state = OAuthState(
            id=uuid.uuid4(),
            state_hash=_digest(request.state),
            session_id=session_id,
            user_id=user_id,
            platform=platform,
            expires_at=utcnow() + STATE_LIFETIME,
        )
        if request.code_verifier is not None:
            state.code_verifier = self.cipher.encrypt(request.code_verifier, f"oauth_states:{state.id}:code_verifier")
        self.db.add(state)
        await self.db.commit()
        return request.url

    async def complete_connection(
        self,
        user_id: uuid.UUID,
        session_id: uuid.UUID,
        platform: str,
        params: Mapping[str, str],
        client: Client,
    ) -> SocialAccount:
        """The OAuth callback. Refusals raise ConnectionRefused and store nothing but the spent `state`."""
        verifier = await self._consume_state(user_id, session_id, platform, params.get("state"))
        provider = self._provider(platform)
        if params.get("error"):
            raise ConnectionRefused("denied" if params["error"] == "access_denied" else "platform_error")
        code = params.get("code")
        if not code or len(code) > 2048:
            raise ConnectionRefused("no_code")
        try:
            token = await provider.exchange_code(code, verifier)
            profile = await provider.profile(token)
        except ProviderError as exc:
            log.warning("connection failed", extra={"platform": platform, "reason": exc.message})
            raise ConnectionRefused("exchange_failed") from exc
        account = await self.db.scalar(
            sa.select(SocialAccount)
            .where(SocialAccount.user_id == user_id, SocialAccount.platform == platform)
            .with_for_update()
        )
        if account is None:
            account = SocialAccount(id=uuid.uuid4(), user_id=user_id, platform=platform)
            self.db.add(account)
        account.platform_user_id = profile.platform_user_id
        account.username = profile.username
        account.display_name = profile.display_name
        account.account_type = profile.account_type
        account.followers_count = profile.followers_count
        account.is_active = True
        account.needs_reconnect = False
        account.last_error = None
        self._store_token(account, token)
        await AccountService(self.db, self.settings).record_activity(
            user_id, "social_connected", client, platform=platform, username=profile.username
        )
        await self.db.commit()
        log.info("account connected", extra={"platform": platform, "account": str(account.id), "user": str(user_id)})
        return account

    async def _consume_state(
        self, user_id: uuid.UUID, session_id: uuid.UUID, platform: str, state: str | None
    ) -> str | None:
        refused = ConnectionRefused("invalid_state")
        if not state or len(state) > 512:
            raise refused
        row = await self.db.scalar(
            sa.select(OAuthState).where(OAuthState.state_hash == _digest(state)).with_for_update()
        )
        if row is None or row.used_at is not None:
            raise refused
        # Spent now, whatever happens next: a replayed `state` finds it used.
        row.used_at = utcnow()
        await self.db.commit()
        if row.session_id != session_id or row.user_id != user_id or row.platform != platform:
            raise refused
        if row.expires_at < utcnow():
            raise refused
        if row.code_verifier is None:
            return None
        return self.cipher.decrypt(row.code_verifier, f"oauth_states:{row.id}:code_verifier")

    async def disconnect(self, user_id: uuid.UUID, account_id: uuid.UUID, client: Client) -> SocialAccount | None:
        """Soft: the row stays (draws refer to it), its tokens are withdrawn at the platform and erased here."""
        account = await self.account_of(user_id, account_id)
        if account is None or not account.is_active:
            return None
        token = self._read_token(account)
        if token is not None and account.platform in available_platforms(self.settings):
            await self._provider(account.platform).revoke(token)
        account.is_active = False
        account.access_token = None
        account.refresh_token = None
        account.token_expires_at = None
        await AccountService(self.db, self.settings).record_activity(
            user_id, "social_disconnected", client, platform=account.platform, username=account.username
        )
        await self.db.commit()
        return account

    # Using

    async def recent_posts(self, account: SocialAccount, limit: int = 20) -> list[Post]:
        return await self.call(account, lambda provider, token: provider.recent_posts(token, limit))

    async def resolve_post(self, account: SocialAccount, url: str) -> Post:
        return await self.call(account, lambda provider, token: provider.resolve_post(token, url))

    async def call(self, account: SocialAccount, action: Callable[[Provider, TokenSet], Awaitable[T]]) -> T:
        """Run one platform call with a fresh token; a token the platform refuses is refreshed once."""
        provider = self._provider(account.platform)
        token = await self.fresh_token(account)
        try:
            return await action(provider, token)
        except TokenExpired:
            token = await self.fresh_token(account, force=True)
            try:
                return await action(provider, token)
            except (TokenExpired, TokenRevoked) as exc:
                await self.mark_needs_reconnect(account, exc.message)
                raise AccountUnavailable(self._reconnect_message(account)) from exc
        except TokenRevoked as exc:
            await self.mark_needs_reconnect(account, exc.message)
            raise AccountUnavailable(self._reconnect_message(account)) from exc

    async def fresh_token(self, account: SocialAccount, *, force: bool = False) -> TokenSet:
        """The account's token, refreshed first when it is about to expire (or when `force`)."""
        if not account.is_active or account.needs_reconnect:
            raise AccountUnavailable(self._reconnect_message(account))
        token = self._read_token(account)
        if token is None:
            await self.mark_needs_reconnect(account, "The stored token could not be read.")
            raise AccountUnavailable(self._reconnect_message(account))
        expiring = token.expires_at is not None and token.expires_at - utcnow() < REFRESH_MARGIN
        if not (force or expiring):
            return token
        return await self._refresh(account, token)

    async def _refresh(self, account: SocialAccount, token: TokenSet) -> TokenSet:
        # Lock the row so that two processes refreshing at once do not spend a rotating refresh token twice.
        await self.db.execute(sa.select(SocialAccount.id).where(SocialAccount.id == account.id).with_for_update())
        await self.db.refresh(account)
        current = self._read_token(account)
        if current is not None and current.access_token != token.access_token:
            await self.db.commit()
            return current
        try:
            refreshed = await self._provider(account.platform).refresh(token)
        except (TokenExpired, TokenRevoked) as exc:
            await self.db.rollback()
            await self.mark_needs_reconnect(account, exc.message)
            raise AccountUnavailable(self._reconnect_message(account)) from exc
        except ProviderError:
            await self.db.rollback()
            raise
        self._store_token(account, refreshed)
        await self.db.commit()
        return refreshed

    async def refresh_expiring(self, now: datetime.datetime | None = None) -> dict[str, int]:
        """The periodic job: refresh every active token that expires within the hour."""
        horizon = (now or utcnow()) + REFRESH_HORIZON
        ids = list(
            await self.db.scalars(
                sa.select(SocialAccount.id).where(
                    SocialAccount.is_active.is_(True),
                    SocialAccount.needs_reconnect.is_(False),
                    SocialAccount.token_expires_at.is_not(None),
                    SocialAccount.token_expires_at < horizon,
                )
            )
        )
        refreshed = failed = 0
        for account_id in ids:
            account = await self.db.get(SocialAccount, account_id)
            if account is None or not account.is_active or account.needs_reconnect:
                continue
            token = self._read_token(account)
            try:
                if token is None:
                    raise AccountUnavailable("unreadable token")
                await self._refresh(account, token)
                refreshed += 1
            except (AccountUnavailable, RateLimited, ProviderError):
                failed += 1
        return {"refreshed": refreshed, "failed": failed}

    async def mark_needs_reconnect(self, account: SocialAccount, reason: str) -> None:
        await self.db.execute(
            sa.update(SocialAccount)
            .where(SocialAccount.id == account.id)
            .values(needs_reconnect=True, last_error=reason[:500])
        )
        await self.db.commit()
        account.needs_reconnect = True
        account.last_error = reason[:500]
        log.info("account needs reconnection", extra={"platform": account.platform, "account": str(account.id)})

    # Tokens at rest

    def _store_token(self, account: SocialAccount, token: TokenSet) -> None:
        account.access_token = self.cipher.encrypt(token.access_token, _context(account, "access_token"))
        account.refresh_token = (
            self.cipher.encrypt(token.refresh_token, _context(account, "refresh_token"))
            if token.refresh_token
            else None
        )
        account.token_expires_at = token.expires_at
        account.scopes = " ".join(token.scopes)[:1000] or None
        account.token_extra = dict(token.extra) or None

    def _read_token(self, account: SocialAccount) -> TokenSet | None:
        if account.access_token is None:
            return None
        try:
            access = self.cipher.decrypt(account.access_token, _context(account, "access_token"))
            refresh = (
                self.cipher.decrypt(account.refresh_token, _context(account, "refresh_token"))
                if account.refresh_token
                else None
            )
        except TokenDecryptionError:
            log.error("a stored token could not be decrypted", extra={"account": str(account.id)})
            return None
        return TokenSet(
            access_token=access,
            refresh_token=refresh,
            expires_at=account.token_expires_at,
            scopes=tuple((account.scopes or "").split()),
            extra=dict(account.token_extra or {}),
        )

    def _provider(self, platform: str) -> Provider:
        return provider_for(self.settings, platform, self.http)

    def _reconnect_message(self, account: SocialAccount) -> str:
        name = provider_class(account.platform).name
        return f"Your {name} account needs to be reconnected before Cleack can read it."


async def rotate_token_keys(db: AsyncSession, settings: Settings, batch_size: int = 500) -> dict[str, int]:
    """Re-encrypt every stored token under the first configured key; the others must still be configured."""
    cipher = TokenCipher.from_settings(settings)
    rotated = unchanged = 0
    last_id: uuid.UUID | None = None
    while True:
        query = sa.select(SocialAccount).order_by(SocialAccount.id).limit(batch_size).with_for_update()
        if last_id is not None:
            query = query.where(SocialAccount.id > last_id)
        accounts = list(await db.scalars(query))
        if not accounts:
            break
        for account in accounts:
            changed = False
            for column in ("access_token", "refresh_token"):
                stored: bytes | None = getattr(account, column)
                if stored is None or cipher.is_current(stored):
                    continue
                context = _context(account, column)
                setattr(account, column, cipher.encrypt(cipher.decrypt(stored, context), context))
                changed = True
            rotated += changed
            unchanged += not changed
        last_id = accounts[-1].id
        await db.commit()
    return {"rotated": rotated, "unchanged": unchanged}


def platform_http_client() -> httpx.AsyncClient:
    """One client per process for every platform call: pooled connections, bounded waits."""
    return httpx.AsyncClient(
        timeout=httpx.Timeout(20.0, connect=5.0),
        limits=httpx.Limits(max_connections=50, max_keepalive_connections=20),
        headers={"User-Agent": "Cleack/1.0 (+https://cleack.app)"},
        follow_redirects=False,
    )


def _context(account: SocialAccount, column: str) -> str:
    return f"social_accounts:{account.id}:{column}"


def _digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()
