"""spectator link: the token of a draw's public watch page

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01 21:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("draws", sa.Column("spectator_token", sa.String(length=64), nullable=True))
    op.create_unique_constraint(op.f("uq_draws_spectator_token"), "draws", ["spectator_token"])


def downgrade() -> None:
    op.drop_constraint(op.f("uq_draws_spectator_token"), "draws", type_="unique")
    op.drop_column("draws", "spectator_token")
