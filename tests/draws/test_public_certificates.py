"""The public chain of certificates and the participants' inclusion proofs, on draws run by the engine."""

from __future__ import annotations

import asyncio
import json
import re
import uuid
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.conftest import LiveServer
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
)
from web.certificates.pages import PROOFS_PER_ADDRESS, chain_page
from web.db import session_factory
from web.draws.models import Draw, DrawParticipant

__all__ = ["engines", "sandbox_creator"]  # fixtures used below

# Some entrants have no comment with the keyword: they are excluded altogether.
KEYWORD: dict[str, Any] = {**RULES_OFF, "rules": {**RULES_OFF["rules"], "comment_keywords": ["win"]}}


async def run_draws(
    engines: Engines, sandbox_creator: Any, engine: AsyncEngine, live_server: LiveServer, count: int
) -> list[Draw]:
    creator = await sandbox_creator()
    return [
        await drawn(engines, engine, creator, [await create_post(engine, live_server, creator, 60)], KEYWORD)
        for _ in range(count)
    ]


async def test_the_chain_lists_every_certificate_newest_first_each_naming_the_one_before(
    engines: Engines, sandbox_creator: Any, engine: AsyncEngine, live_server: LiveServer, client: httpx.AsyncClient
) -> None:
    first, second, third = await run_draws(engines, sandbox_creator, engine, live_server, 3)

    page = await client.get("/certificates")

    assert page.status_code == 200
    listed = re.findall(r'href="/certificates/([0-9a-f]{64})"', page.text)
    assert listed == [third.certificate_hash, second.certificate_hash, first.certificate_hash]
    assert "3 certificates issued" in page.text
    assert third.certificate is not None and second.certificate is not None and first.certificate is not None
    assert third.certificate["previous_certificate_hash"] == second.certificate_hash
    assert second.certificate["previous_certificate_hash"] == first.certificate_hash
    assert first.certificate["previous_certificate_hash"] is None
    assert "none (the first)" in page.text


async def test_the_chain_pages_follow_on_without_gap_or_repeat(
    engines: Engines, sandbox_creator: Any, engine: AsyncEngine, live_server: LiveServer, client: httpx.AsyncClient
) -> None:
    draws = await run_draws(engines, sandbox_creator, engine, live_server, 3)

    async with session_factory(engine)() as db:
        pages = [await chain_page(db, number, per_page=2) for number in (1, 2)]

    assert [link.certificate_hash for page in pages for link in page.rows] == [
        draw.certificate_hash for draw in reversed(draws)
    ]
    assert pages[0].pages == 2 and pages[1].total == 3
    assert (await client.get("/certificates?page=abc")).status_code == 200, "a bad page number shows the first"


async def test_a_page_of_the_chain_downloaded_as_json_verifies_with_cleack_verify_chain(
    engines: Engines,
    sandbox_creator: Any,
    engine: AsyncEngine,
    live_server: LiveServer,
    client: httpx.AsyncClient,
    tmp_path: Path,
) -> None:
    draws = await run_draws(engines, sandbox_creator, engine, live_server, 3)
    chain = await save(client, "/certificates/chain.json", tmp_path / "chain.json")
    keys = await save(client, "/.well-known/cleack-signing-key", tmp_path / "keys.json")
    newest = await save(client, f"/certificates/{draws[-1].certificate_hash}.json", tmp_path / "newest.json")

    assert [cert["certificate_hash"] for cert in json.loads(chain.read_text())] == [d.certificate_hash for d in draws]
    result = verify(newest, "--keys", keys, "--chain", chain)
    assert result.exit_code == 0, result.output

    reordered = json.loads(chain.read_text())
    reordered[0], reordered[1] = reordered[1], reordered[0]
    (tmp_path / "reordered.json").write_text(json.dumps(reordered))
    result = verify(newest, "--keys", keys, "--chain", tmp_path / "reordered.json")
    assert result.exit_code != 0 and "✗" in result.output


async def test_two_draws_finishing_at_once_still_make_one_chain(
    engines: Engines, sandbox_creator: Any, engine: AsyncEngine, live_server: LiveServer
) -> None:
    creator = await sandbox_creator()
    posts = [await create_post(engine, live_server, creator, 2_000) for _ in range(2)]
    ids = [await create_draw(engine, creator, [post], RULES_OFF) for post in posts]

    ran = await asyncio.gather(*(engines.runner(owner=f"worker-{n}").run_next(asyncio.Event()) for n in range(2)))

    assert all(ran)
    draws = [await load_draw(engine, draw_id) for draw_id in ids]
    assert all(draw.status == "completed" for draw in draws)
    earlier, later = sorted(draws, key=lambda draw: draw.completed_at or 0)
    assert later.certificate is not None and earlier.certificate is not None
    assert later.certificate["previous_certificate_hash"] == earlier.certificate_hash
    assert earlier.certificate["previous_certificate_hash"] is None


async def eligible_and_excluded(engine: AsyncEngine, draw: Draw) -> tuple[DrawParticipant, DrawParticipant]:
    async with session_factory(engine)() as db:
        rows = list(await db.scalars(sa.select(DrawParticipant).where(DrawParticipant.draw_id == draw.id)))
    eligible = next(row for row in rows if row.is_eligible)
    excluded_names = {row.username for row in rows if not row.is_eligible} - {
        row.username for row in rows if row.is_eligible
    }
    excluded = next(row for row in rows if row.username in excluded_names)
    return eligible, excluded


async def test_a_participant_gets_a_proof_that_cleack_verify_accepts(
    engines: Engines,
    sandbox_creator: Any,
    engine: AsyncEngine,
    live_server: LiveServer,
    client: httpx.AsyncClient,
    tmp_path: Path,
) -> None:
    [draw] = await run_draws(engines, sandbox_creator, engine, live_server, 1)
    member, _ = await eligible_and_excluded(engine, draw)
    page = await client.get(f"/certificates/{draw.certificate_hash}")
    assert 'data-testid="proof-form"' in page.text

    found = await client.get(
        f"/certificates/{draw.certificate_hash}/proof",
        params={"platform": "sandbox", "username": "@" + member.username},
        headers={"HX-Request": "true"},
    )

    assert found.status_code == 200
    assert "is among the eligible entries" in found.text
    assert found.text.count('data-testid="proof-verdict"') >= 1
    assert found.text.lstrip().startswith('<section class="card" id="proof"'), "htmx gets the fragment alone"
    # An entrant may have several eligible entries (the rules allow more than one per person): one proof each.
    download, *_ = re.findall(r'href="(/certificates/[0-9a-f]{64}/proof\.json\?[^"]+)"', found.text)
    proof = await save(client, download.replace("&amp;", "&"), tmp_path / "proof.json")
    document = json.loads(proof.read_text())
    assert document["leaf"]["username"] == member.username and document["tree_size"] == draw.eligible_count
    assert document["tree"] == "eligible" and re.fullmatch(r"[0-9a-f]{32}", document["leaf"]["salt"])
    assert "comment" not in json.dumps(document), "the proof carries the entry's four fields, not its comment"
    certificate = await save(client, f"/certificates/{draw.certificate_hash}.json", tmp_path / "certificate.json")
    keys = await save(client, "/.well-known/cleack-signing-key", tmp_path / "keys.json")

    result = verify(certificate, "--keys", keys, "--proof", proof)

    assert result.exit_code == 0, result.output
    assert "✓ inclusion: " in result.output

    document["index"] = (document["index"] + 1) % document["tree_size"]
    (tmp_path / "moved.json").write_text(json.dumps(document))
    assert verify(certificate, "--keys", keys, "--proof", tmp_path / "moved.json").exit_code != 0


async def test_an_excluded_participant_gets_the_proof_of_their_verdict(
    engines: Engines,
    sandbox_creator: Any,
    engine: AsyncEngine,
    live_server: LiveServer,
    client: httpx.AsyncClient,
    tmp_path: Path,
) -> None:
    [draw] = await run_draws(engines, sandbox_creator, engine, live_server, 1)
    _, excluded = await eligible_and_excluded(engine, draw)
    url = f"/certificates/{draw.certificate_hash}/proof"

    page = await client.get(url, params={"platform": "sandbox", "username": excluded.username})
    as_json = await client.get(url + ".json", params={"platform": "sandbox", "username": excluded.username})

    assert page.status_code == 200
    assert f"@{excluded.username}'s entry" in page.text and "left out: keyword missing" in page.text
    document = as_json.json()
    assert document["tree"] == "collected" and document["verdict"] == "keyword_missing"
    assert document["tree_size"] == draw.participants_count
    certificate = await save(client, f"/certificates/{draw.certificate_hash}.json", tmp_path / "certificate.json")
    keys = await save(client, "/.well-known/cleack-signing-key", tmp_path / "keys.json")
    (tmp_path / "proof.json").write_text(json.dumps(document))
    result = verify(certificate, "--keys", keys, "--proof", tmp_path / "proof.json")
    assert result.exit_code == 0, result.output
    # The same entry claimed eligible, or excluded for another reason, does not lead to the sealed root.
    for verdict in ("eligible", "duplicate"):
        (tmp_path / "lie.json").write_text(json.dumps({**document, "verdict": verdict}))
        assert verify(certificate, "--keys", keys, "--proof", tmp_path / "lie.json").exit_code != 0


async def test_a_lookup_matches_the_handle_exactly_and_an_unknown_one_is_not_found(
    engines: Engines, sandbox_creator: Any, engine: AsyncEngine, live_server: LiveServer, client: httpx.AsyncClient
) -> None:
    [draw] = await run_draws(engines, sandbox_creator, engine, live_server, 1)
    member, _ = await eligible_and_excluded(engine, draw)

    for username in (member.username.upper(), "nobody_at_all"):
        page = await client.get(
            f"/certificates/{draw.certificate_hash}/proof", params={"platform": "sandbox", "username": username}
        )
        assert page.status_code == 200
        assert f"@{username} on sandbox is not among the collected entries" in page.text
        as_json = await client.get(
            f"/certificates/{draw.certificate_hash}/proof.json", params={"platform": "sandbox", "username": username}
        )
        assert as_json.status_code == 404
        assert as_json.json() == {"error": "no entry of this username was collected"}


async def test_a_lookup_with_a_missing_or_wrong_field_says_which(
    engines: Engines, sandbox_creator: Any, engine: AsyncEngine, live_server: LiveServer, client: httpx.AsyncClient
) -> None:
    [draw] = await run_draws(engines, sandbox_creator, engine, live_server, 1)
    url = f"/certificates/{draw.certificate_hash}/proof"

    wrong_platform = await client.get(url, params={"platform": "myspace", "username": "ana"})
    no_username = await client.get(url, params={"platform": "sandbox", "username": "  "})
    too_long = await client.get(url + ".json", params={"platform": "sandbox", "username": "a" * 200})

    assert wrong_platform.status_code == 400 and "Choose one of the draw&#39;s platforms." in wrong_platform.text
    assert no_username.status_code == 400 and "Enter the username you took part with." in no_username.text
    assert too_long.status_code == 400 and "username" in too_long.json()["fields"]
    assert (await client.get(f"/certificates/{'0' * 64}/proof?platform=sandbox&username=a")).status_code == 404


async def test_proof_lookups_are_rate_limited_per_address(
    engines: Engines, sandbox_creator: Any, engine: AsyncEngine, live_server: LiveServer, client: httpx.AsyncClient
) -> None:
    [draw] = await run_draws(engines, sandbox_creator, engine, live_server, 1)
    url = f"/certificates/{draw.certificate_hash}/proof.json"
    params = {"platform": "sandbox", "username": f"nobody_{uuid.uuid4().hex[:6]}"}

    answers = [(await client.get(url, params=params)).status_code for _ in range(PROOFS_PER_ADDRESS.max_hits + 1)]

    assert answers[:-1] == [404] * PROOFS_PER_ADDRESS.max_hits
    limited = await client.get(url, params=params)
    assert limited.status_code == 429 and int(limited.headers["retry-after"]) > 0


async def test_a_certificate_altered_in_the_database_shows_as_failing_on_its_page(
    engines: Engines, sandbox_creator: Any, engine: AsyncEngine, live_server: LiveServer, client: httpx.AsyncClient
) -> None:
    [draw] = await run_draws(engines, sandbox_creator, engine, live_server, 1)
    assert draw.certificate is not None
    altered = {**draw.certificate, "winners": [{**draw.certificate["winners"][0], "username": "mallory"}]}
    async with session_factory(engine)() as db:
        await db.execute(sa.update(Draw).where(Draw.id == draw.id).values(certificate=altered))
        await db.commit()

    page = await client.get(f"/certificates/{draw.certificate_hash}")

    assert page.status_code == 200
    assert "Some checks failed: this certificate is not valid." in page.text
    assert re.search(r'aria-label="failed">✗</span>\s*<span><strong>certificate hash</strong>', page.text)


async def test_list_rows_of_any_platform_and_any_username_get_their_proof(
    list_draw: Any, engines: Engines, engine: AsyncEngine, client: httpx.AsyncClient, tmp_path: Path
) -> None:
    rows = [
        ("x", "zoë🎉", "I want to win"),
        ("instagram", "Ana_Lima", "count me in"),
        ("instagram", "ana_lima", "me too"),
        ("tiktok", "東京の猫", "please"),
    ]
    csv_bytes = ("platform,username,comment\n" + "".join(f"{p},{u},{c}\n" for p, u, c in rows)).encode()
    _, _, draw_id = await list_draw(csv_bytes=csv_bytes)
    assert await engines.runner().run_next(asyncio.Event())
    draw = await load_draw(engine, uuid.UUID(draw_id))
    assert draw.status == "completed", draw.error
    url = f"/certificates/{draw.certificate_hash}/proof.json"
    certificate = await save(client, f"/certificates/{draw.certificate_hash}.json", tmp_path / "certificate.json")
    keys = await save(client, "/.well-known/cleack-signing-key", tmp_path / "keys.json")

    for platform, username, _ in rows:
        answer = await client.get(url, params={"platform": platform, "username": username})

        assert answer.status_code == 200, answer.text
        assert answer.json()["leaf"]["username"] == username and answer.json()["leaf"]["platform"] == platform
        disposition = answer.headers["content-disposition"]
        assert disposition.startswith('attachment; filename="') and "filename*=UTF-8''" in disposition
        assert disposition.isascii()
        (tmp_path / "proof.json").write_bytes(answer.content)
        assert verify(certificate, "--keys", keys, "--proof", tmp_path / "proof.json").exit_code == 0

    # The handle is matched exactly: Ana_Lima's proof is Ana_Lima's alone.
    exact = await client.get(url, params={"platform": "instagram", "username": "ANA_LIMA"})
    assert exact.status_code == 404
