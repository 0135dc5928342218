"""API tokens as use cases: issue, list, revoke, each checked against the actor.

A steward issues tokens of every kind (a buyer's, an auditor's, a steward's, a member's
at their request); a member issues and revokes their own personal tokens; a buyer
issues and revokes tokens for themselves. Every issue and revocation is audited (a
member's under their pseudonym, so it reaches their export).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from tunetrust.coop import audit, tokens
from tunetrust.coop.governance import find_buyer, iso_time
from tunetrust.coop.members import get_member
from tunetrust.errors import ForbiddenError, NotFoundError
from tunetrust.services._access import acting, for_member, steward_only
from tunetrust.services.models import Actor, TokenInfo, TokenIssued
from tunetrust.store.home import Home
from tunetrust.store.models import ApiToken, Buyer, Member


def _info(row: ApiToken, holder: str) -> TokenInfo:
    return TokenInfo(
        id=row.id,
        kind=row.kind,  # type: ignore[arg-type]  # one of SCOPES' keys, checked at issue
        holder=holder,
        label=row.label,
        scopes=list(row.scopes or ()),
        created=iso_time(row.created_at) or "",
        expires=iso_time(row.expires_at) or "",
        revoked=iso_time(row.revoked_at),
        last_used=iso_time(row.last_used_at),
    )


def _holder(session: Session, row: ApiToken) -> str:
    if row.kind == "member":
        return "you"  # a steward's list says "a member" (see list_tokens)
    if row.kind == "buyer" and row.buyer_id is not None:
        buyer = session.get(Buyer, row.buyer_id)
        return buyer.name if buyer else row.name
    return row.name


def _subject(session: Session, row: ApiToken) -> str:
    """What the audit entry is about: a member's token under their pseudonym."""
    if row.member_id is not None:
        member = session.get(Member, row.member_id)
        if member is not None:
            return member.pseudonym
    return f"token:{row.id}"


def issue_token(
    home: Home,
    actor: Actor,
    *,
    kind: str,
    holder: str,
    label: str = "",
    scopes: list[str] | None = None,
    days: int = 90,
    until: datetime | None = None,
) -> TokenIssued:
    """A new token of ``kind`` for ``holder`` (a buyer's name, a member's name, an
    auditor's or a steward's name); its secret is in the result once."""
    if kind == "member":
        for_member(actor, holder, "make a member's personal token")
    elif kind == "buyer" and actor.kind == "buyer":
        if actor.name != holder:
            raise ForbiddenError("a buyer can make tokens for themselves only")
    else:
        steward_only(actor, f"make {kind} tokens")
    member_id = get_member(home, holder).id if kind == "member" else None
    with acting(home, actor), home.transaction() as s:
        buyer_id = find_buyer(s, holder).id if kind == "buyer" else None
        row, secret = tokens.issue(
            s,
            kind=kind,
            name="" if kind == "member" else holder,
            label=label,
            scopes=scopes,
            days=days,
            buyer_id=buyer_id,
            member_id=member_id,
            until=until,
        )
        audit.record(
            s,
            actor=audit.actor(home),
            action="token.issue",
            subject=_subject(s, row),
            payload={"token": row.id, "kind": kind, "scopes": row.scopes, "days": days},
        )
        info = _info(row, "you" if kind == "member" else holder)
    return TokenIssued(token=secret, info=info)


def _mine(session: Session, home: Home, actor: Actor, row: ApiToken) -> bool:
    if actor.kind == "steward":
        return True
    if actor.kind == "member":
        return row.member_id is not None and row.member_id == get_member(home, actor.name).id
    if actor.kind == "buyer":
        return row.buyer_id is not None and row.buyer_id == find_buyer(session, actor.name).id
    return False


def list_tokens(home: Home, actor: Actor) -> list[TokenInfo]:
    """Tokens, newest first: a steward sees every token (a member's as "a member"), a
    member or a buyer their own."""
    if actor.kind not in ("steward", "member", "buyer"):
        raise ForbiddenError("only a steward, a member or a buyer can list tokens")
    with home.sessions() as s:
        if actor.kind == "member":
            rows = tokens.listed(s, member_id=get_member(home, actor.name).id)
        elif actor.kind == "buyer":
            rows = tokens.listed(s, buyer_id=find_buyer(s, actor.name).id)
        else:
            rows = tokens.listed(s)
        shown = []
        for row in rows:
            holder = _holder(s, row)
            if actor.kind == "steward" and row.kind == "member":
                holder = "a member"  # the console is pseudonymous
            shown.append(_info(row, holder))
    return shown


def revoke_token(home: Home, actor: Actor, token_id: str) -> TokenInfo:
    """Revoke a token now: every request and browser session using it stops."""
    with acting(home, actor), home.transaction() as s:
        row = s.get(ApiToken, token_id)
        if row is None or not _mine(s, home, actor, row):
            raise NotFoundError(f"no token {token_id!r} of yours")
        first = row.revoked_at is None
        tokens.revoke(s, token_id)
        if first:
            audit.record(
                s,
                actor=audit.actor(home),
                action="token.revoke",
                subject=_subject(s, row),
                payload={"token": row.id},
            )
        return _info(row, _holder(s, row))


__all__ = ["issue_token", "list_tokens", "revoke_token"]
