"""releases and privacy budgets

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "releases",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("purpose", sa.String(64), nullable=False),
        sa.Column("spec", sa.Text(), nullable=False),
        sa.Column("manifest_sha256", sa.String(64), nullable=False),
        sa.Column("members_included", sa.Integer(), nullable=False),
    )
    op.create_table(
        "budget_spends",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("member_id", sa.Integer(), sa.ForeignKey("members.id"), nullable=False),
        sa.Column("purpose", sa.String(64), nullable=False),
        sa.Column("year", sa.Integer(), nullable=False),
        sa.Column("micro_epsilon", sa.BigInteger(), nullable=False),
        sa.Column("release_id", sa.String(32), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_budget_spends_member_id", "budget_spends", ["member_id"])
    op.create_index("ix_budget_spends_release_id", "budget_spends", ["release_id"])
    op.create_table(
        "budget_caps",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("member_id", sa.Integer(), sa.ForeignKey("members.id"), nullable=False),
        sa.Column("purpose", sa.String(64), nullable=False),
        sa.Column("micro_epsilon", sa.BigInteger(), nullable=False),
    )
    op.create_index("ix_budget_caps_member_id", "budget_caps", ["member_id"])


def downgrade() -> None:
    op.drop_index("ix_budget_caps_member_id", "budget_caps")
    op.drop_table("budget_caps")
    op.drop_index("ix_budget_spends_release_id", "budget_spends")
    op.drop_index("ix_budget_spends_member_id", "budget_spends")
    op.drop_table("budget_spends")
    op.drop_table("releases")
