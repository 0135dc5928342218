"""What the buyer portal and the steward's console share: roles, refusals, forms once.

Buyers, auditors and stewards sign in by pasting their API token (``web/console.py``'s
``/staff/signin``); their pages act through the service API as the token's holder
(``actor()``: ``Actor(kind=token.kind, name=token.name)``). A page admits kinds of token,
each with the scope the HTTP API would ask of it (``viewing()``, and ``posting()`` which
checks the CSRF token first); a refusal is shown on a page with the staff menu
(``StaffRoute``). A form that moves a request along, spends budget or moves money
carries an idempotency key made when the page was shown: sent twice, it has one effect
(``once()``), whoever's form it is (keys are kept per holder, as the API keeps them).
"""

from __future__ import annotations

import re
import secrets
import time
from collections.abc import Callable, Coroutine
from typing import Annotated, Any

from fastapi import Depends, Form, Request
from fastapi.responses import RedirectResponse, Response
from fastapi.routing import APIRoute

from tunetrust.coop import idempotency
from tunetrust.errors import ForbiddenError, InputError, NotFoundError, TuneTrustError
from tunetrust.services.models import Actor
from tunetrust.web import security
from tunetrust.web.app import page
from tunetrust.web.security import Visit

STALE_FORM = "this form was sent before with other values; reload the page and send it again"
WHOLE_ID = re.compile(r"[0-9a-f]{32}")
KIND_NAMES = {"buyer": "a buyer", "auditor": "an auditor", "steward": "a steward"}
WAIT_FOR_FIRST = 120.0  # seconds a repeated form waits for the first one's answer
PLANNED = ("draft", "open", "passed")  # states in which a plan still says what will happen


class StaffRoute(APIRoute):
    """A route of the portal or the console: a refusal is shown on a page with the staff
    menu (the app's own handler would show the members' page)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handle = super().get_route_handler()

        async def handler(request: Request) -> Response:
            try:
                return await handle(request)
            except TuneTrustError as error:
                return page(request, "staff_error.html", status=error.status, message=str(error))

        return handler


def _admitted(v: Visit, kinds: dict[str, str]) -> Visit:
    """``v`` if its token is of one of ``kinds`` and holds the scope that kind needs."""
    assert v.staff is not None
    needed = kinds.get(v.staff.kind)
    if needed is None:
        names = " or ".join(KIND_NAMES[k] for k in kinds)
        raise ForbiddenError(
            f"this page is for {names}; you are signed in as {KIND_NAMES[v.staff.kind]}"
        )
    if needed not in v.staff.scopes:
        raise ForbiddenError(f"your token lacks the scope {needed!r} that this page needs")
    return v


def viewing(**kinds: str) -> Any:
    """A page for the given kinds of token, each with the scope named (as the API's)."""

    def check(request: Request) -> Visit:
        return _admitted(security.staff(request), kinds)

    return Depends(check)


def posting(**kinds: str) -> Any:
    """A form for the given kinds of token: the CSRF token first, then kind and scope."""

    async def check(request: Request) -> Visit:
        return _admitted(await security.staff_post(request), kinds)

    return Depends(check)


Steward = Annotated[Visit, viewing(steward="steward")]
StewardPost = Annotated[Visit, posting(steward="steward")]
Reader = Annotated[Visit, viewing(steward="steward", auditor="audit:read")]
Key = Annotated[str, Form(min_length=1, max_length=idempotency.MAX_KEY)]


def actor(v: Visit) -> Actor:
    """Who the session acts as: the token's holder (a buyer's token: the buyer)."""
    assert v.staff is not None
    return Actor.model_validate({"kind": v.staff.kind, "name": v.staff.holder})


def start(kind: str) -> str:
    """Where a kind of token's holder starts."""
    return "/buyer" if kind == "buyer" else "/console"


def whole(identifier: str) -> str:
    """Pages name things by their whole id, never a prefix (the command line's habit)."""
    if not WHOLE_ID.fullmatch(identifier):
        raise NotFoundError("there is nothing here")
    return identifier


def new_key() -> str:
    """An idempotency key for a form being shown."""
    return secrets.token_urlsafe(18)


def once(v: Visit, key: str, action: str, body: bytes, work: Callable[[], str]) -> Response:
    """Run a form's ``work`` once per ``key`` and go where it says; a second submit (or a
    retry) waits for the first and goes to the same place. A refusal changes nothing, so
    it is not kept: the form, corrected, may be sent again with its key."""
    assert v.staff is not None
    principal = v.staff.principal  # the API's: one holder's keys, across tokens
    print_ = idempotency.fingerprint("POST", f"web {action}", body)
    deadline = time.monotonic() + WAIT_FOR_FIRST
    while True:
        try:
            replay = idempotency.claim(v.home, principal, key, print_)
            break
        except idempotency.KeyInUse:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)
        except InputError:  # the same key with other values: a page kept from before
            raise InputError(STALE_FORM) from None
    if replay is not None:
        return RedirectResponse(str(replay.body["location"]), status_code=303)
    try:
        location = work()
    except BaseException:
        idempotency.abandon(v.home, principal, key)
        raise
    idempotency.finish(v.home, principal, key, 303, {"location": location})
    return RedirectResponse(location, status_code=303)


def number(text: str, field: str, what: str) -> int:
    """A whole number typed into a form, or a refusal naming the field."""
    if not text.strip().isdigit() or len(text.strip()) > 15:
        raise InputError(f"{what}: type a whole number", fields=[(field, "a whole number")])
    return int(text)


__all__ = [
    "PLANNED",
    "Key",
    "Reader",
    "StaffRoute",
    "Steward",
    "StewardPost",
    "actor",
    "new_key",
    "number",
    "once",
    "posting",
    "start",
    "viewing",
    "whole",
]
