"""A tiny ASGI toolkit for the fakes of outside services, and a way to serve one on a real socket.

A fake is an `Emulator`: routes (method + path pattern) to handlers that take a `Request` and
answer a `Reply`. It records every request, and can be told to fail the next matching requests
(`fail("rate_limited", path="/comments")`); each fake decides what a failure looks like on its wire.
"""

from __future__ import annotations

import json
import re
import secrets
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import uvicorn

from web.social.providers.base import Provider, ProviderConfig, TokenSet

CLIENT_ID = "cleack-test-client"
CLIENT_SECRET = "cleack-test-secret"


def redirect_uri(platform: str) -> str:
    return f"http://127.0.0.1:8000/accounts/callback/{platform}"


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes

    @property
    def form(self) -> dict[str, str]:
        if not self.headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
            return {}
        return {key: values[0] for key, values in parse_qs(self.body.decode(), keep_blank_values=True).items()}

    @property
    def params(self) -> dict[str, str]:
        """Query and form fields together, the way Graph-style APIs read them."""
        return {**self.query, **self.form}

    def json(self) -> Any:
        try:
            return json.loads(self.body or b"null")
        except ValueError:
            return None

    @property
    def bearer(self) -> str | None:
        value = self.headers.get("authorization", "")
        return value[7:] if value.lower().startswith("bearer ") else None


@dataclass
class Reply:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)


def json_reply(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> Reply:
    return Reply(status, json.dumps(data).encode(), {"content-type": "application/json", **(headers or {})})


def text_reply(text: str, status: int = 200, content_type: str = "text/html") -> Reply:
    return Reply(status, text.encode(), {"content-type": content_type})


def redirect_reply(url: str, params: dict[str, str]) -> Reply:
    separator = "&" if "?" in url else "?"
    return Reply(302, b"", {"location": f"{url}{separator}{urlencode(params)}"})


Handler = Callable[..., Reply]


@dataclass
class Failure:
    kind: str
    path: str | None
    times: int


class Emulator:
    """A minimal ASGI app with a route table, a request log and failure switches."""

    def __init__(self) -> None:
        self.routes: list[tuple[str, re.Pattern[str], Handler]] = []
        self.requests: list[Request] = []
        self.failures: list[Failure] = []
        self.base_url = ""  # set by `serve`

    def route(self, method: str, pattern: str, handler: Handler) -> None:
        self.routes.append((method, re.compile(f"^{pattern}$"), handler))

    def fail(self, kind: str, *, path: str | None = None, times: int = 1) -> None:
        """Answer the next `times` requests whose path contains `path` with the failure `kind`."""
        self.failures.append(Failure(kind, path, times))

    def reset(self) -> None:
        self.failures.clear()
        self.requests.clear()

    def take_failure(self, request: Request) -> str | None:
        for failure in self.failures:
            if failure.path is None or failure.path in request.path:
                failure.times -= 1
                if failure.times <= 0:
                    self.failures.remove(failure)
                return failure.kind
        return None

    def failure_reply(self, kind: str, request: Request) -> Reply:
        raise NotImplementedError

    def requests_to(self, path_part: str) -> list[Request]:
        return [request for request in self.requests if path_part in request.path]

    def dispatch(self, request: Request) -> Reply:
        for method, pattern, handler in self.routes:
            found = pattern.match(request.path)
            if found and method == request.method:
                kind = self.take_failure(request)
                if kind is not None:
                    return self.failure_reply(kind, request)
                return handler(request, **found.groupdict())
        return text_reply("not found", 404, "text/plain")

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        query = {
            key: values[0] for key, values in parse_qs(scope["query_string"].decode(), keep_blank_values=True).items()
        }
        headers = {key.decode().lower(): value.decode() for key, value in scope["headers"]}
        request = Request(scope["method"], scope["path"], query, headers, body)
        self.requests.append(request)
        reply = self.dispatch(request)
        await send(
            {
                "type": "http.response.start",
                "status": reply.status,
                "headers": [(key.encode(), value.encode()) for key, value in reply.headers.items()],
            }
        )
        await send({"type": "http.response.body", "body": reply.body})


@dataclass
class IssuedToken:
    value: str
    user: str
    scopes: tuple[str, ...]
    expires_at: float | None
    revoked: bool = False
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def expired(self) -> bool:
        return self.expires_at is not None and self.expires_at < time.time()


class TokenBook:
    """Tokens and authorization codes a fake platform handed out, and their state."""

    def __init__(self) -> None:
        self.tokens: dict[str, IssuedToken] = {}
        self.codes: dict[str, dict[str, Any]] = {}

    def issue(
        self, prefix: str, user: str, scopes: tuple[str, ...], lifetime: float | None, **extra: str
    ) -> IssuedToken:
        token = IssuedToken(
            f"{prefix}{secrets.token_urlsafe(24)}",
            user,
            scopes,
            time.time() + lifetime if lifetime is not None else None,
            extra=dict(extra),
        )
        self.tokens[token.value] = token
        return token

    def code(self, **grant: Any) -> str:
        value = secrets.token_urlsafe(16)
        self.codes[value] = grant
        return value

    def spend_code(self, value: str) -> dict[str, Any] | None:
        return self.codes.pop(value, None)

    def state(self, value: str | None) -> str:
        """ok, expired, revoked or unknown."""
        token = self.tokens.get(value or "")
        if token is None:
            return "unknown"
        if token.revoked:
            return "revoked"
        return "expired" if token.expired else "ok"

    def expire(self, value: str) -> None:
        self.tokens[value].expires_at = time.time() - 1

    def revoke(self, value: str) -> None:
        if value in self.tokens:
            self.tokens[value].revoked = True


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def serve_in_thread(app: Any, port: int, what: str, lifespan: Literal["auto", "on", "off"] = "on") -> Iterator[None]:
    """An ASGI app served by uvicorn on 127.0.0.1:`port`, in a thread, until the block ends."""
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, lifespan=lifespan))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError(f"the {what} did not start")
        time.sleep(0.02)
    try:
        yield
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@contextmanager
def serve(app: Emulator) -> Iterator[str]:
    """Serve `app` with uvicorn on a free local port in a thread; yields its base URL."""
    port = free_port()
    app.base_url = f"http://127.0.0.1:{port}"
    with serve_in_thread(app, port, "fake server", lifespan="off"):
        yield app.base_url


async def consent(http: httpx.AsyncClient, authorization_url: str) -> dict[str, str]:
    """Follow a consent page the way a browser would after the creator agrees: the callback's query."""
    answer = await http.get(authorization_url, follow_redirects=False)
    assert answer.status_code == 302, answer.text
    location = urlsplit(answer.headers["location"])
    return {key: values[0] for key, values in parse_qs(location.query).items()}


def emulated_config(emulator: Emulator, platform: str, **extra: Any) -> ProviderConfig:
    """A provider's configuration with every one of its addresses at `emulator`."""
    return ProviderConfig(
        client_id=CLIENT_ID,
        client_secret=CLIENT_SECRET,
        redirect_uri=redirect_uri(platform),
        auth_base=emulator.base_url,
        api_base=emulator.base_url,
        token_base=emulator.base_url,
        **extra,
    )


async def connect(provider: Provider) -> TokenSet:
    """The whole OAuth dance: consent, the callback's `state` checked, the code exchanged with its verifier."""
    request = provider.authorization_request()
    callback = await consent(provider.http, request.url)
    assert callback["state"] == request.state
    return await provider.exchange_code(callback["code"], request.code_verifier)


def query_of(url: str) -> dict[str, str]:
    return {key: values[0] for key, values in parse_qs(urlsplit(url).query).items()}
