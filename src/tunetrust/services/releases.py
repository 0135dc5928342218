"""Release use cases: plan, build, read, verify, and a member's proof of inclusion and
the releases they were in."""

from __future__ import annotations

import hashlib
from dataclasses import asdict

from sqlalchemy import select

from tunetrust.coop import audit
from tunetrust.coop.budget import Epsilon
from tunetrust.coop.governance import find_request, iso_time
from tunetrust.coop.members import get_member
from tunetrust.errors import ConflictError, ForbiddenError, NotFoundError
from tunetrust.releases import build, manifest, member_insights
from tunetrust.releases.spec import parse_spec
from tunetrust.services import sale
from tunetrust.services._access import acting, for_member, reader, steward_only
from tunetrust.services.members import amount
from tunetrust.services.models import (
    Actor,
    Delivery,
    DeliveryFile,
    InclusionProof,
    Manifest,
    MemberRelease,
    ReleaseBuilt,
    ReleaseCheck,
    ReleasePlanInfo,
)
from tunetrust.store.home import Home
from tunetrust.store.models import (
    BudgetSpend,
    Buyer,
    DataRequest,
    LedgerEntry,
    LedgerTransaction,
    Release,
)


def plan(home: Home, actor: Actor, spec_text: str, *, source: str = "spec") -> ReleasePlanInfo:
    """Who a spec would include, its ε cost and expected outcome; computes nothing on data.

    A release expected to be empty is shown here, not refused (``build`` refuses it).
    """
    steward_only(actor, "plan a release")
    spec = parse_spec(spec_text, source_name=source)
    planned = build.plan_release(home, spec, allow_empty=True)
    return ReleasePlanInfo.model_validate(planned.to_dict())


def build_release(
    home: Home, actor: Actor, spec_text: str, *, allow_empty: bool = False, source: str = "spec"
) -> ReleaseBuilt:
    """Bounded aggregates, OpenDP noise, files, manifest; spends the included members' ε."""
    steward_only(actor, "build a release")
    with acting(home, actor):
        spec = parse_spec(spec_text, source_name=source)
        built = build.build_release(home, spec, allow_empty=allow_empty)
    return ReleaseBuilt(
        id=built.id,
        path=str(built.path),
        members_included=built.members_included,
        merkle_root=str(built.manifest["merkle_root"]),
        rows=int(built.manifest["rows"]),
        manifest=built.manifest,
    )


def build_member_insights(
    home: Home, actor: Actor, month: str, *, allow_empty: bool = False
) -> list[member_insights.Outcome]:
    """The month's member-insights releases (hours, artists, tracks) for the members who
    consented; a part expected to be empty is skipped and spends nothing."""
    steward_only(actor, "build the member insights")
    with acting(home, actor):
        return member_insights.build_month(home, month, allow_empty=allow_empty)


def show_manifest(home: Home, actor: Actor, release_id: str) -> Manifest:
    """A release's manifest as published beside its files."""
    reader(actor, "read a release's manifest")
    return Manifest.model_validate(manifest.read_manifest(build.release_folder(home, release_id)))


def verify(home: Home, actor: Actor, release_id: str) -> ReleaseCheck:
    """The files against the manifest and SHA256SUMS, the manifest against the records."""
    reader(actor, "verify a release")
    problems = build.verify_release(home, release_id)
    return ReleaseCheck(release=release_id, ok=not problems, problems=problems)


def inclusion(home: Home, actor: Actor, release_id: str, member: str) -> InclusionProof:
    """A member's own proof of inclusion (``checks`` is false when not included)."""
    for_member(actor, member, "see a member's proof of inclusion")
    proof, root = build.inclusion(home, release_id, member)
    return InclusionProof(
        merkle_root=root, checks=manifest.check_proof(root, proof), **asdict(proof)
    )


def member_releases(home: Home, actor: Actor, member: str) -> list[MemberRelease]:
    """The releases a member was included in (their budget was charged), oldest first,
    with the request that bought each and what it paid them."""
    for_member(actor, member, "see the releases a member was in")
    me = get_member(home, member)
    account = f"member:{me.pseudonym}"
    with home.sessions() as s:
        spends = s.execute(
            select(BudgetSpend, Release)
            .join(Release, Release.id == BudgetSpend.release_id)
            .where(BudgetSpend.member_id == me.id)
            .order_by(BudgetSpend.at, BudgetSpend.id)
        ).all()
        ids = [r.id for _, r in spends]
        sold = {
            req.release_id: (req.id, buyer)
            for req, buyer in s.execute(
                select(DataRequest, Buyer.name)
                .join(Buyer, Buyer.id == DataRequest.buyer_id)
                .where(DataRequest.release_id.in_(ids))
            )
        }
        paid: dict[str, tuple[int, str]] = {}
        for request_id, cents, currency in s.execute(
            select(LedgerTransaction.request_id, LedgerEntry.cents, LedgerEntry.currency)
            .join(LedgerEntry, LedgerEntry.transaction_id == LedgerTransaction.id)
            .where(
                LedgerEntry.account == account,
                LedgerTransaction.request_id.in_([r for r, _ in sold.values()]),
            )
        ):
            before = paid.get(str(request_id), (0, currency))[0]
            paid[str(request_id)] = (before + int(cents), currency)
    out = []
    for spend, release in spends:
        request, buyer = sold.get(release.id, (None, None))
        payout = paid.get(request) if request else None
        out.append(
            MemberRelease(
                id=release.id,
                at=iso_time(release.created_at) or "",
                purpose=spend.purpose,
                year=spend.year,
                epsilon=str(Epsilon(spend.micro_epsilon)),
                request=request,
                buyer=buyer,
                payout=amount(*payout) if payout else None,
            )
        )
    return out


def preview(home: Home, actor: Actor, spec_text: str) -> ReleasePlanInfo:
    """A spec checked as ``create_request`` checks it, and planned over the members
    consenting now: what a buyer sees before proposing (counts only, nothing personal)."""
    if actor.kind not in ("buyer", "steward"):
        raise ForbiddenError("only a buyer or a steward can check a spec")
    spec = parse_spec(spec_text)
    sale.check_purpose(home, spec)
    planned = build.plan_release(home, spec, allow_empty=True)
    return ReleasePlanInfo.model_validate(planned.to_dict())


DELIVERED = (*manifest.FILES, manifest.MANIFEST, manifest.CHECKSUMS)  # what a buyer gets


def _delivered(home: Home, actor: Actor, request_id: str) -> tuple[str, str]:
    """The release of a delivered request the actor may download: (request id, release)."""
    with home.sessions() as s:
        req = find_request(s, request_id)
        buyer = s.get(Buyer, req.buyer_id)
        mine = actor.kind in ("steward", "auditor") or (
            actor.kind == "buyer" and buyer is not None and buyer.name == actor.name
        )
        if not mine:
            raise NotFoundError(f"no data request {request_id!r}")  # as for one that never was
        if req.state not in ("delivered", "paid") or req.release_id is None:
            raise ConflictError(
                f"request {req.id[:12]} is {req.state}; its release can be downloaded "
                "once it is delivered"
            )
        return req.id, req.release_id


def delivery(home: Home, actor: Actor, request_id: str) -> Delivery:
    """A delivered request's release: its manifest and every file with its digest."""
    rid, release_id = _delivered(home, actor, request_id)
    files = build.release_files(home, release_id)
    found = manifest.read_manifest(files)
    digests = dict(found.get("files") or {})  # the data files', recorded when it was built
    listed = []
    for name in DELIVERED:
        try:
            with files.open(name) as fh:
                size = fh.seek(0, 2)
                if name not in digests:  # the manifest and SHA256SUMS: small, hashed here
                    fh.seek(0)
                    digests[name] = hashlib.sha256(fh.read()).hexdigest()
        except FileNotFoundError:  # a release built before SHA256SUMS existed
            continue
        listed.append(DeliveryFile(name=name, sha256=digests[name], bytes=size))
    return Delivery(
        request=rid,
        release=release_id,
        merkle_root=str(found["merkle_root"]),
        manifest=found,
        files=listed,
    )


def release_file(home: Home, actor: Actor, request_id: str, name: str) -> bytes:
    """One file of a delivered request's release (a name the delivery lists); the
    download is audited in the actor's name (whom the link was given to)."""
    _, release_id = _delivered(home, actor, request_id)
    try:
        if name not in DELIVERED:
            raise FileNotFoundError(name)
        data = build.release_files(home, release_id).get(name)
    except FileNotFoundError:
        raise NotFoundError(f"no file {name!r} in this release") from None
    with acting(home, actor), home.transaction() as s:
        audit.record(
            s,
            actor=audit.actor(home),
            action="release.download",
            subject=request_id,
            payload={"release": release_id, "file": name},
        )
    return data
