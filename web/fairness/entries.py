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


# cleack-draw-v2: salted leaves, and the verdict of every collected entry (docs/fairness.md).
SALT_SIZE = 16
VERDICT_PREFIX = b"\x02"
ELIGIBLE = "eligible"
# Why an entry is left out: what a sealed verdict may say (the draws store the same reasons).
EXCLUSION_REASONS = (
    "duplicate",
    "blacklisted",
    "keyword_missing",
    "too_few_mentions",
    "too_few_followers",
    "suspicious",
    "business_account",
    "not_liked",
    "not_following",
)
VERDICTS = (ELIGIBLE, *EXCLUSION_REASONS)


def derive_salt(salt_key: bytes, entry: Entry) -> bytes:
    """The first 16 bytes of SHA-256(salt_key ‖ encode(entry)); salt_key is the draw's 32 unpublished bytes."""
    return hashlib.sha256(salt_key + encode_entry(*entry.fields)).digest()[:SALT_SIZE]


def derive_salts(salt_key: bytes, rows: Sequence[Sequence[str]]) -> list[bytes]:
    """The salts of many `(platform, platform_user_id, username, entry_id)` tuples at once."""
    return [hashlib.sha256(salt_key + encoding).digest()[:SALT_SIZE] for encoding in _encodings(rows)]


def leaf_v2(entry: Entry, salt: bytes) -> bytes:
    """SHA-256(0x00 ‖ salt (16 bytes) ‖ encode(entry))."""
    _check_salt(salt)
    return hashlib.sha256(LEAF_PREFIX + salt + encode_entry(*entry.fields)).digest()


def collected_leaf(leaf: bytes, verdict: str) -> bytes:
    """SHA-256(0x02 ‖ leaf_v2 (32 bytes) ‖ UTF-8(verdict)): a collected entry with what the filters decided."""
    if len(leaf) != 32:
        raise ValueError("a leaf hash is 32 bytes")
    if verdict not in VERDICTS:
        raise ValueError(f"{verdict!r} is not a verdict: eligible or one of {', '.join(EXCLUSION_REASONS)}")
    return hashlib.sha256(VERDICT_PREFIX + leaf + verdict.encode()).digest()


def salted_leaf_hashes(rows: Sequence[Sequence[str]], salts: Sequence[bytes]) -> list[bytes]:
    """leaf_v2 of many `(platform, platform_user_id, username, entry_id)` tuples and their salts at once."""
    if len(rows) != len(salts):
        raise ValueError("one salt per row")
    if len(b"".join(salts)) != SALT_SIZE * len(salts):
        raise ValueError("salts must be 16 bytes each")
    sha256 = hashlib.sha256
    return [
        sha256(LEAF_PREFIX + salt + encoding).digest() for salt, encoding in zip(salts, _encodings(rows), strict=True)
    ]


def collected_leaf_hashes(leaves: Sequence[bytes], verdicts: Sequence[str]) -> list[bytes]:
    """collected_leaf of many leaf_v2 hashes and their verdicts at once."""
    if len(leaves) != len(verdicts):
        raise ValueError("one verdict per leaf")
    unknown = set(verdicts).difference(VERDICTS)
    if unknown:
        raise ValueError(f"not verdicts: {', '.join(sorted(unknown))}")
    sha256 = hashlib.sha256
    return [
        sha256(VERDICT_PREFIX + leaf + verdict.encode()).digest()
        for leaf, verdict in zip(leaves, verdicts, strict=True)
    ]


def _encodings(rows: Sequence[Sequence[str]]) -> list[bytes]:
    try:
        flat = " ".join(map(" ".join, rows))
    except TypeError as exc:
        raise TypeError("entry fields must be strings") from exc
    if ('"' not in flat and "\\" not in flat and flat.isprintable()) or _NEEDS_ESCAPE.search(flat) is None:
        return [f'["{a}","{b}","{c}","{d}"]'.encode() for a, b, c, d in rows]
    return [encode_entry(*row) for row in rows]


def _check_salt(salt: bytes) -> None:
    if not isinstance(salt, bytes) or len(salt) != SALT_SIZE:
        raise ValueError("a salt is 16 bytes")
