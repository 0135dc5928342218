"""Buyers, the cooperative's rules, data requests, votes and the request lifecycle.

    draft ──open──▶ open ──close──▶ passed ──claim──▶ building ──build──▶ built
                                 └─▶ failed           (back to passed if the build fails)
    built ──deliver──▶ delivered ──pay──▶ paid

Every move is checked against this machine (an illegal move is refused naming the
state) and is one transaction together with its audit entry: a move that fails part
way leaves the request as it was. The rules (quorum, majority, weighting, fee, whether
no-voters are left out) are the cooperative's own, kept in the database with their
history and changed only by ``set_rules``; ``open`` freezes them into the request and
everything after reads only those.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import iso3166
from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from tunetrust.coop import audit, ledger, tokens
from tunetrust.coop.contributions import member_weights
from tunetrust.coop.members import get_member
from tunetrust.errors import ConflictError, InputError, NotFoundError
from tunetrust.settings import Rules
from tunetrust.store.home import Home
from tunetrust.store.models import Buyer, CoopRules, DataRequest, Vote

MOVES = {
    "open": ("draft", "open"),
    "close": ("open", None),  # → passed or failed, by the tally
    "claim": ("passed", "building"),
    "build": ("building", "built"),
    "deliver": ("built", "delivered"),
    "pay": ("delivered", "paid"),
}
CHOICES = ("yes", "no", "abstain")
LICENCES = {
    "research-only": "Use for non-commercial research only; publish only aggregate findings; "
    "no attempt to identify any person.",
    "ai-training-no-reidentification": "May be used to train models; no attempt to "
    "re-identify any person, and no model output that reproduces individual histories.",
    "commercial-analytics": "Internal commercial analytics; no resale; no attempt to "
    "identify any person.",
}
MAX_REASON = 1000


def iso_time(at: datetime | None) -> str | None:
    """ISO 8601 in UTC with its zone, to the second (SQLite hands back naive UTC times)."""
    if at is None:
        return None
    at = at if at.tzinfo else at.replace(tzinfo=UTC)
    return at.astimezone(UTC).isoformat(timespec="seconds")


def _utc(at: datetime) -> datetime:
    return at if at.tzinfo else at.replace(tzinfo=UTC)


def _reason(text: str, what: str) -> str:
    """A steward's reason: printable text, 1 to MAX_REASON characters."""
    text = text.strip()
    if not text or len(text) > MAX_REASON:
        raise InputError(f"{what}: give a reason of 1 to {MAX_REASON} characters")
    if any(unicodedata.category(c) in ("Cc", "Cf") for c in text):
        raise InputError(f"{what}: the reason holds control or formatting characters")
    return text


# --- buyers ----------------------------------------------------------------------------


def country_code(text: str) -> str:
    """An ISO 3166-1 alpha-2 country code, in upper case; anything else is refused."""
    code = text.strip().upper()
    if code not in iso3166.countries_by_alpha2:
        raise InputError("a buyer's country is an ISO 3166-1 two-letter code, such as SE or DE")
    return code


def add_buyer(
    home: Home, name: str, contact: str, country: str, *, days: int = 90
) -> tuple[Buyer, str]:
    """Register a buyer with a first API token (all buyer scopes, ``days`` long); returns
    the buyer and the token's secret (shown once, stored as a digest)."""
    buyer = Buyer(
        name=name.strip(),
        contact=contact.strip(),
        country=country_code(country),
        token_sha256="",  # tokens live in api_tokens
        created_at=datetime.now(UTC),
    )
    try:
        with home.transaction() as s:
            s.add(buyer)
            s.flush()
            token, secret = tokens.issue(
                s, kind="buyer", name=buyer.name, label="first token", days=days, buyer_id=buyer.id
            )
            audit.record(
                s,
                actor=audit.actor(home),
                action="buyer.add",
                subject=f"buyer:{buyer.id}",
                payload={"name": buyer.name, "token": token.id},
            )
    except IntegrityError:
        raise ConflictError(f"a buyer named {name!r} exists already") from None
    return buyer, secret


def find_buyer(session: Session, name: str) -> Buyer:
    buyer = session.scalar(select(Buyer).where(Buyer.name == name))
    if buyer is None:
        raise NotFoundError(f"no buyer named {name!r}; add one with: tunetrust buyer add")
    return buyer


# --- the cooperative's rules -----------------------------------------------------------


@dataclass(frozen=True)
class RulesChange:
    """One decision on the rules: when, by whom, why, what changed, the rules it set."""

    at: datetime
    actor: str
    reason: str
    rules: Rules
    changed: dict[str, dict[str, Any]]  # rule → {"from", "to"}; empty for the first row

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return {
            "at": iso_time(self.at),
            "actor": self.actor,
            "reason": self.reason,
            "rules": self.rules.to_dict(),
            "changed": self.changed,
        }


def _changes(before: Rules | None, after: Rules) -> dict[str, dict[str, Any]]:
    if before is None:
        return {}
    old, new = before.to_dict(), after.to_dict()
    return {k: {"from": old[k], "to": new[k]} for k in new if old[k] != new[k]}


def rules_of(row: CoopRules) -> Rules:
    """The rules one row of the history holds."""
    return Rules(
        quorum=row.quorum,
        majority=row.majority,
        weighted_votes=row.weighted_votes,
        fee_basis_points=row.fee_basis_points,
        no_votes_opt_out=row.no_votes_opt_out,
        epsilon_cap=row.epsilon_cap,
        delta_cap=row.delta_cap,
        min_members=row.min_members,
    )


def newest_rules(session: Session, *, lock: bool = False) -> CoopRules:
    query = select(CoopRules).order_by(CoopRules.id.desc()).limit(1)
    row = session.scalar(query.with_for_update() if lock else query)
    if row is None:  # pragma: no cover - the first row is written by migration 0007
        raise RuntimeError("the cooperative's rules are missing")
    return row


def rules_in_force(home: Home) -> Rules:
    """The cooperative's rules now (the newest decision)."""
    with home.sessions() as s:
        return rules_of(newest_rules(s))


def rules_history(home: Home) -> list[RulesChange]:
    """Every decision on the rules, oldest first; the last one is in force."""
    with home.sessions() as s:
        rows = list(s.scalars(select(CoopRules).order_by(CoopRules.id)))
    history: list[RulesChange] = []
    for r in rows:
        before = history[-1].rules if history else None
        rules = rules_of(r)
        history.append(RulesChange(_utc(r.at), r.actor, r.reason, rules, _changes(before, rules)))
    return history


def set_rules(
    home: Home,
    *,
    reason: str,
    quorum: float | None = None,
    majority: float | None = None,
    weighted_votes: bool | None = None,
    fee_basis_points: int | None = None,
    no_votes_opt_out: bool | None = None,
    epsilon_cap: float | None = None,
    delta_cap: float | None = None,
    min_members: int | None = None,
) -> RulesChange:
    """Change some of the rules, with a reason; recorded in the history and the audit log.

    Requests already open keep the rules they were opened under.
    """
    why = _reason(reason, "rules set")
    given = {
        "quorum": quorum,
        "majority": majority,
        "weighted_votes": weighted_votes,
        "fee_basis_points": fee_basis_points,
        "no_votes_opt_out": no_votes_opt_out,
        "epsilon_cap": epsilon_cap,
        "delta_cap": delta_cap,
        "min_members": min_members,
    }
    with home.transaction() as s:
        newest = newest_rules(s, lock=True)
        if newest_rules(s).id != newest.id:  # PostgreSQL: another change got in meanwhile
            raise ConflictError("the rules were changed meanwhile; look at them and try again")
        before = rules_of(newest)
        after = Rules.from_dict(
            before.to_dict() | {k: v for k, v in given.items() if v is not None}
        )
        changed = _changes(before, after)
        if not changed:
            raise InputError("rules set: nothing to change (give a rule with a new value)")
        change = RulesChange(datetime.now(UTC), audit.actor(home), why, after, changed)
        s.add(CoopRules(at=change.at, actor=change.actor, reason=why, **after.to_dict()))
        audit.record(
            s,
            actor=audit.actor(home),
            action="rules.set",
            subject="rules",
            payload={"rules": after.to_dict(), "changed": changed, "reason": why},
        )
    return change


# --- data requests ---------------------------------------------------------------------


def find_request(
    session: Session, request_id: str, *, lock: bool = False, share: bool = False
) -> DataRequest:
    """The request with this id or unique prefix; ``lock``/``share``: its row locked."""
    query = select(DataRequest).where(DataRequest.id.startswith(request_id, autoescape=True))
    if lock or share:
        query = query.with_for_update(read=share and not lock)
    rows = list(session.scalars(query))
    if len(request_id) < 6 or len(rows) != 1:
        raise NotFoundError(f"no data request {request_id!r}")
    return rows[0]


def _check(req: DataRequest, move: str) -> None:
    """Refuse a move the state machine does not allow from the request's state."""
    source = MOVES[move][0]
    if req.state != source:
        raise ConflictError(
            f"cannot {move} a request that is {req.state} "
            f"(only a {source} request can be moved by {move!r})"
        )


def move(session: Session, req: DataRequest, move: str, to: str | None = None) -> str:
    """Check and perform a state move; an illegal one is refused."""
    _check(req, move)
    req.state = to or MOVES[move][1] or req.state
    return req.state


def frozen_rules(req: DataRequest) -> Rules:
    """The rules the request's vote was opened under: the only ones that decide it."""
    if req.rules is None:
        raise ConflictError(f"request {req.id[:12]} has no rules frozen at its opening")
    return Rules.from_dict(req.rules)


def cast_vote(home: Home, member_name: str, request_id: str, choice: str) -> None:
    """Cast or change a vote; one row per member and request, enforced by the database."""
    if choice not in CHOICES:
        raise InputError(f"a vote is one of {', '.join(CHOICES)}")
    member = get_member(home, member_name)
    with home.transaction() as s:
        # a shared lock: a close under way (which holds the row) is waited for, then seen
        req = find_request(s, request_id, share=True)
        if req.state != "open":
            raise ConflictError(f"voting is closed: the request is {req.state}")
        if req.closes_at and datetime.now(UTC) > _utc(req.closes_at):
            raise ConflictError("voting is closed: the window has ended")
        if member.id not in req.eligible:
            raise ConflictError(
                "only members who consented to the purpose when the vote opened may vote on it"
            )
        insert = pg_insert if s.get_bind().dialect.name == "postgresql" else sqlite_insert
        now = datetime.now(UTC)
        s.execute(
            insert(Vote)
            .values(request_id=req.id, member_id=member.id, choice=choice, at=now)
            .on_conflict_do_update(
                index_elements=["request_id", "member_id"], set_={"choice": choice, "at": now}
            )
        )
        audit.record(
            s,
            actor=audit.member_actor(member.pseudonym),
            action="vote.cast",
            subject=req.id,
            payload={"member": member.pseudonym, "choice": choice},
        )


def drop_ballots(session: Session, member_id: int, *, actor: str) -> list[str]:
    """At erasure: delete the member's votes on open requests and drop them from their voters.

    An erased member is no longer a member, so their ballot must not decide a vote still
    under way, nor count them as a voter who stayed away. Closed requests keep theirs:
    the tally was frozen into the request when it closed, and the vote row names only
    the pseudonymous member row. Each request changed gets an audit entry; returns them.
    """
    changed: list[str] = []
    requests = session.scalars(
        select(DataRequest)
        .where(DataRequest.state == "open")
        .order_by(DataRequest.id)
        .with_for_update()  # a close under way counts before or after this, not during
    )
    for req in requests:
        ballots = session.scalars(
            select(Vote).where(Vote.request_id == req.id, Vote.member_id == member_id)
        ).all()
        if not ballots and member_id not in (req.eligible or []):
            continue
        for vote in ballots:
            session.delete(vote)
        req.eligible = [m for m in req.eligible or [] if m != member_id]
        audit.record(
            session,
            actor=actor,
            action="vote.erased",
            subject=req.id,
            payload={"reason": "a member was erased", "ballots_deleted": len(ballots)},
        )
        changed.append(req.id)
    return changed


@dataclass(frozen=True)
class Tally:
    """The result of a vote: counts, weights, turnout, quorum, outcome."""

    eligible: int
    yes: float
    no: float
    abstain: float
    voters: int
    turnout: float
    quorum_met: bool
    passed: bool
    weighted: bool

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return dict(self.__dict__)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Tally:
        """A tally as stored in the request (extra keys are ignored)."""
        return cls(**{k: data[k] for k in cls.__dataclass_fields__})


def _count(session: Session, req: DataRequest) -> Tally:
    """Count the request's votes by its frozen rules (one member one vote, or by quality)."""
    rules = frozen_rules(req)
    votes = list(session.scalars(select(Vote).where(Vote.request_id == req.id)))
    eligible = list(req.eligible)
    weight = (
        member_weights(session, eligible) if rules.weighted_votes else dict.fromkeys(eligible, 1.0)
    )
    sums = dict.fromkeys(CHOICES, 0.0)
    for v in votes:
        sums[v.choice] += weight.get(v.member_id, 0.0)
    turnout = len(votes) / len(eligible) if eligible else 0.0
    quorum = turnout >= rules.quorum and bool(eligible)
    decided = sums["yes"] + sums["no"]
    passed = quorum and decided > 0 and sums["yes"] / decided > rules.majority
    return Tally(
        len(eligible),
        sums["yes"],
        sums["no"],
        sums["abstain"],
        len(votes),
        turnout,
        quorum,
        passed,
        rules.weighted_votes,
    )


def tally(home: Home, request_id: str) -> Tally:
    """Count the votes as the request's frozen rules say."""
    with home.sessions() as s:
        return _count(s, find_request(s, request_id))


def close_request(home: Home, request_id: str, *, early_reason: str | None = None) -> Tally:
    """Close the vote; the request passes or fails by the tally under its frozen rules.

    Before the window ends a vote closes only when every eligible member has voted, or
    with ``early_reason``: a steward's explicit early close, recorded with its reason.
    """
    why = None if early_reason is None else _reason(early_reason, "an early close")
    with home.transaction() as s:
        req = find_request(s, request_id, lock=True)
        _check(req, "close")
        result = _count(s, req)  # in this transaction: no vote slips in after the count
        ends = _utc(req.closes_at) if req.closes_at else None
        early = ends is not None and datetime.now(UTC) < ends and result.voters < result.eligible
        if early and why is None:
            raise ConflictError(
                f"the vote is open until {iso_time(req.closes_at)} and "
                f"{result.eligible - result.voters} of {result.eligible} eligible members "
                "have not voted; to close it now, record why: "
                f"tunetrust request close {req.id[:12]} --early --reason TEXT"
            )
        move(s, req, "close", "passed" if result.passed else "failed")
        req.tally = result.to_dict() | {"early_reason": why if early else None}
        audit.record(
            s,
            actor=audit.actor(home),
            action="request.close",
            subject=req.id,
            payload=result.to_dict() | {"rules": req.rules, "early": early, "reason": why},
        )
    return result


# --- what members and stewards see -----------------------------------------------------


@dataclass(frozen=True)
class RequestView:
    """A request as members may see it: counts and turnout, never who voted how."""

    id: str
    buyer: str | None
    purpose: str
    state: str
    price: int  # minor units of ``currency``
    currency: str
    licence: str
    voting_days: int
    created_at: datetime
    opens_at: datetime | None
    closes_at: datetime | None
    eligible: int
    rules: Rules | None  # frozen at opening; None while a draft
    plan: dict[str, Any]
    tally: Tally | None  # live while open, final once closed
    early_reason: str | None  # why a steward closed the vote early, if so
    release: str | None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: times in ISO 8601 with zone, the price with its minor unit."""
        try:
            minor: int | None = ledger.minor_unit(self.currency)
        except InputError:  # stored by an older version that took any three letters
            minor = None
        return {
            "id": self.id,
            "buyer": self.buyer,
            "purpose": self.purpose,
            "state": self.state,
            "price": {
                "amount": self.price,
                "currency": self.currency,
                "minor_unit": minor,
                "text": ledger.format_amount(self.price, self.currency),
            },
            "licence": self.licence,
            "voting_days": self.voting_days,
            "created_at": iso_time(self.created_at),
            "opens_at": iso_time(self.opens_at),
            "closes_at": iso_time(self.closes_at),
            "eligible": self.eligible,
            "rules": self.rules.to_dict() if self.rules else None,
            "plan": self.plan,
            "tally": self.tally.to_dict() if self.tally else None,
            "early_reason": self.early_reason,
            "release": self.release,
        }


def _view(session: Session, req: DataRequest, buyer: str | None) -> RequestView:
    stored = req.tally or {}
    live = _count(session, req) if req.state == "open" else None
    return RequestView(
        id=req.id,
        buyer=buyer,
        purpose=req.purpose,
        state=req.state,
        price=req.price_cents,
        currency=req.currency,
        licence=req.licence,
        voting_days=req.voting_days,
        created_at=_utc(req.created_at),
        opens_at=_utc(req.opens_at) if req.opens_at else None,
        closes_at=_utc(req.closes_at) if req.closes_at else None,
        eligible=len(req.eligible),
        rules=Rules.from_dict(req.rules) if req.rules else None,
        plan=dict(req.plan),
        tally=live or (Tally.from_dict(stored) if stored else None),
        early_reason=stored.get("early_reason"),
        release=req.release_id,
    )


def list_requests(home: Home) -> list[RequestView]:
    """Every request, newest first."""
    with home.sessions() as s:
        rows = s.execute(
            select(DataRequest, Buyer.name)
            .join(Buyer, Buyer.id == DataRequest.buyer_id)
            .order_by(DataRequest.created_at.desc())
        ).all()
        return [_view(s, req, name) for req, name in rows]


def show_request(home: Home, request_id: str) -> RequestView:
    """A request with its live tally (public to members: counts and turnout, not names)."""
    with home.sessions() as s:
        req = find_request(s, request_id)
        buyer = s.get(Buyer, req.buyer_id)
        return _view(s, req, buyer.name if buyer else None)
