"""entries.csv: every collected entry, eligible or not, as the owner downloads it and the verifier reads it.

v1 files have no salt column; v2 files (docs/fairness.md) give each entry's 16-byte salt in hex.
"""

from __future__ import annotations

import csv
import datetime
import io
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import TextIO

from web.fairness.entries import ELIGIBLE, SALT_SIZE, Entry
from web.fairness.timestamps import rfc3339

COLUMNS = (
    "platform",
    "platform_user_id",
    "username",
    "entry_id",
    "eligible",
    "exclusion_reason",
    "comment",
    "commented_at",
)
COLUMNS_V2 = (*COLUMNS[:4], "salt", *COLUMNS[4:])
REQUIRED_COLUMNS = COLUMNS[:5]
_SALT = re.compile(r"[0-9a-f]{32}")


class EntriesCsvError(ValueError):
    """The file is not an entries CSV; the message names the line."""


@dataclass(frozen=True)
class EntryRow:
    entry: Entry
    eligible: bool
    exclusion_reason: str | None = None
    comment: str | None = None
    # A datetime when written; the text as found when read.
    commented_at: datetime.datetime | str | None = None
    # 16 bytes in a v2 file; None in a v1 file.
    salt: bytes | None = None

    @property
    def verdict(self) -> str | None:
        """`eligible`, the exclusion reason, or None for an excluded row that names none."""
        return ELIGIBLE if self.eligible else self.exclusion_reason


def entries_csv_row(row: EntryRow, *, salted: bool = False) -> list[str]:
    """The row's cells: v1's columns, or v2's with the salt (ValueError when the row has none)."""
    commented_at = row.commented_at
    salt: list[str] = []
    if salted:
        if row.salt is None or len(row.salt) != SALT_SIZE:
            raise ValueError(f"entry {row.entry.entry_id} has no 16-byte salt")
        salt = [row.salt.hex()]
    return [
        *row.entry.fields,
        *salt,
        "true" if row.eligible else "false",
        row.exclusion_reason or "",
        row.comment or "",
        rfc3339(commented_at) if isinstance(commented_at, datetime.datetime) else commented_at or "",
    ]


def entries_csv_lines(rows: Iterable[EntryRow], *, salted: bool = False) -> Iterator[str]:
    """The file line by line (header first, CRLF endings), for a streamed download; `salted` for v2."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(COLUMNS_V2 if salted else COLUMNS)
    yield buffer.getvalue()
    for row in rows:
        buffer.seek(0)
        buffer.truncate()
        writer.writerow(entries_csv_row(row, salted=salted))
        yield buffer.getvalue()


def write_entries_csv(file: TextIO, rows: Iterable[EntryRow], *, salted: bool = False) -> int:
    """Writes the file (open it with newline=""); returns the number of rows."""
    lines = entries_csv_lines(rows, salted=salted)
    file.write(next(lines))
    written = 0
    for line in lines:
        file.write(line)
        written += 1
    return written


def read_entries_csv(file: TextIO) -> Iterator[EntryRow]:
    """The rows of an entries CSV, streaming; columns are found by their header name, extra columns ignored.

    A v2 file's rows carry their salt; a v1 file's have `salt=None`.
    """
    reader = csv.reader(file, strict=True)
    try:
        names = _header(next(reader, None))
        positions = {column: names.index(column) for column in COLUMNS_V2 if column in names}
        required = [positions[column] for column in REQUIRED_COLUMNS]
        salt_position = positions.get("salt")
        width = max([*required, -1 if salt_position is None else salt_position]) + 1
        for fields in reader:
            if not fields:
                continue
            if len(fields) < width:
                raise EntriesCsvError(f"line {reader.line_num}: {len(fields)} fields, expected {len(names)}")
            platform, platform_user_id, username, entry_id, eligible = (fields[position] for position in required)
            yield EntryRow(
                entry=Entry(platform, platform_user_id, username, entry_id),
                eligible=_parse_eligible(eligible, reader.line_num),
                exclusion_reason=_optional(fields, positions.get("exclusion_reason")),
                comment=_optional(fields, positions.get("comment")),
                commented_at=_optional(fields, positions.get("commented_at")),
                salt=None if salt_position is None else _parse_salt(fields[salt_position], reader.line_num),
            )
    except csv.Error as exc:
        raise EntriesCsvError(f"line {reader.line_num}: {exc}") from exc


def entries_csv_is_salted(file: TextIO) -> bool:
    """Whether the file's header has the salt column (a v2 file); reads the first line only."""
    try:
        return "salt" in _header(next(csv.reader(file, strict=True), None))
    except csv.Error as exc:
        raise EntriesCsvError(f"line 1: {exc}") from exc


def _header(header: list[str] | None) -> list[str]:
    if header is None:
        raise EntriesCsvError("the file is empty; an entries CSV starts with its header line")
    names = [name.strip().lstrip("\ufeff").lower() for name in header]
    missing = [column for column in REQUIRED_COLUMNS if column not in names]
    if missing:
        raise EntriesCsvError(f"line 1: the header lacks the column(s) {', '.join(missing)}")
    return names


def _parse_salt(text: str, line: int) -> bytes:
    if not _SALT.fullmatch(text):
        raise EntriesCsvError(f"line {line}: salt must be 32 lowercase hex digits, found {text!r}")
    return bytes.fromhex(text)


def eligible_entries(file: TextIO) -> Iterator[Entry]:
    """The entries of the rows whose eligible column is true, in file order."""
    return (row.entry for row in read_entries_csv(file) if row.eligible)


def _parse_eligible(text: str, line: int) -> bool:
    value = text.strip().lower()
    if value == "true":
        return True
    if value == "false":
        return False
    raise EntriesCsvError(f"line {line}: eligible must be true or false, found {text!r}")


def _optional(fields: list[str], position: int | None) -> str | None:
    if position is None or position >= len(fields) or not fields[position]:
        return None
    return fields[position]
