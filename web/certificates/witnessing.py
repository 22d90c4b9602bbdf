"""Getting the log's head cosigned by its witnesses, and keeping what they signed.

A witness keeps the last head it cosigned for this log and only cosigns a head that extends it, so the log
sends the record hashes since that size (it learns the size from its own last cosignature, or from the
witness's 409 answer). What a witness cosigned is kept in `log_cosignatures`; a certificate carries one.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import httpx
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from web.certificates.keys import current_signing_key
from web.certificates.log import head_at, log_size, record_hashes, utcnow
from web.certificates.models import LogCosignature
from web.fairness.log import sign_checkpoint
from web.fairness.note import VerifierKey, parse_verifier_key
from web.settings import ConfigurationError, Settings
from web.witness.client import WitnessConflict, WitnessRefused, WitnessUnavailable, add_checkpoint

log = logging.getLogger(__name__)

# A witness that keeps answering 409 is racing other submitters; after this many tries the head waits.
CONFLICT_RETRIES = 4
# Record hashes sent in one request at most (a witness refuses bodies over 1 MiB: about 23,000 hashes).
CATCH_UP_RECORDS = 10_000
WITNESS_PROBE_SECONDS = 5.0


class WitnessingFailed(Exception):
    """No witness cosigned the head: the message says why."""


@dataclass(frozen=True)
class Witness:
    url: str
    key: VerifierKey


def configured_witnesses(settings: Settings) -> list[Witness]:
    witnesses = []
    for entry in settings.witnesses:
        url, _, text = entry.partition(" ")
        try:
            witnesses.append(Witness(url.rstrip("/"), parse_verifier_key(text.strip())))
        except ValueError as exc:
            raise ConfigurationError(f"WITNESSES: {exc}") from exc
    return witnesses


async def _known_size(db: AsyncSession, witness: Witness) -> int:
    size = await db.scalar(
        sa.select(sa.func.max(LogCosignature.size)).where(LogCosignature.witness == witness.key.text)
    )
    return int(size or 0)


@dataclass(frozen=True)
class Cosigned:
    """One checkpoint of the log and the cosignatures the witnesses gave it."""

    size: int
    note: str
    cosignatures: list[LogCosignature]


class _Overtaken(Exception):
    """The witness already knows a longer log than this checkpoint's: a newer checkpoint is needed."""


async def _submit(
    db: AsyncSession, http: httpx.AsyncClient, settings: Settings, witness: Witness, size: int, note: str
) -> tuple[str, int]:
    old = await _known_size(db, witness)
    for _ in range(CONFLICT_RETRIES):
        if old > size:
            raise _Overtaken
        try:
            # A witness far behind catches up through intermediate heads, so that each request stays small.
            while size - old > CATCH_UP_RECORDS:
                step = old + CATCH_UP_RECORDS
                head = await head_at(db, step)
                step_note = sign_checkpoint(settings.log_name, step, head, current_signing_key(settings, utcnow()))
                await add_checkpoint(http, witness.url, old, await record_hashes(db, old, step), step_note, witness.key)
                old = step
            cosigned = await add_checkpoint(
                http, witness.url, old, await record_hashes(db, old, size), note, witness.key
            )
        except WitnessConflict as conflict:
            old = conflict.size
            continue
        return cosigned.line, cosigned.timestamp
    raise WitnessRefused(f"it kept answering with another size than {old}")


async def cosign_log(
    session_maker: async_sessionmaker[AsyncSession], settings: Settings, http: httpx.AsyncClient
) -> Cosigned:
    """The log's current checkpoint, cosigned by every witness that will (at least one), and stored."""
    witnesses = configured_witnesses(settings)
    if not witnesses:
        raise WitnessingFailed("no witness is configured (WITNESSES)")
    for _ in range(CONFLICT_RETRIES):
        async with session_maker() as db:
            size = await log_size(db)
            head = await head_at(db, size)
            note = sign_checkpoint(settings.log_name, size, head, current_signing_key(settings, utcnow()))
            rows, problems, overtaken = [], [], False
            for witness in witnesses:
                try:
                    line, timestamp = await _submit(db, http, settings, witness, size, note)
                except _Overtaken:
                    overtaken = True
                    break
                except (WitnessRefused, WitnessUnavailable) as exc:
                    problems.append(f"{witness.key.name}: {exc}")
                    log.warning("witness did not cosign", extra={"witness": witness.key.name, "reason": str(exc)})
                    continue
                rows.append(
                    LogCosignature(
                        witness=witness.key.text,
                        size=size,
                        head=head.hex(),
                        checkpoint=note,
                        cosignature=line,
                        timestamp=timestamp,
                    )
                )
            if overtaken:
                continue
            if not rows:
                raise WitnessingFailed("no witness cosigned the log: " + "; ".join(problems))
            db.add_all(rows)
            await db.commit()
            return Cosigned(size, note, rows)
    raise WitnessingFailed("the log kept growing faster than its witnesses could be asked")


async def a_witness_answers(settings: Settings, http: httpx.AsyncClient) -> bool:
    """Whether one of the witnesses is up and is the one configured (its key is the one WITNESSES names)."""
    for witness in configured_witnesses(settings):
        try:
            answer = await http.get(f"{witness.url}/key", timeout=WITNESS_PROBE_SECONDS)
        except httpx.HTTPError:
            continue
        if answer.status_code == 200 and answer.text.strip() == witness.key.text:
            return True
    return False


async def first_cosigned(db: AsyncSession, size: int) -> Cosigned | None:
    """The first stored checkpoint that contains record `size`, with every cosignature it got."""
    first = await db.scalar(
        sa.select(LogCosignature).where(LogCosignature.size >= size).order_by(LogCosignature.id).limit(1)
    )
    if first is None:
        return None
    rows = list(
        await db.scalars(
            sa.select(LogCosignature).where(LogCosignature.checkpoint == first.checkpoint).order_by(LogCosignature.id)
        )
    )
    return Cosigned(first.size, first.checkpoint, rows)
