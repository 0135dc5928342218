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

import hashlib
import secrets
import unicodedata
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import iso3166
from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from tunetrust.coop import audit, ledger
from tunetrust.coop.consent import consenting
from tunetrust.coop.contributions import member_weights
from tunetrust.coop.members import get_member
from tunetrust.errors import ConflictError, InputError, NotFoundError
from tunetrust.releases.build import build_release, plan_release, public_keys
from tunetrust.releases.noise import plan_noise
from tunetrust.releases.spec import parse_spec
from tunetrust.settings import Rules
from tunetrust.store.home import Home
from tunetrust.store.models import BudgetSpend, Buyer, CoopRules, DataRequest, Member, Vote

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


def add_buyer(home: Home, name: str, contact: str, country: str) -> tuple[Buyer, str]:
    """Register a buyer; returns it with its API token (shown once, stored hashed)."""
    token = secrets.token_urlsafe(32)
    buyer = Buyer(
        name=name.strip(),
        contact=contact.strip(),
        country=country_code(country),
        token_sha256=hashlib.sha256(token.encode()).hexdigest(),
        created_at=datetime.now(UTC),
    )
    try:
        with home.transaction() as s:
            s.add(buyer)
            s.flush()
            audit.record(
                s,
                actor=home.settings.actor,
                action="buyer.add",
                subject=f"buyer:{buyer.id}",
                payload={"name": buyer.name},
            )
    except IntegrityError:
        raise ConflictError(f"a buyer named {name!r} exists already") from None
    return buyer, token


def _buyer(session: Session, name: str) -> Buyer:
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


def _rules_of(row: CoopRules) -> Rules:
    return Rules(
        quorum=row.quorum,
        majority=row.majority,
        weighted_votes=row.weighted_votes,
        fee_basis_points=row.fee_basis_points,
        no_votes_opt_out=row.no_votes_opt_out,
    )


def _newest_rules(session: Session, *, lock: bool = False) -> CoopRules:
    query = select(CoopRules).order_by(CoopRules.id.desc()).limit(1)
    row = session.scalar(query.with_for_update() if lock else query)
    if row is None:  # pragma: no cover - the first row is written by migration 0007
        raise RuntimeError("the cooperative's rules are missing")
    return row


def rules_in_force(home: Home) -> Rules:
    """The cooperative's rules now (the newest decision)."""
    with home.sessions() as s:
        return _rules_of(_newest_rules(s))


def rules_history(home: Home) -> list[RulesChange]:
    """Every decision on the rules, oldest first; the last one is in force."""
    with home.sessions() as s:
        rows = list(s.scalars(select(CoopRules).order_by(CoopRules.id)))
    history: list[RulesChange] = []
    for r in rows:
        before = history[-1].rules if history else None
        rules = _rules_of(r)
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
    }
    with home.transaction() as s:
        newest = _newest_rules(s, lock=True)
        if _newest_rules(s).id != newest.id:  # PostgreSQL: another change got in meanwhile
            raise ConflictError("the rules were changed meanwhile; look at them and try again")
        before = _rules_of(newest)
        after = Rules.from_dict(
            before.to_dict() | {k: v for k, v in given.items() if v is not None}
        )
        changed = _changes(before, after)
        if not changed:
            raise InputError("rules set: nothing to change (give a rule with a new value)")
        change = RulesChange(datetime.now(UTC), home.settings.actor, why, after, changed)
        s.add(CoopRules(at=change.at, actor=change.actor, reason=why, **after.to_dict()))
        audit.record(
            s,
            actor=home.settings.actor,
            action="rules.set",
            subject="rules",
            payload={"rules": after.to_dict(), "changed": changed, "reason": why},
        )
    return change


# --- data requests ---------------------------------------------------------------------


def create_request(
    home: Home,
    *,
    buyer: str,
    spec_text: str,
    price: int,
    currency: str,
    licence: str,
    voting_days: int = 14,
) -> DataRequest:
    """A buyer's proposal, as a draft. The purpose comes from the spec.

    ``price`` is a whole number of the currency's minor unit (ISO 4217): 250000 is
    2,500.00 EUR or 250,000 JPY. The spec is checked as fully as it can be without the
    members: what only the members decide (who is included, whether the release is
    expected to be empty) is checked when the vote opens.
    """
    spec = parse_spec(spec_text)
    if spec.purpose not in home.settings.purposes:  # the buyer's text is not repeated
        allowed = ", ".join(home.settings.purposes)
        raise InputError(f"release spec, purpose: unknown purpose; choose from {allowed}")
    # what open's plan_release would refuse on the spec alone, by the same checks: a
    # calendar without a period, a budget no noise can be calibrated to
    if spec.keys == "public":
        public_keys(spec)
    plan_noise(spec)
    code = ledger.currency_code(currency)
    ledger.check_amount(price, code)
    if not 1 <= voting_days <= 90:
        raise InputError("the voting window is 1 to 90 days")
    text = LICENCES.get(licence, licence).strip()
    if not text:
        raise InputError(f"licence: give text or one of {', '.join(LICENCES)}")
    with home.transaction() as s:
        req = DataRequest(
            id=uuid.uuid4().hex,
            buyer_id=_buyer(s, buyer).id,
            purpose=spec.purpose,
            spec=spec_text,
            price_cents=price,  # the column's old name: minor units of ``currency``
            currency=code,
            licence=text,
            state="draft",
            voting_days=voting_days,
            created_at=datetime.now(UTC),
            eligible=[],
            plan={},
            tally={},
        )
        s.add(req)
        audit.record(
            s,
            actor=home.settings.actor,
            action="request.create",
            subject=req.id,
            payload={
                "buyer": buyer,
                "purpose": spec.purpose,
                "spec": spec_text,
                "price": price,
                "currency": code,
            },
        )
    return req


def _request(
    session: Session, request_id: str, *, lock: bool = False, share: bool = False
) -> DataRequest:
    """The request with this id or unique prefix; ``lock``/``share``: its row locked."""
    query = select(DataRequest).where(DataRequest.id.startswith(request_id))
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


def _move(session: Session, req: DataRequest, move: str, to: str | None = None) -> str:
    """Check and perform a state move; an illegal one is refused."""
    _check(req, move)
    req.state = to or MOVES[move][1] or req.state
    return req.state


def _frozen_rules(req: DataRequest) -> Rules:
    """The rules the request's vote was opened under: the only ones that decide it."""
    if req.rules is None:
        raise ConflictError(f"request {req.id[:12]} has no rules frozen at its opening")
    return Rules.from_dict(req.rules)


def open_request(home: Home, request_id: str) -> DataRequest:
    """Open the vote: snapshot who may vote (consent in force now), the cost, the rules."""
    with home.transaction() as s:
        req = _request(s, request_id, lock=True)
        _move(s, req, "open")
        present = set(s.scalars(select(Member.id).where(Member.erased_at.is_(None))))
        eligible = sorted(consenting(s, req.purpose) & present)
        # inside the transaction: a plan that fails leaves the request a draft
        plan = plan_release(home, parse_spec(req.spec), only=set(eligible))
        req.eligible = eligible
        req.rules = _rules_of(_newest_rules(s)).to_dict()
        req.opens_at = datetime.now(UTC)
        req.closes_at = req.opens_at + timedelta(days=req.voting_days)
        req.plan = {
            "members_eligible": len(eligible),
            "members_included_if_passed": len(plan.included),
            "epsilon_per_member": str(plan.cost),
            "left_out": plan.left_out,
        }
        audit.record(
            s,
            actor=home.settings.actor,
            action="request.open",
            subject=req.id,
            payload={
                "eligible": len(eligible),
                "plan": req.plan,
                "rules": req.rules,
                "closes_at": iso_time(req.closes_at),
            },
        )
    return req


def cast_vote(home: Home, member_name: str, request_id: str, choice: str) -> None:
    """Cast or change a vote; one row per member and request, enforced by the database."""
    if choice not in CHOICES:
        raise InputError(f"a vote is one of {', '.join(CHOICES)}")
    member = get_member(home, member_name)
    with home.transaction() as s:
        # a shared lock: a close under way (which holds the row) is waited for, then seen
        req = _request(s, request_id, share=True)
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
    rules = _frozen_rules(req)
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
        return _count(s, _request(s, request_id))


def close_request(home: Home, request_id: str, *, early_reason: str | None = None) -> Tally:
    """Close the vote; the request passes or fails by the tally under its frozen rules.

    Before the window ends a vote closes only when every eligible member has voted, or
    with ``early_reason``: a steward's explicit early close, recorded with its reason.
    """
    why = None if early_reason is None else _reason(early_reason, "an early close")
    with home.transaction() as s:
        req = _request(s, request_id, lock=True)
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
        _move(s, req, "close", "passed" if result.passed else "failed")
        req.tally = result.to_dict() | {"early_reason": why if early else None}
        audit.record(
            s,
            actor=home.settings.actor,
            action="request.close",
            subject=req.id,
            payload=result.to_dict() | {"rules": req.rules, "early": early, "reason": why},
        )
    return result


@dataclass(frozen=True)
class Payment:
    """A sale as the ledger recorded it, in minor units of ``currency``."""

    release: str
    currency: str
    price: int
    fee: int
    payouts: int
    members_paid: int

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return dict(self.__dict__)


def deliver(home: Home, request_id: str) -> Payment:
    """Build the release, deliver it, record the payment and split the proceeds."""
    with home.transaction() as s:
        req = _request(s, request_id, lock=True)
        if req.state != "passed":
            raise ConflictError(
                f"cannot deliver a request that is {req.state} "
                "(only a passed request can be built and delivered)"
            )
        ledger.minor_unit(req.currency)  # an older version took any three letters: not payable
        _move(s, req, "claim")  # one deliverer at a time: a second one is refused here
        audit.record(
            s, actor=home.settings.actor, action="request.claim", subject=req.id, payload={}
        )
    with home.sessions() as s:
        req = _request(s, request_id)
        no_voters = set(
            s.scalars(select(Vote.member_id).where(Vote.request_id == req.id, Vote.choice == "no"))
        )
        consenting_now = set(req.eligible) & consenting(s, req.purpose)
    included = consenting_now - (no_voters if _frozen_rules(req).no_votes_opt_out else set())
    try:
        built = build_release(home, parse_spec(req.spec), only=included)
    except BaseException as exc:
        with home.transaction() as s:
            _request(s, request_id, lock=True).state = "passed"  # the claim is released
            audit.record(
                s,
                actor=home.settings.actor,
                action="request.unclaim",
                subject=req.id,
                payload={"build_failed": type(exc).__name__},
            )
        raise
    with home.transaction() as s:
        req = _request(s, request_id, lock=True)
        _move(s, req, "build")
        req.release_id = built.id
        audit.record(
            s,
            actor=home.settings.actor,
            action="request.build",
            subject=req.id,
            payload={"release": built.id},
        )
        _move(s, req, "deliver")
        audit.record(
            s,
            actor=home.settings.actor,
            action="request.deliver",
            subject=req.id,
            payload={"release": built.id, "manifest_root": built.manifest["merkle_root"]},
        )
    return pay(home, request_id)


def pay(home: Home, request_id: str) -> Payment:
    """Record the buyer's payment: fee to the treasury, the rest split by quality score."""
    with home.transaction() as s:
        req = _request(s, request_id, lock=True)
        _move(s, req, "pay")
        paid_ids = list(
            s.scalars(
                select(func.distinct(BudgetSpend.member_id)).where(
                    BudgetSpend.release_id == req.release_id
                )
            )
        )
        members = {
            m.id: m.pseudonym for m in s.scalars(select(Member).where(Member.id.in_(paid_ids)))
        }
        fee = req.price_cents * _frozen_rules(req).fee_basis_points // 10_000
        weights = {f"member:{members[m]}": w for m, w in member_weights(s, list(members)).items()}
        shares = ledger.split_cents(req.price_cents - fee, weights)
        ledger.post(
            s,
            memo=f"sale of request {req.id[:12]}",
            currency=req.currency,
            request_id=req.id,
            entries={f"buyer:{req.buyer_id}": -req.price_cents, ledger.TREASURY: fee, **shares},
        )
        payment = Payment(
            str(req.release_id),
            req.currency,
            req.price_cents,
            fee,
            sum(shares.values()),
            len(shares),
        )
        audit.record(
            s,
            actor=home.settings.actor,
            action="request.pay",
            subject=req.id,
            payload=payment.to_dict(),
        )
    return payment


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
        req = _request(s, request_id)
        buyer = s.get(Buyer, req.buyer_id)
        return _view(s, req, buyer.name if buyer else None)
