"""Test rig: a real PostgreSQL, the app served over a real socket, a real SMTP server.

The database is the embedded PostgreSQL (data in var/pgdata-test) unless DATABASE_URL points
elsewhere; each run gets its own freshly migrated database, emptied before every test.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field, replace
from email import message_from_bytes
from email.message import Message
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiosmtpd.controller import Controller
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from tests.fakes.server import free_port, serve_in_thread
from web.app import create_app
from web.certificates.keys import server_keys
from web.db import (
    EmbeddedPostgres,
    connect,
    create_engine,
    database_name,
    ensure_database,
    session_factory,
    upgrade,
    with_database,
)
from web.fairness.log import log_verifier_key
from web.fairness.note import VerifierKey
from web.models import metadata
from web.settings import VAR_DIR, Settings
from web.witness.app import create_witness_app
from web.witness.state import WitnessConfig

ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"
PASSWORD = "correct horse battery staple"
LINK = re.compile(r"https?://\S+")


# PostgreSQL


@pytest.fixture(scope="session")
def server_url() -> Iterator[str]:
    """A PostgreSQL server: DATABASE_URL's, or the embedded one."""
    configured = os.environ.get("DATABASE_URL")
    if configured:
        yield configured
        return
    embedded = EmbeddedPostgres(VAR_DIR / "pgdata-test")
    url = embedded.start()
    yield url
    embedded.stop()


async def drop_database(server_url: str, url: str) -> None:
    async with connect(with_database(server_url, "postgres")) as conn:
        await conn.execute(f'DROP DATABASE IF EXISTS "{database_name(url)}" WITH (FORCE)')


@pytest.fixture(scope="session")
def database_url(server_url: str) -> Iterator[str]:
    url = with_database(server_url, f"cleack_test_{uuid.uuid4().hex[:10]}")
    asyncio.run(ensure_database(url))
    upgrade(url)
    yield url
    asyncio.run(drop_database(server_url, url))


@pytest.fixture
def scratch_url(server_url: str) -> Iterator[str]:
    """An empty database of its own, for tests that migrate or run the command line."""
    url = with_database(server_url, f"cleack_scratch_{uuid.uuid4().hex[:10]}")
    asyncio.run(ensure_database(url))
    yield url
    asyncio.run(drop_database(server_url, url))


# The public log is append-only and the session's witness remembers its head: it runs on across the tests, which
# read their own draws' records.
LOG_TABLES = {"log_records", "log_cosignatures"}
TABLES = ", ".join(f'"{table.name}"' for table in metadata.sorted_tables if table.name not in LOG_TABLES)


@pytest.fixture(autouse=True)
async def empty_database(database_url: str) -> None:
    """Every test starts from empty tables (the schema stays), but for the public log."""
    async with connect(database_url) as conn:
        await conn.execute(f"TRUNCATE {TABLES} CASCADE")


@pytest.fixture(scope="session")
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(database_url, pool_size=20)
    yield engine
    await engine.dispose()


@pytest.fixture
async def db(engine: AsyncEngine) -> AsyncIterator[AsyncSession]:
    async with session_factory(engine)() as session:
        yield session


# Mail


@dataclass
class Mailbox:
    messages: list[Message] = field(default_factory=list)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(message_from_bytes(envelope.original_content))
        return "250 Message accepted for delivery"

    def to(self, address: str) -> list[Message]:
        return [message for message in self.messages if message["To"].lower() == address.lower()]

    def wait_for(self, address: str, count: int = 1, timeout: float = 10.0) -> list[Message]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = self.to(address)
            if len(found) >= count:
                return found
            time.sleep(0.05)
        raise AssertionError(f"expected {count} message(s) to {address}, got {len(self.to(address))}")

    def last_link(self, address: str) -> str:
        message = self.wait_for(address)[-1]
        body = message.get_payload(decode=True)
        assert isinstance(body, bytes)
        links = LINK.findall(body.decode())
        assert links, "the message carries no link"
        return str(links[-1])


@pytest.fixture(scope="session")
def smtp_server() -> Iterator[tuple[Mailbox, int]]:
    mailbox = Mailbox()
    port = free_port()
    controller = Controller(mailbox, hostname="127.0.0.1", port=port)
    controller.start()
    yield mailbox, port
    controller.stop()


@pytest.fixture
def mailbox(smtp_server: tuple[Mailbox, int]) -> Mailbox:
    box, _ = smtp_server
    box.messages.clear()
    return box


# The app, served over a real socket


@dataclass
class LiveServer:
    url: str
    settings: Settings
    witness: SessionWitness


@dataclass(frozen=True)
class SessionWitness:
    url: str
    key: VerifierKey
    data_dir: Path


def log_keys(settings: Settings) -> list[VerifierKey]:
    """The verifier keys of the log these settings sign (its origin is the app's address)."""
    return [log_verifier_key(settings.log_name, key.key.public_key()) for key in server_keys(settings)]


@pytest.fixture(scope="session")
def live_server(
    database_url: str, smtp_server: tuple[Mailbox, int], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveServer]:
    """The app, and the public log's witness for the whole run, as `cleack witness` serves it."""
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    settings = Settings(
        environment="test",
        secret_key="test-secret-key-" + "x" * 32,
        database_url=database_url,
        host="127.0.0.1",
        port=port,
        base_url=base_url,
        smtp_url=f"smtp://127.0.0.1:{smtp_server[1]}",
        log_level="WARNING",
        sandbox_beacon_period=1,
        beacon_margin_seconds=0.5,
    )
    witness_port = free_port()
    witness_dir = tmp_path_factory.mktemp("witness")
    witness_app = create_witness_app(
        WitnessConfig(data_dir=witness_dir, name="witness.test/session", log_keys=log_keys(settings))
    )
    witness = SessionWitness(f"http://127.0.0.1:{witness_port}", witness_app.state.witness.verifier_key, witness_dir)
    settings = replace(settings, witnesses=(f"{witness.url} {witness.key.text}",))
    with serve_in_thread(witness_app, witness_port, "witness"):
        app = create_app(settings)
        with serve_in_thread(app, port, "test server"):
            yield LiveServer(base_url, settings, witness)


@pytest.fixture
async def client(live_server: LiveServer) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=live_server.url, follow_redirects=False, timeout=30) as client:
        yield client


@pytest.fixture
async def new_client(live_server: LiveServer) -> AsyncIterator[Any]:
    """A factory of independent clients, each with its own cookies, as separate browsers would be."""
    clients: list[httpx.AsyncClient] = []

    def make() -> httpx.AsyncClient:
        made = httpx.AsyncClient(base_url=live_server.url, follow_redirects=False, timeout=30)
        clients.append(made)
        return made

    yield make
    for made in clients:
        await made.aclose()


# Helpers that act as a user would


def hx_location(response: httpx.Response) -> str:
    """Where an htmx answer sends the browser (the path inside the HX-Location header)."""
    return str(json.loads(response.headers["HX-Location"])["path"])


async def csrf_token(client: httpx.AsyncClient) -> str:
    token = client.cookies.get("csrftoken")
    if token is None:
        response = await client.get("/login")
        assert response.status_code in (200, 303)
        token = client.cookies.get("csrftoken")
    assert token, "the app sets a CSRF cookie on pages"
    return str(token)


async def post_form(client: httpx.AsyncClient, url: str, data: dict[str, str], **kwargs: Any) -> httpx.Response:
    return await client.post(url, data={**data, "_csrf_token": await csrf_token(client)}, **kwargs)


async def sign_up(client: httpx.AsyncClient, email: str, password: str = PASSWORD, name: str = "") -> httpx.Response:
    return await post_form(client, "/signup", {"email": email, "password": password, "full_name": name})


async def verify_from_mail(client: httpx.AsyncClient, mailbox: Mailbox, email: str) -> httpx.Response:
    link = mailbox.last_link(email)
    path = httpx.URL(link).path
    page = await client.get(path)
    assert page.status_code == 200
    return await post_form(client, path, {})


async def log_in(client: httpx.AsyncClient, email: str, password: str = PASSWORD) -> httpx.Response:
    return await post_form(client, "/login", {"email": email, "password": password, "next": "/draws"})


@dataclass
class Creator:
    id: uuid.UUID
    email: str
    password: str


@pytest.fixture
def make_user(engine: AsyncEngine, live_server: LiveServer) -> Any:
    """A verified user made directly through the accounts service."""
    from web.accounts.services import AccountService

    async def make(email: str | None = None, password: str = PASSWORD, role: str = "user") -> Creator:
        email = email or f"creator-{uuid.uuid4().hex[:8]}@example.com"
        async with session_factory(engine)() as session:
            user = await AccountService(session, live_server.settings).create_verified(email, password, role=role)
        return Creator(user.id, email, password)

    return make


@pytest.fixture
def logged_in(new_client: Any, make_user: Any) -> Any:
    """A client logged in as a fresh verified user: `client, user = await logged_in()`."""

    async def make(**kwargs: Any) -> tuple[httpx.AsyncClient, Creator]:
        user = await make_user(**kwargs)
        client = new_client()
        response = await log_in(client, user.email, user.password)
        assert response.status_code == 303, response.text
        return client, user

    return make
