"""Joining and signing in: invitations, passkeys, recovery codes, signing out.

A person opens the steward's invitation link, chooses their member name and registers a
passkey (the browser's WebAuthn API; the only page that needs a script); they are shown
one-time recovery codes, once. Later they sign in with the passkey, or with their name
and a recovery code (a plain form). Failed sign-ins are counted per keyed source and
refused past ``accounts.ATTEMPTS`` in ``accounts.ATTEMPT_WINDOW``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Body, Form, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response
from sqlalchemy.exc import IntegrityError

from tunetrust.coop import accounts
from tunetrust.coop.members import get_member
from tunetrust.coop.tokens import SCOPES
from tunetrust.errors import ConflictError, ForbiddenError, InputError, NotFoundError
from tunetrust.names import check_name
from tunetrust.web import passkeys
from tunetrust.web.app import ACCESS, page
from tunetrust.web.security import (
    COOKIE,
    CheckedVisit,
    MemberPost,
    MemberVisit,
    Refused,
    Visit,
    home_of,
    remember,
    visit,
)

router = APIRouter()
ACCESS.update(
    {
        "GET /join/{token}": "anyone",
        "POST /join/{token}/options": "anyone",
        "POST /join/{token}/finish": "anyone",
        "GET /signin": "anyone",
        "POST /signin/options": "anyone",
        "POST /signin/finish": "anyone",
        "POST /signin/recovery": "anyone",
        "POST /signout": "member",
        "GET /welcome": "member",
        "GET /account": "member",
        "POST /account/passkey/options": "member",
        "POST /account/passkey/finish": "member",
        "POST /account/recovery-codes": "member",
        "POST /account/tokens": "member",
        "POST /account/tokens/{token_id}/revoke": "member",
    }
)
SIGNIN_REFUSED = "too many failed sign-ins from here; wait 15 minutes and try again"
SIGN_IN_AGAIN = (
    "to change how you sign in, sign out and sign in again first (it has been more than "
    f"{accounts.FRESH_MINUTES} minutes): a borrowed session cannot add a way in"
)


def _fresh(v: Visit) -> None:
    """Refuse changing how a member signs in on a session that is not recent."""
    if not v.session.fresh:
        raise Refused(SIGN_IN_AGAIN)


def _party(request: Request) -> passkeys.Party:
    return passkeys.Party(request.app.state.origin)


def not_refused(request: Request) -> str:
    """Where the request comes from (a keyed digest), unless it failed too often lately."""
    home = home_of(request)
    where = accounts.source(home, request.client.host if request.client else "?")
    with home.sessions() as s:
        if accounts.refused(s, where):
            raise ForbiddenError(SIGNIN_REFUSED)
    return where


def _joined_from(request: Request) -> str:
    """Where a join comes from, keyed for the open admission limit."""
    return accounts.join_source(home_of(request), request.client.host if request.client else "?")


# a script's JSON body, parsed and size-checked by the framework (a body that is not a JSON
# object is refused as a bad form); handlers are plain functions, run off the event loop
JsonBody = Annotated[dict[str, Any], Body()]


def _ceremony(v: Visit, kind: str) -> dict[str, Any]:
    """The pending ceremony of this session, taken (used once) in a write transaction."""
    with v.home.transaction() as s:
        return accounts.take_ceremony(s, v.session.id, kind)


# --- joining ---------------------------------------------------------------------------


@router.get("/join/{token}")
def join_page(request: Request, token: str) -> Response:
    """The invitation: who it is for, and the passkey step."""
    _, enrols = accounts.invitation_for(home_of(request), token)
    return page(request, "join.html", token=token, enrols=enrols)


@router.post("/join/{token}/options")
def join_options(request: Request, token: str, v: CheckedVisit, body: JsonBody) -> Response:
    """Registration options for a new passkey; the chosen name is checked first."""
    home = v.home
    invitation, enrols = accounts.invitation_for(home, token)
    if enrols is not None:
        name = enrols
    else:
        name = check_name(str(body.get("name", "")))
        where = not_refused(request)
        if invitation.reusable:  # told before the passkey is made, enforced at the finish
            with home.sessions() as s:
                if accounts.open_joins_refused(s, _joined_from(request)):
                    raise ConflictError(accounts.OPEN_JOINS_REFUSED)
        try:
            get_member(home, name)
        except NotFoundError:
            pass
        else:  # counted like a failed sign-in: names cannot be tried one after another
            with home.transaction() as s:
                accounts.failed(s, where)
            raise ConflictError("that name is taken; choose another")
    options, challenge = passkeys.registration(_party(request), name)
    state = {
        "ceremony": "register",
        "challenge": challenge,
        "invitation": invitation.id,
        "name": name,
        "keep_incognito": bool(body.get("keep_incognito", False)),
    }
    with home.transaction() as s:
        accounts.set_state(s, v.session.id, state)
    return JSONResponse(options)


@router.post("/join/{token}/finish")
def join_finish(request: Request, token: str, v: CheckedVisit, credential: JsonBody) -> Response:
    """Verify the new passkey; make the member (or enrol them); sign them in."""
    state = _ceremony(v, "register")
    key = passkeys.verify_registration(_party(request), credential, str(state["challenge"]))
    joined = accounts.accept_invitation(
        v.home,
        token,
        str(state.get("invitation")),
        name=str(state["name"]),
        keep_incognito=bool(state["keep_incognito"]),
        credential=(key.credential_id, key.public_key, key.sign_count),
        joined_from=_joined_from(request),
    )
    with v.home.transaction() as s:
        signed, secret = accounts.sign_in(s, v.session.id, joined.member_id)
        sealed = accounts.seal_codes(secret, joined.codes)  # readable with the cookie only
        accounts.set_state(s, signed.id, {"sealed_codes": sealed})
    remember(request, secret)
    return JSONResponse({"next": "/welcome"})


@router.get("/welcome")
def welcome(request: Request, v: MemberVisit) -> Response:
    """The recovery codes, shown once."""
    sealed = v.session.state.get("sealed_codes")
    secret = request.cookies.get(COOKIE)
    codes = accounts.open_codes(secret, sealed) if isinstance(sealed, str) and secret else []
    if sealed:
        with v.home.transaction() as s:
            accounts.set_state(s, v.session.id, {})
    return page(request, "welcome.html", codes=codes)


# --- signing in ------------------------------------------------------------------------


@router.get("/signin")
def signin_page(request: Request) -> Response:
    """Sign in with a passkey, or with a recovery code."""
    if visit(request).member is not None:
        return RedirectResponse("/", status_code=303)
    return page(request, "signin.html")


@router.post("/signin/options")
def signin_options(request: Request, v: CheckedVisit) -> Response:
    """Options for the browser to offer this site's passkeys."""
    not_refused(request)
    options, challenge = passkeys.authentication(_party(request))
    with v.home.transaction() as s:
        accounts.set_state(s, v.session.id, {"ceremony": "signin", "challenge": challenge})
    return JSONResponse(options)


@router.post("/signin/finish")
def signin_finish(request: Request, v: CheckedVisit, credential: JsonBody) -> Response:
    """Check the passkey's signature; sign in as its member."""
    where = not_refused(request)
    home = v.home
    state = _ceremony(v, "signin")
    try:
        with home.transaction() as s:
            found = accounts.passkey(s, passkeys.credential_id(credential))
            if found is None:
                raise InputError("this passkey is not registered here")
            found.sign_count = passkeys.verify_authentication(
                _party(request),
                credential,
                str(state["challenge"]),
                found.public_key,
                found.sign_count,
            )
            found.last_used_at = datetime.now(UTC)
            _, secret = accounts.sign_in(s, v.session.id, found.member_id)
    except InputError:
        with home.transaction() as s:
            accounts.failed(s, where)
        raise
    remember(request, secret)
    return JSONResponse({"next": "/"})


@router.post("/signin/recovery")
def signin_recovery(
    request: Request,
    name: Annotated[str, Form(max_length=200)],
    code: Annotated[str, Form(max_length=100)],
    v: CheckedVisit,
) -> Response:
    """Sign in with the member's name and one of their one-time recovery codes."""
    where = not_refused(request)
    home = v.home
    try:
        member = get_member(home, name)
    except (NotFoundError, InputError):
        member = None
    with home.transaction() as s:
        if member is None or not accounts.use_recovery_code(home, s, member.id, code):
            accounts.failed(s, where)
            ok = False
        else:
            _, secret = accounts.sign_in(s, v.session.id, member.id)
            ok = True
    if not ok:
        return page(request, "signin.html", status=400, problem="that name and code do not match")
    remember(request, secret)
    return RedirectResponse("/account", status_code=303)


@router.post("/signout")
def signout(request: Request, v: MemberPost) -> Response:
    """End the session on the server."""
    with v.home.transaction() as s:
        accounts.end_session(s, v.session.id)
    return RedirectResponse("/signin", status_code=303)


# --- the member's own sign-in methods --------------------------------------------------


def _account(request: Request, v: Visit, status: int = 200, **extra: Any) -> Response:
    from tunetrust.services.tokens import list_tokens

    assert v.member is not None
    with v.home.sessions() as s:
        keys = accounts.member_passkeys(s, v.member.id)
        left = accounts.recovery_codes_left(s, v.member.id)
    mine = list_tokens(v.home, v.actor)
    return page(
        request,
        "account.html",
        status=status,
        passkeys=keys,
        codes_left=left,
        tokens=mine,
        scopes=SCOPES["member"],
        **extra,
    )


@router.get("/account")
def account(request: Request, v: MemberVisit) -> Response:
    """Passkeys, recovery codes and personal API tokens."""
    return _account(request, v)


@router.post("/account/passkey/options")
def add_passkey_options(request: Request, v: MemberPost) -> Response:
    """Options to register one more passkey for the signed-in member."""
    _fresh(v)
    assert v.member is not None
    with v.home.sessions() as s:
        existing = [p.credential_id for p in accounts.member_passkeys(s, v.member.id)]
    options, challenge = passkeys.registration(_party(request), v.name, existing)
    with v.home.transaction() as s:
        accounts.set_state(s, v.session.id, {"ceremony": "add", "challenge": challenge})
    return JSONResponse(options)


@router.post("/account/passkey/finish")
def add_passkey_finish(request: Request, v: MemberPost, credential: JsonBody) -> Response:
    """Verify and keep the new passkey."""
    assert v.member is not None
    state = _ceremony(v, "add")
    key = passkeys.verify_registration(_party(request), credential, str(state["challenge"]))
    try:
        with v.home.transaction() as s:
            credential_key = (key.credential_id, key.public_key, key.sign_count)
            accounts.register_passkey(s, v.member, credential_key)
    except IntegrityError:  # the same passkey registered meanwhile
        raise ConflictError(accounts.PASSKEY_TAKEN) from None
    return JSONResponse({"next": "/account"})


@router.post("/account/recovery-codes")
def new_codes(request: Request, v: MemberPost) -> Response:
    """New recovery codes (the old ones stop working), shown once."""
    _fresh(v)
    assert v.member is not None
    made = accounts.make_recovery_codes(v.home)
    with v.home.transaction() as s:
        codes = accounts.new_recovery_codes(s, v.member.id, made)
    return page(request, "welcome.html", codes=codes)  # shown in this answer, kept nowhere


@router.post("/account/tokens")
def new_token(
    request: Request,
    v: MemberPost,
    label: Annotated[str, Form(max_length=200)] = "",
    days: Annotated[int, Form(ge=1, le=365)] = 30,
    scope: Annotated[list[str] | None, Form()] = None,
) -> Response:
    """A personal API token for the member's own scripts (shown once)."""
    from tunetrust.services.tokens import issue_token

    _fresh(v)  # a token acts as the member: a new way in, like a passkey
    made = issue_token(  # no box ticked: no scope (never "all of them")
        v.home, v.actor, kind="member", holder=v.name, label=label, scopes=scope or [], days=days
    )
    return _account(request, v, new_token=made)  # shown in this answer, kept nowhere


@router.post("/account/tokens/{token_id}/revoke")
def revoke_token(request: Request, token_id: str, v: MemberPost) -> Response:
    """Revoke one of the member's own tokens (another's is not found)."""
    from tunetrust.services.tokens import revoke_token as revoke

    revoke(v.home, v.actor, token_id)
    return RedirectResponse("/account", status_code=303)


__all__ = ["router"]
