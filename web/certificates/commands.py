"""`cleack signing-key`: the published key set of this configuration, or a fresh key for rotation."""

from __future__ import annotations

import datetime
import json

import click

from web.certificates.keys import new_signing_key_entry, published_key_set, server_keys
from web.fairness.log import log_verifier_key
from web.settings import ConfigurationError, load_settings


@click.command("signing-key")
@click.option("--new", "new", is_flag=True, help="Print a fresh key to put first in SIGNING_KEYS, and change nothing.")
@click.option(
    "--start",
    type=click.DateTime(formats=["%Y-%m-%d", "%Y-%m-%dT%H:%M:%SZ"]),
    help="With --new: when the key starts signing (UTC), appended as key@start.",
)
@click.option(
    "--log-keys",
    "log_keys",
    is_flag=True,
    help="Print the public log's verifier keys (one a line), to give a witness as --log.",
)
def signing_key(new: bool, start: datetime.datetime | None, log_keys: bool) -> None:
    """Print the published key set of this configuration, or with --new a fresh signing key, or with --log-keys
    the public log's verifier keys that its witnesses need.

    To rotate: put the new key first in SIGNING_KEYS with its start (key@2026-12-01), keep the old ones after
    it, and restart; the new key signs from its start on, and the old ones stay published so that their
    certificates keep verifying.
    """
    if new:
        click.echo(new_signing_key_entry(start.replace(tzinfo=datetime.UTC) if start else None))
        return
    if start is not None:
        raise click.UsageError("--start goes with --new")
    try:
        settings = load_settings()
        if log_keys:
            for key in server_keys(settings):
                click.echo(log_verifier_key(settings.log_name, key.key.public_key()).text)
            return
        document = published_key_set(settings)
    except ConfigurationError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(json.dumps(document, indent=2))
