"""How members sign in themselves: invitations, passkeys, recovery codes, sessions, limits.

The database keeps nothing that would let someone who reads it sign in: invitation links
and session cookies are kept as SHA-256 digests of their secrets, recovery codes as
Argon2id hashes, passkeys as public keys. Where a sign-in came from is kept only as a
keyed digest, for rate limiting, and forgotten after a day. The WebAuthn ceremonies
themselves are the web layer's (``web/passkeys.py``); this module keeps their records.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import delete, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from tunetrust.coop import audit, tokens
from tunetrust.coop.keyring import derived_key, reveal
from tunetrust.coop.members import insert_member, name_is_taken, name_refused, new_member
from tunetrust.errors import ConflictError, NotFoundError
from tunetrust.store import keys
from tunetrust.store.home import Home
from tunetrust.store.models import (
    Invitation,
    Member,
    Passkey,
    RecoveryCode,
    SignInAttempt,
    WebSession,
)

INVITATION_DAYS = 7
SESSION_HOURS = 12  # a signed-in session ends after this, or when the member signs out
ANONYMOUS_MINUTES = 30  # a session nobody signed into (a form, a pending ceremony)
RECOVERY_CODES = 8
PASSKEY_TAKEN = "this passkey is registered here already; sign in with it"
FRESH_MINUTES = 15  # adding a passkey or new recovery codes needs a sign-in this recent
ATTEMPTS = 10  # failed sign-ins from one place …
ATTEMPT_WINDOW = timedelta(minutes=15)  # … within this long, then refused until it passes
OPEN_JOINS = 2  # joins through open admission links from one place …
OPEN_JOIN_WINDOW = timedelta(days=1)  # … within this long (one person, one membership)
OPEN_JOINS_REFUSED = (
    "people have joined through an open link from this network today already: one person, "
    "one membership. If you are someone else, ask the steward for an invitation of your own"
)
_SOURCE_KEY = b"tunetrust sign-in source v1"
_JOIN_KEY = b"tunetrust open-admission join source v1"
_CODE_KEY = b"tunetrust recovery-code lookup v1"
# Argon2id at OWASP's minimum (19 MiB, 2 passes): the codes are random, 74 bits each, so
# the hash only has to make a stolen table useless, and eight are made at every join
_HASHER = PasswordHasher(time_cost=2, memory_cost=19 * 1024, parallelism=1)


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _now() -> datetime:
    return datetime.now(UTC)


def _utc(at: datetime) -> datetime:
    return at if at.tzinfo else at.replace(tzinfo=UTC)  # SQLite drops the zone


# --- invitations -----------------------------------------------------------------------


def create_invitation(
    home: Home,
    *,
    member: Member | None = None,
    days: int = INVITATION_DAYS,
    reusable: bool = False,
) -> tuple[Invitation, str]:
    """A link's secret (returned, never stored) and its record.

    With ``member``: the link enrols a passkey for a member who already exists (added at
    the shell, or who lost every passkey and recovery code). ``reusable``: open
    admission, anyone with the link joins until it expires or is closed.
    """
    if reusable and member is not None:
        raise ConflictError("an open admission link cannot enrol one member")
    token = secrets.token_urlsafe(32)
    now = _now()
    invitation = Invitation(
        id=secrets.token_hex(8),
        token_hash=_digest(token),
        member_id=member.id if member else None,
        created_at=now,
        expires_at=now + timedelta(days=days),
        reusable=reusable,
    )
    with home.transaction() as s:
        s.add(invitation)
        audit.record(
            s,
            actor=audit.actor(home),
            action="invitation.create",
            subject=invitation.id,
            payload={
                "enrols": member.pseudonym if member else None,
                "expires": invitation.expires_at.isoformat(),
                "reusable": reusable,
            },
        )
    return invitation, token


def find_invitation(session: Session, token: str) -> Invitation:
    """The unused, unexpired invitation a link's secret opens."""
    row = session.scalar(select(Invitation).where(Invitation.token_hash == _digest(token)))
    if row is None:
        raise NotFoundError("this invitation link is not valid; ask the steward for a new one")
    if row.used_at is not None or _utc(row.expires_at) < _now():
        raise ConflictError(
            "this invitation link was used already or has expired; ask the steward for a new one"
        )
    return row


def invitation_for(home: Home, token: str) -> tuple[Invitation, str | None]:
    """The invitation a link opens, and the name of the member it enrols (None: it
    admits someone new)."""
    with home.sessions() as s:
        invitation = find_invitation(s, token)
        enrols = s.get(Member, invitation.member_id) if invitation.member_id else None
        return invitation, reveal(home, enrols).name if enrols else None


def close_invitation(home: Home, invitation_id: str) -> bool:
    """Stop a link working now (closing admission); whether it was still open."""
    with home.transaction() as s:
        closed = s.execute(
            update(Invitation)
            .where(Invitation.id == invitation_id, Invitation.used_at.is_(None))
            .values(used_at=_now())
        )
        if not getattr(closed, "rowcount", 0):
            return False
        audit.record(
            s, actor=audit.actor(home), action="invitation.close", subject=invitation_id, payload={}
        )
    return True


@dataclass(frozen=True)
class Joined:
    """A person who joined (or enrolled) through an invitation."""

    member_id: int
    codes: list[str]


def accept_invitation(
    home: Home,
    token: str,
    invitation_id: str,
    *,
    name: str,
    keep_incognito: bool,
    credential: tuple[str, bytes, int],
    joined_from: str | None = None,
) -> Joined:
    """In one transaction: use the invitation (once, unless it is an open admission),
    make the member (unless it enrols one), keep the passkey (``credential``: id, public
    key, counter) and fresh recovery codes. Any failure leaves nothing done: the link
    still works and no member without a passkey is left behind.

    Through an open admission link, at most :data:`OPEN_JOINS` join from one place
    (``joined_from``, :func:`join_source`) a day.
    """
    made = make_recovery_codes(home)  # hashing is slow: before the transaction
    joining: Member | None = None
    try:
        with home.transaction() as s:
            invitation = find_invitation(s, token)
            if invitation.id != invitation_id:
                raise ConflictError("this sign-in step has expired; reload the page and try again")
            if not invitation.reusable:
                taken = s.execute(
                    update(Invitation)
                    .where(Invitation.id == invitation.id, Invitation.used_at.is_(None))
                    .values(used_at=_now())
                )
                if not getattr(taken, "rowcount", 0):
                    raise ConflictError("this invitation link was used already")
            elif joined_from is not None:
                if open_joins_refused(s, joined_from):
                    raise ConflictError(OPEN_JOINS_REFUSED)
                s.add(SignInAttempt(source=joined_from, at=_now()))
            member_id = invitation.member_id
            if member_id is None:
                joining = new_member(home, name, keep_incognito=keep_incognito)
                with audit.acting_as(f"invitation:{invitation_id}"):
                    insert_member(home, s, joining)
                member_id = joining.id
            row = s.get(Member, member_id)
            assert row is not None
            register_passkey(s, row, credential, invitation=invitation_id)
            codes = new_recovery_codes(s, member_id, made)
    except IntegrityError:  # a unique key taken meanwhile: the name, or the passkey
        if joining is not None and name_is_taken(home, joining):
            raise name_refused(home, name, joining) from None
        raise ConflictError(PASSKEY_TAKEN) from None
    return Joined(member_id, codes)


# --- passkeys --------------------------------------------------------------------------


def register_passkey(
    session: Session,
    member: Member,
    credential: tuple[str, bytes, int],
    *,
    invitation: str | None = None,
) -> None:
    """Keep a verified passkey (id, public key, counter) for a member, on the audit log;
    a passkey registered here already is refused (it signs in as its own member)."""
    if passkey(session, credential[0]) is not None:
        raise ConflictError(PASSKEY_TAKEN)
    add_passkey(session, member.id, *credential)
    session.flush()  # a credential registered meanwhile fails here, in the caller's transaction
    audit.record(
        session,
        actor=audit.member_actor(member.pseudonym),
        action="member.passkey.add",
        subject=member.pseudonym,
        payload={"invitation": invitation} if invitation else {},
    )


def add_passkey(
    session: Session, member_id: int, credential_id: str, public_key: bytes, sign_count: int
) -> Passkey:
    """Record a verified credential for a member."""
    row = Passkey(
        member_id=member_id,
        credential_id=credential_id,
        public_key=public_key,
        sign_count=sign_count,
        created_at=_now(),
    )
    session.add(row)
    return row


def passkey(session: Session, credential_id: str) -> Passkey | None:
    """The credential with this id, of a member not erased."""
    return session.scalar(
        select(Passkey)
        .join(Member, Member.id == Passkey.member_id)
        .where(Passkey.credential_id == credential_id, Member.erased_at.is_(None))
    )


def member_passkeys(session: Session, member_id: int) -> list[Passkey]:
    """A member's credentials, oldest first."""
    return list(
        session.scalars(select(Passkey).where(Passkey.member_id == member_id).order_by(Passkey.id))
    )


# --- recovery codes --------------------------------------------------------------------


def _lookup(home: Home, code: str) -> str:
    return keys.keyed_digest(derived_key(home, _CODE_KEY), code)


def _typed(code: str) -> str:
    return code.strip().lower().replace(" ", "")


@dataclass(frozen=True)
class RecoveryCodes:
    """New one-time codes (to show once) and their hashes (to store)."""

    codes: list[str]
    rows: list[tuple[str, str]]  # (lookup, Argon2id hash) per code


def make_recovery_codes(home: Home) -> RecoveryCodes:
    """Fresh codes, hashed here, outside any transaction (hashing is the slow part)."""
    alphabet = "abcdefghjkmnpqrstuvwxyz23456789"  # no 0/o, 1/l/i look-alikes
    codes = [
        "-".join("".join(secrets.choice(alphabet) for _ in range(5)) for _ in range(3))
        for _ in range(RECOVERY_CODES)
    ]
    return RecoveryCodes(codes, [(_lookup(home, c), _HASHER.hash(c)) for c in codes])


def new_recovery_codes(session: Session, member_id: int, made: RecoveryCodes) -> list[str]:
    """Store ``made`` as the member's codes (any older ones stop working); the codes."""
    session.execute(delete(RecoveryCode).where(RecoveryCode.member_id == member_id))
    session.add_all(
        RecoveryCode(member_id=member_id, lookup=lookup, code_hash=hashed)
        for lookup, hashed in made.rows
    )
    return made.codes


def use_recovery_code(home: Home, session: Session, member_id: int, code: str) -> bool:
    """Whether ``code`` is one of the member's unused codes; if so it is used up now
    (by a conditional update: two sign-ins racing with one code, only one wins)."""
    typed = _typed(code)
    row = session.scalar(
        select(RecoveryCode).where(
            RecoveryCode.member_id == member_id,
            RecoveryCode.lookup == _lookup(home, typed),
            RecoveryCode.used_at.is_(None),
        )
    )
    if row is None:
        return False
    try:
        _HASHER.verify(row.code_hash, typed)
    except (VerificationError, InvalidHashError):
        return False
    used = session.execute(
        update(RecoveryCode)
        .where(RecoveryCode.id == row.id, RecoveryCode.used_at.is_(None))
        .values(used_at=_now())
    )
    return bool(getattr(used, "rowcount", 0))


def recovery_codes_left(session: Session, member_id: int) -> int:
    """How many unused codes a member has."""
    count = session.scalar(
        select(func.count())
        .select_from(RecoveryCode)
        .where(RecoveryCode.member_id == member_id, RecoveryCode.used_at.is_(None))
    )
    return int(count or 0)


# --- sessions --------------------------------------------------------------------------


@dataclass(frozen=True)
class SessionView:
    """A browser session as a request sees it."""

    id: str
    member_id: int | None
    csrf: str
    state: dict[str, object]
    opened: datetime  # when it opened: for a signed-in session, when the member signed in
    token_id: str | None = None  # signed in with an API token (buyer portal, console)

    @property
    def fresh(self) -> bool:
        """Signed in within ``FRESH_MINUTES``: long enough to change how one signs in."""
        return _now() - _utc(self.opened) < timedelta(minutes=FRESH_MINUTES)


def _view(row: WebSession) -> SessionView:
    return SessionView(
        row.id, row.member_id, row.csrf, dict(row.state or {}), row.created_at, row.token_id
    )


def open_session(
    session: Session, member_id: int | None = None, *, token_id: str | None = None
) -> tuple[SessionView, str]:
    """A new session and the cookie's secret (only its digest is stored); ``token_id``: a
    buyer's, auditor's or steward's session, signed in with their API token."""
    secret = secrets.token_urlsafe(32)
    now = _now()
    session.execute(delete(WebSession).where(WebSession.expires_at < now))  # indexed: cheap
    signed = member_id is not None or token_id is not None
    life = timedelta(hours=SESSION_HOURS) if signed else timedelta(minutes=ANONYMOUS_MINUTES)
    row = WebSession(
        id=_digest(secret),
        member_id=member_id,
        token_id=token_id,
        csrf=secrets.token_urlsafe(32),
        state={},
        created_at=now,
        expires_at=now + life,
    )
    session.add(row)
    return _view(row), secret


def find_session(session: Session, secret: str) -> SessionView | None:
    """The live session a cookie names, if any (expired ones and erased members' are not)."""
    row = session.get(WebSession, _digest(secret))
    if row is None or _utc(row.expires_at) < _now():
        return None
    if row.member_id is not None:
        member = session.get(Member, row.member_id)
        if member is None or member.erased_at is not None:
            return None
    if row.token_id is not None and tokens.live(session, row.token_id) is None:
        return None  # signed in with a token since revoked or expired
    return _view(row)


def take_ceremony(session: Session, session_id: str, kind: str) -> dict[str, object]:
    """The session's pending ceremony of ``kind``, cleared in the caller's write
    transaction: two requests racing with one challenge cannot both have it."""
    row = session.get(WebSession, session_id, with_for_update=True)
    state = dict(row.state or {}) if row is not None else {}
    if state.get("ceremony") != kind or not isinstance(state.get("challenge"), str):
        raise ConflictError("this sign-in step has expired; reload the page and try again")
    assert row is not None
    row.state = {}
    return state


def seal_codes(secret: str, codes: list[str]) -> str:
    """Recovery codes waiting to be shown once, sealed under a key only the browser's
    cookie holds: the database never keeps them readable."""
    return keys.seal(_cookie_key(secret), "\n".join(codes).encode(), b"recovery-codes").hex()


def open_codes(secret: str, sealed: str) -> list[str]:
    """The codes :func:`seal_codes` sealed for this cookie."""
    plain = keys.unseal(_cookie_key(secret), bytes.fromhex(sealed), b"recovery-codes", "codes")
    return plain.decode().split("\n")


def _cookie_key(secret: str) -> bytes:
    return hashlib.sha256(b"tunetrust recovery codes v1\0" + secret.encode()).digest()


def set_state(session: Session, session_id: str, state: dict[str, object]) -> None:
    """Replace a session's pending-ceremony state."""
    row = session.get(WebSession, session_id)
    if row is not None:
        row.state = dict(state)


def sign_in(
    session: Session, old_id: str | None, member_id: int | None, *, token_id: str | None = None
) -> tuple[SessionView, str]:
    """End the anonymous session and open a signed-in one (a new id: no fixation): a
    member's, or one signed in with an API token (``token_id``)."""
    if old_id:
        session.execute(delete(WebSession).where(WebSession.id == old_id))
    session.execute(delete(WebSession).where(WebSession.expires_at < _now()))
    return open_session(session, member_id, token_id=token_id)


def end_session(session: Session, session_id: str) -> None:
    """Sign out: the session is deleted on the server."""
    session.execute(delete(WebSession).where(WebSession.id == session_id))


# --- rate limits -----------------------------------------------------------------------


def source(home: Home, address: str) -> str:
    """A keyed digest of where a request came from: never the address itself."""
    return keys.keyed_digest(derived_key(home, _SOURCE_KEY), address)


def join_source(home: Home, address: str) -> str:
    """A keyed digest of where a join through an open link came from (its own key: a
    join is not a failed sign-in)."""
    return keys.keyed_digest(derived_key(home, _JOIN_KEY), address)


def open_joins_refused(session: Session, joined_from: str) -> bool:
    """Whether :data:`OPEN_JOINS` people joined through open links from there lately."""
    count = session.scalar(
        select(func.count())
        .select_from(SignInAttempt)
        .where(SignInAttempt.source == joined_from, SignInAttempt.at >= _now() - OPEN_JOIN_WINDOW)
    )
    return int(count or 0) >= OPEN_JOINS


def refused(session: Session, where: str) -> bool:
    """Whether sign-ins from ``where`` failed too often lately."""
    since = _now() - ATTEMPT_WINDOW
    count = session.scalar(
        select(func.count())
        .select_from(SignInAttempt)
        .where(SignInAttempt.source == where, SignInAttempt.at >= since)
    )
    return int(count or 0) >= ATTEMPTS


def failed(session: Session, where: str) -> None:
    """Count a failed sign-in from ``where`` (and forget those older than a day)."""
    now = _now()
    session.execute(delete(SignInAttempt).where(SignInAttempt.at < now - timedelta(days=1)))
    session.add(SignInAttempt(source=where, at=now))


# --- erasure ---------------------------------------------------------------------------


def forget(session: Session, member_id: int) -> int:
    """At erasure: every credential, code, session and invitation of the member goes."""
    n = 0
    for table in (Passkey, RecoveryCode, WebSession, Invitation):
        result = session.execute(delete(table).where(table.member_id == member_id))
        n += int(getattr(result, "rowcount", 0) or 0)
    return n


__all__ = [
    "RecoveryCodes",
    "Joined",
    "SessionView",
    "accept_invitation",
    "add_passkey",
    "register_passkey",
    "close_invitation",
    "create_invitation",
    "end_session",
    "failed",
    "find_invitation",
    "find_session",
    "invitation_for",
    "forget",
    "make_recovery_codes",
    "member_passkeys",
    "new_recovery_codes",
    "open_session",
    "passkey",
    "recovery_codes_left",
    "refused",
    "open_codes",
    "seal_codes",
    "set_state",
    "take_ceremony",
    "sign_in",
    "source",
    "use_recovery_code",
]
