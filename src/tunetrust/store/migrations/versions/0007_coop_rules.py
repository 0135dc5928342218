"""coop_rules: the cooperative's rules in the database; data_requests.rules frozen at open

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

# the first row of the history; every later change is `tunetrust rules set`, audited
SEED_ACTOR = "tunetrust"
SEED_REASON = (
    "the default rules, recorded when this database was created or upgraded "
    "(before, these were settings read from the environment)"
)


def upgrade() -> None:
    # the very defaults the code knows; imported so the two can never differ
    from tunetrust.settings import Rules

    rules = op.create_table(
        "coop_rules",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(100), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("quorum", sa.Float(), nullable=False),
        sa.Column("majority", sa.Float(), nullable=False),
        sa.Column("weighted_votes", sa.Boolean(), nullable=False),
        sa.Column("fee_basis_points", sa.Integer(), nullable=False),
        sa.Column("no_votes_opt_out", sa.Boolean(), nullable=False),
    )
    # the governance rules of this revision; the privacy rules came with 0010
    columns = ("quorum", "majority", "weighted_votes", "fee_basis_points", "no_votes_opt_out")
    defaults = {k: v for k, v in Rules().to_dict().items() if k in columns}
    op.bulk_insert(
        rules,
        [{"at": datetime.now(UTC), "actor": SEED_ACTOR, "reason": SEED_REASON, **defaults}],
    )
    op.add_column("data_requests", sa.Column("rules", sa.JSON(), nullable=True))
    # requests whose vote an older version opened decide by the rules in force now,
    # the defaults: it read them from the closing shell, which no one can know afterwards
    requests = sa.table(
        "data_requests", sa.column("state", sa.String()), sa.column("rules", sa.JSON())
    )
    op.get_bind().execute(
        requests.update().where(requests.c.state != "draft").values(rules=defaults)
    )


def downgrade() -> None:
    with op.batch_alter_table("data_requests") as batch:
        batch.drop_column("rules")
    op.drop_table("coop_rules")
