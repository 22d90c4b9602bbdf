"""Results: winners, excluded entries, the CSV exports, and the public certificate pages."""

from __future__ import annotations

import csv
import datetime
import hashlib
import io
import json
import uuid
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.conftest import LiveServer
from web.certificates.keys import current_signing_key
from web.db import session_factory
from web.draws.models import Draw, DrawParticipant
from web.fairness import DrawFacts, Pick, build_certificate, merkle_root, select_winners
from web.fairness.canonical import canonical_json
from web.fairness.entries import Entry
from web.fairness.entries_csv import eligible_entries
from web.settings import Settings

LIST = (
    "username,comment\n"
    + "".join(f"fan{number:02d},I want to win @friend\n" for number in range(1, 31))
    + "=HYPERLINK(x),hello\n".replace("=HYPERLINK(x)", "mallory")
    + 'eve,=HYPERLINK("http://evil")\n'
).encode()


async def complete(engine: AsyncEngine, draw_id: str, settings: Settings) -> Draw:
    """Play the engine: exclude some entries, draw from the rest, issue the certificate."""
    async with session_factory(engine)() as db:
        draw = await db.get_one(Draw, uuid.UUID(draw_id))
        rows = list(await db.scalars(sa.select(DrawParticipant).where(DrawParticipant.draw_id == draw.id)))
        for row in rows:
            excluded = row.username in {"fan01", "fan02", "fan03"}
            row.is_eligible = not excluded
            row.exclusion_reason = "keyword_missing" if excluded else None
        eligible = sorted(
            (Entry(r.platform, r.platform_user_id, r.username, r.comment_id or "") for r in rows if r.is_eligible),
            key=lambda entry: entry.key,
        )
        root = merkle_root(entry.leaf_hash for entry in eligible)
        assert draw.secret is not None
        selection = select_winners(
            secret=draw.secret,
            merkle_root=root,
            draw_id=draw.id,
            eligible=len(eligible),
            winners_count=draw.winners_count,
            alternates_count=draw.alternates_count,
        )
        now = datetime.datetime.now(datetime.UTC)
        cert = build_certificate(
            draw=DrawFacts(draw.id, draw.title, ["list"], draw.sources, draw.created_at, now, now),
            config=draw.config,
            participants=len(rows),
            excluded={"keyword_missing": 3},
            eligible=len(eligible),
            merkle_root=root,
            secret=draw.secret,
            winners=[Pick(index, eligible[index]) for index in selection.winner_indices],
            alternates=[Pick(index, eligible[index]) for index in selection.alternate_indices],
            signing_key=current_signing_key(settings),
            issued_at=now,
        )
        by_entry = {(r.platform, r.platform_user_id, r.comment_id): r for r in rows}

        def pick(index: int, position: int) -> dict[str, Any]:
            entry = eligible[index]
            row = by_entry[(entry.platform, entry.platform_user_id, entry.entry_id)]
            return {
                "position": position,
                "username": row.username,
                "platform": row.platform,
                "platform_user_id": row.platform_user_id,
                "comment": row.comment,
                "selected_at": now.isoformat(),
            }

        draw.winners = [pick(index, n) for n, index in enumerate(selection.winner_indices, start=1)]
        draw.alternates = [pick(index, n) for n, index in enumerate(selection.alternate_indices, start=1)]
        draw.status, draw.participants_count, draw.eligible_count = "completed", len(rows), len(eligible)
        draw.merkle_root, draw.certificate, draw.certificate_hash = root.hex(), cert, cert["certificate_hash"]
        draw.progress = {"stage": "done", "percent": 100}
        await db.commit()
        return draw


async def test_a_completed_draw_shows_its_winners_exclusions_and_history(
    list_draw: Any, engine: AsyncEngine, live_server: LiveServer
) -> None:
    client, _, draw_id = await list_draw(csv_bytes=LIST)
    draw = await complete(engine, draw_id, live_server.settings)
    page = await client.get(f"/draws/{draw_id}")
    assert page.status_code == 200
    for winner in draw.winners + draw.alternates:
        assert f"@{winner['username']}" in page.text
    assert 'data-testid="excluded"' in page.text and "Keyword missing" in page.text
    assert f"/certificates/{draw.certificate_hash}" in page.text
    assert "badge-created" in page.text and "127.0.0.1" in page.text
    assert "sse-connect" not in page.text


async def test_excluded_entries_are_paginated_and_filtered_by_reason(
    list_draw: Any, engine: AsyncEngine, live_server: LiveServer
) -> None:
    client, _, draw_id = await list_draw(csv_bytes=LIST)
    await complete(engine, draw_id, live_server.settings)
    async with session_factory(engine)() as db:
        await db.execute(
            sa.update(DrawParticipant)
            .where(DrawParticipant.draw_id == uuid.UUID(draw_id), DrawParticipant.is_eligible.is_(True))
            .values(is_eligible=False, exclusion_reason="duplicate")
        )
        await db.commit()
    first = await client.get(f"/draws/{draw_id}/excluded", headers={"HX-Request": "true"})
    assert first.status_code == 200 and "<html" not in first.text
    assert first.text.count("<tr>") == 1 + 32 and "Page 1 of 1" not in first.text
    keyword = await client.get(f"/draws/{draw_id}/excluded?reason=keyword_missing")
    assert keyword.text.count("Keyword missing</span>") == 3
    assert "@fan01" in keyword.text and "@fan10" not in keyword.text


async def test_the_entries_csv_is_what_the_verifier_reads_and_safe_in_spreadsheets(
    list_draw: Any, engine: AsyncEngine, live_server: LiveServer
) -> None:
    client, _, draw_id = await list_draw(csv_bytes=LIST)
    draw = await complete(engine, draw_id, live_server.settings)
    response = await client.get(f"/draws/{draw_id}/entries.csv")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    assert "attachment" in response.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert len(rows) == 32
    assert [row["entry_id"] for row in rows if row["eligible"] == "false"] == ["row-1", "row-2", "row-3"]
    assert next(row for row in rows if row["username"] == "eve")["comment"] == '\'=HYPERLINK("http://evil")'
    eligible = list(eligible_entries(io.StringIO(response.text, newline="")))
    assert merkle_root(entry.leaf_hash for entry in eligible).hex() == draw.merkle_root


async def test_the_winners_csv_lists_winners_then_alternates_with_formulas_defused(
    list_draw: Any, engine: AsyncEngine, live_server: LiveServer
) -> None:
    client, _, draw_id = await list_draw(csv_bytes=LIST)
    async with session_factory(engine)() as db:
        draw = await db.get_one(Draw, uuid.UUID(draw_id))
        draw.status = "completed"
        draw.winners = [
            {
                "position": 1,
                "username": "ann",
                "platform": "list",
                "platform_user_id": "ann",
                "comment": "+1 @bob",
                "selected_at": "2026-11-22T10:00:00+00:00",
            }
        ]
        draw.alternates = [
            {
                "position": 1,
                "username": "-dash",
                "platform": "list",
                "platform_user_id": "@x",
                "comment": "=2+3",
                "selected_at": "2026-11-22T10:00:00+00:00",
            }
        ]
        await db.commit()
    response = await client.get(f"/draws/{draw_id}/winners.csv")
    rows = list(csv.reader(io.StringIO(response.text)))
    assert rows[0] == ["kind", "position", "platform", "platform_user_id", "username", "comment", "selected_at"]
    assert rows[1] == ["winner", "1", "list", "ann", "ann", "'+1 @bob", "2026-11-22T10:00:00+00:00"]
    assert rows[2] == ["alternate", "1", "list", "'@x", "'-dash", "'=2+3", "2026-11-22T10:00:00+00:00"]


async def test_the_public_certificate_page_rechecks_a_genuine_certificate(
    list_draw: Any, engine: AsyncEngine, live_server: LiveServer, new_client: Any
) -> None:
    _, _, draw_id = await list_draw(csv_bytes=LIST)
    draw = await complete(engine, draw_id, live_server.settings)
    anonymous = new_client()
    page = await anonymous.get(f"/certificates/{draw.certificate_hash}")
    assert page.status_code == 200
    assert "Every check passed" in page.text
    assert page.text.count('class="rule-yes" data-testid="check"') >= 6 and "rule-no" not in page.text
    assert "Merkle" in page.text and "cleack verify" in page.text
    # A cleack-draw-v1 certificate (as issued before the public log) keeps its page and its checks.
    assert draw.certificate is not None and draw.certificate["commitment"] in page.text
    assert 'id="certificate-data"' in page.text and 'data-testid="browser-check"' in page.text
    assert "I want to win" not in page.text  # no entrant data beyond the certificate


async def test_the_certificate_json_is_the_canonical_bytes_that_hash_to_its_name(
    list_draw: Any, engine: AsyncEngine, live_server: LiveServer, new_client: Any
) -> None:
    _, _, draw_id = await list_draw(csv_bytes=LIST)
    draw = await complete(engine, draw_id, live_server.settings)
    response = await new_client().get(f"/certificates/{draw.certificate_hash}.json")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    document = json.loads(response.content)
    assert response.content == canonical_json(document)
    unsigned = {key: value for key, value in document.items() if key not in ("certificate_hash", "signature")}
    assert hashlib.sha256(canonical_json(unsigned)).hexdigest() == draw.certificate_hash
    assert document["signature"] and document["certificate_hash"] == draw.certificate_hash


async def test_a_tampered_certificate_fails_its_checks(
    list_draw: Any, engine: AsyncEngine, live_server: LiveServer, new_client: Any
) -> None:
    _, _, draw_id = await list_draw(csv_bytes=LIST)
    draw = await complete(engine, draw_id, live_server.settings)
    async with session_factory(engine)() as db:
        stored = await db.get_one(Draw, draw.id)
        certificate = draw.certificate
        assert certificate is not None
        stored.certificate = {**certificate, "winners": list(reversed(certificate["winners"]))}
        await db.commit()
    page = await new_client().get(f"/certificates/{draw.certificate_hash}")
    assert page.status_code == 200 and "this certificate is not valid" in page.text and "rule-no" in page.text


async def test_an_unknown_certificate_is_not_found(new_client: Any) -> None:
    client = new_client()
    for name in ("0" * 64, "0" * 64 + ".json", "not-a-hash", "../etc"):
        assert (await client.get(f"/certificates/{name}")).status_code == 404
