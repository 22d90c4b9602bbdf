"""An eligible entry, its canonical byte encoding, its Merkle leaf hash and its canonical order."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from json.encoder import encode_basestring

LEAF_PREFIX = b"\x00"
# Characters canonical JSON escapes inside a string; rows without any take the fast path.
_NEEDS_ESCAPE = re.compile('[\x00-\x1f"\\\\]')


@dataclass(frozen=True, slots=True)
class Entry:
    """One eligible entry: entry_id is the comment id, or for an uploaded list the row's id."""

    platform: str
    platform_user_id: str
    username: str
    entry_id: str

    @property
    def fields(self) -> tuple[str, str, str, str]:
        return (self.platform, self.platform_user_id, self.username, self.entry_id)

    @property
    def key(self) -> tuple[str, str, str]:
        """The canonical sort key; Python compares str by code point, which is UTF-8 byte order."""
        return (self.platform, self.platform_user_id, self.entry_id)

    @property
    def leaf_hash(self) -> bytes:
        return leaf_hash(self.platform, self.platform_user_id, self.username, self.entry_id)


def encode_entry(platform: str, platform_user_id: str, username: str, entry_id: str) -> bytes:
    """The canonical JSON array `[platform, platform_user_id, username, entry_id]` as UTF-8."""
    fields = (platform, platform_user_id, username, entry_id)
    if not all(isinstance(field, str) for field in fields):
        raise TypeError("entry fields must be strings")
    platform, platform_user_id, username, entry_id = map(encode_basestring, fields)
    return f"[{platform},{platform_user_id},{username},{entry_id}]".encode()


def leaf_hash(platform: str, platform_user_id: str, username: str, entry_id: str) -> bytes:
    """SHA-256(0x00 ‖ encode_entry(...))."""
    return hashlib.sha256(LEAF_PREFIX + encode_entry(platform, platform_user_id, username, entry_id)).digest()


def leaf_hashes(rows: Sequence[Sequence[str]]) -> list[bytes]:
    """Leaf hashes of many `(platform, platform_user_id, username, entry_id)` tuples at once."""
    try:
        flat = " ".join(map(" ".join, rows))
    except TypeError as exc:
        raise TypeError("entry fields must be strings") from exc
    sha256 = hashlib.sha256
    # No field needs escaping: its canonical JSON string is the field between quotes (the first test is quickest).
    if ('"' not in flat and "\\" not in flat and flat.isprintable()) or _NEEDS_ESCAPE.search(flat) is None:
        return [sha256(f'\x00["{a}","{b}","{c}","{d}"]'.encode()).digest() for a, b, c, d in rows]
    return [sha256(LEAF_PREFIX + encode_entry(*row)).digest() for row in rows]


def sort_canonically(entries: Iterable[Entry]) -> list[Entry]:
    """By (platform, platform_user_id, entry_id) as UTF-8 bytes, as PostgreSQL's COLLATE "C" orders them."""
    return sorted(entries, key=_sort_key)


def _sort_key(entry: Entry) -> tuple[str, str, str]:
    return entry.key
