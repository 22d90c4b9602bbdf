"""The public log as this server keeps it: appending signed records, reading them back, counting runs.

Records are appended one at a time under a transaction-scoped advisory lock, so the log stays linear: each
record's `seq` follows the last one and its head folds the last head (docs/fairness.md, the log). The table
refuses updates and deletes (migration 0008); one record of each kind per draw is a unique constraint.
"""

from __future__ import annotations

import datetime
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from web.certificates.keys import current_signing_key
from web.certificates.models import LogRecord
from web.fairness.log import FINAL_KINDS, ZERO_HEAD, build_record, next_head
from web.settings import Settings

# Serialises appending to the log, and issuing certificates (each names the one issued before it).
LOG_LOCK = 0x436C6561636B


def utcnow() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


async def lock_log(db: AsyncSession) -> None:
    """Held until the caller's transaction ends."""
    await db.execute(sa.select(sa.func.pg_advisory_xact_lock(LOG_LOCK)))


async def append_record(
    db: AsyncSession, settings: Settings, kind: str, draw_id: uuid.UUID, *, subjects: Sequence[str] = (), **members: Any
) -> LogRecord:
    """Sign and append one record in the caller's transaction (which commits it); IntegrityError when the draw
    already has a record of that kind."""
    await lock_log(db)
    last = (await db.execute(sa.select(LogRecord.seq, LogRecord.head).order_by(LogRecord.seq.desc()).limit(1))).first()
    seq = last.seq + 1 if last is not None else 1
    head = bytes.fromhex(last.head) if last is not None else ZERO_HEAD
    at = utcnow()
    record = build_record(
        kind,
        origin=settings.log_name,
        seq=seq,
        draw_id=draw_id,
        at=at,
        signing_key=current_signing_key(settings, at),
        **({"subjects": list(subjects)} if kind == "opened" else {}),
        **members,
    )
    row = LogRecord(
        seq=seq,
        kind=kind,
        draw_id=draw_id,
        record=record,
        record_hash=record["record_hash"],
        head=next_head(head, bytes.fromhex(record["record_hash"])).hex(),
        subjects=list(subjects),
    )
    db.add(row)
    await db.flush()
    return row


def log_entry(row: LogRecord) -> dict[str, Any]:
    """A record as the draw's live pages list it (kept in the draw's progress, which both pages render)."""
    entry = {"seq": row.seq, "kind": row.kind, "at": row.record["at"], "record_hash": row.record_hash}
    if row.kind == "sealed":
        entry["round"] = row.record["beacon"]["round"]
    return entry


def with_log_entry(progress: dict[str, Any] | None, row: LogRecord) -> dict[str, Any]:
    progress = dict(progress or {})
    progress["log"] = [*progress.get("log", []), log_entry(row)]
    return progress


async def draw_records(db: AsyncSession, draw_id: uuid.UUID) -> list[LogRecord]:
    """The draw's records, in log order."""
    return list(await db.scalars(sa.select(LogRecord).where(LogRecord.draw_id == draw_id).order_by(LogRecord.seq)))


async def draw_record(db: AsyncSession, draw_id: uuid.UUID, kind: str) -> LogRecord | None:
    return await db.scalar(sa.select(LogRecord).where(LogRecord.draw_id == draw_id, LogRecord.kind == kind))


async def head_at(db: AsyncSession, size: int) -> bytes:
    """head(size): 32 zero bytes for the empty log."""
    if size == 0:
        return ZERO_HEAD
    head = await db.scalar(sa.select(LogRecord.head).where(LogRecord.seq == size))
    if head is None:
        raise LookupError(f"the log has no record {size}")
    return bytes.fromhex(head)


async def record_hashes(db: AsyncSession, after: int, upto: int) -> list[bytes]:
    """record_hash(after + 1) … record_hash(upto), in order."""
    hashes = await db.scalars(
        sa.select(LogRecord.record_hash).where(LogRecord.seq > after, LogRecord.seq <= upto).order_by(LogRecord.seq)
    )
    return [bytes.fromhex(value) for value in hashes]


async def log_size(db: AsyncSession) -> int:
    return int(await db.scalar(sa.select(sa.func.coalesce(sa.func.max(LogRecord.seq), 0))) or 0)


async def records_between(db: AsyncSession, first: int, last: int) -> list[dict[str, Any]]:
    """Whole records first … last (inclusive), oldest first: what `cleack verify --log` reads."""
    rows = await db.scalars(
        sa.select(LogRecord.record).where(LogRecord.seq >= first, LogRecord.seq <= last).order_by(LogRecord.seq)
    )
    return list(rows)


@dataclass(frozen=True)
class Run:
    """One draw on a subject (a post, a file) as the log tells it: opened, and how it ended (if it did)."""

    draw_id: uuid.UUID
    opened_seq: int
    opened_at: str
    outcome: str | None
    certificate_hash: str | None


async def runs_of(db: AsyncSession, subjects: Sequence[str]) -> list[Run]:
    """Every draw whose opened record names one of `subjects`, oldest first, with its final record if any."""
    if not subjects:
        return []
    final = sa.orm.aliased(LogRecord)
    rows = await db.execute(
        sa.select(
            LogRecord.draw_id,
            LogRecord.seq,
            LogRecord.record["at"].as_string(),
            final.kind,
            final.record["certificate_hash"].as_string(),
        )
        .outerjoin(final, sa.and_(final.draw_id == LogRecord.draw_id, final.kind.in_(FINAL_KINDS)))
        .where(LogRecord.kind == "opened", LogRecord.subjects.overlap(list(subjects)))
        .order_by(LogRecord.seq)
    )
    return [Run(*row) for row in rows]
