"""draw_participants: drop the indexes the entry key already serves, leave room for re-judged rows

`uq_draw_participants_entry` (draw_id, platform, comment_id) leads with draw_id, so it serves every
lookup of a draw's entries; the two indexes below only cost every stored and re-judged entry. With no
index left on the verdict columns and some free space in each page, marking duplicates rewrites rows
in place (heap-only tuples) instead of growing the table and its indexes.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01 22:00:00.000000
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.drop_index("ix_draw_participants_draw_id_eligible", table_name="draw_participants")
    op.drop_index(op.f("ix_draw_participants_draw_id"), table_name="draw_participants")
    op.execute("ALTER TABLE draw_participants SET (fillfactor = 85)")


def downgrade() -> None:
    op.execute("ALTER TABLE draw_participants RESET (fillfactor)")
    op.create_index(op.f("ix_draw_participants_draw_id"), "draw_participants", ["draw_id"], unique=False)
    op.create_index(
        "ix_draw_participants_draw_id_eligible", "draw_participants", ["draw_id", "is_eligible"], unique=False
    )
