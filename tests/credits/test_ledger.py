"""The credits ledger on real PostgreSQL."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from web.credits.models import Credit
from web.credits.services import CreditsService, InsufficientCredits
from web.db import session_factory


async def _ledger(engine: AsyncEngine, user_id: Any) -> list[Credit]:
    async with session_factory(engine)() as session:
        rows = await session.scalars(sa.select(Credit).where(Credit.user_id == user_id).order_by(Credit.created_at))
        return list(rows)


async def test_fifty_concurrent_debits_never_overdraw_nor_lose_an_update(engine: AsyncEngine, make_user: Any) -> None:
    user = await make_user()  # 3 welcome credits
    async with session_factory(engine)() as session:
        await CreditsService(session).grant(user.id, 37, transaction_type="purchase", idempotency_key="pack-1")

    async def debit(number: int) -> str:
        async with session_factory(engine)() as session:
            try:
                await CreditsService(session).debit(user.id, 1, idempotency_key=f"draw-{number}")
            except InsufficientCredits:
                return "refused"
            return "debited"

    outcomes = await asyncio.gather(*(debit(number) for number in range(60)))

    assert outcomes.count("debited") == 40
    assert outcomes.count("refused") == 20
    async with session_factory(engine)() as session:
        assert await CreditsService(session).balance(user.id) == 0
    rows = await _ledger(engine, user.id)
    usage = [row for row in rows if row.transaction_type == "usage"]
    assert len(usage) == 40
    assert sorted(row.balance for row in usage) == list(range(40))
    assert sum(row.amount for row in rows) == 0


async def test_a_retried_debit_with_the_same_key_counts_once(engine: AsyncEngine, make_user: Any) -> None:
    user = await make_user()

    async def debit() -> Credit:
        async with session_factory(engine)() as session:
            entry = await CreditsService(session).debit(user.id, 2, idempotency_key="draw-42", description="Draw")
            return entry.row

    rows = await asyncio.gather(*(debit() for _ in range(10)))

    assert len({row.id for row in rows}) == 1
    async with session_factory(engine)() as session:
        assert await CreditsService(session).balance(user.id) == 1
    assert [row.amount for row in await _ledger(engine, user.id)] == [3, -2]


async def test_a_debit_larger_than_the_balance_is_refused_and_leaves_no_row(
    engine: AsyncEngine, make_user: Any
) -> None:
    user = await make_user()
    async with session_factory(engine)() as session:
        with pytest.raises(InsufficientCredits) as refused:
            await CreditsService(session).debit(user.id, 4, idempotency_key="draw-big")
        assert refused.value.balance == 3
        assert await CreditsService(session).balance(user.id) == 3
    assert len(await _ledger(engine, user.id)) == 1


async def test_each_row_keeps_the_balance_after_it(engine: AsyncEngine, make_user: Any) -> None:
    user = await make_user()
    async with session_factory(engine)() as session:
        service = CreditsService(session)
        await service.grant(user.id, 10, transaction_type="purchase", idempotency_key="pack")
        await service.debit(user.id, 4, idempotency_key="draw-a")
        await service.refund(user.id, 4, idempotency_key="refund-a")
        await service.grant(user.id, 10, transaction_type="subscription", idempotency_key="month-1")
    rows = await _ledger(engine, user.id)
    assert [(row.transaction_type, row.amount, row.balance) for row in rows] == [
        ("bonus", 3, 3),
        ("purchase", 10, 13),
        ("usage", -4, 9),
        ("refund", 4, 13),
        ("subscription", 10, 23),
    ]


async def test_the_database_itself_refuses_a_negative_balance(engine: AsyncEngine, make_user: Any) -> None:
    user = await make_user()
    async with session_factory(engine)() as session:
        with pytest.raises(sa.exc.IntegrityError):
            await session.execute(sa.text("UPDATE users SET credit_balance = -1 WHERE id = :id"), {"id": user.id})


async def test_credits_page_shows_the_balance_and_a_paginated_ledger(engine: AsyncEngine, logged_in: Any) -> None:
    client, user = await logged_in()
    async with session_factory(engine)() as session:
        for number in range(25):
            await CreditsService(session).grant(
                user.id, 1, transaction_type="bonus", idempotency_key=f"promo-{number}", description=f"Promo {number}"
            )

    first = await client.get("/credits")
    assert first.status_code == 200
    assert 'data-testid="balance">28<' in first.text
    assert "Promo 24" in first.text and "Welcome bonus" not in first.text
    assert "Page 1 of 2" in first.text

    second = await client.get("/credits?page=2")
    assert "Welcome bonus" in second.text and "Promo 24" not in second.text

    fragment = await client.get("/credits?page=2", headers={"HX-Request": "true"})
    assert fragment.text.lstrip().startswith('<section id="ledger"')
    assert "<html" not in fragment.text


async def test_credits_page_ignores_a_nonsense_page_number(logged_in: Any) -> None:
    client, _ = await logged_in()
    for page in ("abc", "-5", "99999999999999999999", "1e9"):
        response = await client.get("/credits", params={"page": page})
        assert response.status_code == 200
