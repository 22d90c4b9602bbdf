"""Workers sharing the draw queue: claims, leases, wake-ups, schedules, and takeover after a crash."""

from __future__ import annotations

import asyncio
import datetime
import os
import signal
import subprocess
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.conftest import ARTIFACTS, LiveServer
from tests.draws.sandbox_draws import (
    Engines,
    create_draw,
    create_post,
    engines,
    entry_counts,
    history_actions,
    load_draw,
    sandbox_creator,
    wait_for,
)
from web.credits.models import Credit
from web.credits.services import CreditsService
from web.db import session_factory
from web.draws.models import DrawHistory, DrawParticipant
from web.draws.rules import CANONICAL_ORDER
from web.fairness import MerkleBuilder
from web.fairness.certificate_v2 import select_winners_v2
from web.fairness.entries import Entry, derive_salt, leaf_v2

__all__ = ["engines", "sandbox_creator"]  # fixtures used below

PROJECT = Path(__file__).resolve().parents[2]
CONFIG: dict[str, Any] = {
    "filters": {"min_followers": 0, "exclude_suspicious": True, "exclude_businesses": False},
    "rules": {
        "require_like": True,
        "require_comment": True,
        "require_follow": False,
        "comment_keywords": [],
        "min_mentions": 0,
        "one_entry_per_user": True,
    },
    "winners_count": 5,
    "alternates_count": 3,
}


@pytest.fixture
async def running() -> AsyncIterator[Any]:
    """Start runners in the background; all of them are stopped (and awaited) when the test ends."""
    stop = asyncio.Event()
    tasks: list[asyncio.Task[None]] = []

    def start(runner: Any) -> None:
        tasks.append(asyncio.create_task(runner.run(stop)))

    yield start
    stop.set()
    await asyncio.gather(*tasks)


async def status_of(engine: AsyncEngine, draw_id: uuid.UUID) -> str:
    return (await load_draw(engine, draw_id)).status


async def test_two_runners_racing_never_take_the_same_draw(
    engines: Engines, sandbox_creator: Any, engine: AsyncEngine, live_server: LiveServer, running: Any
) -> None:
    creator = await sandbox_creator()
    post = await create_post(engine, live_server, creator, 1_500)
    draw_id = await create_draw(engine, creator, [post])
    first, second = engines.runner("worker-a"), engines.runner("worker-b")

    leases = await asyncio.gather(first.claim(), second.claim())

    assert sum(lease is not None for lease in leases) == 1
    [lease] = [lease for lease in leases if lease is not None]
    await (first if lease.owner == "worker-a" else second).run_claimed(lease)
    assert await status_of(engine, draw_id) == "completed"

    async with session_factory(engine)() as db:
        await CreditsService(db).grant(creator.user.id, 10, transaction_type="bonus", idempotency_key="test:racing")
    draws = [await create_draw(engine, creator, [post]) for _ in range(4)]
    running(first)
    running(second)

    async def all_done() -> bool:
        return all([await status_of(engine, draw) == "completed" for draw in draws])

    await wait_for(all_done)
    async with session_factory(engine)() as db:
        owners = {(await load_draw(engine, draw)).lease_owner for draw in draws}
        debits = await db.scalar(
            sa.select(sa.func.count()).select_from(Credit).where(Credit.idempotency_key.like("draw:%:debit"))
        )
    assert owners <= {"worker-a", "worker-b"}
    assert debits == 5
    for draw in draws:
        assert await history_actions(engine, draw) == ["started", "sealed", "completed"]
        assert await entry_counts(engine, draw) == (1_500, 1_500)


async def test_an_idle_runner_wakes_when_a_draw_is_queued(
    engines: Engines, sandbox_creator: Any, engine: AsyncEngine, live_server: LiveServer, running: Any
) -> None:
    creator = await sandbox_creator()
    post = await create_post(engine, live_server, creator, 300)
    running(engines.runner(poll_seconds=60))
    await asyncio.sleep(0.5)

    queued_at = asyncio.get_running_loop().time()
    draw_id = await create_draw(engine, creator, [post])

    async def completed() -> bool:
        return await status_of(engine, draw_id) == "completed"

    await wait_for(completed, within=10)
    assert asyncio.get_running_loop().time() - queued_at < 10


async def test_a_scheduled_draw_starts_on_time_and_not_before(
    engines: Engines, sandbox_creator: Any, engine: AsyncEngine, live_server: LiveServer, running: Any
) -> None:
    creator = await sandbox_creator()
    post = await create_post(engine, live_server, creator, 300)
    due = datetime.datetime.now(datetime.UTC) + datetime.timedelta(seconds=3)
    draw_id = await create_draw(engine, creator, [post], scheduled_at=due)
    running(engines.runner(poll_seconds=60))

    await asyncio.sleep(2)
    assert await status_of(engine, draw_id) == "pending"

    async def completed() -> bool:
        return await status_of(engine, draw_id) == "completed"

    await wait_for(completed, within=10)
    draw = await load_draw(engine, draw_id)
    assert draw.executed_at is not None
    assert due <= draw.executed_at < due + datetime.timedelta(seconds=2)


async def test_a_runner_that_lost_its_lease_stops_without_writing(
    engines: Engines, sandbox_creator: Any, engine: AsyncEngine, live_server: LiveServer
) -> None:
    creator = await sandbox_creator()
    post = await create_post(engine, live_server, creator, 20_000, slow_ms=100)
    draw_id = await create_draw(engine, creator, [post])
    runner = engines.runner(lease_seconds=1.5)
    lease = await runner.claim()
    assert lease is not None
    run = asyncio.create_task(runner.run_claimed(lease))

    async def some_stored() -> bool:
        return (await entry_counts(engine, draw_id))[0] >= 2_000

    await wait_for(some_stored)
    async with session_factory(engine)() as db:
        await db.execute(sa.text("UPDATE draws SET lease_owner = 'another-worker' WHERE id = :id"), {"id": draw_id})
        await db.commit()
    stored = await entry_counts(engine, draw_id)

    assert await asyncio.wait_for(run, timeout=10) in ("stopped", "lost")
    await asyncio.sleep(1)
    assert await entry_counts(engine, draw_id) == stored
    assert (await load_draw(engine, draw_id)).status == "processing"


# A real worker process, killed


@pytest.fixture
def worker_processes(database_url: str, live_server: LiveServer) -> Iterator[Any]:
    """`cleack worker` processes against the test database and the live server's sandbox, with a short lease."""
    started: list[subprocess.Popen[bytes]] = []
    ARTIFACTS.mkdir(exist_ok=True)
    env = {
        **os.environ,
        "CLEACK_ENV": "test",
        "DATABASE_URL": database_url,
        "SECRET_KEY": live_server.settings.secret_key,
        "BASE_URL": live_server.url,
        "SANDBOX_API_URL": live_server.url,
        "WITNESSES": ",".join(live_server.settings.witnesses),
        "SANDBOX_BEACON_PERIOD": str(live_server.settings.sandbox_beacon_period),
        "BEACON_MARGIN_SECONDS": str(live_server.settings.beacon_margin_seconds),
        "CLEACK_DRAW_LEASE_SECONDS": "2",
        "CLEACK_DRAW_POLL_SECONDS": "0.5",
        "LOG_LEVEL": "INFO",
    }

    def start(name: str) -> subprocess.Popen[bytes]:
        log = (ARTIFACTS / f"worker-{name}.log").open("wb")
        process = subprocess.Popen(
            [str(PROJECT / ".venv/bin/cleack"), "worker"], cwd=PROJECT, env=env, stdout=log, stderr=subprocess.STDOUT
        )
        started.append(process)
        return process

    yield start
    for process in started:
        if process.poll() is None:
            process.kill()
        process.wait(timeout=10)


async def eligible_in_canonical_order(engine: AsyncEngine, draw_id: uuid.UUID) -> list[tuple[str, str, str, str]]:
    async with session_factory(engine)() as db:
        rows = await db.execute(
            sa.select(
                DrawParticipant.platform,
                DrawParticipant.platform_user_id,
                DrawParticipant.username,
                DrawParticipant.comment_id,
            )
            .where(DrawParticipant.draw_id == draw_id, DrawParticipant.is_eligible.is_(True))
            .order_by(sa.text(CANONICAL_ORDER))
        )
        return [tuple(row) for row in rows]  # type: ignore[misc]


async def test_a_killed_worker_process_is_taken_over_and_the_winners_are_the_same(
    engines: Engines, sandbox_creator: Any, engine: AsyncEngine, live_server: LiveServer, worker_processes: Any
) -> None:
    creator = await sandbox_creator()
    post = await create_post(engine, live_server, creator, 30_000, slow_ms=100)
    draw_id = await create_draw(engine, creator, [post], CONFIG)
    first = worker_processes("first")

    async def fetching_under_way() -> bool:
        return (await entry_counts(engine, draw_id))[0] >= 5_000

    await wait_for(fetching_under_way, within=60)
    first.send_signal(signal.SIGKILL)
    first.wait(timeout=10)
    stored_by_the_first = (await entry_counts(engine, draw_id))[0]
    assert stored_by_the_first < 30_000
    second = worker_processes("second")

    async def completed() -> bool:
        return await status_of(engine, draw_id) in ("completed", "failed")

    await wait_for(completed, within=120)
    second.send_signal(signal.SIGTERM)
    assert await asyncio.to_thread(second.wait, 15) == 0
    draw = await load_draw(engine, draw_id)
    assert draw.status == "completed", draw.error
    assert await history_actions(engine, draw_id) == ["started", "retried", "sealed", "completed"]
    async with session_factory(engine)() as db:
        retried = await db.scalar(
            sa.select(DrawHistory.details).where(DrawHistory.draw_id == draw_id, DrawHistory.action == "retried")
        )
        debits = await db.scalar(
            sa.select(sa.func.count()).select_from(Credit).where(Credit.idempotency_key == f"draw:{draw_id}:debit")
        )
    assert retried is not None and retried["fetched"] >= stored_by_the_first - 1_000
    assert debits == 1
    assert await entry_counts(engine, draw_id) == (30_000, 30_000)

    # The winners are those the published algorithm picks from the sealed entries and the public round.
    eligible = await eligible_in_canonical_order(engine, draw_id)
    assert draw.certificate is not None and draw.secret is not None and len(eligible) == draw.eligible_count
    builder = MerkleBuilder()
    builder.add_leaf_hashes(leaf_v2(Entry(*row), derive_salt(draw.secret, Entry(*row))) for row in eligible)
    assert builder.root().hex() == draw.certificate["sealed"]["merkle_root"]
    selection = select_winners_v2(
        sealed_record_hash=bytes.fromhex(draw.certificate["sealed"]["record_hash"]),
        randomness=bytes.fromhex(draw.certificate["beacon"]["randomness"]),
        eligible=len(eligible),
        winners_count=5,
        alternates_count=3,
    )
    assert [winner["entry_id"] for winner in draw.winners] == [eligible[i][3] for i in selection.winner_indices]
    assert [alternate["entry_id"] for alternate in draw.alternates] == [
        eligible[i][3] for i in selection.alternate_indices
    ]

    # An identical draw of the same post, run without interruption, gathers and keeps the very same entries.
    async with session_factory(engine)() as db:
        await CreditsService(db).grant(creator.user.id, 5, transaction_type="bonus", idempotency_key="test:reference")
    reference_id = await create_draw(engine, creator, [post], CONFIG)
    assert await engines.runner().run_next(asyncio.Event())
    assert (await load_draw(engine, reference_id)).status == "completed"
    reference = await eligible_in_canonical_order(engine, reference_id)
    assert reference == eligible


async def test_a_worker_stopped_with_sigterm_gives_the_draw_back_at_once(
    engines: Engines, sandbox_creator: Any, engine: AsyncEngine, live_server: LiveServer, worker_processes: Any
) -> None:
    creator = await sandbox_creator()
    post = await create_post(engine, live_server, creator, 30_000, slow_ms=100)
    draw_id = await create_draw(engine, creator, [post], CONFIG)
    worker = worker_processes("stopping")

    async def fetching_under_way() -> bool:
        return (await entry_counts(engine, draw_id))[0] >= 3_000

    await wait_for(fetching_under_way, within=60)
    worker.send_signal(signal.SIGTERM)
    assert await asyncio.to_thread(worker.wait, 15) == 0
    draw = await load_draw(engine, draw_id)
    assert draw.status == "processing"
    assert draw.lease_expires_at is not None and draw.lease_expires_at < datetime.datetime.now(datetime.UTC)

    assert await engines.runner().run_next(asyncio.Event())
    assert await status_of(engine, draw_id) == "completed"
    assert await history_actions(engine, draw_id) == ["started", "retried", "sealed", "completed"]
    async with session_factory(engine)() as db:
        stored = await db.scalar(
            sa.select(sa.func.count(sa.distinct(DrawParticipant.comment_id))).where(DrawParticipant.draw_id == draw_id)
        )
    assert stored == 30_000
