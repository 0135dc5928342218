"""The buyer portal: a buyer, signed in with their API token, proposes data requests,
follows them, and downloads what was delivered.

Every page acts as that buyer through the service API (``Actor.buyer``), so a buyer sees
their own requests only: another buyer's request answers 404, like one that does not
exist. Pages need the token's scopes as the HTTP API does: ``requests:read`` to look,
``requests:write`` to check a spec or propose, ``releases:read`` to download.

A spec is checked with the form's "Check" button (``releases.preview``: how many
members would be included, the ε each would spend, the expected accuracy of each metric
and the keys expected to pass), or as it is typed by ``static/speccheck.js``, which
asks the API's ``/specs/check`` with the session's CSRF token; the page works without
it. A refusal names the field at fault (``spec.bounds.max_partitions``). Files are
downloaded through the API's short-lived signed links, made afresh at each click.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response
from pydantic import BaseModel, ConfigDict, Field

from tunetrust.coop.governance import LICENCES
from tunetrust.errors import InputError, NotFoundError
from tunetrust.services import governance, releases
from tunetrust.services.models import ReleasePlanInfo
from tunetrust.web.api import NOT_IN_SPEC, signed_link
from tunetrust.web.app import ACCESS, page
from tunetrust.web.security import Visit
from tunetrust.web.staff import (
    PLANNED,
    StaffRoute,
    actor,
    new_key,
    number,
    once,
    posting,
    viewing,
    whole,
)

router = APIRouter(route_class=StaffRoute)
ACCESS.update(
    {
        "GET /buyer": "buyer",
        "POST /buyer/check": "buyer",
        "POST /buyer/requests": "buyer",
        "GET /buyer/requests/{request_id}": "buyer",
        "GET /buyer/requests/{request_id}/files/{name}": "buyer",
    }
)
BuyerRead = Annotated[Visit, viewing(buyer="requests:read")]
BuyerWrite = Annotated[Visit, posting(buyer="requests:write")]
BuyerFiles = Annotated[Visit, viewing(buyer="releases:read")]
MAX_SPEC = 60_000  # characters: the form's body must stay under the app's 64 KiB


class Proposal(BaseModel):
    """The proposal form as typed (numbers are read by ``submit``, naming the field)."""

    model_config = ConfigDict(extra="ignore")  # the form's csrf field

    spec: str = Field(default="", max_length=MAX_SPEC)
    price: str = Field(default="", max_length=20)
    currency: str = Field(default="EUR", max_length=10)
    licence: str = Field(default="research-only", max_length=4000)
    voting_days: str = Field(default="14", max_length=10)
    key: str = Field(default="", max_length=200)

    def fingerprint(self) -> bytes:
        """What makes two submits the same proposal."""
        return orjson.dumps(self.model_dump(exclude={"key"}), option=orjson.OPT_SORT_KEYS)


TypedProposal = Annotated[Proposal, Form()]


@dataclass(frozen=True)
class Refusal:
    """Why a proposal or a check was refused, and the fields at fault."""

    message: str
    fields: list[tuple[str, str]] = field(default_factory=list)

    @classmethod
    def of(cls, error: InputError, *, in_spec: bool) -> Refusal:
        """The error's fields, as paths into the form (``spec.bounds``) when about the spec."""
        fields = [
            (f if not in_spec or f in NOT_IN_SPEC else f"spec.{f}", d) for f, d in error.fields
        ]
        return cls(str(error), fields)

    def about(self, name: str) -> bool:
        """Whether the form field ``name`` is at fault."""
        return any(f == name or f.startswith(f"{name}.") for f, _ in self.fields)


def _portal(
    request: Request,
    v: Visit,
    typed: Proposal,
    *,
    status: int = 200,
    plan: ReleasePlanInfo | None = None,
    refused: Refusal | None = None,
) -> Response:
    mine = governance.list_requests(v.home, actor(v))
    return page(
        request,
        "portal.html",
        status=status,
        nav="requests",
        requests=mine,
        typed=typed,
        plan=plan,
        refused=refused,
        key=new_key(),  # a new proposal: a new key (a refused one changed nothing)
        licences=LICENCES,
    )


@router.get("/buyer")
def portal(request: Request, v: BuyerRead) -> Response:
    """My requests, and a form to propose a new one."""
    return _portal(request, v, Proposal())


@router.post("/buyer/check")
def check(request: Request, v: BuyerWrite, typed: TypedProposal) -> Response:
    """The spec checked, and the plan it would have over the members consenting now."""
    try:
        plan = releases.preview(v.home, actor(v), typed.spec)
    except InputError as error:
        refused = Refusal.of(error, in_spec=True)
        return _portal(request, v, typed, status=400, refused=refused)
    return _portal(request, v, typed, plan=plan)


@router.post("/buyer/requests")
def submit(request: Request, v: BuyerWrite, typed: TypedProposal) -> Response:
    """Propose the request (a draft the steward opens to the vote); sent twice, one draft."""
    who = actor(v)
    try:
        price = number(typed.price, "price", "the price, in minor units")
        days = number(typed.voting_days, "voting_days", "the voting window, in days")
    except InputError as error:
        return _portal(request, v, typed, status=400, refused=Refusal.of(error, in_spec=False))

    def work() -> str:
        made = governance.create_request(
            v.home,
            who,
            buyer=who.name,
            spec_text=typed.spec,
            price=price,
            currency=typed.currency.strip().upper(),
            licence=typed.licence,
            voting_days=days,
        )
        return f"/buyer/requests/{made.id}"

    try:
        return once(v, typed.key or new_key(), "propose", typed.fingerprint(), work)
    except InputError as error:  # the service names fields by their path in the spec
        return _portal(request, v, typed, status=400, refused=Refusal.of(error, in_spec=True))


@router.get("/buyer/requests/{request_id}")
def request_page(request: Request, request_id: str, v: BuyerRead) -> Response:
    """One of my requests: its state, frozen rules, plan, count, and the delivered files."""
    who = actor(v)
    shown = governance.show_request(v.home, who, whole(request_id))
    plan = governance.request_plan(v.home, who, shown.id) if shown.state in PLANNED else None
    context: dict[str, Any] = {"r": shown, "plan": plan}
    if shown.state in ("delivered", "paid") and v.staff and "releases:read" in v.staff.scopes:
        context["delivery"] = releases.delivery(v.home, who, shown.id)
    return page(request, "portal_request.html", nav="requests", **context)


@router.get("/buyer/requests/{request_id}/files/{name}")
def download(request: Request, request_id: str, name: str, v: BuyerFiles) -> Response:
    """On to a freshly signed download link for one file of my delivered release."""
    d = releases.delivery(v.home, actor(v), whole(request_id))
    if name not in {f.name for f in d.files}:
        raise NotFoundError(f"no file {name!r} in this release")
    link, _ = signed_link(request, actor(v), d.request, name)
    return RedirectResponse(link, status_code=303)


__all__ = ["router"]
