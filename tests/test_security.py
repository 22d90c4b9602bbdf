"""What every response promises: security headers, CSRF, cookies, health."""

from __future__ import annotations

import re
from typing import Any

import httpx
from litestar.testing import AsyncTestClient

from tests.conftest import LiveServer, Mailbox, hx_location, log_in, post_form, sign_up
from web.app import create_app
from web.settings import Settings


async def test_every_page_carries_the_security_headers(client: httpx.AsyncClient) -> None:
    for path in ("/", "/login", "/signup", "/does-not-exist"):
        response = await client.get(path)
        csp = response.headers["content-security-policy"]
        assert "script-src 'self'" in csp
        assert "unsafe-inline" not in csp
        assert "frame-ancestors 'none'" in csp
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["referrer-policy"] == "strict-origin-when-cross-origin"
        assert "strict-transport-security" not in response.headers


async def test_pages_have_no_inline_script(client: httpx.AsyncClient) -> None:
    for path in ("/", "/login", "/signup", "/forgot-password"):
        html = (await client.get(path)).text
        assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html)
        assert " on" + "click=" not in html and "style=" not in html


async def test_an_unsafe_request_without_the_csrf_token_is_refused(client: httpx.AsyncClient, make_user: Any) -> None:
    user = await make_user()
    await client.get("/login")
    refused = await client.post("/login", data={"email": user.email, "password": user.password})
    assert refused.status_code == 403
    assert "This form has expired" in refused.text
    forged = await client.post("/login", data={"email": user.email, "password": user.password, "_csrf_token": "forged"})
    assert forged.status_code == 403


async def test_htmx_sends_the_csrf_token_as_a_header(client: httpx.AsyncClient, make_user: Any) -> None:
    user = await make_user()
    page = await client.get("/login")
    token = client.cookies["csrftoken"]
    assert f'"x-csrftoken": "{token}"' in page.text
    response = await client.post(
        "/login",
        data={"email": user.email, "password": user.password},
        headers={"x-csrftoken": token, "HX-Request": "true"},
    )
    assert response.status_code == 200
    assert hx_location(response) == "/draws"


async def test_health_is_ok_when_the_database_answers(client: httpx.AsyncClient) -> None:
    response = await client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": "ok"}


async def test_health_is_503_when_the_database_is_down(live_server: LiveServer) -> None:
    app = create_app(live_server.settings, database_url="postgresql://postgres@127.0.0.1:1/nowhere")
    async with AsyncTestClient(app) as down:
        response = await down.get("/healthz")
    assert response.status_code == 503
    assert response.json()["database"] == "unavailable"


async def test_outside_development_cookies_are_secure_and_hsts_is_sent(live_server: LiveServer, make_user: Any) -> None:
    settings: Settings = live_server.settings.with_overrides(
        environment="production", base_url="https://cleack.example"
    )
    user = await make_user()
    app = create_app(settings)
    async with AsyncTestClient(app, base_url="https://cleack.example") as secure:
        page = await secure.get("/login")
        assert page.headers["strict-transport-security"].startswith("max-age=")
        assert "Secure" in page.headers["set-cookie"] and "__Host-csrftoken" in page.headers["set-cookie"]
        token = secure.cookies["__Host-csrftoken"]
        response = await secure.post(
            "/login",
            data={"email": user.email, "password": user.password, "_csrf_token": token},
            follow_redirects=False,
        )
        assert response.status_code == 303
        session_cookie = response.headers["set-cookie"]
        assert session_cookie.startswith("__Host-cleack_session=")
        assert "Secure" in session_cookie and "HttpOnly" in session_cookie and "Path=/" in session_cookie
        assert (await secure.get("/dev/outbox")).status_code == 404


async def test_the_development_outbox_lists_mail_with_clickable_links(
    client: httpx.AsyncClient, mailbox: Mailbox
) -> None:
    await sign_up(client, "outbox@example.com")
    page = await client.get("/dev/outbox")
    assert page.status_code == 200
    assert "Confirm your email for Cleack" in page.text
    link = mailbox.last_link("outbox@example.com")
    assert f'<a href="{link}"' in page.text


async def test_logged_in_pages_render_for_a_creator(logged_in: Any) -> None:
    client, _ = await logged_in()
    for path in ("/draws", "/credits", "/settings", "/settings/sessions", "/"):
        response = await client.get(path)
        assert response.status_code == 200, path
    assert (await post_form(client, "/logout", {})).status_code == 303


async def test_a_logged_in_user_visiting_login_goes_to_the_dashboard(logged_in: Any) -> None:
    client, user = await logged_in()
    assert (await client.get("/login")).headers["location"] == "/draws"
    assert (await log_in(client, user.email, user.password)).status_code == 303


async def test_an_unknown_address_is_a_404_that_still_knows_who_is_logged_in(logged_in: Any) -> None:
    client, _ = await logged_in()
    for path in ("/nope", "/draws/nope/deeper", "/static/../../etc/passwd"):
        response = await client.get(path)
        assert response.status_code == 404
    page = await client.get("/nope")
    assert "Page not found" in page.text
    assert 'data-testid="nav-balance">3<' in page.text
    assert (await client.post("/nope", data={})).status_code in (403, 404, 405)
