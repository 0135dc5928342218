"""The sale of a data product, end to end: propose, open with a plan, deliver, pay.

It sits above both the cooperative (requests, votes, the ledger) and the release engine
(plans and builds), so that neither imports the other: ``coop/governance.py`` keeps the
request's state machine and the vote, ``releases/`` computes, and this module moves a
request through both.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, select

from tunetrust import faults
from tunetrust.coop import audit, governance, ledger
from tunetrust.coop.consent import consenting
from tunetrust.coop.contributions import member_weights
from tunetrust.errors import ConflictError, InputError
from tunetrust.releases.build import build_release, plan_release, public_keys, release_folder
from tunetrust.releases.manifest import read_manifest
from tunetrust.releases.noise import plan_noise
from tunetrust.releases.spec import ReleaseSpec, parse_spec
from tunetrust.store.home import Home
from tunetrust.store.models import BudgetSpend, DataRequest, Member, Release, Vote


@contextmanager
def _field(name: str) -> Iterator[None]:
    """An ``InputError`` raised inside is about the request's field ``name``."""
    try:
        yield
    except InputError as error:
        if not error.fields:
            error.fields = [(name, str(error))]
        raise


def check_purpose(home: Home, spec: ReleaseSpec) -> None:
    """Refuse a spec whose purpose the cooperative does not know (the text not repeated)."""
    if spec.purpose not in home.settings.purposes:
        problem = f"unknown purpose; choose from {', '.join(home.settings.purposes)}"
        raise InputError(f"release spec, purpose: {problem}", fields=[("purpose", problem)])


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
    check_purpose(home, spec)
    # what open's plan_release would refuse on the spec alone, by the same checks: a
    # calendar without a period, a budget no noise can be calibrated to
    if spec.keys == "public":
        public_keys(spec)
    plan_noise(spec)
    with _field("currency"):
        code = ledger.currency_code(currency)
    with _field("price"):
        ledger.check_amount(price, code)
    if not 1 <= voting_days <= 90:
        problem = "the voting window is 1 to 90 days"
        raise InputError(problem, fields=[("voting_days", problem)])
    text = governance.LICENCES.get(licence, licence).strip()
    if not text:
        problem = f"give text or one of {', '.join(governance.LICENCES)}"
        raise InputError(f"licence: {problem}", fields=[("licence", problem)])
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
    """Build the release, deliver it, record the payment and split the proceeds.

    A resumable sequence of recorded steps: *claim* (passed → building, the release's
    id fixed), *build* (the release and every budget spend commit together, under that
    id), *link* (building → built), *deliver* (built → delivered), *pay* (delivered →
    paid, with the ledger transaction). Each step commits its state with its audit
    entry, so after a crash ``deliver`` run again (or ``tunetrust doctor``) resumes at
    the step recorded and does no step twice. Deliverers queue on the write lock, so a
    request found mid-way under it was left by a process that died.
    """
    with home.lock():
        with home.transaction() as s:
            req = governance.find_request(s, request_id, lock=True)
            if req.state == "passed":
                ledger.minor_unit(req.currency)  # an older version took any three letters
                governance.move(s, req, "claim")
                req.release_id = uuid.uuid4().hex  # the build commits under this id
                audit.record(
                    s,
                    actor=audit.actor(home),
                    action="request.claim",
                    subject=req.id,
                    payload={"release": req.release_id},
                )
            elif req.state not in RESUMABLE:
                raise ConflictError(
                    f"cannot deliver a request that is {req.state} "
                    "(only a passed request can be built and delivered)"
                )
            state, release_id, rid = req.state, req.release_id, req.id
        faults.reach("deliver.claimed")
        if state == "building":
            release_id = _build(home, rid, release_id)
            faults.reach("deliver.built")
            with home.transaction() as s:
                req = governance.find_request(s, rid, lock=True)
                governance.move(s, req, "build")
                req.release_id = release_id
                audit.record(
                    s,
                    actor=audit.actor(home),
                    action="request.build",
                    subject=rid,
                    payload={"release": release_id},
                )
            state = "built"
        if state == "built":
            root = read_manifest(release_folder(home, str(release_id)))["merkle_root"]
            with home.transaction() as s:
                req = governance.find_request(s, rid, lock=True)
                governance.move(s, req, "deliver")
                audit.record(
                    s,
                    actor=audit.actor(home),
                    action="request.deliver",
                    subject=rid,
                    payload={"release": release_id, "manifest_root": root},
                )
            faults.reach("deliver.delivered")
        return pay(home, rid)


RESUMABLE = ("building", "built", "delivered")


def _build(home: Home, request_id: str, release_id: str | None) -> str:
    """The claimed request's release: found if a killed deliverer committed it, else built.

    A request claimed by a version before 0.3 has no release id recorded: a release of
    the same spec committed after its vote opened and linked to no request is its own.
    """
    with home.sessions() as s:
        req = governance.find_request(s, request_id)
        if release_id is not None and s.get(Release, release_id) is not None:
            return release_id
        if release_id is None:
            linked = select(DataRequest.release_id).where(DataRequest.release_id.is_not(None))
            orphan = s.scalar(
                select(Release.id)
                .where(Release.spec == req.spec, Release.id.not_in(linked))
                .where(Release.created_at >= req.opens_at)
                .order_by(Release.created_at)
                .limit(1)
            )
            if orphan is not None:
                return str(orphan)
            release_id = uuid.uuid4().hex
        no_voters = set(
            s.scalars(select(Vote.member_id).where(Vote.request_id == req.id, Vote.choice == "no"))
        )
        consenting_now = set(req.eligible) & consenting(s, req.purpose)
        opt_out = governance.frozen_rules(req).no_votes_opt_out
        spec = parse_spec(req.spec)
    included = consenting_now - (no_voters if opt_out else set())
    try:
        build_release(home, spec, only=included, release_id=release_id)
    except Exception as exc:  # refused or failed: the claim is released, nothing was spent
        with home.transaction() as s:
            req = governance.find_request(s, request_id, lock=True)
            req.state, req.release_id = "passed", None
            audit.record(
                s,
                actor=audit.actor(home),
                action="request.unclaim",
                subject=req.id,
                payload={"build_failed": type(exc).__name__},
            )
        raise
    return release_id


def resume_deliveries(home: Home) -> list[str]:
    """Finish every delivery a killed process left mid-way (``tunetrust doctor``); their ids."""
    with home.sessions() as s:
        stuck = list(s.scalars(select(DataRequest.id).where(DataRequest.state.in_(RESUMABLE))))
    for rid in stuck:
        deliver(home, rid)
    return stuck


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
        entries = {f"buyer:{req.buyer_id}": -req.price_cents, ledger.TREASURY: fee, **shares}
        ledger.post(
            s,
            memo=f"sale of request {req.id[:12]}",
            currency=req.currency,
            request_id=req.id,
            entries=entries,
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
            # what `tunetrust verify` holds the ledger's entries to (services/verify.py)
            payload=payment.to_dict()
            | {
                "entries_sha256": ledger.entries_digest(
                    [(account, req.currency, v) for account, v in entries.items()]
                )
            },
        )
    return payment
