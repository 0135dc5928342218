"""members.name_key: look-alike member names refused by an indexed lookup

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # the very key add_member stores; imported here so the two can never differ
    from tunetrust.names import name_key

    op.add_column("members", sa.Column("name_key", sa.String(64), nullable=True))
    members = sa.table(
        "members",
        sa.column("id", sa.Integer()),
        sa.column("name", sa.String()),
        sa.column("name_key", sa.String()),
    )
    conn = op.get_bind()
    rows = conn.execute(
        sa.select(members.c.id, members.c.name)
        .where(members.c.name.is_not(None))
        .order_by(members.c.id)
    ).all()
    taken: set[str] = set()
    for member_id, name in rows:
        key = name_key(name)
        if key in taken:
            # look-alike names an older version let in: the older member holds the key,
            # this one keeps its name and is still found by it exactly
            continue
        taken.add(key)
        conn.execute(members.update().where(members.c.id == member_id).values(name_key=key))
    op.create_index("ix_members_name_key", "members", ["name_key"], unique=True)


def downgrade() -> None:
    op.drop_index("ix_members_name_key", "members")
    with op.batch_alter_table("members") as batch:
        batch.drop_column("name_key")
