"""Privacy caps as the cooperative's rules, and what each spend was checked against

The yearly ε cap per member and purpose was an environment variable of whoever built a
release; it becomes a rule (``coop_rules.epsilon_cap``), with a δ cap and the floor on
a release's members beside it. The cap in force at this upgrade is kept: the value of
``TUNETRUST_EPSILON_CAP`` given to the opening process (``config.attributes``), else
the old default, 3. Each budget spend records the ε cap and the δ it was checked
against, and the carry-over of erased members keeps their δ beside their ε.

Revision ID: 0010
Revises: 0009
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    cap = op.get_context().config.attributes.get("epsilon_cap")  # type: ignore[union-attr]
    initial = float(cap) if cap is not None and 0 < float(cap) <= 100 else 3.0
    with op.batch_alter_table("coop_rules") as batch:
        batch.add_column(sa.Column("epsilon_cap", sa.Float, nullable=False, server_default="3.0"))
        batch.add_column(sa.Column("delta_cap", sa.Float, nullable=False, server_default="1e-05"))
        batch.add_column(sa.Column("min_members", sa.Integer, nullable=False, server_default="2"))
    op.execute(sa.text("UPDATE coop_rules SET epsilon_cap = :cap").bindparams(cap=initial))
    with op.batch_alter_table("budget_spends") as batch:
        batch.add_column(sa.Column("cap_micro_epsilon", sa.BigInteger, nullable=True))
        batch.add_column(sa.Column("delta", sa.Float, nullable=True))
    with op.batch_alter_table("budget_carryover") as batch:
        batch.add_column(sa.Column("delta", sa.Float, nullable=False, server_default="0"))


def downgrade() -> None:
    with op.batch_alter_table("budget_carryover") as batch:
        batch.drop_column("delta")
    with op.batch_alter_table("budget_spends") as batch:
        batch.drop_column("delta")
        batch.drop_column("cap_micro_epsilon")
    with op.batch_alter_table("coop_rules") as batch:
        batch.drop_column("min_members")
        batch.drop_column("delta_cap")
        batch.drop_column("epsilon_cap")
