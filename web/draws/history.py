"""The draw's history: one row per thing that happened to it, with who caused it from where."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from web.accounts.services import Client
from web.draws.models import Draw, DrawHistory


def record_history(
    db: AsyncSession, draw: Draw, action: str, details: dict[str, Any] | None = None, client: Client | None = None
) -> DrawHistory:
    """Add (not commit) a history row; `client` is the person's browser when a person caused it."""
    metadata = {"ip": client.ip, "user_agent": client.user_agent} if client is not None else {"by": "worker"}
    row = DrawHistory(draw_id=draw.id, user_id=draw.user_id, action=action, details=details or {}, metadata_=metadata)
    db.add(row)
    return row
