"""The admin area over HTTP: hidden from everyone but administrators, every action audited, refusals explained.

Requests go over the real socket to the live server; state is read back from PostgreSQL with fresh sessions.
"""

from __future__ import annotations

import asyncio
import datetime
import html
import json
import re
import uuid
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.conftest import Creator, LiveServer, csrf_token, hx_location, log_in, post_form
from web.accounts.models import Session, User
from web.admin.models import AdminNote, AuditLog, SystemMetric
from web.app import create_app
from web.billing.models import Subscription
from web.credits.models import Credit
from web.credits.services import WELCOME_BONUS
from web.db import session_factory

CLIENT_IP = "127.0.0.1"
PER_PAGE = 25


# Reading the database back


async def fetch(engine: AsyncEngine, statement: Any) -> list[Any]:
    async with session_factory(engine)() as session:
        return list((await session.execute(statement)).all())


async def execute(engine: AsyncEngine, statement: Any) -> None:
    async with session_factory(engine)() as session:
        await session.execute(statement)
        await session.commit()


async def objects(engine: AsyncEngine, statement: Any) -> list[Any]:
    async with session_factory(engine)() as session:
        return list(await session.scalars(statement))


async def audit_rows(engine: AsyncEngine) -> list[AuditLog]:
    return await objects(engine, sa.select(AuditLog).order_by(AuditLog.created_at, AuditLog.id))


async def user_row(engine: AsyncEngine, user_id: uuid.UUID) -> User:
    found = await objects(engine, sa.select(User).where(User.id == user_id))
    assert found, f"no user {user_id}"
    return found[0]


async def ledger(engine: AsyncEngine, user_id: uuid.UUID) -> list[Credit]:
    return await objects(
        engine, sa.select(Credit).where(Credit.user_id == user_id).order_by(Credit.created_at, Credit.id)
    )


async def notes_of(engine: AsyncEngine, user_id: uuid.UUID) -> list[AdminNote]:
    return await objects(
        engine, sa.select(AdminNote).where(AdminNote.user_id == user_id).order_by(AdminNote.created_at)
    )


async def snapshot(engine: AsyncEngine) -> dict[str, Any]:
    """Everything an admin action could change."""
    return {
        "users": sorted(map(tuple, await fetch(engine, sa.select(User.id, User.role, User.credit_balance)))),
        "sessions": sorted(map(tuple, await fetch(engine, sa.select(Session.id, Session.user_id)))),
        "credits": sorted(map(tuple, await fetch(engine, sa.select(Credit.id, Credit.amount, Credit.balance)))),
        "notes": sorted(map(tuple, await fetch(engine, sa.select(AdminNote.id, AdminNote.is_flagged, AdminNote.note)))),
        "audit": sorted(map(tuple, await fetch(engine, sa.select(AuditLog.id, AuditLog.action)))),
        "metrics": sorted(map(tuple, await fetch(engine, sa.select(SystemMetric.id, SystemMetric.value)))),
    }


async def add_users(engine: AsyncEngine, *specs: dict[str, Any]) -> list[uuid.UUID]:
    """Users inserted directly (no password hashing), each spec being User columns."""
    async with session_factory(engine)() as session:
        users = [User(password_hash="not-a-real-hash", email_verified=True, **spec) for spec in specs]
        session.add_all(users)
        await session.commit()
        return [user.id for user in users]


# Reading pages


def form_html(page: str, action: str) -> str:
    found = re.search(rf'<form\b[^>]*action="{re.escape(action)}"[^>]*>(.*?)</form>', page, re.S)
    assert found, f"no form posting to {action}"
    return found.group(1)


def error_in(page: str, action: str, name: str) -> str:
    """The message in the error paragraph of field `name`, inside the form that posts to `action`."""
    form = form_html(page, action)
    found = re.search(rf'<p\b[^>]*id="(?:[\w-]+-)?{name}-error"[^>]*>(.*?)</p>', form, re.S)
    assert found, f"no error paragraph for {name} in the form posting to {action}"
    return html.unescape(found.group(1)).strip()


def request_key_in(page: str) -> str:
    found = re.search(r'name="request_key" value="([^"]*)"', page)
    assert found, "the grant form carries a request key"
    return found.group(1)


def count_of(page: str, noun: str) -> int:
    """The "N users" / "N entries" line at the top of a table."""
    found = re.search(rf"([\d,]+) {noun}", page)
    assert found, f"no count of {noun}"
    return int(found.group(1).replace(",", ""))


def table_body(page: str) -> str:
    found = re.search(r"<tbody\b[^>]*>(.*?)</tbody>", page, re.S)
    return found.group(1) if found else ""


def stat(page: str, testid: str) -> int:
    found = re.search(rf'data-testid="{testid}"[^>]*>([\d,]+)<', page)
    assert found, f"no {testid} on the page"
    return int(found.group(1).replace(",", ""))


def is_login_redirect(response: httpx.Response) -> bool:
    return response.status_code == 303 and response.headers["location"].startswith("/login")


# Fixtures


@pytest.fixture
async def admin(logged_in: Any) -> tuple[httpx.AsyncClient, Creator]:
    return await logged_in(role="admin", email="root@cleack.test")


@pytest.fixture
async def target(make_user: Any) -> Creator:
    return await make_user()


async def open_user_page(client: httpx.AsyncClient, user_id: uuid.UUID) -> str:
    page = await client.get(f"/admin/users/{user_id}")
    assert page.status_code == 200, page.text
    return page.text


# 1. Nobody but an administrator knows the admin area exists

PATH_PARAMETER = re.compile(r"\{(\w+)(?::\w+)?\}")
KNOWN_ROUTES = {
    ("GET", "/admin"),
    ("GET", "/admin/users"),
    ("GET", "/admin/users/{user_id:uuid}"),
    ("POST", "/admin/users/{user_id:uuid}/ban"),
    ("POST", "/admin/users/{user_id:uuid}/unban"),
    ("POST", "/admin/users/{user_id:uuid}/grant"),
    ("POST", "/admin/users/{user_id:uuid}/notes"),
    ("POST", "/admin/notes/{note_id:uuid}/flag"),
    ("POST", "/admin/notes/{note_id:uuid}/unflag"),
    ("GET", "/admin/audit"),
}


def admin_routes(live_server: LiveServer) -> list[tuple[str, str]]:
    """Every (method, path) the app serves under /admin, read from its route list."""
    app = create_app(live_server.settings)
    found = {
        (method, route.path)
        for route in app.routes
        if route.path == "/admin" or route.path.startswith("/admin/")
        for method in route.methods
        if method not in {"OPTIONS", "HEAD"}
    }
    assert found >= KNOWN_ROUTES, "the route list is not read right"
    return sorted(found)


def concrete(path: str, values: dict[str, str]) -> str:
    def fill(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in values:
            pytest.fail(f"{path} takes a new path parameter {name!r}: give it a real value in this test")
        return values[name]

    return PATH_PARAMETER.sub(fill, path)


# Everything a POST handler could want, filled in validly, so that only the guard can refuse it.
VALID_FIELDS = {
    "reason": "testing the guard",
    "amount": "5",
    "request_key": "0b9f8f5e-8c3e-4f4e-9a1b-2c3d4e5f6a7b",
    "note": "a note from someone who is not an admin",
    "flagged": "on",
}


@pytest.fixture
async def admin_world(admin: Any, target: Creator, engine: AsyncEngine) -> dict[str, str]:
    """A target user with a note and a flagged note, so that the path parameters name things that exist."""
    admin_client, admin_user = admin
    for flagged in ("", "on"):
        response = await post_form(
            admin_client, f"/admin/users/{target.id}/notes", {"note": "existing note", "flagged": flagged}
        )
        assert response.status_code == 303
    notes = await notes_of(engine, target.id)
    return {"user_id": str(target.id), "note_id": str(notes[0].id), "admin_id": str(admin_user.id)}


@pytest.mark.parametrize("who", ["anonymous", "creator", "premium", "banned-then-anonymous"])
async def test_every_admin_route_is_a_404_for_anyone_but_an_admin_and_changes_nothing(
    who: str, live_server: LiveServer, admin_world: dict[str, str], logged_in: Any, new_client: Any, engine: AsyncEngine
) -> None:
    if who == "anonymous":
        visitor = new_client()
    elif who == "banned-then-anonymous":
        visitor, user = await logged_in()
        await execute(engine, sa.update(User).where(User.id == user.id).values(role="banned"))
        assert is_login_redirect(await visitor.get("/draws")), "the banned user's session has ended"
    else:
        visitor, _ = await logged_in(role="user" if who == "creator" else "premium")
    token = await csrf_token(visitor)
    routes = admin_routes(live_server)
    for values in (admin_world, {**admin_world, "user_id": admin_world["admin_id"]}):
        before = await snapshot(engine)
        for method, path in routes:
            url = concrete(path, values)
            if method == "GET":
                response = await visitor.get(url)
            else:
                response = await visitor.request(method, url, data={**VALID_FIELDS, "_csrf_token": token})
            assert response.status_code == 404, (method, url, response.status_code)
            assert "Page not found" in response.text
            assert "/admin/" not in response.text.replace('href="/admin"', "")
            htmx = await visitor.request(
                method,
                url,
                data=None if method == "GET" else {**VALID_FIELDS, "_csrf_token": token},
                headers={"HX-Request": "true"},
            )
            assert htmx.status_code == 404, (method, url, "htmx")
            assert "HX-Location" not in htmx.headers
            assert (await visitor.options(url)).status_code == 404, (url, "OPTIONS")
        assert await snapshot(engine) == before


async def test_the_same_routes_answer_an_admin(
    live_server: LiveServer, admin: Any, admin_world: dict[str, str], engine: AsyncEngine
) -> None:
    """The control for the test above: the paths are real, so its 404s come from the guard."""
    admin_client, _ = admin
    for method, path in admin_routes(live_server):
        url = concrete(path, admin_world)
        if method == "GET":
            assert (await admin_client.get(url)).status_code == 200, url
        else:
            response = await post_form(admin_client, url, {**VALID_FIELDS, "request_key": str(uuid.uuid4())})
            assert response.status_code in (303, 409), (url, response.status_code)


async def test_a_creator_does_not_see_the_admin_link_and_an_admin_does(logged_in: Any, admin: Any) -> None:
    creator, _ = await logged_in()
    admin_client, _ = admin
    assert 'href="/admin"' not in (await creator.get("/draws")).text
    assert 'href="/admin"' in (await admin_client.get("/draws")).text


async def test_the_user_page_has_no_duplicate_ids(admin: Any, target: Creator, engine: AsyncEngine) -> None:
    """Two forms on the page have a `reason` field; each label must point at its own input."""
    admin_client, _ = admin
    for banned in (False, True):
        await execute(engine, sa.update(User).where(User.id == target.id).values(role="banned" if banned else "user"))
        ids = re.findall(r'\bid="([^"]+)"', await open_user_page(admin_client, target.id))
        assert sorted({each for each in ids if ids.count(each) > 1}) == []


# 2. Every action leaves exactly one audit row


def only_row(rows: list[AuditLog], before: int) -> AuditLog:
    added = rows[before:]
    assert len(added) == 1, [(row.action, row.details) for row in added]
    return added[0]


async def test_viewing_a_user_records_one_user_viewed_row(admin: Any, target: Creator, engine: AsyncEngine) -> None:
    admin_client, admin_user = admin
    for path in ("/admin", "/admin/users", "/admin/audit", f"/admin/users?q={target.email}"):
        assert (await admin_client.get(path)).status_code == 200
    assert await audit_rows(engine) == [], "lists and the dashboard are not user views"

    page = await open_user_page(admin_client, target.id)

    assert target.email in page
    row = only_row(await audit_rows(engine), 0)
    assert (row.admin_id, row.user_id, row.action, row.details, row.ip_address) == (
        admin_user.id,
        target.id,
        "user_viewed",
        None,
        CLIENT_IP,
    )


async def test_banning_records_the_reason_the_previous_role_and_the_sessions_ended(
    admin: Any, logged_in: Any, new_client: Any, engine: AsyncEngine
) -> None:
    admin_client, admin_user = admin
    _, user = await logged_in()
    second_browser = new_client()
    assert (await log_in(second_browser, user.email, user.password)).status_code == 303
    await open_user_page(admin_client, user.id)
    before = len(await audit_rows(engine))

    response = await post_form(admin_client, f"/admin/users/{user.id}/ban", {"reason": "  spam in comments  "})

    assert response.status_code == 303
    assert response.headers["location"] == f"/admin/users/{user.id}?notice=banned"
    row = only_row(await audit_rows(engine), before)
    assert (row.admin_id, row.user_id, row.action, row.ip_address) == (admin_user.id, user.id, "user_banned", CLIENT_IP)
    assert row.details == {"reason": "spam in comments", "previous_role": "user", "sessions_ended": 2}
    assert (await user_row(engine, user.id)).role == "banned"
    page = await admin_client.get(response.headers["location"])
    assert "The user is banned and their sessions have ended." in page.text
    assert 'data-testid="role">banned<' in page.text


async def test_unbanning_records_the_reason_and_the_restored_role(
    admin: Any, target: Creator, engine: AsyncEngine
) -> None:
    admin_client, admin_user = admin
    assert (await post_form(admin_client, f"/admin/users/{target.id}/ban", {"reason": "spam"})).status_code == 303
    before = len(await audit_rows(engine))

    response = await post_form(admin_client, f"/admin/users/{target.id}/unban", {"reason": "appeal accepted"})

    assert response.status_code == 303
    assert response.headers["location"] == f"/admin/users/{target.id}?notice=unbanned"
    row = only_row(await audit_rows(engine), before)
    assert (row.admin_id, row.user_id, row.action, row.ip_address) == (
        admin_user.id,
        target.id,
        "user_unbanned",
        CLIENT_IP,
    )
    assert row.details == {"reason": "appeal accepted", "role": "user"}
    assert (await user_row(engine, target.id)).role == "user"


async def test_unbanning_a_subscriber_gives_back_the_premium_role(
    admin: Any, make_user: Any, engine: AsyncEngine
) -> None:
    admin_client, _ = admin
    subscriber = await make_user(role="premium")
    async with session_factory(engine)() as session:
        session.add(
            Subscription(
                user_id=subscriber.id,
                plan_type="monthly",
                status="active",
                start_date=datetime.datetime.now(datetime.UTC),
            )
        )
        await session.commit()
    await post_form(admin_client, f"/admin/users/{subscriber.id}/ban", {"reason": "spam"})
    ban = (await audit_rows(engine))[-1]
    assert ban.details is not None and ban.details["previous_role"] == "premium"

    await post_form(admin_client, f"/admin/users/{subscriber.id}/unban", {"reason": "appeal"})

    assert (await user_row(engine, subscriber.id)).role == "premium"
    assert (await audit_rows(engine))[-1].details == {"reason": "appeal", "role": "premium"}


async def test_granting_records_the_amount_the_reason_and_the_request(
    admin: Any, target: Creator, engine: AsyncEngine
) -> None:
    admin_client, admin_user = admin
    key = request_key_in(await open_user_page(admin_client, target.id))
    before = len(await audit_rows(engine))

    response = await post_form(
        admin_client,
        f"/admin/users/{target.id}/grant",
        {"amount": "7", "reason": "Sorry for the outage", "request_key": key},
    )

    assert response.status_code == 303
    row = only_row(await audit_rows(engine), before)
    assert (row.admin_id, row.user_id, row.action, row.ip_address) == (
        admin_user.id,
        target.id,
        "credits_granted",
        CLIENT_IP,
    )
    assert row.details == {"amount": 7, "reason": "Sorry for the outage", "request": key}


@pytest.mark.parametrize("flagged", [False, True])
async def test_adding_a_note_records_the_note_and_its_flag(
    admin: Any, target: Creator, engine: AsyncEngine, flagged: bool
) -> None:
    admin_client, admin_user = admin

    response = await post_form(
        admin_client,
        f"/admin/users/{target.id}/notes",
        {"note": "Asked for a refund twice", **({"flagged": "on"} if flagged else {})},
    )

    assert response.status_code == 303
    assert response.headers["location"] == f"/admin/users/{target.id}?notice=note_added"
    [note] = await notes_of(engine, target.id)
    assert (note.note, note.is_flagged, note.admin_id) == ("Asked for a refund twice", flagged, admin_user.id)
    row = only_row(await audit_rows(engine), 0)
    assert (row.admin_id, row.user_id, row.action, row.ip_address) == (
        admin_user.id,
        target.id,
        "note_added",
        CLIENT_IP,
    )
    assert row.details == {"note_id": str(note.id), "flagged": flagged}


async def test_flagging_and_unflagging_a_note_each_record_one_row(
    admin: Any, target: Creator, engine: AsyncEngine
) -> None:
    admin_client, admin_user = admin
    await post_form(admin_client, f"/admin/users/{target.id}/notes", {"note": "watch this one"})
    [note] = await notes_of(engine, target.id)

    for action, flagged in (("flag", True), ("unflag", False)):
        before = len(await audit_rows(engine))
        response = await post_form(admin_client, f"/admin/notes/{note.id}/{action}", {})
        assert response.status_code == 303
        assert response.headers["location"] == f"/admin/users/{target.id}?notice={action}ged"
        row = only_row(await audit_rows(engine), before)
        assert (row.admin_id, row.user_id, row.action, row.details, row.ip_address) == (
            admin_user.id,
            target.id,
            f"note_{action}ged",
            {"note_id": str(note.id)},
            CLIENT_IP,
        )
        assert (await notes_of(engine, target.id))[0].is_flagged is flagged


async def test_the_audit_row_names_the_admin_who_acted(logged_in: Any, target: Creator, engine: AsyncEngine) -> None:
    first, first_admin = await logged_in(role="admin")
    second, second_admin = await logged_in(role="admin")
    await post_form(first, f"/admin/users/{target.id}/notes", {"note": "one"})
    await post_form(second, f"/admin/users/{target.id}/notes", {"note": "two"})
    rows = await audit_rows(engine)
    assert [(row.admin_id, row.details and row.details["flagged"]) for row in rows] == [
        (first_admin.id, False),
        (second_admin.id, False),
    ]


# 3. Refused actions change nothing and say why, next to the field


REFUSALS = [
    # (id, target kind, path, fields, status, form action, field, message)
    ("ban-without-reason", "user", "ban", {"reason": "   "}, 422, "ban", "reason", "Enter a reason."),
    ("ban-reason-missing", "user", "ban", {}, 422, "ban", "reason", "This field was not sent"),
    ("ban-reason-too-long", "user", "ban", {"reason": "x" * 501}, 422, "ban", "reason", "too long"),
    ("ban-reason-nul", "user", "ban", {"reason": "spam\x00"}, 422, "ban", "reason", "not allowed"),
    ("ban-oneself", "self", "ban", {"reason": "oops"}, 409, "ban", "reason", "You cannot ban yourself."),
    ("ban-an-admin", "admin", "ban", {"reason": "coup"}, 409, "ban", "reason", "An administrator cannot be banned"),
    ("ban-twice", "banned", "ban", {"reason": "again"}, 409, "unban", "reason", "This user is already banned."),
    ("unban-not-banned", "user", "unban", {"reason": "why"}, 409, "ban", "reason", "This user is not banned."),
    ("unban-an-admin", "admin", "unban", {"reason": "why"}, 409, "ban", "reason", "This user is not banned."),
    ("unban-without-reason", "banned", "unban", {"reason": ""}, 422, "unban", "reason", "Enter a reason."),
    ("note-empty", "user", "notes", {"note": " \n "}, 422, "notes", "note", "Enter a note."),
    ("note-too-long", "user", "notes", {"note": "n" * 5001}, 422, "notes", "note", "too long"),
    ("note-control-chars", "user", "notes", {"note": "a\x07b"}, 422, "notes", "note", "not allowed"),
    ("grant-no-reason", "user", "grant", {"amount": "5", "reason": ""}, 422, "grant", "reason", "Enter a reason."),
    (
        "grant-expired-form",
        "user",
        "grant",
        {"amount": "5", "reason": "ok", "request_key": "not-a-uuid"},
        422,
        "grant",
        "request_key",
        "This form has expired.",
    ),
]


@pytest.mark.parametrize(
    ("kind", "path", "fields", "status", "action", "field", "message"),
    [case[1:] for case in REFUSALS],
    ids=[case[0] for case in REFUSALS],
)
async def test_a_refused_action_changes_nothing_and_says_why_by_the_field(
    admin: Any,
    make_user: Any,
    engine: AsyncEngine,
    kind: str,
    path: str,
    fields: dict[str, str],
    status: int,
    action: str,
    field: str,
    message: str,
) -> None:
    admin_client, admin_user = admin
    if kind == "self":
        subject_id = admin_user.id
    else:
        subject = await make_user(role="admin" if kind == "admin" else "user")
        subject_id = subject.id
        if kind == "banned":
            await post_form(admin_client, f"/admin/users/{subject_id}/ban", {"reason": "spam"})
    if path == "grant":
        fields = {"request_key": str(uuid.uuid4()), **fields}
    before = await snapshot(engine)

    response = await post_form(admin_client, f"/admin/users/{subject_id}/{path}", fields)

    assert response.status_code == status, response.text[:500]
    assert message in error_in(response.text, f"/admin/users/{subject_id}/{action}", field)
    if field != "request_key":
        form = form_html(response.text, f"/admin/users/{subject_id}/{action}")
        assert re.search(rf'name="{field}"[^>]*aria-invalid="true"', form, re.S)
    assert await snapshot(engine) == before


async def test_a_refused_grant_keeps_what_was_typed_and_the_request_key(
    admin: Any, target: Creator, engine: AsyncEngine
) -> None:
    admin_client, _ = admin
    key = request_key_in(await open_user_page(admin_client, target.id))

    refused = await post_form(
        admin_client, f"/admin/users/{target.id}/grant", {"amount": "0", "reason": "goodwill", "request_key": key}
    )

    assert refused.status_code == 422
    assert request_key_in(refused.text) == key
    assert 'value="goodwill"' in form_html(refused.text, f"/admin/users/{target.id}/grant")
    corrected = await post_form(
        admin_client, f"/admin/users/{target.id}/grant", {"amount": "4", "reason": "goodwill", "request_key": key}
    )
    assert corrected.headers["location"].endswith("notice=granted")
    assert [row.amount for row in await ledger(engine, target.id)] == [WELCOME_BONUS, 4]


@pytest.mark.parametrize("path", ["ban", "unban", "grant", "notes"])
async def test_acting_on_a_user_that_does_not_exist_is_a_404(admin: Any, engine: AsyncEngine, path: str) -> None:
    admin_client, _ = admin
    before = await snapshot(engine)
    response = await post_form(admin_client, f"/admin/users/{uuid.uuid4()}/{path}", VALID_FIELDS)
    assert response.status_code == 404
    assert await snapshot(engine) == before
    assert (await admin_client.get(f"/admin/users/{uuid.uuid4()}")).status_code == 404
    assert (await admin_client.get("/admin/users/not-a-uuid")).status_code == 404


@pytest.mark.parametrize("action", ["flag", "unflag"])
async def test_flagging_a_note_that_does_not_exist_is_a_404(admin: Any, engine: AsyncEngine, action: str) -> None:
    admin_client, _ = admin
    before = await snapshot(engine)
    assert (await post_form(admin_client, f"/admin/notes/{uuid.uuid4()}/{action}", {})).status_code == 404
    assert await snapshot(engine) == before


async def test_admin_forms_without_the_csrf_token_are_refused(admin: Any, target: Creator, engine: AsyncEngine) -> None:
    admin_client, _ = admin
    before = await snapshot(engine)
    response = await admin_client.post(f"/admin/users/{target.id}/ban", data={"reason": "forged"})
    assert response.status_code == 403
    assert await snapshot(engine) == before


# 4. A ban takes effect at once


async def test_a_banned_user_is_logged_out_at_once_cannot_log_in_and_can_after_unbanning(
    admin: Any, logged_in: Any, new_client: Any, engine: AsyncEngine
) -> None:
    admin_client, _ = admin
    creator, user = await logged_in()
    assert (await creator.get("/draws")).status_code == 200

    await post_form(admin_client, f"/admin/users/{user.id}/ban", {"reason": "abuse"})

    following = await creator.get("/draws")
    assert is_login_redirect(following)
    assert following.headers["location"] == "/login?next=/draws"
    htmx = await creator.get("/credits", headers={"HX-Request": "true"})
    assert hx_location(htmx).startswith("/login")
    assert await fetch(engine, sa.select(Session.id).where(Session.user_id == user.id)) == []
    assert (await admin_client.get("/admin")).status_code == 200, "the admin's own session lives on"

    again = new_client()
    refused = await log_in(again, user.email, user.password)
    assert refused.status_code == 403
    assert "suspended" in refused.text
    assert "cleack_session" not in again.cookies
    assert is_login_redirect(await again.get("/draws"))

    await post_form(admin_client, f"/admin/users/{user.id}/unban", {"reason": "appeal"})

    welcome_back = await log_in(again, user.email, user.password)
    assert welcome_back.status_code == 303
    assert (await again.get("/draws")).status_code == 200


async def test_a_session_whose_user_became_banned_by_any_means_stops_working(
    logged_in: Any, engine: AsyncEngine
) -> None:
    """The session lookup checks the role too, so a ban written outside the admin service also bites."""
    creator, user = await logged_in()
    await execute(engine, sa.update(User).where(User.id == user.id).values(role="banned"))
    assert is_login_redirect(await creator.get("/settings"))
    assert await fetch(engine, sa.select(Session.id).where(Session.user_id == user.id)) == []


# 5. Credits are granted through the ledger, once per form


async def grant_form(
    client: httpx.AsyncClient, user_id: uuid.UUID, amount: str, key: str, reason: str = "Goodwill"
) -> httpx.Response:
    return await post_form(
        client, f"/admin/users/{user_id}/grant", {"amount": amount, "reason": reason, "request_key": key}
    )


async def test_a_grant_is_a_bonus_row_in_the_ledger_with_the_balance_after_it(
    admin: Any, target: Creator, engine: AsyncEngine
) -> None:
    admin_client, admin_user = admin
    key = request_key_in(await open_user_page(admin_client, target.id))

    response = await grant_form(admin_client, target.id, " 10000 ", key, reason="Contest prize")

    assert response.headers["location"] == f"/admin/users/{target.id}?notice=granted"
    welcome, grant = await ledger(engine, target.id)
    assert welcome.amount == WELCOME_BONUS
    assert (grant.transaction_type, grant.amount, grant.balance) == ("bonus", 10_000, WELCOME_BONUS + 10_000)
    assert grant.description == "Contest prize"
    assert grant.idempotency_key == f"admin-grant:{key}"
    assert grant.metadata_ == {"granted_by": str(admin_user.id)}
    assert (await user_row(engine, target.id)).credit_balance == WELCOME_BONUS + 10_000
    page = await admin_client.get(response.headers["location"])
    assert "The credits were granted." in page.text
    assert f'data-testid="user-balance">{WELCOME_BONUS + 10_000}<' in page.text
    assert request_key_in(page.text) != key, "each page load gets a new key"


async def test_a_resubmitted_grant_form_grants_once(admin: Any, target: Creator, engine: AsyncEngine) -> None:
    admin_client, _ = admin
    key = request_key_in(await open_user_page(admin_client, target.id))

    first = await grant_form(admin_client, target.id, "5", key)
    second = await grant_form(admin_client, target.id, "5", key)
    changed = await grant_form(admin_client, target.id, "50", key)

    assert first.headers["location"].endswith("notice=granted")
    assert second.headers["location"].endswith("notice=already_granted")
    assert changed.headers["location"].endswith("notice=already_granted")
    assert [(row.amount, row.balance) for row in await ledger(engine, target.id)] == [
        (WELCOME_BONUS, WELCOME_BONUS),
        (5, WELCOME_BONUS + 5),
    ]
    assert [row.action for row in await audit_rows(engine)].count("credits_granted") == 1
    page = await admin_client.get(second.headers["location"])
    assert "These credits had already been granted; nothing more was added." in page.text


async def test_a_grant_form_submitted_many_times_at_once_grants_once(
    admin: Any, target: Creator, engine: AsyncEngine
) -> None:
    admin_client, _ = admin
    await csrf_token(admin_client)
    keys = []
    for _ in range(5):
        key = request_key_in(await open_user_page(admin_client, target.id))
        keys.append(key)
        responses = await asyncio.gather(*(grant_form(admin_client, target.id, "5", key) for _ in range(8)))
        assert all(response.status_code == 303 for response in responses)
        notices = sorted(response.headers["location"].rsplit("=", 1)[1] for response in responses)
        assert notices == ["already_granted"] * 7 + ["granted"]

    grants = await ledger(engine, target.id)
    assert [row.amount for row in grants] == [WELCOME_BONUS] + [5] * 5
    assert [row.balance for row in grants] == [WELCOME_BONUS + 5 * number for number in range(6)]
    assert (await user_row(engine, target.id)).credit_balance == WELCOME_BONUS + 25
    granted = [row for row in await audit_rows(engine) if row.action == "credits_granted"]
    audited = [(row.details or {}).get("request") for row in granted]
    assert audited == keys, "one grant, one audit row"


async def test_a_fresh_form_grants_again(admin: Any, target: Creator, engine: AsyncEngine) -> None:
    admin_client, _ = admin
    for _ in range(2):
        key = request_key_in(await open_user_page(admin_client, target.id))
        await grant_form(admin_client, target.id, "2", key)
    assert [row.balance for row in await ledger(engine, target.id)] == [
        WELCOME_BONUS,
        WELCOME_BONUS + 2,
        WELCOME_BONUS + 4,
    ]


BAD_AMOUNTS = [
    ("zero", "0", "Grant between 1 and 10,000 credits."),
    ("negative", "-1", "Enter a whole number of credits, like 5."),
    ("above-the-cap", "10001", "Grant between 1 and 10,000 credits."),
    ("letters", "abc", "Enter a whole number of credits, like 5."),
    ("decimal", "1.5", "Enter a whole number of credits, like 5."),
    ("empty", "", "Enter a number of credits."),
    ("blank", "   ", "Enter a number of credits."),
    ("10000-digits", "9" * 10_000, "Grant between 1 and 10,000 credits."),
    ("10000-ones", "1" * 10_000, "Grant between 1 and 10,000 credits."),
    ("10000-letters", "a" * 10_000, "Enter a whole number of credits, like 5."),
    ("exponent", "1e3", "Enter a whole number of credits, like 5."),
    ("thousands-separator", "1,000", "Enter a whole number of credits, like 5."),
    ("fullwidth-digits", "\uff15", "Enter a whole number of credits, like 5."),
    ("arabic-indic-digits", "\u0665", "Enter a whole number of credits, like 5."),
    ("superscript", "²", "Enter a whole number of credits, like 5."),
    ("nul", "5\x00", "Enter a whole number of credits, like 5."),
    ("emoji", "5️⃣", "Enter a whole number of credits, like 5."),
    ("a-file", None, "Enter text here, not a file."),
    ("missing", ..., "This field was not sent."),
]


@pytest.mark.parametrize(("amount", "message"), [case[1:] for case in BAD_AMOUNTS], ids=[c[0] for c in BAD_AMOUNTS])
async def test_a_bad_amount_is_refused_by_the_field_and_grants_nothing(
    admin: Any, target: Creator, engine: AsyncEngine, amount: Any, message: str
) -> None:
    admin_client, _ = admin
    key = request_key_in(await open_user_page(admin_client, target.id))
    before = await snapshot(engine)
    url = f"/admin/users/{target.id}/grant"
    fields = {"reason": "goodwill", "request_key": key, "_csrf_token": await csrf_token(admin_client)}

    if amount is None:
        response = await admin_client.post(url, data=fields, files={"amount": ("amount.txt", b"5", "text/plain")})
    elif amount is ...:
        response = await admin_client.post(url, data=fields)
    else:
        response = await admin_client.post(url, data={**fields, "amount": amount})

    assert 400 <= response.status_code < 500, response.status_code
    assert response.status_code == 422
    assert message in error_in(response.text, url, "amount")
    assert await snapshot(engine) == before
    assert [row.amount for row in await ledger(engine, target.id)] == [WELCOME_BONUS]


# 6. Notes and the flagged list


async def flagged_list(client: httpx.AsyncClient, query: str = "") -> str:
    response = await client.get("/admin/users", params={"flagged": "1", **({"q": query} if query else {})})
    assert response.status_code == 200
    return table_body(response.text)


async def test_a_flagged_note_puts_the_user_in_the_flagged_list_until_it_is_unflagged(
    admin: Any, make_user: Any, engine: AsyncEngine
) -> None:
    admin_client, _ = admin
    watched = await make_user(email="watched@example.com")
    bystander = await make_user(email="bystander@example.com")
    await post_form(admin_client, f"/admin/users/{bystander.id}/notes", {"note": "nice person"})

    await post_form(admin_client, f"/admin/users/{watched.id}/notes", {"note": "<b>chargeback</b> & threats"})
    [note] = await notes_of(engine, watched.id)
    page = await open_user_page(admin_client, watched.id)
    assert "&lt;b&gt;chargeback&lt;/b&gt; &amp; threats" in page
    assert "<b>chargeback</b>" not in page
    assert watched.email not in await flagged_list(admin_client)

    await post_form(admin_client, f"/admin/notes/{note.id}/flag", {})
    listed = await flagged_list(admin_client)
    assert watched.email in listed and bystander.email not in listed
    assert f'action="/admin/notes/{note.id}/unflag"' in await open_user_page(admin_client, watched.id)
    assert watched.email in await flagged_list(admin_client, "WATCHED")
    assert watched.email not in await flagged_list(admin_client, "bystander")

    await post_form(admin_client, f"/admin/notes/{note.id}/unflag", {})
    assert watched.email not in await flagged_list(admin_client)
    assert f'action="/admin/notes/{note.id}/flag"' in await open_user_page(admin_client, watched.id)


async def test_a_user_stays_flagged_while_any_note_is(admin: Any, target: Creator, engine: AsyncEngine) -> None:
    admin_client, _ = admin
    for text in ("first", "second"):
        await post_form(admin_client, f"/admin/users/{target.id}/notes", {"note": text, "flagged": "on"})
    first, second = await notes_of(engine, target.id)
    await post_form(admin_client, f"/admin/notes/{first.id}/unflag", {})
    assert target.email in await flagged_list(admin_client)
    assert count_of((await admin_client.get("/admin/users?flagged=1")).text, "user") == 1
    await post_form(admin_client, f"/admin/notes/{second.id}/unflag", {})
    assert target.email not in await flagged_list(admin_client)


# 7. Finding users


async def search(client: httpx.AsyncClient, query: str, **params: str) -> str:
    response = await client.get("/admin/users", params={"q": query, **params})
    assert response.status_code == 200, (query, response.status_code)
    return response.text


def emails_listed(page: str) -> set[str]:
    return {html.unescape(email) for email in re.findall(r'href="/admin/users/[0-9a-f-]{36}">([^<]*)</a>', page)}


@pytest.fixture
async def people(engine: AsyncEngine) -> dict[str, str]:
    specs: dict[str, dict[str, Any]] = {
        "ada": {"email": "Ada.Lovelace@Example.COM", "full_name": "Ada Lovelace"},
        "grace": {"email": "grace@navy.example", "full_name": "Grace HOPPER"},
        "percent": {"email": "per%cent@example.com", "full_name": None},
        "underscore": {"email": "under_score@example.com", "full_name": None},
        "lookalike": {"email": "underXscore@example.com", "full_name": "Not 100 percent"},
        "backslash": {"email": "back\\slash@example.com", "full_name": None},
        "emoji": {"email": "party@example.com", "full_name": "Zoë 🎉 Party"},
        "accented": {"email": "emile@zola.example", "full_name": "ÉMILE Zola"},
    }
    await add_users(engine, *specs.values())
    return {key: str(spec["email"]) for key, spec in specs.items()}


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("lovelace", {"ada"}),
        ("ADA.LOVE", {"ada"}),
        ("example.com", {"ada", "percent", "underscore", "lookalike", "backslash", "emoji"}),
        ("hopper", {"grace"}),
        ("grace hop", {"grace"}),
        ("  grace   hop  ", {"grace"}),
        ("NAVY", {"grace"}),
        ("%", {"percent"}),
        ("r%c", {"percent"}),
        ("p%t", set()),
        ("_", {"underscore"}),
        ("r_s", {"underscore"}),
        ("under_", {"underscore"}),
        ("\\", {"backslash"}),
        ("k\\s", {"backslash"}),
        ("🎉", {"emoji"}),
        ("zoë", {"emoji"}),
        ("ZOË", {"emoji"}),
        ("100 percent", {"lookalike"}),
        ("émile", {"accented"}),
        ("ÉMILE ZOLA", {"accented"}),
        ("nobody-has-this", set()),
    ],
)
async def test_search_finds_part_of_an_email_or_name_case_insensitively_and_literally(
    admin: Any, people: dict[str, str], query: str, expected: set[str]
) -> None:
    admin_client, _ = admin
    page = await search(admin_client, query)
    found = emails_listed(table_body(page))
    assert found == {people[key] for key in expected}
    assert count_of(page, "user") == len(expected)
    fragment = await admin_client.get("/admin/users", params={"q": query}, headers={"HX-Request": "true"})
    assert fragment.status_code == 200
    assert "<html" not in fragment.text
    assert emails_listed(fragment.text) == found


async def test_the_user_list_pages_by_25_and_keeps_the_query(admin: Any, engine: AsyncEngine) -> None:
    admin_client, admin_user = admin
    await add_users(engine, *[{"email": f"paged-{number:02}@example.com"} for number in range(31)])
    await add_users(engine, {"email": "unrelated@example.com"})

    first = await search(admin_client, "PAGED-")
    second = await search(admin_client, "PAGED-", page="2")
    beyond = await search(admin_client, "PAGED-", page="3")

    on_first, on_second = emails_listed(table_body(first)), emails_listed(table_body(second))
    assert len(on_first) == PER_PAGE and len(on_second) == 31 - PER_PAGE
    assert on_first | on_second == {f"paged-{number:02}@example.com" for number in range(31)}
    assert count_of(first, "user") == count_of(second, "user") == 31
    assert "Page 1 of 2" in first and "Page 2 of 2" in second
    assert 'href="/admin/users?q=PAGED-&amp;page=2"' in first or 'href="/admin/users?q=PAGED-&page=2"' in first
    assert "page=1" in second
    assert emails_listed(table_body(beyond)) == set()
    everyone = await search(admin_client, "")
    assert count_of(everyone, "user") == 33
    assert len(emails_listed(table_body(everyone))) == PER_PAGE
    assert admin_user.email not in emails_listed(table_body(everyone)), "the newest first"
    assert admin_user.email in emails_listed(table_body(await search(admin_client, "", page="2")))


@pytest.mark.parametrize(
    "query",
    [
        "\x00",
        "a\x00b",
        "x" * 10_000,
        "🎉" * 200,
        "😀",
        "\u202egnp.exe",
        "\ufeff",
        "'; DROP TABLE users; --",
        "%%%%",
        "____",
        "\\\\\\",
        "<script>alert(1)</script>",
        "\r\n\t",
    ],
)
@pytest.mark.parametrize("as_fragment", [False, True], ids=["page", "htmx"])
async def test_odd_search_input_never_breaks_the_user_list(
    admin: Any, people: dict[str, str], query: str, as_fragment: bool
) -> None:
    admin_client, _ = admin
    headers = {"HX-Request": "true"} if as_fragment else {}
    for params in ({"q": query}, {"q": query, "flagged": "1"}, {"q": "a", "page": query}, {"flagged": query}):
        response = await admin_client.get("/admin/users", params=params, headers=headers)
        assert response.status_code == 200, (params, response.status_code)
        assert "<script>alert(1)</script>" not in response.text


async def test_odd_bytes_in_the_query_string_never_break_a_list(admin: Any, people: dict[str, str]) -> None:
    admin_client, _ = admin
    raws = ["%00", "%ff%fe", "%ed%a0%80", "%", "%zz", "a&{name}=b", "%25" * 3000, "99999999999999999999", "-5"]
    for path, names in (
        ("/admin/users", ("q", "page", "flagged")),
        ("/admin/audit", ("action", "admin", "user", "page")),
        ("/admin", ("days",)),
    ):
        for name in names:
            for raw in raws:
                query = f"{name}={raw.format(name=name)}"
                response = await admin_client.get(f"{path}?{query}")
                assert response.status_code < 500, (path, query, response.status_code)


# 8. The audit log


async def audit_page(client: httpx.AsyncClient, **params: str) -> str:
    response = await client.get("/admin/audit", params=params)
    assert response.status_code == 200, (params, response.status_code)
    return response.text


def actions_listed(page: str) -> list[str]:
    return re.findall(r"<td\b[^>]*><span\b[^>]*>([a-z_]+)</span></td>", table_body(page))


async def test_the_audit_log_filters_by_action_admin_and_user(logged_in: Any, make_user: Any) -> None:
    alice, alice_user = await logged_in(role="admin", email="alice.admin@example.com")
    bob, _ = await logged_in(role="admin", email="bob.admin@example.com")
    xavier = await make_user(email="xavier@example.com")
    yolanda = await make_user(email="yolanda@example.com")
    await post_form(alice, f"/admin/users/{xavier.id}/ban", {"reason": "spam"})
    await open_user_page(alice, yolanda.id)
    key = request_key_in(await open_user_page(bob, yolanda.id))
    await grant_form(bob, yolanda.id, "3", key)
    await post_form(bob, f"/admin/users/{xavier.id}/notes", {"note": "banned for spam"})

    everything = await audit_page(alice)
    assert count_of(everything, "entr") == 5
    assert actions_listed(everything) == ["note_added", "credits_granted", "user_viewed", "user_viewed", "user_banned"]
    for action in ("user_banned", "user_viewed", "credits_granted", "note_added"):
        assert f'<option value="{action}"' in everything

    banned = await audit_page(alice, action="user_banned")
    assert actions_listed(banned) == ["user_banned"]
    assert xavier.email in table_body(banned) and "alice.admin@example.com" in table_body(banned)
    assert '<option value="user_banned" selected' in banned

    by_bob = await audit_page(alice, admin="BOB.ADMIN@example.com")
    assert actions_listed(by_bob) == ["note_added", "credits_granted", "user_viewed"]
    assert "alice.admin@example.com" not in table_body(by_bob)

    about_xavier = await audit_page(alice, user="Xavier@Example.com")
    assert actions_listed(about_xavier) == ["note_added", "user_banned"]
    assert yolanda.email not in table_body(about_xavier)

    combined = await audit_page(alice, action="user_viewed", admin="alice.admin@example.com", user=yolanda.email)
    assert actions_listed(combined) == ["user_viewed"]
    assert count_of(combined, "entr") == 1

    nothing = await audit_page(alice, action="user_unbanned")
    assert actions_listed(nothing) == [] and "Nothing recorded for these filters." in nothing
    assert actions_listed(await audit_page(alice, admin="alice.admin")) == [], "an email, not part of one"
    detail = table_body(await audit_page(alice, action="credits_granted"))
    assert "bob.admin@example.com" in detail and "127.0.0.1" in detail and key in detail
    fragment = await alice.get("/admin/audit", params={"action": "user_banned"}, headers={"HX-Request": "true"})
    assert "<html" not in fragment.text and actions_listed(fragment.text) == ["user_banned"]
    assert alice_user.email in fragment.text


async def test_the_audit_log_pages_by_25_and_keeps_the_filters(
    admin: Any, target: Creator, engine: AsyncEngine
) -> None:
    admin_client, admin_user = admin
    async with session_factory(engine)() as session:
        session.add_all(
            AuditLog(admin_id=admin_user.id, user_id=target.id, action="user_viewed", details={"seq": number})
            for number in range(31)
        )
        session.add(AuditLog(admin_id=admin_user.id, user_id=target.id, action="note_added", details={"seq": 99}))
        await session.commit()

    def sequence(page: str) -> list[int]:
        return [int(found) for found in re.findall(r"<strong>seq</strong>\s*(\d+)", table_body(page))]

    first = await audit_page(admin_client, action="user_viewed")
    second = await audit_page(admin_client, action="user_viewed", page="2")

    assert count_of(first, "entr") == 31
    assert len(sequence(first)) == PER_PAGE and len(sequence(second)) == 31 - PER_PAGE
    assert sorted(sequence(first) + sequence(second)) == list(range(31))
    assert "Page 1 of 2" in first and "Page 2 of 2" in second
    next_link = re.search(r'href="([^"]*page=2[^"]*)"', first)
    assert next_link and "action=user_viewed" in html.unescape(next_link.group(1))
    assert sequence(await audit_page(admin_client, action="user_viewed", page="3")) == []
    assert count_of(await audit_page(admin_client), "entr") == 32


@pytest.mark.parametrize("value", ["\x00", "x" * 10_000, "🎉" * 100, "' OR 1=1 --", "%", "_"])
async def test_odd_audit_filters_never_break_the_page(admin: Any, value: str) -> None:
    admin_client, _ = admin
    for params in ({"action": value}, {"admin": value}, {"user": value}, {"page": value}):
        response = await admin_client.get("/admin/audit", params=params)
        assert response.status_code == 200, (params, response.status_code)


# 9. The dashboard


async def test_the_dashboard_counts_all_active_today_and_new_this_week(
    admin: Any, engine: AsyncEngine, live_server: LiveServer
) -> None:
    admin_client, admin_user = admin
    now = datetime.datetime.now(datetime.UTC)
    midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
    await execute(engine, sa.update(User).where(User.id == admin_user.id).values(last_login_at=now))
    await add_users(
        engine,
        # active today, new this week
        {"email": "today@example.com", "last_login_at": midnight, "created_at": now - datetime.timedelta(days=6)},
        # logged in just before midnight: not active today; signed up 8 days ago: not new
        {
            "email": "yesterday@example.com",
            "last_login_at": midnight - datetime.timedelta(seconds=1),
            "created_at": now - datetime.timedelta(days=8),
        },
        # never logged in, old
        {"email": "dormant@example.com", "created_at": now - datetime.timedelta(days=400)},
        # banned still counts as a user; new this week
        {"email": "banned@example.com", "role": "banned", "created_at": now - datetime.timedelta(days=1)},
        # logged in today but signed up long ago
        {
            "email": "regular@example.com",
            "last_login_at": max(midnight, now - datetime.timedelta(seconds=5)),
            "created_at": now - datetime.timedelta(days=30),
        },
    )

    page = await admin_client.get("/admin")

    assert page.status_code == 200
    assert stat(page.text, "total-users") == 6
    assert stat(page.text, "active-today") == 3  # the admin, today@, regular@
    assert stat(page.text, "new-this-week") == 3  # the admin, today@, banned@


async def test_the_dashboard_charts_the_rolled_up_metrics(admin: Any, engine: AsyncEngine) -> None:
    admin_client, _ = admin
    today = datetime.datetime.now(datetime.UTC).date()
    async with session_factory(engine)() as session:
        session.add_all(
            [
                SystemMetric(metric_type="daily_draws", day=today - datetime.timedelta(days=1), value=4),
                SystemMetric(metric_type="revenue", day=today - datetime.timedelta(days=40), value=12.5),
            ]
        )
        await session.commit()

    def chart(page: str, metric: str) -> tuple[list[str], list[float]]:
        found = re.search(rf"id=\"chart-{metric}\".*?data-days='([^']*)' data-values='([^']*)'", page, re.S)
        assert found, metric
        return json.loads(html.unescape(found.group(1))), json.loads(html.unescape(found.group(2)))

    month = (await admin_client.get("/admin")).text
    days, values = chart(month, "daily_draws")
    assert len(days) == len(values) == 30
    assert days[-1] == today.isoformat() and values[-2] == 4.0 and sum(values) == 4.0
    assert sum(chart(month, "revenue")[1]) == 0.0
    quarter = (await admin_client.get("/admin?days=90")).text
    assert "last 90 days" in quarter
    assert len(chart(quarter, "revenue")[0]) == 90 and sum(chart(quarter, "revenue")[1]) == 12.5
    for odd in ("7", "abc", "-1", "\x00", "9" * 5000):
        response = await admin_client.get("/admin", params={"days": odd})
        assert response.status_code == 200 and "last 30 days" in response.text
