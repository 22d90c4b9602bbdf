"""The bodies of `cleack sync-stripe` and `cleack replay-stripe-event`."""

from __future__ import annotations

import click

from web.settings import Settings


async def sync_stripe(settings: Settings, url: str) -> dict[str, int]:
    from web.billing.services import sync_catalogue
    from web.db import create_engine, session_factory

    engine = create_engine(url, pool_size=1)
    try:
        async with session_factory(engine)() as session:
            return await sync_catalogue(session, settings)
    finally:
        await engine.dispose()


async def replay_stripe_event(settings: Settings, url: str, event_id: str) -> str:
    from web.billing.events import EventFailed, replay_event
    from web.db import create_engine

    engine = create_engine(url, pool_size=1)
    try:
        outcome = await replay_event(engine, settings, event_id)
    except LookupError as exc:
        raise click.ClickException(f"No stored event {event_id}.") from exc
    except EventFailed as exc:
        raise click.ClickException(f"The event failed again: {exc}") from exc
    finally:
        await engine.dispose()
    return outcome.status
