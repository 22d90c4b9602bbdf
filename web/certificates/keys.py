"""The server's certificate signing keys: which one signs now, and the key set published for verifiers.

`SIGNING_KEYS` lists private keys newest first, comma-separated, each as `signing_key_text` writes it, optionally
followed by `@` and the moment it starts signing: `key`, `key@2026-11-01` (midnight UTC) or
`key@2026-11-01T09:30:00Z`. A key without a start has signed since always (the Unix epoch) and may only be the
oldest. The key that signs is the newest whose start has come, so a new key can be configured ahead of its start
and every process switches at the same moment. A key retires when the next newer one starts. Outside production,
without `SIGNING_KEYS`, one key is generated once and kept in `var/signing_key` (mode 0600) in the same form.
"""

from __future__ import annotations

import datetime
import itertools
import os
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from web.fairness.signing import (
    SigningKeyError,
    generate_signing_key,
    key_id,
    key_record,
    key_set,
    load_signing_key,
    signing_key_text,
)
from web.fairness.timestamps import rfc3339
from web.settings import VAR_DIR, ConfigurationError, Settings

SINCE_ALWAYS = datetime.datetime(1970, 1, 1, tzinfo=datetime.UTC)
DEVELOPMENT_KEY_FILE = "signing_key"


class SigningKeysError(ValueError):
    """A SIGNING_KEYS value that does not describe a usable list of keys."""


@dataclass(frozen=True)
class ServerKey:
    key: Ed25519PrivateKey
    created_at: datetime.datetime
    retired_at: datetime.datetime | None

    @property
    def key_id(self) -> str:
        return key_id(self.key)

    def record(self) -> dict[str, Any]:
        return key_record(self.key, self.created_at, self.retired_at)


def _start(text: str, position: int) -> datetime.datetime:
    try:
        moment = datetime.datetime.fromisoformat(text)
    except ValueError:
        raise SigningKeysError(
            f"key {position}: {text!r} is not a start time (2026-11-01 or 2026-11-01T09:30:00Z)"
        ) from None
    if moment.tzinfo is None:
        if "T" in text:
            raise SigningKeysError(f"key {position}: give the start time in UTC, with a Z")
        moment = moment.replace(tzinfo=datetime.UTC)
    return moment.astimezone(datetime.UTC)


def parse_signing_keys(entries: Sequence[str]) -> tuple[ServerKey, ...]:
    """The configured keys, newest first, with when each started and retired; SigningKeysError names the problem."""
    parsed: list[tuple[Ed25519PrivateKey, datetime.datetime | None]] = []
    for position, entry in enumerate(entries, start=1):
        text, _, start_text = entry.strip().partition("@")
        try:
            key = load_signing_key(text)
        except SigningKeyError as exc:
            raise SigningKeysError(f"key {position}: {exc} (cleack signing-key --new makes one)") from exc
        parsed.append((key, _start(start_text, position) if start_text else None))
    if not parsed:
        raise SigningKeysError("no key is configured")
    ids = [key_id(key) for key, _ in parsed]
    if len(set(ids)) != len(ids):
        raise SigningKeysError("a key is listed twice")
    for position, (_, start) in enumerate(parsed[:-1], start=1):
        if start is None:
            raise SigningKeysError(f"key {position} replaced an older key: give its start, as key@2026-11-01")
    starts = [start or SINCE_ALWAYS for _, start in parsed]
    if any(newer <= older for newer, older in itertools.pairwise(starts)):
        raise SigningKeysError("list the keys newest first, each starting after the next one")
    return tuple(
        ServerKey(key, starts[index], starts[index - 1] if index else None) for index, (key, _) in enumerate(parsed)
    )


@lru_cache(maxsize=4)
def _configured(entries: tuple[str, ...]) -> tuple[ServerKey, ...]:
    return parse_signing_keys(entries)


def _development_keys() -> tuple[ServerKey, ...]:
    """One key made on first use and kept in var/; O_EXCL so that processes starting together keep the same one."""
    path = VAR_DIR / DEVELOPMENT_KEY_FILE
    if not path.exists():
        VAR_DIR.mkdir(parents=True, exist_ok=True)
        now = datetime.datetime.now(datetime.UTC).replace(microsecond=0)
        entry = f"{signing_key_text(generate_signing_key())}@{rfc3339(now)}"
        try:
            descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass
        else:
            with os.fdopen(descriptor, "w") as file:
                file.write(entry + "\n")
    return _configured((path.read_text().strip(),))


def server_keys(settings: Settings) -> tuple[ServerKey, ...]:
    """Every key, newest first: SIGNING_KEYS, or outside production the one in var/signing_key."""
    if settings.signing_keys:
        try:
            return _configured(tuple(settings.signing_keys))
        except SigningKeysError as exc:
            raise ConfigurationError(f"SIGNING_KEYS: {exc}") from exc
    if settings.is_production:
        raise ConfigurationError("production signs certificates with SIGNING_KEYS: set it (cleack signing-key --new)")
    return _development_keys()


def current_signing_key(settings: Settings, now: datetime.datetime | None = None) -> Ed25519PrivateKey:
    """The key that signs a certificate issued now: the newest one whose start has come."""
    now = now or datetime.datetime.now(datetime.UTC)
    started = [server for server in server_keys(settings) if server.created_at <= now]
    if not started:
        raise ConfigurationError("SIGNING_KEYS: no key has started signing yet; the oldest one's start is to come")
    return started[0].key


def published_key_set(settings: Settings) -> dict[str, Any]:
    """The document at /.well-known/cleack-signing-key: every configured key, retired ones included."""
    return key_set(server.record() for server in server_keys(settings))


def new_signing_key_entry(start: datetime.datetime | None = None) -> str:
    """A fresh key as a SIGNING_KEYS entry, with its start when given."""
    text = signing_key_text(generate_signing_key())
    return f"{text}@{rfc3339(start)}" if start else text
