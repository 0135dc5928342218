"""What the service API takes and returns: frozen, validated pydantic models.

Every use case returns one of these (or a list of them), never an ORM row, a dict or
a tuple. The same models are the ``--json`` output of the command line (with a
``schema_version``) and the JSON Schemas checked in under ``docs/schemas/``; a later
HTTP API serves them too. Fields mirror what each command has always printed, so
scripts written against 0.2 keep their keys.

Times are ISO 8601 strings with their zone; money is whole minor units of an ISO 4217
currency with the text a person reads beside it; ε is a decimal string (exact).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

SCHEMA_VERSION = 1  # bump when a field is removed or changes meaning; adding one is not


class Model(BaseModel):
    """Frozen, and strict about unknown fields: an output cannot grow a key unnoticed."""

    model_config = ConfigDict(frozen=True, extra="forbid")


class Actor(Model):
    """Who is acting: the audit log names them, and what they may do depends on it.

    A member acts for themselves only; a buyer proposes requests in their own name; a
    steward acts for the cooperative (the command line acts as the steward named in
    the settings); an auditor reads the chain, manifests and ledger, nothing personal.
    """

    kind: Literal["steward", "member", "buyer", "auditor"]
    name: str = Field(min_length=1, max_length=200)

    @classmethod
    def steward(cls, name: str = "steward") -> Actor:
        """The cooperative's steward (the command line's actor)."""
        return cls(kind="steward", name=name)

    @classmethod
    def member(cls, name: str) -> Actor:
        """A member acting for themselves."""
        return cls(kind="member", name=name)

    @classmethod
    def buyer(cls, name: str) -> Actor:
        """A registered buyer."""
        return cls(kind="buyer", name=name)


# --- members ---------------------------------------------------------------------------


class MemberInfo(Model):
    """One member as ``member list`` shows them."""

    name: str
    joined: str
    keep_incognito: bool


class MemberProfile(Model):
    """What ``member show`` tells: joined, settings, consents in force, contributions."""

    name: str
    joined: str
    keep_incognito: bool
    account_bound: bool
    contributions: int
    listens: int
    consents: dict[str, bool] = Field(description="purpose → consent in force")


class ConsentChange(Model):
    """The outcome of granting or withdrawing consent."""

    member: str
    purpose: str
    granted: bool
    changed: bool = Field(description="false when the consent was already so")


class ConsentRecord(Model):
    """One decision in a member's consent history."""

    purpose: str
    granted: bool
    at: str
    by: str = Field(description="who recorded it, as the audit log names them")


class ConsentHistory(Model):
    """A member's consents in force and every decision behind them."""

    member: str
    purposes: list[str]
    in_force: dict[str, bool]
    history: list[ConsentRecord]


class BudgetLine(Model):
    """One purpose of a member's yearly privacy budget (ε as exact decimal strings)."""

    purpose: str
    year: int
    cap: str
    spent: str
    remaining: str


class Amount(Model):
    """Money: whole minor units of an ISO 4217 currency, and how a person reads it."""

    amount: int
    currency: str
    minor_unit: int | None
    text: str


class StatementLine(Model):
    """One line of a member's payouts."""

    at: str
    memo: str
    amount: Amount


class Statement(Model):
    """A member's payouts, line by line, with a total per currency (never added across)."""

    member: str
    lines: list[StatementLine]
    totals: list[Amount]


class ExportReceipt(Model):
    """A written access/portability export."""

    path: str
    files: list[str]
    sha256: str


class ErasureReceipt(Model):
    """What an erasure removed (the pseudonym stays on pseudonymous ledger lines)."""

    pseudonym: str
    contributions: int
    listens: int
    consents: int
    audit_payloads: int


# --- imports and contributions (an import's report is ingest's frozen ImportSummary) ---


class ContributionInfo(Model):
    """One contribution as ``contribution list`` shows it."""

    id: str
    member: str
    at: str
    verdict: str
    listens_added: int
    quality_score: float


class Settled(Model):
    """What ``doctor`` settled: files a killed writer left, deliveries it left mid-way."""

    files_settled: int
    deliveries_finished: list[str] = Field(
        default_factory=list, description="requests whose delivery a killed process left"
    )


class MemberRebuildInfo(Model):
    """What rebuilding one member's listens found (ingest/rebuild.py ``MemberRebuild``)."""

    pseudonym: str
    contributions: int
    listens_before: int
    listens_after: int
    weight_before: float
    weight_after: float
    changed: bool
    missing_raw: int


class Rebuilt(Model):
    """What rebuilding members' listens from their vaults found (or, dry, would change)."""

    dry_run: bool
    changed: int
    members: list[MemberRebuildInfo]


# --- governance ------------------------------------------------------------------------


class RulesInForce(Model):
    """The cooperative's rules (docs/governance.md)."""

    quorum: float
    majority: float
    weighted_votes: bool
    fee_basis_points: int
    no_votes_opt_out: bool
    epsilon_cap: float = Field(description="ε per member, purpose and calendar year")
    delta_cap: float = Field(description="δ per member, purpose and calendar year")
    min_members: int = Field(description="the fewest members a release may include")


class RulesChangeInfo(Model):
    """One decision that set the rules."""

    at: str | None
    actor: str
    reason: str
    rules: RulesInForce
    changed: dict[str, dict[str, Any]]


class RulesReport(Model):
    """The rules in force and the history of every change."""

    rules: RulesInForce
    history: list[RulesChangeInfo]


class TallyInfo(Model):
    """Counts and turnout, never who voted how."""

    eligible: int
    yes: float
    no: float
    abstain: float
    voters: int
    turnout: float
    quorum_met: bool
    passed: bool
    weighted: bool


class PaymentInfo(Model):
    """A sale as the ledger recorded it, in minor units of ``currency``."""

    release: str
    currency: str
    price: int
    fee: int
    payouts: int
    members_paid: int


class RequestInfo(Model):
    """A data request as members may see it: counts and turnout, not who voted how."""

    id: str
    buyer: str | None
    purpose: str
    state: Literal[
        "draft", "open", "passed", "failed", "building", "built", "delivered", "paid"
    ] = Field(description="failed and paid are final")
    price: Amount
    licence: str
    voting_days: int
    created_at: str | None
    opens_at: str | None
    closes_at: str | None
    eligible: int
    rules: RulesInForce | None
    plan: dict[str, Any]
    tally: TallyInfo | None
    early_reason: str | None
    release: str | None
    payment: PaymentInfo | None = None


class BuyerCreated(Model):
    """A registered buyer and their first API token, shown once (only a hash is kept)."""

    name: str
    country: str
    token: str = Field(description="the bearer secret for /api/v1: shown this once")
    token_id: str = Field(description="the token's public handle (revoke with it)")
    expires: str


class VoteCast(Model):
    """A member's vote as recorded (secret from other members: only counts are shown)."""

    request: str
    member: str
    choice: str


class LedgerBalanceInfo(Model):
    """One account's balance in one currency."""

    account: str
    currency: str
    amount: int
    text: str


class LedgerCheckInfo(Model):
    """Whether every transaction balances and balances equal their entries."""

    ok: bool
    transactions: int
    problems: list[str]


# --- releases --------------------------------------------------------------------------


class ReleasePlanInfo(Model):
    """What a spec would release: who, the cost, the noise and the expected outcome."""

    purpose: str
    year: int
    epsilon_per_member: str
    delta: float
    members_included: int
    members_left_out: dict[str, int]
    min_members: int
    noise: dict[str, Any]
    outcome: dict[str, Any]


class ReleaseBuilt(Model):
    """A built release: where it is and its manifest."""

    id: str
    path: str
    members_included: int
    merkle_root: str
    rows: int
    manifest: dict[str, Any]


class ReleaseCheck(Model):
    """A release checked against its files, the database's record and the audit entry."""

    release: str
    ok: bool
    problems: list[str]


class InclusionProof(Model):
    """A member's own proof that they are (or are not) in a release."""

    merkle_root: str
    checks: bool
    included: bool
    salt: str
    leaf: str
    index: int
    count: int
    path: list[str]


class Manifest(Model):
    """A release's manifest, as published beside its files."""

    model_config = ConfigDict(frozen=True, extra="allow")  # older releases have fewer keys

    id: str
    merkle_root: str


# --- audit and keys --------------------------------------------------------------------


class AuditEntryInfo(Model):
    """One entry of the chain (members appear by pseudonym)."""

    seq: int
    at: str
    actor: str
    action: str
    subject: str
    entry_hash: str


class AuditVerdict(Model):
    """Whether the chain holds, and the first bad entry if not."""

    ok: bool
    entries: int
    head: str
    problem: str | None
    first_bad: int | None


class AuditHead(Model):
    """The newest entry, for anchoring outside the cooperative."""

    seq: int
    entry_hash: str


class StateInfo(Model):
    """State-bearing tables compared with the audit chain (services/verify.py)."""

    ok: bool
    checked: dict[str, int] = Field(description="table → rows compared")
    problems: list[str]


class Verification(Model):
    """``tunetrust verify``: the chain, the ledger, and every table against the chain."""

    ok: bool
    audit: AuditVerdict
    ledger: LedgerCheckInfo
    state: StateInfo


class KeyRotation(Model):
    """A master-key rotation: how many keys were rewrapped."""

    keys_rewrapped: int


# --- the members' web app --------------------------------------------------------------


class InvitationInfo(Model):
    """A one-time link to join (or, for a member added at the shell, to enrol a passkey)."""

    id: str
    link: str = Field(description="the link to hand to the person; shown once, kept hashed")
    expires: str
    enrols: str | None = Field(description="the existing member it enrols, if any")
    reusable: bool = Field(
        default=False, description="open admission: anyone may join with it until closed"
    )


class InvitationClosed(Model):
    """An invitation (or an open admission) that no longer works."""

    id: str


class JobInfo(Model):
    """A background job (an upload being imported) as its member follows it."""

    id: str
    kind: str
    state: Literal["queued", "running", "done", "failed"]
    stage: str = Field(description="what the job is doing now, in plain words")
    done: int
    total: int
    created: str
    updated: str
    contribution: str | None = Field(description="the contribution it made, once done")
    error: str | None = Field(description="why it failed, naming the file, row or field")


class BallotInfo(Model):
    """A member's own ballot and the receipt that shows it was counted."""

    request: str
    choice: str
    at: str
    receipt: str = Field(description="the hash of the audit entry that recorded the ballot")
    seq: int = Field(description="that entry's place in the audit chain")


class ConsentReceipt(Model):
    """The audit entry that recorded one of a member's consent decisions."""

    seq: int = Field(description="the entry's place in the audit chain")
    at: str
    actor: str = Field(description="who decided, as the audit log names them")
    purpose: str | None = Field(description="the purpose (None if its payload was erased)")
    granted: bool
    entry_hash: str
    prev_hash: str
    payload_digest: str = Field(description="SHA-256 of the entry's payload, chained")


class MemberRequest(Model):
    """A data request as one member weighs it: what the buyer gets, its cost to them, their
    estimated share, whether they may vote, and their own ballot."""

    request: RequestInfo
    buyer_country: str | None
    group_by: list[str]
    metrics: list[str]
    described: list[str] = Field(description="what the buyer gets, in plain sentences")
    eligible: bool
    why_not: str | None = Field(description="why the member may not vote, when so")
    can_vote: bool = Field(description="eligible, and the vote is open now")
    epsilon_cost: str | None = Field(description="ε charged to each member included")
    epsilon_left: str = Field(description="the member's ε left for the purpose this year")
    estimated_share: Amount | None = Field(
        description="price less the fee, split by weight among eligible members: an estimate"
    )
    ballot: BallotInfo | None


class MemberRelease(Model):
    """A release a member was included in: what it cost them and what it paid them."""

    id: str
    at: str
    purpose: str
    year: int
    epsilon: str
    request: str | None
    buyer: str | None
    payout: Amount | None


__all__ = [
    "SCHEMA_VERSION",
    "Actor",
    "Amount",
    "AuditEntryInfo",
    "AuditHead",
    "AuditVerdict",
    "BudgetLine",
    "BuyerCreated",
    "ConsentChange",
    "ConsentHistory",
    "ConsentRecord",
    "ContributionInfo",
    "ErasureReceipt",
    "ExportReceipt",
    "InclusionProof",
    "KeyRotation",
    "LedgerBalanceInfo",
    "LedgerCheckInfo",
    "Manifest",
    "MemberInfo",
    "MemberProfile",
    "MemberRebuildInfo",
    "Model",
    "PaymentInfo",
    "ReleaseBuilt",
    "ReleaseCheck",
    "ReleasePlanInfo",
    "RequestInfo",
    "RulesChangeInfo",
    "RulesInForce",
    "Rebuilt",
    "RulesReport",
    "Settled",
    "Statement",
    "StateInfo",
    "StatementLine",
    "TallyInfo",
    "Verification",
    "VoteCast",
    "InvitationClosed",
    "InvitationInfo",
    "JobInfo",
    "BallotInfo",
    "ConsentReceipt",
    "MemberRelease",
    "MemberRequest",
]


# --- the HTTP API: tokens, deliveries, the steward's console ---------------------------


class TokenInfo(Model):
    """An API token as lists show it (never its secret: only a digest is kept)."""

    id: str = Field(description="the public handle: revoke with it")
    kind: Literal["buyer", "member", "auditor", "steward"]
    holder: str = Field(description="the buyer, auditor or steward it acts as; 'you' for a member")
    label: str
    scopes: list[str]
    created: str
    expires: str
    revoked: str | None
    last_used: str | None = Field(description="to within ten minutes")


class TokenIssued(Model):
    """A new token; ``token`` is shown this once."""

    token: str = Field(description="the bearer secret: send it as 'Authorization: Bearer …'")
    info: TokenInfo


class DeliveryFile(Model):
    """One file of a delivered release, as the manifest lists it."""

    name: str
    sha256: str
    bytes: int


class Delivery(Model):
    """What a buyer receives for a delivered request: the release's files and manifest."""

    request: str
    release: str
    merkle_root: str
    manifest: dict[str, Any]
    files: list[DeliveryFile] = Field(description="every file, the manifest and SHA256SUMS too")


class MemberOverview(Model):
    """A member as the steward's console lists them: by pseudonym, with their verdicts."""

    pseudonym: str
    joined: str
    erased: bool
    account_bound: bool
    signs_in: bool = Field(description="has a passkey for the web app")
    contributions: int
    verdicts: dict[str, int] = Field(description="verdict → how many contributions got it")
    quality: float = Field(description="the member's current payout weight")


class JobOverview(Model):
    """A background job as the steward's console lists it (the member by pseudonym)."""

    id: str
    member: str = Field(description="the member's pseudonym")
    kind: str
    state: str
    stage: str
    attempts: int
    created: str
    updated: str
    error: str | None
