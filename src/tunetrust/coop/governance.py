"""Buyers, data requests, votes and the request lifecycle.

    draft ──open──▶ open ──close──▶ passed ──claim──▶ building ──build──▶ built
                                 └─▶ failed           (back to passed if the build fails)
    built ──deliver──▶ delivered ──pay──▶ paid

Every move is checked against this machine (an illegal move is refused naming the
state), recorded in the audit log, and done in one transaction.
"""

from __future__ import annotations

import hashlib
import secrets
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

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
from tunetrust.releases.build import build_release, plan_release
from tunetrust.releases.spec import parse_spec
from tunetrust.store.home import Home
from tunetrust.store.models import BudgetSpend, Buyer, DataRequest, Member, Vote

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


def add_buyer(home: Home, name: str, contact: str, country: str) -> tuple[Buyer, str]:
    """Register a buyer; returns it with its API token (shown once, stored hashed)."""
    if not (len(country) == 2 and country.isalpha()):
        raise InputError("a buyer's country is a two-letter code")
    token = secrets.token_urlsafe(32)
    buyer = Buyer(
        name=name.strip(),
        contact=contact.strip(),
        country=country.upper(),
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


def create_request(
    home: Home,
    *,
    buyer: str,
    spec_text: str,
    price_cents: int,
    currency: str,
    licence: str,
    voting_days: int = 14,
) -> DataRequest:
    """A buyer's proposal, as a draft. The purpose comes from the spec."""
    spec = parse_spec(spec_text)
    if spec.purpose not in home.settings.purposes:
        raise InputError(f"unknown purpose {spec.purpose!r}")
    if not (isinstance(price_cents, int) and price_cents > 0):
        raise InputError("the price is a whole number of cents above 0")
    if not (len(currency) == 3 and currency.isalpha()):
        raise InputError("the currency is an ISO 4217 code such as EUR")
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
            price_cents=price_cents,
            currency=currency.upper(),
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
                "price_cents": price_cents,
                "currency": req.currency,
            },
        )
    return req


def _request(session: Session, request_id: str, *, lock: bool = False) -> DataRequest:
    query = select(DataRequest).where(DataRequest.id.startswith(request_id))
    rows = list(session.scalars(query.with_for_update() if lock else query))
    if len(request_id) < 6 or len(rows) != 1:
        raise NotFoundError(f"no data request {request_id!r}")
    return rows[0]


def _move(session: Session, req: DataRequest, move: str, to: str | None = None) -> str:
    """Check and perform a state move; an illegal one is refused."""
    source, target = MOVES[move]
    if req.state != source:
        raise ConflictError(
            f"cannot {move} a request that is {req.state} "
            f"(only a {source} request can be moved by {move!r})"
        )
    req.state = to or target or req.state
    return req.state


def open_request(home: Home, request_id: str) -> DataRequest:
    """Open the vote: snapshot who may vote (consent in force now) and what it costs."""
    with home.transaction() as s:
        req = _request(s, request_id, lock=True)
        _move(s, req, "open")
        present = set(s.scalars(select(Member.id).where(Member.erased_at.is_(None))))
        eligible = sorted(consenting(s, req.purpose) & present)
        req.eligible = eligible
        req.opens_at = datetime.now(UTC)
        req.closes_at = req.opens_at + timedelta(days=req.voting_days)
    plan = plan_release(home, parse_spec(req.spec), only=set(eligible))
    with home.transaction() as s:
        req = _request(s, request_id, lock=True)
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
            payload={"eligible": len(eligible), "plan": req.plan},
        )
    return req


def cast_vote(home: Home, member_name: str, request_id: str, choice: str) -> None:
    """Cast or change a vote; one row per member and request, enforced by the database."""
    if choice not in CHOICES:
        raise InputError(f"a vote is one of {', '.join(CHOICES)}")
    member = get_member(home, member_name)
    with home.transaction() as s:
        req = _request(s, request_id)
        if req.state != "open":
            raise ConflictError(f"voting is closed: the request is {req.state}")
        if req.closes_at and datetime.now(UTC) > req.closes_at.replace(tzinfo=UTC):
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
            actor=f"member:{member.pseudonym}",
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


def tally(home: Home, request_id: str) -> Tally:
    """Count the votes as the settings say (one member one vote, or by quality)."""
    with home.sessions() as s:
        req = _request(s, request_id)
        votes = list(s.scalars(select(Vote).where(Vote.request_id == req.id)))
        eligible = list(req.eligible)
        weight = (
            member_weights(s, eligible)
            if home.settings.weighted_votes
            else dict.fromkeys(eligible, 1.0)
        )
    sums = dict.fromkeys(CHOICES, 0.0)
    for v in votes:
        sums[v.choice] += weight.get(v.member_id, 0.0)
    turnout = len(votes) / len(eligible) if eligible else 0.0
    quorum = turnout >= home.settings.quorum and bool(eligible)
    decided = sums["yes"] + sums["no"]
    passed = quorum and decided > 0 and sums["yes"] / decided > home.settings.majority
    return Tally(
        len(eligible),
        sums["yes"],
        sums["no"],
        sums["abstain"],
        len(votes),
        turnout,
        quorum,
        passed,
        home.settings.weighted_votes,
    )


def close_request(home: Home, request_id: str) -> Tally:
    """Close the vote; the request passes or fails by the tally."""
    result = tally(home, request_id)
    with home.transaction() as s:
        req = _request(s, request_id, lock=True)
        _move(s, req, "close", "passed" if result.passed else "failed")
        req.tally = result.to_dict()
        audit.record(
            s,
            actor=home.settings.actor,
            action="request.close",
            subject=req.id,
            payload=result.to_dict(),
        )
    return result


def deliver(home: Home, request_id: str) -> dict[str, Any]:
    """Build the release, deliver it, record the payment and split the proceeds."""
    with home.transaction() as s:
        req = _request(s, request_id, lock=True)
        if req.state != "passed":
            raise ConflictError(
                f"cannot deliver a request that is {req.state} "
                "(only a passed request can be built and delivered)"
            )
        _move(s, req, "claim")  # one deliverer at a time: a second one is refused here
    with home.sessions() as s:
        req = _request(s, request_id)
        no_voters = set(
            s.scalars(select(Vote.member_id).where(Vote.request_id == req.id, Vote.choice == "no"))
        )
        consenting_now = set(req.eligible) & consenting(s, req.purpose)
    included = consenting_now - (no_voters if home.settings.no_votes_opt_out else set())
    try:
        built = build_release(home, parse_spec(req.spec), only=included)
    except BaseException:
        with home.transaction() as s:
            _request(s, request_id, lock=True).state = "passed"  # the claim is released
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


def pay(home: Home, request_id: str) -> dict[str, Any]:
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
        fee = req.price_cents * home.settings.fee_basis_points // 10_000
        weights = {f"member:{members[m]}": w for m, w in member_weights(s, list(members)).items()}
        shares = ledger.split_cents(req.price_cents - fee, weights)
        ledger.post(
            s,
            memo=f"sale of request {req.id[:12]}",
            currency=req.currency,
            request_id=req.id,
            entries={f"buyer:{req.buyer_id}": -req.price_cents, ledger.TREASURY: fee, **shares},
        )
        audit.record(
            s,
            actor=home.settings.actor,
            action="request.pay",
            subject=req.id,
            payload={
                "price_cents": req.price_cents,
                "fee_cents": fee,
                "members_paid": len(shares),
                "currency": req.currency,
            },
        )
    return {
        "release": req.release_id,
        "price_cents": req.price_cents,
        "fee_cents": fee,
        "members_paid": len(shares),
        "payouts_cents": sum(shares.values()),
    }


def list_requests(home: Home) -> list[DataRequest]:
    """Every request, newest first."""
    with home.sessions() as s:
        return list(s.scalars(select(DataRequest).order_by(DataRequest.created_at.desc())))


def show_request(home: Home, request_id: str) -> dict[str, Any]:
    """A request with its live tally (public to members: counts and turnout, not names)."""
    with home.sessions() as s:
        req = _request(s, request_id)
        buyer = s.get(Buyer, req.buyer_id)
    out = {
        "id": req.id,
        "buyer": buyer.name if buyer else None,
        "purpose": req.purpose,
        "state": req.state,
        "price_cents": req.price_cents,
        "currency": req.currency,
        "licence": req.licence,
        "opens_at": str(req.opens_at) if req.opens_at else None,
        "closes_at": str(req.closes_at) if req.closes_at else None,
        "plan": req.plan,
        "release": req.release_id,
    }
    out["tally"] = req.tally or (tally(home, req.id).to_dict() if req.state == "open" else {})
    return out
