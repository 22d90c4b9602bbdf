"""draw engine: engagements fetched for the rules, each entry's source and Merkle leaf, one row per entry

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-22 07:09:07.962281
"""

from collections.abc import Sequence

import advanced_alchemy.types
import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "draw_engagements",
        sa.Column("draw_id", advanced_alchemy.types.guid.GUID(length=16), nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("source_index", sa.SmallInteger(), nullable=False),
        sa.Column("platform_user_id", sa.String(length=128), nullable=False),
        sa.CheckConstraint("kind IN ('like', 'follow')", name=op.f("ck_draw_engagements_kind_valid")),
        sa.ForeignKeyConstraint(
            ["draw_id"], ["draws.id"], name=op.f("fk_draw_engagements_draw_id_draws"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint(
            "draw_id", "kind", "source_index", "platform_user_id", name=op.f("pk_draw_engagements")
        ),
    )
    op.add_column("draw_participants", sa.Column("source_index", sa.SmallInteger(), nullable=True))
    op.add_column("draw_participants", sa.Column("leaf_hash", sa.LargeBinary(), nullable=True))
    op.create_index(
        "uq_draw_participants_entry",
        "draw_participants",
        ["draw_id", "platform", "comment_id"],
        unique=True,
    )
    op.create_index("ix_draws_completed_at", "draws", ["completed_at"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_draws_completed_at", table_name="draws")
    op.drop_index("uq_draw_participants_entry", table_name="draw_participants")
    op.drop_column("draw_participants", "leaf_hash")
    op.drop_column("draw_participants", "source_index")
    op.drop_table("draw_engagements")
