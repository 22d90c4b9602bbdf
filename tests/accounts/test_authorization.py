"""Who may see and do what: a creator sees only their own ledger and sessions; anonymous visitors are sent to log in."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.conftest import LiveServer, csrf_token, hx_location, log_in, post_form
from web.accounts.models import Session
from web.app import create_app
from web.credits.services import CreditsService
from web.db import session_factory
from web.security import hash_token

# Ledger


async def grant(engine: AsyncEngine, user_id: uuid.UUID, count: int, label: str) -> None:
    async with session_factory(engine)() as session:
        service = CreditsService(session)
        for number in range(count):
            await service.grant(
                user_id,
                1,
                transaction_type="purchase",
                idempotency_key=f"{label}-{number}",
                description=f"{label} #{number}",
            )


@pytest.fixture
async def two_creators(logged_in: Any, engine: AsyncEngine) -> tuple[httpx.AsyncClient, Any, httpx.AsyncClient, Any]:
    """A with 3 + 2 credits and two rows of their own; B with 3 + 45 credits over three pages of private rows."""
    client_a, user_a = await logged_in()
    client_b, user_b = await logged_in()
    await grant(engine, user_a.id, 2, "A-OWN-ROW")
    await grant(engine, user_b.id, 45, "B-PRIVATE-ROW")
    return client_a, user_a, client_b, user_b


def b_queries(user_b: Any) -> list[str]:
    return [
        f"user_id={user_b.id}",
        f"user={user_b.id}",
        f"id={user_b.id}",
        f"email={user_b.email}",
        f"page=2&user_id={user_b.id}",
        f"user_id={user_b.id}&user_id={user_b.id}",
    ]


@pytest.mark.parametrize(
    "query",
    [
        "",
        "page=1",
        "page=2",
        "page=3",
        "page=0",
        "page=-1",
        "page=999",
        "page=abc",
        "page=1&page=3",
        "B-QUERIES",
    ],
)
@pytest.mark.parametrize("as_fragment", [False, True], ids=["page", "htmx-fragment"])
async def test_the_ledger_only_ever_shows_the_logged_in_creators_rows(
    two_creators: Any, query: str, as_fragment: bool
) -> None:
    client_a, _, _, user_b = two_creators
    headers = {"HX-Request": "true"} if as_fragment else {}
    queries = b_queries(user_b) if query == "B-QUERIES" else [query]

    for each in queries:
        response = await client_a.get(f"/credits?{each}", headers=headers)

        assert response.status_code == 200
        assert "B-PRIVATE-ROW" not in response.text
        assert "Page 1 of 3" not in response.text and "Page 2 of 3" not in response.text
        if not as_fragment:
            assert 'data-testid="balance">5<' in response.text
            assert 'data-testid="nav-balance">5<' in response.text
            assert ">48<" not in response.text
        if "page=" not in each or each.startswith(("page=1", "page=0", "page=-1", "page=abc")):
            assert response.text.count("A-OWN-ROW") == 2
            assert "Welcome bonus" in response.text


async def test_the_other_creator_does_see_their_own_rows(two_creators: Any) -> None:
    """So the markers above would show if they leaked."""
    client_a, _, client_b, _ = two_creators

    page = await client_b.get("/credits?page=2")

    assert page.status_code == 200
    assert page.text.count("B-PRIVATE-ROW") == 20
    assert "Page 2 of 3" in page.text
    assert 'data-testid="balance">48<' in page.text
    assert "A-OWN-ROW" not in page.text
    assert "A-OWN-ROW" in (await client_a.get("/credits")).text


async def test_the_dashboard_and_settings_show_only_the_logged_in_creator(two_creators: Any) -> None:
    client_a, user_a, _, user_b = two_creators

    for path in ("/draws", "/settings", "/settings/sessions"):
        response = await client_a.get(path, params={"user_id": str(user_b.id)})
        assert response.status_code == 200
        assert user_b.email not in response.text
    assert user_a.email in (await client_a.get("/settings")).text


# Sessions


async def session_id_of(engine: AsyncEngine, client: httpx.AsyncClient) -> uuid.UUID:
    token = client.cookies.get("cleack_session")
    assert token
    async with session_factory(engine)() as session:
        found = await session.scalar(sa.select(Session.id).where(Session.token_hash == hash_token(token)))
    assert found is not None
    return found


async def session_exists(engine: AsyncEngine, session_id: uuid.UUID) -> bool:
    async with session_factory(engine)() as session:
        return await session.get(Session, session_id) is not None


@pytest.mark.parametrize("as_htmx", [False, True], ids=["form", "htmx"])
async def test_a_creator_cannot_revoke_another_creators_session(
    logged_in: Any, new_client: Any, engine: AsyncEngine, as_htmx: bool
) -> None:
    client_a, _ = await logged_in()
    client_b, user_b = await logged_in()
    phone_b = new_client()
    assert (await log_in(phone_b, user_b.email, user_b.password)).status_code == 303
    b_phone_session = await session_id_of(engine, phone_b)
    headers = {"HX-Request": "true"} if as_htmx else {}

    response = await post_form(client_a, f"/settings/sessions/{b_phone_session}/revoke", {}, headers=headers)

    assert response.status_code == 404
    assert "HX-Location" not in response.headers
    assert await session_exists(engine, b_phone_session)
    assert (await phone_b.get("/settings")).status_code == 200
    assert (await client_a.get("/settings")).status_code == 200
    sessions_of_a = await client_a.get("/settings/sessions")
    assert str(b_phone_session) not in sessions_of_a.text
    # The id was real: its owner can revoke it.
    own = await post_form(client_b, f"/settings/sessions/{b_phone_session}/revoke", {})
    assert own.status_code == 303
    assert (await phone_b.get("/settings")).status_code == 303


async def test_revoking_another_creators_current_session_does_not_log_either_out(
    logged_in: Any, engine: AsyncEngine
) -> None:
    client_a, _ = await logged_in()
    client_b, _ = await logged_in()
    b_session = await session_id_of(engine, client_b)

    response = await post_form(client_a, f"/settings/sessions/{b_session}/revoke", {})

    assert response.status_code == 404
    assert "cleack_session" not in response.headers.get("set-cookie", "")
    assert (await client_a.get("/draws")).status_code == 200
    assert (await client_b.get("/draws")).status_code == 200


@pytest.mark.parametrize(
    "session_id", [str(uuid.uuid4()), "00000000-0000-0000-0000-000000000000", "not-a-uuid", "1", "%00"]
)
async def test_revoking_a_session_that_is_not_yours_or_not_an_id_is_not_found(logged_in: Any, session_id: str) -> None:
    client, _ = await logged_in()

    response = await post_form(client, f"/settings/sessions/{session_id}/revoke", {})

    assert response.status_code == 404
    assert (await client.get("/draws")).status_code == 200


async def test_the_sessions_page_lists_only_ones_own_sessions(logged_in: Any, engine: AsyncEngine) -> None:
    client_a, _ = await logged_in()
    client_b, _ = await logged_in()
    a_session = await session_id_of(engine, client_a)
    b_session = await session_id_of(engine, client_b)

    page = await client_a.get("/settings/sessions")

    assert page.text.count('class="session-item"') == 1
    assert str(a_session) in page.text
    assert str(b_session) not in page.text


# Anonymous visitors

MEMBER_PAGES = ["/draws", "/credits", "/settings", "/settings/sessions"]


@pytest.mark.parametrize("path", MEMBER_PAGES)
@pytest.mark.parametrize(
    "cookie", [None, "forged-token", "x" * 200, ""], ids=["no-cookie", "forged", "oversized", "empty"]
)
async def test_anonymous_visitors_are_sent_to_log_in(client: httpx.AsyncClient, path: str, cookie: str | None) -> None:
    if cookie is not None:
        client.cookies.set("cleack_session", cookie)

    response = await client.get(path)

    assert response.status_code == 303
    assert response.headers["location"] == f"/login?next={path}"


@pytest.mark.parametrize("path", MEMBER_PAGES)
async def test_an_htmx_request_from_an_anonymous_visitor_navigates_to_log_in(
    client: httpx.AsyncClient, path: str
) -> None:
    response = await client.get(path, headers={"HX-Request": "true"})

    assert response.status_code == 200
    assert hx_location(response) == f"/login?next={path}"
    assert response.text == ""


@pytest.mark.parametrize("path", MEMBER_PAGES)
async def test_after_logging_in_the_visitor_lands_on_the_page_they_asked_for(
    client: httpx.AsyncClient, make_user: Any, path: str
) -> None:
    user = await make_user()
    asked = await client.get(path)
    login_page = await client.get(asked.headers["location"])
    assert f'name="next" value="{path}"' in login_page.text

    response = await post_form(client, "/login", {"email": user.email, "password": user.password, "next": path})

    assert response.status_code == 303
    assert response.headers["location"] == path
    assert (await client.get(path)).status_code == 200


async def test_a_revoked_or_logged_out_session_cookie_no_longer_opens_any_page(
    logged_in: Any, engine: AsyncEngine
) -> None:
    client, _ = await logged_in()
    stale = client.cookies.get("cleack_session")
    assert (await post_form(client, "/logout", {})).status_code == 303
    client.cookies.set("cleack_session", stale)

    for path in MEMBER_PAGES:
        response = await client.get(path)
        assert response.status_code == 303, path
        assert response.headers["location"].startswith("/login")


# Unsafe routes, every one of them

SESSION = "/settings/sessions/{session_id:uuid}/revoke"
# For members only: an anonymous request is sent to log in, and nothing happens.
MEMBER_ACTIONS = {
    "/settings/profile": {"full_name": "Mallory"},
    "/settings/password": {"current_password": "whatever it is", "new_password": "marmalade sky ladder"},
    SESSION: {},
    "/accounts/{platform:str}/connect": {},
    "/accounts/{account_id:uuid}/disconnect": {},
    "/billing/checkout": {"price": "price_anything"},
    "/billing/portal": {},
    "/billing/enterprise": {"company": "Mallory Inc", "message": "Hello"},
    "/blacklist": {"username": "someone", "platform": "all", "reason": "spam"},
    "/blacklist/{entry_id:uuid}/remove": {},
    "/draws/new": {"title": "Mallory's draw"},
    "/draws/new/preview": {"title": "Mallory's draw"},
    "/draws/{draw_id:uuid}/cancel": {},
    "/draws/{draw_id:uuid}/spectator-link": {},
    "/draws/{draw_id:uuid}/spectator-link/revoke": {},
    "/draws/{draw_id:uuid}/announcement": {"content": "Mallory won"},
    "/draws/{draw_id:uuid}/announcement/count": {"content": "Mallory won"},
}
# Open to anonymous visitors by design; each still needs the CSRF token.
PUBLIC_ACTIONS = [
    "/signup",
    "/login",
    "/logout",
    "/forgot-password",
    "/verify-email/resend",
    "/verify-email/{token:str}",
    "/reset-password/{token:str}",
    "/forms/validate/{form_name:str}/{field_name:str}",
    # The sandbox platforms' own pages, which stand where the platform's and Stripe's sites would.
    "/sandbox/posts",
    "/sandbox/oauth/authorize",
    "/sandbox/stripe/checkout/{session_id:str}/pay",
    "/sandbox/stripe/checkout/{session_id:str}/cancel",
    "/sandbox/stripe/portal/{portal_id:str}/subscriptions/{subscription_id:str}/{action:str}",
]
# Called server to server, without the CSRF token, each protected its own way; without it: a 4xx and nothing done.
EXTERNAL_ACTIONS = {
    "/webhooks/stripe": 400,
    "/webhooks/apple": 400,
    "/sandbox/oauth/token": 401,
    "/sandbox/oauth/revoke": 400,
    "/sandbox/api/v1/posts/{post_id:str}/replies": 401,
    "/sandbox/stripe/v1/billing_portal/sessions": 401,
    "/sandbox/stripe/v1/checkout/sessions": 401,
    "/sandbox/stripe/v1/customers": 401,
    "/sandbox/stripe/v1/prices": 401,
    "/sandbox/stripe/v1/prices/{object_id:str}": 401,
    "/sandbox/stripe/v1/products": 401,
    "/sandbox/stripe/v1/products/{object_id:str}": 401,
    "/sandbox/stripe/v1/refunds": 401,
    "/sandbox/stripe/v1/subscriptions/{object_id:str}": 401,
    "/sandbox/stripe/v1/test_helpers/subscriptions/{object_id:str}/advance": 401,
}
UNSAFE = {"POST", "PUT", "PATCH", "DELETE"}


async def test_every_unsafe_route_is_classified_here(live_server: LiveServer) -> None:
    """A new unsafe route fails this test until it is added to one of the lists above, and tested with them."""
    app = create_app(live_server.settings)
    try:
        unsafe = {
            route.path
            for route in app.routes
            for handler in getattr(route, "route_handlers", [])
            # The admin area answers 404 to all but administrators; tests/admin covers each of its routes.
            if UNSAFE & set(handler.http_methods) and not route.path.startswith("/admin")
        }
    finally:
        await app.state.db_engine_handle.dispose()

    assert unsafe == set(MEMBER_ACTIONS) | set(PUBLIC_ACTIONS) | set(EXTERNAL_ACTIONS)


def concrete(path: str, session_id: uuid.UUID) -> str:
    return (
        path.replace("{session_id:uuid}", str(session_id))
        .replace("{token:str}", "some-token")
        .replace("{form_name:str}/{field_name:str}", "signup/email")
        .replace("{platform:str}", "sandbox")
        .replace("{account_id:uuid}", str(uuid.uuid4()))
        .replace("{entry_id:uuid}", str(uuid.uuid4()))
        .replace("{draw_id:uuid}", str(uuid.uuid4()))
        .replace("{session_id:str}", "cs_test_unknown")
        .replace("{portal_id:str}", "bps_test_unknown")
        .replace("{subscription_id:str}", "sub_test_unknown")
        .replace("{action:str}", "cancel")
        .replace("{post_id:str}", "sbx_post_unknown")
        .replace("{object_id:str}", "obj_unknown")
    )


@pytest.mark.parametrize("path", list(MEMBER_ACTIONS))
@pytest.mark.parametrize("as_htmx", [False, True], ids=["form", "htmx"])
async def test_an_anonymous_visitor_cannot_use_a_members_action(
    client: httpx.AsyncClient, logged_in: Any, new_client: Any, engine: AsyncEngine, path: str, as_htmx: bool
) -> None:
    member, user = await logged_in()
    member_session = await session_id_of(engine, member)
    url = concrete(path, member_session)
    headers = {"HX-Request": "true"} if as_htmx else {}

    response = await post_form(client, url, MEMBER_ACTIONS[path], headers=headers)

    location = hx_location(response) if as_htmx else response.headers.get("location")
    assert response.status_code == (200 if as_htmx else 303)
    assert location == f"/login?next={url}"
    assert await session_exists(engine, member_session)
    async with session_factory(engine)() as session:
        name = await session.scalar(sa.text("SELECT full_name FROM users WHERE id = :id"), {"id": user.id})
    assert name is None
    assert (await log_in(new_client(), user.email, user.password)).status_code == 303


@pytest.mark.parametrize("path", [*MEMBER_ACTIONS, *PUBLIC_ACTIONS])
async def test_an_anonymous_unsafe_request_without_the_csrf_token_is_refused(
    client: httpx.AsyncClient, path: str
) -> None:
    await csrf_token(client)  # the visitor has the cookie, but the form carries no token

    response = await client.post(concrete(path, uuid.uuid4()), data={"email": "mallory@example.com"})

    assert response.status_code == 403
    assert "This form has expired" in response.text


@pytest.mark.parametrize("path", list(EXTERNAL_ACTIONS))
async def test_a_server_to_server_endpoint_refuses_a_request_without_its_credential(
    client: httpx.AsyncClient, path: str
) -> None:
    response = await client.post(concrete(path, uuid.uuid4()), data={"email": "mallory@example.com"})

    assert response.status_code == EXTERNAL_ACTIONS[path]
    assert response.headers["content-type"].startswith("application/json")
