"""Cooperative figures: the typical member's corroborated share, kept between imports

Computing it read about 6,000 keys of the fingerprint index at every import (0.4 s in a
cooperative of 10,000); it moves only as members come and go, so it is kept with the
number of members it was computed over and computed again when that
number moves by a hundredth, or after a day (ingest/provenance.py).

Revision ID: 0014
Revises: 0013
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "coop_figures",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("value", sa.Float, nullable=True),
        sa.Column("basis", sa.Integer, nullable=False),
        sa.Column("computed_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("coop_figures")
