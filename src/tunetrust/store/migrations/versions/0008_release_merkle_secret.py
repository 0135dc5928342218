"""releases.merkle_secret: per-release secret that salts the Merkle leaves

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # releases built before keep NULL: their leaves were unsalted and still verify so
    op.add_column("releases", sa.Column("merkle_secret", sa.String(64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("releases") as batch:
        batch.drop_column("merkle_secret")
