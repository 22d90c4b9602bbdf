"""entries.csv: every collected entry, eligible or not, as the owner downloads it and the verifier reads it."""

from __future__ import annotations

import csv
import datetime
import io
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import TextIO

from web.fairness.entries import Entry
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
REQUIRED_COLUMNS = COLUMNS[:5]


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


def entries_csv_row(row: EntryRow) -> list[str]:
    commented_at = row.commented_at
    return [
        *row.entry.fields,
        "true" if row.eligible else "false",
        row.exclusion_reason or "",
        row.comment or "",
        rfc3339(commented_at) if isinstance(commented_at, datetime.datetime) else commented_at or "",
    ]


def entries_csv_lines(rows: Iterable[EntryRow]) -> Iterator[str]:
    """The file line by line (header first, CRLF endings), for a streamed download."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(COLUMNS)
    yield buffer.getvalue()
    for row in rows:
        buffer.seek(0)
        buffer.truncate()
        writer.writerow(entries_csv_row(row))
        yield buffer.getvalue()


def write_entries_csv(file: TextIO, rows: Iterable[EntryRow]) -> int:
    """Writes the file (open it with newline=""); returns the number of rows."""
    lines = entries_csv_lines(rows)
    file.write(next(lines))
    written = 0
    for line in lines:
        file.write(line)
        written += 1
    return written


def read_entries_csv(file: TextIO) -> Iterator[EntryRow]:
    """The rows of an entries CSV, streaming; columns are found by their header name, extra columns ignored."""
    reader = csv.reader(file, strict=True)
    try:
        header = next(reader, None)
        if header is None:
            raise EntriesCsvError("the file is empty; an entries CSV starts with its header line")
        names = [name.strip().lstrip("\ufeff").lower() for name in header]
        missing = [column for column in REQUIRED_COLUMNS if column not in names]
        if missing:
            raise EntriesCsvError(f"line 1: the header lacks the column(s) {', '.join(missing)}")
        positions = {column: names.index(column) for column in COLUMNS if column in names}
        required = [positions[column] for column in REQUIRED_COLUMNS]
        width = max(required) + 1
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
            )
    except csv.Error as exc:
        raise EntriesCsvError(f"line {reader.line_num}: {exc}") from exc


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
