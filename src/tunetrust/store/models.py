"""Metadata tables (SQLAlchemy 2). The member⇄pseudonym link lives only here."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Integer,
    LargeBinary,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    """Base of every metadata table."""

    type_annotation_map = {dict[str, Any]: JSON, list[Any]: JSON}


class Member(Base):
    """A person in the cooperative."""

    __tablename__ = "members"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # The name, sealed (AES-256-GCM) with the member's data key: erasure destroys the
    # key, so no copy the database keeps (dead rows, WAL, dumps) can be read again.
    # NULL once erased. The table's old plaintext column ``name`` is NULL everywhere
    # since migration 0009 and is not mapped. ``name`` below is the unsealed name.
    name_sealed: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    # what look-alike names share (tunetrust/names.py lookup_key: keyed by a cooperative
    # secret); unique; NULL once erased
    name_key: Mapped[str | None] = mapped_column(String(64), unique=True, index=True)
    pseudonym: Mapped[str] = mapped_column(String(32), unique=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    keep_incognito: Mapped[bool] = mapped_column(Boolean, default=False)
    # the one current Parquet file of the member's events partition (see store/events.py)
    events_file: Mapped[str | None] = mapped_column(String(64), nullable=True)
    # the member's data key, sealed by the master key; NULL once erased (crypto-shredding)
    data_key_wrapped: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    # keyed hash of the one streaming account this member contributes
    account_hash: Mapped[str | None] = mapped_column(String(64), unique=True, nullable=True)
    # the account's marker (coop/keyring.py account_marker): finds the ε an erased
    # member of the same account spent (budget_carryover); NULL until bound, and once erased
    account_marker: Mapped[str | None] = mapped_column(String(64), unique=True, nullable=True)
    erased_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    # the events file the member's fingerprints were made from (ingest/fingerprint.py);
    # another value than events_file means they are stale and are made again
    fingerprinted: Mapped[str | None] = mapped_column(String(64), nullable=True)

    @property
    def name(self) -> str | None:
        """The name as shown, once ``coop/members.py`` has unsealed it (never stored so)."""
        shown: str | None = self.__dict__.get("_shown_name")
        return shown

    def show_name(self, name: str | None) -> None:
        """Attach the unsealed name to this loaded row (``coop/members.py`` only)."""
        self.__dict__["_shown_name"] = name


class Contribution(Base):
    """The result of importing one export for one member."""

    __tablename__ = "contributions"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    service: Mapped[str] = mapped_column(String(40))
    export_digest: Mapped[str] = mapped_column(String(64), index=True)
    account_hashes: Mapped[list[Any]] = mapped_column(JSON)
    listens_added: Mapped[int] = mapped_column(Integer)
    duplicates_skipped: Mapped[int] = mapped_column(Integer)
    summary: Mapped[dict[str, Any]] = mapped_column(JSON)
    # the encrypted raw export in the vault, if this import stored one
    vault_file: Mapped[str | None] = mapped_column(String(64), nullable=True)
    verdict: Mapped[str] = mapped_column(String(32), default="accepted")
    # this contribution's increment of the member's quality score (weights payouts)
    quality_score: Mapped[float] = mapped_column(Float, default=0.0)


class DisputeRecord(Base):
    """An import held because its account or plays are another member's (ingest/disputes.py).

    Kept apart from the contribution's report, so neither member's report or export
    names the other; the steward sees both.
    """

    __tablename__ = "disputes"

    contribution_id: Mapped[str] = mapped_column(ForeignKey("contributions.id"), primary_key=True)
    claimant_id: Mapped[int] = mapped_column(ForeignKey("members.id"), index=True)
    holder_id: Mapped[int | None] = mapped_column(ForeignKey("members.id"), index=True)
    reason: Mapped[str] = mapped_column(String(16))  # account | copy
    opened_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    decided_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    decided_for: Mapped[str | None] = mapped_column(String(16), nullable=True)


class CoopFigure(Base):
    """A figure of the whole cooperative, kept until its basis moves (a cache: erasing it
    loses nothing; ingest/provenance.py's typical corroborated share)."""

    __tablename__ = "coop_figures"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[float | None] = mapped_column(Float, nullable=True)  # None: not judged
    basis: Mapped[int] = mapped_column(Integer)  # e.g. the members it was computed over
    computed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


FINGERPRINT_KINDS = {0: "sequence", 1: "play", 2: "track"}
"""``fingerprints.kind`` in words (ingest/fingerprint.py makes them; a member's export
lists them by these names)."""


class Fingerprint(Base):
    """One sampled, keyed hash of a member's listening (ingest/fingerprint.py)."""

    __tablename__ = "fingerprints"

    kind: Mapped[int] = mapped_column(SmallInteger, primary_key=True)
    hash: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id"), primary_key=True, index=True)


class Consent(Base):
    """One consent decision; the newest per (member, purpose) is in force."""

    __tablename__ = "consents"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id"), index=True)
    purpose: Mapped[str] = mapped_column(String(64))
    granted: Mapped[bool] = mapped_column(Boolean)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    actor: Mapped[str] = mapped_column(String(100))


class AuditEntry(Base):
    """One link of the hash-chained audit log."""

    __tablename__ = "audit_entries"

    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    at: Mapped[str] = mapped_column(String(40))  # ISO 8601 UTC, hashed as written
    actor: Mapped[str] = mapped_column(String(100))
    action: Mapped[str] = mapped_column(String(64))
    subject: Mapped[str] = mapped_column(String(100), index=True)
    payload_digest: Mapped[str] = mapped_column(String(64))
    prev_hash: Mapped[str] = mapped_column(String(64))
    entry_hash: Mapped[str] = mapped_column(String(64))


class AuditPayload(Base):
    """The payload behind an entry's digest; erasure may delete it, the chain still holds."""

    __tablename__ = "audit_payloads"

    seq: Mapped[int] = mapped_column(ForeignKey("audit_entries.seq"), primary_key=True)
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)


class AuditHead(Base):
    """The newest entry's number and hash; its row lock serialises appends."""

    __tablename__ = "audit_head"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    seq: Mapped[int] = mapped_column(Integer)
    entry_hash: Mapped[str] = mapped_column(String(64))


class Secret(Base):
    """A cooperative secret, wrapped (AES-GCM) by the master key."""

    __tablename__ = "secrets"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    wrapped: Mapped[bytes] = mapped_column(LargeBinary)


class Release(Base):
    """A built data product; its files and manifest live in <home>/releases/<id>/."""

    __tablename__ = "releases"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    purpose: Mapped[str] = mapped_column(String(64))
    spec: Mapped[str] = mapped_column(Text)
    manifest_sha256: Mapped[str] = mapped_column(String(64))
    members_included: Mapped[int] = mapped_column(Integer)
    # salts the Merkle leaves of the included members (releases/manifest.py); never in
    # the manifest. NULL for releases built before it: their leaves are unsalted
    merkle_secret: Mapped[str | None] = mapped_column(String(64), nullable=True)


class BudgetSpend(Base):
    """ε spent from one member's budget by one release."""

    __tablename__ = "budget_spends"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id"), index=True)
    purpose: Mapped[str] = mapped_column(String(64))
    year: Mapped[int] = mapped_column(Integer)
    micro_epsilon: Mapped[int] = mapped_column(BigInteger)
    release_id: Mapped[str] = mapped_column(String(32), index=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    # what the spend was checked against (NULL: spent before 0.3 recorded it)
    cap_micro_epsilon: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    delta: Mapped[float | None] = mapped_column(Float, nullable=True)


class BudgetCarryover(Base):
    """ε that erased members had spent, per streaming account, purpose and year.

    No member id: the marker is an HMAC of the account's keyed hash under a cooperative
    secret of its own, so the row cannot be joined to the erased member's row; a new
    member bound to the same account carries it (coop/budget.py). Rows are deleted once
    their year's budget no longer matters (the end of the following calendar year).
    """

    __tablename__ = "budget_carryover"
    __table_args__ = (
        UniqueConstraint("account_marker", "purpose", "year", name="uq_budget_carryover"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    account_marker: Mapped[str] = mapped_column(String(64), index=True)
    purpose: Mapped[str] = mapped_column(String(64))
    year: Mapped[int] = mapped_column(Integer)
    micro_epsilon: Mapped[int] = mapped_column(BigInteger)
    delta: Mapped[float] = mapped_column(Float, server_default="0")  # δ spent (0.3 on)


class BudgetCap(Base):
    """A member's own, lower, yearly ε cap for a purpose."""

    __tablename__ = "budget_caps"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id"), index=True)
    purpose: Mapped[str] = mapped_column(String(64))
    micro_epsilon: Mapped[int] = mapped_column(BigInteger)


class Buyer(Base):
    """An organisation that requests data products; never sees member data."""

    __tablename__ = "buyers"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    contact: Mapped[str] = mapped_column(String(200))
    country: Mapped[str] = mapped_column(String(2))
    # an earlier version's token hash: moved to ``api_tokens`` by migration 0012, left empty
    token_sha256: Mapped[str] = mapped_column(String(64), default="")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class DataRequest(Base):
    """A buyer's proposal, and its way through the vote to delivery and payment."""

    __tablename__ = "data_requests"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    buyer_id: Mapped[int] = mapped_column(ForeignKey("buyers.id"))
    purpose: Mapped[str] = mapped_column(String(64))
    spec: Mapped[str] = mapped_column(Text)
    price_cents: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    licence: Mapped[str] = mapped_column(Text)
    state: Mapped[str] = mapped_column(String(16))
    voting_days: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    opens_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    closes_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    eligible: Mapped[list[Any]] = mapped_column(JSON, default=list)
    plan: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    tally: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    release_id: Mapped[str | None] = mapped_column(String(32), nullable=True)
    # the cooperative's rules as they were when the vote opened (settings.Rules.to_dict);
    # close, deliver and pay read only these. NULL while a draft
    rules: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)


class CoopRules(Base):
    """One decision on the cooperative's rules (settings.Rules); the newest row is in force."""

    __tablename__ = "coop_rules"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    actor: Mapped[str] = mapped_column(String(100))
    reason: Mapped[str] = mapped_column(Text)
    quorum: Mapped[float] = mapped_column(Float)
    majority: Mapped[float] = mapped_column(Float)
    weighted_votes: Mapped[bool] = mapped_column(Boolean)
    fee_basis_points: Mapped[int] = mapped_column(Integer)
    no_votes_opt_out: Mapped[bool] = mapped_column(Boolean)
    epsilon_cap: Mapped[float] = mapped_column(Float, server_default="3.0")
    delta_cap: Mapped[float] = mapped_column(Float, server_default="1e-05")
    min_members: Mapped[int] = mapped_column(Integer, server_default="2")


class Vote(Base):
    """One member's vote on one request; the database allows one row per pair."""

    __tablename__ = "votes"
    __table_args__ = (UniqueConstraint("request_id", "member_id", name="uq_votes_request_member"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    request_id: Mapped[str] = mapped_column(ForeignKey("data_requests.id"), index=True)
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id"))
    choice: Mapped[str] = mapped_column(String(8))
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class LedgerTransaction(Base):
    """One balanced movement of money."""

    __tablename__ = "ledger_transactions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    memo: Mapped[str] = mapped_column(String(200))
    request_id: Mapped[str | None] = mapped_column(String(32), nullable=True)


class LedgerEntry(Base):
    """One side of a transaction: an account and a signed amount in integer cents."""

    __tablename__ = "ledger_entries"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    transaction_id: Mapped[int] = mapped_column(ForeignKey("ledger_transactions.id"), index=True)
    account: Mapped[str] = mapped_column(String(80), index=True)
    currency: Mapped[str] = mapped_column(String(3))
    cents: Mapped[int] = mapped_column(BigInteger)


class LedgerBalance(Base):
    """Running balance of an account, kept beside the entries so both can be checked."""

    __tablename__ = "ledger_balances"
    __table_args__ = (UniqueConstraint("account", "currency", name="uq_balance_account"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    account: Mapped[str] = mapped_column(String(80))
    currency: Mapped[str] = mapped_column(String(3))
    cents: Mapped[int] = mapped_column(BigInteger)


# --- the members' web app (migration 0011) ---------------------------------------------


class Invitation(Base):
    """An expiring link to join: one-time (or, with ``member_id``, to enrol a passkey), or
    reusable until closed (``reusable``: the steward has opened admission).

    Only the SHA-256 of the link's secret is kept: the database never holds a usable link.
    """

    __tablename__ = "invitations"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    # an existing member the link enrols (a member the steward added at the shell)
    member_id: Mapped[int | None] = mapped_column(ForeignKey("members.id"), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    # used once, then set; for an open admission link: when the steward closed it
    used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    # open admission: anyone with the link may join until it expires or is closed
    reusable: Mapped[bool] = mapped_column(Boolean, default=False)


class Passkey(Base):
    """A member's WebAuthn credential: the public key only, and its signature counter."""

    __tablename__ = "passkeys"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id"), index=True)
    credential_id: Mapped[str] = mapped_column(String(1400), unique=True)  # base64url
    public_key: Mapped[bytes] = mapped_column(LargeBinary)  # COSE key
    sign_count: Mapped[int] = mapped_column(BigInteger, default=0)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    last_used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class RecoveryCode(Base):
    """A one-time recovery code, Argon2id-hashed (and found by a keyed lookup); used once."""

    __tablename__ = "recovery_codes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id"), index=True)
    # HMAC of the code under a cooperative key: finds the one row to verify, so a wrong
    # code costs one lookup, not an Argon2 verification per code
    lookup: Mapped[str] = mapped_column(String(64), index=True)
    code_hash: Mapped[str] = mapped_column(String(200))
    used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class WebSession(Base):
    """A browser session, kept on the server: the cookie holds a secret whose hash is the id.

    Anonymous until sign-in (the CSRF token and a pending WebAuthn challenge live here);
    a new id is issued at sign-in. ``state`` holds a pending ceremony, never personal data.
    """

    __tablename__ = "web_sessions"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)  # SHA-256 of the cookie
    member_id: Mapped[int | None] = mapped_column(
        ForeignKey("members.id"), nullable=True, index=True
    )
    csrf: Mapped[str] = mapped_column(String(64))
    state: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    # signed in with an API token (buyer portal, steward's console) instead of a passkey
    token_id: Mapped[str | None] = mapped_column(
        ForeignKey("api_tokens.id"), nullable=True, default=None
    )


class SignInAttempt(Base):
    """A failed or refused sign-in, by a keyed hash of where it came from (rate limits)."""

    __tablename__ = "sign_in_attempts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    source: Mapped[str] = mapped_column(String(64), index=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)


class Job(Base):
    """Background work (an upload's import): claimed by one worker, resumable, never lost.

    ``state``: queued → running → done | failed. A running job whose worker stopped
    heartbeating is claimed again (imports are idempotent: a second run of the same
    export is recognised by its digest) until ``attempts`` reaches the limit.
    """

    __tablename__ = "jobs"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    kind: Mapped[str] = mapped_column(String(40))
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id"), index=True)
    state: Mapped[str] = mapped_column(String(16), index=True)
    # the job's input, e.g. {"upload": "<key in the uploads store>", "filename": "..."}
    params: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    stage: Mapped[str] = mapped_column(String(80), default="")
    done: Mapped[int] = mapped_column(BigInteger, default=0)
    total: Mapped[int] = mapped_column(BigInteger, default=0)
    result: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    worker: Mapped[str | None] = mapped_column(String(80), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    heartbeat_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class ApiToken(Base):
    """A bearer token for ``/api/v1`` (and the buyer portal, the steward's console).

    Only the SHA-256 of the secret is kept; ``id`` is the public handle lists and
    revocation use. ``kind`` says who it acts as: a buyer (``buyer_id``), a member
    (``member_id``: their personal token), an auditor or a steward (``name``).
    """

    __tablename__ = "api_tokens"

    id: Mapped[str] = mapped_column(String(16), primary_key=True)
    secret_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    kind: Mapped[str] = mapped_column(String(16))
    buyer_id: Mapped[int | None] = mapped_column(ForeignKey("buyers.id"), nullable=True, index=True)
    member_id: Mapped[int | None] = mapped_column(
        ForeignKey("members.id"), nullable=True, index=True
    )
    name: Mapped[str] = mapped_column(String(200))  # the buyer's, auditor's or steward's name
    label: Mapped[str] = mapped_column(String(200))  # what its holder said it is for
    scopes: Mapped[list[str]] = mapped_column(JSON, default=list)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    last_used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class IdempotencyKey(Base):
    """The first response to a POST sent with an ``Idempotency-Key``, replayed to repeats.

    ``state`` is ``running`` while the first is being served (a repeat meanwhile is told
    to wait), then ``done`` with the status and body kept for a day.
    """

    __tablename__ = "idempotency_keys"
    __table_args__ = (UniqueConstraint("principal", "key", name="uq_idempotency_principal_key"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    principal: Mapped[str] = mapped_column(String(255))
    key: Mapped[str] = mapped_column(String(200))
    fingerprint: Mapped[str] = mapped_column(String(64))  # method, route and body
    state: Mapped[str] = mapped_column(String(16))
    status: Mapped[int | None] = mapped_column(Integer, nullable=True)
    body: Mapped[Any] = mapped_column(JSON, nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
