"""Governance use cases: buyers, the cooperative's rules, data requests, votes, the ledger,
and what one member sees of them: requests weighed for them, their ballot and receipts."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from tunetrust.coop import audit, budget, governance, ledger, tokens
from tunetrust.coop.consent import consenting
from tunetrust.coop.contributions import member_weights
from tunetrust.coop.governance import RequestView
from tunetrust.coop.members import get_member
from tunetrust.errors import ForbiddenError, NotFoundError
from tunetrust.releases.build import plan_release
from tunetrust.releases.spec import ReleaseSpec, parse_spec
from tunetrust.services import sale
from tunetrust.services._access import acting, for_member, reader, steward_only
from tunetrust.services.members import amount
from tunetrust.services.models import (
    Actor,
    BallotInfo,
    BuyerCreated,
    ConsentReceipt,
    LedgerBalanceInfo,
    LedgerCheckInfo,
    MemberRequest,
    PaymentInfo,
    ReleasePlanInfo,
    RequestInfo,
    RulesChangeInfo,
    RulesInForce,
    RulesReport,
    TallyInfo,
    VoteCast,
)
from tunetrust.store.home import Home
from tunetrust.store.models import AuditPayload, Buyer, DataRequest, Member, Vote


def _info(view: RequestView, payment: sale.Payment | None = None) -> RequestInfo:
    paid = PaymentInfo.model_validate(payment.to_dict()) if payment else None
    return RequestInfo.model_validate(view.to_dict() | {"payment": paid})


def add_buyer(home: Home, actor: Actor, name: str, contact: str, country: str) -> BuyerCreated:
    """Register a buyer; its API token is in the result once (only a hash is kept)."""
    steward_only(actor, "register buyers")
    with acting(home, actor):
        buyer, secret = governance.add_buyer(home, name, contact, country)
    with home.sessions() as s:
        token = tokens.authenticate(s, secret)
    assert token is not None  # made just now
    return BuyerCreated(
        name=buyer.name,
        country=buyer.country,
        token=secret,
        token_id=token.id,
        expires=governance.iso_time(token.expires_at) or "",
    )


def rules(home: Home, actor: Actor) -> RulesReport:
    """The rules in force and every decision that set them (public to members)."""
    history = [RulesChangeInfo.model_validate(c.to_dict()) for c in governance.rules_history(home)]
    return RulesReport(rules=history[-1].rules, history=history)


def set_rules(
    home: Home,
    actor: Actor,
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
) -> RulesChangeInfo:
    """Change the rules with a reason (audited); requests already open keep theirs."""
    steward_only(actor, "change the cooperative's rules")
    with acting(home, actor):
        change = governance.set_rules(
            home,
            reason=reason,
            quorum=quorum,
            majority=majority,
            weighted_votes=weighted_votes,
            fee_basis_points=fee_basis_points,
            no_votes_opt_out=no_votes_opt_out,
            epsilon_cap=epsilon_cap,
            delta_cap=delta_cap,
            min_members=min_members,
        )
    return RulesChangeInfo.model_validate(change.to_dict())


def create_request(
    home: Home,
    actor: Actor,
    *,
    buyer: str,
    spec_text: str,
    price: int,
    currency: str,
    licence: str,
    voting_days: int = 14,
) -> RequestInfo:
    """A buyer's proposal, as a draft (a buyer proposes in their own name only)."""
    if actor.kind == "buyer" and actor.name != buyer:
        raise ForbiddenError("a buyer can propose requests in their own name only")
    if actor.kind not in ("buyer", "steward"):
        raise ForbiddenError("only a buyer or a steward can propose a data request")
    with acting(home, actor):
        req = sale.create_request(
            home,
            buyer=buyer,
            spec_text=spec_text,
            price=price,
            currency=currency,
            licence=licence,
            voting_days=voting_days,
        )
    return _info(governance.show_request(home, req.id))


def open_request(home: Home, actor: Actor, request_id: str) -> RequestInfo:
    """Open the vote: eligible members, the budget cost and the rules, frozen now."""
    steward_only(actor, "open a vote")
    with acting(home, actor):
        req = sale.open_request(home, request_id)
    return _info(governance.show_request(home, req.id))


def vote(home: Home, actor: Actor, member: str, request_id: str, choice: str) -> VoteCast:
    """Cast or change a member's vote (recorded as the member's own act)."""
    for_member(actor, member, "vote for a member")
    governance.cast_vote(home, member, request_id, choice)
    return VoteCast(
        request=governance.show_request(home, request_id).id, member=member, choice=choice
    )


def close_request(
    home: Home, actor: Actor, request_id: str, *, early_reason: str | None = None
) -> RequestInfo:
    """Close the vote; the request passes or fails by its frozen rules."""
    steward_only(actor, "close a vote")
    with acting(home, actor):
        governance.close_request(home, request_id, early_reason=early_reason)
    return _info(governance.show_request(home, request_id))


def tally(home: Home, actor: Actor, request_id: str) -> TallyInfo:
    """The live count of an open request (counts and turnout, never who voted how); a
    member sees the count of any request put to a vote."""
    if actor.kind == "member":
        request_for_member(home, actor, actor.name, request_id)  # a draft: not found
    else:
        _may_see(home, actor, request_id)
    return TallyInfo.model_validate(governance.tally(home, request_id).to_dict())


def deliver(home: Home, actor: Actor, request_id: str) -> RequestInfo:
    """Build the release of a passed request, deliver it, record payment and payouts."""
    steward_only(actor, "deliver a request")
    with acting(home, actor):
        payment = sale.deliver(home, request_id)
    return _info(governance.show_request(home, request_id), payment)


def _buyer_of(home: Home, request_id: str) -> str | None:
    with home.sessions() as s:
        req = governance.find_request(s, request_id)
        buyer = s.get(Buyer, req.buyer_id)
        return buyer.name if buyer else None


def _may_see(home: Home, actor: Actor, request_id: str) -> None:
    """Stewards and auditors see every request, a buyer their own; members see requests
    weighed for them (``request_for_member``). Another buyer's request is not found."""
    if actor.kind in ("steward", "auditor"):
        return
    if actor.kind == "buyer":
        if _buyer_of(home, request_id) != actor.name:
            raise NotFoundError(f"no data request {request_id!r}")  # as for one that never was
        return
    raise ForbiddenError("members see requests as they weigh them: request_for_member")


def show_request(home: Home, actor: Actor, request_id: str) -> RequestInfo:
    """A request with its live tally (a buyer: their own only)."""
    _may_see(home, actor, request_id)
    return _info(governance.show_request(home, request_id))


def list_requests(home: Home, actor: Actor) -> list[RequestInfo]:
    """Every request, newest first (a buyer: their own)."""
    if actor.kind not in ("steward", "auditor", "buyer"):
        raise ForbiddenError("members see requests as they weigh them: requests_for_member")
    views = governance.list_requests(home)
    if actor.kind == "buyer":
        views = [v for v in views if v.buyer == actor.name]
    return [_info(v) for v in views]


def request_plan(home: Home, actor: Actor, request_id: str) -> ReleasePlanInfo:
    """What a request's release would be if it were built now: the members it would
    include (a count), their ε cost, the expected accuracy of each metric and how many
    keys are expected to pass the release threshold. Before the vote it is worked out
    over the members consenting now; once open, over the members eligible to vote."""
    _may_see(home, actor, request_id)
    with home.sessions() as s:
        req = governance.find_request(s, request_id)
        spec = parse_spec(req.spec)
        if req.state == "draft":
            present = set(s.scalars(select(Member.id).where(Member.erased_at.is_(None))))
            only = consenting(s, req.purpose) & present
        else:
            only = set(req.eligible or [])
    planned = plan_release(home, spec, only=only, allow_empty=True)
    return ReleasePlanInfo.model_validate(planned.to_dict())


def balances(home: Home, actor: Actor) -> list[LedgerBalanceInfo]:
    """Every account's balance (accounts are named by pseudonym, never by name)."""
    reader(actor, "read the ledger")
    return [
        LedgerBalanceInfo(
            account=b.account,
            currency=b.currency,
            amount=b.cents,
            text=ledger.format_amount(b.cents, b.currency),
        )
        for b in ledger.balances(home)
    ]


def verify_ledger(home: Home, actor: Actor) -> LedgerCheckInfo:
    """Every transaction balances and balances equal their entries."""
    reader(actor, "verify the ledger")
    check = ledger.verify(home)
    return LedgerCheckInfo(ok=check.ok, transactions=check.transactions, problems=check.problems)


def rules_in_force(home: Home, actor: Actor) -> RulesInForce:
    """The rules in force now."""
    return RulesInForce.model_validate(governance.rules_in_force(home).to_dict())


# --- what one member sees: requests weighed for them, their ballot, their receipts ------

_KEYS = {
    "country": "country",
    "year": "year",
    "quarter": "quarter",
    "month": "month",
    "week": "week",
    "weekday": "day of the week",
    "hour": "hour of the day",
    "platform": "kind of device",
    "artist": "artist",
    "track": "track",
    "album": "album",
    "show": "podcast show",
}
_METRICS = {
    "plays": "how many plays",
    "listeners": "how many members listened",
    "minutes": "minutes played",
    "skip_share": "the share of plays skipped",
}


def _described(spec: ReleaseSpec) -> list[str]:
    """What a release of ``spec`` hands the buyer, in sentences a member can weigh."""
    keys = " and ".join(_KEYS[k] for k in spec.group_by)
    metrics = ", ".join(_METRICS[m] for m in spec.metrics)
    said = [
        f"A table with one row per {keys}: {metrics}. Every number has random noise "
        "added, so no single member's listening can be told from it.",
        f"Only {', '.join(spec.kinds)} plays of at least {spec.min_seconds} seconds count"
        + (
            f", from {spec.period_from or 'the start'} to {spec.period_to or 'today'}"
            if spec.period_from or spec.period_to
            else ""
        )
        + (f", in {', '.join(spec.countries)}" if spec.countries else "")
        + ".",
        f"Each member counts in at most {spec.bounds.max_partitions} rows, with at most "
        f"{spec.bounds.max_plays_per_partition} plays in each.",
    ]
    if spec.keys == "private":
        said.append(
            f"A row is released only if at least {spec.pre_threshold} members listened to it."
        )
    said.append("No names, pseudonyms or single plays leave the cooperative.")
    return said


def _aware(at: datetime | None) -> datetime | None:
    """SQLite hands back naive UTC times."""
    return at.replace(tzinfo=UTC) if at is not None and at.tzinfo is None else at


def _member_view(session: Session, home: Home, member: Member, req: DataRequest) -> MemberRequest:
    buyer = session.get(Buyer, req.buyer_id)
    view = _info(governance.show_request(home, req.id))
    spec = parse_spec(req.spec)
    eligible = member.id in (req.eligible or [])
    opens, closes = _aware(req.opens_at), _aware(req.closes_at)
    why_not = None
    if not eligible:
        opened = f" ({opens:%Y-%m-%d})" if opens else ""
        joined = _aware(member.created_at)
        if opens is not None and joined is not None and joined > opens:
            why_not = f"you joined after this vote opened{opened}"
        else:
            why_not = (
                f"you had not consented to {req.purpose} when this vote opened{opened}; "
                "only members who had may vote on it"
            )
    open_now = req.state == "open" and (closes is None or datetime.now(UTC) < closes)
    default, _ = budget.cooperative_caps(session)
    left = budget.remaining(session, member.id, req.purpose, datetime.now(UTC).year, default)
    share = None
    if eligible and req.state in ("open", "passed") and req.rules:
        # as pay() splits: by quality weight, evenly if every weight is 0
        weights = member_weights(session, list(req.eligible))
        fee = req.price_cents * governance.frozen_rules(req).fee_basis_points // 10_000
        split = ledger.split_cents(req.price_cents - fee, {str(m): w for m, w in weights.items()})
        share = amount(split.get(str(member.id), 0), req.currency)
    cost = req.plan.get("epsilon_per_member") if req.plan else None
    return MemberRequest(
        request=view,
        buyer_country=buyer.country if buyer else None,
        group_by=list(spec.group_by),
        metrics=list(spec.metrics),
        described=_described(spec),
        eligible=eligible,
        why_not=why_not,
        can_vote=eligible and open_now,
        epsilon_cost=str(cost) if cost is not None else None,
        epsilon_left=str(left),
        estimated_share=share,
        ballot=_ballot(session, member, req),
    )


def requests_for_member(home: Home, actor: Actor, member: str) -> list[MemberRequest]:
    """Every request put to a vote, newest first, weighed for ``member`` (drafts are not
    shown: nothing is asked of members yet)."""
    for_member(actor, member, "see the requests as a member weighs them")
    me = get_member(home, member)
    with home.sessions() as s:
        rows = s.scalars(
            select(DataRequest)
            .where(DataRequest.state != "draft")
            .order_by(DataRequest.created_at.desc())
        ).all()
        return [_member_view(s, home, me, req) for req in rows]


def request_for_member(home: Home, actor: Actor, member: str, request_id: str) -> MemberRequest:
    """One request put to a vote, weighed for ``member``; a draft is not found."""
    for_member(actor, member, "see a request as a member weighs it")
    me = get_member(home, member)
    with home.sessions() as s:
        req = governance.find_request(s, request_id)
        if req.state == "draft":
            raise NotFoundError(f"no data request {request_id!r}")
        return _member_view(s, home, me, req)


def _ballot(session: Session, member: Member, req: DataRequest) -> BallotInfo | None:
    vote = session.scalar(
        select(Vote).where(Vote.request_id == req.id, Vote.member_id == member.id)
    )
    if vote is None:
        return None
    mine = audit.member_actor(member.pseudonym)
    cast = [
        e
        for e in audit.entries(session, subject=req.id)
        if e.action == "vote.cast" and e.actor == mine
    ]
    if not cast:  # pragma: no cover - every vote is cast with its audit entry
        return None
    return BallotInfo(
        request=req.id,
        choice=vote.choice,
        at=governance.iso_time(vote.at) or "",
        receipt=cast[-1].entry_hash,
        seq=cast[-1].seq,
    )


def my_ballot(home: Home, actor: Actor, member: str, request_id: str) -> BallotInfo | None:
    """A member's own ballot on a request and the receipt (the audit entry's hash) that
    recorded it; None if they have not voted. Nobody else's ballot is ever shown."""
    for_member(actor, member, "see a member's ballot")
    me = get_member(home, member)
    with home.sessions() as s:
        return _ballot(s, me, governance.find_request(s, request_id))


def consent_receipts(home: Home, actor: Actor, member: str) -> list[ConsentReceipt]:
    """The audit entries that recorded a member's consent decisions, oldest first."""
    for_member(actor, member, "see a member's consent receipts")
    pseudonym = get_member(home, member).pseudonym
    with home.sessions() as s:
        found = []
        for e in audit.entries(s, subject=pseudonym):
            if e.action not in ("consent.grant", "consent.withdraw"):
                continue
            payload = s.get(AuditPayload, e.seq)
            purpose = payload.payload.get("purpose") if payload is not None else None
            found.append(
                ConsentReceipt(
                    seq=e.seq,
                    at=e.at,
                    actor=e.actor,
                    purpose=purpose,
                    granted=e.action == "consent.grant",
                    entry_hash=e.entry_hash,
                    prev_hash=e.prev_hash,
                    payload_digest=e.payload_digest,
                )
            )
    return found


def consent_receipt(home: Home, actor: Actor, member: str, seq: int) -> ConsentReceipt:
    """One consent receipt of the member's own; any other entry is not found."""
    for receipt in consent_receipts(home, actor, member):
        if receipt.seq == seq:
            return receipt
    raise NotFoundError(f"no consent receipt {seq} of yours")
