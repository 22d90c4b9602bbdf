"""Administration: finding users, acting on them, and the audit trail every action leaves."""

from __future__ import annotations

import datetime
import uuid
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from web.accounts.models import Session, User, UserActivity
from web.admin.models import AdminNote, AuditLog
from web.billing.models import Payment, Subscription
from web.credits.services import CreditsService, LedgerEntry
from web.draws.models import Draw
from web.pagination import Page
from web.social.models import SocialAccount

PER_PAGE = 25


class AdminActionRefused(Exception):
    """The action makes no sense on this user (banning oneself, another admin…)."""


@dataclass(frozen=True)
class UserStatistics:
    total_users: int
    active_today: int
    new_this_week: int


@dataclass(frozen=True)
class UserDetail:
    user: User
    sessions: list[Session]
    social_accounts: list[SocialAccount]
    draws: list[Draw]
    ledger: list[Any]
    payments: list[Payment]
    activity: list[UserActivity]
    notes: list[tuple[AdminNote, str | None]]


@dataclass(frozen=True)
class Actor:
    """The administrator acting, and from where; no id for the command line."""

    id: uuid.UUID | None
    ip: str | None


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


class AdminService:
    def __init__(self, db: AsyncSession) -> None:
        self.db = db

    # Reading

    async def users(self, query: str = "", page: int = 1, flagged_only: bool = False) -> Page:
        statement = sa.select(User)
        if query:
            pattern = f"%{_escape_like(query.lower())}%"
            statement = statement.where(
                sa.or_(
                    sa.func.lower(User.email).like(pattern, escape="\\"),
                    sa.func.lower(sa.func.coalesce(User.full_name, "")).like(pattern, escape="\\"),
                )
            )
        if flagged_only:
            flagged = sa.select(AdminNote.user_id).where(AdminNote.is_flagged.is_(True))
            statement = statement.where(User.id.in_(flagged))
        total = await self.db.scalar(sa.select(sa.func.count()).select_from(statement.subquery()))
        rows = await self.db.scalars(
            statement.order_by(User.created_at.desc(), User.id.desc()).limit(PER_PAGE).offset((page - 1) * PER_PAGE)
        )
        return Page(list(rows), page, PER_PAGE, int(total or 0))

    async def statistics(self) -> UserStatistics:
        now = datetime.datetime.now(datetime.UTC)
        today = now.replace(hour=0, minute=0, second=0, microsecond=0)
        row = (
            await self.db.execute(
                sa.select(
                    sa.func.count(),
                    sa.func.count().filter(User.last_login_at >= today),
                    sa.func.count().filter(User.created_at >= now - datetime.timedelta(days=7)),
                ).select_from(User)
            )
        ).one()
        return UserStatistics(int(row[0]), int(row[1]), int(row[2]))

    async def user_detail(self, user_id: uuid.UUID) -> UserDetail | None:
        user = await self.db.get(User, user_id)
        if user is None:
            return None

        async def latest(model: Any, order: Any, limit: int = 20) -> list[Any]:
            result = await self.db.scalars(
                sa.select(model).where(model.user_id == user_id).order_by(order.desc()).limit(limit)
            )
            return list(result)

        ledger = await CreditsService(self.db).ledger(user_id, per_page=20)
        notes = await self.db.execute(
            sa.select(AdminNote, User.email)
            .outerjoin(User, User.id == AdminNote.admin_id)
            .where(AdminNote.user_id == user_id)
            .order_by(AdminNote.created_at.desc())
        )
        return UserDetail(
            user=user,
            sessions=await latest(Session, Session.last_seen_at),
            social_accounts=await latest(SocialAccount, SocialAccount.created_at),
            draws=await latest(Draw, Draw.created_at),
            ledger=ledger.rows,
            payments=await latest(Payment, Payment.created_at),
            activity=await latest(UserActivity, UserActivity.created_at, limit=50),
            notes=[(note, email) for note, email in notes.all()],
        )

    async def audit_log(self, *, page: int = 1, action: str = "", admin_email: str = "", user_email: str = "") -> Page:
        admin = sa.orm.aliased(User)
        subject = sa.orm.aliased(User)
        statement = (
            sa.select(AuditLog, admin.email, subject.email)
            .outerjoin(admin, admin.id == AuditLog.admin_id)
            .outerjoin(subject, subject.id == AuditLog.user_id)
        )
        if action:
            statement = statement.where(AuditLog.action == action)
        if admin_email:
            statement = statement.where(sa.func.lower(admin.email) == admin_email.lower())
        if user_email:
            statement = statement.where(sa.func.lower(subject.email) == user_email.lower())
        total = await self.db.scalar(sa.select(sa.func.count()).select_from(statement.subquery()))
        rows = await self.db.execute(
            statement.order_by(AuditLog.created_at.desc(), AuditLog.id.desc())
            .limit(PER_PAGE)
            .offset((page - 1) * PER_PAGE)
        )
        return Page([tuple(row) for row in rows.all()], page, PER_PAGE, int(total or 0))

    async def audit_actions(self) -> list[str]:
        return list(await self.db.scalars(sa.select(AuditLog.action).distinct().order_by(AuditLog.action)))

    # Acting: each action writes its audit row in the same transaction as the change.

    async def record(self, actor: Actor, action: str, user_id: uuid.UUID | None, **details: Any) -> None:
        self.db.add(
            AuditLog(admin_id=actor.id, user_id=user_id, action=action, details=details or None, ip_address=actor.ip)
        )

    async def record_and_commit(self, actor: Actor, action: str, user_id: uuid.UUID | None, **details: Any) -> None:
        await self.record(actor, action, user_id, **details)
        await self.db.commit()

    async def _target(self, user_id: uuid.UUID) -> User:
        user = await self.db.get(User, user_id, with_for_update=True)
        if user is None:
            raise LookupError("no such user")
        return user

    async def ban(self, actor: Actor, user_id: uuid.UUID, reason: str) -> None:
        user = await self._target(user_id)
        if user.id == actor.id:
            raise AdminActionRefused("You cannot ban yourself.")
        if user.role == "admin":
            raise AdminActionRefused("An administrator cannot be banned; remove the role first.")
        if user.role == "banned":
            raise AdminActionRefused("This user is already banned.")
        previous = user.role
        user.role = "banned"
        # The ban takes effect at once: every open session ends with it.
        ended = await self.db.execute(sa.delete(Session).where(Session.user_id == user.id))
        await self.record(
            actor,
            "user_banned",
            user.id,
            reason=reason,
            previous_role=previous,
            sessions_ended=ended.rowcount,  # type: ignore[attr-defined]
        )
        await self.db.commit()

    async def unban(self, actor: Actor, user_id: uuid.UUID, reason: str) -> None:
        user = await self._target(user_id)
        if user.role != "banned":
            raise AdminActionRefused("This user is not banned.")
        active = await self.db.scalar(
            sa.select(sa.func.count())
            .select_from(Subscription)
            .where(Subscription.user_id == user.id, Subscription.status == "active")
        )
        user.role = "premium" if active else "user"
        await self.record(actor, "user_unbanned", user.id, reason=reason, role=user.role)
        await self.db.commit()

    async def grant_credits(
        self, actor: Actor, user_id: uuid.UUID, amount: int, reason: str, request_key: str
    ) -> LedgerEntry:
        """Bonus credits through the ledger; `request_key` makes a resubmitted form grant once."""
        # Locking the user first makes a concurrent resubmission wait, then find the ledger row and roll back its
        # audit row; without it, both pass the ledger's first check and the loser's audit row is committed.
        await self._target(user_id)
        await self.record(actor, "credits_granted", user_id, amount=amount, reason=reason, request=request_key)
        entry = await CreditsService(self.db).grant(
            user_id,
            amount,
            transaction_type="bonus",
            idempotency_key=f"admin-grant:{request_key}",
            description=reason[:200] or "Bonus from the Cleack team",
            metadata={"granted_by": str(actor.id)},
        )
        if not entry.created:
            # A resubmission: the ledger refused it, so the audit row added above goes too.
            await self.db.rollback()
        return entry

    async def add_note(self, actor: Actor, user_id: uuid.UUID, text: str, flagged: bool) -> AdminNote:
        if await self.db.get(User, user_id) is None:
            raise LookupError("no such user")
        note = AdminNote(user_id=user_id, admin_id=actor.id, note=text, is_flagged=flagged)
        self.db.add(note)
        await self.db.flush()
        await self.record(actor, "note_added", user_id, note_id=str(note.id), flagged=flagged)
        await self.db.commit()
        return note

    async def set_note_flag(self, actor: Actor, note_id: uuid.UUID, flagged: bool) -> AdminNote:
        note = await self.db.get(AdminNote, note_id, with_for_update=True)
        if note is None:
            raise LookupError("no such note")
        note.is_flagged = flagged
        await self.record(actor, "note_flagged" if flagged else "note_unflagged", note.user_id, note_id=str(note.id))
        await self.db.commit()
        return note
