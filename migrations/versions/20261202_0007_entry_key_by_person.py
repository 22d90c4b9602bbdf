"""draw entries: the key leads with the person, identifiers compare byte by byte, no per-row foreign key

- `uq_draw_participants_entry` becomes (draw_id, platform, platform_user_id, comment_id): still one row
  per comment (a comment has one author), and it now also finds a person's earlier entries while a page
  of comments is stored, so that duplicates are decided then instead of by a pass over the whole draw.
- The identifiers take the "C" collation, the canonical order's (docs/fairness.md), so that the key is
  also that order and the likers and followers lists are read through their own key.
- draw_participants and draw_engagements lose their foreign key to draws, whose check cost every stored
  entry about as much as storing it. They are only written under the draw's lease, whose check locks the
  draw's row; the draws_delete_entries trigger deletes them with their draw, as the cascade did.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02 00:30:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

IDENTIFIERS = (
    ("draw_participants", "platform", 32, False),
    ("draw_participants", "platform_user_id", 128, False),
    ("draw_participants", "comment_id", 128, True),
    ("draw_engagements", "platform_user_id", 128, False),
)
FOREIGN_KEYS = (
    ("draw_participants", "fk_draw_participants_draw_id_draws"),
    ("draw_engagements", "fk_draw_engagements_draw_id_draws"),
)
DELETE_ENTRIES = """
CREATE FUNCTION delete_draw_entries() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM draw_participants WHERE draw_id IN (SELECT id FROM deleted_draws);
    DELETE FROM draw_engagements WHERE draw_id IN (SELECT id FROM deleted_draws);
    RETURN NULL;
END
$$
"""
DELETE_TRIGGER = """
CREATE TRIGGER draws_delete_entries AFTER DELETE ON draws
REFERENCING OLD TABLE AS deleted_draws FOR EACH STATEMENT EXECUTE FUNCTION delete_draw_entries()
"""


def _collate(collation: str | None) -> None:
    for table, column, length, nullable in IDENTIFIERS:
        op.alter_column(
            table,
            column,
            type_=sa.String(length, collation=collation),
            existing_type=sa.String(length),
            existing_nullable=nullable,
        )


def upgrade() -> None:
    for table, name in FOREIGN_KEYS:
        op.drop_constraint(name, table, type_="foreignkey")
    op.execute(DELETE_ENTRIES)
    op.execute(DELETE_TRIGGER)
    op.drop_index("uq_draw_participants_entry", table_name="draw_participants")
    _collate("C")
    op.create_index(
        "uq_draw_participants_entry",
        "draw_participants",
        ["draw_id", "platform", "platform_user_id", "comment_id"],
        unique=True,
    )


def downgrade() -> None:
    op.drop_index("uq_draw_participants_entry", table_name="draw_participants")
    _collate(None)
    op.create_index(
        "uq_draw_participants_entry", "draw_participants", ["draw_id", "platform", "comment_id"], unique=True
    )
    op.execute("DROP TRIGGER draws_delete_entries ON draws")
    op.execute("DROP FUNCTION delete_draw_entries()")
    for table, name in FOREIGN_KEYS:
        op.execute(f"DELETE FROM {table} t WHERE NOT EXISTS (SELECT 1 FROM draws d WHERE d.id = t.draw_id)")  # noqa: S608
        op.create_foreign_key(name, table, "draws", ["draw_id"], ["id"], ondelete="CASCADE")
