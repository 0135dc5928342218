"""members.name_sealed, keyed name_key, account_marker; budget_carryover

Names are sealed with each member's data key (erasure destroys the key, so no copy
of the row the database keeps can be read again), ``name_key`` is keyed by a
cooperative secret, and an account's marker carries its spent ε across erasure.

Sealing needs the master key: the caller passes it as ``master_key`` in the Alembic
config's attributes (a callable, asked only when there are rows to seal).

Revision ID: 0009
Revises: 0008
"""

from __future__ import annotations

import os
from collections.abc import Callable

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

_members = sa.table(
    "members",
    sa.column("id", sa.Integer()),
    sa.column("pseudonym", sa.String()),
    sa.column("name", sa.String()),
    sa.column("name_sealed", sa.LargeBinary()),
    sa.column("name_key", sa.String()),
    sa.column("data_key_wrapped", sa.LargeBinary()),
    sa.column("account_hash", sa.String()),
    sa.column("account_marker", sa.String()),
)
_secrets = sa.table(
    "secrets", sa.column("name", sa.String()), sa.column("wrapped", sa.LargeBinary())
)


def _master_key() -> bytes:
    from tunetrust.errors import SetupError

    config = op.get_context().config
    assert config is not None  # run through store/db.py, which always passes one
    given: Callable[[], bytes] | bytes | None = config.attributes.get("master_key")
    if given is None:
        raise SetupError("upgrading this database seals member names: it needs the master key")
    return given() if callable(given) else given


def _coop_secret(conn: sa.Connection, master: bytes) -> bytes:
    """The cooperative secret the name and marker keys derive from (as coop/keyring.py)."""
    from tunetrust.store import keys
    from tunetrust.store.home import ACCOUNT_HASH_SECRET as name

    wrapped = conn.scalar(sa.select(_secrets.c.wrapped).where(_secrets.c.name == name))
    if wrapped is None:  # a home made before init wrote it: made here as init does
        plain = os.urandom(32)
        sealed = keys.seal(master, plain, name.encode())
        conn.execute(sa.insert(_secrets).values(name=name, wrapped=sealed))
        return plain
    return keys.unseal(master, wrapped, name.encode(), f"the secret {name!r}")


def upgrade() -> None:
    # the very functions the code uses, so the two can never differ
    from tunetrust.names import rekey
    from tunetrust.store import keys

    op.add_column("members", sa.Column("name_sealed", sa.LargeBinary(), nullable=True))
    op.add_column("members", sa.Column("account_marker", sa.String(64), nullable=True))
    op.create_index("ix_members_account_marker", "members", ["account_marker"], unique=True)
    op.create_table(
        "budget_carryover",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("account_marker", sa.String(64), nullable=False),
        sa.Column("purpose", sa.String(64), nullable=False),
        sa.Column("year", sa.Integer(), nullable=False),
        sa.Column("micro_epsilon", sa.BigInteger(), nullable=False),
        sa.UniqueConstraint("account_marker", "purpose", "year", name="uq_budget_carryover"),
    )
    op.create_index("ix_budget_carryover_account_marker", "budget_carryover", ["account_marker"])

    conn = op.get_bind()
    m = _members.c
    rows = conn.execute(
        sa.select(m.id, m.pseudonym, m.name, m.name_key, m.data_key_wrapped, m.account_hash)
        .where(sa.or_(m.name.is_not(None), m.account_hash.is_not(None)))
        .order_by(m.id)
    ).all()
    if not rows:
        return
    master = _master_key()
    secret = _coop_secret(conn, master)
    name_secret = keys.derive(secret, keys.NAME_KEY)
    marker_secret = keys.derive(secret, keys.ACCOUNT_MARKER)
    for member_id, pseudonym, name, key, wrapped, account_hash in rows:
        values: dict[str, object] = {}
        if name is not None:
            context = keys.member_key_context(pseudonym)
            if wrapped is None:  # a member from before the vault: their key is made now
                data_key = keys.new_key()
                values["data_key_wrapped"] = keys.seal(master, data_key, context)
            else:
                data_key = keys.unseal(master, wrapped, context, "a member's data key")
            values["name_sealed"] = keys.seal(
                data_key, name.encode(), keys.member_name_context(pseudonym)
            )
            values["name"] = None
            # look-alikes an older version let in keep no key (migration 0006)
            values["name_key"] = rekey(name_secret, key) if key is not None else None
        if account_hash is not None:
            values["account_marker"] = keys.keyed_digest(marker_secret, account_hash)
        conn.execute(_members.update().where(m.id == member_id).values(**values))


def downgrade() -> None:
    from tunetrust.names import name_key
    from tunetrust.store import keys

    conn = op.get_bind()
    m = _members.c
    rows = conn.execute(
        sa.select(m.id, m.pseudonym, m.name_sealed, m.name_key, m.data_key_wrapped)
        .where(m.name_sealed.is_not(None), m.data_key_wrapped.is_not(None))
        .order_by(m.id)
    ).all()
    if rows:
        master = _master_key()
        for member_id, pseudonym, sealed, key, wrapped in rows:
            data_key = keys.unseal(
                master, wrapped, keys.member_key_context(pseudonym), "a member's data key"
            )
            name = keys.unseal(
                data_key, sealed, keys.member_name_context(pseudonym), "a member's name"
            ).decode()
            conn.execute(
                _members.update()
                .where(m.id == member_id)
                .values(name=name, name_key=name_key(name) if key is not None else None)
            )
    op.drop_index("ix_budget_carryover_account_marker", "budget_carryover")
    op.drop_table("budget_carryover")
    op.drop_index("ix_members_account_marker", "members")
    # plain ALTER TABLE … DROP COLUMN (SQLite ≥ 3.35): neither column is unique or
    # indexed any more, and rebuilding the table would trip the children's foreign keys
    op.drop_column("members", "account_marker")
    op.drop_column("members", "name_sealed")
