"""The OAuth dance with the sandbox, as the app (or any client) does it over HTTP."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit

import httpx

from tests.conftest import LiveServer, post_form
from web.social.providers import SANDBOX_CLIENT_ID, sandbox_client_secret
from web.social.providers.base import code_challenge


@dataclass(frozen=True)
class Tokens:
    access_token: str
    refresh_token: str


def query_of(url: str) -> dict[str, str]:
    return {key: values[0] for key, values in parse_qs(urlsplit(url).query).items()}


def authorize_params(live_server: LiveServer, verifier: str, state: str = "state-" + "x" * 40) -> dict[str, str]:
    return {
        "client_id": SANDBOX_CLIENT_ID,
        "redirect_uri": f"{live_server.url}/accounts/callback/sandbox",
        "response_type": "code",
        "scope": "profile posts.read comments.read likes.read followers.read replies.write",
        "state": state,
        "code_challenge": code_challenge(verifier),
        "code_challenge_method": "S256",
    }


async def authorization_code(
    client: httpx.AsyncClient, live_server: LiveServer, verifier: str, username: str = "lena_giveaways"
) -> str:
    params = authorize_params(live_server, verifier)
    page = await client.get("/sandbox/oauth/authorize", params=params)
    assert page.status_code == 200, page.text
    answer = await post_form(client, "/sandbox/oauth/authorize", {**params, "username": username, "decision": "allow"})
    assert answer.status_code == 303, answer.text
    back = answer.headers["location"]
    assert back.startswith(params["redirect_uri"] + "?")
    assert query_of(back)["state"] == params["state"]
    return query_of(back)["code"]


def client_credentials(live_server: LiveServer) -> dict[str, str]:
    return {"client_id": SANDBOX_CLIENT_ID, "client_secret": sandbox_client_secret(live_server.settings)}


async def exchange(
    client: httpx.AsyncClient, live_server: LiveServer, code: str, verifier: str, **overrides: str
) -> httpx.Response:
    data = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": f"{live_server.url}/accounts/callback/sandbox",
        "code_verifier": verifier,
        **client_credentials(live_server),
        **overrides,
    }
    return await client.post("/sandbox/oauth/token", data=data)


async def refresh(client: httpx.AsyncClient, live_server: LiveServer, refresh_token: str) -> httpx.Response:
    data = {"grant_type": "refresh_token", "refresh_token": refresh_token, **client_credentials(live_server)}
    return await client.post("/sandbox/oauth/token", data=data)


async def connect(client: httpx.AsyncClient, live_server: LiveServer, username: str = "lena_giveaways") -> Tokens:
    verifier = secrets.token_urlsafe(64)
    code = await authorization_code(client, live_server, verifier, username)
    answer = await exchange(client, live_server, code, verifier)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    return Tokens(body["access_token"], body["refresh_token"])


def bearer(tokens: Tokens) -> dict[str, str]:
    return {"Authorization": f"Bearer {tokens.access_token}"}
