"""Reading a creator's draws."""

from __future__ import annotations

import datetime
import uuid
from dataclasses import dataclass
from typing import Any

RECENT_DRAWS = """
    SELECT id, title, platform, status, participants_count, created_at
    FROM draws WHERE user_id = $1
    ORDER BY created_at DESC LIMIT $2
"""


@dataclass(frozen=True)
class DrawSummary:
    id: uuid.UUID
    title: str
    platform: str
    status: str
    participants_count: int
    created_at: datetime.datetime


async def recent_draws(pool: Any, user_id: uuid.UUID, limit: int = 20) -> list[DrawSummary]:
    """The dashboard's list, read with plain SQL: only the columns it shows."""
    return [DrawSummary(**dict(row)) for row in await pool.fetch(RECENT_DRAWS, user_id, limit)]
