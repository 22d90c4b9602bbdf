"""Between the rules and the winners: seal the entries, have the seal witnessed, wait for the randomness.

The order is what makes the draw fair against us (docs/fairness.md): the sealed record fixes every collected
entry with its verdict and names a drand round still to come; a witness cosigns a log head containing the seal
before that round is published; only then does the round's value, which nobody knew, pick the winners. A worker
taking the draw over finds the seal already in the log and must reproduce its roots exactly: a draw is sealed
once, and entries changed after the seal make it fail (in public) instead of being drawn.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import logging
import time
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy.exc import IntegrityError

from web.certificates.beacon import BeaconError, beacon_client, configured_chain, seal_round, wait_for_round
from web.certificates.log import (
    append_record,
    draw_record,
    head_at,
    lock_log,
    record_hashes,
    utcnow,
    with_log_entry,
)
from web.certificates.models import LogRecord
from web.certificates.witnessing import (
    Cosigned,
    WitnessingFailed,
    a_witness_answers,
    cosign_log,
    first_cosigned,
)
from web.draws.history import record_history
from web.draws.lease import PROGRESS_CHANNEL, DrawFailed, RunStopped
from web.draws.models import Draw
from web.draws.rules import EXCLUSION_ORDER, Verdicts
from web.draws.selection import PickedEntry, Roots
from web.draws.services import frozen_blacklist, opened_draw_facts
from web.fairness.certificate import DrawFacts
from web.fairness.certificate_v2 import LogProof, SaltedPick, build_certificate_v2
from web.fairness.drand import BeaconRound, ChainInfo, beacon_record
from web.fairness.entries import derive_salt, leaf_v2
from web.settings import Settings

log = logging.getLogger(__name__)

# How long past its due time a round is waited for before the draw fails (drand keeps every round, so a beacon
# that comes back gives the same value: the wait only bounds how long a draw may hang).
ROUND_GRACE = datetime.timedelta(minutes=2)
# Pause between two attempts at the witnesses while the round is still to come.
WITNESS_RETRY_SECONDS = 0.5
# Before sealing: how often a silent witness is asked again, and for how long at most.
WITNESS_POLL_SECONDS = 10.0
WITNESS_WAIT_SECONDS = 600.0


def seal_members(roots: Roots) -> dict[str, Any]:
    """What the sealed record states of the entries, all read from the one pass that hashed them."""
    excluded = {reason: roots.excluded[reason] for reason in EXCLUSION_ORDER if roots.excluded.get(reason)}
    return {
        "counts": {"participants": roots.participants, "excluded": excluded, "eligible": roots.eligible},
        "merkle_root": roots.merkle_root.hex(),
        "collected_root": roots.collected_root.hex(),
    }


class Sealing:
    """The seal, witness and randomness steps of one run of one draw."""

    def __init__(self, run: Any) -> None:
        self.engine = run.engine
        self.draw: Draw = run.draw
        self.lease = run.lease
        self.progress = run.progress
        self.chain: ChainInfo = configured_chain(self.engine.settings)

    async def seal(self, verdicts: Verdicts, roots: Roots) -> LogRecord:
        """The draw's sealed record: the one already in the log (whose roots must be these), or a new one."""
        members = seal_members(roots)
        async with self.engine.session_maker() as db:
            existing = await draw_record(db, self.draw.id, "sealed")
            if existing is not None:
                await db.commit()
                return self._same_entries(existing, members)
            if members["counts"] != {
                "participants": verdicts.participants,
                "excluded": verdicts.excluded,
                "eligible": verdicts.eligible,
            }:
                raise DrawFailed("The entries changed while the draw was being sealed; it was stopped.")
            current = await db.scalar(sa.select(Draw).where(Draw.id == self.draw.id).with_for_update())
            if current is None or current.status != "processing" or current.lease_owner != self.lease.owner:
                await db.commit()
                raise RunStopped
            opened = await draw_record(db, self.draw.id, "opened")
            if opened is None:
                raise DrawFailed("The draw has no opened record in the public log; it cannot be sealed.")
            if (await frozen_blacklist(db, self.draw.id))[0] != opened.record["blacklist"]["sha256"]:
                raise DrawFailed(
                    "The blacklist applied to this draw is not the one fixed when it was opened; it cannot be drawn."
                )
            # The round is chosen once the log is ours, so that the record's time cannot pass the round's.
            await lock_log(db)
            round_ = seal_round(self.chain, utcnow(), self.engine.settings.beacon_margin)
            try:
                sealed = await append_record(
                    db,
                    self.engine.settings,
                    "sealed",
                    self.draw.id,
                    opened=opened.record_hash,
                    beacon={"chain_hash": self.chain.chain_hash, "round": round_},
                    **members,
                )
            except IntegrityError:
                await db.rollback()
                raise RunStopped from None
            record_history(
                db,
                current,
                "sealed",
                {"log_seq": sealed.seq, "record_hash": sealed.record_hash, "round": round_, **members["counts"]},
            )
            self.progress.update(
                stage="sealed",
                message=self._waiting_message(round_),
                log=with_log_entry(self.progress.state, sealed)["log"],
            )
            current.progress = dict(self.progress.state)
            await db.execute(sa.select(sa.func.pg_notify(PROGRESS_CHANNEL, str(self.draw.id))))
            await db.commit()
        self.progress.mark_written()
        log.info("draw sealed", extra={"draw": str(self.draw.id), "seq": sealed.seq, "round": round_})
        return sealed

    async def wait_for_a_witness(self) -> None:
        """Before sealing, a witness must answer: a seal not witnessed before its round would fail the draw in
        public, so while none answers the draw waits, unsealed, and says so."""
        async with self.engine.session_maker() as db:
            sealed = await draw_record(db, self.draw.id, "sealed")
            await db.commit()
        if sealed is not None:
            return
        if not self.engine.settings.witnesses:
            raise DrawFailed(
                "No witness of the public log is configured (WITNESSES), so the draw cannot be sealed; "
                "your credits were given back."
            )
        waited = False
        deadline = time.monotonic() + WITNESS_WAIT_SECONDS
        while not await a_witness_answers(self.engine.settings, self.engine.http):
            if time.monotonic() >= deadline:
                raise DrawFailed(
                    f"No witness of the public log answered for {WITNESS_WAIT_SECONDS / 60:.0f} minutes, so the "
                    "draw could not be sealed; your credits were given back."
                )
            until = utcnow() + datetime.timedelta(seconds=WITNESS_POLL_SECONDS)
            self.progress.update(
                stage="witness",
                paused_until=until.isoformat(),
                message="Waiting for the public log's witness to answer before sealing the entries.",
            )
            await self.progress.publish()
            waited = True
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.lease.stopping.wait(), timeout=WITNESS_POLL_SECONDS)
            self.lease.check_shutdown()
        if waited:
            self.progress.update(stage="selecting", paused_until=None, message=None)
            await self.progress.publish()

    def _same_entries(self, sealed: LogRecord, members: dict[str, Any]) -> LogRecord:
        record = sealed.record
        changed = [name for name, value in members.items() if record.get(name) != value]
        if changed:
            raise DrawFailed(
                "The entries are not the ones this draw was sealed with "
                f"({', '.join(changed)} differ from the public seal); it cannot be drawn."
            )
        return sealed

    def _waiting_message(self, round_: int) -> str:
        due = self.chain.time_of(round_).strftime("%H:%M:%S")
        return f"Sealed. The winners come from round {round_} of {self.chain.source}, published at {due} UTC."

    def round_of(self, sealed: LogRecord) -> int:
        return int(sealed.record["beacon"]["round"])

    async def witness(self, sealed: LogRecord) -> Cosigned:
        """A checkpoint containing the seal, cosigned before the round is published (asked for now if needed)."""
        due = self.chain.seconds_of(self.round_of(sealed))
        async with self.engine.session_maker() as db:
            stored = await first_cosigned(db, sealed.seq)
            await db.commit()
        if stored is not None and (timely := _before(stored, due)) is not None:
            return timely
        problem = "no witness answered"
        while utcnow().timestamp() < due:
            try:
                cosigned = await cosign_log(self.engine.session_maker, self.engine.settings, self.engine.http)
            except WitnessingFailed as exc:
                problem = str(exc)
                await asyncio.sleep(WITNESS_RETRY_SECONDS)
                continue
            timely = _before(cosigned, due)
            if timely is not None:
                return timely
            problem = "the witnesses cosigned after the round was published"
            break
        raise DrawFailed(
            "The seal could not be witnessed before its randomness round was published "
            f"({problem}); your credits were given back."
        )

    async def log_proof(self, sealed: LogRecord, cosigned: Cosigned) -> LogProof:
        """Where the seal sits in the cosigned checkpoint: the head before it and the records after it."""
        async with self.engine.session_maker() as db:
            head_before = await head_at(db, sealed.seq - 1)
            following = await record_hashes(db, sealed.seq, cosigned.size)
            await db.commit()
        return LogProof(
            origin=self.engine.settings.log_name,
            head_before_seal=head_before,
            following=following,
            checkpoint=cosigned.note,
            cosignatures=[row.cosignature for row in cosigned.cosignatures],
            witnesses=[row.witness for row in cosigned.cosignatures],
        )

    async def randomness(self, sealed: LogRecord) -> tuple[ChainInfo, BeaconRound]:
        """The sealed round's value, its signature checked against the chain's key."""
        round_ = self.round_of(sealed)
        self.progress.update(stage="randomness", message=self._waiting_message(round_))
        await self.progress.publish()
        client = beacon_client(self.engine.settings, self.engine.http)
        try:
            found = await wait_for_round(client, round_, self.chain.time_of(round_) + ROUND_GRACE)
        except BeaconError as exc:
            raise DrawFailed(
                f"The randomness beacon did not give round {round_}: {exc}. Your credits were given back."
            ) from exc
        return self.chain, found


def _before(cosigned: Cosigned, due: int) -> Cosigned | None:
    """The cosignatures made before `due` (Unix seconds), or None when there is none."""
    timely = [row for row in cosigned.cosignatures if row.timestamp < due]
    return Cosigned(cosigned.size, cosigned.note, timely) if timely else None


@dataclass(frozen=True)
class Outcome:
    """Everything the certificate of a completed draw is made of, gathered by the run."""

    verdicts: Verdicts
    roots: Roots
    opened: LogRecord
    sealed: LogRecord
    log: LogProof
    chain: ChainInfo
    beacon: BeaconRound
    seed: bytes
    winners: list[PickedEntry]
    alternates: list[PickedEntry]
    salt_key: bytes
    settings: Settings

    def certificate(
        self, draw: Draw, completed_at: datetime.datetime, previous: str | None, signing_key: Ed25519PrivateKey
    ) -> dict[str, Any]:
        assert draw.executed_at is not None
        facts = opened_draw_facts(draw)
        return build_certificate_v2(
            draw=DrawFacts(
                id=draw.id,
                title=facts["title"],
                platforms=facts["platforms"],
                sources=facts["sources"],
                created_at=draw.created_at,
                started_at=draw.executed_at,
                completed_at=completed_at,
            ),
            config=draw.config,
            counts=self.sealed.record["counts"],
            merkle_root=self.roots.merkle_root,
            collected_root=self.roots.collected_root,
            opened=self.opened.record,
            sealed=self.sealed.record,
            log=self.log,
            beacon=beacon_record(self.chain, self.beacon),
            winners=[self._salted(picked) for picked in self.winners],
            alternates=[self._salted(picked) for picked in self.alternates],
            signing_key=signing_key,
            issued_at=completed_at,
            previous_certificate_hash=previous,
        )

    def _salted(self, picked: PickedEntry) -> SaltedPick:
        salt = derive_salt(self.salt_key, picked.pick.entry)
        if leaf_v2(picked.pick.entry, salt) != picked.leaf:
            raise RuntimeError(f"entry {picked.pick.index} was stored with a leaf the fairness core does not compute")
        return SaltedPick(picked.pick.index, picked.pick.entry, salt)
