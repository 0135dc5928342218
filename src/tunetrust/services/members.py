"""Member use cases: join, list, profile, consent, budget, statement, export, erasure."""

from __future__ import annotations

from collections import Counter
from datetime import datetime
from pathlib import Path

from sqlalchemy import func, select

from tunetrust.coop import budget, consent, ledger, members, profile
from tunetrust.coop.contributions import member_weights
from tunetrust.coop.governance import iso_time
from tunetrust.errors import InputError, NotFoundError
from tunetrust.services._access import acting, for_member, steward_only
from tunetrust.services.models import (
    Actor,
    Amount,
    BudgetLine,
    ConsentChange,
    ConsentHistory,
    ConsentRecord,
    ErasureReceipt,
    ExportReceipt,
    InvitationClosed,
    InvitationInfo,
    MemberInfo,
    MemberOverview,
    MemberProfile,
    Statement,
    StatementLine,
)
from tunetrust.store.home import Home
from tunetrust.store.models import Contribution, Member, Passkey


def _when(at: datetime) -> str:
    return iso_time(at) or ""


def amount(value: int, currency: str) -> Amount:
    """Money as the API shows it: minor units, the currency's exponent, and the text."""
    try:
        minor: int | None = ledger.minor_unit(currency)
    except InputError:  # stored by an older version that took any three letters
        minor = None
    return Amount(
        amount=value,
        currency=currency,
        minor_unit=minor,
        text=ledger.format_amount(value, currency),
    )


def join(home: Home, actor: Actor, name: str, *, keep_incognito: bool = False) -> MemberInfo:
    """Add a member with a fresh pseudonym and data key (a steward admits them)."""
    steward_only(actor, "add members")
    with acting(home, actor):
        m = members.add_member(home, name, keep_incognito=keep_incognito)
    return MemberInfo(
        name=m.name or name, joined=_when(m.created_at), keep_incognito=m.keep_incognito
    )


def list_members(home: Home, actor: Actor) -> list[MemberInfo]:
    """Every member not erased, oldest first (a steward's view)."""
    steward_only(actor, "list members")
    return [
        MemberInfo(name=m.name or "", joined=_when(m.created_at), keep_incognito=m.keep_incognito)
        for m in members.list_members(home)
    ]


def member_profile(home: Home, actor: Actor, name: str) -> MemberProfile:
    """A member's metadata, consents in force, contributions and stored listens."""
    for_member(actor, name, "see a member's profile")
    v = profile.show_member(home, name)
    return MemberProfile(
        name=v.name,
        joined=_when(v.joined),
        keep_incognito=v.keep_incognito,
        account_bound=v.account_bound,
        contributions=v.contributions,
        listens=v.listens,
        consents=v.consents,
    )


def set_consent(
    home: Home, actor: Actor, name: str, purpose: str, *, granted: bool
) -> ConsentChange:
    """Grant or withdraw consent to a purpose; recorded with who decided."""
    for_member(actor, name, "grant or withdraw a member's consent")
    with acting(home, actor):
        changed = consent.decide(home, name, purpose, granted=granted)
    return ConsentChange(member=name, purpose=purpose, granted=granted, changed=changed)


def consent_history(home: Home, actor: Actor, name: str) -> ConsentHistory:
    """A member's consents in force and every decision, oldest first."""
    for_member(actor, name, "see a member's consents")
    rows = consent.history(home, name)
    with home.sessions() as s:
        in_force = consent.in_force(s, members.get_member(home, name).id)
    return ConsentHistory(
        member=name,
        purposes=list(home.settings.purposes),
        in_force=in_force,
        history=[
            ConsentRecord(purpose=c.purpose, granted=c.granted, at=_when(c.at), by=c.actor)
            for c in rows
        ],
    )


def budget_lines(home: Home, actor: Actor, name: str) -> list[BudgetLine]:
    """A member's ε budget this year, per purpose: cap, spent, remaining."""
    for_member(actor, name, "see a member's privacy budget")
    return [
        BudgetLine(
            purpose=r["purpose"],
            year=int(r["year"]),
            cap=r["cap"],
            spent=r["spent"],
            remaining=r["remaining"],
        )
        for r in budget.budget_report(home, name)
    ]


def lower_budget_cap(home: Home, actor: Actor, name: str, purpose: str, cap: float) -> BudgetLine:
    """A member lowers their own yearly ε cap for a purpose (never above the cooperative's)."""
    for_member(actor, name, "change a member's privacy budget")
    with acting(home, actor):
        budget.set_member_cap(home, name, purpose, cap)
    return next(line for line in budget_lines(home, actor, name) if line.purpose == purpose)


def member_statement(home: Home, actor: Actor, name: str) -> Statement:
    """A member's payouts, line by line, and a total per currency."""
    for_member(actor, name, "see a member's statement")
    account = f"member:{members.get_member(home, name).pseudonym}"
    lines, totals = [], Counter[str]()
    for at, memo, currency, cents in ledger.statement(home, account):
        lines.append(StatementLine(at=_when(at), memo=memo, amount=amount(cents, currency)))
        totals[currency] += cents
    return Statement(
        member=name,
        lines=lines,
        totals=[amount(v, c) for c, v in sorted(totals.items())],
    )


def export_data(home: Home, actor: Actor, name: str, out: Path) -> ExportReceipt:
    """Everything held about a member, as one zip (GDPR access and portability)."""
    for_member(actor, name, "export a member's data")
    from tunetrust.coop import rights  # the export reads Parquet: pyarrow only when needed

    with acting(home, actor):
        report = rights.export_member(home, name, out)
    return ExportReceipt(path=str(report.path), files=list(report.files), sha256=report.sha256)


def erase(home: Home, actor: Actor, name: str) -> ErasureReceipt:
    """Erase a member: listens, vault, data key, consents, name (GDPR erasure)."""
    for_member(actor, name, "erase a member")
    from tunetrust.coop import rights

    with acting(home, actor):
        r = rights.erase_member(home, name)
    return ErasureReceipt(
        pseudonym=r.pseudonym,
        contributions=r.contributions,
        listens=r.listens,
        consents=r.consents,
        audit_payloads=r.audit_payloads,
    )


def invite(
    home: Home,
    actor: Actor,
    *,
    member: str | None = None,
    days: int = 7,
    open_admission: bool = False,
) -> InvitationInfo:
    """A link to join the cooperative (a steward admits people this way).

    One-time by default. With ``member``: the link lets a member who already exists
    (added at the shell, or who lost every passkey and recovery code) register a
    passkey. With ``open_admission``: anyone with the link may join until it expires or
    :func:`close_invitation` closes it. The link's secret is returned once; the database
    keeps its digest.
    """
    steward_only(actor, "invite people")
    if not 1 <= days <= 30:
        raise InputError("an invitation lasts 1 to 30 days")
    from tunetrust.coop import accounts

    enrols = members.get_member(home, member) if member else None
    with acting(home, actor):
        row, token = accounts.create_invitation(
            home, member=enrols, days=days, reusable=open_admission
        )
    return InvitationInfo(
        id=row.id,
        link=f"{home.settings.web_origin}/join/{token}",
        expires=_when(row.expires_at),
        enrols=member,
        reusable=open_admission,
    )


def close_invitation(home: Home, actor: Actor, invitation_id: str) -> InvitationClosed:
    """Stop a link (an open admission, or an unused invitation) working now."""
    steward_only(actor, "close invitations")
    from tunetrust.coop import accounts

    with acting(home, actor):
        if not accounts.close_invitation(home, invitation_id):
            raise NotFoundError(f"no open invitation {invitation_id}")
    return InvitationClosed(id=invitation_id)


def member_overview(home: Home, actor: Actor) -> list[MemberOverview]:
    """Every member by pseudonym, oldest first, with their contributions' verdicts and
    current payout weight (the steward's console; no name is shown)."""
    steward_only(actor, "see the members' overview")
    with home.sessions() as s:
        rows = list(s.scalars(select(Member).order_by(Member.created_at, Member.id)))
        verdicts: dict[int, Counter[str]] = {}
        for member_id, verdict, n in s.execute(
            select(Contribution.member_id, Contribution.verdict, func.count()).group_by(
                Contribution.member_id, Contribution.verdict
            )
        ):
            verdicts.setdefault(member_id, Counter())[verdict] = int(n)
        passkeys = set(s.scalars(select(Passkey.member_id).distinct()))
        weights = member_weights(s, [m.id for m in rows])
        return [
            MemberOverview(
                pseudonym=m.pseudonym,
                joined=_when(m.created_at),
                erased=m.erased_at is not None,
                account_bound=m.account_hash is not None or m.account_marker is not None,
                signs_in=m.id in passkeys,
                contributions=sum(verdicts.get(m.id, Counter()).values()),
                verdicts=dict(sorted(verdicts.get(m.id, Counter()).items())),
                quality=round(weights.get(m.id, 0.0), 4),
            )
            for m in rows
        ]
