"""The HTTP API: tokens, idempotency keys, staff and buyer sessions

Buyers, auditors, stewards and members (a personal token) call ``/api/v1`` with a
bearer token: only its SHA-256 is kept, with its scopes, expiry and revocation. A buyer's
token made by an earlier version (``buyers.token_sha256``) becomes a token here, valid
for a year from the upgrade. A POST that spends budget or moves money takes an
idempotency key: the first response is kept and replayed. A browser session may be
signed in with a token (the buyer portal, the steward's console).

Revision ID: 0012
Revises: 0011
"""

from __future__ import annotations

import secrets
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

WHEN = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "api_tokens",
        sa.Column("id", sa.String(16), primary_key=True),
        sa.Column("secret_sha256", sa.String(64), nullable=False, unique=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("buyer_id", sa.Integer, sa.ForeignKey("buyers.id"), nullable=True),
        sa.Column("member_id", sa.Integer, sa.ForeignKey("members.id"), nullable=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("label", sa.String(200), nullable=False),
        sa.Column("scopes", sa.JSON, nullable=False),
        sa.Column("created_at", WHEN, nullable=False),
        sa.Column("expires_at", WHEN, nullable=False),
        sa.Column("revoked_at", WHEN, nullable=True),
        sa.Column("last_used_at", WHEN, nullable=True),
    )
    op.create_index("ix_api_tokens_member_id", "api_tokens", ["member_id"])
    op.create_index("ix_api_tokens_buyer_id", "api_tokens", ["buyer_id"])
    op.create_table(
        "idempotency_keys",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("principal", sa.String(255), nullable=False),
        sa.Column("key", sa.String(200), nullable=False),
        sa.Column("fingerprint", sa.String(64), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("status", sa.Integer, nullable=True),
        sa.Column("body", sa.JSON, nullable=True),
        sa.Column("created_at", WHEN, nullable=False),
        sa.UniqueConstraint("principal", "key", name="uq_idempotency_principal_key"),
    )
    op.create_index("ix_idempotency_keys_created_at", "idempotency_keys", ["created_at"])
    with op.batch_alter_table("web_sessions") as batch:
        batch.add_column(
            sa.Column(
                "token_id",
                sa.String(16),
                sa.ForeignKey("api_tokens.id", name="fk_web_sessions_token_id"),
                nullable=True,
            )
        )
    # an earlier version's buyer token keeps working, as a token of every buyer scope
    buyers = sa.table(
        "buyers",
        sa.column("id", sa.Integer),
        sa.column("name", sa.String),
        sa.column("token_sha256", sa.String),
    )
    tokens = sa.table(
        "api_tokens",
        sa.column("id", sa.String),
        sa.column("secret_sha256", sa.String),
        sa.column("kind", sa.String),
        sa.column("buyer_id", sa.Integer),
        sa.column("member_id", sa.Integer),
        sa.column("name", sa.String),
        sa.column("label", sa.String),
        sa.column("scopes", sa.JSON),
        sa.column("created_at", WHEN),
        sa.column("expires_at", WHEN),
    )
    conn = op.get_bind()
    now = datetime.now(UTC)
    for buyer_id, name, digest in conn.execute(
        sa.select(buyers.c.id, buyers.c.name, buyers.c.token_sha256)
    ):
        if not digest:
            continue
        conn.execute(
            tokens.insert().values(
                id=secrets.token_hex(6),
                secret_sha256=digest,
                kind="buyer",
                buyer_id=buyer_id,
                member_id=None,
                name=name,
                label="made before 0.5 (a bare token)",
                scopes=["releases:read", "requests:read", "requests:write", "tokens"],
                created_at=now,
                expires_at=now + timedelta(days=365),
            )
        )
    # emptied, not dropped: rebuilding ``buyers`` on SQLite would trip the requests'
    # foreign keys to it
    conn.execute(buyers.update().values(token_sha256=""))


def downgrade() -> None:
    with op.batch_alter_table("web_sessions") as batch:
        batch.drop_column("token_id")
    op.drop_table("idempotency_keys")
    op.drop_table("api_tokens")
