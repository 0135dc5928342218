"""The sale of a data product, end to end: propose, open with a plan, deliver, pay.

It sits above both the cooperative (requests, votes, the ledger) and the release engine
(plans and builds), so that neither imports the other: ``coop/governance.py`` keeps the
request's state machine and the vote, ``releases/`` computes, and this module moves a
request through both.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, select

from tunetrust.coop import audit, governance, ledger
from tunetrust.coop.consent import consenting
from tunetrust.coop.contributions import member_weights
from tunetrust.errors import ConflictError, InputError
from tunetrust.releases.build import build_release, plan_release, public_keys
from tunetrust.releases.noise import plan_noise
from tunetrust.releases.spec import parse_spec
from tunetrust.store.home import Home
from tunetrust.store.models import BudgetSpend, DataRequest, Member, Vote


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
    text = governance.LICENCES.get(licence, licence).strip()
    if not text:
        raise InputError(f"licence: give text or one of {', '.join(governance.LICENCES)}")
    with home.transaction() as s:
        req = DataRequest(
            id=uuid.uuid4().hex,
            buyer_id=governance.find_buyer(s, buyer).id,
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
            actor=audit.actor(home),
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


def open_request(home: Home, request_id: str) -> DataRequest:
    """Open the vote: snapshot who may vote (consent in force now), the cost, the rules."""
    with home.transaction() as s:
        req = governance.find_request(s, request_id, lock=True)
        governance.move(s, req, "open")
        present = set(s.scalars(select(Member.id).where(Member.erased_at.is_(None))))
        eligible = sorted(consenting(s, req.purpose) & present)
        # inside the transaction: a plan that fails leaves the request a draft
        plan = plan_release(home, parse_spec(req.spec), only=set(eligible))
        req.eligible = eligible
        req.rules = governance.rules_of(governance.newest_rules(s)).to_dict()
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
            actor=audit.actor(home),
            action="request.open",
            subject=req.id,
            payload={
                "eligible": len(eligible),
                "plan": req.plan,
                "rules": req.rules,
                "closes_at": governance.iso_time(req.closes_at),
            },
        )
    return req


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
        req = governance.find_request(s, request_id, lock=True)
        if req.state != "passed":
            raise ConflictError(
                f"cannot deliver a request that is {req.state} "
                "(only a passed request can be built and delivered)"
            )
        ledger.minor_unit(req.currency)  # an older version took any three letters: not payable
        governance.move(s, req, "claim")  # one deliverer at a time: a second one is refused here
        audit.record(s, actor=audit.actor(home), action="request.claim", subject=req.id, payload={})
    with home.sessions() as s:
        req = governance.find_request(s, request_id)
        no_voters = set(
            s.scalars(select(Vote.member_id).where(Vote.request_id == req.id, Vote.choice == "no"))
        )
        consenting_now = set(req.eligible) & consenting(s, req.purpose)
    opt_out = governance.frozen_rules(req).no_votes_opt_out
    included = consenting_now - (no_voters if opt_out else set())
    try:
        built = build_release(home, parse_spec(req.spec), only=included)
    except BaseException as exc:
        with home.transaction() as s:
            # the claim is released
            governance.find_request(s, request_id, lock=True).state = "passed"
            audit.record(
                s,
                actor=audit.actor(home),
                action="request.unclaim",
                subject=req.id,
                payload={"build_failed": type(exc).__name__},
            )
        raise
    with home.transaction() as s:
        req = governance.find_request(s, request_id, lock=True)
        governance.move(s, req, "build")
        req.release_id = built.id
        audit.record(
            s,
            actor=audit.actor(home),
            action="request.build",
            subject=req.id,
            payload={"release": built.id},
        )
        governance.move(s, req, "deliver")
        audit.record(
            s,
            actor=audit.actor(home),
            action="request.deliver",
            subject=req.id,
            payload={"release": built.id, "manifest_root": built.manifest["merkle_root"]},
        )
    return pay(home, request_id)


def pay(home: Home, request_id: str) -> Payment:
    """Record the buyer's payment: fee to the treasury, the rest split by quality score."""
    with home.transaction() as s:
        req = governance.find_request(s, request_id, lock=True)
        governance.move(s, req, "pay")
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
        fee = req.price_cents * governance.frozen_rules(req).fee_basis_points // 10_000
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
            actor=audit.actor(home),
            action="request.pay",
            subject=req.id,
            payload=payment.to_dict(),
        )
    return payment
