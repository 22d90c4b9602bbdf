"""The sandbox's OAuth endpoints over real HTTP: PKCE, single-use codes, refresh rotation, revocation."""

from __future__ import annotations

import secrets
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.conftest import LiveServer, post_form
from tests.sandbox.dance import (
    authorization_code,
    authorize_params,
    client_credentials,
    connect,
    exchange,
    query_of,
    refresh,
)
from web.db import session_factory
from web.sandbox.services import SandboxService


async def me(client: httpx.AsyncClient, access_token: str) -> httpx.Response:
    return await client.get("/sandbox/api/v1/me", headers={"Authorization": f"Bearer {access_token}"})


async def test_the_full_dance_with_a_real_pkce_verifier_gives_working_tokens(
    client: httpx.AsyncClient, live_server: LiveServer
) -> None:
    verifier = secrets.token_urlsafe(64)
    code = await authorization_code(client, live_server, verifier, "lena_giveaways")
    assert code.startswith("sbx_code_")
    answer = await exchange(client, live_server, code, verifier)
    assert answer.status_code == 200 and answer.headers["cache-control"] == "no-store"
    body = answer.json()
    assert body["token_type"] == "bearer" and body["expires_in"] == 3600
    assert body["access_token"].startswith("sbx_at_") and body["refresh_token"].startswith("sbx_rt_")
    assert "comments.read" in body["scope"].split()
    profile = await me(client, body["access_token"])
    assert profile.status_code == 200 and profile.json()["username"] == "lena_giveaways"


async def test_http_basic_client_authentication_is_accepted(client: httpx.AsyncClient, live_server: LiveServer) -> None:
    verifier = secrets.token_urlsafe(64)
    code = await authorization_code(client, live_server, verifier)
    credentials = client_credentials(live_server)
    answer = await client.post(
        "/sandbox/oauth/token",
        data={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": f"{live_server.url}/accounts/callback/sandbox",
            "code_verifier": verifier,
        },
        auth=(credentials["client_id"], credentials["client_secret"]),
    )
    assert answer.status_code == 200, answer.text


async def test_the_consent_page_offers_the_logged_in_creators_own_account(
    logged_in: Any, live_server: LiveServer
) -> None:
    client, _ = await logged_in(email="Mia.Rose+shop@example.com")
    page = await client.get("/sandbox/oauth/authorize", params=authorize_params(live_server, "v" * 43))
    assert 'value="mia.rose_shop"' in page.text
    assert "Cleack wants to" in page.text and "publish replies under your posts" in page.text
    anonymous = await httpx.AsyncClient(base_url=live_server.url).get(
        "/sandbox/oauth/authorize", params=authorize_params(live_server, "v" * 43)
    )
    assert 'value="sandbox_creator"' in anonymous.text


async def test_deny_goes_back_with_access_denied_and_the_state(
    client: httpx.AsyncClient, live_server: LiveServer
) -> None:
    params = authorize_params(live_server, "v" * 43)
    await client.get("/sandbox/oauth/authorize", params=params)
    answer = await post_form(client, "/sandbox/oauth/authorize", {**params, "username": "x_y", "decision": "deny"})
    assert answer.status_code == 303
    back = query_of(answer.headers["location"])
    assert back["error"] == "access_denied" and back["state"] == params["state"] and back["error_description"]


async def test_the_consent_form_needs_its_csrf_token_and_a_valid_username(
    client: httpx.AsyncClient, live_server: LiveServer
) -> None:
    params = authorize_params(live_server, "v" * 43)
    await client.get("/sandbox/oauth/authorize", params=params)
    forged = await client.post("/sandbox/oauth/authorize", data={**params, "username": "x_y", "decision": "allow"})
    assert forged.status_code == 403
    bad = await post_form(client, "/sandbox/oauth/authorize", {**params, "username": "../admin", "decision": "allow"})
    assert bad.status_code == 422 and "letters, digits, dots and underscores" in bad.text


@pytest.mark.parametrize(
    ("change", "shown"),
    [({"client_id": "someone-else"}, "unknown client_id"), ({"redirect_uri": "https://evil.example/cb"}, "only sends")],
)
async def test_an_unknown_client_or_redirect_uri_gets_an_error_page_never_a_redirect(
    client: httpx.AsyncClient, live_server: LiveServer, change: dict[str, str], shown: str
) -> None:
    answer = await client.get("/sandbox/oauth/authorize", params={**authorize_params(live_server, "v" * 43), **change})
    assert answer.status_code == 400 and shown in answer.text and "location" not in answer.headers


@pytest.mark.parametrize(
    ("change", "error"),
    [
        ({"response_type": "token"}, "unsupported_response_type"),
        ({"code_challenge_method": "plain"}, "invalid_request"),
        ({"code_challenge": "short"}, "invalid_request"),
        ({"state": ""}, "invalid_request"),
        ({"scope": "profile everything"}, "invalid_scope"),
    ],
)
async def test_a_bad_authorization_request_goes_back_with_its_error(
    client: httpx.AsyncClient, live_server: LiveServer, change: dict[str, str], error: str
) -> None:
    answer = await client.get("/sandbox/oauth/authorize", params={**authorize_params(live_server, "v" * 43), **change})
    assert answer.status_code == 303
    assert answer.headers["location"].startswith(f"{live_server.url}/accounts/callback/sandbox?")
    assert query_of(answer.headers["location"])["error"] == error


async def test_a_wrong_verifier_or_redirect_uri_is_refused(client: httpx.AsyncClient, live_server: LiveServer) -> None:
    verifier = secrets.token_urlsafe(64)
    code = await authorization_code(client, live_server, verifier)
    wrong = await exchange(client, live_server, code, secrets.token_urlsafe(64))
    assert wrong.status_code == 400 and wrong.json()["error"] == "invalid_grant"
    elsewhere = await exchange(client, live_server, code, verifier, redirect_uri="https://evil.example/cb")
    assert elsewhere.status_code == 400 and elsewhere.json()["error"] == "invalid_grant"
    missing = await exchange(client, live_server, code, "")
    assert missing.status_code == 400 and missing.json()["error"] == "invalid_request"
    assert (await exchange(client, live_server, code, verifier)).status_code == 200


async def test_a_replayed_code_is_refused_and_revokes_what_it_gave(
    client: httpx.AsyncClient, live_server: LiveServer
) -> None:
    verifier = secrets.token_urlsafe(64)
    code = await authorization_code(client, live_server, verifier)
    first = (await exchange(client, live_server, code, verifier)).json()
    replay = await exchange(client, live_server, code, verifier)
    assert replay.status_code == 400 and replay.json()["error"] == "invalid_grant"
    assert (await me(client, first["access_token"])).json()["error"]["code"] == "invalid_token"
    assert (await refresh(client, live_server, first["refresh_token"])).json()["error"] == "invalid_grant"


async def test_refreshing_rotates_and_a_replayed_refresh_token_revokes_the_family(
    client: httpx.AsyncClient, live_server: LiveServer
) -> None:
    tokens = await connect(client, live_server)
    rotated = await refresh(client, live_server, tokens.refresh_token)
    assert rotated.status_code == 200
    second = rotated.json()
    assert second["access_token"] != tokens.access_token and second["refresh_token"] != tokens.refresh_token
    assert (await me(client, second["access_token"])).status_code == 200

    replay = await refresh(client, live_server, tokens.refresh_token)
    assert replay.status_code == 400 and replay.json()["error"] == "invalid_grant"
    for access in (tokens.access_token, second["access_token"]):
        assert (await me(client, access)).status_code == 401
    assert (await refresh(client, live_server, second["refresh_token"])).json()["error"] == "invalid_grant"


async def test_revoking_withdraws_the_grant_and_unknown_tokens_are_fine(
    client: httpx.AsyncClient, live_server: LiveServer
) -> None:
    tokens = await connect(client, live_server)
    assert (await client.post("/sandbox/oauth/revoke", data={"token": "sbx_at_unknown"})).status_code == 200
    assert (await client.post("/sandbox/oauth/revoke", data={"token": tokens.access_token})).status_code == 200
    gone = await me(client, tokens.access_token)
    assert gone.status_code == 401 and gone.json()["error"]["code"] == "invalid_token"
    assert (await refresh(client, live_server, tokens.refresh_token)).status_code == 400
    missing = await client.post("/sandbox/oauth/revoke", data={})
    assert missing.status_code == 400 and missing.json()["error"] == "invalid_request"
    wrong_client = await client.post("/sandbox/oauth/revoke", data={"token": "x"}, auth=("cleack-sandbox", "wrong"))
    assert wrong_client.status_code == 401 and wrong_client.json()["error"] == "invalid_client"


async def test_an_expired_access_token_says_so_and_refreshing_brings_access_back(
    client: httpx.AsyncClient, live_server: LiveServer, engine: AsyncEngine
) -> None:
    tokens = await connect(client, live_server, "expiring_one")
    async with session_factory(engine)() as db:
        service = SandboxService(db, live_server.settings)
        account = await service.account("expiring_one")
        assert account is not None
        await service.expire_access_tokens(account.id)
    expired = await me(client, tokens.access_token)
    assert expired.status_code == 401 and expired.json()["error"]["code"] == "token_expired"
    fresh = (await refresh(client, live_server, tokens.refresh_token)).json()
    assert (await client.get("/sandbox/api/v1/me", headers=bearer_of(fresh))).status_code == 200


def bearer_of(body: dict[str, Any]) -> dict[str, str]:
    return {"Authorization": f"Bearer {body['access_token']}"}


@pytest.mark.parametrize(
    ("data", "status", "error"),
    [
        (
            {"grant_type": "authorization_code", "code": "x", "client_id": "cleack-sandbox", "client_secret": "no"},
            401,
            "invalid_client",
        ),
        ({"grant_type": "authorization_code", "code": "x"}, 401, "invalid_client"),
        ({"grant_type": "password"}, 400, "unsupported_grant_type"),
        ({}, 400, "invalid_request"),
        ({"grant_type": "authorization_code"}, 400, "invalid_request"),
        ({"grant_type": "authorization_code", "code": "sbx_code_forged"}, 400, "invalid_grant"),
        ({"grant_type": "refresh_token"}, 400, "invalid_request"),
        ({"grant_type": "refresh_token", "refresh_token": "sbx_rt_forged"}, 400, "invalid_grant"),
    ],
)
async def test_every_bad_token_request_gets_an_rfc_6749_error(
    client: httpx.AsyncClient, live_server: LiveServer, data: dict[str, str], status: int, error: str
) -> None:
    credentials = {} if "client_id" in data or status == 401 else client_credentials(live_server)
    answer = await client.post("/sandbox/oauth/token", data={**data, **credentials})
    assert answer.status_code == status and answer.json()["error"] == error
    assert answer.json()["error_description"]
    if status == 401:
        assert answer.headers["www-authenticate"].startswith("Basic")


async def test_tokens_are_stored_only_as_hashes(
    client: httpx.AsyncClient, live_server: LiveServer, engine: AsyncEngine
) -> None:
    import sqlalchemy as sa

    tokens = await connect(client, live_server)
    async with engine.connect() as conn:
        stored = " ".join(str(row) for row in await conn.execute(sa.text("SELECT * FROM sandbox_grants")))
    assert tokens.access_token not in stored and tokens.refresh_token not in stored
