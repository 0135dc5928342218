"""Governance use cases: buyers, the cooperative's rules, data requests, votes, the ledger."""

from __future__ import annotations

from tunetrust.coop import governance, ledger
from tunetrust.coop.governance import RequestView
from tunetrust.errors import ForbiddenError
from tunetrust.services import sale
from tunetrust.services._access import acting, for_member, reader, steward_only
from tunetrust.services.models import (
    Actor,
    BuyerCreated,
    LedgerBalanceInfo,
    LedgerCheckInfo,
    PaymentInfo,
    RequestInfo,
    RulesChangeInfo,
    RulesInForce,
    RulesReport,
    TallyInfo,
    VoteCast,
)
from tunetrust.store.home import Home


def _info(view: RequestView, payment: sale.Payment | None = None) -> RequestInfo:
    paid = PaymentInfo.model_validate(payment.to_dict()) if payment else None
    return RequestInfo.model_validate(view.to_dict() | {"payment": paid})


def add_buyer(home: Home, actor: Actor, name: str, contact: str, country: str) -> BuyerCreated:
    """Register a buyer; its API token is in the result once (only a hash is kept)."""
    steward_only(actor, "register buyers")
    with acting(home, actor):
        buyer, token = governance.add_buyer(home, name, contact, country)
    return BuyerCreated(name=buyer.name, country=buyer.country, token=token)


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
    """The live count of an open request (counts and turnout, never who voted how)."""
    return TallyInfo.model_validate(governance.tally(home, request_id).to_dict())


def deliver(home: Home, actor: Actor, request_id: str) -> RequestInfo:
    """Build the release of a passed request, deliver it, record payment and payouts."""
    steward_only(actor, "deliver a request")
    with acting(home, actor):
        payment = sale.deliver(home, request_id)
    return _info(governance.show_request(home, request_id), payment)


def show_request(home: Home, actor: Actor, request_id: str) -> RequestInfo:
    """A request with its live tally."""
    return _info(governance.show_request(home, request_id))


def list_requests(home: Home, actor: Actor) -> list[RequestInfo]:
    """Every request, newest first."""
    return [_info(v) for v in governance.list_requests(home)]


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
