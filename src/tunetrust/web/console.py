"""The steward's console, read-only for auditors, and signing in with an API token.

Buyers, auditors and stewards sign in by pasting their API token (``coop/tokens.py``)
at ``/staff/signin``: the browser gets a session bound to that token (a new id, as a
member's sign-in), which ends when the token is revoked or expires. Failed attempts
count toward the same rate limit as members' sign-ins. A member's personal token is
refused there: members sign in with their passkey.

Every console page acts through the service API as the token's holder (``web/staff.py``:
who may open what, refusals, forms sent once), so the services' own checks apply and the
audit log names who did what. Who may open a page is said twice, on purpose: by the
route's dependency and in ``web.app.ACCESS``, whose roles here are "steward" (stewards
only), "auditor" (auditors and stewards: requests and their releases, the rules, the
chain and the ledger, never anything personal) and "staff" (anyone signed in with a
token). Opening, closing and delivering a request are forms sent once per key.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response

from tunetrust.coop import accounts, tokens
from tunetrust.errors import InputError, NotFoundError
from tunetrust.services import audit, data, governance, jobs, members, releases
from tunetrust.services import tokens as token_service
from tunetrust.services.models import Actor, InvitationInfo, TokenIssued
from tunetrust.store.home import Home
from tunetrust.web import security
from tunetrust.web.app import ACCESS, page
from tunetrust.web.auth import not_refused
from tunetrust.web.security import CheckedVisit, StaffPost, Visit, remember
from tunetrust.web.staff import (
    PLANNED,
    Key,
    Reader,
    StaffRoute,
    Steward,
    StewardPost,
    actor,
    new_key,
    number,
    once,
    start,
    whole,
)

ACCESS.update(
    {
        "GET /staff/signin": "anyone",
        "POST /staff/signin": "anyone",
        "POST /staff/signout": "staff",
        "GET /console": "auditor",
        "GET /console/invitations": "steward",
        "POST /console/invitations": "steward",
        "POST /console/invitations/close": "steward",
        "GET /console/members": "steward",
        "GET /console/disputes": "steward",
        "POST /console/disputes/{contribution_id}/decide": "steward",
        "GET /console/requests": "auditor",
        "GET /console/requests/{request_id}": "auditor",
        "POST /console/requests/{request_id}/open": "steward",
        "POST /console/requests/{request_id}/close": "steward",
        "POST /console/requests/{request_id}/deliver": "steward",
        "GET /console/releases/{release_id}": "auditor",
        "GET /console/rules": "auditor",
        "GET /console/audit": "auditor",
        "GET /console/ledger": "auditor",
        "GET /console/jobs": "steward",
        "GET /console/tokens": "steward",
        "POST /console/tokens": "steward",
        "POST /console/tokens/{token_id}/revoke": "steward",
    }
)
UNKNOWN_TOKEN = "that token is unknown, expired or revoked"


router = APIRouter(route_class=StaffRoute)


# --- signing in with a token -------------------------------------------------------------


@router.get("/staff/signin")
def signin_page(request: Request) -> Response:
    """Paste your API token to sign in (buyers, auditors, stewards)."""
    v = security.visit(request)
    if v.staff is not None:
        return RedirectResponse(start(v.staff.kind), status_code=303)
    return page(request, "staff_signin.html")


@router.post("/staff/signin")
def signin(
    request: Request, v: CheckedVisit, token: Annotated[str, Form(max_length=400)]
) -> Response:
    """A session bound to the token; an unknown one counts as a failed sign-in."""
    where = not_refused(request)
    with v.home.sessions() as s:
        found = tokens.authenticate(s, token.strip())
    if found is None:
        with v.home.transaction() as s:
            accounts.failed(s, where)
        return page(request, "staff_signin.html", status=400, problem=UNKNOWN_TOKEN)
    if found.kind == "member":  # a real token, not a guess: not counted as a failure
        return page(request, "staff_signin.html", status=400, member_token=True)
    with v.home.transaction() as s:
        if found.stale:
            tokens.touch(s, found.id)
        _, secret = accounts.sign_in(s, v.session.id, None, token_id=found.id)
    remember(request, secret)
    return RedirectResponse(start(found.kind), status_code=303)


@router.post("/staff/signout")
def signout(request: Request, v: StaffPost) -> Response:
    """End the session on the server (the token itself stays valid)."""
    with v.home.transaction() as s:
        accounts.end_session(s, v.session.id)
    return RedirectResponse("/staff/signin", status_code=303)


# --- the console ----------------------------------------------------------------------------


@router.get("/console")
def overview(request: Request, v: Reader) -> Response:
    """What waits for the steward, and where the chain and the ledger stand."""
    who = actor(v)
    found = governance.list_requests(v.home, who)
    context: dict[str, Any] = {
        "states": Counter(r.state for r in found),
        "waiting": [r for r in found if r.state in ("draft", "open", "passed")],
        "head": audit.head(v.home, who),
    }
    if who.kind == "steward":
        context["members"] = members.member_overview(v.home, who)
        context["jobs"] = Counter(j.state for j in jobs.all_jobs(v.home, who))
    return page(request, "console.html", nav="overview", **context)


@router.get("/console/invitations")
def invitations(request: Request, v: Steward) -> Response:
    """Make a one-time or open-admission link; close one by its id."""
    return page(request, "console_invitations.html", nav="invitations")


@router.post("/console/invitations")
def invite(
    request: Request,
    v: StewardPost,
    kind: Annotated[str, Form(max_length=20)] = "one-time",
    days: Annotated[str, Form(max_length=20)] = "7",
) -> Response:
    """A new link, shown in this answer only (the database keeps its digest)."""
    try:
        made: InvitationInfo = members.invite(
            v.home,
            actor(v),
            days=number(days, "days", "days the link works"),
            open_admission=kind == "open",
        )
    except InputError as error:
        return page(
            request, "console_invitations.html", status=400, nav="invitations", problem=error
        )
    return page(request, "console_invitations.html", nav="invitations", made=made)


@router.post("/console/invitations/close")
def close_invitation(
    request: Request, v: StewardPost, invitation: Annotated[str, Form(max_length=100)]
) -> Response:
    """Stop a link working now."""
    try:
        closed = members.close_invitation(v.home, actor(v), invitation.strip())
    except (InputError, NotFoundError) as error:
        return page(
            request,
            "console_invitations.html",
            status=error.status,
            nav="invitations",
            close_problem=error,
        )
    return page(request, "console_invitations.html", nav="invitations", closed=closed)


@router.get("/console/members")
def member_list(request: Request, v: Steward) -> Response:
    """Members by pseudonym: joined, contributions and verdicts, quality, passkey."""
    return page(
        request,
        "console_members.html",
        nav="members",
        members=members.member_overview(v.home, actor(v)),
    )


@router.get("/console/disputes")
def dispute_list(request: Request, v: Steward) -> Response:
    """Imports held because their account or plays are another member's: both sides."""
    return page(
        request,
        "console_disputes.html",
        nav="disputes",
        disputes=data.disputes(v.home, actor(v)),
        key=new_key(),
    )


@router.post("/console/disputes/{contribution_id}/decide")
def dispute_decide(
    contribution_id: str,
    v: StewardPost,
    key: Key,
    decided_for: Annotated[str, Form(max_length=16)] = "",
) -> Response:
    """Decide a dispute for the claimant or the holder, once per form key."""
    cid = whole(contribution_id)

    def work() -> str:
        data.decide_dispute(v.home, actor(v), cid, decided_for=decided_for)
        return "/console/disputes"

    return once(v, key, f"decide {cid}", decided_for.encode(), work)


@router.get("/console/requests")
def request_list(request: Request, v: Reader) -> Response:
    """Every data request, newest first."""
    found = governance.list_requests(v.home, actor(v))
    return page(request, "console_requests.html", nav="requests", requests=found)


@router.get("/console/requests/{request_id}")
def request_page(request: Request, request_id: str, v: Reader) -> Response:
    """A request: its lifecycle, the plan's privacy and accuracy, the vote's count."""
    who = actor(v)
    shown = governance.show_request(v.home, who, whole(request_id))
    plan = governance.request_plan(v.home, who, shown.id) if shown.state in PLANNED else None
    tally = shown.tally
    # a hint for the form only: the service decides whether a close is early
    needs_reason = (
        shown.state == "open"
        and shown.closes_at is not None
        and datetime.now(UTC) < datetime.fromisoformat(shown.closes_at)
        and (tally is None or tally.voters < tally.eligible)
    )
    return page(
        request,
        "console_request.html",
        nav="requests",
        r=shown,
        plan=plan,
        needs_reason=needs_reason,
        key=new_key(),
    )


Step = Callable[[Home, Actor, str], object]


def _lifecycle(
    v: Visit, request_id: str, key: str, action: str, body: bytes, step: Step
) -> Response:
    """One step of a request's life, once per form key; then back to the request."""
    rid = whole(request_id)

    def work() -> str:
        step(v.home, actor(v), rid)
        return f"/console/requests/{rid}"

    return once(v, key, f"{action} {rid}", body, work)


@router.post("/console/requests/{request_id}/open")
def request_open(request_id: str, v: StewardPost, key: Key) -> Response:
    """Open the vote: eligible members, the plan and the rules frozen now."""
    return _lifecycle(v, request_id, key, "open", b"", governance.open_request)


@router.post("/console/requests/{request_id}/close")
def request_close(
    request_id: str,
    v: StewardPost,
    key: Key,
    reason: Annotated[str, Form(max_length=1000)] = "",
) -> Response:
    """Close the vote; before its window ends only with a reason, which is recorded."""
    why = reason.strip() or None

    def step(home: Home, who: Actor, rid: str) -> None:
        governance.close_request(home, who, rid, early_reason=why)

    return _lifecycle(v, request_id, key, "close", reason.encode(), step)


@router.post("/console/requests/{request_id}/deliver")
def request_deliver(request_id: str, v: StewardPost, key: Key) -> Response:
    """Build the release, deliver it, record payment: once, however often it is sent."""
    return _lifecycle(v, request_id, key, "deliver", b"", governance.deliver)


@router.get("/console/releases/{release_id}")
def release(request: Request, release_id: str, v: Reader) -> Response:
    """A release's manifest, and its files checked against it and the records."""
    who = actor(v)
    manifest = releases.show_manifest(v.home, who, whole(release_id))
    check = releases.verify(v.home, who, manifest.id)
    return page(
        request,
        "console_release.html",
        nav="requests",
        m=manifest.model_dump(mode="json"),
        check=check,
    )


@router.get("/console/rules")
def rules(request: Request, v: Reader) -> Response:
    """The rules in force and every decision that set them."""
    found = governance.rules(v.home, actor(v))
    return page(request, "console_rules.html", nav="rules", report=found)


@router.get("/console/audit")
def audit_page(request: Request, v: Reader) -> Response:
    """The chain recomputed, and its head to anchor somewhere the cooperative cannot edit."""
    who = actor(v)
    return page(
        request,
        "console_audit.html",
        nav="audit",
        verdict=audit.verify_chain(v.home, who),
        head=audit.head(v.home, who),
    )


@router.get("/console/ledger")
def ledger(request: Request, v: Reader) -> Response:
    """Every account's balance (members by pseudonym), and the ledger checked."""
    who = actor(v)
    return page(
        request,
        "console_ledger.html",
        nav="ledger",
        balances=governance.balances(v.home, who),
        check=governance.verify_ledger(v.home, who),
    )


@router.get("/console/jobs")
def job_list(request: Request, v: Steward) -> Response:
    """Import jobs, newest first, by the member's pseudonym."""
    return page(request, "console_jobs.html", nav="jobs", jobs=jobs.all_jobs(v.home, actor(v)))


# --- tokens -----------------------------------------------------------------------------------

ISSUED_KINDS = ("buyer", "auditor", "steward")  # members make their own, by name


def _tokens(request: Request, v: Visit, status: int = 200, **context: Any) -> Response:
    listed = token_service.list_tokens(v.home, actor(v))
    scopes = {k: tokens.SCOPES[k] for k in ISSUED_KINDS}
    return page(
        request,
        "console_tokens.html",
        status=status,
        nav="tokens",
        tokens=listed,
        scopes=scopes,
        **context,
    )


@router.get("/console/tokens")
def token_list(request: Request, v: Steward) -> Response:
    """Every API token (members' as "a member"), and a form to make one."""
    return _tokens(request, v)


@router.post("/console/tokens")
def token_add(
    request: Request,
    v: StewardPost,
    kind: Annotated[str, Form(max_length=20)],
    holder: Annotated[str, Form(max_length=200)],
    label: Annotated[str, Form(max_length=200)] = "",
    days: Annotated[str, Form(max_length=20)] = "90",
    scopes: Annotated[list[str] | None, Form(max_length=10)] = None,
) -> Response:
    """A new token; its secret is in this answer only."""
    try:
        if kind not in ISSUED_KINDS:
            raise InputError("choose a buyer's, an auditor's or a steward's token")
        made: TokenIssued = token_service.issue_token(
            v.home,
            actor(v),
            kind=kind,
            holder=holder.strip(),
            label=label,
            scopes=scopes or None,
            days=number(days, "days", "days the token works"),
        )
    except (InputError, NotFoundError) as error:
        return _tokens(request, v, status=error.status, problem=error)
    return _tokens(request, v, made=made)


@router.post("/console/tokens/{token_id}/revoke")
def token_revoke(token_id: str, v: StewardPost) -> Response:
    """Revoke a token: every request and session using it stops (yours too, if it is)."""
    token_service.revoke_token(v.home, actor(v), token_id)
    return RedirectResponse("/console/tokens", status_code=303)


__all__ = ["router"]
