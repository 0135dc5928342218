"""Sessions, CSRF and the headers every response carries.

A visit's session lives on the server (``coop/accounts.py``): the cookie holds only a
random secret (HttpOnly, Secure, SameSite=Strict), whose SHA-256 is the row's id. Every
state-changing request must carry the session's CSRF token (a form field ``csrf``, the
``X-CSRF-Token`` header for scripts, or ``?csrf=`` where the body is a file being
streamed). The content security policy allows only this site's own files: no inline
script or style, no third-party loads, no framing.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated

from fastapi import Depends, Request
from starlette.concurrency import run_in_threadpool

from tunetrust.coop import accounts, tokens
from tunetrust.coop.keyring import reveal
from tunetrust.errors import ForbiddenError
from tunetrust.services.models import Actor
from tunetrust.store.models import Member

if TYPE_CHECKING:
    from tunetrust.store.home import Home

COOKIE = "tunetrust_session"
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)
HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=(), payment=()",
    "Cache-Control": "no-store",
}


class Refused(ForbiddenError):
    """A refusal that says what to do (a form without its token, a session too old to
    change how one signs in): always shown as 403, never hidden as "nothing here"."""


class SignInRequired(Exception):
    """A page for members was asked for without a signed-in session."""


@dataclass
class Visit:
    """One request's session: who is signed in (if anyone) and the CSRF token."""

    home: Home
    session: accounts.SessionView
    member: Member | None
    staff: tokens.TokenView | None = None  # a buyer, auditor or steward signed in by token

    @property
    def csrf(self) -> str:
        """The token every form and script must send back."""
        return self.session.csrf

    @property
    def name(self) -> str:
        """The signed-in member's name."""
        if self.member is None or self.member.name is None:
            raise SignInRequired
        return self.member.name

    @property
    def actor(self) -> Actor:
        """The signed-in member, acting as themselves."""
        return Actor.member(self.name)


def home_of(request: Request) -> Home:
    """The cooperative home the app serves."""
    home: Home = request.app.state.home
    return home


def visit(request: Request) -> Visit:
    """The request's session, opened (anonymous) if it has none yet."""
    cached: Visit | None = getattr(request.state, "visit", None)
    if cached is not None:
        return cached
    home = home_of(request)
    secret = request.cookies.get(COOKIE)
    # a read: most requests carry a live session, and reads never wait behind writers
    with home.sessions() as s:
        found = accounts.find_session(s, secret) if secret else None
        member = s.get(Member, found.member_id) if found and found.member_id else None
        if member is not None:
            s.expunge(member)
        staff = tokens.live(s, found.token_id) if found and found.token_id else None
    if found is None:  # only a new visitor's first request writes
        with home.transaction() as s:
            found, new_secret = accounts.open_session(s)
        request.state.cookie = new_secret
    if member is not None:
        reveal(home, member)
    made = Visit(home, found, member, staff)
    request.state.visit = made
    return made


class StaffSignInRequired(Exception):
    """A page of the buyer portal or the steward's console, without a token session."""


def staff(request: Request) -> Visit:
    """A buyer's, auditor's or steward's visit (signed in with their API token)."""
    v = visit(request)
    if v.staff is None:
        raise StaffSignInRequired
    return v


async def staff_post(request: Request) -> Visit:
    """A staff member's state-changing request, its CSRF token checked first."""
    v = await check_csrf(request)
    if v.staff is None:
        raise StaffSignInRequired
    return v


def signed_in(request: Request) -> Visit:
    """The signed-in member's visit; anyone else is sent to sign in."""
    v = visit(request)
    if v.member is None:
        raise SignInRequired
    return v


async def check_csrf(request: Request) -> Visit:
    """Refuse a state-changing request without this session's CSRF token."""
    v = await run_in_threadpool(visit, request)  # the database, off the event loop
    sent = request.headers.get("x-csrf-token")
    if sent is None and request.url.path == "/upload":  # its body is a file being streamed
        sent = request.query_params.get("csrf")
    if sent is None and request.headers.get("content-type", "").startswith(
        "application/x-www-form-urlencoded"
    ):
        form = await request.form()
        value = form.get("csrf")
        sent = value if isinstance(value, str) else None
    if not sent or not secrets.compare_digest(sent, v.csrf):
        raise Refused(
            "this form has expired or did not come from this site; reload the page and try again"
        )
    return v


async def member_post(request: Request) -> Visit:
    """A signed-in member's state-changing request, its CSRF token checked first.

    Checked before the form is validated, so someone not signed in learns nothing
    about a route's fields.
    """
    v = await check_csrf(request)
    if v.member is None:
        raise SignInRequired
    return v


# what a handler asks for: a signed-in member's visit, or any visit with its CSRF checked
MemberVisit = Annotated[Visit, Depends(signed_in)]
CheckedVisit = Annotated[Visit, Depends(check_csrf)]
MemberPost = Annotated[Visit, Depends(member_post)]
StaffVisit = Annotated[Visit, Depends(staff)]
StaffPost = Annotated[Visit, Depends(staff_post)]


def remember(request: Request, secret: str) -> None:
    """Set the session cookie on this response (a new session, e.g. after sign-in)."""
    request.state.cookie = secret


__all__ = [
    "COOKIE",
    "CheckedVisit",
    "MemberPost",
    "MemberVisit",
    "member_post",
    "CSP",
    "HEADERS",
    "Refused",
    "SignInRequired",
    "StaffPost",
    "StaffSignInRequired",
    "StaffVisit",
    "staff",
    "staff_post",
    "Visit",
    "check_csrf",
    "home_of",
    "remember",
    "signed_in",
    "visit",
]
