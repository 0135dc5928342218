"""members, contributions, secrets

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "members",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False, unique=True),
        sa.Column("pseudonym", sa.String(32), nullable=False, unique=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("keep_incognito", sa.Boolean(), nullable=False),
        sa.Column("events_file", sa.String(64), nullable=True),
    )
    op.create_table(
        "contributions",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("member_id", sa.Integer(), sa.ForeignKey("members.id"), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("service", sa.String(40), nullable=False),
        sa.Column("export_digest", sa.String(64), nullable=False),
        sa.Column("account_hashes", sa.JSON(), nullable=False),
        sa.Column("listens_added", sa.Integer(), nullable=False),
        sa.Column("duplicates_skipped", sa.Integer(), nullable=False),
        sa.Column("summary", sa.JSON(), nullable=False),
    )
    op.create_index("ix_contributions_member_id", "contributions", ["member_id"])
    op.create_index("ix_contributions_export_digest", "contributions", ["export_digest"])
    op.create_table(
        "secrets",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("wrapped", sa.LargeBinary(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("secrets")
    op.drop_index("ix_contributions_export_digest", "contributions")
    op.drop_index("ix_contributions_member_id", "contributions")
    op.drop_table("contributions")
    op.drop_table("members")
