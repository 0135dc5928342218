"""contribution verdicts and quality scores

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("contributions") as batch:
        batch.add_column(
            sa.Column("verdict", sa.String(32), nullable=False, server_default="accepted")
        )
        batch.add_column(sa.Column("quality_score", sa.Float(), nullable=False, server_default="0"))


def downgrade() -> None:
    with op.batch_alter_table("contributions") as batch:
        batch.drop_column("quality_score")
        batch.drop_column("verdict")
