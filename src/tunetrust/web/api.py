"""The HTTP API under ``/api/v1``: buyers, members, auditors and stewards, one service API.

Its own FastAPI application, mounted by ``web/app.py``, so that its OpenAPI 3.1
document (``/api/v1/openapi.json``) describes exactly the API: every response model is
a service model (``services/models.py``), every error an RFC 9457 problem
(``application/problem+json``) whose ``errors`` name the fields at fault.

Who calls: a bearer token (``Authorization: Bearer tt_…``, see ``coop/tokens.py``) acts
as its buyer, member, auditor or steward within its scopes; a member's signed-in browser
session works too (a state-changing call then needs its ``X-CSRF-Token``). ``API_ACCESS``
says which kinds of caller each route admits; the authorisation test walks it against
the app's real routes. A POST that spends budget or moves money (delivery) needs an
``Idempotency-Key``; submitting a request takes one too. Lists are paginated with an
opaque ``cursor``. A delivered release is downloaded through short-lived signed links.
"""

from __future__ import annotations

import base64
import hmac
import json
import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Generic, Literal, TypeVar
from urllib.parse import urlencode

import orjson
from fastapi import APIRouter, Depends, FastAPI, Header, Path, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from tunetrust.coop import accounts, idempotency, tokens
from tunetrust.coop.keyring import reveal
from tunetrust.coop.ledger import MAX_AMOUNT
from tunetrust.errors import ForbiddenError, InputError, NotFoundError, TuneTrustError
from tunetrust.insights.stats import Insights
from tunetrust.services import audit as audit_service
from tunetrust.services import data, governance, jobs, members, releases
from tunetrust.services import tokens as token_service
from tunetrust.services.models import (
    Actor,
    AuditEntryInfo,
    AuditHead,
    AuditVerdict,
    BudgetLine,
    ConsentChange,
    ConsentHistory,
    Delivery,
    InvitationClosed,
    InvitationInfo,
    JobOverview,
    LedgerBalanceInfo,
    LedgerCheckInfo,
    Manifest,
    MemberOverview,
    MemberRelease,
    MemberRequest,
    ReleaseCheck,
    ReleasePlanInfo,
    RequestInfo,
    RulesReport,
    Statement,
    TokenInfo,
    TokenIssued,
    VoteCast,
)
from tunetrust.store.home import Home
from tunetrust.store.keys import derive
from tunetrust.store.models import Member
from tunetrust.web import security

PROBLEM = "application/problem+json"
log = logging.getLogger("tunetrust.web")
FILE_JSON = "application/json"
LINK_SECONDS = 300  # how long a download link works
KINDS = ("member", "buyer", "auditor", "steward")
T = TypeVar("T")


# --- problems (RFC 9457) ---------------------------------------------------------------


class FieldProblem(BaseModel):
    """One field at fault: where (a path into the request) and what is wrong."""

    model_config = ConfigDict(extra="forbid")

    field: str = Field(description="the field's path, e.g. spec.bounds.max_partitions")
    detail: str


class Problem(BaseModel):
    """An error, as RFC 9457 problem details."""

    model_config = ConfigDict(extra="forbid")

    type: str = Field(description="a URI naming the kind of problem")
    title: str
    status: int
    detail: str = Field(description="what went wrong and what to do, never a personal value")
    errors: list[FieldProblem] | None = None


TITLES = {
    400: "The request cannot be used",
    401: "Authentication needed",
    403: "Not allowed",
    404: "Not found",
    405: "Method not allowed",
    409: "Conflict",
    413: "Too large",
    422: "The request cannot be used",
    428: "Idempotency-Key required",
    500: "Server error",
}
SLUGS = {
    400: "invalid-request",
    401: "unauthenticated",
    403: "forbidden",
    404: "not-found",
    405: "method-not-allowed",
    409: "conflict",
    413: "too-large",
    422: "invalid-request",
    428: "idempotency-key-required",
    500: "server-error",
}


def problem(
    status: int,
    detail: str,
    *,
    errors: list[tuple[str, str]] | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    """A problem-details response."""
    body: dict[str, Any] = {
        "type": f"urn:tunetrust:problem:{SLUGS.get(status, 'error')}",
        "title": TITLES.get(status, "Error"),
        "status": status,
        "detail": detail,
    }
    if errors:
        body["errors"] = [{"field": f, "detail": d} for f, d in errors]
    return JSONResponse(body, status_code=status, media_type=PROBLEM, headers=headers)


def _problems(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """Responses as problem details (the schema given under problem+json, where FastAPI
    would put it under application/json alone; ``_tidy_openapi`` drops that one)."""
    ref = {"schema": {"$ref": "#/components/schemas/Problem"}}
    return {
        s: {"model": Problem, "description": TITLES.get(s, "Error"), "content": {PROBLEM: ref}}
        for s in statuses
    }


class Unauthenticated(Exception):
    """No credentials, or a token that is unknown, expired or revoked."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


# --- who is calling ----------------------------------------------------------------------


@dataclass(frozen=True)
class Caller:
    """Who a request acts as, and through what."""

    actor: Actor
    scopes: frozenset[str]
    principal: str  # whose idempotency keys these are: stable across a holder's tokens
    token: tokens.TokenView | None  # None: a member's browser session
    csrf: str | None  # the browser session's token, checked on state changes
    fresh: bool = True  # a browser session signed in within the last 15 minutes

    @property
    def kind(self) -> str:
        return self.actor.kind


bearer = HTTPBearer(
    auto_error=False,
    scheme_name="token",
    description="An API token (tt_…): `tunetrust token add`, or the web app for members",
)


def _member_caller(home: Home, member: Member, token: tokens.TokenView | None) -> Caller:
    reveal(home, member)
    if member.name is None:
        raise Unauthenticated("this member's account is gone")
    scopes = token.scopes if token else tokens.SCOPES["member"]
    return Caller(
        Actor.member(member.name),
        frozenset(scopes),
        f"member:{member.pseudonym}",
        token,
        None,
    )


def _token_caller(token: tokens.TokenView, csrf: str | None, *, fresh: bool) -> Caller:
    """A buyer's, auditor's or steward's call (by the token, or a session signed in with it)."""
    actor = Actor.model_validate({"kind": token.kind, "name": token.holder})
    return Caller(actor, frozenset(token.scopes), token.principal, token, csrf, fresh)


def _resolve(request: Request, credentials: HTTPAuthorizationCredentials | None) -> Caller:
    home: Home = request.app.state.home
    if credentials is not None:
        with home.sessions() as s:
            token = tokens.authenticate(s, credentials.credentials)
            member = s.get(Member, token.member_id) if token and token.member_id else None
            if member is not None:
                s.expunge(member)
        if token is None:
            raise Unauthenticated("this token is unknown, expired or revoked")
        if token.stale:
            with home.transaction() as s:
                tokens.touch(s, token.id)
        if member is not None:
            return _member_caller(home, member, token)
        return _token_caller(token, None, fresh=True)
    secret = request.cookies.get(security.COOKIE)
    if secret:
        with home.sessions() as s:
            found = accounts.find_session(s, secret)
            member = s.get(Member, found.member_id) if found and found.member_id else None
            if member is not None:
                s.expunge(member)
            staff = tokens.live(s, found.token_id) if found and found.token_id else None
        if found is not None and member is not None:
            c = _member_caller(home, member, None)
            return Caller(c.actor, c.scopes, c.principal, None, found.csrf, found.fresh)
        if found is not None and staff is not None:
            return _token_caller(staff, found.csrf, fresh=found.fresh)
    raise Unauthenticated("send an API token: Authorization: Bearer tt_…")


async def caller(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> Caller:
    """The authenticated caller; a browser session's state change needs its CSRF token."""
    who = await run_in_threadpool(_resolve, request, credentials)
    if who.csrf is not None and request.method not in ("GET", "HEAD", "OPTIONS"):
        sent = request.headers.get("x-csrf-token", "")
        if not sent or not hmac.compare_digest(sent, who.csrf):
            raise security.Refused("send this session's X-CSRF-Token with a browser session")
    return who


# API_ACCESS: "METHOD /path" → the kinds of caller a route admits (and the scope each
# needs). Filled by ``allow()`` as the routes are declared; a route without an entry
# fails tests/test_api_access.py.
API_ACCESS: dict[str, dict[str, str]] = {}


def allow(**kinds: str) -> Callable[..., Any]:
    """A dependency admitting the given kinds of caller, each with the scope named
    (``allow(buyer="requests:read", steward="steward")``)."""

    async def check(who: Annotated[Caller, Depends(caller)]) -> Caller:
        needed = kinds.get(who.kind)
        if needed is None:
            admitted = ", ".join(kinds)
            raise ForbiddenError(f"this is for: {admitted}; you are signed in as a {who.kind}")
        if needed not in who.scopes:
            raise ForbiddenError(f"this token lacks the scope {needed!r}")
        return who

    check.kinds = dict(kinds)  # type: ignore[attr-defined]
    return check


def _route(method: str, path: str, **kinds: str) -> Any:
    API_ACCESS[f"{method} {path}"] = dict(kinds)
    return Depends(allow(**kinds))


# --- pages of lists ----------------------------------------------------------------------


class Page(BaseModel, Generic[T]):
    """One page of a list; ``next`` is the cursor of the following page (null: the last)."""

    model_config = ConfigDict(extra="forbid")

    items: list[T]
    next: str | None = Field(description="pass as ?cursor= for the next page; null: no more")


Limit = Annotated[int, Query(ge=1, le=200, description="items per page")]
# a request by its whole id (the command line's prefixes would let one buyer probe another's)
RequestId = Annotated[str, Path(pattern="^[0-9a-f]{32}$", description="a request's id")]
Cursor = Annotated[str | None, Query(max_length=64, description="from the previous page's `next`")]


def _offset(cursor: str | None) -> int:
    if not cursor:
        return 0
    try:
        text = base64.urlsafe_b64decode(cursor.encode("ascii") + b"==").decode("ascii")
        kind, _, number = text.partition(":")
        if kind != "o" or not number.isdigit():
            raise ValueError(cursor)
        return int(number)
    except (ValueError, UnicodeError):
        raise InputError("cursor: not one this API gave", fields=[("cursor", "unknown")]) from None


def paged(items: list[T], limit: int, cursor: str | None) -> Page[T]:
    """One page of ``items`` from the cursor's position."""
    start = _offset(cursor)
    end = start + limit
    following = None
    if end < len(items):
        following = base64.urlsafe_b64encode(f"o:{end}".encode()).decode().rstrip("=")
    return Page[T](items=items[start:end], next=following)


# --- bodies ------------------------------------------------------------------------------


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SpecBody(Body):
    """A release spec: the object (as in a spec file) or its YAML/JSON text."""

    spec: dict[str, Any] | str = Field(description="the release spec (docs/releases.md)")


class RequestBody(SpecBody):
    """A data request: the spec, the price offered and the licence."""

    price: int = Field(ge=1, le=MAX_AMOUNT, description="whole minor units of the currency")
    currency: str = Field(min_length=3, max_length=3, description="ISO 4217, e.g. EUR")
    licence: str = Field(min_length=1, max_length=4000, description="a licence name or text")
    voting_days: int = Field(default=14, ge=1, le=90)


class CloseBody(Body):
    early_reason: str | None = Field(
        default=None, max_length=500, description="closing before the window ends: why"
    )


class InviteBody(Body):
    member: str | None = Field(default=None, max_length=200, description="enrol this member")
    days: int = Field(default=7, ge=1, le=90)
    open: bool = Field(default=False, description="open admission: anyone may use it")


class TokenBody(Body):
    kind: Literal["buyer", "member", "auditor", "steward"]
    holder: str = Field(min_length=1, max_length=200, description="who the token acts as")
    label: str = Field(default="", max_length=200)
    scopes: list[str] | None = Field(default=None, max_length=10)
    days: int | None = Field(
        default=None, ge=1, le=tokens.MAX_DAYS, description="default 90, or as long as the maker"
    )


class ConsentBody(Body):
    granted: bool


class VoteBody(Body):
    choice: Literal["yes", "no", "abstain"]


class Who(BaseModel):
    """Who this call acts as."""

    kind: Literal["member", "buyer", "auditor", "steward"]
    name: str | None = Field(description="the buyer, auditor or steward; null for a member")
    scopes: list[str]
    via: Literal["token", "session"]
    token: str | None = Field(description="the token's public id")
    expires: str | None


class DownloadLink(BaseModel):
    name: str
    sha256: str
    bytes: int
    url: str = Field(description="a link that works for a few minutes, without a token")
    expires: str = Field(description="when the link stops working (ISO 8601)")


class DeliveryLinks(BaseModel):
    """A delivered request's release: manifest, digests and signed download links."""

    delivery: Delivery
    links: list[DownloadLink]


def raw_body(request: Request) -> bytes:
    """The request's body as sent (kept by the API's middleware)."""
    body: bytes = request.state.body
    return body


@contextmanager
def _in_spec() -> Iterator[None]:
    """A spec's field paths, as paths into this request's body (``spec.bounds``)."""
    try:
        yield
    except InputError as error:
        if error.fields:
            error.fields = [(f if f in NOT_IN_SPEC else f"spec.{f}", d) for f, d in error.fields]
        else:  # the spec as a whole (not YAML, too large, expected to be empty …)
            error.fields = [("spec", str(error))]
        raise


NOT_IN_SPEC = {"spec", "price", "currency", "licence", "voting_days"}  # the request's fields


def _spec_text(spec: dict[str, Any] | str) -> str:
    # the standard library's JSON writes any integer (orjson refuses past 64 bits), and
    # the spec's reader takes JSON's numbers as JSON does (1e-06 is a float)
    if isinstance(spec, str):
        return spec
    try:
        return json.dumps(spec, allow_nan=False)
    except ValueError:  # 1e400 arrives as infinity
        raise InputError(
            "spec: a number too large to be one", fields=[("spec", "a number out of range")]
        ) from None


# --- signed download links ---------------------------------------------------------------


def _link_key(home: Home) -> bytes:
    return derive(home.master_key, b"tunetrust api download links v1")


def _signature(home: Home, request_id: str, name: str, expires: int, by: str) -> str:
    message = f"{request_id}\n{name}\n{expires}\n{by}".encode()
    return hmac.new(_link_key(home), message, "sha256").hexdigest()


def signed_link(request: Request, actor: Actor, request_id: str, name: str) -> tuple[str, str]:
    """A link to one file of a delivered request that works for ``LINK_SECONDS`` without
    a token, for ``actor`` (whom the download's audit entry names), and when it stops
    working (ISO 8601). The caller has checked the request and file are the actor's."""
    home: Home = request.app.state.home
    expires = int(time.time()) + LINK_SECONDS
    by = f"{actor.kind}:{actor.name}"
    url = request.url_for("api_download", request_id=request_id, name=name)
    query = urlencode(
        {"expires": expires, "by": by, "signature": _signature(home, request_id, name, expires, by)}
    )
    return f"{url}?{query}", datetime.fromtimestamp(expires, UTC).isoformat()


# --- the routes --------------------------------------------------------------------------

router = APIRouter()
READ_REQUESTS = {"buyer": "requests:read", "steward": "steward", "auditor": "audit:read"}
AUDIT = {"auditor": "audit:read", "steward": "steward"}
STEWARD = {"steward": "steward"}
ME_READ = {"member": "me:read"}
EVERYONE = {"member": "me:read", "buyer": "requests:read", "auditor": "audit:read"} | STEWARD

Errors = _problems(400, 401, 403, 404, 409)


def _home(request: Request) -> Home:
    home: Home = request.app.state.home
    return home


@router.get("/me", response_model=Who, responses=Errors, summary="Who this call acts as")
def me(who: Annotated[Caller, _route("GET", "/me", **EVERYONE)]) -> Who:
    return Who(
        kind=who.kind,  # type: ignore[arg-type]
        name=None if who.kind == "member" else who.actor.name,
        scopes=sorted(who.scopes),
        via="token" if who.token else "session",
        token=who.token.id if who.token else None,
        expires=who.token.expires_at.isoformat() if who.token else None,
    )


# buyers: specs and requests

_CHECK = {"buyer": "requests:write", "steward": "steward"}


@router.post(
    "/specs/check",
    response_model=ReleasePlanInfo,
    responses=Errors,
    summary="Check a spec and preview its plan",
)
def check_spec(
    request: Request,
    body: SpecBody,
    who: Annotated[Caller, _route("POST", "/specs/check", **_CHECK)],
) -> ReleasePlanInfo:
    """The spec validated as a request's would be, and planned over the members
    consenting now: how many would be included, their ε cost, the expected accuracy of
    each metric and how many keys are expected to pass the release threshold."""
    with _in_spec():
        return releases.preview(_home(request), who.actor, _spec_text(body.spec))


@router.post(
    "/requests",
    response_model=RequestInfo,
    status_code=201,
    responses=Errors,
    summary="Propose a data request",
)
def submit(
    request: Request,
    body: RequestBody,
    raw: Annotated[bytes, Depends(raw_body)],
    who: Annotated[Caller, _route("POST", "/requests", buyer="requests:write")],
    key: Annotated[str | None, Header(alias="Idempotency-Key", max_length=200)] = None,
) -> Response:
    """A draft request in the buyer's name; the steward opens the vote."""
    home = _home(request)

    def work() -> RequestInfo:
        with _in_spec():
            return governance.create_request(
                home,
                who.actor,
                buyer=who.actor.name,
                spec_text=_spec_text(body.spec),
                price=body.price,
                currency=body.currency,
                licence=body.licence,
                voting_days=body.voting_days,
            )

    response = _once(home, who, key, "POST /requests", raw, work, 201)
    if response.status_code == 201:  # where the new request is (a replay says it again)
        made = orjson.loads(bytes(response.body))
        response.headers["Location"] = str(
            request.url_for("api_request_show", request_id=made["id"])
        )
    return response


@router.get(
    "/requests", response_model=Page[RequestInfo], responses=Errors, summary="List requests"
)
def request_list(
    request: Request,
    who: Annotated[Caller, _route("GET", "/requests", **READ_REQUESTS)],
    limit: Limit = 50,
    cursor: Cursor = None,
) -> Page[RequestInfo]:
    """Newest first: a buyer's own, or every request for stewards and auditors."""
    return paged(governance.list_requests(_home(request), who.actor), limit, cursor)


@router.get(
    "/requests/{request_id}",
    name="api_request_show",
    response_model=RequestInfo,
    responses=Errors,
    summary="A request",
)
def request_show(
    request: Request,
    request_id: RequestId,
    who: Annotated[Caller, _route("GET", "/requests/{request_id}", **READ_REQUESTS)],
) -> RequestInfo:
    """Its state, price, frozen rules and plan, and the live count of the vote."""
    return governance.show_request(_home(request), who.actor, request_id)


@router.get(
    "/requests/{request_id}/plan",
    response_model=ReleasePlanInfo,
    responses=Errors,
    summary="A request's release plan",
)
def request_plan(
    request: Request,
    request_id: RequestId,
    who: Annotated[Caller, _route("GET", "/requests/{request_id}/plan", **READ_REQUESTS)],
) -> ReleasePlanInfo:
    """Members included (a count), ε cost, expected accuracy and keys expected to pass."""
    return governance.request_plan(_home(request), who.actor, request_id)


_DELIVERY = {"buyer": "releases:read", "steward": "steward", "auditor": "audit:read"}


@router.get(
    "/requests/{request_id}/release",
    response_model=DeliveryLinks,
    responses=Errors,
    summary="A delivered request's release and download links",
)
def request_release(
    request: Request,
    request_id: RequestId,
    who: Annotated[Caller, _route("GET", "/requests/{request_id}/release", **_DELIVERY)],
) -> DeliveryLinks:
    """The manifest, each file's SHA-256 and size, and links valid for five minutes."""
    d = releases.delivery(_home(request), who.actor, request_id)
    links = []
    for f in d.files:
        url, until = signed_link(request, who.actor, d.request, f.name)
        links.append(
            DownloadLink(name=f.name, sha256=f.sha256, bytes=f.bytes, url=url, expires=until)
        )
    return DeliveryLinks(delivery=d, links=links)


API_ACCESS["GET /downloads/{request_id}/{name}"] = {"link": "a signed link"}


@router.get(
    "/downloads/{request_id}/{name}",
    name="api_download",
    responses={
        200: {
            "description": "the file",
            "content": {
                k: {} for k in ("application/octet-stream", "text/csv", "application/json")
            },
        },
        **_problems(400, 403, 404, 409),
    },
    response_class=Response,
    summary="Download a release file through a signed link",
)
def download(
    request: Request,
    request_id: RequestId,
    name: str,
    expires: Annotated[int, Query(ge=0, le=2**40)],
    by: Annotated[str, Query(min_length=3, max_length=220)],
    signature: Annotated[str, Query(pattern="^[0-9a-f]{64}$")],
) -> Response:
    """No token needed: the link itself is the permission, for a few minutes."""
    home = _home(request)
    good = _signature(home, request_id, name, expires, by)
    if not hmac.compare_digest(good, signature):
        raise security.Refused("this download link is not valid; ask for the release's links")
    if expires < time.time():
        raise security.Refused("this download link has expired; ask for the release's links again")
    kind, _, holder = by.partition(":")
    given_to = Actor.model_validate({"kind": kind, "name": holder})  # signed by us: well formed
    data_ = releases.release_file(home, given_to, request_id, name)
    kind = "text/csv" if name.endswith(".csv") else "application/octet-stream"
    if name.endswith(".json"):
        kind = "application/json"
    return Response(
        data_,
        media_type=kind,
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


# stewards: the request lifecycle


@router.post(
    "/requests/{request_id}/open",
    response_model=RequestInfo,
    responses=Errors,
    summary="Open the vote",
)
def request_open(
    request: Request,
    request_id: RequestId,
    who: Annotated[Caller, _route("POST", "/requests/{request_id}/open", **STEWARD)],
) -> RequestInfo:
    """Eligible members, the plan and the rules frozen now; the window starts."""
    return governance.open_request(_home(request), who.actor, request_id)


@router.post(
    "/requests/{request_id}/close",
    response_model=RequestInfo,
    responses=Errors,
    summary="Close the vote",
)
def request_close(
    request: Request,
    request_id: RequestId,
    who: Annotated[Caller, _route("POST", "/requests/{request_id}/close", **STEWARD)],
    body: CloseBody | None = None,
) -> RequestInfo:
    """Passes or fails by the frozen rules; before the window ends only with a reason."""
    reason = body.early_reason if body else None
    return governance.close_request(_home(request), who.actor, request_id, early_reason=reason)


@router.post(
    "/requests/{request_id}/deliver",
    response_model=RequestInfo,
    responses=Errors | _problems(428),
    summary="Build, deliver and record payment (needs an Idempotency-Key)",
)
def request_deliver(
    request: Request,
    request_id: RequestId,
    raw: Annotated[bytes, Depends(raw_body)],
    who: Annotated[Caller, _route("POST", "/requests/{request_id}/deliver", **STEWARD)],
    key: Annotated[str | None, Header(alias="Idempotency-Key", max_length=200)] = None,
) -> Response:
    """Spends the included members' budget and moves money: sent twice with the same key,
    it happens once and the same answer comes back."""
    if not key:
        return problem(
            428,
            "delivery spends budget and moves money: send an Idempotency-Key header "
            "(any unique string, the same on a retry)",
            errors=[("Idempotency-Key", "required")],
        )
    home = _home(request)
    route = f"POST /requests/{request_id}/deliver"
    return _once(
        home, who, key, route, raw, lambda: governance.deliver(home, who.actor, request_id), 200
    )


def _once(
    home: Home,
    who: Caller,
    key: str | None,
    route: str,
    raw: bytes,
    work: Callable[[], BaseModel],
    status: int,
) -> Response:
    """Run ``work`` once per idempotency key (without a key: every time)."""
    if key is None:
        return JSONResponse(work().model_dump(mode="json"), status_code=status)
    print_ = idempotency.fingerprint("POST", route, raw)
    replay = idempotency.claim(home, who.principal, key, print_)
    if replay is not None:
        return _replayed(replay.status, replay.body)
    try:
        body = work().model_dump(mode="json")
    except TuneTrustError as error:  # a refusal is an answer too: kept and replayed
        if error.status >= 500:
            idempotency.abandon(home, who.principal, key)
            raise
        idempotency.finish(home, who.principal, key, error.status, _problem_body(error))
        raise
    except BaseException:
        idempotency.abandon(home, who.principal, key)
        raise
    idempotency.finish(home, who.principal, key, status, body)
    return JSONResponse(body, status_code=status)


def _problem_body(error: TuneTrustError) -> dict[str, Any]:
    fields = getattr(error, "fields", None)
    return {
        "problem": True,
        "status": error.status,
        "detail": str(error),
        "errors": list(fields or []),
    }


def _replayed(status: int, body: Any) -> Response:
    if isinstance(body, dict) and body.get("problem"):
        return problem(
            status,
            str(body["detail"]),
            errors=[(str(e[0]), str(e[1])) for e in body.get("errors") or []],
            headers={"Idempotent-Replayed": "true"},
        )
    return JSONResponse(body, status_code=status, headers={"Idempotent-Replayed": "true"})


# stewards: members, jobs, invitations, tokens


@router.get(
    "/members",
    response_model=Page[MemberOverview],
    responses=Errors,
    summary="Members by pseudonym, with their verdicts",
)
def member_list(
    request: Request,
    who: Annotated[Caller, _route("GET", "/members", **STEWARD)],
    limit: Limit = 50,
    cursor: Cursor = None,
) -> Page[MemberOverview]:
    return paged(members.member_overview(_home(request), who.actor), limit, cursor)


@router.get("/jobs", response_model=Page[JobOverview], responses=Errors, summary="Import jobs")
def job_list(
    request: Request,
    who: Annotated[Caller, _route("GET", "/jobs", **STEWARD)],
    limit: Limit = 50,
    cursor: Cursor = None,
) -> Page[JobOverview]:
    return paged(jobs.all_jobs(_home(request), who.actor), limit, cursor)


@router.post(
    "/invitations",
    response_model=InvitationInfo,
    status_code=201,
    responses=Errors,
    summary="Make an invitation link",
)
def invite(
    request: Request,
    body: InviteBody,
    who: Annotated[Caller, _route("POST", "/invitations", **STEWARD)],
) -> InvitationInfo:
    return members.invite(
        _home(request), who.actor, member=body.member, days=body.days, open_admission=body.open
    )


@router.post(
    "/invitations/{invitation_id}/close",
    response_model=InvitationClosed,
    responses=Errors,
    summary="Stop an invitation working",
)
def invitation_close(
    request: Request,
    invitation_id: str,
    who: Annotated[Caller, _route("POST", "/invitations/{invitation_id}/close", **STEWARD)],
) -> InvitationClosed:
    return members.close_invitation(_home(request), who.actor, invitation_id)


_TOKENS = {"steward": "steward", "member": "me:read", "buyer": "requests:read"}
_TOKENS_WRITE = {"steward": "steward", "member": "tokens", "buyer": "tokens"}


@router.get("/tokens", response_model=Page[TokenInfo], responses=Errors, summary="API tokens")
def token_list(
    request: Request,
    who: Annotated[Caller, _route("GET", "/tokens", **_TOKENS)],
    limit: Limit = 50,
    cursor: Cursor = None,
) -> Page[TokenInfo]:
    """A steward's: every token; a member's or buyer's: their own."""
    return paged(token_service.list_tokens(_home(request), who.actor), limit, cursor)


@router.post(
    "/tokens", response_model=TokenIssued, status_code=201, responses=Errors, summary="New token"
)
def token_add(
    request: Request,
    body: TokenBody,
    who: Annotated[Caller, _route("POST", "/tokens", **_TOKENS_WRITE)],
) -> TokenIssued:
    """The secret is in this answer only. A buyer or member makes tokens for themselves
    only, never wider than the token (or session) making it (by default, its scopes) and
    never outliving it; a member's token is made by the member alone (a steward's token
    opens no member's data). With a browser session, only within 15 minutes of signing in."""
    holder, scopes, days = body.holder, body.scopes, body.days
    if body.kind == "member" and who.kind != "member":
        raise ForbiddenError("a member's token is made by the member (or at the shell)")
    if who.token is None or who.csrf is not None:  # a browser session, not a bearer token
        if not who.fresh:
            raise security.Refused(
                "making a token needs a recent sign-in: sign in again, then make it"
            )
    if who.kind != "steward":
        holder = who.actor.name  # one's own: a member's, or the buyer's
        scopes = sorted(who.scopes) if not scopes else scopes
        wider = sorted(set(scopes) - who.scopes)
        if wider:
            raise ForbiddenError(f"a new token cannot have scopes this one lacks: {wider[0]!r}")
    until = who.token.expires_at if who.token is not None else None
    if until is not None and days is not None:
        if datetime.now(UTC) + timedelta(days=days) > until + timedelta(minutes=1):
            left = max((until - datetime.now(UTC)).days, 0)
            raise InputError(
                f"days: a new token cannot outlive this one, which ends in {left} days",
                fields=[("days", f"at most {left}")],
            )
    return token_service.issue_token(
        _home(request),
        who.actor,
        kind=body.kind,
        holder=holder,
        label=body.label,
        scopes=scopes,
        days=days or 90,
        until=until,
    )


@router.post(
    "/tokens/{token_id}/revoke",
    response_model=TokenInfo,
    responses=Errors,
    summary="Revoke a token",
)
def token_revoke(
    request: Request,
    token_id: str,
    who: Annotated[Caller, _route("POST", "/tokens/{token_id}/revoke", **_TOKENS_WRITE)],
) -> TokenInfo:
    return token_service.revoke_token(_home(request), who.actor, token_id)


# auditors (and stewards): the chain, manifests, the ledger


@router.get("/audit/head", response_model=AuditHead, responses=Errors, summary="Audit head")
def audit_head(
    request: Request, who: Annotated[Caller, _route("GET", "/audit/head", **AUDIT)]
) -> AuditHead:
    """The newest entry's number and hash: anchor it somewhere the cooperative cannot edit."""
    return audit_service.head(_home(request), who.actor)


@router.get(
    "/audit/verify", response_model=AuditVerdict, responses=Errors, summary="Verify the chain"
)
def audit_verify(
    request: Request, who: Annotated[Caller, _route("GET", "/audit/verify", **AUDIT)]
) -> AuditVerdict:
    return audit_service.verify_chain(_home(request), who.actor)


@router.get(
    "/audit/entries",
    response_model=Page[AuditEntryInfo],
    responses=Errors,
    summary="Audit entries",
)
def audit_entries(
    request: Request,
    who: Annotated[Caller, _route("GET", "/audit/entries", **AUDIT)],
    limit: Limit = 100,
    cursor: Cursor = None,
) -> Page[AuditEntryInfo]:
    """Oldest first; members appear by pseudonym, payloads are not shown."""
    return paged(audit_service.entries(_home(request), who.actor), limit, cursor)


@router.get(
    "/releases/{release_id}/manifest",
    response_model=Manifest,
    responses=Errors,
    summary="A release's manifest",
)
def release_manifest(
    request: Request,
    release_id: str,
    who: Annotated[Caller, _route("GET", "/releases/{release_id}/manifest", **AUDIT)],
) -> Manifest:
    return releases.show_manifest(_home(request), who.actor, release_id)


@router.get(
    "/releases/{release_id}/verify",
    response_model=ReleaseCheck,
    responses=Errors,
    summary="Verify a release",
)
def release_verify(
    request: Request,
    release_id: str,
    who: Annotated[Caller, _route("GET", "/releases/{release_id}/verify", **AUDIT)],
) -> ReleaseCheck:
    return releases.verify(_home(request), who.actor, release_id)


@router.get("/ledger", response_model=Page[LedgerBalanceInfo], responses=Errors, summary="Balances")
def ledger_show(
    request: Request,
    who: Annotated[Caller, _route("GET", "/ledger", **AUDIT)],
    limit: Limit = 100,
    cursor: Cursor = None,
) -> Page[LedgerBalanceInfo]:
    """Every account's balance (members' accounts by pseudonym)."""
    return paged(governance.balances(_home(request), who.actor), limit, cursor)


@router.get(
    "/ledger/verify", response_model=LedgerCheckInfo, responses=Errors, summary="Verify ledger"
)
def ledger_verify(
    request: Request, who: Annotated[Caller, _route("GET", "/ledger/verify", **AUDIT)]
) -> LedgerCheckInfo:
    return governance.verify_ledger(_home(request), who.actor)


@router.get("/rules", response_model=RulesReport, responses=Errors, summary="The rules")
def rules(
    request: Request, who: Annotated[Caller, _route("GET", "/rules", **EVERYONE)]
) -> RulesReport:
    """The rules in force and every decision that set them."""
    return governance.rules(_home(request), who.actor)


# members: their own things


@router.get(
    "/me/insights", response_model=Insights, responses=Errors, summary="My listening insights"
)
def my_insights(
    request: Request,
    who: Annotated[Caller, _route("GET", "/me/insights", **ME_READ)],
    period: Annotated[Literal["all", "year", "custom"], Query()] = "all",
    year: Annotated[int | None, Query(ge=1900, le=9999)] = None,
    start: Annotated[str | None, Query(alias="from", max_length=10)] = None,
    end: Annotated[str | None, Query(alias="to", max_length=10)] = None,
    tz: Annotated[str, Query(max_length=64)] = "UTC",
) -> Insights:
    """The numbers of ``tunetrust insights --json`` for a period and time zone."""
    from tunetrust.web.pages import period_of

    chosen = period_of(period, str(year) if year is not None else None, start, end)
    return data.insights(_home(request), who.actor, who.actor.name, chosen, tz=tz)


@router.get("/me/consent", response_model=ConsentHistory, responses=Errors, summary="My consents")
def my_consent(
    request: Request, who: Annotated[Caller, _route("GET", "/me/consent", **ME_READ)]
) -> ConsentHistory:
    return members.consent_history(_home(request), who.actor, who.actor.name)


@router.put(
    "/me/consent/{purpose}",
    response_model=ConsentChange,
    responses=Errors,
    summary="Grant or withdraw consent to a purpose",
)
def my_consent_set(
    request: Request,
    purpose: str,
    body: ConsentBody,
    who: Annotated[Caller, _route("PUT", "/me/consent/{purpose}", member="consent:write")],
) -> ConsentChange:
    home = _home(request)
    if purpose not in home.settings.purposes:
        raise NotFoundError(f"no purpose {purpose!r}; see GET /me/consent for the purposes")
    return members.set_consent(home, who.actor, who.actor.name, purpose, granted=body.granted)


@router.get(
    "/me/requests",
    response_model=Page[MemberRequest],
    responses=Errors,
    summary="Requests put to a vote, weighed for me",
)
def my_requests(
    request: Request,
    who: Annotated[Caller, _route("GET", "/me/requests", **ME_READ)],
    limit: Limit = 20,
    cursor: Cursor = None,
) -> Page[MemberRequest]:
    found = governance.requests_for_member(_home(request), who.actor, who.actor.name)
    return paged(found, limit, cursor)


@router.put(
    "/me/votes/{request_id}",
    response_model=VoteCast,
    responses=Errors,
    summary="Cast or change my vote",
)
def my_vote(
    request: Request,
    request_id: RequestId,
    body: VoteBody,
    who: Annotated[Caller, _route("PUT", "/me/votes/{request_id}", member="votes:write")],
) -> VoteCast:
    home = _home(request)
    me_ = who.actor.name
    governance.request_for_member(home, who.actor, me_, request_id)  # a draft: not found
    return governance.vote(home, who.actor, me_, request_id, body.choice)


@router.get("/me/statement", response_model=Statement, responses=Errors, summary="My payouts")
def my_statement(
    request: Request, who: Annotated[Caller, _route("GET", "/me/statement", **ME_READ)]
) -> Statement:
    return members.member_statement(_home(request), who.actor, who.actor.name)


@router.get(
    "/me/budget", response_model=Page[BudgetLine], responses=Errors, summary="My privacy budget"
)
def my_budget(
    request: Request,
    who: Annotated[Caller, _route("GET", "/me/budget", **ME_READ)],
    limit: Limit = 50,
    cursor: Cursor = None,
) -> Page[BudgetLine]:
    return paged(members.budget_lines(_home(request), who.actor, who.actor.name), limit, cursor)


@router.get(
    "/me/releases",
    response_model=Page[MemberRelease],
    responses=Errors,
    summary="Releases I was in",
)
def my_releases(
    request: Request,
    who: Annotated[Caller, _route("GET", "/me/releases", **ME_READ)],
    limit: Limit = 50,
    cursor: Cursor = None,
) -> Page[MemberRelease]:
    return paged(releases.member_releases(_home(request), who.actor, who.actor.name), limit, cursor)


# --- the application ---------------------------------------------------------------------


def create_api(home: Home) -> FastAPI:
    """The ``/api/v1`` application (mounted by ``web/app.py``)."""
    api = FastAPI(
        title="TuneTrust API",
        version="1",
        summary="A data cooperative's API for buyers, members, auditors and stewards",
        openapi_url="/openapi.json",
        docs_url=None,  # the explorer loads scripts from elsewhere; the CSP forbids them
        redoc_url=None,
    )
    api.state.home = home
    api.include_router(router)

    @api.middleware("http")
    async def keep_body(request: Request, call_next: Any) -> Response:
        # the raw body, for idempotency fingerprints (bodies here are at most 64 KiB)
        request.state.body = await request.body()
        try:
            response: Response = await call_next(request)
        except Exception as error:  # logged by its type only: a message may hold a value
            route = getattr(request.scope.get("route"), "path", "(no route)")
            log.error("unhandled %s in %s", type(error).__name__, route)
            return problem(500, "something went wrong on the server; the steward can see it")
        return response

    @api.exception_handler(TuneTrustError)
    async def refused(request: Request, error: Exception) -> Response:
        assert isinstance(error, TuneTrustError)
        if isinstance(error, idempotency.KeyInUse):
            return problem(409, str(error), headers={"Retry-After": "1"})
        fields = getattr(error, "fields", None) or []
        if error.status >= 500:
            return problem(500, "something went wrong on the server; the steward can see it")
        return problem(error.status, str(error), errors=fields)

    @api.exception_handler(Unauthenticated)
    async def unauthenticated(request: Request, error: Exception) -> Response:
        assert isinstance(error, Unauthenticated)
        return problem(401, error.detail, headers={"WWW-Authenticate": 'Bearer realm="tunetrust"'})

    @api.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, error: Exception) -> Response:
        assert isinstance(error, StarletteHTTPException)
        detail = "there is nothing here" if error.status_code == 404 else str(error.detail)
        return problem(error.status_code, detail)

    @api.exception_handler(RequestValidationError)
    async def invalid(request: Request, error: Exception) -> Response:
        assert isinstance(error, RequestValidationError)
        fields = []
        for e in error.errors():
            if e.get("type") == "json_invalid":
                fields.append(("(body)", "not valid JSON"))
                continue
            loc = [str(p) for p in e.get("loc", ())]
            if loc and loc[0] in ("body", "query", "path", "header"):
                loc = loc[1:]
            # a union's members appear as type names (spec.dict[str,any], spec.str)
            loc = [p for p in loc if "[" not in p and p not in ("str", "int", "float", "bool")]
            fields.append((".".join(loc) or "(body)", str(e.get("msg", "invalid"))))
        names = ", ".join(sorted({f for f, _ in fields}))
        return problem(400, f"this request has a missing or wrong value in: {names}", errors=fields)

    _tidy_openapi(api)
    return api


def _tidy_openapi(api: FastAPI) -> None:
    """The generated document, with FastAPI's unused 422 answers taken out (this API says
    400 for a request it cannot use, as problem details)."""
    original = api.openapi

    def document() -> dict[str, Any]:
        if api.openapi_schema is not None:
            return api.openapi_schema
        doc = original()
        for item in doc.get("paths", {}).values():
            for op in item.values():
                if not isinstance(op, dict):
                    continue
                answers = op.get("responses", {})
                answers.pop("422", None)
                for status, answer in answers.items():
                    if status[0] in "45":  # problems only, not JSON as well
                        answer.get("content", {}).pop("application/json", None)
        for name in ("HTTPValidationError", "ValidationError"):
            doc.get("components", {}).get("schemas", {}).pop(name, None)
        doc["servers"] = [{"url": "/api/v1"}]
        api.openapi_schema = doc
        return doc

    api.openapi = document  # type: ignore[method-assign]


__all__ = [
    "API_ACCESS",
    "Caller",
    "Page",
    "Problem",
    "create_api",
    "paged",
    "problem",
    "signed_link",
]
