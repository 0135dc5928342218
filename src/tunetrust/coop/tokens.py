"""API tokens: who a bearer token acts as, what it may do, until when.

A token reads ``tt_`` and 43 random URL-safe characters; only its SHA-256 is stored (a
secret with 256 bits of entropy needs no slow hash: the lookup by digest is the check).
``id`` is the public handle that lists, revocation and the audit log use. Scopes narrow
what a kind of token may do; a token never does more than its holder could.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from tunetrust.errors import InputError, NotFoundError
from tunetrust.store.models import ApiToken, Buyer, Member

PREFIX = "tt_"
MAX_DAYS = 365
# what each kind of token may be scoped to; a new token gets all of its kind's by default.
# "tokens": make and revoke the holder's own tokens (never wider than the one making them)
SCOPES: dict[str, tuple[str, ...]] = {
    "buyer": ("requests:read", "requests:write", "releases:read", "tokens"),
    "member": ("me:read", "consent:write", "votes:write", "tokens"),
    "auditor": ("audit:read",),
    "steward": ("steward",),
}
TOUCH_EVERY = timedelta(minutes=10)  # how stale ``last_used_at`` may get before a write


@dataclass(frozen=True)
class TokenView:
    """A live token as a request sees it."""

    id: str
    kind: str
    name: str  # the buyer's, auditor's or steward's name; a member's token: ""
    buyer_id: int | None
    member_id: int | None
    scopes: tuple[str, ...]
    expires_at: datetime
    stale: bool  # ``last_used_at`` is older than TOUCH_EVERY: worth recording a use

    @property
    def holder(self) -> str:
        """Whom a buyer's, auditor's or steward's token acts as (a member's: their name is
        sealed, not here)."""
        return self.name or self.kind

    @property
    def principal(self) -> str:
        """Whose idempotency keys a call with it uses: one holder's, across their tokens
        (a buyer by id: a name can be reused after a buyer is gone)."""
        return f"{self.kind}:{self.buyer_id if self.kind == 'buyer' else self.holder}"


def _now() -> datetime:
    return datetime.now(UTC)


def _utc(at: datetime) -> datetime:
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at


def digest(secret: str) -> str:
    """How a token is stored and found."""
    return hashlib.sha256(secret.encode("utf-8", "surrogatepass")).hexdigest()


def check_scopes(kind: str, scopes: list[str] | None) -> list[str]:
    """The scopes a new token of ``kind`` gets: all of the kind's, or the chosen ones."""
    if kind not in SCOPES:
        raise InputError(f"a token is for one of: {', '.join(SCOPES)}")
    if scopes is None:
        return list(SCOPES[kind])
    if not scopes:
        raise InputError("a token needs at least one scope", fields=[("scopes", "empty")])
    unknown = sorted(set(scopes) - set(SCOPES[kind]))
    if unknown:
        raise InputError(
            f"scope {unknown[0]!r} is not one a {kind} token can have; "
            f"choose from {', '.join(SCOPES[kind])}"
        )
    return sorted(set(scopes))


def issue(
    session: Session,
    *,
    kind: str,
    name: str = "",
    label: str = "",
    scopes: list[str] | None = None,
    days: int = 90,
    buyer_id: int | None = None,
    member_id: int | None = None,
    until: datetime | None = None,
) -> tuple[ApiToken, str]:
    """A new token and its secret (shown once; only the digest is kept); ``until``: it
    expires then at the latest (the token that made it)."""
    chosen = check_scopes(kind, scopes)
    name = name.strip()
    if kind in ("auditor", "steward") and not (
        name and name.isprintable() and ":" not in name and len(name) <= 200
    ):
        # the audit log names them by it: never blank, never shaped like "member:…"
        raise InputError(
            "an auditor's or steward's name is printable text without ':'",
            fields=[("holder", "printable text without ':'")],
        )
    if not 1 <= days <= MAX_DAYS:
        raise InputError(f"a token lasts 1 to {MAX_DAYS} days")
    if (kind == "buyer") != (buyer_id is not None) or (kind == "member") != (member_id is not None):
        raise InputError("a buyer's token names its buyer, a member's token its member")
    secret = PREFIX + secrets.token_urlsafe(32)
    now = _now()
    row = ApiToken(
        id=secrets.token_hex(6),
        secret_sha256=digest(secret),
        kind=kind,
        buyer_id=buyer_id,
        member_id=member_id,
        name=name[:200],
        label=label.strip()[:200],
        scopes=chosen,
        created_at=now,
        expires_at=min(now + timedelta(days=days), until or now + timedelta(days=days)),
    )
    session.add(row)
    session.flush()
    return row, secret


def authenticate(session: Session, secret: str) -> TokenView | None:
    """The live token ``secret`` is, if any: not expired, not revoked, its buyer or member
    still there (an erased member's tokens are gone with them)."""
    if not secret or len(secret) > 200:
        return None
    row = session.scalar(select(ApiToken).where(ApiToken.secret_sha256 == digest(secret)))
    return _live(session, row)


def live(session: Session, token_id: str) -> TokenView | None:
    """The token with this public id, if it is live (a browser session signed in with it)."""
    return _live(session, session.get(ApiToken, token_id))


def _live(session: Session, row: ApiToken | None) -> TokenView | None:
    now = _now()
    if row is None or row.revoked_at is not None or _utc(row.expires_at) <= now:
        return None
    if row.member_id is not None:
        member = session.get(Member, row.member_id)
        if member is None or member.erased_at is not None:
            return None
    if row.buyer_id is not None and session.get(Buyer, row.buyer_id) is None:
        return None
    used = row.last_used_at
    return TokenView(
        id=row.id,
        kind=row.kind,
        name=row.name,
        buyer_id=row.buyer_id,
        member_id=row.member_id,
        scopes=tuple(row.scopes or ()),
        expires_at=_utc(row.expires_at),
        stale=used is None or now - _utc(used) > TOUCH_EVERY,
    )


def touch(session: Session, token_id: str) -> None:
    """Record that a token was used (at most every ``TOUCH_EVERY``)."""
    row = session.get(ApiToken, token_id)
    if row is not None:
        row.last_used_at = _now()


def find(session: Session, token_id: str) -> ApiToken:
    """A token by its public id."""
    row = session.get(ApiToken, token_id)
    if row is None:
        raise NotFoundError(f"no token {token_id!r}; list them with: tunetrust token list")
    return row


def revoke(session: Session, token_id: str) -> ApiToken:
    """Revoke a token now (revoking twice changes nothing)."""
    row = find(session, token_id)
    if row.revoked_at is None:
        row.revoked_at = _now()
    return row


def listed(
    session: Session, *, member_id: int | None = None, buyer_id: int | None = None
) -> list[ApiToken]:
    """Tokens, newest first: a member's, a buyer's, or all."""
    query = select(ApiToken).order_by(ApiToken.created_at.desc(), ApiToken.id)
    if member_id is not None:
        query = query.where(ApiToken.member_id == member_id)
    if buyer_id is not None:
        query = query.where(ApiToken.buyer_id == buyer_id)
    return list(session.scalars(query))


def forget(session: Session, member_id: int) -> int:
    """At erasure: the member's personal tokens go."""
    result = session.execute(delete(ApiToken).where(ApiToken.member_id == member_id))
    return int(getattr(result, "rowcount", 0) or 0)


__all__ = [
    "MAX_DAYS",
    "PREFIX",
    "SCOPES",
    "TokenView",
    "authenticate",
    "check_scopes",
    "digest",
    "find",
    "forget",
    "issue",
    "listed",
    "live",
    "revoke",
    "touch",
]
