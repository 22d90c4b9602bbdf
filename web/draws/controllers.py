"""The creator's draws: the dashboard, configuring a draw, watching it live, its results and exports."""

from __future__ import annotations

import datetime
import uuid
from collections.abc import AsyncIterator, Iterable
from typing import Any, TypeAlias

from litestar import Controller, Request, Response, get, post
from litestar.di import NamedDependency, Provide
from litestar.exceptions import NotFoundException
from litestar.params import FromPath, FromQuery
from litestar.response import ServerSentEvent, Stream, Template
from litestar.status_codes import HTTP_200_OK, HTTP_422_UNPROCESSABLE_ENTITY
from sqlalchemy.ext.asyncio import AsyncSession

from web import forms
from web.accounts.controllers import client_of
from web.credits.services import CreditsService
from web.draws.events import draw_snapshot, progress_stream
from web.draws.forms import (
    LIST_COLUMNS,
    LIST_MAX_BYTES,
    DrawSubmission,
    ListRefused,
    draw_config,
    parse_entry_list,
    read_draw_form,
    rules_turned_on,
    timezones,
    validate_settings,
)
from web.draws.models import Draw
from web.draws.services import (
    ACTIVE_STATUSES,
    ENTRIES_IN_CANONICAL_ORDER,
    EXCLUSION_LABELS,
    ChosenSources,
    DrawService,
    choose_sources,
    csv_line,
    draw_cost,
    recent_draws,
    rule_choices,
    safe_cell,
    stream_rows,
)
from web.fairness.entries import Entry
from web.fairness.entries_csv import COLUMNS as ENTRIES_COLUMNS
from web.fairness.entries_csv import COLUMNS_V2, EntryRow, entries_csv_row
from web.fairness.sampling import ALGORITHM
from web.htmx import redirect, render
from web.security import current_user, requires_login
from web.social.models import SocialAccount
from web.social.providers import PROVIDERS
from web.social.providers.base import Post, ProviderError
from web.social.services import AccountUnavailable, SocialService

Draws: TypeAlias = NamedDependency[DrawService]
Social: TypeAlias = NamedDependency[SocialService]

# The form carries a list of entries of up to 10 MB, and the rest of its fields.
CONFIGURE_MAX_BODY = LIST_MAX_BYTES + 1024 * 1024
WINNERS_COLUMNS = ("kind", "position", "platform", "platform_user_id", "username", "comment", "selected_at")


def provide_draws(db_session: NamedDependency[AsyncSession]) -> DrawService:
    return DrawService(db_session)


def provide_social(db_session: NamedDependency[AsyncSession], request: Request[Any, Any, Any]) -> SocialService:
    return SocialService(db_session, request.app.state.settings, request.app.state.http)


def utcnow() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


class DrawsController(Controller):
    path = "/draws"
    guards = [requires_login]
    dependencies = {
        "draws": Provide(provide_draws, sync_to_thread=False),
        "social": Provide(provide_social, sync_to_thread=False),
    }

    @get("/", name="draws:index")
    async def dashboard(self, request: Request[Any, Any, Any]) -> Template:
        user = request.state.user
        draws = await recent_draws(request.app.state.read_pool, user.id)
        return render(request, "draws/index.html", {"draws": draws, "balance": user.credit_balance})

    # Configuring a draw

    @get("/new", name="draws:new")
    async def new_page(
        self, request: Request[Any, Any, Any], social: Social, posts: FromQuery[str | None] = None
    ) -> Template:
        """The form; `?posts=all` lists every account's recent posts in the page (for browsers without scripts)."""
        user = current_user(request)
        assert user is not None
        accounts = await social.accounts_of(user.id)
        loaded = await _recent_posts(social, accounts) if posts == "all" else {}
        form = forms.Form(values={"winners_count": "1", "alternates_count": "0", "timezone": "UTC"})
        return render(
            request,
            "draws/new.html",
            _configure_context(form, accounts, loaded, ChosenSources(), user.credit_balance, None),
        )

    @get("/new/posts", name="draws:new-posts")
    async def account_posts(
        self, request: Request[Any, Any, Any], social: Social, account: FromQuery[uuid.UUID]
    ) -> Template:
        """One account's recent posts, as boxes to tick (an htmx fragment)."""
        user = current_user(request)
        assert user is not None
        found = await social.account_of(user.id, account)
        if found is None or not found.is_active:
            raise NotFoundException()
        loaded = await _recent_posts(social, [found])
        return Template(
            template_name="draws/_account_posts.html",
            context={"account": found, "loaded": loaded[found.id], "selected": set()},
        )

    @post("/new/preview", name="draws:preview", request_max_body_size=CONFIGURE_MAX_BODY)
    async def preview(self, request: Request[Any, Any, Any], social: Social) -> Template:
        """The cost and the rules the chosen sources allow, as the sources change (an htmx fragment)."""
        user = current_user(request)
        assert user is not None
        submission = await read_draw_form(request)
        form = validate_settings(submission, utcnow())
        sources, source_errors = await _sources(social, user.id, submission, form)
        accounts = await social.accounts_of(user.id)
        context = _configure_context(form, accounts, {}, sources, user.credit_balance, None)
        context["source_errors"] = source_errors
        return Template(template_name="draws/_preview.html", context=context)

    @post("/new", name="draws:create", request_max_body_size=CONFIGURE_MAX_BODY)
    async def create(
        self, request: Request[Any, Any, Any], social: Social, draws: Draws, db_session: NamedDependency[AsyncSession]
    ) -> Response[Any]:
        user = current_user(request)
        assert user is not None
        submission = await read_draw_form(request)
        form = validate_settings(submission, utcnow())
        sources, source_errors = await _sources(social, user.id, submission, form)
        for name, message in source_errors.items():
            form.error(name, message)
        accounts = await social.accounts_of(user.id)
        shown_platforms = sources.platforms or {account.platform for account in accounts}
        rules = rule_choices(shown_platforms, sources.entry_list.columns if sources.entry_list else None)
        unavailable = {rule.key: rule.reason for rule in rules if not rule.available}
        for key in rules_turned_on(form.cleaned):
            if key in unavailable:
                form.error(key, unavailable[key] or "The chosen platforms cannot check this.")
        balance = await CreditsService(db_session).balance(user.id)
        cost = draw_cost(sources.expected_entries)
        previewing = submission.values.get("action") == "preview"
        if not previewing and form.is_valid and balance < cost:
            form.error("cost", f"This draw costs {cost} credits and you have {balance}. Buy credits, then launch it.")
        if previewing or not form.is_valid:
            loaded = await _recent_posts(social, _ticked_accounts(accounts, submission.posts))
            context = _configure_context(form, accounts, loaded, sources, balance, rules)
            if sources.entry_list is None and submission.upload is not None and "entries_file" not in form.errors:
                context["reupload"] = True
            status = HTTP_200_OK if previewing else HTTP_422_UNPROCESSABLE_ENTITY
            return render(request, "draws/new.html", context, status_code=status)
        draw = await draws.create(
            user.id,
            title=form.cleaned["title"],
            sources=sources,
            config=draw_config(form.cleaned),
            scheduled_at=form.cleaned.get("scheduled_at"),
            client=client_of(request),
            settings=request.app.state.settings,
        )
        return redirect(request, f"/draws/{draw.id}")

    # Watching a draw

    @get("/{draw_id:uuid}", name="draws:show")
    async def show(self, request: Request[Any, Any, Any], draws: Draws, draw_id: FromPath[uuid.UUID]) -> Template:
        draw = await _owned(request, draws, draw_id)
        return render(request, "draws/show.html", await _live_context(draws, draw, polling=False))

    @get("/{draw_id:uuid}/live", name="draws:live")
    async def live(
        self,
        request: Request[Any, Any, Any],
        draws: Draws,
        draw_id: FromPath[uuid.UUID],
        poll: FromQuery[str | None] = None,
    ) -> Template:
        """Everything on the draw's page that changes: progress, then the results and the history."""
        draw = await _owned(request, draws, draw_id)
        context = await _live_context(draws, draw, polling=poll == "1")
        return render(request, "draws/show.html", context, fragment="draws/_live.html")

    @get("/{draw_id:uuid}/events", name="draws:events")
    async def events(
        self, request: Request[Any, Any, Any], draws: Draws, draw_id: FromPath[uuid.UUID]
    ) -> ServerSentEvent:
        """Progress as server-sent events until the draw is finished."""
        await _owned(request, draws, draw_id)
        pool = request.app.state.read_pool
        return progress_stream(request, draw_id, "owner", lambda: draw_snapshot(pool, draw_id))

    @post("/{draw_id:uuid}/cancel", name="draws:cancel")
    async def cancel(
        self, request: Request[Any, Any, Any], draws: Draws, draw_id: FromPath[uuid.UUID]
    ) -> Response[Any]:
        user = current_user(request)
        assert user is not None
        draw = await draws.cancel(user.id, draw_id, client_of(request), request.app.state.settings)
        if draw is None:
            raise NotFoundException()
        return redirect(request, f"/draws/{draw.id}")

    # Results

    @get("/{draw_id:uuid}/excluded", name="draws:excluded")
    async def excluded(
        self,
        request: Request[Any, Any, Any],
        draws: Draws,
        draw_id: FromPath[uuid.UUID],
        reason: FromQuery[str | None] = None,
        page: FromQuery[str | None] = None,
    ) -> Template:
        draw = await _owned(request, draws, draw_id)
        chosen = reason if reason in EXCLUSION_LABELS else None
        context = {
            "draw": draw,
            "labels": EXCLUSION_LABELS,
            "counts": await draws.exclusion_counts(draw.id),
            "reason": chosen,
            "excluded": await draws.excluded(draw.id, chosen, forms.clean_page(page)),
        }
        return render(request, "draws/excluded.html", context, fragment="draws/_excluded.html")

    @get("/{draw_id:uuid}/entries.csv", name="draws:entries-csv")
    async def entries_csv(self, request: Request[Any, Any, Any], draws: Draws, draw_id: FromPath[uuid.UUID]) -> Stream:
        """Every collected entry, in the canonical order, as `cleack verify` reads it."""
        draw = await _owned(request, draws, draw_id)
        rows = stream_rows(request.app.state.read_pool, ENTRIES_IN_CANONICAL_ORDER, draw.id)
        salted = (draw.certificate or {}).get("algorithm") != ALGORITHM
        return _csv_download(_entries_lines(rows, salted=salted), f"draw-{draw.id}-entries.csv")

    @get("/{draw_id:uuid}/winners.csv", name="draws:winners-csv")
    async def winners_csv(self, request: Request[Any, Any, Any], draws: Draws, draw_id: FromPath[uuid.UUID]) -> Stream:
        draw = await _owned(request, draws, draw_id)
        return _csv_download(_winners_lines(draw), f"draw-{draw.id}-winners.csv")


# Helpers


async def _owned(request: Request[Any, Any, Any], draws: DrawService, draw_id: uuid.UUID) -> Draw:
    user = current_user(request)
    assert user is not None
    draw = await draws.owned(user.id, draw_id)
    if draw is None:
        raise NotFoundException()
    return draw


async def _sources(
    social: SocialService, user_id: uuid.UUID, submission: DrawSubmission, form: forms.Form
) -> tuple[ChosenSources, dict[str, str]]:
    """The sources the form names, and what is wrong with them, by field."""
    posts, errors = await choose_sources(social, user_id, submission.posts, form.cleaned.get("post_urls", []))
    sources = ChosenSources(posts=posts)
    if submission.upload is not None:
        if posts:
            errors.setdefault("entries_file", "Draw from posts or from an uploaded list, not both.")
        else:
            data = await submission.upload.read(LIST_MAX_BYTES + 1)
            try:
                entry_list = parse_entry_list(data)
            except ListRefused as refused:
                errors.setdefault("entries_file", str(refused))
            else:
                if entry_list.problem_count:
                    form.cleaned["list_problems"] = entry_list
                    errors.setdefault(
                        "entries_file",
                        f"{entry_list.problem_count:,} row(s) of the file have problems (listed below). "
                        "Fix them and choose the file again.",
                    )
                else:
                    sources.entry_list = entry_list
    if not sources.posts and submission.upload is None and not errors:
        errors["post"] = "Choose at least one post, paste a post's address or upload a list of entries."
    return sources, errors


async def _recent_posts(
    social: SocialService, accounts: Iterable[SocialAccount]
) -> dict[uuid.UUID, tuple[list[Post], str | None]]:
    """Each account's recent posts, or why they could not be listed."""
    loaded: dict[uuid.UUID, tuple[list[Post], str | None]] = {}
    for account in accounts:
        try:
            loaded[account.id] = (await social.recent_posts(account), None)
        except AccountUnavailable as exc:
            loaded[account.id] = ([], exc.message)
        except ProviderError as exc:
            loaded[account.id] = ([], f"{PROVIDERS[account.platform].name} could not list the posts: {exc.message}")
    return loaded


def _ticked_accounts(accounts: list[SocialAccount], ticked: list[str]) -> list[SocialAccount]:
    ids = {value.partition(":")[0] for value in ticked}
    return [account for account in accounts if str(account.id) in ids]


def _configure_context(
    form: forms.Form,
    accounts: list[SocialAccount],
    loaded: dict[uuid.UUID, tuple[list[Post], str | None]],
    sources: ChosenSources,
    balance: int,
    rules: list[Any] | None,
) -> dict[str, Any]:
    if rules is None:
        shown_platforms = sources.platforms or {account.platform for account in accounts}
        rules = rule_choices(shown_platforms, sources.entry_list.columns if sources.entry_list else None)
    chosen = bool(sources.posts or sources.entry_list)
    return {
        "form": form,
        "accounts": accounts,
        "loaded": loaded,
        "selected": set(form.values.get("post", "").split("\n")) - {""},
        "rules": rules,
        "sources": sources,
        "cost": draw_cost(sources.expected_entries) if chosen else None,
        "balance": balance,
        "timezones": timezones(),
        "list_columns": LIST_COLUMNS,
        "list_problems": form.cleaned.get("list_problems"),
        "platform_names": {platform: provider.name for platform, provider in PROVIDERS.items()},
    }


async def _live_context(draws: DrawService, draw: Draw, *, polling: bool) -> dict[str, Any]:
    finished = draw.status not in ACTIVE_STATUSES
    return {
        "draw": draw,
        "polling": polling,
        "labels": EXCLUSION_LABELS,
        "history": await draws.history(draw.id),
        "counts": await draws.exclusion_counts(draw.id) if finished else {},
        "excluded": await draws.excluded(draw.id, None, 1) if finished else None,
        "reason": None,
    }


def _csv_download(lines: AsyncIterator[str], filename: str) -> Stream:
    return Stream(
        _encoded(lines),
        media_type="text/csv; charset=utf-8",
        headers={"content-disposition": f'attachment; filename="{filename}"', "cache-control": "no-store"},
    )


async def _encoded(lines: AsyncIterator[str]) -> AsyncIterator[bytes]:
    batch: list[str] = []
    async for line in lines:
        batch.append(line)
        if len(batch) >= 1000:
            yield "".join(batch).encode()
            batch.clear()
    yield "".join(batch).encode()


async def _entries_lines(rows: AsyncIterator[Any], *, salted: bool) -> AsyncIterator[str]:
    """The fairness entries CSV: identity cells exactly as hashed, free text made safe for spreadsheets; with each
    entry's salt for a cleack-draw-v2 draw (a v1 certificate's entries had none)."""
    yield csv_line(COLUMNS_V2 if salted else ENTRIES_COLUMNS)
    async for row in rows:
        entry = EntryRow(
            entry=Entry(row["platform"], row["platform_user_id"], row["username"], row["comment_id"] or ""),
            eligible=bool(row["is_eligible"]),
            exclusion_reason=row["exclusion_reason"],
            comment=safe_cell(row["comment"]) if row["comment"] else None,
            commented_at=row["commented_at"],
            salt=row["salt"],
        )
        yield csv_line(entries_csv_row(entry, salted=salted))


async def _winners_lines(draw: Draw) -> AsyncIterator[str]:
    yield csv_line(WINNERS_COLUMNS)
    for kind, picks in (("winner", draw.winners), ("alternate", draw.alternates)):
        for position, pick in enumerate(picks, start=1):
            cells = [
                kind,
                str(pick.get("position") or position),
                pick.get("platform") or "",
                pick.get("platform_user_id") or "",
                pick.get("username") or "",
                pick.get("comment") or "",
                pick.get("selected_at") or "",
            ]
            yield csv_line([safe_cell(str(cell)) for cell in cells])
