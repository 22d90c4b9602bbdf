"""RFC 3339 UTC timestamps as the certificate writes them: `2026-11-22T10:15:30Z`, or with `.ffffff` when needed."""

from __future__ import annotations

import datetime


def rfc3339(moment: datetime.datetime) -> str:
    if moment.tzinfo is None:
        raise ValueError("timestamps must carry a time zone")
    utc = moment.astimezone(datetime.UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.%fZ" if utc.microsecond else "%Y-%m-%dT%H:%M:%SZ")


def parse_rfc3339(text: str) -> datetime.datetime:
    """The moment a certificate or key set names; ValueError unless it is an RFC 3339 time with an offset."""
    moment = datetime.datetime.fromisoformat(text)
    if moment.tzinfo is None or "T" not in text:
        raise ValueError(f"{text!r} is not an RFC 3339 time with an offset")
    return moment
