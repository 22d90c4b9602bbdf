"""Reading a draw's entries from the platforms, page by page, resumable from the last saved cursor.

Each page is stored with the cursor of the page after it in one transaction, guarded by the
lease, so that a worker taking the draw over resumes exactly where the last commit left it.
A task of its own reads the pages one after another while the writer stores them, a couple of
pages behind at most. Likers and followers come first, so that each comment gets its verdict
as it is stored, duplicates included (web.draws.rules): comments go through COPY into a
per-connection staging table, then into draw_participants with their verdicts.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import json
import logging
import uuid
from dataclasses import dataclass
from typing import Any

import asyncpg
import uuid_utils
from sqlalchemy.ext.asyncio import AsyncSession

from web.draws.lease import LEASE_HELD, DrawFailed, Lease, Progress, RunStopped, expected_entries, utcnow
from web.draws.models import Draw
from web.draws.rules import (
    STAGED_COLUMNS,
    STAGING_TABLE,
    STORE_OVERTAKEN,
    STORE_STAGED,
    STORE_STAGED_SKIPPING_STORED,
    has_blacklist,
    has_list,
    rule_arguments,
)
from web.social.models import SocialAccount
from web.social.providers import provider_class
from web.social.providers.base import (
    Comment,
    NotFound,
    Page,
    PlatformError,
    PlatformUser,
    Provider,
    ProviderError,
    RateLimited,
    TokenSet,
)
from web.social.services import AccountUnavailable, SocialService

log = logging.getLogger(__name__)

# A platform's Retry-After is honoured up to this long at a time.
MAX_PAUSE_SECONDS = 300.0
# Waits before retrying a page the platform failed to serve; then the draw fails.
RETRY_DELAYS = (1.0, 2.0, 4.0, 8.0)
# Fetching fills the progress bar up to here; the rules and the selection take the rest.
FETCH_SHARE = 90
FIELD_LIMIT = 128
# Pages read ahead of the one being written: enough for reading and writing to overlap, few enough to keep
# memory flat.
PAGES_AHEAD = 2
ENTRY_KEY = "uq_draw_participants_entry"

INSERT_ENGAGEMENTS = """
    INSERT INTO draw_engagements (draw_id, kind, source_index, platform_user_id)
    SELECT $1, $2, $3, unnest($4::text[]) ON CONFLICT DO NOTHING
"""
SAVE_CURSOR = """
    UPDATE draws SET fetch_cursor = $2::jsonb, progress = coalesce($3::jsonb, progress), participants_count = $4
    WHERE id = $1
    RETURNING CASE WHEN $3::jsonb IS NULL THEN NULL ELSE pg_notify('draw_progress', id::text) END
"""


@dataclass(frozen=True)
class FetchTask:
    """One list to read page by page: a post's comments or likers, or an account's followers."""

    kind: str  # comments, likes or follows
    source_index: int
    source: dict[str, Any]

    @property
    def key(self) -> str:
        return f"{self.kind}:{self.source_index}"


def fetch_tasks(sources: list[dict[str, Any]], config: dict[str, Any]) -> list[FetchTask]:
    """Likers of every post and followers of every account when the rules need them, then every post's comments."""
    rules = config.get("rules") or {}
    posts = [(index, source) for index, source in enumerate(sources) if source.get("kind") == "post"]
    tasks = []
    if rules.get("require_like"):
        tasks += [FetchTask("likes", index, source) for index, source in posts]
    if rules.get("require_follow"):
        scopes = follow_scopes(sources)
        follows = {scopes[index]: FetchTask("follows", scopes[index], source) for index, source in posts}
        tasks += list(follows.values())
    return tasks + [FetchTask("comments", index, source) for index, source in posts]


def follow_scopes(sources: list[dict[str, Any]]) -> list[int]:
    """Per source, the first source on the same account: the followers list its entries are checked against."""
    first: dict[str, int] = {}
    return [
        first.setdefault(str(source.get("account_id") or f"#{index}"), index) for index, source in enumerate(sources)
    ]


def _clip(value: str) -> str:
    return value[:FIELD_LIMIT]


class EntryFetcher:
    """Fetches whatever the draw still lacks, from the state saved in Draw.fetch_cursor."""

    def __init__(
        self, draw: Draw, lease: Lease, progress: Progress, writer: Any, social: SocialService, social_db: AsyncSession
    ) -> None:
        self.draw = draw
        self.lease = lease
        self.progress = progress
        self.writer = writer
        self.social = social
        self.social_db = social_db
        self.cursor: dict[str, Any] = {"tasks": {}, **(draw.fetch_cursor or {})}
        self.accounts: dict[str, SocialAccount] = {}
        self.rules: tuple[Any, ...] = ()

    async def fetch_everything(self) -> None:
        await self.writer.execute(STAGING_TABLE)
        # A page's commit need not wait for the disk: if the database itself crashes, the page and its cursor
        # are lost together, and the draw resumes from the cursor before them.
        await self.writer.execute("SET synchronous_commit = off")
        blacklist = await has_blacklist(self.writer, self.draw.id)
        self.rules = rule_arguments(
            self.draw.config,
            has_blacklist=blacklist,
            follow_scopes=follow_scopes(self.draw.sources),
            has_list=has_list(self.draw.sources),
        )
        self.progress.update(fetched=self.fetched(self.cursor["tasks"]))
        for task in fetch_tasks(self.draw.sources, self.draw.config):
            state = self.cursor["tasks"].setdefault(task.key, {"cursor": None, "fetched": 0, "pages": 0, "done": False})
            if not state["done"]:
                await self.fetch_task(task, state)

    async def fetch_task(self, task: FetchTask, state: dict[str, Any]) -> None:
        account = await self.account(task.source)
        name = provider_class(account.platform).name
        messages = {
            "comments": None,
            "likes": f"Checking who liked the post on {name}…",
            "follows": f"Checking who follows you on {name}…",
        }
        self.progress.update(stage="fetching", message=messages[task.kind])
        await self.progress.publish()
        pages: asyncio.Queue[Page[Any] | Exception] = asyncio.Queue(maxsize=PAGES_AHEAD)
        reader = asyncio.create_task(self.read_pages(account, task, state["cursor"], pages))
        try:
            while True:
                page = await pages.get()
                if isinstance(page, Exception):
                    raise page
                await self.save_page(task, state, page)
                if page.next_cursor is None:
                    return
                self.lease.check_shutdown()
        finally:
            reader.cancel()
            with contextlib.suppress(BaseException):
                await reader

    async def read_pages(
        self, account: SocialAccount, task: FetchTask, cursor: str | None, pages: asyncio.Queue[Page[Any] | Exception]
    ) -> None:
        """Every page from `cursor` on, each asked for as soon as the one before it has arrived, so that reading
        never waits for writing; at most PAGES_AHEAD pages wait to be written. A failure goes in the queue too,
        after the pages read before it."""
        try:
            while True:
                page = await self.fetch_page(account, task, cursor)
                if page.next_cursor is not None and page.next_cursor == cursor:
                    name = provider_class(account.platform).name
                    raise DrawFailed(f"{name} sent the same page of entries twice; please start a new draw.")
                await pages.put(page)
                if page.next_cursor is None:
                    return
                cursor = page.next_cursor
        except Exception as exc:  # handed to the writer, which raises it
            await pages.put(exc)

    async def fetch_page(self, account: SocialAccount, task: FetchTask, cursor: str | None) -> Page[Any]:
        """One page, through rate limits (paused, same cursor) and platform failures (retried, then failed)."""
        name = provider_class(account.platform).name
        post_id = str(task.source.get("post_id") or "")

        async def call(provider: Provider, token: TokenSet) -> Page[Any]:
            if task.kind == "comments":
                return await provider.comments(token, post_id, cursor)
            if task.kind == "likes":
                return await provider.likers(token, post_id, cursor)
            return await provider.followers(token, cursor)

        failures = 0
        while True:
            try:
                page = await self.social.call(account, call)
                await self.social_db.commit()
                return page
            except RateLimited as exc:
                await self.social_db.rollback()
                await self.pause(name, min(max(exc.retry_after, 1.0), MAX_PAUSE_SECONDS))
            except PlatformError as exc:
                await self.social_db.rollback()
                if failures == len(RETRY_DELAYS):
                    raise DrawFailed(f"{exc.message} We tried {failures + 1} times; please start a new draw.") from exc
                log.warning("platform page failed; retrying", extra={"draw": str(self.draw.id), "error": exc.message})
                await asyncio.sleep(RETRY_DELAYS[failures])
                failures += 1
            except AccountUnavailable as exc:
                raise DrawFailed(f"{exc.message} Reconnect your {name} account, then start a new draw.") from exc
            except NotFound as exc:
                where = task.source.get("post_url") or post_id
                raise DrawFailed(f"The post {where} is no longer on {name}.") from exc
            except ProviderError as exc:
                raise DrawFailed(f"{name} refused to list the entries: {exc.message}") from exc

    async def pause(self, platform_name: str, seconds: float) -> None:
        """Honour the platform's rate limit: the page shows when fetching resumes; the lease stays ours."""
        until = utcnow() + datetime.timedelta(seconds=seconds)
        self.progress.update(
            stage="paused",
            paused_until=until.isoformat(),
            message=f"{platform_name} asks us to slow down: fetching resumes at {until:%H:%M:%S} UTC.",
        )
        await self.progress.publish()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.lease.stopping.wait(), timeout=seconds)
        self.lease.check_shutdown()
        self.progress.update(stage="fetching", paused_until=None, message=None)
        await self.progress.publish()

    async def account(self, source: dict[str, Any]) -> SocialAccount:
        key = str(source.get("account_id"))
        if key not in self.accounts:
            try:
                account = await self.social_db.get(SocialAccount, uuid.UUID(key))
            except ValueError:
                account = None
            await self.social_db.commit()
            if account is None or account.user_id != self.draw.user_id:
                name = provider_class(str(source.get("platform"))).name
                raise DrawFailed(
                    f"The {name} account of this draw is no longer connected: reconnect it, then start a new draw."
                )
            self.accounts[key] = account
        return self.accounts[key]

    async def save_page(self, task: FetchTask, state: dict[str, Any], page: Page[Any]) -> None:
        """The page's rows and the next cursor, in one transaction, only while the lease is ours."""
        try:
            await self.save_page_once(task, state, page, skip_stored=False)
        except asyncpg.UniqueViolationError as exc:
            if exc.constraint_name != ENTRY_KEY:
                raise
            # The platform sent a comment again (a page re-read, a list repeating itself): nothing was written.
            await self.save_page_once(task, state, page, skip_stored=True)

    async def save_page_once(
        self, task: FetchTask, state: dict[str, Any], page: Page[Any], *, skip_stored: bool
    ) -> None:
        progress = None
        async with self.writer.transaction():
            if await self.writer.fetchval(LEASE_HELD, self.draw.id, self.lease.owner) is None:
                raise RunStopped
            if task.kind == "comments":
                stored = await self.store_comments(task, page.items, skip_stored=skip_stored)
            else:
                stored = await self.store_engagements(task, page.items)
            saved = {
                "cursor": page.next_cursor,
                "fetched": state["fetched"] + stored,
                "pages": state["pages"] + 1,
                "done": page.next_cursor is None,
            }
            tasks = {**self.cursor["tasks"], task.key: saved}
            fetched = self.fetched(tasks)
            if self.progress.due or saved["done"]:
                self.progress.update(fetched=fetched, percent=self.fetch_percent(fetched))
                progress = json.dumps(self.progress.state)
            await self.writer.execute(
                SAVE_CURSOR, self.draw.id, json.dumps({**self.cursor, "tasks": tasks}), progress, fetched
            )
        state.update(saved)
        self.cursor["tasks"] = tasks
        if progress is not None:
            self.progress.mark_written()

    async def store_comments(self, task: FetchTask, comments: list[Comment], *, skip_stored: bool) -> int:
        if not comments:
            return 0
        platform = str(task.source.get("platform"))
        records = [
            (
                # uuid_utils' own UUID, which asyncpg encodes by its bytes: a fraction of uuid.UUID's cost per row.
                uuid_utils.uuid7(),
                _clip(comment.author_id),
                _clip(comment.author_username),
                _clip(comment.id),
                comment.text,
                comment.created_at,
                len(comment.mentions),
                comment.author_followers_count,
                comment.author_is_business,
            )
            for comment in comments
        ]
        await self.writer.copy_records_to_table("incoming_entries", records=records, columns=STAGED_COLUMNS)
        statement = STORE_STAGED_SKIPPING_STORED if skip_stored else STORE_STAGED
        stored, overtakes = await self.writer.fetchrow(
            statement, self.draw.id, self.draw.secret, *self.rules, platform, task.source_index
        )
        if overtakes:
            await self.writer.execute(STORE_OVERTAKEN, self.draw.id, platform)
        return int(stored)

    async def store_engagements(self, task: FetchTask, users: list[PlatformUser]) -> int:
        kind = "like" if task.kind == "likes" else "follow"
        status = await self.writer.execute(
            INSERT_ENGAGEMENTS, self.draw.id, kind, task.source_index, [_clip(user.id) for user in users]
        )
        return int(status.rsplit(" ", 1)[1])

    def fetched(self, tasks: dict[str, Any]) -> int:
        """Entries gathered so far: an uploaded list's rows and every comment stored."""
        listed = expected_entries([source for source in self.draw.sources if source.get("kind") == "list"])
        return listed + sum(state["fetched"] for key, state in tasks.items() if key.startswith("comments:"))

    def fetch_percent(self, fetched: int) -> int:
        expected = self.progress.state.get("expected")
        return min(FETCH_SHARE - 1, fetched * FETCH_SHARE // expected) if expected else 0
