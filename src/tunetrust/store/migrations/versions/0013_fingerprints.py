"""Listening fingerprints for copy, split and corroboration checks; disputes

A sampled, keyed hash per distinct listening sequence, exact play and track of each
member (ingest/fingerprint.py), looked up by value: the copied-data check no longer
reads every member's file. ``members.fingerprinted`` names the events file a member's
rows were made from; members of an upgraded home have none yet and are fingerprinted
at the next import (a one-time read of each member's file). ``disputes`` records
imports held because their account or plays are another member's, and the decision.

Revision ID: 0013
Revises: 0012
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "fingerprints",
        sa.Column("kind", sa.SmallInteger, primary_key=True),
        sa.Column("hash", sa.BigInteger, primary_key=True),
        sa.Column("member_id", sa.Integer, sa.ForeignKey("members.id"), primary_key=True),
    )
    op.create_index("ix_fingerprints_member_id", "fingerprints", ["member_id"])
    op.create_table(
        "disputes",
        sa.Column(
            "contribution_id", sa.String(32), sa.ForeignKey("contributions.id"), primary_key=True
        ),
        sa.Column("claimant_id", sa.Integer, sa.ForeignKey("members.id"), nullable=False),
        sa.Column("holder_id", sa.Integer, sa.ForeignKey("members.id"), nullable=True),
        sa.Column("reason", sa.String(16), nullable=False),
        sa.Column("opened_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("decided_for", sa.String(16), nullable=True),
    )
    op.create_index("ix_disputes_claimant_id", "disputes", ["claimant_id"])
    op.create_index("ix_disputes_holder_id", "disputes", ["holder_id"])
    # plain ALTER TABLE (as 0009): rebuilding members would trip its children's foreign keys
    op.add_column("members", sa.Column("fingerprinted", sa.String(64), nullable=True))


def downgrade() -> None:
    op.drop_index("ix_disputes_holder_id", "disputes")
    op.drop_index("ix_disputes_claimant_id", "disputes")
    op.drop_table("disputes")
    op.drop_index("ix_fingerprints_member_id", "fingerprints")
    op.drop_table("fingerprints")
    op.drop_column("members", "fingerprinted")
