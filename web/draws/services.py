"""Reading a creator's draws."""

from __future__ import annotations

import uuid

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from web.draws.models import Draw


class DrawService:
    def __init__(self, db: AsyncSession) -> None:
        self.db = db

    async def recent_for(self, user_id: uuid.UUID, limit: int = 20) -> list[Draw]:
        result = await self.db.scalars(
            sa.select(Draw).where(Draw.user_id == user_id).order_by(Draw.created_at.desc()).limit(limit)
        )
        return list(result)
