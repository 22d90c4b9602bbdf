"""Running one claimed draw: fetch its entries, apply its rules, draw the winners, certify.

Every write of a run happens in a transaction that first checks the worker still holds the
draw's lease and the draw is still processing: a worker that lost its lease, or a draw
cancelled meanwhile, writes nothing more. A worker taking the draw over continues from the
saved state (web.draws.fetching). The rules run as one SQL statement (web.draws.rules); the
winners come from streaming the eligible entries in canonical order through the Merkle builder
(web.draws.selection). Python never holds all the entries.
"""

from __future__ import annotations

import datetime
import json
import logging
import time
from typing import Any

import httpx
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from web.certificates.keys import current_signing_key, server_keys
from web.certificates.log import append_record, draw_record, lock_log, with_log_entry
from web.certificates.models import LogRecord
from web.credits.services import CreditsService
from web.db import connect
from web.draws.fetching import EntryFetcher, follow_scopes
from web.draws.history import record_history
from web.draws.lease import (
    LEASE_HELD,
    PROGRESS_CHANNEL,
    DrawFailed,
    Lease,
    Progress,
    RunStopped,
    RunYielded,
    expected_entries,
    new_progress,
    utcnow,
)
from web.draws.models import Draw
from web.draws.rules import Verdicts, has_list, settle_verdicts
from web.draws.sealing import Outcome, Sealing
from web.draws.selection import SORT_MEMORY, SealedEntries, one_platform
from web.draws.services import DrawService, certified_newest_first, draw_cost
from web.fairness.certificate_v2 import select_winners_v2
from web.settings import Settings
from web.social.services import SocialService

log = logging.getLogger(__name__)

FILTER_PERCENT = 90
SELECT_PERCENT = 95
SAVE_VERDICTS = """
    UPDATE draws SET fetch_cursor = $2::jsonb, progress = $3::jsonb, participants_count = $4, eligible_count = $5
    WHERE id = $1
    RETURNING pg_notify('draw_progress', id::text)
"""


class DrawEngine:
    """Starts, runs, completes and fails draws; one per worker process, shared by its runners."""

    def __init__(
        self, session_maker: async_sessionmaker[AsyncSession], settings: Settings, http: httpx.AsyncClient, url: str
    ) -> None:
        self.session_maker = session_maker
        self.settings = settings
        self.http = http
        self.url = url
        # A worker that could not sign certificates refuses to start rather than fail every draw.
        server_keys(settings)

    async def start(self, db: AsyncSession, draw: Draw, lease: Lease) -> None:
        """In the claiming transaction: take the lease, debit the credits, `started`; all commit together.

        Raises InsufficientCredits (everything rolled back) when the creator cannot pay.
        """
        cost = draw_cost(expected_entries(draw.sources))
        draw.status = "processing"
        draw.lease_owner = lease.owner
        draw.lease_expires_at = sa.func.now() + datetime.timedelta(seconds=lease.seconds)
        draw.executed_at = utcnow()
        draw.credits_used = cost
        logged = (draw.progress or {}).get("log", [])
        draw.progress = {**new_progress(expected_entries(draw.sources) or None), "log": logged}
        draw.fetch_cursor = {"tasks": {}}
        if await draw_record(db, draw.id, "opened") is None:
            # A draw created before the public log existed is opened now, its blacklist frozen as it stands.
            draw.progress = with_log_entry(draw.progress, await DrawService(db).open(draw, self.settings))
        record_history(db, draw, "started", {"cost": cost, "worker": lease.owner})
        await db.execute(sa.select(sa.func.pg_notify(PROGRESS_CHANNEL, str(draw.id))))
        await CreditsService(db).debit(
            draw.user_id, cost, idempotency_key=f"draw:{draw.id}:debit", description=f"Draw: {draw.title}"[:200]
        )

    async def take_over(self, db: AsyncSession, draw: Draw, lease: Lease) -> None:
        """In the claiming transaction: a draw whose worker stopped renewing its lease continues here."""
        tasks = (draw.fetch_cursor or {}).get("tasks", {})
        record_history(
            db,
            draw,
            "retried",
            {
                "previous_worker": draw.lease_owner,
                "worker": lease.owner,
                "stage": (draw.progress or {}).get("stage"),
                "fetched": sum(state.get("fetched", 0) for key, state in tasks.items() if key.startswith("comments")),
            },
        )
        draw.lease_owner = lease.owner
        draw.lease_expires_at = sa.func.now() + datetime.timedelta(seconds=lease.seconds)
        await db.execute(sa.select(sa.func.pg_notify(PROGRESS_CHANNEL, str(draw.id))))
        await db.commit()

    async def run(self, lease: Lease) -> str:
        """Run the claimed draw to its end; the outcome: completed, failed, stopped or yielded."""
        async with self.session_maker() as db:
            draw = await db.get(Draw, lease.draw_id)
            await db.commit()
        if draw is None or draw.status != "processing" or draw.lease_owner != lease.owner:
            return "stopped"
        try:
            async with connect(self.url) as writer, self.session_maker() as social_db:
                await DrawRun(self, draw, lease, writer, social_db).execute()
        except DrawFailed as exc:
            await self.fail(lease, exc.message)
            return "failed"
        except RunStopped:
            log.info("draw stopped: cancelled or taken over", extra={"draw": str(lease.draw_id)})
            return "stopped"
        except RunYielded:
            return "yielded"
        return "completed"

    async def fail(self, lease: Lease, message: str) -> None:
        """Failed, with a message the creator can act on; the credits taken at the start go back once."""
        async with self.session_maker() as db:
            draw = await db.scalar(sa.select(Draw).where(Draw.id == lease.draw_id).with_for_update())
            if draw is None or draw.status != "processing" or draw.lease_owner != lease.owner:
                await db.commit()
                return
            stage = str((draw.progress or {}).get("stage") or "queued")
            draw.status = "failed"
            draw.error = message[:1000]
            draw.completed_at = utcnow()
            draw.lease_expires_at = None
            draw.progress = {**(draw.progress or {}), "stage": "done", "paused_until": None, "message": message}
            failed = await append_failed(db, self.settings, draw, stage, message)
            draw.progress = with_log_entry(draw.progress, failed)
            record_history(db, draw, "failed", {"error": message, "refunded": draw.credits_used, "log_seq": failed.seq})
            await db.execute(sa.select(sa.func.pg_notify(PROGRESS_CHANNEL, str(draw.id))))
            log.info("draw failed", extra={"draw": str(draw.id), "reason": message})
            if draw.credits_used > 0:
                await CreditsService(db).refund(
                    draw.user_id,
                    draw.credits_used,
                    idempotency_key=f"draw:{draw.id}:refund",
                    description=f"Draw failed: {draw.title}"[:200],
                )
            else:
                await db.commit()

    async def complete(self, lease: Lease, outcome: Outcome, timings: dict[str, float]) -> None:
        """Winners, certificate (chained to the previous one), its certified record, `completed`: one transaction
        under the lease."""
        async with self.session_maker() as db:
            current = await db.scalar(sa.select(Draw).where(Draw.id == lease.draw_id).with_for_update())
            if current is None or current.status != "processing" or current.lease_owner != lease.owner:
                await db.commit()
                raise RunStopped
            await lock_log(db)
            last = (await db.execute(certified_newest_first(Draw.certificate_hash, Draw.completed_at).limit(1))).first()
            previous = last.certificate_hash if last is not None else None
            # The chain's order is completed_at's: a worker whose clock lags must still come after the last link.
            now = utcnow()
            if last is not None and last.completed_at is not None and now <= last.completed_at:
                now = last.completed_at + datetime.timedelta(milliseconds=1)
            certifying = time.monotonic()
            assert current.executed_at is not None
            try:
                certificate = outcome.certificate(current, now, previous, current_signing_key(self.settings, now))
            except ValueError as exc:
                # The draw no longer matches what its records fixed (its rules, sources or entries were changed).
                raise DrawFailed(f"The certificate could not be issued: {exc}.") from exc
            certified = await append_record(
                db,
                self.settings,
                "certified",
                current.id,
                sealed=outcome.sealed.record_hash,
                certificate_hash=certificate["certificate_hash"],
            )
            timings = {**timings, "select": timings.get("select", 0.0) + time.monotonic() - certifying}
            current.status = "completed"
            current.completed_at = now
            current.lease_expires_at = None
            current.winners = [picked.record(position, now) for position, picked in enumerate(outcome.winners, 1)]
            current.alternates = [picked.record(position, now) for position, picked in enumerate(outcome.alternates, 1)]
            current.participants_count = outcome.verdicts.participants
            current.eligible_count = outcome.verdicts.eligible
            current.merkle_root = outcome.roots.merkle_root.hex()
            current.certificate = certificate
            current.certificate_hash = certificate["certificate_hash"]
            current.progress = {
                **with_log_entry(current.progress, certified),
                "stage": "done",
                "percent": 100,
                "paused_until": None,
                "message": None if outcome.verdicts.eligible else "No entry met the rules: there is no winner.",
            }
            record_history(
                db,
                current,
                "completed",
                {
                    "winners": len(outcome.winners),
                    "alternates": len(outcome.alternates),
                    "participants": outcome.verdicts.participants,
                    "eligible": outcome.verdicts.eligible,
                    "certificate_hash": certificate["certificate_hash"],
                    "log_seq": certified.seq,
                    "beacon_round": outcome.beacon.round,
                    "seconds": {stage: round(value, 3) for stage, value in timings.items()},
                },
            )
            await db.execute(sa.select(sa.func.pg_notify(PROGRESS_CHANNEL, str(current.id))))
            await db.commit()
        log.info(
            "draw completed",
            extra={"draw": str(lease.draw_id), "eligible": outcome.verdicts.eligible, "seconds": timings},
        )


async def append_failed(db: AsyncSession, settings: Settings, draw: Draw, stage: str, message: str) -> LogRecord:
    """The draw's failed record; a draw that never reached the log (created before it existed) is opened first."""
    if await draw_record(db, draw.id, "opened") is None:
        await DrawService(db).open(draw, settings)
    return await append_record(db, settings, "failed", draw.id, stage=stage, reason=message[:500])


class DrawRun:
    """One worker's pass over one draw, from wherever the draw stands to its end."""

    def __init__(self, engine: DrawEngine, draw: Draw, lease: Lease, writer: Any, social_db: AsyncSession) -> None:
        self.engine = engine
        self.draw = draw
        self.lease = lease
        self.writer = writer
        self.progress = Progress(draw, lease, engine.session_maker)
        social = SocialService(social_db, engine.settings, engine.http)
        self.fetcher = EntryFetcher(draw, lease, self.progress, writer, social, social_db)
        self.timings: dict[str, float] = {}

    async def execute(self) -> None:
        cursor = self.fetcher.cursor
        if cursor.get("phase") != "filtered":
            started = time.monotonic()
            await self.fetcher.fetch_everything()
            self.timings["fetch"] = time.monotonic() - started
            self.lease.check_shutdown()
            started = time.monotonic()
            verdicts = await self.filter()
            self.timings["filter"] = time.monotonic() - started
        else:
            verdicts = Verdicts(**cursor["verdicts"])
        self.lease.check_shutdown()
        started = time.monotonic()
        sealing = Sealing(self)
        await sealing.wait_for_a_witness()
        async with SealedEntries(self.writer, self.draw.id, one_platform=one_platform(self.draw.sources)) as entries:
            assert entries.roots is not None
            sealed = await sealing.seal(verdicts, entries.roots)
            self.timings["seal"] = time.monotonic() - started
            waited = time.monotonic()
            cosigned = await sealing.witness(sealed)
            log_proof = await sealing.log_proof(sealed, cosigned)
            chain, beacon = await sealing.randomness(sealed)
            self.timings["randomness"] = time.monotonic() - waited
            self.lease.check_shutdown()
            started = time.monotonic()
            selection = select_winners_v2(
                sealed_record_hash=bytes.fromhex(sealed.record_hash),
                randomness=bytes.fromhex(beacon.randomness),
                eligible=entries.roots.eligible,
                winners_count=self.draw.winners_count,
                alternates_count=self.draw.alternates_count,
            )
            winners = [await entries.pick(index) for index in selection.winner_indices]
            alternates = [await entries.pick(index) for index in selection.alternate_indices]
        self.timings["select"] = time.monotonic() - started
        outcome = Outcome(
            verdicts=verdicts,
            roots=entries.roots,
            opened=await self.opened_record(),
            sealed=sealed,
            log=log_proof,
            chain=chain,
            beacon=beacon,
            seed=selection.seed,
            winners=winners,
            alternates=alternates,
            salt_key=self.draw.secret or b"",
            settings=self.engine.settings,
        )
        await self.engine.complete(self.lease, outcome, self.timings)

    async def opened_record(self) -> LogRecord:
        async with self.engine.session_maker() as db:
            opened = await draw_record(db, self.draw.id, "opened")
            await db.commit()
        if opened is None:
            raise DrawFailed("The draw has no opened record in the public log.")
        return opened

    async def filter(self) -> Verdicts:
        """The rules over every entry, and the counts per reason, in one transaction under the lease."""
        self.progress.update(stage="filtering", percent=FILTER_PERCENT, paused_until=None, message=None)
        await self.progress.publish()
        cursor = self.fetcher.cursor
        async with self.writer.transaction():
            if await self.writer.fetchval(LEASE_HELD, self.draw.id, self.lease.owner) is None:
                raise RunStopped
            await self.writer.execute(f"SET LOCAL work_mem = '{SORT_MEMORY}'")
            verdicts = await settle_verdicts(
                self.writer,
                self.draw.id,
                self.draw.secret or b"",
                self.draw.config,
                follow_scopes(self.draw.sources),
                has_list=has_list(self.draw.sources),
            )
            cursor.update(
                phase="filtered",
                verdicts={
                    "participants": verdicts.participants,
                    "eligible": verdicts.eligible,
                    "excluded": verdicts.excluded,
                },
            )
            self.progress.update(
                stage="selecting",
                fetched=verdicts.participants,
                excluded=verdicts.excluded,
                eligible=verdicts.eligible,
                percent=SELECT_PERCENT,
            )
            await self.writer.execute(
                SAVE_VERDICTS,
                self.draw.id,
                json.dumps(cursor),
                json.dumps(self.progress.state),
                verdicts.participants,
                verdicts.eligible,
            )
        self.progress.mark_written()
        return verdicts
