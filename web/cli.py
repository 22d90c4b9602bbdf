"""The `cleack` command."""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import signal
import sys
from collections.abc import Iterator
from pathlib import Path

import click

from web.certificates.commands import signing_key
from web.fairness.commands import verify
from web.settings import ConfigurationError, Settings, load_settings
from web.witness.commands import witness


def _settings() -> Settings:
    try:
        return load_settings()
    except ConfigurationError as exc:
        raise click.ClickException(str(exc)) from exc


@contextlib.contextmanager
def database(settings: Settings, *, create: bool = True) -> Iterator[str]:
    """The configured server, or the embedded one (started here, stopped on the way out)."""
    from web.db import EmbeddedPostgres, ensure_database

    if settings.database_url:
        if create:
            asyncio.run(ensure_database(settings.database_url))
        yield settings.database_url
        return
    if settings.is_production:
        raise click.ClickException("production needs DATABASE_URL")
    embedded = EmbeddedPostgres()
    click.echo("Starting the embedded PostgreSQL (data in var/pgdata)…", err=True)
    url = embedded.start()
    try:
        asyncio.run(ensure_database(url))
        yield url
    finally:
        embedded.stop()
        click.echo("Embedded PostgreSQL stopped.", err=True)


def _event_loop_policy() -> None:
    with contextlib.suppress(ImportError):
        import uvloop

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())


async def _serve(settings: Settings, url: str, *, with_worker: bool, banner: list[str] | None = None) -> None:
    """The web server (and a worker); with the worker, outside production, a local witness when WITNESSES names
    none (a worker started on its own needs WITNESSES)."""
    async with contextlib.AsyncExitStack() as stack:
        if with_worker and not settings.witnesses and not settings.is_production:
            from web.witness.local import local_witness

            settings = await stack.enter_async_context(local_witness(settings, url))
            if banner:
                banner.insert(
                    -2, f"  Log witness:  {settings.witnesses[0].split()[0]} (development only: it proves nothing)"
                )
        await _serve_app(settings, url, with_worker=with_worker, banner=banner)


async def _serve_app(settings: Settings, url: str, *, with_worker: bool, banner: list[str] | None) -> None:
    import uvicorn

    from web.app import create_app
    from web.db import create_engine, session_factory
    from web.worker import run_worker

    app = create_app(settings, database_url=url)
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        log_config=None,
        server_header=False,
        proxy_headers=settings.trusted_proxies is not None,
        forwarded_allow_ips=settings.trusted_proxies,
    )
    server = uvicorn.Server(config)
    stop = asyncio.Event()
    worker_engine = create_engine(url, pool_size=4)
    worker = asyncio.create_task(run_worker(session_factory(worker_engine), settings, stop)) if with_worker else None
    if banner:
        click.echo("\n".join(banner), err=True)
    try:
        await server.serve()
    finally:
        stop.set()
        if worker is not None:
            await worker
        await worker_engine.dispose()


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


@click.group()
def main() -> None:
    """Cleack: fair, publicly verifiable giveaway draws."""


@main.command()
def run() -> None:
    """Everything in one process group: database, migrations, demo data, web and worker."""
    from web.db import upgrade
    from web.demo import load_demo_data

    settings = _settings()
    _event_loop_policy()
    # SIGTERM ends the server like Ctrl-C does, and the embedded PostgreSQL is then stopped cleanly.
    signal.signal(signal.SIGTERM, _interrupt)
    with database(settings) as url:
        click.echo("Applying migrations…", err=True)
        upgrade(url)
        email, password = asyncio.run(_load_demo(settings, url, load_demo_data))
        banner = [
            "",
            f"  Cleack is running at {settings.base_url}",
            f"  Demo creator: {email}  password: {password}",
            f"  Mail outbox:  {settings.base_url}/dev/outbox" if settings.dev_outbox_enabled else "",
            "  Press Ctrl-C to stop.",
            "",
        ]
        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(_serve(settings, url, with_worker=True, banner=banner))


async def _load_demo(settings: Settings, url: str, loader: object) -> tuple[str, str]:
    from web.db import create_engine, session_factory

    engine = create_engine(url, pool_size=1)
    try:
        async with session_factory(engine)() as db:
            return await loader(db, settings)  # type: ignore[operator]
    finally:
        await engine.dispose()


@main.command()
def serve() -> None:
    """The web server alone, on a migrated database."""
    settings = _settings()
    _event_loop_policy()
    with database(settings, create=False) as url:
        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(_serve(settings, url, with_worker=False, banner=[f"Serving on {settings.base_url}"]))


@main.command()
def worker() -> None:
    """A background worker; run as many as you like against one database."""
    from web.db import create_engine, session_factory
    from web.logs import configure_logging
    from web.worker import run_worker

    settings = _settings()
    configure_logging(settings.log_level)
    _event_loop_policy()

    async def work(url: str) -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        engine = create_engine(url, pool_size=4)
        try:
            await run_worker(session_factory(engine), settings, stop)
        finally:
            await engine.dispose()

    with database(settings, create=False) as url:
        asyncio.run(work(url))


@main.group()
def db() -> None:
    """Database schema."""


@db.command("upgrade")
@click.argument("revision", default="head")
def db_upgrade(revision: str) -> None:
    """Apply migrations up to REVISION (default: the newest)."""
    from web.db import upgrade

    with database(_settings()) as url:
        upgrade(url, revision)
    click.echo(f"Database upgraded to {revision}.")


@db.command("downgrade")
@click.argument("revision")
def db_downgrade(revision: str) -> None:
    """Revert migrations down to REVISION (`base` removes every table)."""
    from web.db import downgrade

    with database(_settings()) as url:
        downgrade(url, revision)
    click.echo(f"Database downgraded to {revision}.")


@main.command("create-admin")
@click.argument("email")
@click.option("--password", envvar="CLEACK_ADMIN_PASSWORD", help="Otherwise one is generated and printed.")
def create_admin(email: str, password: str | None) -> None:
    """Create (or promote) an administrator with a verified EMAIL."""
    from web import forms
    from web.accounts.services import AccountService
    from web.admin.services import Actor, AdminService
    from web.db import create_engine, session_factory

    try:
        email = forms.clean_email(email)
        generated = password is None
        password = password or secrets.token_urlsafe(18)
        forms.clean_new_password(password)
    except forms.FieldError as exc:
        raise click.ClickException(str(exc)) from exc
    settings = _settings()

    async def create(url: str) -> None:
        engine = create_engine(url, pool_size=1)
        try:
            async with session_factory(engine)() as session:
                accounts = AccountService(session, settings)
                existed = await accounts.by_email(email) is not None
                user = await accounts.create_verified(email, password, role="admin")
                await AdminService(session).record_and_commit(
                    Actor(id=None, ip=None),
                    "admin_promoted" if existed else "admin_created",
                    user.id,
                    via="command line",
                )
        finally:
            await engine.dispose()

    with database(settings, create=False) as url:
        asyncio.run(create(url))
    click.echo(f"Administrator {email} is ready.")
    if generated:
        click.echo(f"Password: {password}")


@main.command("rotate-keys")
@click.option("--new-key", is_flag=True, help="Print a fresh key to put first in TOKEN_KEYS, and change nothing.")
def rotate_keys(new_key: bool) -> None:
    """Re-encrypt every stored platform token under the first key of TOKEN_KEYS.

    Put the new key first in TOKEN_KEYS and keep the old ones after it; restart the web and
    worker processes, run this, then the old keys can be removed.
    """
    from web.security import TokenDecryptionError, new_token_key

    if new_key:
        click.echo(new_token_key())
        return
    from web.db import create_engine, session_factory
    from web.social.services import rotate_token_keys

    settings = _settings()

    async def rotate(url: str) -> dict[str, int]:
        engine = create_engine(url, pool_size=1)
        try:
            async with session_factory(engine)() as session:
                return await rotate_token_keys(session, settings)
        finally:
            await engine.dispose()

    with database(settings, create=False) as url:
        try:
            counts = asyncio.run(rotate(url))
        except TokenDecryptionError as exc:
            raise click.ClickException(f"{exc}: keep every old key in TOKEN_KEYS until the rotation is done") from exc
    click.echo(f"Re-encrypted the tokens of {counts['rotated']} accounts; {counts['unchanged']} were already current.")


@main.command("sync-stripe")
def sync_stripe() -> None:
    """Mirror Stripe's products and prices (credit packs and plans) into the database."""
    from web.billing.commands import sync_stripe as sync
    from web.billing.stripe_api import PaymentsUnavailable

    settings = _settings()
    with database(settings, create=False) as url:
        try:
            counts = asyncio.run(sync(settings, url))
        except PaymentsUnavailable as exc:
            raise click.ClickException("Set STRIPE_SECRET_KEY: production has no payments sandbox.") from exc
    click.echo(f"Mirrored {counts['products']} products and {counts['prices']} prices from Stripe.")


@main.command("replay-stripe-event")
@click.argument("event_id")
def replay_stripe_event(event_id: str) -> None:
    """Process a stored Stripe event EVENT_ID (evt_…) again, after fixing what made it fail."""
    from web.billing.commands import replay_stripe_event as replay

    settings = _settings()
    with database(settings, create=False) as url:
        status = asyncio.run(replay(settings, url, event_id))
    click.echo(f"Event {event_id}: {status}.")


@main.command()
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
def backup(file: Path) -> None:
    """Write every table to FILE."""
    from web.backup import BackupError
    from web.backup import backup as take_backup

    with database(_settings(), create=False) as url:
        try:
            counts = asyncio.run(take_backup(url, file))
        except BackupError as exc:
            raise click.ClickException(str(exc)) from exc
    click.echo(f"Backed up {sum(counts.values())} rows from {len(counts)} tables to {file}.")


@main.command()
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--yes", is_flag=True, help="Do not ask before replacing the current data.")
def restore(file: Path, yes: bool) -> None:
    """Replace the database's data with FILE's."""
    from web.backup import BackupError
    from web.backup import restore as restore_backup

    if not yes and sys.stdin.isatty():
        click.confirm("This replaces every row in the database. Continue?", abort=True)
    with database(_settings(), create=False) as url:
        try:
            counts = asyncio.run(restore_backup(url, file))
        except BackupError as exc:
            raise click.ClickException(str(exc)) from exc
    click.echo(f"Restored {sum(counts.values())} rows into {len(counts)} tables from {file}.")


main.add_command(verify)
main.add_command(signing_key)
main.add_command(witness)


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    main()
