"""Cheating as the operator, with the database in hand: each attempt fails, or shows where a verifier looks.

The draws are run by the real engine, with the session's witness and the sandbox beacon (BLS, drand's HTTP API);
the checks are those of `cleack verify` and of the public pages.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.conftest import LiveServer, csrf_token
from tests.draws.sandbox_draws import (
    RULES_OFF,
    Engines,
    create_draw,
    create_post,
    drawn,
    engines,
    load_draw,
    sandbox_creator,
    save,
    verify,
    wait_for,
)
from web.certificates.keys import current_signing_key
from web.certificates.log import append_record, draw_record, record_hashes
from web.certificates.models import LogRecord
from web.db import session_factory
from web.draws.engine import DrawEngine
from web.draws.models import Draw, DrawBlacklistEntry, DrawParticipant
from web.fairness.canonical import canonical_json
from web.fairness.certificate import certificate_hash
from web.fairness.log import build_record, fold_heads, sign_checkpoint
from web.fairness.note import parse_checkpoint, split_note
from web.fairness.signing import sign_certificate_hash
from web.social.services import platform_http_client
from web.witness.client import WitnessRefused, add_checkpoint

__all__ = ["engines", "sandbox_creator"]  # fixtures used below

ONE_WINNER: dict[str, Any] = {**RULES_OFF, "winners_count": 1, "alternates_count": 0}


async def records_of(engine: AsyncEngine, draw_id: uuid.UUID) -> list[str]:
    async with session_factory(engine)() as db:
        kinds = await db.scalars(sa.select(LogRecord.kind).where(LogRecord.draw_id == draw_id).order_by(LogRecord.seq))
        return list(kinds)


async def test_a_blacklist_change_after_the_draw_was_opened_does_not_apply_to_it(
    engines: Engines, sandbox_creator: Any, engine: AsyncEngine, live_server: LiveServer
) -> None:
    creator = await sandbox_creator()
    post = await create_post(engine, live_server, creator, 40)
    draw_id = await create_draw(engine, creator, [post], ONE_WINNER)
    async with session_factory(engine)() as db:
        entrants = await db.scalars(sa.select(DrawParticipant.username).where(DrawParticipant.draw_id == draw_id))
        assert list(entrants) == [], "nothing is collected before the draw runs"
    # The operator (or the creator) blacklists every name the sandbox post will bring, after the opening.
    client = creator.client
    for number in range(40):
        await client.post(
            "/blacklist",
            data={"username": f"entrant_{number}", "platform": "all", "_csrf_token": await csrf_token(client)},
        )

    assert await engines.runner().run_next(asyncio.Event())

    draw = await load_draw(engine, draw_id)
    assert draw.status == "completed", draw.error
    assert draw.certificate is not None
    assert draw.certificate["opened"]["blacklist"]["count"] == 0
    assert "blacklisted" not in draw.certificate["counts"]["excluded"]


async def test_a_blacklist_rewritten_in_the_database_after_opening_stops_the_draw_in_public(
    engines: Engines, sandbox_creator: Any, engine: AsyncEngine, live_server: LiveServer
) -> None:
    creator = await sandbox_creator()
    post = await create_post(engine, live_server, creator, 40)
    draw_id = await create_draw(engine, creator, [post], ONE_WINNER)
    async with session_factory(engine)() as db:
        db.add(DrawBlacklistEntry(draw_id=draw_id, platform="all", username="someone_unwelcome"))
        await db.commit()

    assert await engines.runner().run_next(asyncio.Event())

    draw = await load_draw(engine, draw_id)
    assert draw.status == "failed"
    assert draw.error is not None and "blacklist" in draw.error
    assert await records_of(engine, draw_id) == ["opened", "failed"]


async def test_entries_changed_after_the_seal_make_the_draw_fail_instead_of_being_drawn(
    sandbox_creator: Any, engine: AsyncEngine, live_server: LiveServer, database_url: str
) -> None:
    creator = await sandbox_creator()
    post = await create_post(engine, live_server, creator, 60)
    draw_id = await create_draw(engine, creator, [post], ONE_WINNER)
    # A round far enough ahead for the operator to act between the seal and the randomness.
    patient = dataclasses.replace(live_server.settings, beacon_margin_seconds=30.0)
    maker = session_factory(engine)
    async with platform_http_client() as http:
        first = Engines(maker, DrawEngine(maker, patient, http, database_url))
        run = asyncio.create_task(first.runner(lease_seconds=2).run_next(asyncio.Event()))

        async def sealed() -> bool:
            return "sealed" in await records_of(engine, draw_id)

        await wait_for(sealed, within=60)
        run.cancel()
        with pytest.raises(asyncio.CancelledError):
            await run
        # The worker is gone; the operator now turns an excluded entry into an eligible one, and the other way.
        async with maker() as db:
            await db.execute(
                sa.update(DrawParticipant)
                .where(
                    DrawParticipant.draw_id == draw_id,
                    DrawParticipant.comment_id
                    == sa.select(sa.func.min(DrawParticipant.comment_id))
                    .where(DrawParticipant.draw_id == draw_id)
                    .scalar_subquery(),
                )
                .values(is_eligible=False, exclusion_reason="suspicious")
            )
            await db.execute(sa.update(Draw).where(Draw.id == draw_id).values(lease_expires_at=sa.func.now()))
            await db.commit()
        second = Engines(maker, DrawEngine(maker, live_server.settings, http, database_url))
        assert await second.runner().run_next(asyncio.Event())

    draw = await load_draw(engine, draw_id)
    assert draw.status == "failed"
    assert draw.error is not None and "not the ones this draw was sealed with" in draw.error
    assert await records_of(engine, draw_id) == ["opened", "sealed", "failed"]


async def test_a_draw_cannot_be_sealed_twice_nor_a_record_of_the_log_changed(
    engines: Engines, sandbox_creator: Any, engine: AsyncEngine, live_server: LiveServer
) -> None:
    creator = await sandbox_creator()
    post = await create_post(engine, live_server, creator, 30)
    draw = await drawn(engines, engine, creator, [post], ONE_WINNER)
    draw_id = draw.id
    assert draw.certificate is not None
    sealed = draw.certificate["sealed"]
    members = {name: sealed[name] for name in ("opened", "counts", "merkle_root", "collected_root", "beacon")}

    async with session_factory(engine)() as db:
        with pytest.raises(IntegrityError):
            await append_record(db, live_server.settings, "sealed", draw_id, **{**members, "merkle_root": "00" * 32})
        await db.rollback()
    async with session_factory(engine)() as db:
        with pytest.raises(DBAPIError, match="append-only"):
            await db.execute(sa.update(LogRecord).where(LogRecord.seq == sealed["seq"]).values(record_hash="ff" * 32))
        await db.rollback()
    async with session_factory(engine)() as db:
        with pytest.raises(DBAPIError, match="append-only"):
            await db.execute(sa.delete(LogRecord).where(LogRecord.draw_id == draw_id))
        await db.rollback()


async def test_a_forked_log_shown_to_the_witness_is_refused(
    engines: Engines, sandbox_creator: Any, engine: AsyncEngine, live_server: LiveServer
) -> None:
    creator = await sandbox_creator()
    post = await create_post(engine, live_server, creator, 30)
    await drawn(engines, engine, creator, [post], ONE_WINNER)
    settings = live_server.settings
    key = current_signing_key(settings)
    witness = live_server.witness
    async with httpx.AsyncClient(timeout=10) as http:
        held = await http.get(f"{witness.url}/checkpoint", params={"origin": settings.log_name})
        size = parse_checkpoint(split_note(held.text)[0]).size
        async with session_factory(engine)() as db:
            witnessed = await db.get(LogRecord, size)
            assert witnessed is not None
            history = await record_hashes(db, 0, size - 1)
        # The record the witness already saw at `size`, swapped for another one signed with the server's own key.
        forged = build_record(
            "failed",
            origin=settings.log_name,
            seq=size,
            draw_id=uuid.uuid4(),
            at=witnessed.created_at,
            signing_key=key,
            stage="fetching",
            reason="forged",
        )
        head = fold_heads(bytes(32), [*history, bytes.fromhex(forged["record_hash"])])
        note = sign_checkpoint(settings.log_name, size, head, key)

        with pytest.raises(WitnessRefused) as refused:
            await add_checkpoint(http, witness.url, size, [], note, witness.key)
        # A longer history that does not extend the witnessed head is refused too.
        longer = sign_checkpoint(settings.log_name, size + 1, fold_heads(head, [bytes(32)]), key)
        with pytest.raises(WitnessRefused) as refused_longer:
            await add_checkpoint(http, witness.url, size, [bytes(32)], longer, witness.key)

    assert refused.value.status == 422 and refused_longer.value.status == 422
    assert len(list((witness.data_dir / "forks").iterdir())) >= 2, "the witness keeps the evidence"
    # The real log still extends what the witness holds: the next draw is witnessed as usual.
    await create_draw(engine, creator, [post], ONE_WINNER)
    assert await engines.runner().run_next(asyncio.Event())


async def test_a_certificate_re_signed_with_another_rounds_randomness_does_not_verify(
    engines: Engines,
    sandbox_creator: Any,
    engine: AsyncEngine,
    live_server: LiveServer,
    client: httpx.AsyncClient,
    tmp_path: Path,
) -> None:
    creator = await sandbox_creator()
    post = await create_post(engine, live_server, creator, 50)
    draw = await drawn(engines, engine, creator, [post], ONE_WINNER)
    assert draw.certificate is not None
    keys = await save(client, "/.well-known/cleack-signing-key", tmp_path / "keys.json")
    original = await save(client, f"/certificates/{draw.certificate_hash}.json", tmp_path / "original.json")
    assert verify(original, "--keys", keys).exit_code == 0
    beacon = draw.certificate["beacon"]
    chain = beacon["chain_hash"]
    # The operator holds the signing key: it takes the round before (already public at the seal) and re-signs.
    earlier = (await client.get(f"/sandbox/beacon/{chain}/public/{beacon['round'] - 1}")).json()
    cheat = json.loads(original.read_text())
    cheat["beacon"] = {
        **beacon,
        "round": earlier["round"],
        "signature": earlier["signature"],
        "randomness": earlier["randomness"],
    }
    cheat["certificate_hash"] = certificate_hash(cheat)
    cheat["signature"] = sign_certificate_hash(current_signing_key(live_server.settings), cheat["certificate_hash"])
    (tmp_path / "cheat.json").write_bytes(canonical_json(cheat))

    result = verify(tmp_path / "cheat.json", "--keys", keys)

    assert result.exit_code == 1
    assert "✗" in result.output
    failed = [line for line in result.output.splitlines() if line.startswith("✗")]
    assert any("sealed" in line or "beacon" in line or "witness" in line for line in failed), result.output


async def test_a_run_again_on_the_same_post_shows_on_its_certificate(
    engines: Engines, sandbox_creator: Any, engine: AsyncEngine, live_server: LiveServer, client: httpx.AsyncClient
) -> None:
    creator = await sandbox_creator()
    post = await create_post(engine, live_server, creator, 30)
    cancelled_id = await create_draw(engine, creator, [post], ONE_WINNER)
    response = await creator.client.post(
        f"/draws/{cancelled_id}/cancel", data={"_csrf_token": await csrf_token(creator.client)}
    )
    assert response.status_code in (200, 303)
    draw_id = await create_draw(engine, creator, [post], ONE_WINNER)
    assert await engines.runner().run_next(asyncio.Event())
    draw = await load_draw(engine, draw_id)
    assert draw.status == "completed", draw.error

    page = await client.get(f"/certificates/{draw.certificate_hash}")

    assert "This post has been drawn 2 times" in page.text
    assert page.text.count('data-testid="run"') == 2
    assert "cancelled" in page.text
    async with session_factory(engine)() as db:
        opened = await draw_record(db, cancelled_id, "opened")
    assert opened is not None and f'href="/log/{opened.seq}"' in page.text
    assert await records_of(engine, cancelled_id) == ["opened", "cancelled"]
