"""The credits ledger: the only code that moves credits.

Every movement is one row with its signed amount and the balance after it. The balance itself
lives on `users.credit_balance`, changed by a single conditional UPDATE in the same transaction,
so concurrent debits serialize on the user's row and can never overdraw; the unique idempotency
key makes a retried grant, debit or refund a no-op that returns the first row.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession
from uuid_utils.compat import uuid7

from web.accounts.models import User
from web.credits.models import Credit
from web.pagination import Page

WELCOME_BONUS = 3


class InsufficientCredits(Exception):
    def __init__(self, balance: int, needed: int) -> None:
        super().__init__(f"balance {balance} is less than {needed}")
        self.balance = balance
        self.needed = needed


class _AlreadyRecorded(Exception):
    """Another transaction recorded this idempotency key first."""


@dataclass(frozen=True)
class LedgerEntry:
    row: Credit
    created: bool


class CreditsService:
    def __init__(self, db: AsyncSession) -> None:
        self.db = db

    async def balance(self, user_id: uuid.UUID) -> int:
        value = await self.db.scalar(sa.select(User.credit_balance).where(User.id == user_id))
        if value is None:
            raise LookupError("no such user")
        return int(value)

    async def grant(
        self,
        user_id: uuid.UUID,
        amount: int,
        *,
        transaction_type: str,
        idempotency_key: str,
        description: str = "",
        metadata: dict[str, Any] | None = None,
    ) -> LedgerEntry:
        if amount <= 0:
            raise ValueError("a grant is a positive amount")
        if transaction_type == "usage":
            raise ValueError("usage is a debit")
        return await self._record(user_id, amount, transaction_type, idempotency_key, description, metadata)

    async def grant_welcome_bonus(self, user_id: uuid.UUID) -> LedgerEntry:
        return await self.grant(
            user_id,
            WELCOME_BONUS,
            transaction_type="bonus",
            idempotency_key=f"welcome-bonus:{user_id}",
            description="Welcome bonus",
        )

    async def debit(
        self,
        user_id: uuid.UUID,
        amount: int,
        *,
        idempotency_key: str,
        description: str = "",
        metadata: dict[str, Any] | None = None,
    ) -> LedgerEntry:
        if amount <= 0:
            raise ValueError("a debit is a positive amount")
        return await self._record(user_id, -amount, "usage", idempotency_key, description, metadata)

    async def refund(
        self, user_id: uuid.UUID, amount: int, *, idempotency_key: str, description: str = ""
    ) -> LedgerEntry:
        """Credits given back, for a draw that failed or was cancelled."""
        return await self.grant(
            user_id, amount, transaction_type="refund", idempotency_key=idempotency_key, description=description
        )

    async def ledger(self, user_id: uuid.UUID, *, page: int = 1, per_page: int = 20) -> Page:
        page = max(1, page)
        total = await self.db.scalar(sa.select(sa.func.count()).select_from(Credit).where(Credit.user_id == user_id))
        rows = await self.db.scalars(
            sa.select(Credit)
            .where(Credit.user_id == user_id)
            .order_by(Credit.created_at.desc(), Credit.id.desc())
            .limit(per_page)
            .offset((page - 1) * per_page)
        )
        return Page(list(rows), page, per_page, int(total or 0))

    async def _existing(self, idempotency_key: str) -> Credit | None:
        return await self.db.scalar(sa.select(Credit).where(Credit.idempotency_key == idempotency_key))

    async def _record(
        self,
        user_id: uuid.UUID,
        amount: int,
        transaction_type: str,
        idempotency_key: str,
        description: str,
        metadata: dict[str, Any] | None,
    ) -> LedgerEntry:
        existing = await self._existing(idempotency_key)
        if existing is not None:
            return LedgerEntry(existing, created=False)
        try:
            async with self.db.begin_nested():
                new_balance = await self.db.scalar(
                    sa.update(User)
                    .where(User.id == user_id, User.credit_balance + amount >= 0)
                    .values(credit_balance=User.credit_balance + amount)
                    .returning(User.credit_balance)
                )
                if new_balance is None:
                    raise InsufficientCredits(await self.balance(user_id), -amount)
                row = await self.db.scalar(
                    pg_insert(Credit)
                    .values(
                        {
                            Credit.id: uuid7(),
                            Credit.user_id: user_id,
                            Credit.amount: amount,
                            Credit.balance: new_balance,
                            Credit.transaction_type: transaction_type,
                            Credit.description: description[:200],
                            Credit.metadata_: metadata or {},
                            Credit.idempotency_key: idempotency_key,
                        }
                    )
                    .on_conflict_do_nothing(index_elements=["idempotency_key"])
                    .returning(Credit)
                )
                if row is None:
                    raise _AlreadyRecorded
        except _AlreadyRecorded:
            first = await self._existing(idempotency_key)
            await self.db.commit()
            assert first is not None
            return LedgerEntry(first, created=False)
        except InsufficientCredits:
            await self.db.rollback()
            # A concurrent retry of this very movement may be what emptied the balance.
            first = await self._existing(idempotency_key)
            if first is not None:
                return LedgerEntry(first, created=False)
            raise
        await self.db.commit()
        return LedgerEntry(row, created=True)
