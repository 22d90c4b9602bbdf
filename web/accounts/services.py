"""Accounts: sign-up, verification, login, sessions, password reset and change."""

from __future__ import annotations

import datetime
import uuid
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from web import ratelimit
from web.accounts.models import Session, User, UserActivity, VerificationToken
from web.credits.services import CreditsService
from web.mail import send_mail
from web.security import hash_password, hash_token, new_token, password_needs_rehash, verify_password
from web.settings import Settings

VERIFICATION_TTL = datetime.timedelta(hours=48)
RESET_TTL = datetime.timedelta(hours=1)
# last_seen_at is written at most this often, so that reading a page costs no write.
LAST_SEEN_RESOLUTION = datetime.timedelta(minutes=5)


def utcnow() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


class EmailTaken(Exception):
    pass


class LoginRefused(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class TokenRefused(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class Client:
    """Who is on the other end of a request, as far as we record it."""

    ip: str | None
    user_agent: str | None


@dataclass(frozen=True)
class CurrentUser:
    """The logged-in user as a request sees it: a snapshot, independent of any database session."""

    id: uuid.UUID
    email: str
    full_name: str | None
    role: str
    credit_balance: int

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"


@dataclass(frozen=True)
class ActiveSession:
    session_id: uuid.UUID
    user: CurrentUser


SESSION_LOOKUP = """
    SELECT s.id AS session_id, s.expires_at, s.last_seen_at,
           u.id AS user_id, u.email, u.full_name, u.role, u.credit_balance
    FROM sessions s JOIN users u ON u.id = s.user_id
    WHERE s.token_hash = $1
"""


async def resolve_session(pool: Any, settings: Settings, token: str) -> ActiveSession | None:
    """The session a cookie token opens, if it is still valid; runs on every request, so plain SQL."""
    now = utcnow()
    row = await pool.fetchrow(SESSION_LOOKUP, hash_token(token))
    if row is None:
        return None
    idle_limit = datetime.timedelta(minutes=settings.session_idle_minutes)
    if row["expires_at"] <= now or row["last_seen_at"] + idle_limit <= now or row["role"] == "banned":
        await pool.execute("DELETE FROM sessions WHERE id = $1", row["session_id"])
        return None
    if now - row["last_seen_at"] >= LAST_SEEN_RESOLUTION:
        await pool.execute("UPDATE sessions SET last_seen_at = $2 WHERE id = $1", row["session_id"], now)
    user = CurrentUser(row["user_id"], row["email"], row["full_name"], row["role"], row["credit_balance"])
    return ActiveSession(row["session_id"], user)


class AccountService:
    def __init__(self, db: AsyncSession, settings: Settings) -> None:
        self.db = db
        self.settings = settings

    async def by_email(self, email: str) -> User | None:
        return await self.db.scalar(sa.select(User).where(sa.func.lower(User.email) == sa.func.lower(email)))

    async def record_activity(self, user_id: uuid.UUID, action: str, client: Client | None = None, **data: Any) -> None:
        self.db.add(UserActivity(user_id=user_id, action=action, data=data or None, ip_address=client and client.ip))

    # Sign-up and verification

    async def sign_up(self, email: str, password: str, full_name: str | None, client: Client) -> User:
        if client.ip:
            await ratelimit.hit(self.db, ratelimit.SIGNUP_PER_ADDRESS, client.ip)
            await self.db.commit()
        if await self.by_email(email) is not None:
            raise EmailTaken(email)
        user = User(email=email, password_hash=await hash_password(password), full_name=full_name or None)
        self.db.add(user)
        try:
            await self.db.flush()
        except IntegrityError as exc:
            await self.db.rollback()
            raise EmailTaken(email) from exc
        await self.record_activity(user.id, "signup", client)
        await self._send_verification(user)
        await self.db.commit()
        return user

    async def resend_verification(self, email: str, client: Client) -> None:
        await ratelimit.hit(self.db, ratelimit.VERIFY_MAIL_PER_ACCOUNT, email)
        await self.db.commit()
        user = await self.by_email(email)
        if user is not None and not user.email_verified:
            await self._send_verification(user)
            await self.db.commit()

    async def _issue_token(self, user: User, purpose: str, ttl: datetime.timedelta) -> str:
        token = new_token()
        self.db.add(
            VerificationToken(
                user_id=user.id,
                identifier=user.email,
                purpose=purpose,
                token_hash=hash_token(token),
                expires_at=utcnow() + ttl,
            )
        )
        await self.db.flush()
        return token

    async def _send_verification(self, user: User) -> None:
        await self._mail_link(
            user,
            "email_verification",
            VERIFICATION_TTL,
            "/verify-email/",
            subject="Confirm your email for Cleack",
            body=(
                "Welcome to Cleack!\n\n"
                "Confirm your email address to activate your account and receive your "
                "welcome credits:\n\n{link}\n\n"
                "This link works once and expires in 48 hours. "
                "If you did not sign up, you can ignore this message.\n"
            ),
        )

    async def _mail_link(
        self, user: User, purpose: str, ttl: datetime.timedelta, path: str, *, subject: str, body: str
    ) -> None:
        """Mail `user` a single-use link; `body` has a {link} placeholder."""
        token = await self._issue_token(user, purpose, ttl)
        link = f"{self.settings.base_url}{path}{token}"
        await send_mail(self.db, self.settings, to=user.email, subject=subject, body=body.format(link=link))

    async def _consume_token(self, token: str, purpose: str) -> VerificationToken:
        """Mark the token used, atomically, so that it works exactly once."""
        digest = hash_token(token)
        row = await self.db.scalar(
            sa.update(VerificationToken)
            .where(
                VerificationToken.token_hash == digest,
                VerificationToken.purpose == purpose,
                VerificationToken.used_at.is_(None),
                VerificationToken.expires_at > sa.func.now(),
            )
            .values(used_at=sa.func.now())
            .returning(VerificationToken)
        )
        if row is None:
            # Another request used it between the two statements: that is "used" too.
            raise await self._refusal(digest, purpose) or TokenRefused("used")
        return row

    async def _refusal(self, digest: bytes, purpose: str) -> TokenRefused | None:
        """Why the token cannot be used, or None when it can."""
        row = await self.db.scalar(
            sa.select(VerificationToken).where(
                VerificationToken.token_hash == digest, VerificationToken.purpose == purpose
            )
        )
        if row is None:
            return TokenRefused("invalid")
        if row.used_at is not None:
            return TokenRefused("used")
        if row.expires_at <= utcnow():
            return TokenRefused("expired")
        return None

    async def verify_email(self, token: str, client: Client) -> User:
        try:
            row = await self._consume_token(token, "email_verification")
        except TokenRefused as refused:
            await self.db.rollback()
            raise refused
        user = await self.db.get_one(User, row.user_id, with_for_update=True)
        if not user.email_verified:
            user.email_verified = True
            user.email_verified_at = utcnow()
            await self.record_activity(user.id, "email_verified", client)
        await self.db.commit()
        # Keyed by user, so however many links are clicked the bonus is granted once.
        await CreditsService(self.db).grant_welcome_bonus(user.id)
        return user

    # Login and sessions

    async def authenticate(self, email: str, password: str, client: Client) -> User:
        await ratelimit.hit(self.db, ratelimit.LOGIN_PER_ACCOUNT, email)
        if client.ip:
            await ratelimit.hit(self.db, ratelimit.LOGIN_PER_ADDRESS, client.ip)
        await self.db.commit()
        user = await self.db.scalar(
            sa.select(User)
            .where(sa.func.lower(User.email) == sa.func.lower(email))
            .options(sa.orm.undefer(User.password_hash))
        )
        if not await verify_password(user.password_hash if user else None, password) or user is None:
            raise LoginRefused("credentials")
        if user.is_banned:
            raise LoginRefused("banned")
        if not user.email_verified:
            raise LoginRefused("unverified")
        if password_needs_rehash(user.password_hash):
            user.password_hash = await hash_password(password)
        return user

    async def start_session(self, user: User, client: Client, replacing: uuid.UUID | None = None) -> str:
        """A fresh token at every login; the session it replaces is gone."""
        if replacing is not None:
            await self.db.execute(sa.delete(Session).where(Session.id == replacing))
        token = new_token()
        now = utcnow()
        self.db.add(
            Session(
                user_id=user.id,
                token_hash=hash_token(token),
                expires_at=now + datetime.timedelta(hours=self.settings.session_absolute_hours),
                last_seen_at=now,
                ip_address=client.ip,
                user_agent=(client.user_agent or "")[:512] or None,
            )
        )
        user.last_login_at = now
        await self.record_activity(user.id, "login", client)
        await self.db.commit()
        return token

    async def end_session(self, session_id: uuid.UUID) -> None:
        await self.db.execute(sa.delete(Session).where(Session.id == session_id))
        await self.db.commit()

    async def sessions_of(self, user_id: uuid.UUID) -> list[Session]:
        result = await self.db.scalars(
            sa.select(Session).where(Session.user_id == user_id).order_by(Session.last_seen_at.desc())
        )
        return list(result)

    async def revoke_session(self, user_id: uuid.UUID, session_id: uuid.UUID, client: Client) -> bool:
        """Only the owner's own sessions: another user's id behaves as if it did not exist."""
        result = await self.db.execute(sa.delete(Session).where(Session.id == session_id, Session.user_id == user_id))
        if not result.rowcount:  # type: ignore[attr-defined]
            await self.db.rollback()
            return False
        await self.record_activity(user_id, "session_revoked", client)
        await self.db.commit()
        return True

    async def revoke_other_sessions(self, user_id: uuid.UUID, keep: uuid.UUID | None) -> int:
        statement = sa.delete(Session).where(Session.user_id == user_id)
        if keep is not None:
            statement = statement.where(Session.id != keep)
        result = await self.db.execute(statement)
        return int(result.rowcount or 0)  # type: ignore[attr-defined]

    # Passwords

    async def change_password(
        self, user: CurrentUser, current_password: str, new_password: str, current_session: uuid.UUID, client: Client
    ) -> bool:
        stored = await self.db.scalar(sa.select(User.password_hash).where(User.id == user.id))
        if not await verify_password(stored, current_password):
            return False
        await self.db.execute(
            sa.update(User).where(User.id == user.id).values(password_hash=await hash_password(new_password))
        )
        await self.revoke_other_sessions(user.id, keep=current_session)
        await self.record_activity(user.id, "password_changed", client)
        await self.db.commit()
        return True

    async def request_password_reset(self, email: str, client: Client) -> None:
        """Same answer whether or not the account exists."""
        await ratelimit.hit(self.db, ratelimit.RESET_PER_ACCOUNT, email)
        if client.ip:
            await ratelimit.hit(self.db, ratelimit.RESET_PER_ADDRESS, client.ip)
        await self.db.commit()
        user = await self.by_email(email)
        if user is None or user.is_banned:
            return
        await self._mail_link(
            user,
            "password_reset",
            RESET_TTL,
            "/reset-password/",
            subject="Reset your Cleack password",
            body=(
                "Someone asked to reset the password of your Cleack account.\n\n"
                "Choose a new password here:\n\n{link}\n\n"
                "This link works once and expires in one hour. "
                "If it was not you, ignore this message: your password stays as it is.\n"
            ),
        )
        await self.db.commit()

    async def check_reset_token(self, token: str) -> None:
        refusal = await self._refusal(hash_token(token), "password_reset")
        if refusal is not None:
            raise refusal

    async def reset_password(self, token: str, new_password: str, client: Client) -> User:
        try:
            row = await self._consume_token(token, "password_reset")
        except TokenRefused as refused:
            await self.db.rollback()
            raise refused
        user = await self.db.get_one(User, row.user_id)
        await self.db.execute(
            sa.update(User).where(User.id == user.id).values(password_hash=await hash_password(new_password))
        )
        # Every other outstanding reset link dies with this one, and so does every session.
        await self.db.execute(
            sa.update(VerificationToken)
            .where(
                VerificationToken.user_id == user.id,
                VerificationToken.purpose == "password_reset",
                VerificationToken.used_at.is_(None),
            )
            .values(used_at=sa.func.now())
        )
        await self.revoke_other_sessions(user.id, keep=None)
        await self.record_activity(user.id, "password_reset", client)
        await self.db.commit()
        return user

    async def update_profile(self, user: CurrentUser, full_name: str | None) -> None:
        await self.db.execute(sa.update(User).where(User.id == user.id).values(full_name=full_name or None))
        await self.db.commit()

    # Administration from the command line and the demo data

    async def create_verified(
        self, email: str, password: str, *, role: str = "user", full_name: str | None = None
    ) -> User:
        user = await self.by_email(email)
        if user is None:
            user = User(email=email, password_hash=await hash_password(password), full_name=full_name)
            self.db.add(user)
        else:
            await self.db.execute(
                sa.update(User).where(User.id == user.id).values(password_hash=await hash_password(password))
            )
        user.role = role
        user.email_verified = True
        user.email_verified_at = user.email_verified_at or utcnow()
        await self.db.commit()
        await CreditsService(self.db).grant_welcome_bonus(user.id)
        return user
