"""Backup and restore of every table, through COPY, independent of the server's version."""

from __future__ import annotations

import datetime
import io
import json
import tarfile
from pathlib import Path

from web.db import connect
from web.models import metadata

FORMAT = "cleack-backup/1"


class BackupError(RuntimeError):
    pass


def _tables() -> list[str]:
    """Parents before children, so that restoring in this order satisfies every foreign key."""
    return [table.name for table in metadata.sorted_tables]


async def _revision(conn: object) -> str | None:
    try:
        return await conn.fetchval("SELECT version_num FROM alembic_version")  # type: ignore[attr-defined]
    except Exception as exc:
        raise BackupError("the database has no migrations applied; run `cleack db upgrade` first") from exc


async def backup(url: str, path: Path) -> dict[str, int]:
    counts: dict[str, int] = {}
    async with connect(url) as conn, conn.transaction(isolation="repeatable_read", readonly=True):
        revision = await _revision(conn)
        with tarfile.open(path, "w:gz") as archive:
            for table in _tables():
                buffer = io.BytesIO()
                await conn.copy_from_table(table, output=buffer, format="binary")
                counts[table] = await conn.fetchval(f'SELECT count(*) FROM "{table}"')  # noqa: S608 - names from our metadata
                info = tarfile.TarInfo(f"data/{table}.copy")
                info.size = buffer.tell()
                buffer.seek(0)
                archive.addfile(info, buffer)
            manifest = json.dumps(
                {
                    "format": FORMAT,
                    "revision": revision,
                    "created_at": datetime.datetime.now(datetime.UTC).isoformat(),
                    "rows": counts,
                },
                indent=2,
            ).encode()
            info = tarfile.TarInfo("manifest.json")
            info.size = len(manifest)
            archive.addfile(info, io.BytesIO(manifest))
    return counts


async def restore(url: str, path: Path) -> dict[str, int]:
    """Replace every table's rows with the backup's, in one transaction."""
    try:
        archive = tarfile.open(path, "r:gz")
    except (OSError, tarfile.TarError) as exc:
        raise BackupError(f"{path} is not a Cleack backup") from exc
    with archive:
        try:
            member = archive.extractfile("manifest.json")
            manifest = json.loads(member.read()) if member else {}
        except (KeyError, ValueError) as exc:
            raise BackupError(f"{path} has no readable manifest") from exc
        if manifest.get("format") != FORMAT:
            raise BackupError(f"{path} is not a {FORMAT} file")
        async with connect(url) as conn:
            revision = await _revision(conn)
            if revision != manifest["revision"]:
                raise BackupError(
                    f"the backup was taken at schema revision {manifest['revision']} "
                    f"but this database is at {revision}; bring both to the same revision first"
                )
            tables = _tables()
            counts: dict[str, int] = {}
            async with conn.transaction():
                await conn.execute("TRUNCATE " + ", ".join(f'"{table}"' for table in tables) + " CASCADE")
                for table in tables:
                    data = archive.extractfile(f"data/{table}.copy")
                    if data is None:
                        raise BackupError(f"{path} lacks the table {table}")
                    await conn.copy_to_table(table, source=io.BytesIO(data.read()), format="binary")
                    counts[table] = await conn.fetchval(f'SELECT count(*) FROM "{table}"')  # noqa: S608 - names from our metadata
            return counts
