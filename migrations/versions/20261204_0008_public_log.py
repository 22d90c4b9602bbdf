"""the public log: signed records of every draw and witness cosignatures; each draw's frozen blacklist

- `log_records` is append-only: a trigger refuses every UPDATE and DELETE, so that a record, once in the
  log, stays as it was signed (restoring a backup empties the table with TRUNCATE, which it allows).
- `log_cosignatures` keeps what each witness cosigned.
- `draw_blacklists` holds the blacklist as it stood when each draw was created.
- draw_history gains the `sealed` action.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-04 15:30:00.000000
"""

from collections.abc import Sequence

import advanced_alchemy.types
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

APPEND_ONLY = (
    """
CREATE FUNCTION log_records_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the public log is append-only: record % cannot be changed or removed', OLD.seq;
END $$
""",
    """
CREATE TRIGGER log_records_append_only BEFORE UPDATE OR DELETE ON log_records
FOR EACH ROW EXECUTE FUNCTION log_records_append_only()
""",
)
OLD_ACTIONS = "'created', 'started', 'completed', 'failed', 'cancelled', 'retried'"
NEW_ACTIONS = "'created', 'started', 'sealed', 'completed', 'failed', 'cancelled', 'retried'"


def upgrade() -> None:
    op.create_table(
        "log_records",
        sa.Column("seq", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("draw_id", sa.Uuid(), nullable=False),
        sa.Column("record", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("record_hash", sa.String(length=64), nullable=False),
        sa.Column("head", sa.String(length=64), nullable=False),
        sa.Column("subjects", sa.ARRAY(sa.String(length=300)), server_default=sa.text("'{}'"), nullable=False),
        sa.Column(
            "created_at",
            advanced_alchemy.types.datetime.DateTimeUTC(timezone=True),
            server_default=sa.text("clock_timestamp()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "kind IN ('opened', 'sealed', 'certified', 'failed', 'cancelled')", name=op.f("ck_log_records_kind_valid")
        ),
        sa.CheckConstraint("seq >= 1", name=op.f("ck_log_records_seq_positive")),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_log_records")),
        sa.UniqueConstraint("draw_id", "kind", name="uq_log_records_draw_kind"),
        sa.UniqueConstraint("record_hash", name=op.f("uq_log_records_record_hash")),
    )
    op.create_index(op.f("ix_log_records_created_at"), "log_records", ["created_at"], unique=False)
    op.create_index("ix_log_records_subjects", "log_records", ["subjects"], unique=False, postgresql_using="gin")
    for statement in APPEND_ONLY:
        op.execute(statement)
    op.create_table(
        "log_cosignatures",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("witness", sa.String(length=300), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("head", sa.String(length=64), nullable=False),
        sa.Column("checkpoint", sa.Text(), nullable=False),
        sa.Column("cosignature", sa.Text(), nullable=False),
        sa.Column("timestamp", sa.BigInteger(), nullable=False),
        sa.Column(
            "created_at",
            advanced_alchemy.types.datetime.DateTimeUTC(timezone=True),
            server_default=sa.text("clock_timestamp()"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_log_cosignatures")),
    )
    op.create_index("ix_log_cosignatures_witness_size", "log_cosignatures", ["witness", "size"], unique=False)
    op.create_table(
        "draw_blacklists",
        sa.Column("draw_id", sa.Uuid(), nullable=False),
        sa.Column("platform", sa.String(length=16), nullable=False),
        sa.Column("username", sa.String(length=128), nullable=False),
        sa.ForeignKeyConstraint(
            ["draw_id"], ["draws.id"], name=op.f("fk_draw_blacklists_draw_id_draws"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("draw_id", "platform", "username", name=op.f("pk_draw_blacklists")),
    )
    op.drop_constraint(op.f("ck_draw_history_action_valid"), "draw_history", type_="check")
    op.create_check_constraint(op.f("ck_draw_history_action_valid"), "draw_history", f"action IN ({NEW_ACTIONS})")


def downgrade() -> None:
    op.execute("DELETE FROM draw_history WHERE action = 'sealed'")
    op.drop_constraint(op.f("ck_draw_history_action_valid"), "draw_history", type_="check")
    op.create_check_constraint(op.f("ck_draw_history_action_valid"), "draw_history", f"action IN ({OLD_ACTIONS})")
    op.drop_table("draw_blacklists")
    op.drop_index("ix_log_cosignatures_witness_size", table_name="log_cosignatures")
    op.drop_table("log_cosignatures")
    op.execute("DROP TRIGGER log_records_append_only ON log_records")
    op.execute("DROP FUNCTION log_records_append_only()")
    op.drop_index("ix_log_records_subjects", table_name="log_records", postgresql_using="gin")
    op.drop_index(op.f("ix_log_records_created_at"), table_name="log_records")
    op.drop_table("log_records")
