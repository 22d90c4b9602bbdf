"""Migrations: up from empty, down to nothing, and the models agree with the migrated schema."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.pool import NullPool

from web.db import connect, downgrade, to_sqlalchemy_url, upgrade
from web.models import metadata


def _tables(url: str) -> set[str]:
    async def read() -> set[str]:
        async with connect(url) as conn:
            rows = await conn.fetch("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
            return {row["tablename"] for row in rows}

    return asyncio.run(read())


def _differences(url: str) -> list[object]:
    async def compare() -> list[object]:
        engine = create_async_engine(to_sqlalchemy_url(url), poolclass=NullPool)
        async with engine.connect() as connection:
            diff = await connection.run_sync(
                lambda sync: compare_metadata(MigrationContext.configure(sync, opts={"compare_type": True}), metadata)
            )
        await engine.dispose()
        return list(diff)

    return asyncio.run(compare())


def test_migrations_run_up_from_empty_and_back_down(scratch_url: str) -> None:
    upgrade(scratch_url)
    created = _tables(scratch_url)
    assert {table.name for table in metadata.sorted_tables} | {"alembic_version"} == created

    downgrade(scratch_url, "base")
    assert _tables(scratch_url) == {"alembic_version"}

    upgrade(scratch_url)
    assert _tables(scratch_url) == created


def test_the_models_and_the_migrated_schema_agree(scratch_url: str) -> None:
    upgrade(scratch_url)
    assert _differences(scratch_url) == []


def test_the_schema_has_the_seed_indexes_and_constraints(scratch_url: str) -> None:
    upgrade(scratch_url)

    async def inspect() -> tuple[set[str], set[str]]:
        async with connect(scratch_url) as conn:
            indexes = {row["indexname"] for row in await conn.fetch("SELECT indexname FROM pg_indexes")}
            checks = {
                row["conname"] for row in await conn.fetch("SELECT conname FROM pg_constraint WHERE contype = 'c'")
            }
            return indexes, checks

    indexes, checks = asyncio.run(inspect())
    expected_indexes = {
        "uq_users_email_lower",
        "ix_users_created_at",
        "ix_users_email_verified",
        "ix_credits_user_id",
        "ix_credits_created_at",
        "ix_credits_transaction_type",
        "ix_draws_user_id",
        "ix_draws_status",
        "ix_draws_platform",
        "ix_draws_created_at",
        "ix_draws_executed_at",
        "ix_social_accounts_user_id",
        "ix_social_accounts_platform",
        "ix_social_accounts_platform_user_id",
        "uq_social_accounts_user_platform",
        "uq_blacklist_user_username_platform",
        "ix_draw_history_draw_id",
        "ix_draw_history_user_id",
        "ix_draw_history_created_at",
        "ix_draw_history_action",
        "ix_subscriptions_user_id",
        "ix_subscriptions_status",
        "ix_subscriptions_end_date",
        "uq_subscriptions_stripe_subscription_id",
        "uq_subscriptions_apple_subscription_id",
    }
    assert expected_indexes <= indexes
    assert {
        "ck_payments_positive_amount",
        "ck_payments_status_valid",
        "ck_draws_status_valid",
        "ck_subscriptions_status_valid",
        "ck_credits_transaction_type_valid",
        "ck_users_role_valid",
        "ck_announcements_content_length",
    } <= checks


async def test_deleting_a_user_deletes_what_they_own(engine: AsyncEngine, make_user: Any) -> None:
    user = await make_user()
    other = await make_user()

    async def add_draw(connection: AsyncConnection, owner: Any) -> None:
        draw = await connection.scalar(
            sa.text(
                "INSERT INTO draws (id, user_id, title, platform, status, created_at, updated_at) "
                "VALUES (gen_random_uuid(), :user, 'Giveaway', 'sandbox', 'pending', now(), now()) RETURNING id"
            ),
            {"user": owner},
        )
        for person in ("1", "2"):
            await connection.execute(
                sa.text(
                    "INSERT INTO draw_participants (id, draw_id, platform, platform_user_id, username, comment_id) "
                    "VALUES (gen_random_uuid(), :draw, 'sandbox', :person, 'someone', :comment)"
                ),
                {"draw": draw, "person": person, "comment": f"comment-{person}"},
            )
            await connection.execute(
                sa.text(
                    "INSERT INTO draw_engagements (draw_id, kind, source_index, platform_user_id) "
                    "VALUES (:draw, 'like', 0, :person)"
                ),
                {"draw": draw, "person": person},
            )

    async with engine.begin() as connection:
        await add_draw(connection, user.id)
        await add_draw(connection, user.id)
        await add_draw(connection, other.id)
        await connection.execute(sa.text("DELETE FROM users WHERE id = :user"), {"user": user.id})
        for table in ("credits", "user_activity", "sessions", "verification_tokens"):
            count = await connection.scalar(
                sa.text(f"SELECT count(*) FROM {table} WHERE user_id = :user"),  # noqa: S608
                {"user": user.id},
            )
            assert count == 0, table
        # The draws go with their owner, and their entries and engagements with them; the other creator's stay.
        remaining = await connection.execute(
            sa.text(
                "SELECT (SELECT count(*) FROM draws), (SELECT count(*) FROM draw_participants), "
                "(SELECT count(*) FROM draw_engagements), "
                "(SELECT count(*) FROM draw_participants p JOIN draws d ON d.id = p.draw_id WHERE d.user_id = :other)"
            ),
            {"other": other.id},
        )
        assert tuple(remaining.one()) == (1, 2, 2, 2)


async def test_the_database_refuses_an_unknown_status_and_a_non_positive_payment(
    engine: AsyncEngine, make_user: object
) -> None:
    user = await make_user()  # type: ignore[operator]
    bad_rows = (
        "INSERT INTO draws (id, user_id, title, platform, status, created_at, updated_at) "
        "VALUES (gen_random_uuid(), :user, 'x', 'sandbox', 'finished', now(), now())",
        "INSERT INTO payments (id, user_id, kind, status, amount, currency, external_reference, "
        "created_at, updated_at) "
        "VALUES (gen_random_uuid(), :user, 'credit_pack', 'succeeded', 0, 'usd', 'ref', now(), now())",
    )
    for statement in bad_rows:
        with pytest.raises(sa.exc.IntegrityError):
            async with engine.begin() as connection:
                await connection.execute(sa.text(statement), {"user": user.id})
