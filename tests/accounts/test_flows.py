"""Accounts as a user lives them: over HTTP, with mail through a real SMTP server."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.conftest import PASSWORD, Mailbox, log_in, post_form, sign_up, verify_from_mail
from web.accounts.models import Session, User, UserActivity
from web.credits.models import Credit
from web.db import session_factory
from web.security import PASSWORD_HASHER, hash_token


async def _scalar(engine: AsyncEngine, statement: Any) -> Any:
    async with session_factory(engine)() as session:
        return await session.scalar(statement)


async def test_sign_up_sends_a_verification_mail_and_login_waits_for_it(
    client: httpx.AsyncClient, mailbox: Mailbox, engine: AsyncEngine
) -> None:
    response = await sign_up(client, "new.creator@example.com", name="New Creator")
    assert response.status_code == 303
    assert response.headers["location"] == "/signup/sent"

    [message] = mailbox.wait_for("new.creator@example.com")
    assert message["Subject"] == "Confirm your email for Cleack"
    assert "/verify-email/" in mailbox.last_link("new.creator@example.com")

    refused = await log_in(client, "new.creator@example.com")
    assert refused.status_code == 403
    assert "Please confirm your email address first" in refused.text
    assert await _scalar(engine, sa.select(sa.func.count()).select_from(Session)) == 0


async def test_verification_grants_the_welcome_bonus_once_however_many_clicks(
    client: httpx.AsyncClient, mailbox: Mailbox, engine: AsyncEngine, new_client: Any
) -> None:
    await sign_up(client, "twice@example.com")
    link_path = httpx.URL(mailbox.last_link("twice@example.com")).path

    first = await verify_from_mail(client, mailbox, "twice@example.com")
    assert first.status_code == 303
    assert first.headers["location"] == "/login?notice=verified"

    others = [new_client() for _ in range(5)]
    answers = await asyncio.gather(*(post_form(other, link_path, {}) for other in others))
    assert {answer.status_code for answer in answers} == {400}
    assert "already been used" in answers[0].text

    user_id = await _scalar(engine, sa.select(User.id).where(User.email == "twice@example.com"))
    bonuses = await _scalar(engine, sa.select(sa.func.count()).select_from(Credit).where(Credit.user_id == user_id))
    assert bonuses == 1
    assert await _scalar(engine, sa.select(User.credit_balance).where(User.id == user_id)) == 3


async def test_a_verification_link_opened_by_a_mail_scanner_is_not_used_up(
    client: httpx.AsyncClient, mailbox: Mailbox, engine: AsyncEngine
) -> None:
    await sign_up(client, "scanned@example.com")
    path = httpx.URL(mailbox.last_link("scanned@example.com")).path
    for _ in range(3):
        assert (await client.get(path)).status_code == 200
    assert not await _scalar(engine, sa.select(User.email_verified).where(User.email == "scanned@example.com"))
    assert (await post_form(client, path, {})).status_code == 303


async def test_login_then_dashboard_then_logout(client: httpx.AsyncClient, make_user: Any) -> None:
    user = await make_user(email="creator@example.com")
    response = await log_in(client, "CREATOR@example.com", user.password)
    assert response.status_code == 303
    assert response.headers["location"] == "/draws"
    cookie = response.headers["set-cookie"]
    assert "cleack_session=" in cookie and "HttpOnly" in cookie and "SameSite=lax" in cookie

    dashboard = await client.get("/draws")
    assert dashboard.status_code == 200
    assert "No draws yet" in dashboard.text
    assert 'data-testid="nav-balance">3<' in dashboard.text

    logout = await post_form(client, "/logout", {})
    assert logout.status_code == 303
    assert (await client.get("/draws")).status_code == 303


async def test_wrong_password_gets_one_message_whatever_the_account(client: httpx.AsyncClient, make_user: Any) -> None:
    await make_user(email="known@example.com")
    wrong = await log_in(client, "known@example.com", "not the password at all")
    unknown = await log_in(client, "nobody@example.com", "not the password at all")
    for response in (wrong, unknown):
        assert response.status_code == 400
        assert "Incorrect email or password." in response.text
    assert 'value="known@example.com"' in wrong.text
    assert 'value="nobody@example.com"' in unknown.text


async def test_the_session_id_rotates_at_login(client: httpx.AsyncClient, make_user: Any, engine: AsyncEngine) -> None:
    user = await make_user()
    await log_in(client, user.email)
    first = client.cookies.get("cleack_session")
    await log_in(client, user.email)
    second = client.cookies.get("cleack_session")
    assert first and second and first != second
    stored = list(await _all(engine, sa.select(Session.token_hash).where(Session.user_id == user.id)))
    assert stored == [hash_token(second)]


async def _all(engine: AsyncEngine, statement: Any) -> list[Any]:
    async with session_factory(engine)() as session:
        return list(await session.scalars(statement))


async def test_the_database_keeps_only_a_hash_of_the_session_token(
    client: httpx.AsyncClient, make_user: Any, engine: AsyncEngine
) -> None:
    user = await make_user()
    await log_in(client, user.email)
    token = client.cookies.get("cleack_session")
    assert token
    async with engine.connect() as connection:
        dump = (await connection.execute(sa.text("SELECT row_to_json(s)::text FROM sessions s"))).scalars().all()
    assert token not in "".join(dump)


async def test_password_reset_by_mail_changes_the_password_and_ends_every_session(
    client: httpx.AsyncClient, mailbox: Mailbox, make_user: Any, new_client: Any
) -> None:
    user = await make_user(email="forgetful@example.com")
    other_device = new_client()
    await log_in(other_device, user.email)
    assert (await other_device.get("/draws")).status_code == 200

    asked = await post_form(client, "/forgot-password", {"email": "Forgetful@example.com"})
    assert asked.status_code == 200
    assert "we sent it a link" in asked.text
    path = httpx.URL(mailbox.last_link("forgetful@example.com")).path
    assert path.startswith("/reset-password/")
    assert (await client.get(path)).status_code == 200

    done = await post_form(client, path, {"password": "a brand new passphrase"})
    assert done.status_code == 303
    assert done.headers["location"] == "/login?notice=password_reset"

    assert (await other_device.get("/draws")).status_code == 303
    assert (await log_in(client, user.email, PASSWORD)).status_code == 400
    assert (await log_in(client, user.email, "a brand new passphrase")).status_code == 303
    reused = await post_form(new_client(), path, {"password": "yet another passphrase"})
    assert reused.status_code == 400
    assert "already been used" in reused.text


async def test_reset_for_an_unknown_address_says_the_same_and_sends_nothing(
    client: httpx.AsyncClient, mailbox: Mailbox
) -> None:
    response = await post_form(client, "/forgot-password", {"email": "ghost@example.com"})
    assert response.status_code == 200
    assert "If an account exists for ghost@example.com" in response.text
    await asyncio.sleep(0.2)
    assert mailbox.to("ghost@example.com") == []


async def test_an_invalid_reset_link_is_explained(client: httpx.AsyncClient) -> None:
    response = await client.get("/reset-password/not-a-real-token")
    assert response.status_code == 400
    assert "This link is not valid" in response.text


async def test_password_change_keeps_this_session_and_revokes_the_others(logged_in: Any, new_client: Any) -> None:
    client, user = await logged_in()
    other = new_client()
    await log_in(other, user.email)

    wrong = await post_form(
        client, "/settings/password", {"current_password": "not it at all", "new_password": "another long phrase"}
    )
    assert wrong.status_code == 400
    assert "This is not your current password." in wrong.text

    changed = await post_form(
        client, "/settings/password", {"current_password": PASSWORD, "new_password": "another long phrase"}
    )
    assert changed.status_code == 303
    page = await client.get("/settings?notice=password_changed")
    assert "Your other sessions were logged out" in page.text
    assert (await other.get("/draws")).status_code == 303
    assert (await log_in(new_client(), user.email, "another long phrase")).status_code == 303


async def test_active_sessions_can_be_seen_and_revoked(logged_in: Any, new_client: Any, engine: AsyncEngine) -> None:
    client, user = await logged_in()
    phone = new_client()
    await log_in(phone, user.email, user.password)

    page = await client.get("/settings/sessions")
    assert page.status_code == 200
    assert page.text.count('class="session-item"') == 2
    assert page.text.count("This browser") == 1

    phone_token = phone.cookies.get("cleack_session")
    phone_session = await _scalar(engine, sa.select(Session.id).where(Session.token_hash == hash_token(phone_token)))
    revoked = await post_form(client, f"/settings/sessions/{phone_session}/revoke", {}, headers={"HX-Request": "true"})
    assert revoked.status_code == 200
    assert "Session revoked." in revoked.text
    assert revoked.text.count('class="session-item"') == 1
    assert "<html" not in revoked.text

    assert (await phone.get("/draws")).status_code == 303
    assert (await client.get("/draws")).status_code == 200
    again = await post_form(client, f"/settings/sessions/{phone_session}/revoke", {})
    assert again.status_code == 404


async def test_a_banned_user_is_locked_out_at_once(logged_in: Any, engine: AsyncEngine, new_client: Any) -> None:
    client, user = await logged_in()
    async with session_factory(engine)() as session:
        await session.execute(sa.update(User).where(User.id == user.id).values(role="banned"))
        await session.commit()
    assert (await client.get("/draws")).status_code == 303
    again = await log_in(new_client(), user.email)
    assert again.status_code == 403
    assert "suspended" in again.text


async def test_login_rehashes_a_password_stored_with_older_parameters(
    client: httpx.AsyncClient, make_user: Any, engine: AsyncEngine
) -> None:
    from argon2 import PasswordHasher

    user = await make_user()
    weak = PasswordHasher(time_cost=1, memory_cost=8 * 1024, parallelism=1).hash(PASSWORD)
    async with session_factory(engine)() as session:
        await session.execute(sa.update(User).where(User.id == user.id).values(password_hash=weak))
        await session.commit()

    assert (await log_in(client, user.email)).status_code == 303

    stored = await _scalar(engine, sa.select(User.password_hash).where(User.id == user.id))
    assert stored != weak
    assert stored.startswith("$argon2id$")
    assert not PASSWORD_HASHER.check_needs_rehash(stored)
    assert PASSWORD_HASHER.verify(stored, PASSWORD)


async def test_passwords_are_hashed_with_argon2id_at_owasp_strength_or_more(
    client: httpx.AsyncClient, mailbox: Mailbox, engine: AsyncEngine
) -> None:
    await sign_up(client, "hash@example.com")
    stored = await _scalar(engine, sa.select(User.password_hash).where(User.email == "hash@example.com"))
    assert stored.startswith("$argon2id$v=19$")
    params = dict(part.split("=") for part in stored.split("$")[3].split(","))
    assert int(params["m"]) >= 19 * 1024
    assert int(params["t"]) >= 2


async def test_logins_are_rate_limited_per_account(client: httpx.AsyncClient, make_user: Any) -> None:
    user = await make_user()
    statuses = [(await log_in(client, user.email, "wrong password here")).status_code for _ in range(11)]
    assert statuses[:10] == [400] * 10
    assert statuses[10] == 429
    blocked = await log_in(client, user.email)
    assert blocked.status_code == 429
    assert "Too many attempts" in blocked.text


async def test_sign_ups_are_rate_limited_per_address(client: httpx.AsyncClient, mailbox: Mailbox) -> None:
    statuses = [(await sign_up(client, f"burst{number}@example.com")).status_code for number in range(11)]
    assert statuses[:10] == [303] * 10
    assert statuses[10] == 429


async def test_reset_requests_are_rate_limited_per_account(client: httpx.AsyncClient, make_user: Any) -> None:
    user = await make_user()
    statuses = [(await post_form(client, "/forgot-password", {"email": user.email})).status_code for _ in range(4)]
    assert statuses == [200, 200, 200, 429]


async def test_login_activity_is_recorded(client: httpx.AsyncClient, make_user: Any, engine: AsyncEngine) -> None:
    user = await make_user()
    await log_in(client, user.email)
    actions = await _all(engine, sa.select(UserActivity.action).where(UserActivity.user_id == user.id))
    assert actions == ["login"]


async def test_login_only_redirects_to_local_pages(client: httpx.AsyncClient, make_user: Any) -> None:
    user = await make_user()
    for target, expected in (("/credits", "/credits"), ("https://evil.example/", "/draws"), ("//evil", "/draws")):
        response = await post_form(client, "/login", {"email": user.email, "password": PASSWORD, "next": target})
        assert response.headers["location"] == expected


async def test_inline_validation_answers_just_the_message_for_each_form(client: httpx.AsyncClient) -> None:
    cases = {
        ("signup", "email"): ("not-an-email", "Enter a valid email address"),
        ("signup", "password"): ("short", "Use at least 10 characters."),
        ("login", "email"): ("", "Enter your email address."),
        ("forgot", "email"): ("x@", "Enter a valid email address"),
        ("reset", "password"): ("password123", "This password is too common."),
        ("profile", "full_name"): ("x" * 121, "too long"),
        ("password", "new_password"): ("123", "Use at least 10 characters."),
    }
    for (form, field), (value, message) in cases.items():
        response = await post_form(client, f"/forms/validate/{form}/{field}", {field: value})
        assert response.status_code == 200
        assert message in response.text
        assert response.text.strip().startswith(f'<p class="field-error" id="{field}-error"')
    fine = await post_form(client, "/forms/validate/signup/email", {"email": "fine@example.com"})
    assert '<p class="field-error" id="email-error" role="alert" aria-live="polite"></p>' in fine.text
    assert (await post_form(client, "/forms/validate/signup/role", {"role": "admin"})).status_code == 404
