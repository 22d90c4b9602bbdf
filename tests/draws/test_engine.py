"""The draw engine against the live sandbox platform: entries, rules, winners, certificate, credits, failures."""

from __future__ import annotations

import asyncio
import re
import uuid
from collections import Counter
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.conftest import LiveServer
from tests.draws.sandbox_draws import (
    RULES_OFF,
    Engines,
    SandboxCreator,
    create_draw,
    create_post,
    engines,
    entry_counts,
    entry_rows,
    history_actions,
    load_draw,
    sandbox_creator,
    wait_for,
)
from web.accounts.services import Client
from web.blacklist.models import BlacklistEntry
from web.certificates.keys import published_key_set
from web.credits.models import Credit
from web.credits.services import CreditsService
from web.db import session_factory
from web.draws import fetching
from web.draws.lease import Lease
from web.draws.models import DrawParticipant
from web.draws.rules import SUSPICIOUS_WORDS
from web.draws.services import DrawService
from web.fairness import parse_key_set, verify_certificate
from web.sandbox.services import SandboxService
from web.social.providers import provider_for
from web.social.providers.base import Page
from web.social.services import SocialService, platform_http_client

__all__ = ["engines", "sandbox_creator"]  # fixtures used below

EVERY_RULE: dict[str, Any] = {
    "filters": {"min_followers": 30, "exclude_suspicious": True, "exclude_businesses": True},
    "rules": {
        "require_like": True,
        "require_comment": True,
        "require_follow": True,
        "comment_keywords": ["amazing", "win"],
        "min_mentions": 1,
        "one_entry_per_user": True,
    },
    "winners_count": 3,
    "alternates_count": 2,
}


async def balance(engine: AsyncEngine, creator: SandboxCreator) -> int:
    async with session_factory(engine)() as db:
        return await CreditsService(db).balance(creator.user.id)


async def ledger_keys(engine: AsyncEngine, draw_id: uuid.UUID) -> list[str]:
    async with session_factory(engine)() as db:
        rows = await db.scalars(
            sa.select(Credit.idempotency_key).where(Credit.idempotency_key.like(f"draw:{draw_id}:%"))
        )
        return sorted(rows)


async def fetch_all(
    engine: AsyncEngine, live_server: LiveServer, creator: SandboxCreator, kind: str, post_id: str
) -> list[Any]:
    """Read a whole list straight from the platform, as an outsider would check the draw."""
    async with platform_http_client() as http, session_factory(engine)() as db:
        social = SocialService(db, live_server.settings, http)
        account = await social.account_of(creator.user.id, creator.account.id)
        assert account is not None
        token = await social.fresh_token(account)
        provider = provider_for(live_server.settings, "sandbox", http)
        items: list[Any] = []
        cursor = None
        page: Page[Any]
        while True:
            if kind == "comments":
                page = await provider.comments(token, post_id, cursor)
            elif kind == "likers":
                page = await provider.likers(token, post_id, cursor)
            else:
                page = await provider.followers(token, cursor)
            items += page.items
            cursor = page.next_cursor
            if cursor is None:
                return items


def expected_verdicts(
    comments: list[Any], likers: set[str], followers: set[str], blocked: set[str], config: dict[str, Any]
) -> dict[str, str | None]:
    """The rules of draws.md applied in plain Python: each comment's one reason (None when eligible), in their order.
    A person's entry that counts is their earliest by time, then by comment id, wherever the platform listed it."""
    rules, filters = config["rules"], config["filters"]
    earliest: dict[str, int] = {}
    for position, comment in sorted(enumerate(comments), key=lambda pair: (pair[1].created_at, pair[1].id)):
        earliest.setdefault(comment.author_id, position)
    words = "|".join(SUSPICIOUS_WORDS)
    verdicts: dict[str, str | None] = {}
    for position, comment in enumerate(comments):
        name = comment.author_username
        followers_count = comment.author_followers_count
        if name.lower() in blocked:
            reason: str | None = "blacklisted"
        elif rules["one_entry_per_user"] and earliest[comment.author_id] != position:
            reason = "duplicate"
        elif rules["comment_keywords"] and not any(word in comment.text.lower() for word in rules["comment_keywords"]):
            reason = "keyword_missing"
        elif len(comment.mentions) < rules["min_mentions"]:
            reason = "too_few_mentions"
        elif filters["min_followers"] and (followers_count or 0) < filters["min_followers"]:
            reason = "too_few_followers"
        elif filters["exclude_suspicious"] and (
            (re.search(words, name.lower()) and re.search(r"[0-9]{2,}$", name))
            or re.search(r"[0-9]{6,}", name)
            or followers_count == 0
        ):
            reason = "suspicious"
        elif filters["exclude_businesses"] and comment.author_is_business:
            reason = "business_account"
        elif rules["require_like"] and comment.author_id not in likers:
            reason = "not_liked"
        elif rules["require_follow"] and comment.author_id not in followers:
            reason = "not_following"
        else:
            reason = None
        verdicts[comment.id] = reason
    return verdicts


async def platform_verdicts(
    engine: AsyncEngine,
    live_server: LiveServer,
    creator: SandboxCreator,
    post_id: str,
    comments: list[Any],
    blocked: set[str] | None = None,
) -> dict[str, str | None]:
    """What EVERY_RULE makes of `comments`, with the post's likers and followers read from the platform."""
    likers = {user.id for user in await fetch_all(engine, live_server, creator, "likers", post_id)}
    followers = {user.id for user in await fetch_all(engine, live_server, creator, "followers", post_id)}
    return expected_verdicts(comments, likers, followers, blocked or set(), EVERY_RULE)


async def stored_verdicts(engine: AsyncEngine, draw_id: uuid.UUID) -> dict[str, str | None]:
    async with session_factory(engine)() as db:
        rows = await db.execute(
            sa.select(DrawParticipant.comment_id, DrawParticipant.exclusion_reason).where(
                DrawParticipant.draw_id == draw_id
            )
        )
        return {str(comment_id): reason for comment_id, reason in rows}


async def test_a_draw_over_ten_thousand_comments_completes_with_winners_and_exact_counts(
    engines: Engines, sandbox_creator: Any, engine: AsyncEngine, live_server: LiveServer
) -> None:
    creator = await sandbox_creator()
    post = await create_post(engine, live_server, creator, 10_000)
    comments = await fetch_all(engine, live_server, creator, "comments", post.post_id)
    blocked = comments[7].author_username
    async with session_factory(engine)() as db:
        db.add(BlacklistEntry(user_id=creator.user.id, username=blocked.lower(), platform="sandbox"))
        await db.commit()
    before = await balance(engine, creator)
    draw_id = await create_draw(engine, creator, [post], EVERY_RULE)

    assert await engines.runner().run_next(asyncio.Event())

    draw = await load_draw(engine, draw_id)
    assert draw.status == "completed", draw.error
    verdicts = await platform_verdicts(engine, live_server, creator, post.post_id, comments, {blocked.lower()})
    assert await stored_verdicts(engine, draw_id) == verdicts
    expected = Counter(verdicts.values())
    eligible = expected.pop(None)
    assert len([reason for reason in expected if expected[reason]]) >= 6, expected
    assert draw.progress["excluded"] == dict(expected)
    assert (draw.participants_count, draw.eligible_count) == (10_000, eligible)
    assert draw.certificate is not None
    assert draw.certificate["counts"] == {"participants": 10_000, "excluded": dict(expected), "eligible": eligible}
    async with session_factory(engine)() as db:
        stored = dict(
            (
                await db.execute(
                    sa.select(DrawParticipant.exclusion_reason, sa.func.count())
                    .where(DrawParticipant.draw_id == draw_id)
                    .group_by(DrawParticipant.exclusion_reason)
                )
            ).all()
        )
    assert stored == {None: eligible, **expected}
    assert await entry_counts(engine, draw_id) == (10_000, 10_000)

    assert [winner["position"] for winner in draw.winners] == [1, 2, 3]
    assert len(draw.alternates) == 2
    winners_ids = {winner["entry_id"] for winner in draw.winners + draw.alternates}
    assert len(winners_ids) == 5
    by_id = {comment.id: comment for comment in comments}
    for winner in draw.winners:
        assert by_id[winner["entry_id"]].author_username == winner["username"]
        assert by_id[winner["entry_id"]].text == winner["comment"]
        assert winner["selected_at"]

    report = verify_certificate(
        draw.certificate,
        rows=await entry_rows(engine, draw_id),
        keys=parse_key_set(published_key_set(live_server.settings)),
        witnesses=[live_server.witness.key],
    )
    assert report.ok, report
    assert draw.certificate_hash == draw.certificate["certificate_hash"]
    assert draw.progress["stage"] == "done" and draw.progress["percent"] == 100
    assert await history_actions(engine, draw_id) == ["started", "sealed", "completed"]
    assert await ledger_keys(engine, draw_id) == [f"draw:{draw_id}:debit"]
    assert await balance(engine, creator) == before - 1

    # The finished draw is never claimed again, and running it again changes nothing.
    assert await engines.runner().claim() is None
    assert await engines.engine.run(Lease(draw_id, "another-worker", 30.0)) == "stopped"
    again = await load_draw(engine, draw_id)
    assert (again.winners, again.certificate_hash, again.completed_at) == (
        draw.winners,
        draw.certificate_hash,
        draw.completed_at,
    )
    assert await entry_counts(engine, draw_id) == (10_000, 10_000)
    assert await ledger_keys(engine, draw_id) == [f"draw:{draw_id}:debit"]
    assert await history_actions(engine, draw_id) == ["started", "sealed", "completed"]


async def test_a_platform_listing_newest_first_leaves_each_person_their_earliest_entry(
    engines: Engines, sandbox_creator: Any, engine: AsyncEngine, live_server: LiveServer
) -> None:
    creator = await sandbox_creator()
    post = await create_post(engine, live_server, creator, 6_000, newest_first=True)
    comments = await fetch_all(engine, live_server, creator, "comments", post.post_id)
    assert comments[0].created_at > comments[-1].created_at
    draw_id = await create_draw(engine, creator, [post], EVERY_RULE)

    assert await engines.runner().run_next(asyncio.Event())

    draw = await load_draw(engine, draw_id)
    assert draw.status == "completed", draw.error
    verdicts = await platform_verdicts(engine, live_server, creator, post.post_id, comments)
    # Each repeat reached us before its person's earliest entry, mostly on an earlier page of 1,000.
    assert list(verdicts.values()).count("duplicate") > 300
    assert await stored_verdicts(engine, draw_id) == verdicts
    expected = Counter(verdicts.values())
    eligible = expected.pop(None)
    assert draw.progress["excluded"] == dict(expected)
    assert draw.certificate is not None
    assert draw.certificate["counts"] == {"participants": 6_000, "excluded": dict(expected), "eligible": eligible}


async def test_comments_the_platform_sends_twice_are_stored_once(
    engines: Engines, sandbox_creator: Any, engine: AsyncEngine, live_server: LiveServer
) -> None:
    creator = await sandbox_creator()
    post = await create_post(engine, live_server, creator, 3_500, overlap=120)
    sent = await fetch_all(engine, live_server, creator, "comments", post.post_id)
    comments = list({comment.id: comment for comment in sent}.values())
    assert len(sent) > len(comments) == 3_500
    draw_id = await create_draw(engine, creator, [post], EVERY_RULE)

    assert await engines.runner().run_next(asyncio.Event())

    draw = await load_draw(engine, draw_id)
    assert draw.status == "completed", draw.error
    assert await stored_verdicts(engine, draw_id) == await platform_verdicts(
        engine, live_server, creator, post.post_id, comments
    )
    assert draw.participants_count == 3_500 and draw.progress["fetched"] == 3_500
    assert draw.certificate is not None and draw.certificate["counts"]["participants"] == 3_500


async def stages_seen(engine: AsyncEngine, draw_id: uuid.UUID, run: asyncio.Task[Any]) -> list[dict[str, Any]]:
    """Every distinct progress the draw page could have shown while `run` was going."""
    seen: list[dict[str, Any]] = []
    while not run.done():
        progress = (await load_draw(engine, draw_id)).progress
        if not seen or seen[-1] != progress:
            seen.append(progress)
        await asyncio.sleep(0.02)
    return seen


async def test_a_rate_limited_draw_pauses_then_resumes_the_same_cursor_without_duplicates(
    engines: Engines, sandbox_creator: Any, engine: AsyncEngine, live_server: LiveServer
) -> None:
    creator = await sandbox_creator()
    post = await create_post(engine, live_server, creator, 4_500, rate_limit={"requests": 2, "window_seconds": 2})
    draw_id = await create_draw(engine, creator, [post])

    run = asyncio.create_task(engines.runner().run_next(asyncio.Event()))
    seen = await stages_seen(engine, draw_id, run)
    assert run.result()

    paused = [progress for progress in seen if progress.get("stage") == "paused"]
    assert paused, seen
    assert paused[0]["paused_until"] and "slow down" in paused[0]["message"]
    draw = await load_draw(engine, draw_id)
    assert draw.status == "completed", draw.error
    assert draw.participants_count == 4_500
    assert await entry_counts(engine, draw_id) == (4_500, 4_500)
    assert await history_actions(engine, draw_id) == ["started", "sealed", "completed"]


async def test_a_page_the_platform_fails_is_retried_and_the_draw_completes(
    engines: Engines, sandbox_creator: Any, engine: AsyncEngine, live_server: LiveServer, monkeypatch: Any
) -> None:
    monkeypatch.setattr(fetching, "RETRY_DELAYS", (0.05, 0.05, 0.05, 0.05))
    creator = await sandbox_creator()
    post = await create_post(
        engine, live_server, creator, 3_000, fail_pages={"every": 2, "status": 503, "times": 2}, malformed_every=3
    )
    draw_id = await create_draw(engine, creator, [post])

    assert await engines.runner().run_next(asyncio.Event())

    draw = await load_draw(engine, draw_id)
    assert draw.status == "completed", draw.error
    assert await entry_counts(engine, draw_id) == (3_000, 3_000)


async def test_a_platform_that_keeps_failing_fails_the_draw_and_gives_the_credits_back(
    engines: Engines, sandbox_creator: Any, engine: AsyncEngine, live_server: LiveServer, monkeypatch: Any
) -> None:
    monkeypatch.setattr(fetching, "RETRY_DELAYS", (0.05, 0.05))
    creator = await sandbox_creator()
    post = await create_post(engine, live_server, creator, 3_000, fail_pages={"every": 2, "status": 502, "times": 50})
    before = await balance(engine, creator)
    draw_id = await create_draw(engine, creator, [post])

    assert await engines.runner().run_next(asyncio.Event())

    draw = await load_draw(engine, draw_id)
    assert draw.status == "failed"
    assert draw.error is not None and "HTTP 502" in draw.error and "3 times" in draw.error
    assert draw.progress["stage"] == "done" and draw.progress["message"] == draw.error
    assert await history_actions(engine, draw_id) == ["started", "failed"]
    assert await ledger_keys(engine, draw_id) == [f"draw:{draw_id}:debit", f"draw:{draw_id}:refund"]
    assert await balance(engine, creator) == before


async def test_a_revoked_connection_fails_the_draw_asking_to_reconnect_and_refunds(
    engines: Engines, sandbox_creator: Any, engine: AsyncEngine, live_server: LiveServer
) -> None:
    creator = await sandbox_creator()
    post = await create_post(engine, live_server, creator, 2_000)
    before = await balance(engine, creator)
    draw_id = await create_draw(engine, creator, [post])
    async with session_factory(engine)() as db:
        await SandboxService(db, live_server.settings).revoke_account_grants(creator.sandbox_account.id)

    assert await engines.runner().run_next(asyncio.Event())

    draw = await load_draw(engine, draw_id)
    assert draw.status == "failed"
    assert draw.error is not None and "Reconnect your Sandbox account" in draw.error
    assert await ledger_keys(engine, draw_id) == [f"draw:{draw_id}:debit", f"draw:{draw_id}:refund"]
    assert await balance(engine, creator) == before
    assert await history_actions(engine, draw_id) == ["started", "failed"]


async def test_cancelling_a_running_draw_stops_it_and_refunds_once(
    engines: Engines, sandbox_creator: Any, engine: AsyncEngine, live_server: LiveServer
) -> None:
    creator = await sandbox_creator()
    post = await create_post(engine, live_server, creator, 20_000, slow_ms=150)
    before = await balance(engine, creator)
    draw_id = await create_draw(engine, creator, [post])
    runner = engines.runner()
    lease = await runner.claim()
    assert lease is not None
    run = asyncio.create_task(runner.run_claimed(lease))

    async def fetching_started() -> bool:
        return (await entry_counts(engine, draw_id))[0] >= 2_000

    await wait_for(fetching_started)
    async with session_factory(engine)() as db:
        await DrawService(db).cancel(
            creator.user.id, draw_id, Client(ip="203.0.113.9", user_agent="test"), live_server.settings
        )
    assert await asyncio.wait_for(run, timeout=20) == "stopped"

    stored = await entry_counts(engine, draw_id)
    await asyncio.sleep(0.5)
    assert await entry_counts(engine, draw_id) == stored
    assert stored[0] < 20_000 and stored[0] == stored[1]
    draw = await load_draw(engine, draw_id)
    assert draw.status == "cancelled" and draw.winners == [] and draw.certificate is None
    assert await history_actions(engine, draw_id) == ["started", "cancelled"]
    assert await ledger_keys(engine, draw_id) == [f"draw:{draw_id}:debit", f"draw:{draw_id}:refund"]
    assert await balance(engine, creator) == before


async def test_a_creator_without_enough_credits_gets_a_failed_draw_and_pays_nothing(
    engines: Engines, sandbox_creator: Any, engine: AsyncEngine, live_server: LiveServer
) -> None:
    creator = await sandbox_creator()
    post = await create_post(engine, live_server, creator, 250_000)
    before = await balance(engine, creator)
    draw_id = await create_draw(engine, creator, [post])

    assert await engines.runner().claim() is None

    draw = await load_draw(engine, draw_id)
    assert draw.status == "failed"
    assert draw.error == f"Not enough credits: this draw needs 4, you have {before}."
    assert await ledger_keys(engine, draw_id) == []
    assert await balance(engine, creator) == before
    assert await history_actions(engine, draw_id) == ["failed"]


async def test_an_uploaded_list_goes_straight_to_the_rules(
    engines: Engines, sandbox_creator: Any, engine: AsyncEngine, live_server: LiveServer
) -> None:
    creator = await sandbox_creator()
    config = {**RULES_OFF, "rules": {**RULES_OFF["rules"], "one_entry_per_user": True, "comment_keywords": ["win"]}}
    rows = [
        ("ana", "I want to WIN"),
        ("bob", "nice"),
        ("ana", "win again"),
        ('cy "the \\ one"', "win please"),
        ("dée\n李", "win"),
    ]
    sources = [{"kind": "list", "platform": "list", "rows": len(rows), "sha256": "ab" * 32}]
    draw_id = await create_draw(engine, creator, [], config, sources=sources)
    async with session_factory(engine)() as db:
        for number, (name, text) in enumerate(rows, 1):
            db.add(
                DrawParticipant(
                    draw_id=draw_id,
                    platform="list",
                    platform_user_id=name,
                    username=name,
                    comment_id=f"row-{number}",
                    comment=text,
                )
            )
        await db.commit()

    assert await engines.runner().run_next(asyncio.Event())

    draw = await load_draw(engine, draw_id)
    assert draw.status == "completed", draw.error
    assert draw.progress["excluded"] == {"duplicate": 1, "keyword_missing": 1}
    assert (draw.participants_count, draw.eligible_count) == (5, 3)
    assert {winner["username"] for winner in draw.winners} == {"ana", 'cy "the \\ one"', "dée\n李"}
    assert next(winner for winner in draw.winners if winner["username"] == "ana")["entry_id"] == "row-1"
    # The Merkle roots PostgreSQL helped compute are those the fairness core computes from the entries.
    assert draw.certificate is not None
    report = verify_certificate(
        draw.certificate,
        rows=await entry_rows(engine, draw_id),
        keys=parse_key_set(published_key_set(live_server.settings)),
        witnesses=[live_server.witness.key],
    )
    assert report.first_failure is None, report
    assert {check.name for check in report.checks} >= {"merkle root", "collected root", "exclusions"}


async def test_a_draw_nobody_is_eligible_for_completes_without_winners(
    engines: Engines, sandbox_creator: Any, engine: AsyncEngine, live_server: LiveServer
) -> None:
    creator = await sandbox_creator()
    post = await create_post(engine, live_server, creator, 0)
    draw_id = await create_draw(engine, creator, [post])

    assert await engines.runner().run_next(asyncio.Event())

    draw = await load_draw(engine, draw_id)
    assert draw.status == "completed"
    assert draw.winners == [] and draw.eligible_count == 0
    assert draw.progress["message"] == "No entry met the rules: there is no winner."
