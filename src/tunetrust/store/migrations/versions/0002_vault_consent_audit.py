"""member keys and accounts, vault files, consents, audit log

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

GENESIS = "0" * 64


def upgrade() -> None:
    with op.batch_alter_table("members") as batch:
        batch.alter_column("name", existing_type=sa.String(200), nullable=True)
        batch.add_column(sa.Column("data_key_wrapped", sa.LargeBinary(), nullable=True))
        batch.add_column(sa.Column("account_hash", sa.String(64), nullable=True))
        batch.add_column(sa.Column("erased_at", sa.DateTime(timezone=True), nullable=True))
        batch.create_unique_constraint("uq_members_account_hash", ["account_hash"])
    with op.batch_alter_table("contributions") as batch:
        batch.add_column(sa.Column("vault_file", sa.String(64), nullable=True))
    op.create_table(
        "consents",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("member_id", sa.Integer(), sa.ForeignKey("members.id"), nullable=False),
        sa.Column("purpose", sa.String(64), nullable=False),
        sa.Column("granted", sa.Boolean(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(100), nullable=False),
    )
    op.create_index("ix_consents_member_id", "consents", ["member_id"])
    op.create_table(
        "audit_entries",
        sa.Column("seq", sa.Integer(), primary_key=True, autoincrement=False),
        sa.Column("at", sa.String(40), nullable=False),
        sa.Column("actor", sa.String(100), nullable=False),
        sa.Column("action", sa.String(64), nullable=False),
        sa.Column("subject", sa.String(100), nullable=False),
        sa.Column("payload_digest", sa.String(64), nullable=False),
        sa.Column("prev_hash", sa.String(64), nullable=False),
        sa.Column("entry_hash", sa.String(64), nullable=False),
    )
    op.create_index("ix_audit_entries_subject", "audit_entries", ["subject"])
    op.create_table(
        "audit_payloads",
        sa.Column("seq", sa.Integer(), sa.ForeignKey("audit_entries.seq"), primary_key=True),
        sa.Column("payload", sa.JSON(), nullable=False),
    )
    head = op.create_table(
        "audit_head",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("entry_hash", sa.String(64), nullable=False),
    )
    op.bulk_insert(head, [{"id": 1, "seq": 0, "entry_hash": GENESIS}])


def downgrade() -> None:
    op.drop_table("audit_head")
    op.drop_table("audit_payloads")
    op.drop_index("ix_audit_entries_subject", "audit_entries")
    op.drop_table("audit_entries")
    op.drop_index("ix_consents_member_id", "consents")
    op.drop_table("consents")
    with op.batch_alter_table("contributions") as batch:
        batch.drop_column("vault_file")
    with op.batch_alter_table("members") as batch:
        batch.drop_constraint("uq_members_account_hash", type_="unique")
        batch.drop_column("erased_at")
        batch.drop_column("account_hash")
        batch.drop_column("data_key_wrapped")
        batch.alter_column("name", existing_type=sa.String(200), nullable=False)
