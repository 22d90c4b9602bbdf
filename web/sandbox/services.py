"""What the sandbox platform does: its accounts and posts, the OAuth grants it issues, its counters.

Used by the sandbox's controllers, by the demo data and by tests. Operations that tokens or
counters depend on commit themselves, so that an error answer never rolls them back.
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import hmac
import math
import re
import secrets
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from web.ratelimit import RateLimitHit
from web.sandbox import generator
from web.sandbox.models import SandboxAccount, SandboxGrant, SandboxPost, SandboxReply
from web.settings import Settings
from web.social.providers import SANDBOX_CLIENT_ID

SCOPES = ("profile", "posts.read", "comments.read", "likes.read", "followers.read", "replies.write")
CODE_LIFETIME = datetime.timedelta(minutes=10)
ACCESS_LIFETIME = datetime.timedelta(hours=1)
REFRESH_LIFETIME = datetime.timedelta(days=90)
TOKEN_PREFIXES = {"code": "sbx_code_", "access": "sbx_at_", "refresh": "sbx_rt_"}
USERNAME = re.compile(r"^[a-z0-9][a-z0-9._]{1,29}$")
DEFAULT_USERNAME = "sandbox_creator"
DEFAULT_POSTS = (
    (
        1_000_000,
        "🎁 MEGA GIVEAWAY 🎁 We hit one million! To celebrate, win our amazing creator kit: camera, light and mic. "
        "To enter: like this post, follow us and comment with a friend you love. Winners drawn fairly with Cleack.",
    ),
    (
        10_000,
        "Giveaway time ✨ Win a signed print of this amazing sunset. Like, follow and tell us in the comments what "
        "you love most about it. Tag a friend for good luck!",
    ),
    (
        100,
        "Small giveaway for my lovely community 💛 Win a coffee mug from the shop: like this post and comment "
        "'amazing' to enter. Good luck!",
    ),
)
REPLY_MAX = 2_200
# Switches a post can carry, and what each one's settings may be.
BEHAVIOUR_LIMITS: dict[str, tuple[int, int] | dict[str, tuple[int, int]] | type[bool]] = {
    "rate_limit": {"requests": (1, 10_000), "window_seconds": (1, 3_600)},
    "fail_pages": {"every": (1, 10_000), "status": (500, 599), "times": (1, 100)},
    "slow_ms": (0, 10_000),
    "malformed_every": (1, 10_000),
    "times": (1, 100),
    "newest_first": bool,
    "overlap": (1, 999),
}


class OAuthError(Exception):
    """An RFC 6749 error answer from the token endpoint."""

    def __init__(self, error: str, description: str, status_code: int = 400) -> None:
        super().__init__(description)
        self.error = error
        self.description = description
        self.status_code = status_code


class ApiError(Exception):
    """An error answer from the resource API: `{"error": {"code", "message"}}`."""

    def __init__(self, status_code: int, code: str, message: str, headers: Mapping[str, str] | None = None) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.code = code
        self.message = message
        self.headers = dict(headers or {})


@dataclass(frozen=True)
class IssuedTokens:
    access_token: str
    refresh_token: str
    scope: str

    def as_json(self) -> dict[str, Any]:
        return {
            "access_token": self.access_token,
            "token_type": "bearer",
            "expires_in": int(ACCESS_LIFETIME.total_seconds()),
            "refresh_token": self.refresh_token,
            "scope": self.scope,
        }


@dataclass(frozen=True)
class Window:
    """One fixed-window counter after a hit: how many so far and when the window ends (epoch seconds)."""

    hits: int
    limit: int
    resets_at: int

    @property
    def exceeded(self) -> bool:
        return self.hits > self.limit

    @property
    def remaining(self) -> int:
        return max(0, self.limit - self.hits)

    def retry_after(self) -> int:
        return max(1, math.ceil(self.resets_at - time.time()))

    def headers(self) -> dict[str, str]:
        return {
            "X-RateLimit-Limit": str(self.limit),
            "X-RateLimit-Remaining": str(self.remaining),
            "X-RateLimit-Reset": str(self.resets_at),
        }


def now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def hash_secret(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def redirect_uri(settings: Settings) -> str:
    return f"{settings.base_url}/accounts/callback/sandbox"


def post_url(settings: Settings, post_id: str) -> str:
    return f"{settings.base_url}/sandbox/p/{post_id}"


def code_challenge_of(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode("ascii", "replace")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def username_for_email(email: str) -> str:
    """The sandbox account a Cleack user gets by default: their email's local part, made a valid username."""
    local = email.split("@", 1)[0].lower()
    cleaned = re.sub(r"[^a-z0-9._]+", "_", local).strip("._")[:30]
    return cleaned if USERNAME.match(cleaned) else DEFAULT_USERNAME


def validate_behaviour(raw: Mapping[str, Any]) -> dict[str, Any]:
    """The switches as stored, or ValueError naming the one that is wrong."""
    behaviour: dict[str, Any] = {}
    for name, value in raw.items():
        bounds = BEHAVIOUR_LIMITS.get(name)
        if bounds is None:
            raise ValueError(f"unknown switch {name!r}")
        if bounds is bool:
            if not isinstance(value, bool):
                raise ValueError(f"{name} is true or false")
            if value:
                behaviour[name] = True
            continue
        if isinstance(bounds, tuple):
            behaviour[name] = _bounded(name, value, bounds)
            continue
        assert isinstance(bounds, dict)
        if not isinstance(value, Mapping) or set(value) - set(bounds):
            raise ValueError(f"{name} takes {', '.join(bounds)}")
        behaviour[name] = {
            key: _bounded(f"{name}.{key}", value.get(key, limits[0]), limits) for key, limits in bounds.items()
        }
    return behaviour


def _bounded(name: str, value: Any, bounds: tuple[int, int]) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not bounds[0] <= value <= bounds[1]:
        raise ValueError(f"{name} is a whole number from {bounds[0]} to {bounds[1]}")
    return value


class SandboxService:
    def __init__(self, db: AsyncSession, settings: Settings) -> None:
        self.db = db
        self.settings = settings

    # Accounts and posts

    async def account(self, username: str) -> SandboxAccount | None:
        return await self.db.scalar(sa.select(SandboxAccount).where(SandboxAccount.username == username))

    async def ensure_account(self, username: str) -> SandboxAccount:
        """The account of that name, created with its three default posts when it is new."""
        inserted = await self.db.scalar(
            pg_insert(SandboxAccount)
            .values(
                platform_user_id=str(1_000_000_000 + secrets.randbelow(9_000_000_000)),
                username=username,
                display_name=username.replace("_", " ").replace(".", " ").title(),
                account_type="creator",
                followers_count=1_000 + secrets.randbelow(4_000),
            )
            .on_conflict_do_nothing(index_elements=["username"])
            .returning(SandboxAccount.id)
        )
        account = await self.account(username)
        assert account is not None
        if inserted is not None:
            for comments_count, caption in DEFAULT_POSTS:
                await self.create_post(account, comments_count, caption)
        await self.db.commit()
        return account

    async def create_post(
        self,
        account: SandboxAccount,
        comments_count: int,
        caption: str | None = None,
        behaviour: Mapping[str, Any] | None = None,
    ) -> SandboxPost:
        if not 0 <= comments_count <= generator.MAX_COMMENTS:
            raise ValueError(f"a post has from 0 to {generator.MAX_COMMENTS:,} comments")
        post_id = secrets.token_hex(8)
        post = SandboxPost(
            post_id=post_id,
            account_id=account.id,
            caption=caption
            or f"Giveaway! Win something amazing: like, follow and comment to enter ({comments_count:,} comments).",
            comments_count=comments_count,
            likes_count=generator.likes_count(post_id, comments_count),
            behaviour=validate_behaviour(behaviour or {}),
            # Early enough that every generated comment is already in the past.
            posted_at=now() - datetime.timedelta(seconds=generator.comments_span_seconds(comments_count)),
        )
        self.db.add(post)
        # Everyone who saw the post now counts in the account's audience: six in ten of them follow it.
        audience = generator.audience_followers(
            account.platform_user_id, generator.post_audience(post_id, comments_count)
        )
        account.followers_count = max(account.followers_count, audience)
        await self.db.flush()
        return post

    async def post(self, post_id: str) -> SandboxPost | None:
        return await self.db.scalar(sa.select(SandboxPost).where(SandboxPost.post_id == post_id))

    async def posts_of(self, account_id: uuid.UUID, limit: int | None = None) -> list[SandboxPost]:
        query = (
            sa.select(SandboxPost)
            .where(SandboxPost.account_id == account_id)
            .order_by(SandboxPost.posted_at.desc(), SandboxPost.id.desc())
            .limit(limit)
        )
        return list(await self.db.scalars(query))

    async def accounts(self, limit: int = 100) -> list[SandboxAccount]:
        query = sa.select(SandboxAccount).order_by(SandboxAccount.created_at.desc()).limit(limit)
        return list(await self.db.scalars(query))

    async def replies_to(self, post_id: str) -> list[SandboxReply]:
        query = sa.select(SandboxReply).where(SandboxReply.post_id == post_id).order_by(SandboxReply.created_at)
        return list(await self.db.scalars(query))

    async def publish_reply(self, account: SandboxAccount, post: SandboxPost, text: str) -> SandboxReply:
        reply = SandboxReply(post_id=post.post_id, account_id=account.id, text=text)
        self.db.add(reply)
        await self.db.flush()
        await self.db.refresh(reply)
        await self.db.commit()
        return reply

    # OAuth grants

    async def issue_code(self, account: SandboxAccount, redirect_to: str, code_challenge: str, scope: str) -> str:
        code = self._grant(
            "code",
            uuid.uuid4(),
            account.id,
            CODE_LIFETIME,
            redirect_uri=redirect_to,
            code_challenge=code_challenge,
            scope=scope,
        )
        await self.db.commit()
        return code

    async def exchange_code(self, code: str, redirect_to: str | None, verifier: str | None) -> IssuedTokens:
        grant = await self._grant_for_update("code", code)
        if grant is None:
            raise OAuthError("invalid_grant", "The authorization code is not valid.")
        if grant.used_at is not None or grant.revoked_at is not None:
            # A replayed code may be a stolen one: withdraw everything it gave (RFC 9700 §4.5).
            await self._revoke_family(grant.family_id)
            await self.db.commit()
            raise OAuthError("invalid_grant", "The authorization code was already used; its tokens are revoked.")
        if grant.expires_at <= now():
            raise OAuthError("invalid_grant", "The authorization code has expired.")
        if redirect_to != grant.redirect_uri:
            raise OAuthError("invalid_grant", "redirect_uri does not match the one the code was issued for.")
        if not verifier:
            raise OAuthError("invalid_request", "code_verifier is required (PKCE).")
        if not hmac.compare_digest(code_challenge_of(verifier), grant.code_challenge or ""):
            raise OAuthError("invalid_grant", "code_verifier does not match the code_challenge.")
        grant.used_at = now()
        tokens = self._token_pair(grant)
        await self.db.commit()
        return tokens

    async def refresh(self, refresh_token: str) -> IssuedTokens:
        grant = await self._grant_for_update("refresh", refresh_token)
        if grant is None or grant.revoked_at is not None:
            raise OAuthError("invalid_grant", "The refresh token is not valid.")
        if grant.used_at is not None:
            # Rotation: a refresh token presented twice means two holders; neither keeps access (RFC 9700 §4.14).
            await self._revoke_family(grant.family_id)
            await self.db.commit()
            raise OAuthError("invalid_grant", "The refresh token was already used; the grant is revoked.")
        if grant.expires_at <= now():
            raise OAuthError("invalid_grant", "The refresh token has expired.")
        grant.used_at = now()
        tokens = self._token_pair(grant)
        await self.db.commit()
        return tokens

    async def revoke_token(self, token: str) -> None:
        """RFC 7009: withdraw the grant the token belongs to; an unknown token is not an error."""
        family_id = await self.db.scalar(
            sa.select(SandboxGrant.family_id).where(SandboxGrant.token_hash == hash_secret(token))
        )
        if family_id is not None:
            await self._revoke_family(family_id)
        await self.db.commit()

    async def revoke_account_grants(self, account_id: uuid.UUID) -> None:
        await self.db.execute(
            sa.update(SandboxGrant)
            .where(SandboxGrant.account_id == account_id, SandboxGrant.revoked_at.is_(None))
            .values(revoked_at=now())
        )
        await self.db.commit()

    async def expire_access_tokens(self, account_id: uuid.UUID) -> None:
        """Make the account's access tokens expired as of now (their refresh tokens still work)."""
        await self.db.execute(
            sa.update(SandboxGrant)
            .where(SandboxGrant.account_id == account_id, SandboxGrant.kind == "access")
            .values(expires_at=now() - datetime.timedelta(seconds=1))
        )
        await self.db.commit()

    async def authenticate(self, access_token: str) -> tuple[SandboxGrant, SandboxAccount]:
        row = (
            await self.db.execute(
                sa.select(SandboxGrant, SandboxAccount)
                .join(SandboxAccount, SandboxAccount.id == SandboxGrant.account_id)
                .where(SandboxGrant.token_hash == hash_secret(access_token), SandboxGrant.kind == "access")
            )
        ).first()
        if row is None or row[0].revoked_at is not None:
            raise ApiError(401, "invalid_token", "The access token is not valid or was revoked.")
        if row[0].expires_at <= now():
            raise ApiError(401, "token_expired", "The access token has expired; refresh it.")
        return row[0], row[1]

    def _grant(
        self,
        kind: str,
        family_id: uuid.UUID,
        account_id: uuid.UUID,
        lifetime: datetime.timedelta,
        *,
        scope: str,
        redirect_uri: str | None = None,
        code_challenge: str | None = None,
    ) -> str:
        token = TOKEN_PREFIXES[kind] + secrets.token_urlsafe(32)
        self.db.add(
            SandboxGrant(
                kind=kind,
                token_hash=hash_secret(token),
                family_id=family_id,
                account_id=account_id,
                client_id=SANDBOX_CLIENT_ID,
                redirect_uri=redirect_uri,
                code_challenge=code_challenge,
                scope=scope,
                expires_at=now() + lifetime,
            )
        )
        return token

    def _token_pair(self, parent: SandboxGrant) -> IssuedTokens:
        access = self._grant("access", parent.family_id, parent.account_id, ACCESS_LIFETIME, scope=parent.scope)
        refresh = self._grant("refresh", parent.family_id, parent.account_id, REFRESH_LIFETIME, scope=parent.scope)
        return IssuedTokens(access, refresh, parent.scope)

    async def _grant_for_update(self, kind: str, token: str) -> SandboxGrant | None:
        return await self.db.scalar(
            sa.select(SandboxGrant)
            .where(SandboxGrant.token_hash == hash_secret(token), SandboxGrant.kind == kind)
            .with_for_update()
        )

    async def _revoke_family(self, family_id: uuid.UUID) -> None:
        await self.db.execute(
            sa.update(SandboxGrant)
            .where(SandboxGrant.family_id == family_id, SandboxGrant.revoked_at.is_(None))
            .values(revoked_at=now())
        )

    # Counters in PostgreSQL (the rate-limit table), so that every web process sees the same counts

    async def count(self, name: str, key: str, limit: int, window_seconds: int) -> Window:
        moment = time.time()
        start = int(moment - moment % window_seconds)
        bucket = hashlib.sha256(f"{name}:{key}".encode()).hexdigest()
        statement = (
            pg_insert(RateLimitHit)
            .values(bucket=bucket, window_start=datetime.datetime.fromtimestamp(start, datetime.UTC), hits=1)
            .on_conflict_do_update(index_elements=["bucket", "window_start"], set_={"hits": RateLimitHit.hits + 1})
            .returning(RateLimitHit.hits)
        )
        hits = (await self.db.execute(statement)).scalar_one()
        return Window(int(hits), limit, start + window_seconds)
